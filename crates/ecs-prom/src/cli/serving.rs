//! The flags every server shares (`--web.config.file`, `--web.read-timeout`,
//! `--web.idle-timeout`, `--web.max-connections`), with each component's own environment
//! variables, and their conversion into how the component serves.

use super::parse_duration;
use crate::env_vars;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How a component serves: its web configuration and its connection limits.
#[derive(Debug)]
pub struct Serving {
    web: Option<Arc<web::WebConfig>>,
    options: web::ServeOptions,
}

impl Serving {
    /// `tcp`, ready to hand to the component's `run`.
    pub fn listener(self, tcp: tokio::net::TcpListener) -> web::Listener {
        web::Listener::new(tcp, self.web, self.options)
    }

    /// Whether the web configuration turns TLS on, for the start-up log line.
    pub fn tls(&self) -> bool {
        self.web.as_ref().is_some_and(|web| web.tls().is_some())
    }
}

/// Reads the web configuration file, if any: a file that cannot be used stops the component
/// at start, never at its first request.
fn finish(
    config_file: Option<PathBuf>,
    read_timeout: Duration,
    idle_timeout: Duration,
    max_connections: u32,
) -> anyhow::Result<Serving> {
    let web = match config_file {
        Some(path) => Some(Arc::new(
            web::WebConfig::load(&path).context("--web.config.file")?,
        )),
        None => None,
    };
    Ok(Serving {
        web,
        options: web::ServeOptions {
            header_read_timeout: read_timeout,
            idle_timeout,
            max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
            ..web::ServeOptions::default()
        },
    })
}

/// A duration above zero: a zero timeout would close every connection at once.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err(format!("{text:?}: the timeout must be above zero")),
        timeout => Ok(timeout),
    }
}

/// One flag struct per component: clap takes environment variable names as constants.
macro_rules! web_flags {
    ($(#[$doc:meta])* $name:ident, $config_file:expr, $read_timeout:expr, $idle_timeout:expr, $max_connections:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Args)]
        pub struct $name {
            /// Web configuration file (Prometheus exporter-toolkit format): TLS, basic auth, response headers.
            #[arg(long = "web.config.file", env = $config_file, value_name = "FILE")]
            pub web_config_file: Option<PathBuf>,
            /// How long a client may take to send a request's headers (from its connection, or from the first byte of a later request).
            #[arg(long = "web.read-timeout", env = $read_timeout, value_name = "DURATION", default_value = "10s", value_parser = parse_timeout)]
            pub web_read_timeout: Duration,
            /// How long a kept-alive connection may stay idle between requests (and a client pause while reading a response).
            #[arg(long = "web.idle-timeout", env = $idle_timeout, value_name = "DURATION", default_value = "60s", value_parser = parse_timeout)]
            pub web_idle_timeout: Duration,
            /// Most connections open at once; beyond it, or when file descriptors run out, the connection idle the longest is closed.
            #[arg(long = "web.max-connections", env = $max_connections, value_name = "N", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
            pub web_max_connections: u32,
        }

        impl $name {
            /// Loads the web configuration file and sets the limits.
            pub fn finish(self) -> anyhow::Result<Serving> {
                finish(
                    self.web_config_file,
                    self.web_read_timeout,
                    self.web_idle_timeout,
                    self.web_max_connections,
                )
            }
        }
    };
}

web_flags!(
    /// `ecs-prom exporter` web flags.
    ExporterWebFlags,
    env_vars::EXPORTER_WEB_CONFIG_FILE,
    env_vars::EXPORTER_WEB_READ_TIMEOUT,
    env_vars::EXPORTER_WEB_IDLE_TIMEOUT,
    env_vars::EXPORTER_WEB_MAX_CONNECTIONS
);
web_flags!(
    /// `ecs-prom agent` web flags.
    AgentWebFlags,
    env_vars::AGENT_WEB_CONFIG_FILE,
    env_vars::AGENT_WEB_READ_TIMEOUT,
    env_vars::AGENT_WEB_IDLE_TIMEOUT,
    env_vars::AGENT_WEB_MAX_CONNECTIONS
);
web_flags!(
    /// `ecs-prom discovery` web flags.
    DiscoveryWebFlags,
    env_vars::DISCOVERY_WEB_CONFIG_FILE,
    env_vars::DISCOVERY_WEB_READ_TIMEOUT,
    env_vars::DISCOVERY_WEB_IDLE_TIMEOUT,
    env_vars::DISCOVERY_WEB_MAX_CONNECTIONS
);
web_flags!(
    /// `ecs-prom simulate` web flags.
    SimulateWebFlags,
    env_vars::SIMULATE_WEB_CONFIG_FILE,
    env_vars::SIMULATE_WEB_READ_TIMEOUT,
    env_vars::SIMULATE_WEB_IDLE_TIMEOUT,
    env_vars::SIMULATE_WEB_MAX_CONNECTIONS
);
web_flags!(
    /// `ecs-prom demo-app` web flags.
    DemoAppWebFlags,
    env_vars::DEMO_APP_WEB_CONFIG_FILE,
    env_vars::DEMO_APP_WEB_READ_TIMEOUT,
    env_vars::DEMO_APP_WEB_IDLE_TIMEOUT,
    env_vars::DEMO_APP_WEB_MAX_CONNECTIONS
);

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]

    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        web: ExporterWebFlags,
    }

    #[test]
    fn the_defaults_are_web_s_and_flags_change_them() {
        let serving = Flags::try_parse_from(["x"])
            .expect("parses")
            .web
            .finish()
            .expect("no file");
        assert!(serving.web.is_none());
        let defaults = web::ServeOptions::default();
        assert_eq!(
            serving.options.header_read_timeout,
            defaults.header_read_timeout
        );
        assert_eq!(serving.options.idle_timeout, defaults.idle_timeout);
        assert_eq!(serving.options.max_connections, defaults.max_connections);

        let serving = Flags::try_parse_from([
            "x",
            "--web.read-timeout=2s",
            "--web.idle-timeout=3s",
            "--web.max-connections=7",
        ])
        .expect("parses")
        .web
        .finish()
        .expect("no file");
        assert_eq!(serving.options.header_read_timeout, Duration::from_secs(2));
        assert_eq!(serving.options.idle_timeout, Duration::from_secs(3));
        assert_eq!(serving.options.max_connections, 7);
    }

    #[test]
    fn zero_limits_and_a_missing_file_are_errors() {
        for bad in ["--web.read-timeout=0s", "--web.max-connections=0"] {
            assert!(Flags::try_parse_from(["x", bad]).is_err(), "{bad}");
        }
        let error = Flags::try_parse_from(["x", "--web.config.file=/nonexistent/web.yml"])
            .expect("parses")
            .web
            .finish()
            .expect_err("no such file");
        let message = format!("{error:#}");
        assert!(message.contains("--web.config.file"), "{message}");
        assert!(message.contains("/nonexistent/web.yml"), "{message}");
    }
}

//! Command-line flags as typed by the user, and their conversion into finished
//! configurations that the components trust.

mod agent;
mod demo;
mod demo_app;
mod discovery;
mod exporter;
mod health;
mod serving;
mod simulate;

pub use agent::AgentFlags;
pub use demo::DemoFlags;
pub use demo_app::DemoAppFlags;
pub use discovery::DiscoveryFlags;
pub use exporter::ExporterFlags;
pub use health::HealthFlags;
pub use simulate::SimulateFlags;

use crate::env_vars;
use clap::{Parser, Subcommand, ValueEnum};
use std::time::Duration;

/// Prometheus metrics for Amazon ECS.
#[derive(Debug, Parser)]
#[command(name = "ecs-prom", version, about, propagate_version = true)]
pub struct Cli {
    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", env = env_vars::LOG_LEVEL, default_value = "info", global = true, value_enum)]
    pub log_level: LogLevel,
    /// Output format of log messages.
    #[arg(long = "log.format", env = env_vars::LOG_FORMAT, default_value = "logfmt", global = true, value_enum)]
    pub log_format: LogFormat,
    /// The component to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The components.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve Prometheus metrics for an ECS task from the Task Metadata Endpoint v4
    /// (a drop-in replacement for ecs_exporter).
    Exporter(ExporterFlags),
    /// Serve a local ECS Task Metadata Endpoint v4 with simulated tasks whose numbers move,
    /// for trying ecs-prom without AWS.
    Simulate(SimulateFlags),
    /// Run the instrumented demo web application, with its built-in load generator (traces go
    /// to $OTEL_EXPORTER_OTLP_ENDPOINT when it is set).
    DemoApp(DemoAppFlags),
    /// Run the whole pipeline locally: simulated ECS tasks, each with a demo app and an
    /// exporter sidecar, optionally a real Prometheus, and a live summary.
    Demo(DemoFlags),
    /// Find scrape targets in AWS Cloud Map and the ECS API and serve them to Prometheus
    /// (file_sd and http_sd); optionally keep Prometheus' configuration from SSM.
    Discovery(Box<DiscoveryFlags>),
    /// Scrape Prometheus targets and remote-write their samples (signed with SigV4 for Amazon
    /// Managed Service for Prometheus), through a durable queue on disk; configured with a
    /// Prometheus configuration file.
    Agent(AgentFlags),
    /// Check that an ecs-prom component (or any HTTP endpoint) answers: exits 0 on a 2xx reply,
    /// 1 otherwise. For container health checks in images without curl or a shell.
    Health(HealthFlags),
}

/// Log severities.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogLevel {
    /// Everything, including per-request detail.
    Debug,
    /// Normal operation.
    Info,
    /// Problems that do not stop the program.
    Warn,
    /// Failures only.
    Error,
}

/// Log formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs, one event per line.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// Parses a rate: a number from 0 to 100000.
pub(crate) fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (0.0..=100_000.0).contains(&rate) => Ok(rate),
        _ => Err(format!("{text:?} is not a rate from 0 to 100000")),
    }
}

/// Parses a Prometheus-style duration: one or more `<integer><unit>` parts with units
/// `ms`, `s`, `m`, `h` (`500ms`, `5s`, `1m30s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid =
        || format!("invalid duration {text:?}: use a number and a unit, like 500ms, 5s or 1m30s");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        let value: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value.saturating_mul(60)),
            "h" => Duration::from_secs(value.saturating_mul(3600)),
            _ => return Err(invalid()),
        };
        total = total.saturating_add(part);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::collections::HashMap;

    fn exporter_flags(args: &[&str]) -> ExporterFlags {
        let mut argv = vec!["ecs-prom", "exporter"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).expect("valid flags").command {
            Command::Exporter(flags) => flags,
            Command::Simulate(_)
            | Command::DemoApp(_)
            | Command::Demo(_)
            | Command::Discovery(_)
            | Command::Health(_)
            | Command::Agent(_) => {
                panic!("parsed an exporter command line")
            }
        }
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| map.get(key).cloned()
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn metadata_uri_comes_from_the_flag_then_v4_then_v3() {
        let v3 = env_of(&[(env_vars::ECS_METADATA_URI_V3, "http://v3")]);
        let both = env_of(&[
            (env_vars::ECS_METADATA_URI_V4, "http://v4"),
            (env_vars::ECS_METADATA_URI_V3, "http://v3"),
        ]);
        assert_eq!(
            exporter_flags(&[]).finish(&v3).expect("v3").metadata_url,
            "http://v3"
        );
        assert_eq!(
            exporter_flags(&[]).finish(&both).expect("v4").metadata_url,
            "http://v4"
        );
        let flag = exporter_flags(&["--ecs.metadata-uri", "http://flag"])
            .finish(&both)
            .expect("flag");
        assert_eq!(flag.metadata_url, "http://flag");
        let empty_v4 = env_of(&[
            (env_vars::ECS_METADATA_URI_V4, ""),
            (env_vars::ECS_METADATA_URI_V3, "http://v3"),
        ]);
        assert_eq!(
            exporter_flags(&[])
                .finish(&empty_v4)
                .expect("v3")
                .metadata_url,
            "http://v3"
        );
        let error = exporter_flags(&[])
            .finish(env_of(&[]))
            .expect_err("nothing set");
        assert!(
            format!("{error:#}").contains("ECS_CONTAINER_METADATA_URI_V4"),
            "{error:#}"
        );
    }

    #[test]
    fn defaults_match_ecs_exporter() {
        let flags = exporter_flags(&[]);
        assert_eq!(
            web::listen_addresses(&flags.listen_address),
            ["[::]:9779", "0.0.0.0:9779"]
        );
        assert_eq!(web::listen_addresses("127.0.0.1:9"), ["127.0.0.1:9"]);
        let config = flags
            .finish(env_of(&[(env_vars::ECS_METADATA_URI_V4, "http://x")]))
            .expect("ok");
        assert_eq!(config.telemetry_path, "/metrics");
        assert_eq!(config.timeout, Duration::from_secs(5));
        assert!(config.process_metrics);
        assert_eq!(config.scope, ecs_exporter::Scope::Task);
    }

    #[test]
    fn rejects_telemetry_paths_that_clash() {
        for path in [
            "metrics", "/", "/-/ready", "/m{x}", "/m/*rest", "/a b", "/m?x=1",
        ] {
            let flags = exporter_flags(&["--web.telemetry-path", path]);
            assert!(
                flags
                    .finish(env_of(&[(env_vars::ECS_METADATA_URI_V4, "http://x")]))
                    .is_err(),
                "{path}"
            );
        }
    }

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(args).expect("valid flags").command
    }

    #[test]
    fn demo_app_flag_defaults_are_the_application_defaults() {
        let Command::DemoApp(flags) = parse(&["ecs-prom", "demo-app"]) else {
            panic!("parsed a demo-app command line")
        };
        let from_flags = flags.finish(env_of(&[]));
        let default = ::demo_app::Config::default();
        assert_eq!(from_flags.work_median, default.work_median);
        assert_eq!(from_flags.work_p99, default.work_p99);
        assert_eq!(from_flags.external_url, default.external_url);
        assert_eq!(from_flags.external_timeout, default.external_timeout);
        assert_eq!(
            from_flags.load_requests_per_second,
            default.load_requests_per_second
        );
        assert_eq!(from_flags.load_concurrency, default.load_concurrency);
        assert_eq!(from_flags.instrumentation, default.instrumentation);
        assert!(from_flags.otlp.is_none() && default.otlp.is_none());
    }

    #[test]
    fn demo_summary_format_follows_the_terminal_unless_given() {
        let demo = |args: &[&str], terminal: bool| {
            let mut argv = vec!["ecs-prom", "demo"];
            argv.extend_from_slice(args);
            let Command::Demo(flags) = parse(&argv) else {
                panic!("parsed a demo command line")
            };
            flags.finish(terminal, env_of(&[])).expect("valid")
        };
        use ::demo::Style;
        assert_eq!(demo(&[], true).style, Style::Table);
        assert_eq!(demo(&[], false).style, Style::Lines);
        assert_eq!(
            demo(&["--summary.format", "lines"], true).style,
            Style::Lines
        );
        let config = demo(&["--prometheus", "--tasks", "2", "--duration", "1m"], false);
        assert_eq!(config.cluster.tasks, 2);
        assert_eq!(config.duration, Some(Duration::from_secs(60)));
        let prometheus = config.prometheus.expect("asked for");
        assert_eq!(prometheus.listen_address, "127.0.0.1:9090");
        assert_eq!(prometheus.scrape_interval, Duration::from_secs(5));
        assert!(demo(&[], false).prometheus.is_none());
    }

    fn discovery(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<::discovery::Config> {
        let mut argv = vec!["ecs-prom", "discovery"];
        argv.extend_from_slice(args);
        let Command::Discovery(flags) = parse(&argv) else {
            panic!("parsed a discovery command line")
        };
        flags.finish(env_of(env))
    }

    #[test]
    fn the_seed_sidecars_variables_give_its_behaviour() {
        use ::discovery::Namespaces;
        let seed = discovery(
            &[],
            &[
                ("SERVICE_DISCOVERY_MODE", "FILE_BASED"),
                ("CONFIG_FILE_DIR", "/etc/prom/"),
                ("CONFIG_RELOAD_FREQUENCY", "60"),
            ],
        )
        .expect("seed mode");
        assert_eq!(
            seed.namespaces,
            Namespaces::Parameter("ECS-ServiceDiscovery-Namespaces".into())
        );
        assert_eq!(
            seed.output_file.as_deref(),
            Some(std::path::Path::new("/etc/prom/ecs-services.json"))
        );
        assert_eq!(seed.refresh_interval, Duration::from_secs(60));
        let prometheus = seed.prometheus_config.expect("the seed's config role");
        assert_eq!(prometheus.parameter, "ECS-Prometheus-Configuration");
        assert_eq!(
            prometheus.file,
            std::path::Path::new("/etc/prom/prometheus.yaml")
        );
        assert_eq!(
            prometheus.reload_url.as_deref(),
            Some("http://localhost:9090")
        );

        let http = discovery(
            &[],
            &[
                ("SERVICE_DISCOVERY_MODE", "HTTP_BASED"),
                ("DISCOVERY_NAMESPACES_PARAMETER_NAME", "my-namespaces"),
                ("PROMETHEUS_CONFIG_PARAMETER_NAME", "my-config"),
            ],
        )
        .expect("seed http mode");
        assert_eq!(http.output_file, None);
        assert_eq!(
            http.namespaces,
            Namespaces::Parameter("my-namespaces".into())
        );
        assert_eq!(http.prometheus_config.expect("set").parameter, "my-config");
        assert_eq!(http.refresh_interval, Duration::from_secs(30));

        // Flags win over the seed's variables.
        let flags = discovery(
            &["--refresh.interval", "5s", "--output.file", "/tmp/t.json"],
            &[
                ("SERVICE_DISCOVERY_MODE", "FILE_BASED"),
                ("CONFIG_RELOAD_FREQUENCY", "60"),
            ],
        )
        .expect("flags");
        assert_eq!(flags.refresh_interval, Duration::from_secs(5));
        assert_eq!(
            flags.output_file.as_deref(),
            Some(std::path::Path::new("/tmp/t.json"))
        );
    }

    #[test]
    fn discovery_without_seed_variables_needs_a_source_and_adds_nothing() {
        use ::discovery::Namespaces;
        let error = discovery(&[], &[]).expect_err("no source");
        assert!(
            format!("{error:#}").contains("nothing to discover"),
            "{error:#}"
        );
        let plain =
            discovery(&["--ecs.cluster", "prod", "--ecs.cluster", "batch"], &[]).expect("clusters");
        assert_eq!(plain.clusters, ["prod", "batch"]);
        assert_eq!(plain.namespaces, Namespaces::None);
        assert!(plain.prometheus_config.is_none() && plain.output_file.is_none());
        let named = discovery(
            &["--cloudmap.namespace", "a", "--cloudmap.namespace", "b"],
            &[],
        )
        .expect("names");
        assert_eq!(
            named.namespaces,
            Namespaces::Fixed(vec!["a".into(), "b".into()])
        );
        for (args, env) in [
            (
                vec![
                    "--cloudmap.namespace",
                    "a",
                    "--cloudmap.namespaces-parameter",
                    "p",
                ],
                vec![],
            ),
            (
                vec!["--ecs.cluster", "c"],
                vec![("SERVICE_DISCOVERY_MODE", "FILES")],
            ),
            (
                vec!["--ecs.cluster", "c"],
                vec![("CONFIG_RELOAD_FREQUENCY", "1m")],
            ),
        ] {
            assert!(discovery(&args, &env).is_err(), "{args:?} {env:?}");
        }
    }

    #[test]
    fn parses_prometheus_durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "5", "s", "5x", "-1s", "1.5s", "5 s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}

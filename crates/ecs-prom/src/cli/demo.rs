//! `ecs-prom demo`: its flags and the finished demo configuration.

use super::{parse_duration, parse_rate};
use crate::env_vars;
use anyhow::bail;
use clap::{Args, ValueEnum};
use std::time::Duration;

/// `ecs-prom demo` flags.
#[derive(Debug, Args)]
pub struct DemoFlags {
    /// Number of simulated tasks (they cycle through Fargate, EC2 bridge and Managed Instances).
    #[arg(long = "tasks", env = env_vars::DEMO_TASKS, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub tasks: u16,
    /// Seed of every simulated number.
    #[arg(long = "seed", env = env_vars::DEMO_SEED, default_value_t = 1)]
    pub seed: u64,
    /// Stop after this long [default: run until Ctrl-C or SIGTERM].
    #[arg(long = "duration", env = env_vars::DEMO_DURATION, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Requests per second each task's load generator sends to its demo app.
    #[arg(long = "load.rps", env = env_vars::DEMO_LOAD_RPS, default_value_t = 5.0, value_parser = parse_rate)]
    pub load_rps: f64,
    /// How often the live summary is written.
    #[arg(long = "summary.interval", env = env_vars::DEMO_SUMMARY_INTERVAL, default_value = "5s", value_parser = parse_duration)]
    pub summary_interval: Duration,
    /// How the summary is written: a table redrawn in place, or key=value lines [default: table on a terminal, else lines].
    #[arg(long = "summary.format", env = env_vars::DEMO_SUMMARY_FORMAT, value_enum)]
    pub summary_format: Option<SummaryFormat>,
    /// Also start a real Prometheus that scrapes every target (needs the prometheus binary).
    #[arg(
        long = "prometheus",
        env = env_vars::DEMO_PROMETHEUS,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub prometheus: bool,
    /// Address of that Prometheus' web UI and API.
    #[arg(long = "prometheus.listen-address", env = env_vars::DEMO_PROMETHEUS_LISTEN_ADDRESS, default_value = "127.0.0.1:9090")]
    pub prometheus_listen_address: String,
    /// The Prometheus executable.
    #[arg(long = "prometheus.binary", env = env_vars::DEMO_PROMETHEUS_BINARY, default_value = "prometheus")]
    pub prometheus_binary: std::path::PathBuf,
    /// How often that Prometheus scrapes.
    #[arg(long = "prometheus.scrape-interval", env = env_vars::DEMO_PROMETHEUS_SCRAPE_INTERVAL, default_value = "5s", value_parser = parse_duration)]
    pub prometheus_scrape_interval: Duration,
    /// Register the tasks in the Cloud Map of a local moto_server (which the demo starts) and let
    /// `ecs-prom discovery` find them there and write the targets Prometheus reads.
    #[arg(
        long = "discovery",
        env = env_vars::DEMO_DISCOVERY,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub discovery: bool,
    /// Give every task an ecs-prom agent sidecar in task mode that remote-writes its app's and its ECS metrics into the demo's Prometheus (needs --prometheus, not with --discovery). Prometheus then scrapes only the agents' own metrics.
    #[arg(
        long = "agent",
        env = env_vars::DEMO_AGENT,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub agent: bool,
    /// The moto_server executable (PyPI `moto[server]`).
    #[arg(long = "discovery.moto-binary", env = env_vars::DEMO_DISCOVERY_MOTO_BINARY, default_value = "moto_server")]
    pub discovery_moto_binary: std::path::PathBuf,
    /// Time between discovery's refreshes.
    #[arg(long = "discovery.refresh-interval", env = env_vars::DEMO_DISCOVERY_REFRESH_INTERVAL, default_value = "5s", value_parser = parse_duration)]
    pub discovery_refresh_interval: Duration,
}

/// Summary formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    /// A table, redrawn in place.
    Table,
    /// One key=value line per task per update.
    Lines,
}

impl DemoFlags {
    /// The finished demo configuration. `terminal` says whether standard output is a
    /// terminal (the summary's default format); `env` reads the OpenTelemetry variables for
    /// the demo apps.
    pub fn finish(
        self,
        terminal: bool,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<demo::Config> {
        if self.summary_interval.is_zero() {
            bail!("--summary.interval must be longer than zero");
        }
        if self.prometheus_scrape_interval < Duration::from_secs(1) {
            bail!("--prometheus.scrape-interval must be at least 1s");
        }
        if self.discovery_refresh_interval < Duration::from_secs(1) {
            bail!("--discovery.refresh-interval must be at least 1s");
        }
        if self.agent && !self.prometheus {
            bail!("--agent: the agents remote-write into the demo's Prometheus: add --prometheus");
        }
        if self.agent && self.discovery {
            bail!("--agent and --discovery are two ways to find the tasks: choose one");
        }
        let style = match self.summary_format {
            Some(SummaryFormat::Table) => demo::Style::Table,
            Some(SummaryFormat::Lines) => demo::Style::Lines,
            None if terminal => demo::Style::Table,
            None => demo::Style::Lines,
        };
        let app = demo_app::Config {
            load_requests_per_second: self.load_rps,
            otlp: demo_app::OtlpConfig::from_env(env),
            ..demo_app::Config::default()
        };
        Ok(demo::Config {
            cluster: demo::ClusterConfig {
                tasks: usize::from(self.tasks),
                seed: self.seed,
                app,
                agents: None,
            },
            prometheus: self.prometheus.then_some(demo::PrometheusConfig {
                binary: self.prometheus_binary,
                listen_address: self.prometheus_listen_address,
                scrape_interval: self.prometheus_scrape_interval,
                remote_write_receiver: self.agent,
            }),
            discovery: self.discovery.then_some(demo::DiscoveryConfig {
                moto_binary: self.discovery_moto_binary,
                refresh_interval: self.discovery_refresh_interval,
            }),
            duration: self.duration,
            summary_interval: self.summary_interval,
            style,
            agent: self.agent,
        })
    }
}

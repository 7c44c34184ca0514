//! Command-line flags as typed by the user, and their conversion into finished
//! configurations that the components trust.

use crate::env_vars;
use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
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
    /// Check that an ecs-prom component (or any HTTP endpoint) answers: exits 0 on a 2xx reply,
    /// 1 otherwise. For container health checks in images without curl or a shell.
    Health(HealthFlags),
}

/// `ecs-prom health` flags.
#[derive(Debug, Args)]
pub struct HealthFlags {
    /// The URL to GET (plain http).
    #[arg(long = "url", env = env_vars::HEALTH_URL, default_value = "http://127.0.0.1:9779/-/healthy")]
    pub url: String,
    /// How long to wait for the whole answer.
    #[arg(long = "timeout", env = env_vars::HEALTH_TIMEOUT, default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `ecs-prom discovery` flags.
#[derive(Debug, Args)]
pub struct DiscoveryFlags {
    /// Address to serve http_sd (/prometheus-targets), /metrics and the status page on.
    #[arg(long = "web.listen-address", env = env_vars::DISCOVERY_LISTEN_ADDRESS, default_value = ":9001")]
    pub listen_address: String,
    /// Cloud Map namespace to discover, by name (repeatable; any namespace type).
    #[arg(long = "cloudmap.namespace", env = env_vars::DISCOVERY_NAMESPACES, value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// SSM parameter holding comma-separated namespace names, re-read every refresh [seed: $DISCOVERY_NAMESPACES_PARAMETER_NAME, default ECS-ServiceDiscovery-Namespaces in seed mode].
    #[arg(long = "cloudmap.namespaces-parameter", env = env_vars::DISCOVERY_NAMESPACES_PARAMETER)]
    pub namespaces_parameter: Option<String>,
    /// ECS cluster to discover, by name or ARN (repeatable): containers with a PROMETHEUS_EXPORTER_PORT docker label become targets.
    #[arg(long = "ecs.cluster", env = env_vars::DISCOVERY_CLUSTERS, value_delimiter = ',')]
    pub clusters: Vec<String>,
    /// How long a container instance's private address is cached (bridge and host mode).
    #[arg(long = "ecs.container-instance-ttl", env = env_vars::DISCOVERY_CONTAINER_INSTANCE_TTL, default_value = "10m", value_parser = parse_duration)]
    pub container_instance_ttl: Duration,
    /// Most ECS API requests per second (the account's budget is about 20, shared with everything else).
    #[arg(long = "ecs.requests-per-second", env = env_vars::DISCOVERY_ECS_RATE, default_value_t = 10.0, value_parser = parse_positive_rate)]
    pub ecs_requests_per_second: f64,
    /// file_sd file to write (atomically, only on change) [seed: $CONFIG_FILE_DIR/ecs-services.json when SERVICE_DISCOVERY_MODE=FILE_BASED].
    #[arg(long = "output.file", env = env_vars::DISCOVERY_OUTPUT_FILE)]
    pub output_file: Option<std::path::PathBuf>,
    /// Where each source's last good targets are kept, so a restart while AWS fails serves them instead of nothing; "" disables [default: --output.file with ".state" appended; seed: $CONFIG_FILE_DIR/ecs-services.json.state].
    #[arg(long = "state.file", env = env_vars::DISCOVERY_STATE_FILE)]
    pub state_file: Option<std::path::PathBuf>,
    /// Time between refreshes [default: 30s; seed: $CONFIG_RELOAD_FREQUENCY seconds].
    #[arg(long = "refresh.interval", env = env_vars::DISCOVERY_REFRESH_INTERVAL, value_parser = parse_duration)]
    pub refresh_interval: Option<Duration>,
    /// How long one refresh may take: a source not done by then fails and keeps its targets [default: the refresh interval].
    #[arg(long = "refresh.timeout", env = env_vars::DISCOVERY_REFRESH_TIMEOUT, value_parser = parse_duration)]
    pub refresh_timeout: Option<Duration>,
    /// SSM parameter holding Prometheus' whole configuration, written to --prometheus.config-file when it changes [seed: $PROMETHEUS_CONFIG_PARAMETER_NAME, default ECS-Prometheus-Configuration in seed mode].
    #[arg(long = "prometheus.config-parameter", env = env_vars::DISCOVERY_CONFIG_PARAMETER)]
    pub config_parameter: Option<String>,
    /// Where the Prometheus configuration is written [default: $CONFIG_FILE_DIR/prometheus.yaml, else /etc/config/prometheus.yaml].
    #[arg(long = "prometheus.config-file", env = env_vars::DISCOVERY_CONFIG_FILE)]
    pub config_file: Option<std::path::PathBuf>,
    /// Octal mode of that file, e.g. 0640 when Prometheus runs as another user of the same group [default: 0600 for a SecureString parameter, 0644 otherwise].
    #[arg(long = "prometheus.config-file-mode", env = env_vars::DISCOVERY_CONFIG_FILE_MODE, value_parser = parse_file_mode)]
    pub config_file_mode: Option<u32>,
    /// Prometheus to send POST /-/reload to after the configuration changes (Prometheus needs its lifecycle API, web.enable-lifecycle); "" disables.
    #[arg(long = "prometheus.url", env = env_vars::DISCOVERY_PROMETHEUS_URL, default_value = "http://localhost:9090")]
    pub prometheus_url: String,
    /// AWS region [default: $AWS_REGION, $AWS_DEFAULT_REGION, the profile's, else the region of the task discovery runs in].
    #[arg(long = "aws.region", env = env_vars::DISCOVERY_REGION)]
    pub region: Option<String>,
    /// Deadline of each AWS request attempt (throttles, 5xx and timeouts are retried 3 times with backoff).
    #[arg(long = "aws.timeout", env = env_vars::DISCOVERY_AWS_TIMEOUT, default_value = "10s", value_parser = parse_duration)]
    pub aws_timeout: Duration,
    /// IAM role to assume (STS AssumeRole) with the credentials the standard chain gives; it is renewed before it expires.
    #[arg(long = "aws.role-arn", env = env_vars::DISCOVERY_AWS_ROLE_ARN)]
    pub role_arn: Option<String>,
    /// External id the role's trust policy asks for; needs --aws.role-arn.
    #[arg(long = "aws.external-id", env = env_vars::DISCOVERY_AWS_EXTERNAL_ID, requires = "role_arn")]
    pub external_id: Option<String>,
    /// Session name of the assumed role, seen in CloudTrail; needs --aws.role-arn [default: ecs-prom-<unix time>].
    #[arg(long = "aws.role-session-name", env = env_vars::DISCOVERY_AWS_ROLE_SESSION_NAME, requires = "role_arn")]
    pub role_session_name: Option<String>,
    /// Run one refresh, write the output, print a summary and exit (non-zero if a source failed).
    #[arg(long = "once", action = clap::ArgAction::SetTrue)]
    pub once: bool,
}

/// The seed sidecar's default parameter names and directory.
mod seed_defaults {
    pub const NAMESPACES_PARAMETER: &str = "ECS-ServiceDiscovery-Namespaces";
    pub const CONFIG_PARAMETER: &str = "ECS-Prometheus-Configuration";
    pub const CONFIG_FILE_DIR: &str = "/etc/config/";
}

impl DiscoveryFlags {
    /// The role `--aws.role-arn` asks to assume on top of the standard credentials chain.
    pub fn aws_role(&self) -> Option<aws_api::RoleSettings> {
        let role_arn = self.role_arn.as_deref().map(str::trim)?;
        (!role_arn.is_empty()).then(|| aws_api::RoleSettings {
            role_arn: role_arn.to_owned(),
            external_id: self.external_id.clone().filter(|id| !id.is_empty()),
            session_name: self.role_session_name.clone().filter(|n| !n.is_empty()),
            duration_seconds: None,
        })
    }

    /// The finished discovery configuration: flags, then ecs-prom's variables (through clap),
    /// then the seed sidecar's variables read through `env`, then defaults.
    pub fn finish(self, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<discovery::Config> {
        use env_vars::seed;
        let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let seed_mode = match get(seed::SERVICE_DISCOVERY_MODE).as_deref() {
            None => None,
            Some(mode) if mode.eq_ignore_ascii_case("FILE_BASED") => Some(true),
            Some(mode) if mode.eq_ignore_ascii_case("HTTP_BASED") => Some(false),
            Some(other) => bail!(
                "{}={other:?}: use FILE_BASED or HTTP_BASED",
                seed::SERVICE_DISCOVERY_MODE
            ),
        };
        let config_dir = std::path::PathBuf::from(
            get(seed::CONFIG_FILE_DIR).unwrap_or_else(|| seed_defaults::CONFIG_FILE_DIR.to_owned()),
        );
        let namespaces_parameter = self
            .namespaces_parameter
            .or_else(|| get(seed::DISCOVERY_NAMESPACES_PARAMETER_NAME))
            .or_else(|| {
                (seed_mode.is_some() && self.namespaces.is_empty())
                    .then(|| seed_defaults::NAMESPACES_PARAMETER.to_owned())
            });
        let namespaces: Vec<String> = self
            .namespaces
            .iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        let namespaces = match (namespaces.is_empty(), namespaces_parameter) {
            (false, Some(parameter)) => bail!(
                "give Cloud Map namespaces either by name (--cloudmap.namespace) or through an SSM parameter                  (--cloudmap.namespaces-parameter {parameter:?}), not both"
            ),
            (false, None) => discovery::refresh::Namespaces::Fixed(namespaces),
            (true, Some(parameter)) => discovery::refresh::Namespaces::Parameter(parameter),
            (true, None) => discovery::refresh::Namespaces::None,
        };
        let clusters: Vec<String> = self
            .clusters
            .iter()
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect();
        if namespaces == discovery::refresh::Namespaces::None && clusters.is_empty() {
            bail!(
                "nothing to discover: give --cloudmap.namespace, --cloudmap.namespaces-parameter or --ecs.cluster                  (or the seed's SERVICE_DISCOVERY_MODE variables)"
            );
        }
        let refresh_interval = match (self.refresh_interval, get(seed::CONFIG_RELOAD_FREQUENCY)) {
            (Some(interval), _) => interval,
            (None, Some(seconds)) => Duration::from_secs(seconds.trim().parse().map_err(|_| {
                anyhow::anyhow!(
                    "{}={seconds:?} is not a whole number of seconds",
                    seed::CONFIG_RELOAD_FREQUENCY
                )
            })?),
            (None, None) => Duration::from_secs(30),
        };
        if refresh_interval < Duration::from_secs(1) {
            bail!("the refresh interval must be at least 1s");
        }
        let refresh_timeout = self.refresh_timeout.unwrap_or(refresh_interval);
        if refresh_timeout.is_zero() {
            bail!("--refresh.timeout must be longer than zero");
        }
        let output_file = self
            .output_file
            .or_else(|| (seed_mode == Some(true)).then(|| config_dir.join("ecs-services.json")));
        let state_file = match self.state_file {
            Some(path) if path.as_os_str().is_empty() => None,
            Some(path) => Some(path),
            None => match (&output_file, seed_mode) {
                (Some(output), _) => {
                    let mut path = output.clone().into_os_string();
                    path.push(".state");
                    Some(path.into())
                }
                (None, Some(_)) => Some(config_dir.join("ecs-services.json.state")),
                (None, None) => None,
            },
        };
        let config_parameter = self
            .config_parameter
            .or_else(|| get(seed::PROMETHEUS_CONFIG_PARAMETER_NAME))
            .or_else(|| seed_mode.map(|_| seed_defaults::CONFIG_PARAMETER.to_owned()));
        let prometheus_config = config_parameter.map(|parameter| discovery::PrometheusConfig {
            parameter,
            file: self
                .config_file
                .unwrap_or_else(|| config_dir.join("prometheus.yaml")),
            reload_url: Some(self.prometheus_url.trim().to_owned()).filter(|u| !u.is_empty()),
            file_mode: self.config_file_mode,
        });
        if self.aws_timeout.is_zero() {
            bail!("--aws.timeout must be longer than zero");
        }
        Ok(discovery::Config {
            namespaces,
            clusters,
            output_file,
            state_file,
            refresh_interval,
            refresh_timeout,
            container_instance_ttl: self.container_instance_ttl,
            prometheus_config,
        })
    }
}

/// Parses an octal file mode such as `0640` (permission bits only).
fn parse_file_mode(text: &str) -> Result<u32, String> {
    let digits = text.trim();
    let digits = digits.strip_prefix("0o").unwrap_or(digits);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o777 && !digits.is_empty() => Ok(mode),
        _ => Err(format!(
            "{text:?} is not an octal file mode such as 0600 or 0640"
        )),
    }
}

/// Parses a rate above zero and at most 1000.
fn parse_positive_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= 1000.0 => Ok(rate),
        _ => Err(format!("{text:?} is not a rate above 0 and at most 1000")),
    }
}

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

/// `ecs-prom demo-app` flags.
#[derive(Debug, Args)]
pub struct DemoAppFlags {
    /// Address to listen on (`:PORT` listens on every IPv4 interface).
    #[arg(long = "web.listen-address", env = env_vars::DEMO_APP_LISTEN_ADDRESS, default_value = ":3000")]
    pub listen_address: String,
    /// Median latency of /work.
    #[arg(long = "work.latency-median", env = env_vars::DEMO_APP_WORK_MEDIAN, default_value = "40ms", value_parser = parse_duration)]
    pub work_median: Duration,
    /// 99th percentile latency of /work.
    #[arg(long = "work.latency-p99", env = env_vars::DEMO_APP_WORK_P99, default_value = "600ms", value_parser = parse_duration)]
    pub work_p99: Duration,
    /// URL that /external calls [default: the application's own /health].
    #[arg(long = "external.url", env = env_vars::DEMO_APP_EXTERNAL_URL)]
    pub external_url: Option<String>,
    /// Deadline of the /external call.
    #[arg(long = "external.timeout", env = env_vars::DEMO_APP_EXTERNAL_TIMEOUT, default_value = "2s", value_parser = parse_duration)]
    pub external_timeout: Duration,
    /// Requests per second the built-in load generator sends to the application (0: off).
    #[arg(long = "load.rps", env = env_vars::DEMO_APP_LOAD_RPS, default_value_t = 5.0, value_parser = parse_rate)]
    pub load_rps: f64,
    /// Load generator workers sending requests in parallel.
    #[arg(long = "load.concurrency", env = env_vars::DEMO_APP_LOAD_CONCURRENCY, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub load_concurrency: u16,
    /// Do not count or time requests (to measure what the instrumentation costs).
    #[arg(
        long = "instrumentation.disable",
        env = env_vars::DEMO_APP_DISABLE_INSTRUMENTATION,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub disable_instrumentation: bool,
}

impl DemoAppFlags {
    /// The finished application configuration; `env` reads the OpenTelemetry variables.
    pub fn finish(self, env: impl Fn(&str) -> Option<String>) -> demo_app::Config {
        demo_app::Config {
            work_median: self.work_median,
            work_p99: self.work_p99.max(self.work_median),
            external_url: self.external_url,
            external_timeout: self.external_timeout,
            load_requests_per_second: self.load_rps,
            load_concurrency: usize::from(self.load_concurrency),
            instrumentation: !self.disable_instrumentation,
            otlp: demo_app::otlp::OtlpConfig::from_env(env),
        }
    }
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
        let style = match self.summary_format {
            Some(SummaryFormat::Table) => demo::summary::Style::Table,
            Some(SummaryFormat::Lines) => demo::summary::Style::Lines,
            None if terminal => demo::summary::Style::Table,
            None => demo::summary::Style::Lines,
        };
        let app = demo_app::Config {
            load_requests_per_second: self.load_rps,
            otlp: demo_app::otlp::OtlpConfig::from_env(env),
            ..demo_app::Config::default()
        };
        Ok(demo::Config {
            cluster: demo::cluster::ClusterConfig {
                tasks: usize::from(self.tasks),
                seed: self.seed,
                app,
            },
            prometheus: self
                .prometheus
                .then_some(demo::prometheus::PrometheusConfig {
                    binary: self.prometheus_binary,
                    listen_address: self.prometheus_listen_address,
                    scrape_interval: self.prometheus_scrape_interval,
                }),
            discovery: self
                .discovery
                .then_some(demo::local_discovery::DiscoveryConfig {
                    moto_binary: self.discovery_moto_binary,
                    refresh_interval: self.discovery_refresh_interval,
                }),
            duration: self.duration,
            summary_interval: self.summary_interval,
            style,
        })
    }
}

/// Parses a rate: a number from 0 to 100000.
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (0.0..=100_000.0).contains(&rate) => Ok(rate),
        _ => Err(format!("{text:?} is not a rate from 0 to 100000")),
    }
}

/// `ecs-prom simulate` flags.
#[derive(Debug, Args)]
pub struct SimulateFlags {
    /// Address to listen on.
    #[arg(long = "web.listen-address", env = env_vars::SIMULATE_LISTEN_ADDRESS, default_value = "127.0.0.1:8912")]
    pub listen_address: String,
    /// Number of simulated tasks (they cycle through Fargate, EC2 bridge and Managed Instances).
    #[arg(long = "tasks", env = env_vars::SIMULATE_TASKS, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub tasks: u16,
    /// Seed of every simulated number: the same seed gives the same values.
    #[arg(long = "seed", env = env_vars::SIMULATE_SEED, default_value_t = 1)]
    pub seed: u64,
    /// Delay added to every metadata response.
    #[arg(long = "fault.latency", env = env_vars::SIMULATE_FAULT_LATENCY, default_value = "0s", value_parser = parse_duration)]
    pub fault_latency: Duration,
    /// Share of metadata requests answered with HTTP 500, from 0 to 1.
    #[arg(long = "fault.error-rate", env = env_vars::SIMULATE_FAULT_ERROR_RATE, default_value_t = 0.0, value_parser = parse_share)]
    pub fault_error_rate: f64,
    /// Share of metadata requests answered with a truncated JSON body, from 0 to 1.
    #[arg(long = "fault.malformed-rate", env = env_vars::SIMULATE_FAULT_MALFORMED_RATE, default_value_t = 0.0, value_parser = parse_share)]
    pub fault_malformed_rate: f64,
}

/// Parses a share from 0 to 1.
fn parse_share(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(share) if (0.0..=1.0).contains(&share) => Ok(share),
        _ => Err(format!("{text:?} is not a number from 0 to 1")),
    }
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

/// Which tasks the exporter reports on.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScopeFlag {
    /// The task the exporter runs in (/task, /task/stats).
    Task,
    /// Every task on the ECS Managed Instances host (/tasks, /tasks/stats); adds task_arn labels.
    Instance,
}

/// `ecs-prom exporter` flags.
#[derive(Debug, Args)]
pub struct ExporterFlags {
    /// Address to listen on for scrapes (`:PORT` listens on every IPv4 interface).
    #[arg(long = "web.listen-address", env = env_vars::EXPORTER_LISTEN_ADDRESS, default_value = ":9779")]
    pub listen_address: String,
    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", env = env_vars::EXPORTER_TELEMETRY_PATH, default_value = "/metrics")]
    pub telemetry_path: String,
    /// Leave out the process_* metrics about the exporter itself.
    #[arg(
        long = "web.disable-exporter-metrics",
        env = env_vars::EXPORTER_DISABLE_EXPORTER_METRICS,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub disable_exporter_metrics: bool,
    /// Base URL of the Task Metadata Endpoint [default: $ECS_CONTAINER_METADATA_URI_V4, else $ECS_CONTAINER_METADATA_URI].
    #[arg(long = "ecs.metadata-uri", env = env_vars::EXPORTER_METADATA_URI)]
    pub metadata_uri: Option<String>,
    /// Which tasks to report on.
    #[arg(long = "ecs.scope", env = env_vars::EXPORTER_SCOPE, default_value = "task", value_enum)]
    pub scope: ScopeFlag,
    /// Not supported (TLS and basic auth, as in exporter-toolkit): given, the exporter exits with an explanation.
    #[arg(long = "web.config.file")]
    pub web_config_file: Option<String>,
    /// Deadline of each request to the metadata endpoint (below Prometheus' 10s scrape timeout).
    #[arg(long = "ecs.timeout", env = env_vars::EXPORTER_TIMEOUT, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

impl ExporterFlags {
    /// The finished exporter configuration and the address to listen on. `env` reads an
    /// environment variable (the real environment, or a map in tests).
    pub fn finish(
        self,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<ecs_exporter::Config> {
        if let Some(file) = &self.web_config_file {
            bail!(
                "--web.config.file {file:?}: TLS and basic auth are not supported by ecs-prom exporter; \
                 serve it on the task's private address or behind a proxy that terminates TLS"
            );
        }
        // An empty variable (common in templated task definitions) does not hide the next one.
        let metadata_url = [
            self.metadata_uri,
            env(env_vars::ECS_METADATA_URI_V4),
            env(env_vars::ECS_METADATA_URI_V3),
        ]
        .into_iter()
        .flatten()
        .find(|url| !url.trim().is_empty())
        .with_context(|| {
                format!(
                    "no task metadata endpoint: {} is not set (ecs-prom exporter must run inside an ECS task), \
                     and neither --ecs.metadata-uri nor {} was given",
                    env_vars::ECS_METADATA_URI_V4,
                    env_vars::EXPORTER_METADATA_URI
                )
            })?;
        if !self.telemetry_path.starts_with('/') || self.telemetry_path.len() < 2 {
            bail!(
                "--web.telemetry-path must start with '/' and name a path, got {:?}",
                self.telemetry_path
            );
        }
        if let Some(bad) = self
            .telemetry_path
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "/-._~".contains(*c)))
        {
            bail!(
                "--web.telemetry-path {:?} may not contain {bad:?}",
                self.telemetry_path
            );
        }
        if ["/", "/-/healthy", "/-/ready", "/health"].contains(&self.telemetry_path.as_str()) {
            bail!(
                "--web.telemetry-path {:?} is taken by another endpoint",
                self.telemetry_path
            );
        }
        if self.timeout.is_zero() {
            bail!("--ecs.timeout must be longer than zero");
        }
        let config = ecs_exporter::Config {
            metadata_url,
            scope: match self.scope {
                ScopeFlag::Task => ecs_exporter::Scope::Task,
                ScopeFlag::Instance => ecs_exporter::Scope::Instance,
            },
            timeout: self.timeout,
            telemetry_path: self.telemetry_path,
            process_metrics: !self.disable_exporter_metrics,
        };
        Ok(config)
    }
}

/// The addresses to try, in order, for a `--web.listen-address`: `:9779` means every
/// interface, IPv6 (dual-stack) first and IPv4 where IPv6 is disabled, as Go programs do;
/// anything else is used as given.
pub fn listen_addresses(flag: &str) -> Vec<String> {
    match flag.strip_prefix(':') {
        Some(port) => vec![format!("[::]:{port}"), format!("0.0.0.0:{port}")],
        None => vec![flag.to_owned()],
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
            | Command::Health(_) => {
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
            listen_addresses(&flags.listen_address),
            ["[::]:9779", "0.0.0.0:9779"]
        );
        assert_eq!(listen_addresses("127.0.0.1:9"), ["127.0.0.1:9"]);
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
        let default = demo_app::Config::default();
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
        use demo::summary::Style;
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

    fn discovery(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<discovery::Config> {
        let mut argv = vec!["ecs-prom", "discovery"];
        argv.extend_from_slice(args);
        let Command::Discovery(flags) = parse(&argv) else {
            panic!("parsed a discovery command line")
        };
        flags.finish(env_of(env))
    }

    #[test]
    fn the_seed_sidecars_variables_give_its_behaviour() {
        use discovery::refresh::Namespaces;
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
        use discovery::refresh::Namespaces;
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

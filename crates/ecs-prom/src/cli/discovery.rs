//! `ecs-prom discovery`: its flags, the seed sidecar's variables, and the finished
//! discovery configuration.

use super::parse_duration;
use crate::env_vars;
use anyhow::bail;
use clap::Args;
use std::time::Duration;

/// `ecs-prom discovery` flags.
#[derive(Debug, Args)]
pub struct DiscoveryFlags {
    /// Address to serve http_sd (/prometheus-targets), /metrics and the status page on.
    #[arg(long = "web.listen-address", env = env_vars::DISCOVERY_LISTEN_ADDRESS, default_value = ":9001")]
    pub listen_address: String,
    /// Web configuration file and connection limits.
    #[command(flatten)]
    pub web: super::serving::DiscoveryWebFlags,
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
                "give Cloud Map namespaces either by name (--cloudmap.namespace) or through an SSM parameter (--cloudmap.namespaces-parameter {parameter:?}), not both"
            ),
            (false, None) => discovery::Namespaces::Fixed(namespaces),
            (true, Some(parameter)) => discovery::Namespaces::Parameter(parameter),
            (true, None) => discovery::Namespaces::None,
        };
        let clusters: Vec<String> = self
            .clusters
            .iter()
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty())
            .collect();
        if namespaces == discovery::Namespaces::None && clusters.is_empty() {
            bail!(
                "nothing to discover: give --cloudmap.namespace, --cloudmap.namespaces-parameter or --ecs.cluster (or the seed's SERVICE_DISCOVERY_MODE variables)"
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

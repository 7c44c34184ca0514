//! `ecs-prom agent`: its flags and the finished agent options.

use crate::env_vars;
use clap::Args;
use std::path::PathBuf;

/// `ecs-prom agent` flags.
#[derive(Debug, Args)]
pub struct AgentFlags {
    /// Prometheus configuration file: `global`, `scrape_configs` and `remote_write` (see docs/agent.md for the supported subset).
    #[arg(long = "config.file", env = env_vars::AGENT_CONFIG_FILE, value_name = "FILE", default_value = "prometheus.yml")]
    pub config_file: PathBuf,
    /// Directory of the remote-write queues (one subdirectory per remote); put it on a volume to keep samples across restarts.
    #[arg(long = "storage.path", env = env_vars::AGENT_STORAGE_PATH, value_name = "DIR", default_value = "data-agent/")]
    pub storage_path: PathBuf,
    /// Disk the queues may use together (shared evenly between remotes); beyond it the oldest samples are dropped and counted.
    #[arg(long = "storage.max-bytes", env = env_vars::AGENT_STORAGE_MAX_BYTES, value_name = "SIZE", default_value = "1GB", value_parser = parse_size)]
    pub storage_max_bytes: u64,
    /// Judge OpenMetrics bodies by the specification rather than as Prometheus 2.42 does (which accepts some invalid ones): a way to find what is wrong with an exporter.
    #[arg(
        long = "scrape.openmetrics-strict",
        env = env_vars::AGENT_OPENMETRICS_STRICT,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub openmetrics_strict: bool,
    /// Address to listen on for /metrics, /-/healthy, /-/ready, /-/reload and the status page.
    #[arg(long = "web.listen-address", env = env_vars::AGENT_LISTEN_ADDRESS, default_value = ":9780")]
    pub listen_address: String,
    /// Web configuration file and connection limits.
    #[command(flatten)]
    pub web: super::serving::AgentWebFlags,
}

/// A byte size in Prometheus' units (`512MB`, `1GB`; powers of 1024), above zero.
fn parse_size(text: &str) -> Result<u64, String> {
    match agent::parse_byte_size(text) {
        Ok(bytes) if bytes > 0 => Ok(bytes.unsigned_abs()),
        Ok(_) => Err(format!("{text:?}: the size must be above zero")),
        Err(error) => Err(error),
    }
}

impl AgentFlags {
    /// The finished options.
    pub fn finish(self) -> agent::AgentOptions {
        agent::AgentOptions {
            config_file: self.config_file,
            storage: agent::StorageOptions {
                path: self.storage_path,
                max_bytes: self.storage_max_bytes,
            },
            strictness: if self.openmetrics_strict {
                agent::Strictness::Specification
            } else {
                agent::Strictness::Prometheus
            },
        }
    }
}

//! `ecs-prom agent`: its flags and the finished agent options.

use super::parse_duration;
use crate::env_vars;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// The configuration file when none is named.
const DEFAULT_CONFIG_FILE: &str = "prometheus.yml";

/// Where `--ecs.task` writes the configuration it makes, under `--storage.path`.
const ECS_TASK_CONFIG_FILE: &str = "ecs-task.yml";

/// `ecs-prom agent` flags.
#[derive(Debug, Args)]
pub struct AgentFlags {
    /// Prometheus configuration file: `global`, `scrape_configs` and `remote_write` (see docs/agent.md for the supported subset). Default: prometheus.yml; not with --ecs.task.
    #[arg(long = "config.file", env = env_vars::AGENT_CONFIG_FILE, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Run as an ECS task's sidecar with no configuration file: scrape the task's containers that carry PROMETHEUS_EXPORTER_PORT docker labels, collect the task's ECS metrics, and remote-write to --remote-write.url.
    #[arg(
        long = "ecs.task",
        env = env_vars::AGENT_ECS_TASK,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub ecs_task: bool,
    /// With --ecs.task: `task` reads the agent's own task (/task); `instance` every task on the host (/tasks), for one agent per EC2 or Managed Instances host.
    #[arg(long = "ecs.scope", env = env_vars::AGENT_ECS_SCOPE, default_value = "task", value_parser = ["task", "instance"])]
    pub ecs_scope: String,
    /// With --ecs.task: the task metadata endpoint. Default: $ECS_CONTAINER_METADATA_URI_V4, which ECS sets in every container.
    #[arg(long = "ecs.metadata-url", env = env_vars::AGENT_ECS_METADATA_URL, value_name = "URL")]
    pub ecs_metadata_url: Option<String>,
    /// With --ecs.task: collect the task's ECS metrics (CPU, memory, network, disk: the exporter's families, job "ecs-exporter") in-process.
    #[arg(
        long = "ecs.task-metrics",
        env = env_vars::AGENT_ECS_TASK_METRICS,
        default_value = "true",
        action = clap::ArgAction::Set,
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub ecs_task_metrics: bool,
    /// With --ecs.task: how often the task metadata is read for containers that start, stop or restart.
    #[arg(long = "ecs.refresh-interval", env = env_vars::AGENT_ECS_REFRESH_INTERVAL, default_value = "10s", value_parser = parse_duration)]
    pub ecs_refresh_interval: Duration,
    /// With --ecs.task: how often every target is scraped.
    #[arg(long = "scrape.interval", env = env_vars::AGENT_SCRAPE_INTERVAL, default_value = "15s", value_parser = parse_duration)]
    pub scrape_interval: Duration,
    /// With --ecs.task: the deadline of each scrape (at most the interval).
    #[arg(long = "scrape.timeout", env = env_vars::AGENT_SCRAPE_TIMEOUT, default_value = "10s", value_parser = parse_duration)]
    pub scrape_timeout: Duration,
    /// With --ecs.task: where samples go. An Amazon Managed Service for Prometheus workspace URL (https://aps-workspaces.REGION.amazonaws.com/workspaces/ID/api/v1/remote_write) is signed with SigV4 in its region.
    #[arg(long = "remote-write.url", env = env_vars::AGENT_REMOTE_WRITE_URL, value_name = "URL")]
    pub remote_write_url: Option<String>,
    /// With --ecs.task: sign remote writes with SigV4 in this region (an AMP URL needs it only to override the URL's).
    #[arg(long = "remote-write.region", env = env_vars::AGENT_REMOTE_WRITE_REGION, value_name = "REGION")]
    pub remote_write_region: Option<String>,
    /// With --ecs.task: assume this role to sign remote writes (a workspace in another account).
    #[arg(long = "remote-write.role-arn", env = env_vars::AGENT_REMOTE_WRITE_ROLE_ARN, value_name = "ARN")]
    pub remote_write_role_arn: Option<String>,
    /// Directory of the remote-write queues (one subdirectory per remote); put it on a volume to keep samples across restarts.
    #[arg(long = "storage.path", env = env_vars::AGENT_STORAGE_PATH, value_name = "DIR", default_value = "data-agent/")]
    pub storage_path: PathBuf,
    /// Disk the queues may use together (shared evenly between remotes); beyond it the oldest samples are dropped and counted.
    #[arg(long = "storage.max-bytes", env = env_vars::AGENT_STORAGE_MAX_BYTES, value_name = "SIZE", default_value = "1GB", value_parser = parse_size)]
    pub storage_max_bytes: u64,
    /// Flush the queues to the disk (each second at most) so that they survive a crash of the machine too, not only of the agent. A queue on a volume that dies with its machine (an ECS task's, on Fargate) gains nothing from it: `false` saves the flushes' CPU and I/O.
    #[arg(
        long = "storage.fsync",
        env = env_vars::AGENT_STORAGE_FSYNC,
        default_value = "true",
        action = clap::ArgAction::Set,
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub storage_fsync: bool,
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

/// The finished agent: its options, and with `--ecs.task` the configuration to write to
/// `options.config_file` before it starts.
#[derive(Debug)]
pub struct AgentRun {
    /// The options.
    pub options: agent::AgentOptions,
    /// The configuration `--ecs.task` makes.
    pub generated_config: Option<String>,
}

impl AgentFlags {
    /// The finished options; `env` reads the environment (for the metadata endpoint).
    pub fn finish(self, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<AgentRun> {
        let task_only = [
            ("--remote-write.url", self.remote_write_url.is_some()),
            ("--remote-write.region", self.remote_write_region.is_some()),
            (
                "--remote-write.role-arn",
                self.remote_write_role_arn.is_some(),
            ),
            ("--ecs.metadata-url", self.ecs_metadata_url.is_some()),
        ];
        let (config_file, generated_config) = if self.ecs_task {
            if let Some(file) = &self.config_file {
                anyhow::bail!(
                    "--ecs.task makes its own configuration: remove --config.file {}",
                    file.display()
                );
            }
            let remote_write_url = self
                .remote_write_url
                .context("--ecs.task needs --remote-write.url: where the samples go")?;
            web::parse_url(&remote_write_url)
                .with_context(|| format!("--remote-write.url {remote_write_url}"))?;
            if let Some(url) = &self.ecs_metadata_url {
                web::parse_url(url).with_context(|| format!("--ecs.metadata-url {url}"))?;
            } else if env(agent::METADATA_URI_VARIABLE).is_none_or(|url| url.is_empty()) {
                anyhow::bail!(
                    "--ecs.task: {} is not set and --ecs.metadata-url is not given (not running on ECS?)",
                    agent::METADATA_URI_VARIABLE
                );
            }
            let options = agent::EcsTaskOptions {
                scope: if self.ecs_scope == "instance" {
                    agent::EcsScope::Instance
                } else {
                    agent::EcsScope::Task
                },
                metadata_url: self.ecs_metadata_url,
                task_metrics: self.ecs_task_metrics,
                refresh_interval: self.ecs_refresh_interval,
                scrape_interval: self.scrape_interval,
                scrape_timeout: self.scrape_timeout,
                remote_write_url,
                region: self.remote_write_region,
                role_arn: self.remote_write_role_arn,
            };
            (
                self.storage_path.join(ECS_TASK_CONFIG_FILE),
                Some(agent::ecs_task_config(&options)),
            )
        } else {
            if let Some((flag, _)) = task_only.iter().find(|(_, given)| *given) {
                anyhow::bail!(
                    "{flag} goes with --ecs.task; with a configuration file, set it there"
                );
            }
            (
                self.config_file
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE)),
                None,
            )
        };
        let options = agent::AgentOptions {
            config_file,
            storage: agent::StorageOptions {
                path: self.storage_path,
                max_bytes: self.storage_max_bytes,
                fsync: self.storage_fsync,
            },
            strictness: if self.openmetrics_strict {
                agent::Strictness::Specification
            } else {
                agent::Strictness::Prometheus
            },
        };
        Ok(AgentRun {
            options,
            generated_config,
        })
    }
}

//! `ecs-prom exporter`: its flags and the finished exporter configuration.

use super::parse_duration;
use crate::env_vars;
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use std::time::Duration;

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
    /// Address to listen on for scrapes (`:PORT` listens on every interface, IPv6 and IPv4).
    #[arg(long = "web.listen-address", env = env_vars::EXPORTER_LISTEN_ADDRESS, default_value = ":9779")]
    pub listen_address: String,
    /// Web configuration file and connection limits.
    #[command(flatten)]
    pub web: super::serving::ExporterWebFlags,
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

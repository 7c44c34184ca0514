//! `ecs-prom health`: its flags.

use super::parse_duration;
use crate::env_vars;
use clap::Args;
use std::time::Duration;

/// `ecs-prom health` flags.
#[derive(Debug, Args)]
pub struct HealthFlags {
    /// The URL to GET (http:// or https://; redirects are not followed).
    #[arg(long = "url", env = env_vars::HEALTH_URL, default_value = "http://127.0.0.1:9779/-/healthy")]
    pub url: String,
    /// How long to wait for the whole answer.
    #[arg(long = "timeout", env = env_vars::HEALTH_TIMEOUT, default_value = "3s", value_parser = parse_duration)]
    pub timeout: Duration,
}

//! `ecs-prom simulate`: its flags.

use super::parse_duration;
use crate::env_vars;
use clap::Args;
use std::time::Duration;

/// `ecs-prom simulate` flags.
#[derive(Debug, Args)]
pub struct SimulateFlags {
    /// Address to listen on.
    #[arg(long = "web.listen-address", env = env_vars::SIMULATE_LISTEN_ADDRESS, default_value = "127.0.0.1:8912")]
    pub listen_address: String,
    /// Web configuration file and connection limits.
    #[command(flatten)]
    pub web: super::serving::SimulateWebFlags,
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

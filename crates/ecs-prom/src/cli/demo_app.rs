//! `ecs-prom demo-app`: its flags and the finished application configuration.

use super::{parse_duration, parse_rate};
use crate::env_vars;
use clap::Args;
use std::time::Duration;

/// `ecs-prom demo-app` flags.
#[derive(Debug, Args)]
pub struct DemoAppFlags {
    /// Address to listen on (`:PORT` listens on every interface, IPv6 and IPv4).
    #[arg(long = "web.listen-address", env = env_vars::DEMO_APP_LISTEN_ADDRESS, default_value = ":3000")]
    pub listen_address: String,
    /// Web configuration file and connection limits.
    #[command(flatten)]
    pub web: super::serving::DemoAppWebFlags,
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
            otlp: demo_app::OtlpConfig::from_env(env),
        }
    }
}

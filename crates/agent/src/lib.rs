//! The ecs-prom agent: scrapes Prometheus targets and remote-writes their samples, through a
//! durable queue on disk, to any remote-write receiver or, signed, to Amazon Managed Service
//! for Prometheus. Its configuration is the user's own Prometheus configuration file
//! (`global`, `scrape_configs`, `remote_write`), read strictly (a field outside the supported
//! subset is an error naming it and its line) and checked as Prometheus checks it.
//!
//! ```text
//! providers (static, file_sd, http_sd, ecs_task_sd, ecs_sd, cloudmap_sd)
//!     ─> targets (relabel) ─> scrape loop per target (HTTP, or the task's ECS metrics in-process)
//!     (series cache: target labels, metric relabeling, external labels, stale markers)
//!     ─> remotes: write_relabel ─> queue on disk ─> sender ─> receiver
//! ```
//!
//! ```
//! let config = agent::AgentConfig::parse(
//!     "scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [localhost:8080]\n",
//!     std::path::Path::new("/etc/prometheus"),
//! )
//! .unwrap();
//! assert_eq!(config.scrape_configs[0].scrape_interval, std::time::Duration::from_secs(60));
//! ```

mod config;
mod duration;
mod ecs_task_sd;
mod error;
mod http_client;
mod providers;
mod raw;
mod remotes;
mod runtime;
mod scrape;
mod scrape_loop;
mod server;
mod size;
mod status;
mod targets;
mod task_mode;
mod view;

pub use config::{
    AgentConfig, Authorization, BasicAuth, CloudMapSdConfig, DEFAULT_TASK_METRICS_JOB, EcsScope,
    EcsSdConfig, EcsTaskSdConfig, FileSdConfig, GlobalConfig, HttpClientConfig, HttpSdConfig,
    QueueConfig, RemoteWriteConfig, Scheme, ScrapeConfig, Secret, SigV4Config, StaticConfig,
    TlsConfig,
};
pub use duration::{format_duration, parse_duration};
pub use ecs_task_sd::{Found, target_groups as ecs_task_target_groups};
pub use error::ConfigError;
pub use exposition::Strictness;
pub use providers::METADATA_URI_VARIABLE;
pub use remotes::{RemoteError, StorageOptions, queue_directory, region_of_amp_url};
pub use runtime::{AgentError, AgentOptions, run};
pub use scrape::{Sample, ScrapeOutcome, ScrapeSettings, SeriesCache, scrape};
pub use size::parse_byte_size;
pub use targets::{Outcome, Source, Target, TargetGroup, populate, populate_group};
pub use task_mode::{EcsTaskOptions, TASK_JOB, ecs_task_config};

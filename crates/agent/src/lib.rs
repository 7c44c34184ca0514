//! The ecs-prom agent. For now one scrape of one target (`scrape`) and its configuration: the user's own Prometheus configuration file
//! (`global`, `scrape_configs`, `remote_write`), read strictly (a field outside the supported
//! subset is an error naming it and its line) and checked as Prometheus checks it.
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
mod error;
mod raw;
mod scrape;
mod size;
mod staleness;

pub use config::{
    AgentConfig, Authorization, BasicAuth, FileSdConfig, GlobalConfig, HttpClientConfig,
    HttpSdConfig, QueueConfig, RemoteWriteConfig, Scheme, ScrapeConfig, Secret, SigV4Config,
    StaticConfig, TlsConfig,
};
pub use duration::parse_duration;
pub use error::ConfigError;
pub use scrape::{Sample, ScrapeOutcome, ScrapeSettings, scrape};
pub use size::parse_byte_size;
pub use staleness::SeriesTracker;

//! `ecs-prom discovery`: finds scrape targets in AWS Cloud Map namespaces and ECS clusters and
//! hands them to Prometheus as a file_sd file and an http_sd endpoint, refreshing on an
//! interval. A source that fails keeps its previous targets, so an AWS error or a throttle
//! never shrinks the list.

pub mod cloudmap;
pub mod ecs;
pub mod output;
pub mod prometheus_config;
pub mod refresh;
pub mod server;
pub mod snapshot;
pub mod target;

use aws_api::AwsClient;
use output::FileOutput;
use prometheus_config::ConfigSync;
use refresh::{Discovery, Namespaces};
use snapshot::Snapshot;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;

/// Where the Prometheus configuration comes from and goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusConfig {
    /// SSM parameter holding the whole configuration.
    pub parameter: String,
    /// File to write it to.
    pub file: PathBuf,
    /// Prometheus to ask for a reload after each change.
    pub reload_url: Option<String>,
}

/// Discovery's finished configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Cloud Map namespaces.
    pub namespaces: Namespaces,
    /// ECS clusters (names or ARNs).
    pub clusters: Vec<String>,
    /// file_sd output.
    pub output_file: Option<PathBuf>,
    /// Time between refreshes.
    pub refresh_interval: Duration,
    /// How long a container instance's address is cached.
    pub container_instance_ttl: Duration,
    /// The seed's configuration role.
    pub prometheus_config: Option<PrometheusConfig>,
}

impl Config {
    fn discovery(&self, client: Arc<AwsClient>) -> Discovery {
        let sync = self
            .prometheus_config
            .as_ref()
            .map(|p| ConfigSync::new(p.parameter.clone(), p.file.clone(), p.reload_url.clone()));
        Discovery::new(
            client,
            self.namespaces.clone(),
            &self.clusters,
            self.container_instance_ttl,
            sync,
        )
    }
}

/// Discovery with its outputs: each refresh updates the sources, then writes the file_sd
/// file if the targets changed, then gives the state to publish.
pub struct Pipeline {
    /// The sources and their state.
    pub discovery: Discovery,
    output: Option<FileOutput>,
}

impl Pipeline {
    /// A pipeline for `config`, calling AWS through `client`.
    pub fn new(config: &Config, client: Arc<AwsClient>) -> Self {
        Pipeline {
            discovery: config.discovery(client),
            output: config.output_file.clone().map(FileOutput::new),
        }
    }

    /// Refreshes every source and writes the outputs. Returns the new state and whether
    /// everything succeeded. A file write error is logged and tried again next refresh; it
    /// loses nothing.
    pub async fn refresh(&mut self) -> (Snapshot, bool) {
        let report = self.discovery.refresh().await;
        let targets = self.discovery.targets();
        let json = target::render(&targets);
        let mut written = true;
        if let Some(output) = &mut self.output {
            match output.update(&json) {
                Ok(true) => {
                    tracing::info!(file = %output.path().display(), "file_sd targets written")
                }
                Ok(false) => {}
                Err(error) => {
                    written = false;
                    tracing::error!(file = %output.path().display(), error = %error, "writing the file_sd targets failed");
                }
            }
        }
        let writes = self.output.as_ref().map_or(0, |o| o.writes);
        let snapshot = Snapshot::of(&self.discovery, targets, json, writes);
        (snapshot, report.ok && written)
    }
}

/// Runs one refresh, writes the file output, and returns the resulting state and whether
/// everything succeeded (`ecs-prom discovery --once`).
pub async fn once(config: &Config, client: Arc<AwsClient>) -> (Snapshot, bool) {
    Pipeline::new(config, client).refresh().await
}

/// Refreshes on the interval and serves the endpoints on `listener` until `shutdown`
/// completes.
pub async fn run(
    config: Config,
    client: Arc<AwsClient>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shared = server::Shared {
        snapshot: Arc::new(RwLock::new(Snapshot::default())),
        client: client.clone(),
    };
    let mut pipeline = Pipeline::new(&config, client);
    let snapshot = shared.snapshot.clone();
    let refresher = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(config.refresh_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let (published, _) = pipeline.refresh().await;
            if let Ok(mut slot) = snapshot.write() {
                *slot = published;
            }
        }
    });
    let served = axum::serve(listener, server::router(shared))
        .with_graceful_shutdown(shutdown)
        .await;
    refresher.abort();
    served
}

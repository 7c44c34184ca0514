//! `ecs-prom discovery`: finds scrape targets in AWS Cloud Map namespaces and ECS clusters and
//! hands them to Prometheus as a file_sd file and an http_sd endpoint, refreshing on an
//! interval. A source that fails keeps its previous targets, so an AWS error or a throttle
//! never shrinks the list, and a state file carries them across restarts.

pub mod cloudmap;
pub mod ecs;
pub mod error;
pub mod pagination;
pub mod prometheus_config;
pub mod refresh;
pub mod server;
pub mod snapshot;
pub mod source;
pub mod ssm;
pub mod state;

use aws_api::AwsClient;
pub use ecs::{docker_labels, is_task_metadata_exporter};
pub use error::{RefreshError, TargetError};
use file_sd::FileOutput;
pub use file_sd::TargetGroup;
use prometheus_config::ConfigSync;
pub use refresh::{Discovery, Namespaces};
pub use snapshot::Snapshot;
use state::StateFile;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Where the Prometheus configuration comes from and goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrometheusConfig {
    /// SSM parameter holding the whole configuration.
    pub parameter: String,
    /// File to write it to.
    pub file: PathBuf,
    /// Prometheus to ask for a reload after each change.
    pub reload_url: Option<String>,
    /// The file's mode; `None`: 0600 for a SecureString parameter, 0644 otherwise.
    pub file_mode: Option<u32>,
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
    /// Where each source's last good targets are kept across restarts.
    pub state_file: Option<PathBuf>,
    /// Time between refreshes.
    pub refresh_interval: Duration,
    /// How long one refresh may take; a source not done by then keeps its targets.
    pub refresh_timeout: Duration,
    /// How long a container instance's address is cached.
    pub container_instance_ttl: Duration,
    /// The seed's configuration role.
    pub prometheus_config: Option<PrometheusConfig>,
}

impl Config {
    fn discovery(&self, client: Arc<AwsClient>) -> Discovery {
        let sync = self.prometheus_config.as_ref().map(|p| {
            ConfigSync::new(
                p.parameter.clone(),
                p.file.clone(),
                p.reload_url.clone(),
                p.file_mode,
            )
        });
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
/// file if the targets changed and the state file, then gives the state to publish.
pub struct Pipeline {
    /// The sources and their state.
    pub discovery: Discovery,
    output: Option<FileOutput>,
    state: Option<StateFile>,
    refresh_timeout: Duration,
}

impl Pipeline {
    /// A pipeline for `config`, calling AWS through `client`, starting from the state file
    /// when there is one (an unreadable state file is logged and ignored).
    pub fn new(config: &Config, client: Arc<AwsClient>) -> Self {
        let mut discovery = config.discovery(client);
        let state = config.state_file.clone().map(|path| {
            let mut file = StateFile::new(path);
            match file.load() {
                Ok(Some(state)) => {
                    discovery.restore(state);
                    tracing::info!(
                        file = %file.path().display(),
                        sources = discovery.sources.len(),
                        targets = discovery.targets().len(),
                        "starting from the targets discovery last published"
                    );
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "ignoring the state file: starting with no targets known")
                }
            }
            file
        });
        Pipeline {
            discovery,
            output: config.output_file.clone().map(FileOutput::new),
            state,
            refresh_timeout: config.refresh_timeout,
        }
    }

    /// What to publish before the first refresh: the targets restored from the state file.
    pub fn snapshot(&self) -> Snapshot {
        let targets = self.discovery.targets();
        let json = file_sd::render(&targets);
        Snapshot::of(&self.discovery, targets, json, self.file_counts())
    }

    fn file_counts(&self) -> snapshot::FileCounts {
        snapshot::FileCounts {
            writes: self.output.as_ref().map_or(0, |o| o.writes),
            failures: self.output.as_ref().map_or(0, |o| o.failures)
                + self.state.as_ref().map_or(0, |s| s.failures),
            error: self
                .output
                .as_ref()
                .and_then(|o| o.last_error.clone())
                .or_else(|| self.state.as_ref().and_then(|s| s.last_error.clone())),
        }
    }

    /// Refreshes every source and writes the outputs. Returns the new state and whether
    /// everything succeeded. A file write error is logged, counted and tried again next
    /// refresh; it loses nothing.
    pub async fn refresh(&mut self) -> (Snapshot, bool) {
        let report = self.discovery.refresh(self.refresh_timeout).await;
        let targets = self.discovery.targets();
        let json = file_sd::render(&targets);
        if let Some(output) = &mut self.output {
            write_targets(output, &self.discovery, &json, targets.len());
        }
        if let Some(state) = &mut self.state
            && let Err(error) = state.save(&self.discovery.state())
        {
            tracing::error!(file = %state.path().display(), error = %error, "writing the state file failed");
        }
        let files = self.file_counts();
        let written = files.error.is_none();
        let snapshot = Snapshot::of(&self.discovery, targets, json, files);
        (snapshot, report.ok && written)
    }
}

/// Writes the file_sd file unless that would lose targets: while nothing is known it keeps
/// whatever the file holds, and while some source has never answered it does not make the
/// file smaller (that source's targets may be the difference).
fn write_targets(output: &mut FileOutput, discovery: &Discovery, json: &str, count: usize) {
    let path = output.path().display().to_string();
    if !discovery.knows_targets() {
        tracing::warn!(file = %path, "no source has answered yet: the file_sd file is left as it is");
        return;
    }
    // Reading the file back costs a parse; only a source that never answered calls for it.
    if discovery.has_unknown_source() {
        let on_disk = output.current().and_then(file_sd::count).unwrap_or(0);
        if count < on_disk {
            tracing::warn!(file = %path, targets = count, file_targets = on_disk, "a source has not answered yet: the file_sd file is not made smaller");
            return;
        }
    }
    match output.update(json) {
        Ok(true) => tracing::info!(file = %path, targets = count, "file_sd targets written"),
        Ok(false) => {}
        Err(error) => {
            tracing::error!(file = %path, error = %error, "writing the file_sd targets failed")
        }
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
    listener: impl Into<web::Listener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let shared = server::Shared {
        snapshot: Arc::new(RwLock::new(Snapshot::default())),
        client: client.clone(),
    };
    let mut pipeline = Pipeline::new(&config, client);
    if let Ok(mut slot) = shared.snapshot.write() {
        *slot = pipeline.snapshot();
    }
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
    let served = listener
        .into()
        .serve(server::router(shared), shutdown)
        .await;
    refresher.abort();
    served
}

#[cfg(test)]
mod tests {
    use super::*;
    use file_sd::TargetGroup;
    use state::{SourceState, State};

    fn discovery(namespaces: &[&str]) -> Discovery {
        let client = Arc::new(AwsClient::new(
            aws_api::AwsConfig::from_env(|_| None),
            "us-east-1".into(),
            aws_api::ClientOptions::default(),
        ));
        Discovery::new(
            client,
            Namespaces::Fixed(namespaces.iter().map(|n| n.to_string()).collect()),
            &[],
            Duration::from_secs(60),
            None,
        )
    }

    fn answered(name: &str, hosts: &[&str]) -> SourceState {
        SourceState {
            kind: source::SourceKind::CloudMap,
            name: name.into(),
            last_success: Some(1.0),
            targets: hosts.iter().map(|h| TargetGroup::new(h, 9779)).collect(),
        }
    }

    #[test]
    fn the_file_is_not_made_smaller_while_a_source_has_never_answered() {
        let dir = std::env::temp_dir().join(format!("discovery-shrink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("ecs-services.json");
        let three: Vec<TargetGroup> = ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
            .iter()
            .map(|h| TargetGroup::new(h, 9779))
            .collect();
        std::fs::write(&path, file_sd::render(&three)).expect("earlier file");
        let mut output = FileOutput::new(path.clone());

        // Nothing known: the file stays.
        let nothing = discovery(&["a", "b"]);
        write_targets(&mut output, &nothing, "[]\n", 0);
        assert_eq!(
            file_sd::count(&std::fs::read_to_string(&path).expect("read")),
            Some(3)
        );

        // "a" known with one target, "b" never answered: one target is fewer than three, and
        // b's may be the difference.
        let mut partial = discovery(&["a", "b"]);
        partial.restore(State {
            sources: vec![answered("a", &["10.0.0.1"])],
            ..State::default()
        });
        let json = file_sd::render(&partial.targets());
        write_targets(&mut output, &partial, &json, 1);
        assert_eq!(
            file_sd::count(&std::fs::read_to_string(&path).expect("read")),
            Some(3)
        );

        // Both known: the file is the truth, smaller or not.
        let mut both = discovery(&["a", "b"]);
        both.restore(State {
            sources: vec![answered("a", &["10.0.0.1"]), answered("b", &[])],
            ..State::default()
        });
        let json = file_sd::render(&both.targets());
        write_targets(&mut output, &both, &json, 1);
        assert_eq!(
            file_sd::count(&std::fs::read_to_string(&path).expect("read")),
            Some(1)
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}

//! The running agent: the configuration loaded, one sender per `remote_write`, the service
//! discovery providers of every job feeding a scrape loop per target, and reloads (SIGHUP or
//! `POST /-/reload`) that change only what changed: remotes keep their queues, targets that
//! stay keep their loops, and only targets that go away end their series.

use crate::ConfigError;
use crate::config::{AgentConfig, ScrapeConfig};
use crate::providers::{self, Update};
use crate::remotes::{self, Remote, RemoteError, StorageOptions};
use crate::scrape::{ScrapeSettings, SeriesCache};
use crate::scrape_loop::{self, LoopContext, LoopHandle, Stop};
use crate::server::ReloadRequest;
use crate::status::{JobCounters, TargetStatus};
use crate::targets::{self, Outcome, TargetGroup};
use crate::view::{JobView, RemoteView, View};
use exposition::Strictness;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::{RwLock, mpsc, oneshot};

/// How the agent runs, beyond its configuration file.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    /// `--config.file`.
    pub config_file: PathBuf,
    /// `--storage.path` and `--storage.max-bytes`.
    pub storage: StorageOptions,
    /// `--scrape.openmetrics-strict`: the specification's verdict on doubtful OpenMetrics.
    pub strictness: Strictness,
}

/// Why the agent cannot start or reload.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The configuration file is unusable.
    #[error("loading {}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ConfigError,
    },
    /// A job's HTTP settings are unusable (a CA file that cannot be read...).
    #[error("scrape_configs {job}: {reason}")]
    Job {
        /// The job.
        job: String,
        /// Why.
        reason: String,
    },
    /// A remote cannot be started.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// Serving the endpoints failed.
    #[error("serving")]
    Serve(#[source] std::io::Error),
}

/// A job being scraped.
struct Job {
    config: ScrapeConfig,
    client: web::Client,
    settings: Arc<ScrapeSettings>,
    providers: Vec<tokio::task::JoinHandle<()>>,
    groups: BTreeMap<usize, Vec<TargetGroup>>,
    errors: BTreeMap<usize, String>,
    loops: HashMap<String, LoopHandle>,
    counters: Arc<JobCounters>,
    /// Discovered addresses relabeling dropped, as of the last sync.
    dropped: usize,
    /// Discovered addresses that cannot be scraped, with why, as of the last sync.
    invalid: Vec<String>,
}

/// The agent's moving parts, owned by one task.
struct Agent {
    options: AgentOptions,
    remotes: Arc<RwLock<Vec<Remote>>>,
    jobs: BTreeMap<String, Job>,
    counters: BTreeMap<String, Arc<JobCounters>>,
    updates: mpsc::UnboundedSender<Update>,
    view: Arc<Mutex<View>>,
}

/// Runs the agent with `options`, serving its endpoints on `listener`, until `shutdown`
/// completes; then stops scraping, and flushes every queue and its checkpoint.
pub async fn run(
    options: AgentOptions,
    listener: web::Listener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AgentError> {
    let view = Arc::new(Mutex::new(View::default()));
    let (updates, mut updates_rx) = mpsc::unbounded_channel();
    let mut agent = Agent {
        options,
        remotes: Arc::new(RwLock::new(Vec::new())),
        jobs: BTreeMap::new(),
        counters: BTreeMap::new(),
        updates,
        view: Arc::clone(&view),
    };
    agent.reload().await?;
    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let (stop_serving, serving_stopped) = oneshot::channel::<()>();
    let router = crate::server::router(crate::server::Shared {
        view: Arc::clone(&view),
        reload: reload_tx,
    });
    let server = tokio::spawn(listener.serve(router, async {
        let _ = serving_stopped.await;
    }));
    let mut hangups = hangup_signal();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(update) = updates_rx.recv() => agent.apply(update).await,
            Some(reply) = reload_rx.recv() => {
                let result = agent.reload().await.map_err(|e| web::error_chain(&e));
                let _ = reply.send(result);
            }
            Some(()) = next_hangup(&mut hangups) => {
                if let Err(error) = agent.reload().await {
                    tracing::error!(error = %web::error_chain(&error), "reload on SIGHUP failed; the previous configuration stays");
                }
            }
        }
    }
    agent.stop().await;
    let _ = stop_serving.send(());
    match server.await {
        Ok(result) => result.map_err(AgentError::Serve),
        Err(_) => Ok(()),
    }
}

#[cfg(unix)]
fn hangup_signal() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

#[cfg(not(unix))]
fn hangup_signal() -> Option<()> {
    None
}

#[cfg(unix)]
async fn next_hangup(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(signal) => signal.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Option<()>) -> Option<()> {
    std::future::pending().await
}

impl Agent {
    /// Loads the configuration file and brings everything to it; on failure nothing changes.
    async fn reload(&mut self) -> Result<(), AgentError> {
        let result = self.try_reload().await;
        let mut view = self.lock_view();
        view.reloads
            .record(result.as_ref().err().map(|e| web::error_chain(e)));
        drop(view);
        match &result {
            Ok(()) => {
                tracing::info!(file = %self.options.config_file.display(), "configuration loaded")
            }
            Err(error) => {
                tracing::error!(file = %self.options.config_file.display(), error = %web::error_chain(error), "configuration not loaded")
            }
        }
        result
    }

    async fn try_reload(&mut self) -> Result<(), AgentError> {
        let path = &self.options.config_file;
        let config = AgentConfig::load(path).map_err(|source| AgentError::Config {
            path: path.clone(),
            source,
        })?;
        // Everything that can fail is checked before anything is changed.
        let mut clients = BTreeMap::new();
        for job in &config.scrape_configs {
            let client = crate::http_client::client(&job.http, job.scrape_timeout)
                .map_err(|reason| AgentError::Job {
                    job: job.job_name.clone(),
                    reason,
                })?
                .with_gzip(true);
            clients.insert(job.job_name.clone(), client);
        }
        remotes::reconcile(
            &mut *self.remotes.write().await,
            &config.remote_write,
            &self.options.storage,
        )
        .await?;
        let gone: Vec<String> = self
            .jobs
            .keys()
            .filter(|name| !config.scrape_configs.iter().any(|j| &j.job_name == *name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(job) = self.jobs.remove(&name) {
                stop_job(job, Stop::TargetGone).await;
            }
        }
        for job_config in config.scrape_configs {
            let name = job_config.job_name.clone();
            let client = clients
                .remove(&name)
                .unwrap_or_else(|| web::Client::new(job_config.scrape_timeout));
            let settings = Arc::new(ScrapeSettings {
                timeout: job_config.scrape_timeout,
                body_size_limit: job_config.body_size_limit,
                sample_limit: usize::try_from(job_config.sample_limit).unwrap_or(usize::MAX),
                label_limit: usize::try_from(job_config.label_limit).unwrap_or(usize::MAX),
                honor_labels: job_config.honor_labels,
                honor_timestamps: job_config.honor_timestamps,
                metric_relabel_configs: job_config.metric_relabel_configs.clone(),
                strictness: self.options.strictness,
                auth: job_config.http.clone(),
                external_labels: config
                    .global
                    .external_labels
                    .iter()
                    .map(|(n, v)| (n.clone(), v.clone()))
                    .collect(),
            });
            let counters = Arc::clone(self.counters.entry(name.clone()).or_default());
            let providers = providers::start(&job_config, &client, &self.updates);
            let provider_count = providers::count(&job_config);
            match self.jobs.get_mut(&name) {
                Some(job) => {
                    for task in job.providers.drain(..) {
                        task.abort();
                    }
                    // Groups are kept until the new providers answer, so that targets do not
                    // seem to vanish (and end their series) in between.
                    job.groups.retain(|provider, _| *provider < provider_count);
                    job.errors.clear();
                    job.config = job_config;
                    job.client = client;
                    job.settings = settings;
                    job.providers = providers;
                }
                None => {
                    self.jobs.insert(
                        name,
                        Job {
                            config: job_config,
                            client,
                            settings,
                            providers,
                            groups: BTreeMap::new(),
                            errors: BTreeMap::new(),
                            loops: HashMap::new(),
                            counters,
                            dropped: 0,
                            invalid: Vec::new(),
                        },
                    );
                }
            }
        }
        self.publish().await;
        Ok(())
    }

    /// Takes one provider's groups and brings the job's loops to them.
    async fn apply(&mut self, update: Update) {
        let Some(job) = self.jobs.get_mut(&update.job) else {
            return;
        };
        job.groups.insert(update.provider, update.groups);
        match update.error {
            Some(error) => job.errors.insert(update.provider, error),
            None => job.errors.remove(&update.provider),
        };
        sync_job(job, &self.remotes).await;
        self.publish().await;
    }

    /// Stops scraping and sending (flushing every queue).
    async fn stop(&mut self) {
        for (_, job) in std::mem::take(&mut self.jobs) {
            stop_job(job, Stop::Quietly).await;
        }
        for mut remote in std::mem::take(&mut *self.remotes.write().await) {
            remote.stop().await;
        }
    }

    /// Shows the current jobs and remotes to the endpoints.
    async fn publish(&mut self) {
        let remotes: Vec<RemoteView> = self
            .remotes
            .read()
            .await
            .iter()
            .map(|remote| RemoteView {
                name: remote.name.clone(),
                url: remote.url.clone(),
                counters: Arc::clone(remote.counters()),
            })
            .collect();
        let jobs: BTreeMap<String, JobView> = self
            .jobs
            .iter()
            .map(|(name, job)| {
                let mut targets: Vec<Arc<TargetStatus>> =
                    job.loops.values().map(|l| Arc::clone(&l.status)).collect();
                targets.sort_by(|a, b| a.labels.as_slice().cmp(b.labels.as_slice()));
                (
                    name.clone(),
                    JobView {
                        targets,
                        dropped: job.dropped,
                        invalid: job.invalid.clone(),
                        discovery_errors: job.errors.values().cloned().collect(),
                        counters: Arc::clone(&job.counters),
                    },
                )
            })
            .collect();
        let mut view = self.lock_view();
        view.jobs = jobs;
        view.remotes = remotes;
        view.ready = true;
    }

    fn lock_view(&self) -> std::sync::MutexGuard<'_, View> {
        self.view
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Starts loops for the job's new targets, restarts those whose settings changed (their
/// series go on) and stops those gone (their series end).
async fn sync_job(job: &mut Job, remotes: &Arc<RwLock<Vec<Remote>>>) {
    let mut wanted: HashMap<String, crate::targets::Target> = HashMap::new();
    job.dropped = 0;
    job.invalid.clear();
    for group in job.groups.values().flatten() {
        for outcome in targets::populate_group(&job.config, group) {
            match outcome {
                Outcome::Kept(target) => {
                    let key = format!(
                        "{} {:?} {:?}",
                        target.url,
                        target.labels.as_slice(),
                        target.source
                    );
                    // The same target found twice is scraped once, as in Prometheus.
                    wanted.entry(key).or_insert(target);
                }
                Outcome::Dropped(_) => job.dropped += 1,
                Outcome::Invalid(labels, reason) => job.invalid.push(format!(
                    "{}: {reason}",
                    labels.get("__address__").unwrap_or_default()
                )),
            }
        }
    }
    // The job's configuration, the global settings its loops use, and its inline secrets
    // (which the configuration prints redacted).
    let settings_fingerprint = format!(
        "{:?} {:?} {}",
        job.config,
        job.settings.external_labels,
        crate::http_client::inline_secrets_digest(&job.config.http, &[])
    );
    let keys: Vec<String> = job.loops.keys().cloned().collect();
    for key in keys {
        if !wanted.contains_key(&key)
            && let Some(handle) = job.loops.remove(&key)
        {
            handle.stop(Stop::TargetGone).await;
        }
    }
    for (key, target) in wanted {
        let fingerprint = format!(
            "{settings_fingerprint} {:?}",
            (target.interval, target.timeout)
        );
        let (series, status) = match job.loops.remove(&key) {
            Some(handle) if handle.fingerprint == fingerprint => {
                job.loops.insert(key, handle);
                continue;
            }
            Some(handle) => {
                let status = Arc::clone(&handle.status);
                let series = match handle.stop(Stop::Quietly).await {
                    Some(series) => series.renewed(target.labels.clone()),
                    None => SeriesCache::new(target.labels.clone()),
                };
                (series, status)
            }
            None => (
                SeriesCache::new(target.labels.clone()),
                Arc::new(TargetStatus::new(
                    target.labels.clone(),
                    target.discovered.clone(),
                    &target.url,
                )),
            ),
        };
        let context = LoopContext {
            client: job.client.clone(),
            settings: Arc::clone(&job.settings),
            target,
            remotes: Arc::clone(remotes),
            counters: Arc::clone(&job.counters),
            series,
            status,
        };
        job.loops
            .insert(key, scrape_loop::start(context, fingerprint));
    }
}

async fn stop_job(mut job: Job, why: Stop) {
    for task in job.providers.drain(..) {
        task.abort();
    }
    for (_, handle) in job.loops.drain() {
        handle.stop(why).await;
    }
}

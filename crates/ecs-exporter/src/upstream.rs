//! Reading the metadata endpoint for scrapes: both documents fetched in parallel, one fetch
//! shared by every scrape that arrives while it runs, and the last good task metadata kept
//! so that stats can still be attributed to containers when a metadata request fails.

use crate::metrics::Scope;
use ecs_metadata::paths;
use ecs_metadata::{
    ContainerStats, DocumentError, FetchError, MetadataClient, Task, parse_stats, parse_tasks,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Why a collector read nothing usable from the endpoint. Shown with its causes
/// (`web::error_chain`) on the error page, `/-/ready` and in the logs.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The request failed or the endpoint answered with an error status.
    #[error(transparent)]
    Fetch(FetchError),
    /// The answer is not a document of the expected kind.
    #[error("GET {url}")]
    Document {
        /// The URL read.
        url: String,
        /// What is wrong with it.
        #[source]
        source: DocumentError,
    },
    /// The fetch ended without a result (its task failed); never expected.
    #[error("the fetch task ended without a result")]
    FetchTaskEnded,
    /// The task document does not describe the one task it should.
    #[error("GET {url}")]
    Tasks {
        /// The URL read.
        url: String,
        /// How many tasks it describes.
        #[source]
        source: TaskCountError,
    },
}

/// A task-scope document that does not describe exactly one task with an ARN.
#[derive(Debug, thiserror::Error)]
#[error("expected one task with a TaskARN, found {found}")]
pub struct TaskCountError {
    /// Tasks with an ARN found.
    pub found: usize,
}

/// The outcome of one collector (one upstream path) in one reading.
#[derive(Debug)]
pub struct Collected<T> {
    /// The parsed document, or why there is none.
    pub result: Result<T, UpstreamError>,
    /// How long the request and parsing took.
    pub duration: Duration,
}

/// Everything one upstream fetch produced.
#[derive(Debug)]
pub struct Reading {
    /// When the fetch finished.
    pub finished: Instant,
    /// The `metadata` collector: `/task` or `/tasks`.
    pub metadata: Collected<Arc<Vec<Task>>>,
    /// The `stats` collector: `/task/stats` or `/tasks/stats`.
    pub stats: Collected<HashMap<String, ContainerStats>>,
    /// The last task metadata that was read successfully, this reading's or an earlier one.
    pub last_good_tasks: Option<Arc<Vec<Task>>>,
}

impl Reading {
    /// Whether every collector failed.
    pub fn all_failed(&self) -> bool {
        self.metadata.result.is_err() && self.stats.result.is_err()
    }

    /// Whether a scrape can be answered from this reading: something was read, and there is
    /// task metadata (this reading's or an earlier one) to attribute it to.
    pub fn servable(&self) -> bool {
        self.last_good_tasks.is_some() && !self.all_failed()
    }
}

/// The endpoint, as seen by the HTTP handlers.
pub struct Upstream {
    client: MetadataClient,
    scope: Scope,
    state: SyncMutex<State>,
}

#[derive(Default)]
struct State {
    /// The fetch under way, if any: every scrape that arrives meanwhile waits for its result.
    in_flight: Option<watch::Receiver<Option<Arc<Reading>>>>,
    last_good_tasks: Option<Arc<Vec<Task>>>,
    /// When the endpoint last answered with something the exporter could serve.
    last_served: Option<Instant>,
}

impl Upstream {
    /// An upstream reading `scope`'s paths through `client`.
    pub fn new(client: MetadataClient, scope: Scope) -> Self {
        Upstream {
            client,
            scope,
            state: SyncMutex::new(State::default()),
        }
    }

    /// The base URL of the endpoint.
    pub fn base_url(&self) -> &str {
        self.client.base_url()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is one assignment.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads both documents. A caller that arrives while a fetch is under way waits for that
    /// fetch and shares its result instead of starting a second one. The fetch runs on its
    /// own task, so a scrape that gives up (Prometheus' scrape timeout) does not cancel it
    /// for the others.
    pub async fn read(self: &Arc<Self>) -> Arc<Reading> {
        let mut result = {
            let mut state = self.state();
            match &state.in_flight {
                Some(in_flight) => in_flight.clone(),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    state.in_flight = Some(receiver.clone());
                    let previous_tasks = state.last_good_tasks.clone();
                    let upstream = Arc::clone(self);
                    tokio::spawn(async move {
                        let reading = Arc::new(upstream.fetch(previous_tasks).await);
                        {
                            let mut state = upstream.state();
                            state.in_flight = None;
                            state.last_good_tasks.clone_from(&reading.last_good_tasks);
                            if reading.servable() {
                                state.last_served = Some(reading.finished);
                            }
                        }
                        let _ = sender.send(Some(reading));
                    });
                    receiver
                }
            }
        };
        let shared = result
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|reading| reading.clone());
        shared.unwrap_or_else(|| {
            // Only reachable if the fetch task itself failed; say so rather than hang.
            Arc::new(Reading {
                finished: Instant::now(),
                metadata: Collected {
                    result: Err(UpstreamError::FetchTaskEnded),
                    duration: Duration::ZERO,
                },
                stats: Collected {
                    result: Err(UpstreamError::FetchTaskEnded),
                    duration: Duration::ZERO,
                },
                last_good_tasks: None,
            })
        })
    }

    /// Whether the endpoint answered with something the exporter could serve within `window`.
    pub fn answered_within(&self, window: Duration) -> bool {
        self.state()
            .last_served
            .is_some_and(|at| at.elapsed() <= window)
    }

    async fn fetch(&self, previous_tasks: Option<Arc<Vec<Task>>>) -> Reading {
        let (metadata_path, stats_path) = match self.scope {
            Scope::Task => (paths::TASK, paths::TASK_STATS),
            Scope::Instance => (paths::TASKS, paths::TASKS_STATS),
        };
        let scope = self.scope;
        let url = |path: &str| format!("{}{path}", self.client.base_url());
        let (metadata, stats) = tokio::join!(
            self.collect(metadata_path, |body| {
                let tasks = parse_tasks(body).map_err(|source| UpstreamError::Document {
                    url: url(metadata_path),
                    source,
                })?;
                checked_tasks(tasks, scope)
                    .map(Arc::new)
                    .map_err(|source| UpstreamError::Tasks {
                        url: url(metadata_path),
                        source,
                    })
            }),
            self.collect(stats_path, |body| {
                parse_stats(body).map_err(|source| UpstreamError::Document {
                    url: url(stats_path),
                    source,
                })
            }),
        );
        let last_good_tasks = metadata.result.as_ref().ok().cloned().or(previous_tasks);
        Reading {
            finished: Instant::now(),
            metadata,
            stats,
            last_good_tasks,
        }
    }

    async fn collect<T>(
        &self,
        path: &str,
        parse: impl FnOnce(&[u8]) -> Result<T, UpstreamError>,
    ) -> Collected<T> {
        let started = Instant::now();
        let result = match self.client.fetch(path).await {
            Ok(body) => parse(&body),
            Err(error) => Err(UpstreamError::Fetch(error)),
        };
        if let Err(error) = &result {
            tracing::warn!(path, error = %web::error_chain(error), "metadata endpoint request failed");
        }
        Collected {
            result,
            duration: started.elapsed(),
        }
    }
}

/// Keeps the tasks that have an ARN, once each. In task scope the document must describe
/// exactly one: anything else (an error object answered with HTTP 200, say) is no task.
pub fn checked_tasks(tasks: Vec<Task>, scope: Scope) -> Result<Vec<Task>, TaskCountError> {
    let mut seen = std::collections::HashSet::new();
    let tasks: Vec<Task> = tasks
        .into_iter()
        .filter(|task| !task.task_arn.is_empty() && seen.insert(task.task_arn.clone()))
        .collect();
    match (scope, tasks.len()) {
        (Scope::Task, 1) | (Scope::Instance, _) => Ok(tasks),
        (Scope::Task, found) => Err(TaskCountError { found }),
    }
}

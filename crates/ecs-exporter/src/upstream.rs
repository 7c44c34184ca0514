//! Reading the metadata endpoint for scrapes: both documents fetched in parallel, one fetch
//! shared by every scrape that arrives while it runs, and the last good task metadata kept
//! so that stats can still be attributed to containers when a metadata request fails.

use crate::metrics::Scope;
use ecs_metadata::client::paths;
use ecs_metadata::{ContainerStats, MetadataClient, Task, parse_stats, parse_tasks};
use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::{Arc, Mutex as SyncMutex};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// The outcome of one collector (one upstream path) in one reading.
#[derive(Debug)]
pub struct Collected<T> {
    /// The parsed document, or why there is none, in words.
    pub result: Result<T, String>,
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
}

/// The endpoint, as seen by the HTTP handlers.
pub struct Upstream {
    client: MetadataClient,
    scope: Scope,
    latest: Mutex<Option<Arc<Reading>>>,
    last_success: SyncMutex<Option<Instant>>,
}

impl Upstream {
    /// An upstream reading `scope`'s paths through `client`.
    pub fn new(client: MetadataClient, scope: Scope) -> Self {
        Upstream {
            client,
            scope,
            latest: Mutex::new(None),
            last_success: SyncMutex::new(None),
        }
    }

    /// The base URL of the endpoint.
    pub fn base_url(&self) -> &str {
        self.client.base_url()
    }

    /// Reads both documents. A caller that arrives while another caller's fetch is under way
    /// waits for that fetch and shares its result instead of starting a second one.
    pub async fn read(&self) -> Arc<Reading> {
        let arrived = Instant::now();
        let mut latest = self.latest.lock().await;
        if let Some(reading) = latest.as_ref().filter(|r| r.finished >= arrived) {
            return Arc::clone(reading);
        }
        let previous_tasks = latest.as_ref().and_then(|r| r.last_good_tasks.clone());
        let reading = Arc::new(self.fetch(previous_tasks).await);
        if !reading.all_failed()
            && let Ok(mut last) = self.last_success.lock()
        {
            *last = Some(reading.finished);
        }
        *latest = Some(Arc::clone(&reading));
        reading
    }

    /// Whether the endpoint answered at least one request within `window`.
    pub fn answered_within(&self, window: Duration) -> bool {
        self.last_success
            .lock()
            .ok()
            .and_then(|last| *last)
            .is_some_and(|at| at.elapsed() <= window)
    }

    async fn fetch(&self, previous_tasks: Option<Arc<Vec<Task>>>) -> Reading {
        let (metadata_path, stats_path) = match self.scope {
            Scope::Task => (paths::TASK, paths::TASK_STATS),
            Scope::Instance => (paths::TASKS, paths::TASKS_STATS),
        };
        let (metadata, stats) = tokio::join!(
            self.collect(metadata_path, |doc| parse_tasks(doc).map(Arc::new)),
            self.collect(stats_path, parse_stats),
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
        parse: impl FnOnce(&[u8]) -> Result<T, ecs_metadata::DocumentError>,
    ) -> Collected<T> {
        let started = Instant::now();
        let result = match self.client.fetch(path).await {
            Ok(body) => parse(&body)
                .map_err(|e| format!("GET {}{path}: {}", self.client.base_url(), error_chain(&e))),
            Err(e) => Err(error_chain(&e)),
        };
        if let Err(reason) = &result {
            tracing::warn!(path, error = %reason, "metadata endpoint request failed");
        }
        Collected {
            result,
            duration: started.elapsed(),
        }
    }
}

/// An error and its sources, joined with `": "`.
pub fn error_chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

//! The ECS Task Metadata Endpoint v4: lenient models of the task and Docker-stats documents
//! it serves, and a client that fetches them over `web`'s bounded HTTP client (deadline and
//! size limit).
//!
//! The endpoint adds fields over time and the stats payload differs between cgroup v1,
//! cgroup v2 and Windows, so the models read what they know straight from the JSON text and
//! treat a missing field, or a field of the wrong type, as absent instead of failing.

pub mod client;
mod lenient;
pub mod stats;
pub mod task;

pub use client::{FetchError, InvalidBaseUrl, MetadataClient, paths};
pub use stats::{ContainerStats, NetworkCounters, parse_stats};
pub use task::{Container, Port, Task, parse_tasks};

/// A response body that is not a document of the expected kind: not JSON at all, or JSON of
/// another shape (for example `null` where a task object belongs).
#[derive(Debug, thiserror::Error)]
#[error("not a valid {what} document")]
pub struct DocumentError {
    /// Which document: "task metadata" or "container stats".
    pub what: &'static str,
    /// The parser's explanation, with line and column.
    #[source]
    pub source: serde_json::Error,
}

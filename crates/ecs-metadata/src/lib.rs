//! The ECS Task Metadata Endpoint v4: lenient models of the task and Docker-stats documents
//! it serves, and an HTTP client that fetches them with a timeout and a size limit.
//!
//! The endpoint adds fields over time and the stats payload differs between cgroup v1,
//! cgroup v2 and Windows, so the models read what they know from a `serde_json::Value` and
//! treat a missing field, or a field of the wrong type, as absent instead of failing.

pub mod client;
mod json;
pub mod stats;
pub mod task;
pub mod time;

pub use client::{FetchError, InvalidBaseUrl, MetadataClient};
pub use stats::{ContainerStats, parse_stats};
pub use task::{Container, Task, parse_tasks};

/// A document that is not the shape the endpoint documents (for example `null` where a task
/// object belongs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, found {found}")]
pub struct ShapeError {
    /// What the document should have been.
    pub expected: &'static str,
    /// What it was.
    pub found: &'static str,
}

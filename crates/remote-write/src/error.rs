//! Why the queue or the sender failed.

use std::path::PathBuf;

/// Every failure of this crate, naming the operation and keeping its cause.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A label set cannot be sent (an empty name or a name given twice).
    #[error("invalid label set: {reason}")]
    InvalidLabels {
        /// What is wrong.
        reason: String,
    },
    /// The queue directory could not be created or listed.
    #[error("opening the queue directory {}", .path.display())]
    OpenDirectory {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A segment file could not be created, read, written, flushed or removed.
    #[error("{operation} queue segment {}", .path.display())]
    Segment {
        /// `creating`, `reading`, `appending to`, `flushing`, `truncating`, `removing`.
        operation: &'static str,
        /// The segment.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint file could not be written.
    #[error("writing the queue checkpoint {}", .path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The remote-write URL cannot be used.
    #[error("invalid remote-write URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why.
        reason: &'static str,
    },
}

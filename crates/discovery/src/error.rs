//! Why a part of a refresh failed, kept typed until it is shown: on the status page, in
//! `--once`'s summary and in the logs.

use aws_api::AwsError;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why a container of a running task cannot be a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The port docker label is not a port.
    #[error("container {container:?}: {label} {value:?} is not a port number")]
    BadPort {
        /// The container.
        container: String,
        /// The docker label.
        label: &'static str,
        /// Its value.
        value: String,
    },
    /// The task has no address to reach it at yet.
    #[error("{network_mode}-mode task without {missing}")]
    NoAddress {
        /// awsvpc, host or bridge.
        network_mode: &'static str,
        /// What is missing.
        missing: &'static str,
    },
    /// A bridge-mode container has no host port for the labelled container port.
    #[error("container {container:?} has no host port bound to container port {port}")]
    NoHostPort {
        /// The container.
        container: String,
        /// The container port.
        port: u16,
    },
}

/// Why refreshing a source, the namespaces parameter or Prometheus' configuration failed.
/// Cheap to clone: the state served to HTTP requests keeps a copy.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RefreshError {
    /// An AWS call failed.
    #[error(transparent)]
    Aws(Arc<AwsError>),
    /// No Cloud Map namespace has the configured name.
    #[error("no Cloud Map namespace is named {0:?}")]
    UnknownNamespace(String),
    /// A running task could not be turned into targets (it is tried again next refresh).
    #[error("task {task_arn}: {source}")]
    Target {
        /// The task.
        task_arn: String,
        /// Why.
        #[source]
        source: TargetError,
    },
    /// The refresh's deadline passed before this part was done.
    #[error("not done within the refresh deadline of {0:?}")]
    Deadline(Duration),
    /// Several parts of one source failed.
    #[error("{}", Joined(.0))]
    Several(Vec<RefreshError>),
    /// Reading the SSM parameter holding Prometheus' configuration failed.
    #[error("reading the configuration parameter: {0}")]
    ConfigParameter(Arc<AwsError>),
    /// Writing Prometheus' configuration failed.
    #[error("writing {path}: {source}")]
    ConfigWrite {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// Prometheus did not take the reload request.
    #[error("asking Prometheus to reload at {url}: {reason}")]
    Reload {
        /// The reload URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl From<AwsError> for RefreshError {
    fn from(error: AwsError) -> Self {
        RefreshError::Aws(Arc::new(error))
    }
}

impl RefreshError {
    /// One error for a list of them: `None` when the list is empty.
    pub fn of_all(mut errors: Vec<RefreshError>) -> Option<RefreshError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(RefreshError::Several(errors)),
        }
    }
}

/// The errors of a list, separated by "; ".
struct Joined<'a>(&'a [RefreshError]);

impl fmt::Display for Joined<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_errors_read_as_one_line_and_one_stays_itself() {
        let deadline = RefreshError::Deadline(Duration::from_secs(3));
        let target = RefreshError::Target {
            task_arn: "arn:task/1".into(),
            source: TargetError::NoHostPort {
                container: "app".into(),
                port: 9090,
            },
        };
        assert!(RefreshError::of_all(Vec::new()).is_none());
        assert_eq!(
            RefreshError::of_all(vec![deadline.clone()])
                .expect("one")
                .to_string(),
            "not done within the refresh deadline of 3s"
        );
        assert_eq!(
            RefreshError::of_all(vec![deadline, target])
                .expect("two")
                .to_string(),
            "not done within the refresh deadline of 3s; task arn:task/1: container \"app\" has no host port bound to container port 9090"
        );
    }
}

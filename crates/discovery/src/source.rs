//! A source of targets: one Cloud Map namespace or one ECS cluster, named as configured.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which kind of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A Cloud Map namespace.
    CloudMap,
    /// An ECS cluster.
    Ecs,
}

impl SourceKind {
    /// The label value in metrics and the word on the status page.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::CloudMap => "cloudmap",
            SourceKind::Ecs => "ecs",
        }
    }
}

/// A source: a kind and the namespace or cluster name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceKey {
    /// Kind.
    pub kind: SourceKind,
    /// Namespace or cluster as configured.
    pub name: String,
}

impl SourceKey {
    /// A Cloud Map namespace.
    pub fn cloudmap(name: &str) -> Self {
        SourceKey {
            kind: SourceKind::CloudMap,
            name: name.to_owned(),
        }
    }

    /// An ECS cluster.
    pub fn ecs(name: &str) -> Self {
        SourceKey {
            kind: SourceKind::Ecs,
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.name)
    }
}

//! Why an agent configuration cannot be used.

use std::path::PathBuf;

/// Why an agent configuration cannot be used. Every variant but `Read` says where: the field's
/// path (`scrape_configs[0].scrape_timeout`) and its line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("reading {}", path.display())]
    Read {
        /// The configuration file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not YAML, or a field is unknown, unsupported, of the wrong type or has a
    /// value its own syntax refuses (a duration, a size, a label name, a relabel rule).
    #[error("{field} (line {line}): {reason}")]
    Parse {
        /// The field's path, as far as the YAML reader knows it.
        field: String,
        /// The line (1-based; 0 when unknown).
        line: u64,
        /// What the YAML reader says.
        reason: String,
        /// The YAML reader's error (boxed: it is large). Not chained as a source: `reason`
        /// already says what it says, and a log line would say it twice.
        yaml_error: Box<serde_saphyr::Error>,
    },
    /// A field's value is refused by a check Prometheus makes at load (a missing or repeated
    /// job name, a timeout above the interval, two credentials where one is allowed...).
    #[error("{field} (line {line}): {reason}")]
    Invalid {
        /// The field's path, e.g. `scrape_configs[1].scrape_timeout`.
        field: String,
        /// The line (1-based).
        line: u64,
        /// Why, in Prometheus' words where it has some.
        reason: String,
    },
}

impl ConfigError {
    /// The path of the field at fault (empty for `Read`).
    pub fn field(&self) -> &str {
        match self {
            ConfigError::Read { .. } => "",
            ConfigError::Parse { field, .. } | ConfigError::Invalid { field, .. } => field,
        }
    }

    /// The line of the field at fault (0 for `Read` or when unknown).
    pub fn line(&self) -> u64 {
        match self {
            ConfigError::Read { .. } => 0,
            ConfigError::Parse { line, .. } | ConfigError::Invalid { line, .. } => *line,
        }
    }
}

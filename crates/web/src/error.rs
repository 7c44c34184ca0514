//! Why a web configuration file cannot be used, and errors written out with their causes.

use std::path::PathBuf;

/// Why a web configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    /// The file could not be read.
    #[error("reading the web configuration file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not YAML of the expected shape (an unknown field, a wrong type).
    #[error("parsing the web configuration file {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and why, with the field's name (boxed: it carries a source snippet).
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A field has a value ecs-prom cannot use.
    #[error("web configuration file {path}: {field}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The field, dotted from the top (`tls_server_config.min_version`).
        field: String,
        /// Why.
        reason: String,
    },
}

/// `error` and every error below it, joined with `: `, for one log line. A cause whose
/// words the line already ends with (an error that quotes its source) is not repeated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let words = cause.to_string();
        if !text.ends_with(&words) {
            text.push_str(": ");
            text.push_str(&words);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {inner}")]
    struct Quoting {
        inner: std::io::Error,
        #[source]
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let quoting = Quoting {
            inner: std::io::Error::other("disk full"),
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(error_chain(&quoting), "outer: disk full");
        let plain = WebConfigError::Read {
            path: "/x".into(),
            source: std::io::Error::other("denied"),
        };
        assert_eq!(
            error_chain(&plain),
            "reading the web configuration file /x: denied"
        );
    }
}

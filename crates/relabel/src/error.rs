//! Why a relabel configuration cannot be used.

/// Why a relabel configuration cannot be used: the messages say what Prometheus would say.
#[derive(Debug, thiserror::Error)]
pub enum RelabelError {
    /// The YAML text is not a relabel configuration (bad syntax, an unknown field, a wrong type,
    /// or any of the checks below on one of its entries).
    #[error("parsing relabel configuration")]
    Parse {
        /// Where and why (boxed: the YAML reader's error is large).
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// The `regex` does not compile with RE2 syntax (look-around and backreferences among
    /// what RE2 refuses).
    #[error("invalid regex {pattern:?} in relabel configuration")]
    Regex {
        /// The pattern as written in the configuration.
        pattern: String,
        /// Why (boxed: the compiler's error is large).
        #[source]
        source: Box<regex::Error>,
    },
    /// The `regex` is refused by Go's parser though the `regex` crate would take it (a
    /// repetition of a repetition, a count above 1000, a group name that is not a word).
    #[error("invalid regex {pattern:?} in relabel configuration: {reason}")]
    RegexSyntax {
        /// The pattern as written in the configuration.
        pattern: String,
        /// Why, as Go says it.
        reason: String,
    },
    /// A field is missing, has a value Prometheus refuses, or does not belong to the action.
    #[error("{0}")]
    Invalid(String),
}

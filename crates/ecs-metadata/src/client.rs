//! The metadata endpoint's client: its base URL, its paths and `Accept: application/json`
//! over the shared bounded client, so a stuck or misbehaving endpoint cannot stall a scrape or
//! exhaust memory.

use bytes::Bytes;
use std::time::Duration;
use web::{Client, ClientError};

/// Paths under the endpoint's base URL.
pub mod paths {
    /// Metadata of the task the caller runs in.
    pub const TASK: &str = "/task";
    /// Docker stats of every container of the caller's task.
    pub const TASK_STATS: &str = "/task/stats";
    /// Metadata of every task on the instance (ECS Managed Instances daemon tasks).
    pub const TASKS: &str = "/tasks";
    /// Docker stats of every task on the instance (ECS Managed Instances daemon tasks).
    pub const TASKS_STATS: &str = "/tasks/stats";
}

/// The largest response body accepted by default. A `/tasks/stats` document for a busy
/// instance is around a megabyte.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// A base URL the client cannot use.
#[derive(Debug, thiserror::Error)]
#[error("invalid metadata endpoint URL {url:?}: {reason}")]
pub struct InvalidBaseUrl {
    /// The URL as given.
    pub url: String,
    /// Why it cannot be used.
    pub reason: &'static str,
}

/// Why a document could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// No complete answer: the connection, the deadline, the size limit or the body failed.
    #[error(transparent)]
    Http(#[from] ClientError),
    /// The endpoint answered with a status other than 200.
    #[error("GET {url} answered HTTP {status}: {body}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The start of the response body, for the operator.
        body: String,
    },
}

/// Fetches documents from one metadata endpoint.
#[derive(Clone, Debug)]
pub struct MetadataClient {
    base_url: String,
    http: Client,
}

impl MetadataClient {
    /// A client for the endpoint at `base_url` (for example the value of
    /// `ECS_CONTAINER_METADATA_URI_V4`). The endpoint is plain HTTP on a link-local address.
    pub fn new(base_url: &str, timeout: Duration) -> Result<Self, InvalidBaseUrl> {
        let invalid = |reason| InvalidBaseUrl {
            url: base_url.to_owned(),
            reason,
        };
        let uri: http::Uri = base_url.parse().map_err(|_| invalid("not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => {
                return Err(invalid(
                    "only http:// is supported (the endpoint has no TLS)",
                ));
            }
            None => return Err(invalid("it must start with http://")),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(invalid("it has no host"));
        }
        if uri.query().is_some() {
            return Err(invalid("it must not have a query string"));
        }
        Ok(MetadataClient {
            base_url: base_url.trim_end_matches('/').to_owned(),
            http: Client::new(timeout).with_max_body_bytes(DEFAULT_MAX_BODY_BYTES),
        })
    }

    /// Replaces the response size limit.
    pub fn with_max_body_bytes(mut self, limit: usize) -> Self {
        self.http = self.http.with_max_body_bytes(limit);
        self
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// GETs `path` (one of [`paths`]) and returns the body of a 200 answer, within the
    /// timeout.
    pub async fn fetch(&self, path: &str) -> Result<Bytes, FetchError> {
        let url = format!("{}{}", self.base_url, path);
        let response = self
            .http
            .get(&url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await?;
        if response.status != http::StatusCode::OK {
            let body = &response.body;
            let text = String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_owned();
            return Err(FetchError::Status {
                url,
                status: response.status.as_u16(),
                body: text,
            });
        }
        Ok(response.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_plain_http_base_urls() {
        let timeout = Duration::from_secs(1);
        let client =
            MetadataClient::new("http://169.254.170.2/v4/abc-123/", timeout).expect("valid");
        assert_eq!(client.base_url(), "http://169.254.170.2/v4/abc-123");
        for bad in [
            "",
            "169.254.170.2/v4",
            "https://169.254.170.2/v4",
            "http://",
            "http://h/v4?x=1",
            "not a url",
        ] {
            assert!(
                MetadataClient::new(bad, timeout).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }
}

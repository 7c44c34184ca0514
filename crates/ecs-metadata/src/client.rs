//! An HTTP client for the metadata endpoint: every request has a deadline and every
//! response body a size limit, so a stuck or misbehaving endpoint cannot stall a scrape or
//! exhaust memory.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::error::Error as StdError;
use std::time::Duration;

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
    /// The request could not be sent or the connection failed.
    #[error("GET {url} failed")]
    Request {
        /// The URL requested.
        url: String,
        /// The transport error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// No complete answer arrived within the timeout.
    #[error("GET {url} got no complete answer within {timeout:?}")]
    Timeout {
        /// The URL requested.
        url: String,
        /// The timeout in force.
        timeout: Duration,
    },
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
    /// The body was larger than the limit.
    #[error("GET {url} answered with a body larger than {limit} bytes")]
    TooLarge {
        /// The URL requested.
        url: String,
        /// The limit in force.
        limit: usize,
    },
    /// The body could not be read to its end (for example a truncated response).
    #[error("GET {url}: reading the response body failed")]
    Body {
        /// The URL requested.
        url: String,
        /// The transport error.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// Fetches documents from one metadata endpoint.
#[derive(Clone)]
pub struct MetadataClient {
    base_url: String,
    timeout: Duration,
    max_body_bytes: usize,
    http: Client<HttpConnector, Empty<Bytes>>,
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
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .build(connector);
        Ok(MetadataClient {
            base_url: base_url.trim_end_matches('/').to_owned(),
            timeout,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            http,
        })
    }

    /// Replaces the response size limit.
    pub fn with_max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
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
        match tokio::time::timeout(self.timeout, self.fetch_unbounded(&url)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout {
                url,
                timeout: self.timeout,
            }),
        }
    }

    async fn fetch_unbounded(&self, url: &str) -> Result<Bytes, FetchError> {
        let request = http::Request::get(url)
            .header(
                http::header::USER_AGENT,
                concat!("ecs-prom/", env!("CARGO_PKG_VERSION")),
            )
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| FetchError::Request {
                url: url.to_owned(),
                source: e.into(),
            })?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| FetchError::Request {
                url: url.to_owned(),
                source: e.into(),
            })?;
        let status = response.status();
        let body = Limited::new(response.into_body(), self.max_body_bytes)
            .collect()
            .await
            .map_err(|source| {
                if source.is::<http_body_util::LengthLimitError>() {
                    FetchError::TooLarge {
                        url: url.to_owned(),
                        limit: self.max_body_bytes,
                    }
                } else {
                    FetchError::Body {
                        url: url.to_owned(),
                        source,
                    }
                }
            })?
            .to_bytes();
        if status != http::StatusCode::OK {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_owned();
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
                body: text,
            });
        }
        Ok(body)
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

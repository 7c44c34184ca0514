//! Where requests go: any remote-write receiver over `web`'s bounded client, or an Amazon
//! Managed Service for Prometheus workspace through `aws-api`, signed with SigV4; and how each
//! answer is judged (sent, retried, or rejected).

use crate::error::Error;
use crate::protobuf::{CONTENT_ENCODING, CONTENT_TYPE, REMOTE_WRITE_VERSION};
use crate::retry::parse_retry_after;
use aws_api::{ApiRequest, AwsClient, AwsError, Service};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `User-Agent` of remote-write requests.
pub const USER_AGENT: &str = concat!("ecs-prom/", env!("CARGO_PKG_VERSION"));

/// A remote-write receiver.
#[derive(Clone)]
pub enum Endpoint {
    /// Any receiver (Prometheus, VictoriaMetrics, Mimir...) at `url`.
    Http {
        /// The bounded client (its timeout is each attempt's deadline).
        client: web::Client,
        /// The URL requests are POSTed to.
        url: String,
        /// Extra headers (a tenant ID, an `Authorization`).
        headers: Vec<(String, String)>,
    },
    /// An Amazon Managed Service for Prometheus workspace, signed with the client's
    /// credentials for service `aps`. Create the client with `max_attempts: 1`: the sender
    /// retries itself, with the remote-write policy.
    Amp {
        /// The AWS client of the workspace's region.
        client: Arc<AwsClient>,
        /// `/workspaces/<id>/api/v1/remote_write`, from the configured URL.
        path_and_query: String,
    },
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values may be credentials: only their names are shown.
        match self {
            Endpoint::Http { url, headers, .. } => f
                .debug_struct("Http")
                .field("url", url)
                .field(
                    "headers",
                    &headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
                )
                .finish_non_exhaustive(),
            Endpoint::Amp { path_and_query, .. } => f
                .debug_struct("Amp")
                .field("path_and_query", path_and_query)
                .finish_non_exhaustive(),
        }
    }
}

/// `https://aps-workspaces.<region>.amazonaws.com/workspaces/<id>/api/v1/remote_write` as the
/// path (and query) sent to the client's `aps` endpoint.
pub fn amp_path_and_query(url: &str) -> Result<String, Error> {
    let invalid = |reason| Error::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let uri: http::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    if !matches!(uri.scheme_str(), Some("https" | "http")) {
        return Err(invalid("not an https:// URL"));
    }
    let path = uri.path();
    let workspace = path
        .strip_prefix("/workspaces/")
        .and_then(|rest| rest.strip_suffix("/api/v1/remote_write"))
        .ok_or_else(|| invalid("not /workspaces/<id>/api/v1/remote_write"))?;
    if workspace.is_empty() || workspace.contains('/') {
        return Err(invalid("no workspace ID in the path"));
    }
    Ok(match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    })
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// A 2xx answer.
    Sent,
    /// A 5xx, a 429 or no answer: try again, after `after` if the receiver said so.
    Retry {
        /// The HTTP status (0 when there was no answer).
        status: u16,
        /// The receiver's `Retry-After`.
        after: Option<Duration>,
        /// What happened, for the log.
        reason: String,
    },
    /// Any other answer: the samples are dropped.
    Rejected {
        /// The HTTP status (0 when the request could not be made at all).
        status: u16,
        /// What happened, for the log.
        reason: String,
    },
}

fn now_unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn judge(status: u16, retry_after: Option<&str>, body: &[u8]) -> Attempt {
    let reason = || {
        let text = String::from_utf8_lossy(&body[..body.len().min(256)]);
        match text.trim() {
            "" => format!("HTTP {status}"),
            text => format!("HTTP {status}: {text}"),
        }
    };
    match status {
        200..=299 => Attempt::Sent,
        429 | 500..=599 => Attempt::Retry {
            status,
            after: retry_after.and_then(|v| parse_retry_after(v, now_unix_seconds())),
            reason: reason(),
        },
        _ => Attempt::Rejected {
            status,
            reason: reason(),
        },
    }
}

impl Endpoint {
    /// A plain receiver at `url`, through `client`.
    pub fn http(client: web::Client, url: &str) -> Result<Endpoint, Error> {
        web::parse_url(url).map_err(|_| Error::InvalidUrl {
            url: url.to_owned(),
            reason: "not an http:// or https:// URL",
        })?;
        Ok(Endpoint::Http {
            client,
            url: url.to_owned(),
            headers: Vec::new(),
        })
    }

    /// An AMP workspace's remote-write `url`, through `client`.
    pub fn amp(client: Arc<AwsClient>, url: &str) -> Result<Endpoint, Error> {
        Ok(Endpoint::Amp {
            client,
            path_and_query: amp_path_and_query(url)?,
        })
    }

    /// POSTs one compressed `WriteRequest` and judges the answer.
    pub async fn send(&self, body: Bytes) -> Attempt {
        match self {
            Endpoint::Http {
                client,
                url,
                headers,
            } => {
                let mut request = client
                    .post(url)
                    .header(http::header::CONTENT_ENCODING, CONTENT_ENCODING)
                    .header(http::header::CONTENT_TYPE, CONTENT_TYPE)
                    .header("x-prometheus-remote-write-version", REMOTE_WRITE_VERSION)
                    .header(http::header::USER_AGENT, USER_AGENT)
                    // An error page larger than this would be a failed read, retried: be generous.
                    .max_body_bytes(1024 * 1024);
                for (name, value) in headers {
                    request = request.header(name.as_str(), value.as_str());
                }
                match request.body(body).send().await {
                    Ok(response) => judge(
                        response.status.as_u16(),
                        response
                            .headers
                            .get(http::header::RETRY_AFTER)
                            .and_then(|v| v.to_str().ok()),
                        &response.body,
                    ),
                    Err(
                        web::ClientError::InvalidUrl { .. }
                        | web::ClientError::InvalidHeader { .. },
                    ) => Attempt::Rejected {
                        status: 0,
                        reason: "the request cannot be built".into(),
                    },
                    Err(error) => Attempt::Retry {
                        status: 0,
                        after: None,
                        reason: aws_api::error_chain(&error),
                    },
                }
            }
            Endpoint::Amp {
                client,
                path_and_query,
            } => {
                let request = ApiRequest {
                    service: Service::Aps,
                    operation: "RemoteWrite",
                    method: http::Method::POST,
                    path_and_query,
                    headers: vec![
                        ("content-encoding", CONTENT_ENCODING),
                        ("content-type", CONTENT_TYPE),
                        ("x-prometheus-remote-write-version", REMOTE_WRITE_VERSION),
                    ],
                    body,
                };
                match client.send(request).await {
                    Ok(_) => Attempt::Sent,
                    Err(AwsError::Api {
                        status,
                        code,
                        message,
                        ..
                    }) => judge(status, None, format!("{code}: {message}").as_bytes()),
                    Err(error @ AwsError::Endpoint { .. }) => Attempt::Rejected {
                        status: 0,
                        reason: aws_api::error_chain(&error),
                    },
                    // No answer, or no credentials yet: both may pass.
                    Err(error) => Attempt::Retry {
                        status: 0,
                        after: None,
                        reason: aws_api::error_chain(&error),
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_amp_path_comes_from_the_workspace_url() {
        assert_eq!(
            amp_path_and_query(
                "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1234/api/v1/remote_write"
            )
            .unwrap(),
            "/workspaces/ws-1234/api/v1/remote_write"
        );
        assert!(
            amp_path_and_query(
                "https://aps-workspaces.eu-west-1.amazonaws.com/api/v1/remote_write"
            )
            .is_err()
        );
        assert!(amp_path_and_query("ftp://x/workspaces/ws/api/v1/remote_write").is_err());
    }

    #[test]
    fn answers_are_judged_as_prometheus_does() {
        assert_eq!(judge(204, None, b""), Attempt::Sent);
        assert!(matches!(
            judge(503, None, b""),
            Attempt::Retry { after: None, .. }
        ));
        assert_eq!(
            judge(429, Some("2"), b""),
            Attempt::Retry {
                status: 429,
                after: Some(Duration::from_secs(2)),
                reason: "HTTP 429".into()
            }
        );
        assert!(
            matches!(judge(400, None, b"out of order"), Attempt::Rejected { status: 400, reason } if reason.contains("out of order"))
        );
        assert!(matches!(judge(404, None, b""), Attempt::Rejected { .. }));
    }
}

//! One HTTP exchange with a deadline and a response size limit, over HTTPS (AWS) or plain
//! HTTP (loopback test servers, the ECS and EC2 credential endpoints), through `web`'s bounded
//! client; what aws-api adds is its own limit and its errors.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::error::Error as StdError;
use std::time::Duration;
use web::{Client, ClientError};

/// The largest AWS response accepted: a page of 100 described tasks is a few hundred KiB.
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

/// Why an exchange gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Nothing complete arrived within the deadline.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// The connection or the request failed.
    #[error("request failed")]
    Request(#[source] Box<dyn StdError + Send + Sync>),
    /// The body was larger than the limit.
    #[error("response body larger than {0} bytes")]
    TooLarge(usize),
    /// The body could not be read to its end.
    #[error("reading the response body failed")]
    Body(#[source] Box<dyn StdError + Send + Sync>),
}

impl From<ClientError> for TransportError {
    fn from(error: ClientError) -> Self {
        match error {
            ClientError::Timeout { timeout, .. } => TransportError::Timeout(timeout),
            ClientError::TooLarge { limit, .. } => TransportError::TooLarge(limit),
            ClientError::Body { source, .. } => TransportError::Body(source),
            // The transport's own error, without the URL: a caller names the operation, and a
            // presigned or credential URL stays out of the logs.
            ClientError::Connect { source, .. } | ClientError::Request { source, .. } => {
                TransportError::Request(source)
            }
            other => TransportError::Request(Box::new(other)),
        }
    }
}

/// A complete answer.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: http::HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

/// A pooled HTTP/1.1 client for HTTPS and plain HTTP URLs.
#[derive(Clone, Debug)]
pub struct Http {
    client: Client,
}

impl Http {
    /// A client whose connections are set up within `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Self {
        Http {
            client: Client::new(connect_timeout).with_max_body_bytes(MAX_RESPONSE_BYTES),
        }
    }

    /// Sends `request` and reads the whole answer within `timeout`.
    pub async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Reply, TransportError> {
        let (parts, body) = request.into_parts();
        // A `Full` body is already in memory: collecting it neither waits nor fails.
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        let response = self
            .client
            .prepare(http::Request::from_parts(parts, body))
            .timeout(timeout)
            .send()
            .await?;
        Ok(Reply {
            status: response.status.as_u16(),
            headers: response.headers,
            body: response.body,
        })
    }
}

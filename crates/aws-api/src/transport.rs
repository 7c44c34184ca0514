//! One HTTP exchange with a deadline and a response size limit, over HTTPS (AWS) or plain
//! HTTP (loopback test servers, the ECS and EC2 credential endpoints).

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::error::Error as StdError;
use std::time::Duration;

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
#[derive(Clone)]
pub struct Http {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Http {
    /// A client whose connections are set up within `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(8)
            .build(https);
        Http { client }
    }

    /// Sends `request` and reads the whole answer within `timeout`.
    pub async fn send(
        &self,
        request: http::Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Reply, TransportError> {
        tokio::time::timeout(timeout, self.send_unbounded(request))
            .await
            .unwrap_or(Err(TransportError::Timeout(timeout)))
    }

    async fn send_unbounded(
        &self,
        request: http::Request<Full<Bytes>>,
    ) -> Result<Reply, TransportError> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| TransportError::Request(e.into()))?;
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|source| {
                if source.is::<http_body_util::LengthLimitError>() {
                    TransportError::TooLarge(MAX_RESPONSE_BYTES)
                } else {
                    TransportError::Body(source)
                }
            })?
            .to_bytes();
        Ok(Reply {
            status,
            headers: parts.headers,
            body,
        })
    }
}

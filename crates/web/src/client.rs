//! One bounded HTTP client for everything ecs-prom fetches: a deadline on the whole
//! exchange, a limit on the body (after decompression too), headers chosen by the caller, and
//! redirects never followed.
//!
//! Connections are pooled, HTTP/1.1, over plain HTTP or over HTTPS with rustls (ring) and the
//! webpki roots built in, so a distroless image needs no CA bundle; [`Client::with_tls`] takes
//! Prometheus' `tls_config` instead ([`ClientTls`]). A 3xx answer is returned as
//! it is: every caller talks to one endpoint it was configured with, and a redirect elsewhere
//! is for the operator to see, not for the client to chase.

pub use crate::client_tls::ClientTls;
use bytes::{Bytes, BytesMut};
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, USER_AGENT};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as PooledClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::error::Error as StdError;
use std::io::Write as _;
use std::time::Duration;

/// The largest response body accepted unless the client or the request says otherwise.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The `User-Agent` sent when the caller sets none.
pub const DEFAULT_USER_AGENT: &str = concat!("ecs-prom/", env!("CARGO_PKG_VERSION"));

/// A transport error, as hyper gives it.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Why an exchange gave no complete answer. Every variant names the method and URL, so a
/// caller can log it as it is.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL cannot be requested (not a URL, not http:// or https://, no host).
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// A setting of the [`ClientTls`] given to [`Client::with_tls`] cannot be used (a PEM
    /// document without a certificate, a key that does not parse or does not match, a
    /// certificate without its key).
    #[error("client TLS setting {field}: {reason}")]
    InvalidTls {
        /// The setting, named as in Prometheus' `tls_config` (`ca`, `cert`, `key`,
        /// `server_name`).
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A header name or value the caller gave is not valid HTTP.
    #[error("{method} {url}: invalid request header {name:?}")]
    InvalidHeader {
        /// The request method.
        method: Method,
        /// The URL requested.
        url: String,
        /// The header's name, as far as it could be read.
        name: String,
    },
    /// No connection could be made (refused, unreachable, DNS, TLS handshake).
    #[error("{method} {url} failed: could not connect")]
    Connect {
        /// The request method.
        method: Method,
        /// The URL requested.
        url: String,
        /// The connector's error.
        #[source]
        source: BoxError,
    },
    /// The request could not be sent or the connection failed before the answer's headers.
    #[error("{method} {url} failed")]
    Request {
        /// The request method.
        method: Method,
        /// The URL requested.
        url: String,
        /// The transport error.
        #[source]
        source: BoxError,
    },
    /// No complete answer (headers and body) arrived within the deadline.
    #[error("{method} {url} got no complete answer within {timeout:?}")]
    Timeout {
        /// The request method.
        method: Method,
        /// The URL requested.
        url: String,
        /// The deadline in force.
        timeout: Duration,
    },
    /// The body, as sent or once decompressed, was larger than the limit.
    #[error("{method} {url} answered with a body larger than {limit} bytes")]
    TooLarge {
        /// The request method.
        method: Method,
        /// The URL requested.
        url: String,
        /// The limit in force.
        limit: usize,
    },
    /// The body could not be read to its end (for example a truncated response).
    #[error("{method} {url}: reading the response body failed")]
    Body {
        /// The request method.
        method: Method,
        /// The URL requested.
        url: String,
        /// The transport error.
        #[source]
        source: BoxError,
    },
    /// The body said it was gzip but could not be decompressed.
    #[error("{method} {url}: decompressing the gzip response body failed")]
    Decode {
        /// The request method.
        method: Method,
        /// The URL requested.
        url: String,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
}

impl ClientError {
    /// Whether the deadline ran out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Timeout { .. })
    }
}

/// A complete answer, whatever its status: a 3xx, 4xx or 5xx is an answer too.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: StatusCode,
    /// Response headers; when the client decompressed the body, without `Content-Encoding`
    /// and `Content-Length`, which described the compressed body.
    pub headers: HeaderMap,
    /// The whole body, decompressed when the client asked for gzip and got it.
    pub body: Bytes,
}

/// A pooled HTTP/1.1 client for `http://` and `https://` URLs whose every exchange has a
/// deadline and a body size limit. Cloning is cheap and shares the connection pool.
#[derive(Clone)]
pub struct Client {
    pool: PooledClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    max_body_bytes: usize,
    gzip: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("gzip", &self.gzip)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client whose exchanges each complete within `timeout` (connecting, sending, the
    /// answer's headers and its whole body), with bodies of at most
    /// [`DEFAULT_MAX_BODY_BYTES`] and no compression asked for.
    pub fn new(timeout: Duration) -> Client {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp_connector(timeout));
        Client::pooled(https, timeout)
    }

    /// As [`Client::new`], with the TLS settings of `tls` for `https://` URLs (`http://` URLs
    /// are still fetched in plain text, as Prometheus ignores `tls_config` for them). Every
    /// setting is checked now, so a wrong CA or key stops the start instead of the first
    /// request.
    ///
    /// `server_name` is both the name the certificate is verified against and the SNI sent in
    /// the handshake; the `Host` header stays the URL's host.
    pub fn with_tls(timeout: Duration, tls: &ClientTls) -> Result<Client, ClientError> {
        let parts = crate::client_tls::build(tls).map_err(|invalid| ClientError::InvalidTls {
            field: invalid.field,
            reason: invalid.reason,
        })?;
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(parts.config)
            .https_or_http();
        let builder = match parts.server_name {
            Some(name) => {
                builder.with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
            }
            None => builder,
        };
        let https = builder
            .enable_http1()
            .wrap_connector(tcp_connector(timeout));
        Ok(Client::pooled(https, timeout))
    }

    fn pooled(https: HttpsConnector<HttpConnector>, timeout: Duration) -> Client {
        let pool = PooledClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(8)
            .build(https);
        Client {
            pool,
            timeout,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            gzip: false,
        }
    }

    /// Replaces the body size limit of every request (a request can still set its own).
    pub fn with_max_body_bytes(mut self, limit: usize) -> Client {
        self.max_body_bytes = limit;
        self
    }

    /// Asks for gzip (`Accept-Encoding: gzip`) on every request and decompresses what comes
    /// back gzip-encoded, within the body size limit.
    pub fn with_gzip(mut self, gzip: bool) -> Client {
        self.gzip = gzip;
        self
    }

    /// The deadline of each exchange.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The body size limit.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// A GET of `url`.
    pub fn get(&self, url: &str) -> RequestBuilder<'_> {
        self.request(Method::GET, url)
    }

    /// A POST to `url`.
    pub fn post(&self, url: &str) -> RequestBuilder<'_> {
        self.request(Method::POST, url)
    }

    /// A request of any method to `url`; the URL is checked when it is sent.
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder<'_> {
        let mut builder = self.prepare(http::Request::new(Bytes::new()));
        *builder.request.method_mut() = method;
        match parse_url(url) {
            Ok(uri) => *builder.request.uri_mut() = uri,
            Err(error) => builder.error = Some(error),
        }
        builder
    }

    /// A request built elsewhere (aws-api signs its own), sent with this client's deadline,
    /// limit and compression unless the builder changes them.
    pub fn prepare(&self, request: http::Request<Bytes>) -> RequestBuilder<'_> {
        RequestBuilder {
            client: self,
            request,
            timeout: self.timeout,
            max_body_bytes: self.max_body_bytes,
            gzip: self.gzip,
            error: None,
        }
    }

    /// Sends a request built elsewhere with this client's deadline, limit and compression.
    pub async fn send(&self, request: http::Request<Bytes>) -> Result<Response, ClientError> {
        self.prepare(request).send().await
    }
}

/// The TCP side of every client's connector.
fn tcp_connector(timeout: Duration) -> HttpConnector {
    let mut connector = HttpConnector::new();
    // The deadline covers connecting too; this only frees the socket of a connect that
    // outlives it.
    connector.set_connect_timeout(Some(timeout));
    connector.set_nodelay(true);
    connector.enforce_http(false);
    connector
}

/// One request being put together; nothing is sent before [`RequestBuilder::send`].
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder<'a> {
    client: &'a Client,
    request: http::Request<Bytes>,
    timeout: Duration,
    max_body_bytes: usize,
    gzip: bool,
    /// The first mistake in building, reported by `send` so that calls chain.
    error: Option<ClientError>,
}

impl RequestBuilder<'_> {
    /// Adds a header (repeated names are all sent).
    pub fn header<K, V>(mut self, name: K, value: V) -> Self
    where
        K: TryInto<HeaderName>,
        V: TryInto<HeaderValue>,
    {
        if self.error.is_some() {
            return self;
        }
        match name.try_into() {
            Ok(name) => match value.try_into() {
                Ok(value) => {
                    self.request.headers_mut().append(name, value);
                }
                Err(_) => self.error = Some(self.invalid_header(name.as_str())),
            },
            Err(_) => self.error = Some(self.invalid_header("?")),
        }
        self
    }

    /// Adds every header of `headers`.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        let mut name = None;
        for (next, value) in headers {
            // The iterator names a header once, before the first of its values.
            name = next.or(name);
            if let Some(name) = &name {
                self.request.headers_mut().append(name.clone(), value);
            }
        }
        self
    }

    /// The request body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        *self.request.body_mut() = body.into();
        self
    }

    /// The deadline of this exchange.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The body size limit of this exchange.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Whether to ask for gzip and decompress it.
    pub fn gzip(mut self, gzip: bool) -> Self {
        self.gzip = gzip;
        self
    }

    fn invalid_header(&self, name: &str) -> ClientError {
        ClientError::InvalidHeader {
            method: self.request.method().clone(),
            url: self.request.uri().to_string(),
            name: name.to_owned(),
        }
    }

    /// Sends the request and reads the whole answer within the deadline.
    pub async fn send(self) -> Result<Response, ClientError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let RequestBuilder {
            client,
            request,
            timeout,
            max_body_bytes,
            gzip,
            error: _,
        } = self;
        check_url(request.uri())?;
        let method = request.method().clone();
        let url = request.uri().to_string();
        let exchange = Exchange {
            method: method.clone(),
            url: url.clone(),
            limit: max_body_bytes,
        };
        match tokio::time::timeout(timeout, exchange.run(&client.pool, request, gzip)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout {
                method,
                url,
                timeout,
            }),
        }
    }
}

/// `url` as the client would request it: an absolute http:// or https:// URL with a host.
/// For checking a configured URL when the program starts rather than at its first request.
pub fn parse_url(url: &str) -> Result<Uri, ClientError> {
    let uri = url.parse::<Uri>().map_err(|_| ClientError::InvalidUrl {
        url: url.to_owned(),
        reason: "not a URL",
    })?;
    check_url(&uri)?;
    Ok(uri)
}

/// Only absolute http:// and https:// URLs with a host can be requested.
fn check_url(uri: &Uri) -> Result<(), ClientError> {
    let invalid = |reason| ClientError::InvalidUrl {
        url: uri.to_string(),
        reason,
    };
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(_) => return Err(invalid("only http:// and https:// URLs are supported")),
        None => return Err(invalid("it must start with http:// or https://")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("it has no host"));
    }
    Ok(())
}

/// What an exchange's errors name.
struct Exchange {
    method: Method,
    url: String,
    limit: usize,
}

impl Exchange {
    async fn run(
        self,
        pool: &PooledClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
        request: http::Request<Bytes>,
        gzip: bool,
    ) -> Result<Response, ClientError> {
        let (mut parts, body) = request.into_parts();
        if !parts.headers.contains_key(USER_AGENT) {
            parts
                .headers
                .insert(USER_AGENT, HeaderValue::from_static(DEFAULT_USER_AGENT));
        }
        if gzip {
            parts
                .headers
                .insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let request = http::Request::from_parts(parts, Full::new(body));
        let response = pool.request(request).await.map_err(|error| {
            let (method, url) = (self.method.clone(), self.url.clone());
            if error.is_connect() {
                ClientError::Connect {
                    method,
                    url,
                    source: error.into(),
                }
            } else {
                ClientError::Request {
                    method,
                    url,
                    source: error.into(),
                }
            }
        })?;
        let (mut parts, mut body) = response.into_parts();
        // A declared length over the limit fails before a byte of the body is read.
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|length| length > self.limit as u64) {
            return Err(self.too_large());
        }
        let gzipped = gzip
            && parts
                .headers
                .get(CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
        let mut sink = if gzipped {
            Sink::Gzip {
                decoder: Box::new(flate2::write::GzDecoder::new(Bounded {
                    data: Vec::new(),
                    limit: self.limit,
                    exceeded: false,
                })),
                received: 0,
            }
        } else {
            Sink::Plain(BytesMut::new())
        };
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|error| ClientError::Body {
                method: self.method.clone(),
                url: self.url.clone(),
                source: error.into(),
            })?;
            if let Ok(data) = frame.into_data() {
                sink.push(&data, &self)?;
            }
        }
        let body = sink.finish(&self)?;
        if gzipped {
            parts.headers.remove(CONTENT_ENCODING);
            parts.headers.remove(CONTENT_LENGTH);
        }
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    fn too_large(&self) -> ClientError {
        ClientError::TooLarge {
            method: self.method.clone(),
            url: self.url.clone(),
            limit: self.limit,
        }
    }

    fn decode_error(&self, source: std::io::Error) -> ClientError {
        ClientError::Decode {
            method: self.method.clone(),
            url: self.url.clone(),
            source,
        }
    }
}

/// Where the body goes as it arrives; neither kind ever holds more than the limit.
enum Sink {
    Plain(BytesMut),
    Gzip {
        decoder: Box<flate2::write::GzDecoder<Bounded>>,
        /// Compressed bytes so far: they count against the limit as well.
        received: usize,
    },
}

impl Sink {
    fn push(&mut self, data: &[u8], exchange: &Exchange) -> Result<(), ClientError> {
        match self {
            Sink::Plain(buffer) => {
                if buffer.len().saturating_add(data.len()) > exchange.limit {
                    return Err(exchange.too_large());
                }
                buffer.extend_from_slice(data);
                Ok(())
            }
            Sink::Gzip { decoder, received } => {
                *received = received.saturating_add(data.len());
                if *received > exchange.limit {
                    return Err(exchange.too_large());
                }
                decoder
                    .write_all(data)
                    .map_err(|error| gzip_error(decoder.get_ref(), error, exchange))
            }
        }
    }

    fn finish(self, exchange: &Exchange) -> Result<Bytes, ClientError> {
        match self {
            Sink::Plain(buffer) => Ok(buffer.freeze()),
            // An empty body announced as gzip (a HEAD, a 204) has nothing to decode.
            Sink::Gzip { received: 0, .. } => Ok(Bytes::new()),
            Sink::Gzip {
                mut decoder,
                received: _,
            } => {
                decoder
                    .try_finish()
                    .map_err(|error| gzip_error(decoder.get_ref(), error, exchange))?;
                match decoder.finish() {
                    Ok(bounded) => Ok(Bytes::from(bounded.data)),
                    Err(error) => Err(exchange.decode_error(error)),
                }
            }
        }
    }
}

/// A decoder's write error: the limit when the output refused more, else a bad stream.
fn gzip_error(output: &Bounded, error: std::io::Error, exchange: &Exchange) -> ClientError {
    if output.exceeded {
        exchange.too_large()
    } else {
        exchange.decode_error(error)
    }
}

/// The decompressed body, refusing to grow past the limit: a small gzip that inflates to
/// gigabytes stops here, at the limit.
struct Bounded {
    data: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.data.len().saturating_add(buf.len()) > self.limit {
            self.exceeded = true;
            return Err(std::io::Error::other("the body size limit"));
        }
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;

    /// A request as the test server read it.
    #[derive(Debug)]
    struct Recorded {
        head: String,
        body: Vec<u8>,
    }

    impl Recorded {
        /// The values of header `name` (case-insensitive), in order.
        fn header(&self, name: &str) -> Vec<String> {
            self.head
                .lines()
                .skip(1)
                .filter_map(|line| line.split_once(':'))
                .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
                .collect()
        }
    }

    /// A loopback server: reads each request, records it, then lets `answer` write to the
    /// socket. Returns its base URL and the recorded requests.
    async fn server<F, Fut>(answer: F) -> (String, mpsc::UnboundedReceiver<Recorded>)
    where
        F: Fn(String, TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (recorded, requests) = mpsc::unbounded_channel();
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (answer, recorded) = (Arc::clone(&answer), recorded.clone());
                tokio::spawn(async move {
                    let Some(request) = read_request(&mut socket).await else {
                        return;
                    };
                    let path = request
                        .head
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("")
                        .to_owned();
                    let _ = recorded.send(request);
                    answer(path, socket).await;
                });
            }
        });
        (url, requests)
    }

    async fn read_request(socket: &mut TcpStream) -> Option<Recorded> {
        let mut buffer = Vec::new();
        let end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
        let mut body = buffer[end + 4..].to_vec();
        let length = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        while body.len() < length {
            let mut chunk = [0u8; 4096];
            let n = socket.read(&mut chunk).await.ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        Some(Recorded { head, body })
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out_at_the_deadline() {
        let (url, _requests) = server(|_, socket| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(socket);
        })
        .await;
        let timeout = Duration::from_millis(300);
        let started = Instant::now();
        let error = Client::new(timeout).get(&url).send().await.unwrap_err();
        let took = started.elapsed();
        assert!(error.is_timeout(), "{error}");
        assert!(
            error
                .to_string()
                .contains("no complete answer within 300ms"),
            "{error}"
        );
        assert!(
            took >= timeout && took < Duration::from_secs(2),
            "took {took:?}"
        );
    }

    #[tokio::test]
    async fn a_body_sent_slowly_times_out_at_the_deadline() {
        // The headers come at once; the body, a byte every 100 ms, would take 10 s.
        let (url, _requests) = server(|_, mut socket| async move {
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
                .await;
            for _ in 0..100 {
                if socket.write_all(b"x").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        let timeout = Duration::from_millis(500);
        let started = Instant::now();
        let error = Client::new(timeout).get(&url).send().await.unwrap_err();
        assert!(matches!(error, ClientError::Timeout { .. }), "{error}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_huge_body_stops_at_the_limit_without_reading_it_all() {
        // Chunked, so no Content-Length warns the client: the limit must hold while reading.
        let written = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&written);
        let (url, _requests) = server(move |_, mut socket| {
            let counter = Arc::clone(&counter);
            async move {
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                    .await;
                let chunk = format!("10000\r\n{}\r\n", "a".repeat(0x10000));
                // Up to 1 GiB, unless the client hangs up first.
                for _ in 0..16 * 1024 {
                    if socket.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    counter.fetch_add(0x10000, Ordering::SeqCst);
                }
            }
        })
        .await;
        let limit = 1024 * 1024;
        let error = Client::new(Duration::from_secs(20))
            .with_max_body_bytes(limit)
            .get(&url)
            .send()
            .await
            .unwrap_err();
        assert!(
            matches!(error, ClientError::TooLarge { limit: l, .. } if l == limit),
            "{error}"
        );
        assert!(
            error.to_string().contains("larger than 1048576 bytes"),
            "{error}"
        );
        // The server is stopped by the hang-up long before its gigabyte is out.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = written.load(Ordering::SeqCst);
        assert!(sent < 64 * 1024 * 1024, "the server wrote {sent} bytes");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_fails_before_the_body() {
        let (url, _requests) = server(|_, mut socket| async move {
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5000000\r\n\r\n")
                .await;
            // The body never comes: only the declared length can end this in time.
            tokio::time::sleep(Duration::from_secs(30)).await;
        })
        .await;
        let error = Client::new(Duration::from_secs(5))
            .with_max_body_bytes(1000)
            .get(&url)
            .send()
            .await
            .unwrap_err();
        assert!(matches!(error, ClientError::TooLarge { .. }), "{error}");
    }

    #[tokio::test]
    async fn a_body_at_the_limit_is_read_whole() {
        let (url, _requests) = server(|_, mut socket| async move {
            let body = "b".repeat(1000);
            let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
            let _ = socket.write_all(format!("{head}{body}").as_bytes()).await;
        })
        .await;
        let response = Client::new(Duration::from_secs(5))
            .with_max_body_bytes(1000)
            .get(&url)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.body, Bytes::from("b".repeat(1000)));
    }

    /// Answers `original` gzip-encoded to every request, asked for or not: what the client
    /// asked for is in the recorded requests.
    async fn gzip_server(original: &[u8]) -> (String, mpsc::UnboundedReceiver<Recorded>) {
        let compressed = Arc::new(gzip(original));
        server(move |_, mut socket| {
            let compressed = Arc::clone(&compressed);
            async move {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: {}\r\n\r\n",
                    compressed.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&compressed).await;
            }
        })
        .await
    }

    #[tokio::test]
    async fn a_gzip_bomb_stops_at_the_limit() {
        // 256 MiB of zeros in a few hundred KiB.
        let bomb = vec![0u8; 256 * 1024 * 1024];
        let (url, _requests) = gzip_server(&bomb).await;
        let limit = 1024 * 1024;
        let error = Client::new(Duration::from_secs(20))
            .with_max_body_bytes(limit)
            .with_gzip(true)
            .get(&url)
            .send()
            .await
            .unwrap_err();
        assert!(
            matches!(error, ClientError::TooLarge { limit: l, .. } if l == limit),
            "{error}"
        );
    }

    #[tokio::test]
    async fn gzip_is_asked_for_and_decoded_only_when_wanted() {
        let original: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("metric_{} {i}\n", i % 97).into_bytes())
            .collect();
        let compressed_length = gzip(&original).len();
        let (url, mut requests) = gzip_server(&original).await;
        let client = Client::new(Duration::from_secs(10));

        let response = client.get(&url).gzip(true).send().await.unwrap();
        assert_eq!(response.body.len(), original.len());
        assert!(response.body == original, "the decoded body differs");
        assert!(response.headers.get(CONTENT_ENCODING).is_none());
        assert!(response.headers.get(CONTENT_LENGTH).is_none());
        let asked = requests.recv().await.unwrap();
        assert_eq!(asked.header("accept-encoding"), ["gzip"]);

        // Without gzip nothing is asked for and the body comes back as it was sent.
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.body.len(), compressed_length);
        assert_eq!(
            response.headers.get(CONTENT_ENCODING).unwrap(),
            HeaderValue::from_static("gzip")
        );
        let plain = requests.recv().await.unwrap();
        assert!(plain.header("accept-encoding").is_empty(), "{plain:?}");
    }

    #[tokio::test]
    async fn a_corrupt_gzip_body_is_a_decode_error() {
        let (url, _requests) = server(|_, mut socket| async move {
            let body = b"this is not gzip at all";
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body).await;
        })
        .await;
        let error = Client::new(Duration::from_secs(5))
            .with_gzip(true)
            .get(&url)
            .send()
            .await
            .unwrap_err();
        assert!(matches!(error, ClientError::Decode { .. }), "{error}");
    }

    #[tokio::test]
    async fn a_redirect_is_returned_not_followed() {
        let (url, mut requests) = server(|path, mut socket| async move {
            let answer = if path == "/old" {
                "HTTP/1.1 302 Found\r\nlocation: /new\r\ncontent-length: 0\r\n\r\n"
            } else {
                "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nnew"
            };
            let _ = socket.write_all(answer.as_bytes()).await;
        })
        .await;
        let response = Client::new(Duration::from_secs(5))
            .get(&format!("{url}/old"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::FOUND);
        assert_eq!(response.headers.get("location").unwrap(), "/new");
        assert!(response.body.is_empty());
        let first = requests.recv().await.unwrap();
        assert!(first.head.starts_with("GET /old "), "{}", first.head);
        // No second request follows.
        let second = tokio::time::timeout(Duration::from_millis(300), requests.recv()).await;
        assert!(second.is_err(), "the redirect was followed: {second:?}");
    }

    #[tokio::test]
    async fn method_headers_and_body_are_sent_as_given() {
        let (url, mut requests) = server(|_, mut socket| async move {
            let _ = socket
                .write_all(b"HTTP/1.1 201 Created\r\nx-answer: yes\r\ncontent-length: 2\r\n\r\nok")
                .await;
        })
        .await;
        let client = Client::new(Duration::from_secs(5));
        let response = client
            .request(Method::PUT, &format!("{url}/things?id=7"))
            .header("x-test", "one")
            .header("x-test", "two")
            .header(http::header::ACCEPT, "application/json")
            .body("{\"a\":1}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::CREATED);
        assert_eq!(response.headers.get("x-answer").unwrap(), "yes");
        assert_eq!(response.body, Bytes::from_static(b"ok"));
        let sent = requests.recv().await.unwrap();
        assert!(
            sent.head.starts_with("PUT /things?id=7 HTTP/1.1"),
            "{}",
            sent.head
        );
        assert_eq!(sent.header("x-test"), ["one", "two"]);
        assert_eq!(sent.header("accept"), ["application/json"]);
        assert_eq!(sent.header("user-agent"), [DEFAULT_USER_AGENT]);
        assert!(sent.header("accept-encoding").is_empty());
        assert_eq!(sent.body, b"{\"a\":1}");

        // A caller's User-Agent replaces the default one.
        client
            .get(&url)
            .header(USER_AGENT, "probe/1")
            .send()
            .await
            .unwrap();
        assert_eq!(
            requests.recv().await.unwrap().header("user-agent"),
            ["probe/1"]
        );
    }

    #[tokio::test]
    async fn a_truncated_body_is_a_body_error() {
        let (url, _requests) = server(|_, mut socket| async move {
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n{\"Cluster\": ")
                .await;
        })
        .await;
        let error = Client::new(Duration::from_secs(5))
            .get(&url)
            .send()
            .await
            .unwrap_err();
        assert!(matches!(error, ClientError::Body { .. }), "{error}");
        assert!(
            error
                .to_string()
                .contains("reading the response body failed"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_closed_port_is_a_connect_error() {
        let address = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let error = Client::new(Duration::from_secs(5))
            .get(&format!("http://{address}/"))
            .send()
            .await
            .unwrap_err();
        assert!(matches!(error, ClientError::Connect { .. }), "{error}");
    }

    #[tokio::test]
    async fn https_is_spoken_to_an_https_url() {
        // A plain HTTP server that answers whatever arrives first: a client speaking HTTP reads
        // its 200; one that opened with a TLS handshake reads no TLS and fails to connect.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let _ = socket.read(&mut [0u8; 4096]).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
            }
        });
        // TLS settings change nothing for http:// URLs, as Prometheus ignores tls_config there.
        let with_tls = Client::with_tls(
            Duration::from_secs(5),
            &ClientTls {
                insecure_skip_verify: true,
                ..ClientTls::default()
            },
        )
        .unwrap();
        for client in [Client::new(Duration::from_secs(5)), with_tls] {
            let plain = client.get(&url).send().await.unwrap();
            assert_eq!(plain.body, Bytes::from_static(b"ok"));
            let https = url.replacen("http://", "https://", 1);
            let error = client.get(&https).send().await.unwrap_err();
            assert!(matches!(error, ClientError::Connect { .. }), "{error}");
        }
    }

    #[tokio::test]
    async fn unusable_urls_and_headers_are_refused_before_sending() {
        let client = Client::new(Duration::from_secs(1));
        for url in [
            "",
            "not a url",
            "ftp://example.com/",
            "/relative",
            "http://",
        ] {
            let error = client.get(url).send().await.unwrap_err();
            assert!(
                matches!(error, ClientError::InvalidUrl { .. }),
                "{url:?}: {error}"
            );
            assert!(parse_url(url).is_err(), "{url:?}");
        }
        for url in ["http://127.0.0.1:9/metrics", "https://example.com/"] {
            assert_eq!(parse_url(url).unwrap().to_string(), url);
        }
        let error = client
            .get("http://127.0.0.1:9/")
            .header("x-bad", "line\nbreak")
            .send()
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ClientError::InvalidHeader { name, .. } if name == "x-bad"),
            "{error}"
        );
    }
}

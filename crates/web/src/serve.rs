//! Serving a router on a listener so that slow or hostile clients cannot wear the server
//! down: a deadline for each request's headers, an idle keep-alive timeout, a cap on open
//! connections that closes the oldest idle one instead of refusing a scrape, accept errors
//! (EMFILE) logged once with a back-off instead of a spin, TLS when the web configuration
//! asks for it, and graceful shutdown.

use crate::config::WebConfig;
use crate::connections::{Admission, Closing, Connection, Connections, Limits};
use crate::tls::TlsServer;
use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Limits of [`serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How long a client may take to send a request's headers, counted from the connection's
    /// accept for its first request and from the first byte of each later one (with TLS, the
    /// handshake counts towards the first request's).
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may stay idle between requests, and how long a client
    /// may pause reading a response.
    pub idle_timeout: Duration,
    /// Most connections open at once; at the cap the connection that has waited longest for
    /// a request is closed to make room. Lowered by itself when the process runs out of file
    /// descriptors first.
    pub max_connections: usize,
    /// After shutdown starts, how long requests in flight may take to finish before their
    /// connections are dropped.
    pub shutdown_timeout: Duration,
}

impl Default for ServeOptions {
    /// 10s to send headers, as a scrape's headers take milliseconds and Prometheus' default
    /// scrape timeout is 10s; 60s idle, so a keep-alive connection survives the usual 15s to
    /// 60s between scrapes; 512 connections, as Prometheus' `--web.max-connections`; 10s to
    /// finish in-flight requests, well inside ECS' 30s stop timeout.
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// The addresses to try for a `--web.listen-address`: `:PORT` means every interface, IPv6
/// and IPv4 (`[::]:PORT`, dual-stack where the host allows it, then `0.0.0.0:PORT`).
pub fn listen_addresses(flag: &str) -> Vec<String> {
    match flag.strip_prefix(':') {
        Some(port) => vec![format!("[::]:{port}"), format!("0.0.0.0:{port}")],
        None => vec![flag.to_owned()],
    }
}

/// How many connections the kernel queues before they are accepted: a burst of clients (or
/// of hostile connections) should not make a scrape's SYN wait for a retransmission.
const BACKLOG: i32 = 1024;

/// Listens on a `--web.listen-address`, trying each of its [`listen_addresses`] in turn.
/// `[::]` is made dual-stack explicitly (IPv4 clients too) whatever the host's
/// `net.ipv6.bindv6only`; where IPv6 is disabled, `0.0.0.0` is used instead.
pub async fn listen(flag: &str) -> io::Result<TcpListener> {
    let mut last_error = None;
    for address in listen_addresses(flag) {
        match bind(&address).await {
            Ok(listener) => return Ok(listener),
            Err(error) => {
                last_error = Some(io::Error::new(
                    error.kind(),
                    format!("listening on {address}: {error}"),
                ))
            }
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("listening on {flag}: no address"),
        )
    }))
}

async fn bind(address: &str) -> io::Result<TcpListener> {
    let mut last_error = None;
    for address in tokio::net::lookup_host(address).await? {
        match bind_one(address) {
            Ok(listener) => return Ok(listener),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    }))
}

fn bind_one(address: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    if address.is_ipv6() && address.ip().is_unspecified() {
        socket.set_only_v6(false)?;
    }
    // As Go and Rust's std do: a restarted server can listen again at once, despite the
    // previous one's connections in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// A bound listener and how to serve on it: what each component's `run` takes, so that
/// `main` decides the web configuration and the limits, and tests can pass a plain
/// [`TcpListener`] (served with the defaults and no web configuration).
#[derive(Debug)]
pub struct Listener {
    tcp: TcpListener,
    web: Option<Arc<WebConfig>>,
    options: ServeOptions,
}

impl Listener {
    /// `tcp`, served with `web` (TLS, basic auth, headers) if given and within `options`.
    pub fn new(tcp: TcpListener, web: Option<Arc<WebConfig>>, options: ServeOptions) -> Self {
        Listener { tcp, web, options }
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Serves `router` until `shutdown` completes: [`serve`].
    pub async fn serve(
        self,
        router: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        serve(self.tcp, router, self.web, self.options, shutdown).await
    }
}

impl From<TcpListener> for Listener {
    fn from(tcp: TcpListener) -> Self {
        Listener::new(tcp, None, ServeOptions::default())
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and lets
/// requests in flight finish within `options.shutdown_timeout`. `web` is the
/// `--web.config.file` configuration (TLS, basic auth, headers), if any.
///
/// Every connection is held to `options`' deadlines; at `options.max_connections`, or when
/// the process runs out of file descriptors, the connection that has waited longest for a
/// request is closed so that a new one (a scrape) gets in. Accept errors are logged once per
/// burst, with a growing pause between attempts.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    web: Option<Arc<WebConfig>>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let router = match &web {
        Some(web) => web.apply(router),
        None => router,
    };
    let tls = web.as_ref().and_then(|web| web.tls());
    let limits = Limits {
        header_read: options.header_read_timeout,
        idle: options.idle_timeout,
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    // hyper's own header timer also runs while a kept-alive connection is idle, so it is set
    // beyond both deadlines as a backstop; the connection table enforces the real ones.
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout + options.idle_timeout)
        .keep_alive(true);
    let http = Arc::new(http);
    let connections = Arc::new(Connections::new(options.max_connections));
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut failures = Burst::default();
    let mut refusals = Burst::default();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            // The client gave up before we took its connection: nothing to do with us.
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                let pause = accept_failed(&error, &connections, &mut failures);
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        if let Some(failed) = failures.end_if_quiet(Instant::now()) {
            tracing::info!(
                failed,
                open = connections.len(),
                "accepting connections works again"
            );
        }
        let connection = match connections.admit(Instant::now()) {
            Admission::Admitted {
                connection,
                made_room,
            } => {
                if let Some(refused) = refusals.end() {
                    tracing::info!(refused, "accepting new connections again");
                }
                if made_room {
                    // The closed connection's task releases its descriptor when it runs: let
                    // it, before accepting more, or a flood of connections outruns the cap.
                    tokio::task::yield_now().await;
                }
                connection
            }
            Admission::Full => {
                if refusals.hit(Instant::now()) {
                    tracing::warn!(
                        open = connections.len(),
                        max_connections = connections.cap(),
                        "every connection is in the middle of a request: refusing new ones until one is done"
                    );
                }
                drop(stream);
                continue;
            }
        };
        tasks.spawn(self::connection(
            stream,
            peer,
            connection,
            Arc::clone(&connections),
            router.clone(),
            Arc::clone(&http),
            tls.clone(),
            limits,
            stopped.clone(),
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    let in_flight = tasks.len();
    let drained = tokio::time::timeout(options.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = in_flight,
            unfinished = tasks.len(),
            timeout = ?options.shutdown_timeout,
            "requests did not finish in time after shutdown: their connections are dropped"
        );
        tasks.abort_all();
    }
    Ok(())
}

/// Errors of `accept` about one connection the client already gave up, not about the server.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// Whether the process (EMFILE) or the system (ENFILE) has no file descriptor left.
fn out_of_descriptors(error: &io::Error) -> bool {
    // EMFILE is 24 and ENFILE 23 on Linux, macOS and the BSDs.
    cfg!(unix) && matches!(error.raw_os_error(), Some(23 | 24))
}

/// Handles a failed `accept`: logs it if it starts a burst, makes room when descriptors ran
/// out, and returns how long to pause before the next attempt.
fn accept_failed(error: &io::Error, connections: &Connections, failures: &mut Burst) -> Duration {
    let first = failures.hit(Instant::now());
    if out_of_descriptors(error) {
        let open = connections.len();
        let (cap, closed) = connections.out_of_descriptors();
        if first {
            tracing::warn!(
                error = %error,
                open,
                closed,
                max_connections = cap,
                "accepting a connection failed: out of file descriptors; closing the connections that waited longest for a request, and at most max_connections from now on"
            );
        }
        // The closed connections' descriptors are released as soon as their tasks run.
        if closed > 0 {
            return Duration::from_millis(5);
        }
    } else if first {
        tracing::warn!(error = %error, open = connections.len(), "accepting a connection failed; retrying with a growing pause");
    }
    failures.pause()
}

/// How long without a failure ends a burst of them: failures that come back sooner (accepts
/// succeeding between EMFILEs, say) belong to the same burst and are not logged again.
const QUIET: Duration = Duration::from_secs(10);

/// Failures of one kind close together, so that a storm of them is logged once and paced.
#[derive(Debug, Default)]
struct Burst {
    /// Failures in this burst.
    count: u64,
    /// Failures in a row, for the pause.
    in_a_row: u32,
    last: Option<Instant>,
}

impl Burst {
    /// Counts a failure; true for the first of a burst.
    fn hit(&mut self, now: Instant) -> bool {
        let first = self.last.is_none_or(|last| now - last > QUIET);
        if first {
            self.count = 0;
        }
        self.count += 1;
        self.in_a_row = self.in_a_row.saturating_add(1);
        self.last = Some(now);
        first
    }

    /// 10ms after the first failure in a row, doubling up to 1s: never a spin, and a quick
    /// recovery.
    fn pause(&self) -> Duration {
        let doublings = self.in_a_row.saturating_sub(1).min(7);
        Duration::from_millis(10 * 2u64.pow(doublings)).min(Duration::from_secs(1))
    }

    /// Notes a success; once the burst is `QUIET` old, ends it with its number of failures.
    fn end_if_quiet(&mut self, now: Instant) -> Option<u64> {
        self.in_a_row = 0;
        let last = self.last?;
        if now - last <= QUIET {
            return None;
        }
        self.last = None;
        Some(std::mem::take(&mut self.count))
    }

    /// Ends the burst at once (refusals: the first admitted connection ends them).
    fn end(&mut self) -> Option<u64> {
        self.in_a_row = 0;
        self.last.take()?;
        Some(std::mem::take(&mut self.count))
    }
}

/// Serves one connection until it is done, its deadlines pass, it is closed to make room,
/// or shutdown ends it.
#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    connection: Arc<Connection>,
    connections: Arc<Connections>,
    router: Router,
    http: Arc<hyper::server::conn::http1::Builder>,
    tls: Option<Arc<TlsServer>>,
    limits: Limits,
    stopped: watch::Receiver<bool>,
) {
    // Small responses go out at once instead of waiting on Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    match tls {
        None => serve_http(stream, peer, &connection, router, &http, limits, stopped).await,
        Some(tls) => {
            // The handshake counts towards the first request's header deadline, and a
            // connection in its handshake can be closed to make room.
            let handshake = tokio::select! {
                // The handshake first, as for HTTP below.
                biased;
                handshake = tls.accept(stream) => handshake,
                reason = connection.expired(limits) => {
                    log_closing(peer, reason);
                    connections.remove(&connection);
                    return;
                }
            };
            match handshake {
                Ok(stream) => {
                    serve_http(stream, peer, &connection, router, &http, limits, stopped).await
                }
                Err(error) => {
                    tracing::debug!(peer = %peer, error = %error, "TLS handshake failed")
                }
            }
        }
    }
    connections.remove(&connection);
}

async fn serve_http<S>(
    stream: S,
    peer: SocketAddr,
    connection: &Arc<Connection>,
    router: Router,
    http: &hyper::server::conn::http1::Builder,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(Tracked {
        inner: stream,
        connection: Arc::clone(connection),
    });
    let service = Handler {
        router,
        connection: Arc::clone(connection),
    };
    let served = http.serve_connection(io, service);
    tokio::pin!(served);
    let mut shutting_down = *stopped.borrow();
    if shutting_down {
        served.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            // The connection first: when the task runs late (a busy host), the bytes that
            // arrived in time are read, and the request started, before a deadline is judged.
            biased;
            result = served.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(peer = %peer, error = %error, "connection ended with an error");
                }
                break;
            }
            reason = connection.expired(limits) => {
                log_closing(peer, reason);
                break;
            }
            _ = stopped.wait_for(|stop| *stop), if !shutting_down => {
                // Idle connections close now; one in the middle of a request finishes it.
                served.as_mut().graceful_shutdown();
                shutting_down = true;
            }
        }
    }
}

fn log_closing(peer: SocketAddr, reason: Closing) {
    tracing::debug!(peer = %peer, reason = reason.as_str(), "closing a connection");
}

/// The connection's stream, reporting reads and writes to its activity.
struct Tracked<S> {
    inner: S,
    connection: Arc<Connection>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.connection.read(Instant::now());
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.connection.wrote(Instant::now());
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.connection.wrote(Instant::now());
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The router as hyper's service, marking each request's start and end on the connection.
#[derive(Clone)]
struct Handler {
    router: Router,
    connection: Arc<Connection>,
}

impl hyper::service::Service<http::Request<Incoming>> for Handler {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        self.connection.request_started();
        let mut router = self.router.clone();
        let connection = Arc::clone(&self.connection);
        Box::pin(async move {
            use tower_service::Service;
            // A router is always ready; asking keeps to the service contract.
            std::future::poll_fn(|cx| Service::<http::Request<Body>>::poll_ready(&mut router, cx))
                .await?;
            let response = router.call(request.map(Body::new)).await?;
            connection.response_started(Instant::now());
            Ok(response.map(|body| {
                Body::new(Finishing {
                    body,
                    done: Some(Done(connection)),
                })
            }))
        })
    }
}

/// Marks the response finished when dropped: after its last frame, or when abandoned.
struct Done(Arc<Connection>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.response_finished(Instant::now());
    }
}

/// A response body that marks the response finished once it has been sent.
struct Finishing {
    body: Body,
    done: Option<Done>,
}

impl HttpBody for Finishing {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            self.done = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used, clippy::unwrap_used)]

    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_failures_is_reported_once_and_paced() {
        let mut burst = Burst::default();
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        assert!(burst.hit(at(0)));
        assert_eq!(burst.pause(), Duration::from_millis(10));
        assert!(!burst.hit(at(0)));
        assert_eq!(burst.pause(), Duration::from_millis(20));
        // A success in between does not end the burst, but restarts the pause.
        assert_eq!(burst.end_if_quiet(at(1)), None);
        assert!(!burst.hit(at(5)));
        assert_eq!(burst.pause(), Duration::from_millis(10));
        for _ in 0..20 {
            burst.hit(at(6));
        }
        assert_eq!(burst.pause(), Duration::from_secs(1));
        // Quiet for longer than QUIET: the burst ends with its count, the next one is new.
        assert_eq!(burst.end_if_quiet(at(17)), Some(23));
        assert_eq!(burst.end_if_quiet(at(18)), None);
        assert!(burst.hit(at(19)));
    }

    async fn start(
        router: Router,
        options: ServeOptions,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<io::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, None, options, async move {
            let _ = stopped.await;
        }));
        (address, stop, server)
    }

    async fn read_all(stream: &mut TcpStream) -> String {
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn shutdown_lets_a_request_in_flight_finish_and_closes_idle_connections() {
        let router = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    "done"
                }),
            )
            .route("/fast", get(|| async { "fast" }));
        let (address, stop, server) = start(router, ServeOptions::default()).await;

        let mut idle = TcpStream::connect(address).await.expect("connect");
        idle.write_all(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("request");
        let mut first = [0; 512];
        let read = idle.read(&mut first).await.expect("answer");
        assert!(String::from_utf8_lossy(&first[..read]).contains("fast"));

        let mut slow = TcpStream::connect(address).await.expect("connect");
        slow.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("request");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stopping = Instant::now();
        stop.send(()).expect("stop");

        let idle_closed = tokio::time::timeout(Duration::from_secs(1), read_all(&mut idle))
            .await
            .expect("the idle connection is closed at once");
        assert_eq!(idle_closed, "");
        let answer = read_all(&mut slow).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");
        server.await.expect("task").expect("served");
        assert!(stopping.elapsed() < Duration::from_secs(2));
        assert!(
            TcpStream::connect(address).await.is_err(),
            "still accepting"
        );
    }

    #[tokio::test]
    async fn shutdown_gives_up_on_a_request_that_outlasts_its_timeout() {
        let router = Router::new().route(
            "/stuck",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                "late"
            }),
        );
        let options = ServeOptions {
            shutdown_timeout: Duration::from_millis(300),
            ..ServeOptions::default()
        };
        let (address, stop, server) = start(router, options).await;
        let mut stuck = TcpStream::connect(address).await.expect("connect");
        stuck
            .write_all(b"GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("request");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let stopping = Instant::now();
        stop.send(()).expect("stop");
        server.await.expect("task").expect("served");
        let took = stopping.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(2),
            "{took:?}"
        );
        assert_eq!(read_all(&mut stuck).await, "");
    }

    #[tokio::test]
    async fn at_the_cap_a_new_client_gets_in_and_the_longest_waiting_one_is_closed() {
        let router = Router::new().route("/", get(|| async { "hello" }));
        let options = ServeOptions {
            max_connections: 2,
            ..ServeOptions::default()
        };
        let (address, _stop, _server) = start(router, options).await;
        let mut oldest = TcpStream::connect(address).await.expect("connect");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _second = TcpStream::connect(address).await.expect("connect");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut scrape = TcpStream::connect(address).await.expect("connect");
        scrape
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("request");
        let answer = tokio::time::timeout(Duration::from_secs(2), read_all(&mut scrape))
            .await
            .expect("answered");
        assert!(answer.ends_with("hello"), "{answer}");
        let closed = tokio::time::timeout(Duration::from_secs(1), read_all(&mut oldest))
            .await
            .expect("the oldest idle connection is closed");
        assert_eq!(closed, "");
    }

    #[tokio::test]
    async fn with_tls_the_handshake_is_held_to_the_header_deadline() {
        use rustls::pki_types::pem::PemObject;
        let pki = crate::test_pki::Pki::standard("serve");
        let yaml = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";
        let web = WebConfig::load(&pki.write("web.yml", yaml)).expect("web configuration");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let options = ServeOptions {
            header_read_timeout: Duration::from_millis(500),
            ..ServeOptions::default()
        };
        let router = Router::new().route("/metrics", get(|| async { "up 1\n" }));
        tokio::spawn(serve(
            listener,
            router,
            Some(Arc::new(web)),
            options,
            std::future::pending(),
        ));

        // An HTTPS scrape.
        let mut roots = rustls::RootCertStore::empty();
        for certificate in
            rustls::pki_types::CertificateDer::pem_file_iter(pki.path("ca.pem")).expect("ca.pem")
        {
            roots.add(certificate.expect("certificate")).expect("root");
        }
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = TcpStream::connect(address).await.expect("connect");
        let name = rustls::pki_types::ServerName::IpAddress(address.ip().into());
        let mut tls = connector.connect(name, tcp).await.expect("handshake");
        tls.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("request");
        let mut answer = String::new();
        let _ = tls.read_to_string(&mut answer).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("up 1\n"), "{answer}");

        // Plain HTTP to the TLS port: Go's answer.
        let mut plain = TcpStream::connect(address).await.expect("connect");
        plain
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("request");
        let answer = read_all(&mut plain).await;
        assert!(answer.starts_with("HTTP/1.0 400 Bad Request"), "{answer}");

        // Silent, and half a ClientHello: closed at the header deadline.
        for sent in [&b""[..], &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01][..]] {
            let mut stalled = TcpStream::connect(address).await.expect("connect");
            stalled.write_all(sent).await.expect("bytes");
            let since = Instant::now();
            let closed = tokio::time::timeout(Duration::from_secs(3), read_all(&mut stalled))
                .await
                .expect("closed");
            let took = since.elapsed();
            assert_eq!(closed, "");
            assert!(
                took >= Duration::from_millis(400) && took < Duration::from_millis(1500),
                "{sent:?}: closed after {took:?}"
            );
        }
    }

    /// What hyper's own `header_read_timeout` covers, which is why [`serve`] sets it only as
    /// a backstop beyond both deadlines and keeps its own: it starts when the connection
    /// starts and again as soon as a response is written, so it bounds the idle time between
    /// requests with the header deadline (no separate idle timeout possible), and it does not
    /// bound a request body.
    #[tokio::test]
    async fn hyper_s_header_timer_also_runs_while_idle_and_not_during_a_body() {
        use http_body_util::BodyExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(|request: http::Request<Incoming>| async move {
                            let body = request.into_body().collect().await?.to_bytes();
                            Ok::<_, hyper::Error>(http::Response::new(Body::from(format!(
                                "{} bytes",
                                body.len()
                            ))))
                        });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_millis(300))
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let closed_within = |mut stream: TcpStream| async move {
            let since = Instant::now();
            let mut sink = [0; 1024];
            loop {
                match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut sink)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return Some(since.elapsed()),
                    Ok(Ok(_)) => {}
                    Err(_) => return None,
                }
            }
        };

        // From the connection's start.
        let silent = TcpStream::connect(address).await.expect("connect");
        let took = closed_within(silent).await.expect("closed");
        assert!(took < Duration::from_millis(600), "{took:?}");

        // While idle after a response: the same timer, right after the response.
        let mut idle = TcpStream::connect(address).await.expect("connect");
        idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("request");
        let mut answer = [0; 512];
        let read = idle.read(&mut answer).await.expect("answer");
        assert!(String::from_utf8_lossy(&answer[..read]).ends_with("0 bytes"));
        let took = closed_within(idle).await.expect("closed while idle");
        assert!(took < Duration::from_millis(600), "{took:?}");

        // Not while a body trickles in.
        let mut body = TcpStream::connect(address).await.expect("connect");
        body.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n")
            .await
            .expect("headers");
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            body.write_all(b"a")
                .await
                .expect("still open during the body");
        }
        let read = body.read(&mut answer).await.expect("answer");
        assert!(String::from_utf8_lossy(&answer[..read]).ends_with("8 bytes"));
    }

    #[tokio::test]
    async fn colon_port_listens_on_ipv4_and_ipv6() {
        let listener = listen(":0").await.expect("listens");
        let port = listener.local_addr().expect("address").port();
        let v4 = TcpStream::connect(("127.0.0.1", port)).await;
        assert!(v4.is_ok(), "IPv4: {v4:?}");
        if listener.local_addr().expect("address").is_ipv6() {
            let v6 = TcpStream::connect(("::1", port)).await;
            assert!(v6.is_ok(), "IPv6: {v6:?}");
        }
        assert_eq!(listen_addresses(":9779"), ["[::]:9779", "0.0.0.0:9779"]);
        assert_eq!(listen_addresses("127.0.0.1:9"), ["127.0.0.1:9"]);
    }
}

//! Serving a router on a listener so that slow or hostile clients cannot wear the server
//! down: a deadline for each request's headers, an idle keep-alive timeout, a cap on open
//! connections that closes the oldest idle one instead of refusing a scrape, accept errors
//! (EMFILE) logged once with a back-off instead of a spin, TLS when the web configuration
//! asks for it, and graceful shutdown.

use crate::config::WebConfig;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Limits of [`serve`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// How long a client may take to send a request's headers (and, with TLS, to finish the
    /// handshake).
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may stay idle between requests.
    pub idle_timeout: Duration,
    /// Most connections open at once; at the cap the oldest idle connection is closed to make
    /// room.
    pub max_connections: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
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

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in flight
/// finish. `web` is the `--web.config.file` configuration (TLS, basic auth, headers), if any.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    web: Option<Arc<WebConfig>>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let _ = (&web, &options);
    // Placeholder until the connection loop lands: plain axum serving.
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

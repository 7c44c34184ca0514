//! What every ecs-prom server and client shares, as Prometheus' exporter-toolkit is for Go
//! exporters: [`serve()`] (listening with header-read and idle timeouts, a connection cap that
//! keeps a scrape working, graceful shutdown), the web configuration file of
//! `--web.config.file` ([`config`]: TLS, basic auth, response headers), and one bounded HTTP
//! client ([`client`]: deadline, body size limit, chosen headers, no redirects, and
//! Prometheus' client `tls_config` as [`ClientTls`]).

mod auth;
pub mod client;
mod client_tls;
pub mod config;
mod connections;
mod error;
mod html;
pub mod serve;
#[cfg(test)]
mod test_pki;
pub mod tls;

pub use client::{Client, ClientError, ClientTls, Response, parse_url};
pub use config::{WebConfig, WebConfigError};
pub use error::error_chain;
pub use html::escape as html_escape;
pub use serve::{Listener, ServeOptions, listen, listen_addresses, serve};
pub use tls::TlsServer;

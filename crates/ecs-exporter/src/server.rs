//! The exporter's HTTP server: `/metrics` (or the configured telemetry path), the health
//! and readiness endpoints, and a landing page.

use crate::collector::Collector;
use crate::metrics::Scope;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// How recently the endpoint must have answered for `/-/ready` to say so without asking it.
const READY_WINDOW: Duration = Duration::from_secs(60);

/// The exporter's finished configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Base URL of the Task Metadata Endpoint v4.
    pub metadata_url: String,
    /// Task or instance scope.
    pub scope: Scope,
    /// Deadline of each request to the endpoint.
    pub timeout: Duration,
    /// Path the metrics are served on.
    pub telemetry_path: String,
    /// Whether to serve the `process_*` metrics.
    pub process_metrics: bool,
}

struct App {
    collector: Collector,
    config: Config,
}

/// The exporter's routes, for driving without a socket in tests.
pub fn router(config: Config) -> Result<Router, ecs_metadata::InvalidBaseUrl> {
    let app = Arc::new(App {
        collector: Collector::new(&config.metadata_url, config.scope, config.timeout)?,
        config: config.clone(),
    });
    Ok(Router::new()
        .route(&config.telemetry_path, get(metrics))
        .route("/-/healthy", get(healthy))
        .route("/health", get(healthy))
        .route("/-/ready", get(ready))
        .route("/", get(landing_page))
        .with_state(app))
}

/// Serves the exporter on `listener` (a plain
/// [`tokio::net::TcpListener`] is served with `web`'s defaults)
/// until `shutdown` completes.
pub async fn run(
    config: Config,
    listener: impl Into<web::Listener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router(config).map_err(std::io::Error::other)?;
    listener.into().serve(router, shutdown).await
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut families = match app.collector.collect().await {
        Ok(families) => families,
        Err(reasons) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                reasons,
            )
                .into_response();
        }
    };
    if app.config.process_metrics {
        families.extend(exposition::process_families());
    }
    let mut body = String::with_capacity(16 * 1024);
    exposition::encode(&families, &mut body);
    ([(header::CONTENT_TYPE, exposition::CONTENT_TYPE)], body).into_response()
}

async fn healthy() -> &'static str {
    "ecs-prom exporter is healthy.\n"
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.collector.upstream().answered_within(READY_WINDOW) {
        return (StatusCode::OK, "ecs-prom exporter is ready.\n").into_response();
    }
    let reading = app.collector.upstream().read().await;
    if !reading.servable() {
        let reason = reading
            .metadata
            .result
            .as_ref()
            .err()
            .map(|error| web::error_chain(error))
            .unwrap_or_default();
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response();
    }
    (StatusCode::OK, "ecs-prom exporter is ready.\n").into_response()
}

async fn landing_page(State(app): State<Arc<App>>) -> Html<String> {
    let path = web::html_escape(&app.config.telemetry_path);
    let endpoint = web::html_escape(app.collector.upstream().base_url());
    let scope = app.config.scope.as_str();
    Html(format!(
        "<!doctype html>\n<html><head><title>ecs-prom exporter</title></head><body>\n\
         <h1>ecs-prom exporter {version}</h1>\n\
         <p>Prometheus metrics for Amazon ECS tasks, read from the task metadata endpoint \
         <code>{endpoint}</code> (scope: {scope}).</p>\n<ul>\n\
         <li><a href=\"{path}\">{path}</a>: metrics</li>\n\
         <li><a href=\"/-/healthy\">/-/healthy</a>: liveness</li>\n\
         <li><a href=\"/-/ready\">/-/ready</a>: readiness (the endpoint answered recently)</li>\n\
         </ul>\n</body></html>\n",
        version = env!("CARGO_PKG_VERSION"),
    ))
}

//! The exporter's HTTP server: `/metrics` (or the configured telemetry path), the health
//! and readiness endpoints, and a landing page.

use crate::metrics::{Inputs, Scope, SharedInterfaces, ecs_families};
use crate::upstream::{Collected, Upstream};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use ecs_metadata::MetadataClient;
use exposition::{Family, MetricType};
use std::future::Future;
use std::sync::{Arc, Mutex};
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
    upstream: Arc<Upstream>,
    shared_interfaces: Mutex<SharedInterfaces>,
    config: Config,
}

/// The exporter's routes, for driving without a socket in tests.
pub fn router(config: Config) -> Result<Router, ecs_metadata::InvalidBaseUrl> {
    let client = MetadataClient::new(&config.metadata_url, config.timeout)?;
    let app = Arc::new(App {
        upstream: Arc::new(Upstream::new(client, config.scope)),
        shared_interfaces: Mutex::new(SharedInterfaces::default()),
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
    let reading = app.upstream.read().await;
    // `last_good_tasks` is this reading's metadata when it was read, else the last good copy.
    let tasks = reading
        .last_good_tasks
        .as_ref()
        .filter(|_| !reading.all_failed());
    let Some(tasks) = tasks else {
        let mut reasons = String::from("the ECS task metadata endpoint could not be read:\n");
        for (collector, error) in [
            ("metadata", reading.metadata.result.as_ref().err()),
            ("stats", reading.stats.result.as_ref().err()),
        ] {
            if let Some(error) = error {
                reasons.push_str(&format!("{collector}: {}\n", web::error_chain(error)));
            }
        }
        if reading.metadata.result.is_err() && reading.stats.result.is_ok() {
            reasons.push_str("stats cannot be attributed to containers before the task metadata has been read once\n");
        }
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            reasons,
        )
            .into_response();
    };

    let inputs = Inputs {
        tasks,
        tasks_current: reading.metadata.result.is_ok(),
        stats: reading.stats.result.as_ref().ok(),
        scope: app.config.scope,
    };
    let mut families = match app.shared_interfaces.lock() {
        Ok(mut shared_interfaces) => ecs_families(&inputs, &mut shared_interfaces),
        Err(_) => ecs_families(&inputs, &mut SharedInterfaces::default()),
    };
    families.extend(self_families(&reading.metadata, &reading.stats));
    if app.config.process_metrics {
        families.extend(exposition::process_families());
    }
    let mut body = String::with_capacity(16 * 1024);
    exposition::encode(&families, &mut body);
    ([(header::CONTENT_TYPE, exposition::CONTENT_TYPE)], body).into_response()
}

fn self_families<A, B>(metadata: &Collected<A>, stats: &Collected<B>) -> Vec<Family> {
    let mut build = Family::new(
        "ecs_exporter_build_info",
        "ecs-prom build that serves these metrics; always 1.",
        MetricType::Gauge,
    );
    build.push(vec![("version", env!("CARGO_PKG_VERSION").to_owned())], 1.0);
    let mut success = Family::new(
        "ecs_exporter_collector_success",
        "1 when the collector's request to the metadata endpoint succeeded in this scrape, else 0.",
        MetricType::Gauge,
    );
    let mut duration = Family::new(
        "ecs_exporter_collector_duration_seconds",
        "How long the collector's request to the metadata endpoint took in this scrape, in seconds.",
        MetricType::Gauge,
    );
    for (name, ok, took) in [
        ("metadata", metadata.result.is_ok(), metadata.duration),
        ("stats", stats.result.is_ok(), stats.duration),
    ] {
        success.push(vec![("collector", name.to_owned())], f64::from(ok));
        duration.push(vec![("collector", name.to_owned())], took.as_secs_f64());
    }
    vec![build, duration, success]
}

async fn healthy() -> &'static str {
    "ecs-prom exporter is healthy.\n"
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    if app.upstream.answered_within(READY_WINDOW) {
        return (StatusCode::OK, "ecs-prom exporter is ready.\n").into_response();
    }
    let reading = app.upstream.read().await;
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
    let endpoint = web::html_escape(app.upstream.base_url());
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

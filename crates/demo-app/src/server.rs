//! The demo application's HTTP server: its endpoints, the service around them that counts,
//! times and traces every request, and `run`, which also starts the load generator.

use crate::load::{LoadConfig, generate};
use crate::metrics::{RequestMetrics, method_label, path_label};
use crate::otlp::{OtlpConfig, Span, Tracer, now_ns};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower_service::Service;

/// The application's finished configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Median latency of `/work`.
    pub work_median: Duration,
    /// 99th percentile latency of `/work`.
    pub work_p99: Duration,
    /// URL `/external` calls; `None` calls the application's own `/health`.
    pub external_url: Option<String>,
    /// Deadline of the `/external` call.
    pub external_timeout: Duration,
    /// Load generator settings; its target `None` means the application itself.
    pub load_requests_per_second: f64,
    /// Load generator workers.
    pub load_concurrency: usize,
    /// Whether requests are counted and timed (off only to measure what that costs).
    pub instrumentation: bool,
    /// Where traces go, if anywhere.
    pub otlp: Option<OtlpConfig>,
}

impl Default for Config {
    /// The defaults of `ecs-prom demo-app`'s flags.
    fn default() -> Self {
        Config {
            work_median: Duration::from_millis(40),
            work_p99: Duration::from_millis(600),
            external_url: None,
            external_timeout: Duration::from_secs(2),
            load_requests_per_second: 5.0,
            load_concurrency: 2,
            instrumentation: true,
            otlp: None,
        }
    }
}

struct App {
    config: Config,
    metrics: RequestMetrics,
    tracer: Option<Tracer>,
    client: web::Client,
    own_url: String,
}

/// The application: its state and its routes; `own_url` is where it can reach itself.
fn application(config: Config, own_url: String) -> (Arc<App>, Router) {
    let tracer = config.otlp.clone().map(Tracer::start);
    // Only the status of the call matters; its body is read so the connection can be reused,
    // and a large one is not worth the memory.
    let client = web::Client::new(config.external_timeout).with_max_body_bytes(1024 * 1024);
    let app = Arc::new(App {
        config,
        metrics: RequestMetrics::default(),
        tracer,
        client,
        own_url,
    });
    let routes = Router::new()
        .route("/work", get(work))
        .route("/health", get(health))
        .route("/api/data", get(data))
        .route("/external", get(external))
        .route("/error", get(error))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(Arc::clone(&app));
    (app, routes)
}

/// Serves the application on `listener`, and loads it as configured, until `shutdown`.
pub async fn run(
    config: Config,
    listener: impl Into<web::Listener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.into();
    let own_url = format!("http://{}", listener.local_addr()?);
    let load = LoadConfig {
        requests_per_second: config.load_requests_per_second,
        concurrency: config.load_concurrency,
        target: own_url.clone(),
    };
    let generator = tokio::spawn(generate(load));
    let (app, routes) = application(config, own_url);
    let served = if app.config.instrumentation || app.tracer.is_some() {
        // The only route is the whole observed router: one boxed call per request, not one
        // per route.
        let observed = Router::new().fallback_service(Observe { inner: routes, app });
        listener.serve(observed, shutdown).await
    } else {
        listener.serve(routes, shutdown).await
    };
    generator.abort();
    served
}

/// Counts, times and traces every request the application answers, unknown paths included.
/// It wraps the whole router once, rather than each route through `Router::layer` or
/// `axum::middleware::from_fn`, which clone and box services on every request: that cost the
/// fastest endpoints 7% or more of their CPU.
#[derive(Clone)]
struct Observe<S> {
    inner: S,
    app: Arc<App>,
}

impl<S> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let method = method_label(request.method());
        let path = path_label(request.uri().path());
        let started = Instant::now();
        let started_ns = self.app.tracer.as_ref().map(|_| now_ns());
        let response = self.inner.call(request);
        let app = Arc::clone(&self.app);
        Box::pin(async move {
            let response = response.await?;
            let status = response.status().as_u16();
            if app.config.instrumentation {
                let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
                app.metrics.observe(method, path, status, elapsed_ms);
            }
            if let (Some(tracer), Some(start_ns)) = (&app.tracer, started_ns) {
                tracer.record(Span {
                    name: format!("{method} {path}"),
                    start_ns,
                    end_ns: now_ns(),
                    method,
                    path,
                    status,
                });
            }
            Ok(response)
        })
    }
}

/// A JSON response with the given status.
fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn work(State(app): State<Arc<App>>) -> Response {
    let took = crate::work::latency(app.config.work_median, app.config.work_p99);
    tokio::time::sleep(took).await;
    json_response(
        StatusCode::OK,
        json!({"work": "done", "took_ms": took.as_secs_f64() * 1000.0}),
    )
}

async fn health() -> Response {
    json_response(StatusCode::OK, json!({"status": "ok"}))
}

async fn data() -> Response {
    let items: Vec<_> = (1..=5)
        .map(|id| json!({"id": id, "name": format!("item-{id}")}))
        .collect();
    json_response(StatusCode::OK, json!({"items": items}))
}

async fn external(State(app): State<Arc<App>>) -> Response {
    let url = app
        .config
        .external_url
        .clone()
        .unwrap_or_else(|| format!("{}/health", app.own_url));
    let started = Instant::now();
    let outcome = match app.client.get(&url).send().await {
        Ok(response) => Ok(response.status.as_u16()),
        Err(error) => Err(error.to_string()),
    };
    let took_ms = started.elapsed().as_secs_f64() * 1000.0;
    match outcome {
        Ok(status) if status < 400 => json_response(
            StatusCode::OK,
            json!({"url": url, "status": status, "ok": true, "took_ms": took_ms}),
        ),
        Ok(status) => json_response(
            StatusCode::BAD_GATEWAY,
            json!({"url": url, "status": status, "ok": false, "took_ms": took_ms}),
        ),
        Err(error) => json_response(
            StatusCode::BAD_GATEWAY,
            json!({"url": url, "ok": false, "error": error, "took_ms": took_ms}),
        ),
    }
}

async fn error() -> Response {
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"error": "simulated failure"}),
    )
}

async fn not_found() -> Response {
    json_response(StatusCode::NOT_FOUND, json!({"error": "not found"}))
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut families = app.metrics.families();
    families.extend(exposition::process_families());
    let mut body = String::with_capacity(8 * 1024);
    exposition::encode(&families, &mut body);
    ([(header::CONTENT_TYPE, exposition::CONTENT_TYPE)], body).into_response()
}

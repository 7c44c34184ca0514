//! The simulator's HTTP server: every Task Metadata Endpoint v4 path under one base URL per
//! task, a JSON index of those URLs on `/`, control endpoints, and optional faults.

use crate::{Simulation, documents, random};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Faults injected into metadata responses, decided by a pseudo-random sequence derived
/// from the simulation's seed, so a run with the same seed fails the same requests.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Added to every metadata response.
    pub latency: Duration,
    /// Share of metadata requests answered with HTTP 500 (0 to 1).
    pub error_rate: f64,
    /// Share of metadata requests answered with a truncated JSON body (0 to 1).
    pub malformed_rate: f64,
}

struct App {
    seed: u64,
    simulation: Mutex<Simulation>,
    faults: Faults,
    requests: AtomicU64,
    base_url: String,
}

/// The calling container of `${ECS_CONTAINER_METADATA_URI_V4}`: the exporter sidecar.
const CALLER: &str = "ecs-prom-exporter";

pub use timestamps::now;

/// The base URL of one simulated task's endpoint on a server at `server_url`.
pub fn metadata_uri(server_url: &str, task_id: &str) -> String {
    format!("{server_url}/v4/{task_id}")
}

/// The simulator's routes; `server_url` (like `http://127.0.0.1:8912`) is where it is reached.
pub fn router(simulation: Simulation, faults: Faults, server_url: String) -> Router {
    let app = Arc::new(App {
        seed: simulation.seed,
        simulation: Mutex::new(simulation),
        faults,
        requests: AtomicU64::new(0),
        base_url: server_url,
    });
    Router::new()
        .route("/", get(index))
        .route(
            "/v4/{task}",
            get(|s, p| metadata(s, p, Document::Container)),
        )
        .route(
            "/v4/{task}/task",
            get(|s, p| metadata(s, p, Document::Task)),
        )
        .route(
            "/v4/{task}/taskWithTags",
            get(|s, p| metadata(s, p, Document::TaskWithTags)),
        )
        .route(
            "/v4/{task}/stats",
            get(|s, p| metadata(s, p, Document::ContainerStats)),
        )
        .route(
            "/v4/{task}/task/stats",
            get(|s, p| metadata(s, p, Document::TaskStats)),
        )
        .route(
            "/v4/{task}/tasks",
            get(|s, p| metadata(s, p, Document::Tasks)),
        )
        .route(
            "/v4/{task}/tasks/stats",
            get(|s, p| metadata(s, p, Document::TasksStats)),
        )
        .route("/control/{task}/{container}/restart", post(restart))
        .route("/control/{task}/{container}/exit/{code}", post(exit))
        .route("/control/{task}/load/{level}", post(load))
        .with_state(app)
}

/// Serves the simulation on `listener` until `shutdown` completes.
pub async fn run(
    simulation: Simulation,
    faults: Faults,
    listener: impl Into<web::Listener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.into();
    let server_url = format!("http://{}", listener.local_addr()?);
    listener
        .serve(router(simulation, faults, server_url), shutdown)
        .await
}

/// The JSON served on `/`: every task's metadata URI.
pub fn index_document(simulation: &Simulation, server_url: &str) -> Value {
    json!({
        "tasks": simulation.tasks.iter().map(|task| json!({
            "task_arn": task.arn(),
            "launch_type": task.platform.launch_type(),
            "metadata_uri": metadata_uri(server_url, &task.id),
        })).collect::<Vec<_>>()
    })
}

async fn index(State(app): State<Arc<App>>) -> Response {
    let document = match app.simulation.lock() {
        Ok(simulation) => index_document(&simulation, &app.base_url),
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    json_response(document.to_string())
}

#[derive(Clone, Copy)]
enum Document {
    Container,
    Task,
    TaskWithTags,
    ContainerStats,
    TaskStats,
    Tasks,
    TasksStats,
}

async fn metadata(
    State(app): State<Arc<App>>,
    Path(task_id): Path<String>,
    document: Document,
) -> Response {
    let request = app.requests.fetch_add(1, Ordering::Relaxed);
    if !app.faults.latency.is_zero() {
        tokio::time::sleep(app.faults.latency).await;
    }
    let now = now();
    let body = {
        let Ok(mut simulation) = app.simulation.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        simulation.advance_to(now);
        let simulation = &*simulation;
        let Some(task) = simulation.task(&task_id) else {
            return (
                StatusCode::NOT_FOUND,
                format!("no simulated task {task_id}\n"),
            )
                .into_response();
        };
        let Some(caller) = task
            .containers
            .iter()
            .find(|c| c.name == CALLER)
            .or(task.containers.first())
        else {
            return (
                StatusCode::NOT_FOUND,
                "the simulated task has no containers\n",
            )
                .into_response();
        };
        match document {
            Document::Container => documents::container_metadata(simulation, task, caller),
            Document::Task => documents::task_metadata(simulation, task, false),
            Document::TaskWithTags => documents::task_metadata(simulation, task, true),
            Document::ContainerStats => documents::container_stats(simulation, task, caller, now),
            Document::TaskStats => documents::task_stats(simulation, task, now),
            Document::Tasks => documents::instance_metadata(simulation),
            Document::TasksStats => documents::instance_stats(simulation, now),
        }
        .to_string()
    };
    let draw = random::unit(app.seed, u64::MAX, 0, request);
    if draw < app.faults.error_rate {
        return (StatusCode::INTERNAL_SERVER_ERROR, "simulated agent error\n").into_response();
    }
    if draw < app.faults.error_rate + app.faults.malformed_rate {
        return json_response(body[..body.len() / 2].to_owned());
    }
    json_response(body)
}

fn json_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn control(app: &App, change: impl FnOnce(&mut Simulation, f64) -> bool) -> Response {
    match app.simulation.lock() {
        Ok(mut simulation) => {
            let now = now();
            simulation.advance_to(now);
            if change(&mut simulation, now) {
                StatusCode::NO_CONTENT.into_response()
            } else {
                (StatusCode::NOT_FOUND, "no such task or container\n").into_response()
            }
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn restart(
    State(app): State<Arc<App>>,
    Path((task, container)): Path<(String, String)>,
) -> Response {
    control(&app, |s, now| s.restart(&task, &container, now))
}

async fn exit(
    State(app): State<Arc<App>>,
    Path((task, container, code)): Path<(String, String, i32)>,
) -> Response {
    control(&app, |s, now| s.exit(&task, &container, code, now))
}

async fn load(State(app): State<Arc<App>>, Path((task, level)): Path<(String, f64)>) -> Response {
    control(&app, |s, _| s.set_load(&task, level))
}

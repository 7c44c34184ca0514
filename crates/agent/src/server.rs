//! The agent's HTTP endpoints: `/metrics` (self-metrics), `/-/healthy`, `/-/ready`,
//! `POST /-/reload` (Prometheus' `PUT` too), `/api/v1/targets` (the targets as Prometheus'
//! API gives them, for scripts), and `/`, a page with every target (labels, health, last
//! error, last scrape) and every remote queue (pending bytes, lag, last error).

use crate::view::{View, lag_seconds};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};

/// A request to reload, answered with the outcome.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// What the handlers read.
#[derive(Clone)]
pub struct Shared {
    /// The agent as it is now.
    pub view: Arc<Mutex<View>>,
    /// Where reload requests go.
    pub reload: mpsc::Sender<ReloadRequest>,
}

impl Shared {
    fn read(&self) -> View {
        self.view.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

/// The routes.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "Healthy.\n" }))
        .route("/-/ready", get(ready))
        .route("/-/reload", post(reload).put(reload))
        .route("/api/v1/targets", get(targets))
        .route("/", get(status_page))
        .with_state(shared)
}

async fn metrics(State(shared): State<Shared>) -> Response {
    let mut families = shared.read().families();
    #[cfg(target_os = "linux")]
    families.extend(exposition::process_families());
    let mut body = String::with_capacity(8192);
    exposition::encode(&families, &mut body);
    ([(header::CONTENT_TYPE, exposition::CONTENT_TYPE)], body).into_response()
}

/// `/api/v1/targets` in the shape of Prometheus' answer: `activeTargets` with their
/// discovered and final labels, URL, health and last scrape; relabeling keeps no dropped
/// targets' labels, so `droppedTargetCounts` says how many per job.
async fn targets(State(shared): State<Shared>) -> Response {
    let view = shared.read();
    let labels = |labels: &relabel::Labels| {
        labels
            .iter()
            .map(|(name, value)| (name.to_owned(), serde_json::Value::from(value)))
            .collect::<serde_json::Map<_, _>>()
    };
    let mut active = Vec::new();
    let mut dropped = serde_json::Map::new();
    for (job, job_view) in &view.jobs {
        dropped.insert(job.clone(), serde_json::Value::from(job_view.dropped));
        for target in &job_view.targets {
            let state = target.state();
            let last_scrape = match state.last_scrape_ms {
                0 => String::from("0001-01-01T00:00:00Z"),
                ms => timestamps::format_rfc3339(ms as f64 / 1000.0),
            };
            active.push(serde_json::json!({
                "discoveredLabels": labels(&target.discovered),
                "labels": labels(&target.labels),
                "scrapePool": job,
                "scrapeUrl": target.url,
                "lastError": state.last_error.unwrap_or_default(),
                "lastScrape": last_scrape,
                "lastScrapeDuration": state.last_duration.as_secs_f64(),
                "health": state.health.as_str(),
            }));
        }
    }
    let body = serde_json::json!({
        "status": "success",
        "data": {"activeTargets": active, "droppedTargetCounts": dropped},
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn ready(State(shared): State<Shared>) -> Response {
    if shared.read().ready {
        (StatusCode::OK, "Ready.\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Not ready: starting.\n").into_response()
    }
}

async fn reload(State(shared): State<Shared>) -> Response {
    let (reply, answer) = oneshot::channel();
    if shared.reload.send(reply).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the agent is stopping\n").into_response();
    }
    match answer.await {
        Ok(Ok(())) => (StatusCode::OK, "configuration reloaded\n").into_response(),
        Ok(Err(error)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {error}\n"),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the agent is stopping\n").into_response(),
    }
}

fn labels_text(labels: &relabel::Labels) -> String {
    labels
        .iter()
        .map(|(name, value)| format!("{name}=\"{}\"", web::html_escape(value)))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn status_page(State(shared): State<Shared>) -> Html<String> {
    let view = shared.read();
    let now_ms = timestamps::now_ms();
    let mut page = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>ecs-prom agent</title>\
         <style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left;vertical-align:top}\
         .down,.error{color:#b00}.up{color:#070}</style></head><body><h1>ecs-prom agent</h1>",
    );
    page.push_str(
        "<p><a href=\"/metrics\">/metrics</a> · <a href=\"/-/ready\">/-/ready</a> · \
         <a href=\"/-/healthy\">/-/healthy</a> · reload: <code>POST /-/reload</code> or SIGHUP</p>",
    );
    if let Some(error) = &view.reloads.last_error {
        let _ = write!(
            page,
            "<p class=\"error\">The last reload failed; the previous configuration is running: {}</p>",
            web::html_escape(error)
        );
    }
    page.push_str("<h2>Remote write</h2><table><tr><th>remote</th><th>url</th><th>pending bytes</th><th>lag</th><th>sent</th><th>dropped</th><th>last error</th></tr>");
    for remote in &view.remotes {
        let stats = remote.counters.stats();
        let dropped: u64 = stats.samples_dropped.iter().map(|(_, n)| n).sum();
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}s</td><td>{}</td><td>{dropped}</td><td class=\"error\">{}</td></tr>",
            web::html_escape(&remote.name),
            web::html_escape(&remote.url),
            stats.queue_bytes,
            lag_seconds(&stats),
            stats.samples_sent,
            web::html_escape(stats.last_error.as_deref().unwrap_or_default()),
        );
    }
    page.push_str("</table>");
    if view.remotes.is_empty() {
        page.push_str("<p>No remote_write is configured: scraped samples go nowhere.</p>");
    }
    page.push_str("<h2>Targets</h2>");
    for (job, state) in &view.jobs {
        let up = state
            .targets
            .iter()
            .filter(|t| t.state().health == crate::status::Health::Up)
            .count();
        let _ = write!(
            page,
            "<h3>{} ({up}/{} up, {} dropped by relabeling)</h3>",
            web::html_escape(job),
            state.targets.len(),
            state.dropped
        );
        for error in &state.discovery_errors {
            let _ = write!(
                page,
                "<p class=\"error\">discovery failing, its last good targets kept: {}</p>",
                web::html_escape(error)
            );
        }
        for invalid in &state.invalid {
            let _ = write!(
                page,
                "<p class=\"error\">not scraped: {}</p>",
                web::html_escape(invalid)
            );
        }
        page.push_str("<table><tr><th>endpoint</th><th>state</th><th>labels</th><th>last scrape</th><th>duration</th><th>samples</th><th>error</th></tr>");
        for target in &state.targets {
            let scrape = target.state();
            let ago = if scrape.last_scrape_ms == 0 {
                "never".to_owned()
            } else {
                format!(
                    "{:.1}s ago",
                    (now_ms - scrape.last_scrape_ms) as f64 / 1000.0
                )
            };
            let _ = write!(
                page,
                "<tr><td>{}</td><td class=\"{health}\">{health}</td><td title=\"before relabeling: {}\">{}</td><td>{ago}</td><td>{:.3}s</td><td>{}</td><td class=\"error\">{}</td></tr>",
                web::html_escape(&target.url),
                labels_text(&target.discovered),
                labels_text(&target.labels),
                scrape.last_duration.as_secs_f64(),
                scrape.samples,
                web::html_escape(scrape.last_error.as_deref().unwrap_or_default()),
                health = scrape.health.as_str(),
            );
        }
        page.push_str("</table>");
    }
    page.push_str("</body></html>");
    Html(page)
}

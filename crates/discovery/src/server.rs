//! Discovery's HTTP endpoints: http_sd at `/prometheus-targets`, self-metrics at `/metrics`,
//! `/-/healthy`, `/-/ready` (after the first refresh with every source good), and `/`, a page
//! with every source's state, its last error in words, and the current targets.

use crate::snapshot::{Place, Snapshot};
use aws_api::AwsClient;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

/// The http_sd path (the seed's).
pub const TARGETS_PATH: &str = "/prometheus-targets";

/// What the handlers read.
#[derive(Clone)]
pub struct Shared {
    /// The state after the last refresh.
    pub snapshot: Arc<RwLock<Snapshot>>,
    /// The AWS client, for its live call counts.
    pub client: Arc<AwsClient>,
}

impl Shared {
    fn read(&self) -> Snapshot {
        self.snapshot.read().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The routes.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route(TARGETS_PATH, get(targets))
        .route("/metrics", get(metrics))
        .route("/-/healthy", get(|| async { "Healthy.\n" }))
        .route("/-/ready", get(ready))
        .route("/", get(status_page))
        .with_state(shared)
}

async fn targets(State(shared): State<Shared>) -> Response {
    let snapshot = shared.read();
    if !snapshot.known {
        // Not `[]`: Prometheus keeps its last good list when http_sd fails, so a discovery
        // restarted with no state file does not empty it before a source answers.
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no source has answered yet\n",
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, "application/json")],
        snapshot.targets_json,
    )
        .into_response()
}

async fn metrics(State(shared): State<Shared>) -> Response {
    let mut families = shared.read().families(&shared.client);
    #[cfg(target_os = "linux")]
    families.extend(exposition::process_families());
    let mut body = String::with_capacity(8192);
    exposition::encode(&families, &mut body);
    ([(header::CONTENT_TYPE, exposition::CONTENT_TYPE)], body).into_response()
}

async fn ready(State(shared): State<Shared>) -> Response {
    let snapshot = shared.read();
    if snapshot.ready {
        (StatusCode::OK, "Ready.\n").into_response()
    } else {
        let mut body = String::from(
            "Not ready: no refresh has completed with every source good and every file written yet.\n",
        );
        for (place, error) in snapshot.errors() {
            let _ = writeln!(body, "{place}: {error}");
        }
        (StatusCode::SERVICE_UNAVAILABLE, body).into_response()
    }
}

async fn status_page(State(shared): State<Shared>) -> Html<String> {
    let snapshot = shared.read();
    let mut page = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>ecs-prom discovery</title>\
         <style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left;vertical-align:top}\
         .error{color:#b00}</style></head><body><h1>ecs-prom discovery</h1>",
    );
    let _ = write!(
        page,
        "<p>{} refreshes; {} targets. <a href=\"{TARGETS_PATH}\">{TARGETS_PATH}</a> (http_sd) · \
         <a href=\"/metrics\">/metrics</a> · <a href=\"/-/ready\">/-/ready</a></p>",
        snapshot.refreshes,
        snapshot.targets.len()
    );
    page.push_str("<h2>Sources</h2><table><tr><th>source</th><th>name</th><th>targets</th><th>state</th></tr>");
    for (key, status) in &snapshot.sources {
        let state = match &status.last_error {
            None if status.restored => "restored from the state file, not refreshed yet".to_owned(),
            None => "ok".to_owned(),
            Some(error) => format!(
                "<span class=\"error\">failing, keeping its previous targets: {}</span>",
                web::html_escape(&error.to_string())
            ),
        };
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{state}</td></tr>",
            key.kind.as_str(),
            web::html_escape(&key.name),
            status.targets.len()
        );
    }
    page.push_str("</table>");
    if snapshot.sources.is_empty() {
        page.push_str("<p>No sources yet: the first refresh has not completed, or no namespace or cluster is configured.</p>");
    }
    for (place, error) in snapshot
        .errors()
        .iter()
        .filter(|(place, _)| !matches!(place, Place::Source(_)))
    {
        let _ = write!(
            page,
            "<p class=\"error\">{}: {}</p>",
            web::html_escape(&place.to_string()),
            web::html_escape(error)
        );
    }
    page.push_str("<h2>Targets</h2><table><tr><th>target</th><th>labels</th></tr>");
    for target in &snapshot.targets {
        let labels: Vec<String> = target
            .labels
            .iter()
            .filter(|(name, _)| !name.starts_with("__meta_"))
            .map(|(name, value)| format!("{name}=\"{}\"", web::html_escape(value)))
            .collect();
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td></tr>",
            web::html_escape(&target.targets.join(", ")),
            labels.join(", ")
        );
    }
    page.push_str("</table></body></html>\n");
    Html(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use file_sd::{TargetGroup, render};

    #[tokio::test]
    async fn http_sd_answers_503_until_targets_are_known_then_the_targets() {
        let client = Arc::new(AwsClient::new(
            aws_api::AwsConfig::from_env(|_| None),
            "us-east-1".into(),
            aws_api::ClientOptions::default(),
        ));
        let shared = Shared {
            snapshot: Arc::new(RwLock::new(Snapshot::default())),
            client,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(axum::serve(listener, router(shared.clone())).into_future());
        let (status, _) = test_support::http_get(&format!("{url}{TARGETS_PATH}")).await;
        assert_eq!(status, 503);
        assert_eq!(
            test_support::http_get(&format!("{url}/-/ready")).await.0,
            503
        );
        let targets = vec![TargetGroup::new("10.0.0.1", 9779)];
        if let Ok(mut snapshot) = shared.snapshot.write() {
            snapshot.refreshes = 1;
            snapshot.known = true;
            snapshot.ready = true;
            snapshot.targets_json = render(&targets);
            snapshot.targets = targets;
        }
        let (status, body) = test_support::http_get(&format!("{url}{TARGETS_PATH}")).await;
        assert_eq!(
            (status, body.as_str()),
            (
                200,
                "[\n  {\"targets\":[\"10.0.0.1:9779\"],\"labels\":{}}\n]\n"
            )
        );
        assert_eq!(
            test_support::http_get(&format!("{url}/-/ready")).await.0,
            200
        );
        let (_, page) = test_support::http_get(&format!("{url}/")).await;
        assert!(page.contains("10.0.0.1:9779"), "{page}");
    }
}

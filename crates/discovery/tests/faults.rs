//! Faults between discovery and AWS: a proxy on loopback passes requests to a real
//! `moto_server` and, when told to, answers an operation with a throttle, a 500, or nothing
//! within the client's deadline. The target list and the file never shrink, retries happen,
//! and the failure metrics count. The proxy can also play AWS with a clock an hour ahead of
//! this host's, rejecting requests signed with the local time as AWS does.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use aws_api::{AwsClient, AwsConfig, ClientOptions};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use discovery::Namespaces;
use discovery::{Config, Pipeline};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use test_support::MotoServer;

#[derive(Clone, Copy, Debug)]
enum Fault {
    Throttle,
    ServerError,
    Hang,
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    /// Operation -> fault and how many more requests it hits.
    faults: Arc<Mutex<HashMap<String, (Fault, u32)>>>,
    /// Seconds the proxy's clock is ahead of this host's; 0 checks no request times.
    skew: Arc<AtomicI64>,
    /// Requests rejected for their time.
    rejected_for_time: Arc<AtomicU64>,
    http: web::Client,
}

impl Proxy {
    fn inject(&self, operation: &str, fault: Fault, times: u32) {
        self.faults
            .lock()
            .unwrap()
            .insert(operation.to_owned(), (fault, times));
    }

    fn clear(&self) {
        self.faults.lock().unwrap().clear();
    }
}

/// `YYYYMMDDTHHMMSSZ` strings order like the times they name, so the window is checked on
/// the strings.
fn skewed_time_check(proxy: &Proxy, headers: &http::HeaderMap) -> Option<Response> {
    let skew = proxy.skew.load(Ordering::SeqCst);
    if skew == 0 {
        return None;
    }
    let now = (unix_now() + skew) as u64;
    let request_time = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let server_time = aws_api::sigv4::amz_date(now);
    let earliest = aws_api::sigv4::amz_date(now - 300);
    let latest = aws_api::sigv4::amz_date(now + 300);
    // AWS' own wording for a request outside its five-minute window.
    let message = if request_time < earliest.as_str() {
        format!(
            "Signature expired: {request_time} is now earlier than {earliest} ({server_time} - 5 min.)"
        )
    } else if request_time > latest.as_str() {
        format!(
            "Signature not yet current: {request_time} is still later than {latest} ({server_time} + 5 min.)"
        )
    } else {
        return None;
    };
    proxy.rejected_for_time.fetch_add(1, Ordering::SeqCst);
    let body = serde_json::json!({"__type": "InvalidSignatureException", "message": message});
    Some(
        (
            axum::http::StatusCode::BAD_REQUEST,
            [
                ("x-amzn-errortype", "InvalidSignatureException".to_owned()),
                ("date", timestamps::format_http_date(now)),
            ],
            body.to_string(),
        )
            .into_response(),
    )
}

fn unix_now() -> i64 {
    timestamps::now() as i64
}

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Some(rejection) = skewed_time_check(&proxy, &parts.headers) {
        return rejection;
    }
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .map(str::to_owned)
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&body)
                .split('&')
                .find_map(|p| p.strip_prefix("Action=").map(str::to_owned))
                .unwrap_or_default()
        });
    let fault = {
        let mut faults = proxy.faults.lock().unwrap();
        match faults.get_mut(&operation) {
            Some((fault, remaining)) if *remaining > 0 => {
                *remaining -= 1;
                Some(*fault)
            }
            _ => None,
        }
    };
    match fault {
        Some(Fault::Throttle) => {
            return (
                axum::http::StatusCode::BAD_REQUEST,
                [("x-amzn-errortype", "ThrottlingException")],
                r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            )
                .into_response();
        }
        Some(Fault::ServerError) => {
            return (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"__type":"ServerException","message":"internal error"}"#,
            )
                .into_response();
        }
        Some(Fault::Hang) => tokio::time::sleep(Duration::from_secs(5)).await,
        None => {}
    }
    let mut upstream = http::Request::builder().method(parts.method).uri(format!(
        "{}{}",
        proxy.upstream,
        parts.uri.path()
    ));
    for (name, value) in &parts.headers {
        upstream = upstream.header(name, value);
    }
    let answer = proxy.http.send(upstream.body(body).unwrap()).await.unwrap();
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = answer.status;
    *response.headers_mut() = answer.headers;
    response
}

/// A client for moto_server's credentials whose calls go through the proxy at `proxy_url`,
/// with short backoffs so retried faults stay quick.
fn client_through(
    moto: &MotoServer,
    proxy_url: String,
    attempt_timeout: Duration,
) -> Arc<AwsClient> {
    let mut env: HashMap<&str, String> = moto.aws_env().into_iter().collect();
    env.insert("AWS_ENDPOINT_URL", proxy_url);
    let options = ClientOptions {
        attempt_timeout,
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(50),
        ..ClientOptions::default()
    };
    Arc::new(AwsClient::new(
        AwsConfig::from_env(|key| env.get(key).cloned()),
        "us-east-1".into(),
        options,
    ))
}

async fn start_proxy(upstream: &str) -> (Proxy, String) {
    let proxy = Proxy {
        upstream: upstream.to_owned(),
        faults: Arc::default(),
        skew: Arc::default(),
        rejected_for_time: Arc::default(),
        http: web::Client::new(Duration::from_secs(30)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(forward)
        .with_state(proxy.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (proxy, url)
}

fn attempts(client: &AwsClient, operation: &str, outcome: &str) -> u64 {
    client
        .counts()
        .snapshot()
        .iter()
        .filter(|((_, op, out), _)| *op == operation && out.as_str() == outcome)
        .map(|(_, n)| n)
        .sum()
}

fn metric(snapshot: &discovery::Snapshot, client: &Arc<AwsClient>, series: &str) -> f64 {
    let mut text = String::new();
    exposition::encode(&snapshot.families(client), &mut text);
    text.lines()
        .find_map(|line| {
            line.strip_prefix(series)
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("{series} not in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws_faults_never_shrink_the_targets_and_are_retried_and_counted() {
    let moto = MotoServer::start();
    moto.run_python(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aws_setup.py"),
        &["cluster"],
    );
    let (proxy, proxy_url) = start_proxy(&moto.url).await;
    let client = client_through(&moto, proxy_url, Duration::from_millis(500));
    let dir = std::env::temp_dir().join(format!("discovery-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("targets.json");
    let config = Config {
        namespaces: Namespaces::Parameter("ECS-ServiceDiscovery-Namespaces".into()),
        clusters: vec!["prod".into()],
        output_file: Some(file.clone()),
        state_file: None,
        refresh_interval: Duration::from_secs(1),
        refresh_timeout: Duration::from_secs(60),
        container_instance_ttl: Duration::from_secs(600),
        prometheus_config: None,
    };
    let mut pipeline = Pipeline::new(&config, client.clone());
    let (baseline, ok) = pipeline.refresh().await;
    assert!(ok, "{:?}", baseline.errors());
    assert_eq!(baseline.targets.len(), 8);
    let baseline_file = std::fs::read_to_string(&file).unwrap();

    // ECS throttles every ListTasks: 4 attempts, then the cluster keeps its targets.
    proxy.inject("ListTasks", Fault::Throttle, u32::MAX);
    let (throttled, ok) = pipeline.refresh().await;
    assert!(!ok);
    assert_eq!(throttled.targets, baseline.targets);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), baseline_file);
    assert_eq!(attempts(&client, "ListTasks", "throttled"), 4);
    let error = throttled.errors();
    assert!(
        error
            .iter()
            .any(|(place, e)| place.to_string() == "ecs prod" && e.contains("ThrottlingException")),
        "{error:?}"
    );
    assert_eq!(
        metric(
            &throttled,
            &client,
            "ecs_prom_discovery_refresh_failures_total{source=\"ecs\",name=\"prod\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &throttled,
            &client,
            "ecs_prom_discovery_aws_requests_total{service=\"ecs\",operation=\"ListTasks\",outcome=\"throttled\"}"
        ),
        4.0
    );
    assert_eq!(
        metric(
            &throttled,
            &client,
            "ecs_prom_discovery_source_up{source=\"ecs\",name=\"prod\"}"
        ),
        0.0
    );

    // Cloud Map answers 500s and SSM hangs past the deadline: the namespaces read before and
    // their targets stay.
    proxy.clear();
    proxy.inject("ListInstances", Fault::ServerError, u32::MAX);
    proxy.inject("GetParameter", Fault::Hang, u32::MAX);
    let (broken, ok) = pipeline.refresh().await;
    assert!(!ok);
    assert_eq!(broken.targets, baseline.targets);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), baseline_file);
    assert_eq!(attempts(&client, "GetParameter", "timeout"), 4);
    // One failed call per namespace, 4 attempts each.
    assert_eq!(attempts(&client, "ListInstances", "server_error"), 8);
    assert!(
        broken
            .namespaces_error
            .as_ref()
            .is_some_and(|e| e.to_string().contains("no complete answer"))
    );
    assert_eq!(
        metric(
            &broken,
            &client,
            "ecs_prom_discovery_refresh_failures_total{source=\"cloudmap\",name=\"apps\"}"
        ),
        1.0
    );

    // Two throttles, then an answer: the retry hides the fault.
    proxy.clear();
    proxy.inject("ListTasks", Fault::Throttle, 2);
    let before = client.counts().attempts("ListTasks");
    let (recovered, ok) = pipeline.refresh().await;
    assert!(ok, "{:?}", recovered.errors());
    assert_eq!(client.counts().attempts("ListTasks") - before, 3);
    assert_eq!(recovered.targets, baseline.targets);
    assert!(recovered.errors().is_empty());
    assert_eq!(
        metric(
            &recovered,
            &client,
            "ecs_prom_discovery_source_up{source=\"ecs\",name=\"prod\"}"
        ),
        1.0
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_fake_aws_dates_read_back() {
    assert_eq!(
        aws_api::clock_skew::parse_http_date(&timestamps::format_http_date(1_700_000_000)),
        Some(1_700_000_000)
    );
}

/// This host's clock is an hour behind AWS': the first request is rejected as AWS rejects it,
/// the client takes AWS' time from that answer, and nothing is rejected after that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_an_hour_behind_aws_costs_one_rejected_attempt() {
    let moto = MotoServer::start();
    moto.run_python(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aws_setup.py"),
        &["cluster"],
    );
    let (proxy, proxy_url) = start_proxy(&moto.url).await;
    proxy.skew.store(3600, Ordering::SeqCst);
    let client = client_through(&moto, proxy_url, Duration::from_millis(2000));
    let dir = std::env::temp_dir().join(format!("discovery-skew-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = Config {
        namespaces: Namespaces::Parameter("ECS-ServiceDiscovery-Namespaces".into()),
        clusters: vec!["prod".into()],
        output_file: Some(dir.join("targets.json")),
        state_file: None,
        refresh_interval: Duration::from_secs(1),
        refresh_timeout: Duration::from_secs(60),
        container_instance_ttl: Duration::from_secs(600),
        prometheus_config: None,
    };
    let mut pipeline = Pipeline::new(&config, client.clone());

    let (first, ok) = pipeline.refresh().await;
    assert!(ok, "{:?}", first.errors());
    assert_eq!(first.targets.len(), 8);
    // The namespaces parameter is read before anything else: that one request is rejected.
    assert_eq!(proxy.rejected_for_time.load(Ordering::SeqCst), 1);
    assert_eq!(attempts(&client, "GetParameter", "client_error"), 1);
    let offset = client.clock_offset_seconds();
    assert!((3598..=3602).contains(&offset), "offset {offset}");
    let gauge = metric(
        &first,
        &client,
        "ecs_prom_discovery_aws_clock_offset_seconds",
    );
    assert!((3598.0..=3602.0).contains(&gauge), "gauge {gauge}");

    for _ in 0..2 {
        let (later, ok) = pipeline.refresh().await;
        assert!(ok, "{:?}", later.errors());
        assert_eq!(later.targets, first.targets);
    }
    assert_eq!(proxy.rejected_for_time.load(Ordering::SeqCst), 1);
    assert_eq!(attempts(&client, "GetParameter", "client_error"), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

//! Faults between discovery and AWS: a proxy on loopback passes requests to a real
//! `moto_server` and, when told to, answers an operation with a throttle, a 500, or nothing
//! within the client's deadline. The target list and the file never shrink, retries happen,
//! and the failure metrics count.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use aws_api::{AwsClient, AwsConfig, ClientOptions};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use discovery::refresh::Namespaces;
use discovery::{Config, Pipeline};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use std::path::Path;
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
    http: Client<HttpConnector, Full<Bytes>>,
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

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
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
    let answer = proxy
        .http
        .request(upstream.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let (parts, body) = answer.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Response::from_parts(parts, Body::from(body))
}

async fn start_proxy(upstream: &str) -> (Proxy, String) {
    let proxy = Proxy {
        upstream: upstream.to_owned(),
        faults: Arc::default(),
        http: Client::builder(TokioExecutor::new()).build_http(),
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

fn metric(snapshot: &discovery::snapshot::Snapshot, client: &Arc<AwsClient>, series: &str) -> f64 {
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
    let mut env: HashMap<&str, String> = moto.aws_env().into_iter().collect();
    env.insert("AWS_ENDPOINT_URL", proxy_url);
    let options = ClientOptions {
        attempt_timeout: Duration::from_millis(500),
        backoff_base: Duration::from_millis(10),
        backoff_cap: Duration::from_millis(50),
        ..ClientOptions::default()
    };
    let client = Arc::new(AwsClient::new(
        AwsConfig::from_env(|key| env.get(key).cloned()),
        "us-east-1".into(),
        options,
    ));
    let dir = std::env::temp_dir().join(format!("discovery-faults-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("targets.json");
    let config = Config {
        namespaces: Namespaces::Parameter("ECS-ServiceDiscovery-Namespaces".into()),
        clusters: vec!["prod".into()],
        output_file: Some(file.clone()),
        refresh_interval: Duration::from_secs(1),
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
            .any(|(place, e)| place == "ecs prod" && e.contains("ThrottlingException")),
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
            .as_deref()
            .is_some_and(|e| e.contains("no complete answer"))
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

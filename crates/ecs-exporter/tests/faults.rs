//! Fault tests: the exporter on a real socket, in front of a stub metadata endpoint on
//! loopback that fails in the ways real endpoints do. Each test checks the HTTP status, the
//! collector success gauges and how long the scrape took.

// Test helpers fail the test on any unexpected error.
#![allow(clippy::expect_used)]

use ecs_exporter::{Config, Scope};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use test_support::{http_get, promtool_check_metrics};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TIMEOUT: Duration = Duration::from_millis(400);
/// A failed scrape must answer within the upstream timeout plus this much.
const SLACK: Duration = Duration::from_millis(600);

const TASK: &str =
    include_str!("../../../fixtures/ecs-metadata/ecs_exporter-fargate_task_metadata.json");
const STATS: &str =
    include_str!("../../../fixtures/ecs-metadata/ecs_exporter-fargate_task_stats.json");

/// How the stub answers one path.
#[derive(Clone)]
enum Answer {
    Json(&'static str),
    Status(u16),
    /// Raw bytes written as the whole response, then the connection is closed.
    Raw(&'static str),
    /// The JSON, after a delay.
    Slow(Duration, &'static str),
    /// A valid response with a body of this many bytes of JSON whitespace around `{}`.
    Huge(usize),
}

#[derive(Clone, Default)]
struct Stub {
    answers: Arc<Mutex<HashMap<&'static str, Answer>>>,
    requests: Arc<Mutex<HashMap<String, usize>>>,
}

impl Stub {
    fn set(&self, path: &'static str, answer: Answer) {
        self.answers.lock().expect("lock").insert(path, answer);
    }

    fn requests(&self, path: &str) -> usize {
        self.requests
            .lock()
            .expect("lock")
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Serves on a loopback port and returns the base URL.
    async fn start(self) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(self.clone().serve(socket));
            }
        });
        format!("http://{address}/v4/stub")
    }

    async fn serve(self, mut socket: TcpStream) {
        loop {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match socket.read(&mut byte).await {
                    Ok(1) => head.push(byte[0]),
                    _ => return,
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let path = head
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .trim_start_matches("/v4/stub")
                .to_owned();
            *self
                .requests
                .lock()
                .expect("lock")
                .entry(path.clone())
                .or_default() += 1;
            let answer = self
                .answers
                .lock()
                .expect("lock")
                .get(path.as_str())
                .cloned();
            let keep_open = match answer {
                Some(Answer::Json(body)) => respond(&mut socket, 200, body.as_bytes()).await,
                Some(Answer::Slow(delay, body)) => {
                    tokio::time::sleep(delay).await;
                    respond(&mut socket, 200, body.as_bytes()).await
                }
                Some(Answer::Status(status)) => respond(&mut socket, status, b"agent error").await,
                Some(Answer::Huge(size)) => {
                    let mut body = vec![b' '; size];
                    body[0] = b'{';
                    body[size - 1] = b'}';
                    respond(&mut socket, 200, &body).await
                }
                Some(Answer::Raw(bytes)) => {
                    let _ = socket.write_all(bytes.as_bytes()).await;
                    false
                }
                None => respond(&mut socket, 404, b"no such path").await,
            };
            if !keep_open {
                return;
            }
        }
    }
}

async fn respond(socket: &mut TcpStream, status: u16, body: &[u8]) -> bool {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.is_ok() && socket.write_all(body).await.is_ok()
}

/// Starts the exporter in front of `metadata_url` and returns its base URL.
async fn start_exporter(metadata_url: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let config = Config {
        metadata_url,
        scope: Scope::Task,
        timeout: TIMEOUT,
        telemetry_path: "/metrics".into(),
        process_metrics: false,
    };
    tokio::spawn(ecs_exporter::run(config, listener, std::future::pending()));
    format!("http://{address}")
}

struct Scrape {
    status: u16,
    body: String,
    took: Duration,
}

impl Scrape {
    fn gauge(&self, series: &str) -> Option<f64> {
        self.body
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    fn success(&self, collector: &str) -> Option<f64> {
        self.gauge(&format!(
            "ecs_exporter_collector_success{{collector=\"{collector}\"}}"
        ))
    }
}

async fn get(url: &str) -> Scrape {
    let started = Instant::now();
    let (status, body) = http_get(url).await;
    Scrape {
        status,
        body,
        took: started.elapsed(),
    }
}

async fn healthy_stub() -> (Stub, String) {
    let stub = Stub::default();
    stub.set("/task", Answer::Json(TASK));
    stub.set("/task/stats", Answer::Json(STATS));
    let url = stub.clone().start().await;
    (stub, url)
}

fn assert_unavailable(scrape: &Scrape, reason: &str) {
    assert_eq!(scrape.status, 503, "{}", scrape.body);
    assert!(
        scrape.body.contains(reason),
        "503 body should mention {reason:?}:\n{}",
        scrape.body
    );
    assert!(scrape.took < TIMEOUT + SLACK, "took {:?}", scrape.took);
}

#[tokio::test]
async fn a_healthy_endpoint_gives_every_series_and_success_gauges_of_one() {
    let (_, url) = healthy_stub().await;
    let scrape = get(&format!("{}/metrics", start_exporter(url).await)).await;
    assert_eq!(scrape.status, 200);
    assert_eq!(scrape.success("metadata"), Some(1.0));
    assert_eq!(scrape.success("stats"), Some(1.0));
    assert_eq!(
        scrape.gauge("ecs_container_cpu_usage_seconds_total{container_name=\"prometheus\"}"),
        Some(0.932439492)
    );
    assert!(scrape.took < SLACK, "took {:?}", scrape.took);
}

#[tokio::test]
async fn an_endpoint_that_is_down_gives_503_quickly() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/v4/gone", listener.local_addr().expect("address"));
    drop(listener);
    let scrape = get(&format!("{}/metrics", start_exporter(url).await)).await;
    assert_unavailable(&scrape, "Connection refused");
}

#[tokio::test]
async fn http_500_malformed_truncated_and_oversized_bodies_give_503() {
    let cases: [(Answer, &str); 4] = [
        (Answer::Status(500), "HTTP 500: agent error"),
        (
            Answer::Json("{\"Cluster\": \"c\", \"Containers\": [ oops"),
            "task: not a valid task metadata document: expected value at line 1 column 34",
        ),
        (
            Answer::Raw("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n{\"Cluster\": "),
            "reading the response body failed",
        ),
        (Answer::Huge(17 * 1024 * 1024), "larger than 16777216 bytes"),
    ];
    for (answer, reason) in cases {
        let stub = Stub::default();
        stub.set("/task", answer.clone());
        stub.set("/task/stats", answer);
        let scrape = get(&format!(
            "{}/metrics",
            start_exporter(stub.start().await).await
        ))
        .await;
        assert_unavailable(&scrape, reason);
    }
}

#[tokio::test]
async fn a_response_slower_than_the_timeout_gives_503_at_the_timeout() {
    let stub = Stub::default();
    stub.set("/task", Answer::Slow(Duration::from_secs(5), TASK));
    stub.set("/task/stats", Answer::Slow(Duration::from_secs(5), STATS));
    let scrape = get(&format!(
        "{}/metrics",
        start_exporter(stub.start().await).await
    ))
    .await;
    assert_unavailable(&scrape, "no complete answer within 400ms");
    assert!(
        scrape.took >= TIMEOUT,
        "answered before the timeout: {:?}",
        scrape.took
    );
}

#[tokio::test]
async fn failing_stats_still_serve_the_metadata_series() {
    let stub = Stub::default();
    stub.set("/task", Answer::Json(TASK));
    stub.set("/task/stats", Answer::Slow(Duration::from_secs(5), STATS));
    let scrape = get(&format!(
        "{}/metrics",
        start_exporter(stub.start().await).await
    ))
    .await;
    assert_eq!(scrape.status, 200, "{}", scrape.body);
    assert_eq!(scrape.success("metadata"), Some(1.0));
    assert_eq!(scrape.success("stats"), Some(0.0));
    assert_eq!(scrape.gauge("ecs_task_cpu_limit_vcpus"), Some(0.25));
    assert!(
        !scrape
            .body
            .contains("ecs_container_cpu_usage_seconds_total"),
        "no stats series without stats"
    );
    assert!(scrape.took < TIMEOUT + SLACK, "took {:?}", scrape.took);
}

#[tokio::test]
async fn a_number_too_large_for_a_double_costs_only_its_own_series() {
    let stub = Stub::default();
    let task = TASK.replacen("\"CPU\": 0.25", "\"CPU\": 1e400", 1);
    let stats = STATS.replacen("\"rx_bytes\": 129045374", "\"rx_bytes\": -1e400", 1);
    assert!(
        task != TASK && stats != STATS,
        "the fixtures hold the replaced values"
    );
    stub.set("/task", Answer::Json(task.leak()));
    stub.set("/task/stats", Answer::Json(stats.leak()));
    let scrape = get(&format!(
        "{}/metrics",
        start_exporter(stub.start().await).await
    ))
    .await;
    assert_eq!(scrape.status, 200, "{}", scrape.body);
    assert_eq!(scrape.success("metadata"), Some(1.0));
    assert_eq!(scrape.success("stats"), Some(1.0));
    assert_eq!(
        scrape.gauge("ecs_task_cpu_limit_vcpus"),
        None,
        "{}",
        scrape.body
    );
    assert_eq!(
        scrape.gauge("ecs_task_memory_limit_bytes"),
        Some(512.0 * 1024.0 * 1024.0)
    );
    assert_eq!(
        scrape.gauge("ecs_container_cpu_usage_seconds_total{container_name=\"prometheus\"}"),
        Some(0.932439492)
    );
}

#[tokio::test]
async fn failing_metadata_keeps_stats_attributed_by_the_last_good_metadata() {
    let (stub, url) = healthy_stub().await;
    let exporter = start_exporter(url).await;
    assert_eq!(get(&format!("{exporter}/metrics")).await.status, 200);

    stub.set("/task", Answer::Status(500));
    let scrape = get(&format!("{exporter}/metrics")).await;
    assert_eq!(scrape.status, 200, "{}", scrape.body);
    assert_eq!(scrape.success("metadata"), Some(0.0));
    assert_eq!(scrape.success("stats"), Some(1.0));
    assert_eq!(
        scrape.gauge("ecs_container_memory_usage_bytes{container_name=\"ecs-exporter\"}"),
        Some(84111360.0)
    );
    // Metadata series would be stale, so they are left out.
    assert!(
        !scrape.body.contains("ecs_task_metadata_info"),
        "{}",
        scrape.body
    );
}

#[tokio::test]
async fn failing_metadata_before_any_success_gives_503_with_the_reason() {
    let stub = Stub::default();
    stub.set("/task", Answer::Status(500));
    stub.set("/task/stats", Answer::Json(STATS));
    let scrape = get(&format!(
        "{}/metrics",
        start_exporter(stub.start().await).await
    ))
    .await;
    assert_unavailable(&scrape, "cannot be attributed to containers");
}

#[tokio::test]
async fn concurrent_scrapes_share_one_upstream_fetch() {
    let stub = Stub::default();
    stub.set("/task", Answer::Slow(Duration::from_millis(200), TASK));
    stub.set(
        "/task/stats",
        Answer::Slow(Duration::from_millis(200), STATS),
    );
    let exporter = start_exporter(stub.clone().start().await).await;
    let url = format!("{exporter}/metrics");
    let scrapes: Vec<_> = (0..5)
        .map(|_| {
            tokio::spawn({
                let url = url.clone();
                async move { get(&url).await }
            })
        })
        .collect();
    for scrape in scrapes {
        assert_eq!(scrape.await.expect("scrape task").status, 200);
    }
    assert_eq!(
        stub.requests("/task"),
        1,
        "five concurrent scrapes must share one /task request"
    );
    assert_eq!(stub.requests("/task/stats"), 1);
    // A later scrape reads the endpoint again.
    assert_eq!(get(&url).await.status, 200);
    assert_eq!(stub.requests("/task"), 2);
}

#[tokio::test]
async fn health_readiness_and_landing_page() {
    let (stub, url) = healthy_stub().await;
    let exporter = start_exporter(url).await;
    assert_eq!(get(&format!("{exporter}/-/healthy")).await.status, 200);
    assert_eq!(get(&format!("{exporter}/health")).await.status, 200);
    let landing = get(&format!("{exporter}/")).await;
    assert!(
        landing.status == 200 && landing.body.contains("href=\"/metrics\""),
        "{}",
        landing.body
    );
    assert_eq!(get(&format!("{exporter}/nothing-here")).await.status, 404);

    // Ready: the endpoint is asked when nobody has scraped yet.
    assert_eq!(get(&format!("{exporter}/-/ready")).await.status, 200);
    assert_eq!(stub.requests("/task"), 1);

    let down = Stub::default();
    down.set("/task", Answer::Status(503));
    down.set("/task/stats", Answer::Status(503));
    let exporter = start_exporter(down.start().await).await;
    let ready = get(&format!("{exporter}/-/ready")).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.body.contains("HTTP 503"), "{}", ready.body);
}

#[tokio::test]
async fn scrapes_one_after_another_each_read_fresh_documents() {
    let (stub, url) = healthy_stub().await;
    let exporter = start_exporter(url).await;
    for _ in 0..3 {
        assert_eq!(get(&format!("{exporter}/metrics")).await.status, 200);
    }
    assert_eq!(stub.requests("/task"), 3);
    assert_eq!(stub.requests("/task/stats"), 3);
}

#[tokio::test]
async fn a_scrape_that_gives_up_does_not_cancel_the_fetch_others_wait_for() {
    let stub = Stub::default();
    stub.set("/task", Answer::Slow(Duration::from_millis(250), TASK));
    stub.set(
        "/task/stats",
        Answer::Slow(Duration::from_millis(250), STATS),
    );
    let client =
        ecs_metadata::MetadataClient::new(&stub.clone().start().await, TIMEOUT).expect("client");
    let upstream = Arc::new(ecs_exporter::upstream::Upstream::new(client, Scope::Task));
    // The first reader gives up after 50 ms, as a scrape handler does when Prometheus hangs up.
    let impatient = tokio::spawn({
        let upstream = Arc::clone(&upstream);
        async move { upstream.read().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    impatient.abort();
    let reading = upstream.read().await;
    assert!(reading.servable());
    // A cancelled fetch would have been started again: a second request. (Timing the wait
    // instead made this test fail on a loaded machine.)
    assert_eq!(
        stub.requests("/task"),
        1,
        "the fetch was shared, not restarted"
    );
}

#[tokio::test]
async fn a_document_without_a_task_is_no_task() {
    let stub = Stub::default();
    stub.set("/task", Answer::Json("{\"message\": \"not ready\"}"));
    stub.set("/task/stats", Answer::Json("{}"));
    let scrape = get(&format!(
        "{}/metrics",
        start_exporter(stub.start().await).await
    ))
    .await;
    assert_unavailable(&scrape, "expected one task with a TaskARN, found 0");
}

#[tokio::test]
async fn not_ready_while_only_stats_can_be_read() {
    let stub = Stub::default();
    stub.set("/task", Answer::Status(500));
    stub.set("/task/stats", Answer::Json(STATS));
    let exporter = start_exporter(stub.start().await).await;
    assert_eq!(get(&format!("{exporter}/metrics")).await.status, 503);
    assert_eq!(get(&format!("{exporter}/-/ready")).await.status, 503);
}

#[tokio::test]
async fn a_whole_scrape_with_self_and_process_metrics_passes_promtool() {
    let (_, url) = healthy_stub().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let config = Config {
        metadata_url: url,
        scope: Scope::Task,
        timeout: TIMEOUT,
        telemetry_path: "/metrics".into(),
        process_metrics: true,
    };
    tokio::spawn(ecs_exporter::run(config, listener, std::future::pending()));
    let scrape = get(&format!("http://{address}/metrics")).await;
    assert!(
        scrape.body.contains("process_resident_memory_bytes"),
        "{}",
        scrape.body
    );
    if let Err(said) = promtool_check_metrics(scrape.body.as_bytes()) {
        panic!("promtool said:\n{said}");
    }
}

//! The demo application on a real socket: its endpoints, its metrics (with bounded labels),
//! its load generator, and its traces arriving at a local OTLP/HTTP receiver.

// Test helpers fail the test on any unexpected error.
#![allow(clippy::expect_used)]

use demo_app::Config;
use demo_app::OtlpConfig;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use test_support::http_get as get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn config() -> Config {
    Config {
        work_median: Duration::from_millis(5),
        work_p99: Duration::from_millis(20),
        external_url: None,
        external_timeout: Duration::from_millis(500),
        load_requests_per_second: 0.0,
        load_concurrency: 1,
        instrumentation: true,
        otlp: None,
    }
}

async fn start(config: Config) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(demo_app::run(config, listener, std::future::pending()));
    url
}

fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn endpoints_answer_and_every_request_is_counted_and_timed() {
    let app = start(config()).await;
    assert_eq!(get(&format!("{app}/work")).await.0, 200);
    assert_eq!(get(&format!("{app}/health")).await.0, 200);
    assert_eq!(get(&format!("{app}/api/data")).await.0, 200);
    assert_eq!(get(&format!("{app}/error")).await.0, 500);
    let (status, body) = get(&format!("{app}/external")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"ok\":true"), "{body}");
    for junk in ["/wp-login.php", "/a/b/c", "/work/extra"] {
        assert_eq!(get(&format!("{app}{junk}")).await.0, 404);
    }
    let (_, metrics) = get(&format!("{app}/metrics")).await;
    let count = |path: &str, status: &str| {
        sample(
            &metrics,
            &format!("http_requests_total{{method=\"GET\",path=\"{path}\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(count("/work", "200"), Some(1.0));
    assert_eq!(count("/error", "500"), Some(1.0));
    // /external called /health once more.
    assert_eq!(count("/health", "200"), Some(2.0));
    assert_eq!(
        count("other", "404"),
        Some(3.0),
        "unknown paths share one label value:\n{metrics}"
    );
    assert!(!metrics.contains("wp-login"), "{metrics}");
    let work_count = sample(
        &metrics,
        "request_duration_milliseconds_count{path=\"/work\"}",
    );
    let work_inf = sample(
        &metrics,
        "request_duration_milliseconds_bucket{path=\"/work\",le=\"+Inf\"}",
    );
    assert_eq!((work_count, work_inf), (Some(1.0), Some(1.0)));
    for bound in ["500", "1000", "2500", "5000"] {
        assert!(
            metrics.contains(&format!("le=\"{bound}\"")),
            "bucket {bound} missing"
        );
    }
}

#[tokio::test]
async fn external_reports_a_failing_dependency_as_bad_gateway() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_url = format!("http://{}/", dead.local_addr().expect("address"));
    drop(dead);
    let app = start(Config {
        external_url: Some(dead_url),
        ..config()
    })
    .await;
    let (status, body) = get(&format!("{app}/external")).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("\"ok\":false"), "{body}");
}

#[tokio::test]
async fn the_load_generator_sends_the_path_mix_at_the_requested_rate() {
    let app = start(Config {
        load_requests_per_second: 100.0,
        load_concurrency: 4,
        ..config()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, metrics) = get(&format!("{app}/metrics")).await;
    let total: f64 = metrics
        .lines()
        .filter(|line| line.starts_with("http_requests_total{") && !line.contains("/metrics"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    // 1.5 s at 100/s, less the requests still in flight.
    assert!(
        (80.0..=170.0).contains(&total),
        "{total} requests:\n{metrics}"
    );
    assert!(
        metrics.contains("status=\"500\""),
        "the mix includes errors"
    );
}

#[tokio::test]
async fn traces_reach_an_otlp_http_receiver() {
    let receiver = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", receiver.local_addr().expect("address"));
    let bodies = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::clone(&bodies);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = receiver.accept().await {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buffer = [0u8; 8192];
                loop {
                    let Ok(n) = socket.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&data).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        seen.lock()
                            .expect("lock")
                            .push(format!("{}\n{body}", head.lines().next().unwrap_or("")));
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                            .await;
                        data.clear();
                    }
                }
            });
        }
    });
    let otlp = OtlpConfig {
        traces_url: format!("{endpoint}/v1/traces"),
        service_name: "demo-under-test".into(),
    };
    let app = start(Config {
        otlp: Some(otlp),
        ..config()
    })
    .await;
    assert_eq!(get(&format!("{app}/work")).await.0, 200);
    assert_eq!(get(&format!("{app}/error")).await.0, 500);
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        let received = bodies.lock().expect("lock").join("\n");
        if received.contains("GET /error") && received.contains("GET /work") {
            assert!(received.starts_with("POST /v1/traces"), "{received}");
            let json = received
                .split_once('\n')
                .map(|(_, b)| b)
                .unwrap_or_default();
            let document: serde_json::Value =
                serde_json::from_str(json.lines().next().unwrap_or("")).expect("OTLP JSON");
            assert_eq!(
                document["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
                "demo-under-test"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no traces arrived: {received}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

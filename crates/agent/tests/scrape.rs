//! One scrape against loopback targets: what Prometheus asks for, the samples and labels that
//! come out (target labels merged, `exported_*`, relabeling, timestamps), and the scrapes that
//! fail as a whole (a malformed body, the sample limit, an error status) with `up` 0.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use agent::{ScrapeSettings, scrape};
use exposition::{SCRAPE_ACCEPT, Strictness};
use relabel::Labels;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A target answering every request with `status`, `content_type` and `body`; it keeps the
/// request heads it saw.
async fn target(
    status: &'static str,
    content_type: &'static str,
    body: &'static str,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let heads = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                    break;
                }
                head.push(byte[0]);
            }
            heads
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&head).to_ascii_lowercase());
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (format!("http://{address}/metrics"), seen)
}

fn settings() -> ScrapeSettings {
    ScrapeSettings {
        timeout: Duration::from_secs(5),
        body_size_limit: 0,
        sample_limit: 0,
        label_limit: 0,
        honor_labels: false,
        honor_timestamps: true,
        metric_relabel_configs: Vec::new(),
        strictness: Strictness::Prometheus,
        auth: agent::HttpClientConfig::default(),
        external_labels: Vec::new(),
    }
}

fn target_labels() -> Labels {
    Labels::from_pairs([("instance", "app:8080"), ("job", "outer")])
}

/// The value of the per-target series `name`.
fn series(outcome: &agent::ScrapeOutcome, name: &str) -> f64 {
    outcome
        .report
        .iter()
        .find(|s| s.labels.get("__name__") == Some(name))
        .unwrap_or_else(|| panic!("no {name}"))
        .value
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pairs_of(labels: &remote_write::Labels) -> Vec<(String, String)> {
    labels
        .as_slice()
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[tokio::test]
async fn an_openmetrics_target_gives_its_samples_with_the_target_labels() {
    let (url, seen) = target(
        "200 OK",
        OPENMETRICS,
        "# TYPE requests counter\nrequests_total{job=\"inner\",path=\"/\"} 3 1700000000.5\n# EOF\n",
    )
    .await;
    let client = web::Client::new(Duration::from_secs(5));
    let outcome = scrape(
        &client,
        &url,
        &target_labels(),
        &settings(),
        1_800_000_000_000,
    )
    .await;
    assert_eq!(outcome.error, None);
    let sample = &outcome.samples[0];
    assert_eq!(
        pairs_of(&sample.labels),
        pairs(&[
            ("__name__", "requests_total"),
            ("exported_job", "inner"),
            ("instance", "app:8080"),
            ("job", "outer"),
            ("path", "/"),
        ])
    );
    assert_eq!(
        (sample.value, sample.timestamp_ms),
        (3.0, 1_700_000_000_500)
    );
    assert_eq!(series(&outcome, "up"), 1.0);
    assert_eq!(series(&outcome, "scrape_samples_scraped"), 1.0);
    assert_eq!(
        series(&outcome, "scrape_samples_post_metric_relabeling"),
        1.0
    );
    let up = outcome
        .report
        .iter()
        .find(|s| s.labels.get("__name__") == Some("up"))
        .expect("up");
    assert_eq!(
        pairs_of(&up.labels),
        pairs(&[
            ("__name__", "up"),
            ("instance", "app:8080"),
            ("job", "outer")
        ])
    );
    assert_eq!(up.timestamp_ms, 1_800_000_000_000);
    let head = seen.lock().unwrap()[0].clone();
    assert!(
        head.contains(&format!("accept: {}", SCRAPE_ACCEPT.to_ascii_lowercase())),
        "{head}"
    );
    assert!(head.contains("accept-encoding: gzip"), "{head}");
}

#[tokio::test]
async fn relabeling_limits_and_timestamps_apply_as_configured() {
    let (url, _) = target(
        "200 OK",
        "text/plain; version=0.0.4",
        "a 1 1000\nb{x=\"1\"} 2\nb{x=\"2\"} 3\n",
    )
    .await;
    let client = web::Client::new(Duration::from_secs(5));
    let mut settings = settings();
    settings.honor_timestamps = false;
    settings.metric_relabel_configs =
        relabel::parse_relabel_configs("- source_labels: [__name__]\n  regex: a\n  action: drop\n")
            .expect("relabel");
    let outcome = scrape(&client, &url, &target_labels(), &settings, 5_000).await;
    assert_eq!(outcome.error, None);
    assert_eq!(series(&outcome, "scrape_samples_scraped"), 3.0);
    assert_eq!(
        series(&outcome, "scrape_samples_post_metric_relabeling"),
        2.0
    );
    assert!(outcome.samples.iter().all(|s| s.timestamp_ms == 5_000));

    settings.sample_limit = 1;
    let outcome = scrape(&client, &url, &target_labels(), &settings, 5_000).await;
    assert!(
        outcome
            .error
            .as_deref()
            .is_some_and(|e| e.contains("sample limit exceeded")),
        "{:?}",
        outcome.error
    );
    assert_eq!(series(&outcome, "up"), 0.0);
    // Nothing of a failed scrape is kept.
    assert!(outcome.samples.is_empty());
}

#[tokio::test]
async fn a_malformed_body_or_an_error_status_fails_the_whole_scrape() {
    let client = web::Client::new(Duration::from_secs(5));
    let (url, _) = target("200 OK", "text/plain; version=0.0.4", "good 1\nbad{ 2\n").await;
    let outcome = scrape(&client, &url, &target_labels(), &settings(), 0).await;
    assert!(
        outcome
            .error
            .as_deref()
            .is_some_and(|e| e.contains("line 2")),
        "{:?}",
        outcome.error
    );
    assert_eq!(series(&outcome, "up"), 0.0);
    assert_eq!(series(&outcome, "scrape_samples_scraped"), 0.0);
    assert!(outcome.samples.is_empty());

    let (url, _) = target("500 Internal Server Error", "text/plain", "oops").await;
    let outcome = scrape(&client, &url, &target_labels(), &settings(), 0).await;
    assert!(
        outcome.error.as_deref().is_some_and(|e| e.contains("500")),
        "{:?}",
        outcome.error
    );
    assert_eq!(series(&outcome, "up"), 0.0);
}

#[tokio::test]
async fn credentials_are_sent_and_a_secret_file_is_read_at_each_scrape() {
    let (url, seen) = target("200 OK", "text/plain; version=0.0.4", "a 1\n").await;
    let client = web::Client::new(Duration::from_secs(5));
    let file = std::env::temp_dir().join(format!("agent-scrape-token-{}", std::process::id()));
    std::fs::write(&file, "first\n").unwrap();
    let mut settings = settings();
    settings.auth = agent::HttpClientConfig {
        authorization: Some(agent::Authorization {
            kind: "Bearer".into(),
            credentials: agent::Secret::File(file.clone()),
        }),
        ..agent::HttpClientConfig::default()
    };
    assert_eq!(
        scrape(&client, &url, &target_labels(), &settings, 0)
            .await
            .error,
        None
    );
    std::fs::write(&file, "second\n").unwrap();
    assert_eq!(
        scrape(&client, &url, &target_labels(), &settings, 0)
            .await
            .error,
        None
    );
    let heads = seen.lock().unwrap().clone();
    assert!(
        heads[0].contains("authorization: bearer first\r\n"),
        "{}",
        heads[0]
    );
    assert!(
        heads[1].contains("authorization: bearer second\r\n"),
        "{}",
        heads[1]
    );
    // A secret that cannot be read fails the scrape, naming the file.
    std::fs::remove_file(&file).unwrap();
    let outcome = scrape(&client, &url, &target_labels(), &settings, 0).await;
    assert!(
        outcome
            .error
            .as_deref()
            .is_some_and(|e| e.contains("credentials_file")),
        "{:?}",
        outcome.error
    );
    assert_eq!(series(&outcome, "up"), 0.0);
}

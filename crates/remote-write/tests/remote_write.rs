//! The sender against real receivers on loopback, and against a stand-in that fails on purpose:
//! Debian's Prometheus 2.42 (`--web.enable-remote-write-receiver`) and VictoriaMetrics (when
//! installed) store every value, timestamp and label exactly and end a series at its stale
//! marker; through 500s, a 429 with `Retry-After`, a 400 and a receiver that refuses
//! connections across a restart from disk, every sample arrives exactly once or is counted.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use remote_write::{
    Counters, DropReason, Endpoint, Labels, Queue, QueueConfig, Sample, SenderConfig, WriteRequest,
    is_stale_marker, stale_marker,
};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use test_support::http_get;
use test_support::{KillOnDrop, free_port};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("remote-write-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn wait_for<T>(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The deterministic data set: 6 series of 60 samples 10 s apart ending 20 minutes before
/// `base + 10 min`; series 0 ends with a stale marker 10 s after its last sample.
struct DataSet {
    base_ms: i64,
    samples: Vec<Sample>,
}

fn data_set() -> DataSet {
    // Whole seconds, 30 minutes ago: inside the receivers' accepted window.
    let base_ms = (now_ms() / 1000 - 1800) * 1000;
    let mut samples = Vec::new();
    for i in 0..60i64 {
        for series in 0..6i64 {
            let labels = Labels::new([
                (
                    "__name__",
                    format!("rw_test_{}", if series < 3 { "a" } else { "b" }),
                ),
                ("series", series.to_string()),
                ("job", "remote-write-test".to_owned()),
                ("instance", format!("10.0.0.{series}:9100")),
                ("quoted", "a \"b\" \\ c\nd ü".to_owned()),
            ])
            .unwrap();
            let value = match (series, i) {
                (1, 7) => -0.0,
                (2, 9) => 1.0e-300,
                (2, 10) => -123_456_789.125,
                (4, _) => (i * i) as f64 * 0.1,
                (5, _) => 1_000_000_000_000.0 + i as f64,
                _ => series as f64 * 1000.0 + i as f64 * 0.25,
            };
            samples.push(Sample {
                labels,
                // Milliseconds that are not whole seconds, to see them kept.
                timestamp_ms: base_ms + i * 10_000 + series * 7,
                value,
            });
        }
    }
    let stale_labels = samples[0].labels.clone();
    samples.push(Sample {
        labels: stale_labels,
        timestamp_ms: base_ms + 600_000,
        value: stale_marker(),
    });
    DataSet { base_ms, samples }
}

fn sender_config() -> SenderConfig {
    SenderConfig {
        shards: 3,
        max_samples_per_send: 50,
        batch_send_deadline: Duration::from_millis(20),
        max_backoff: Duration::from_millis(300),
        ..SenderConfig::default()
    }
}

/// Appends the data set to a fresh queue and sends it to `url` until every sample is sent.
async fn send_all(name: &str, url: &str, data: &DataSet) -> Arc<Counters> {
    let dir = temp_dir(name);
    let counters = Arc::new(Counters::default());
    let queue =
        Arc::new(Queue::open(QueueConfig::new(dir.join("queue")), Arc::clone(&counters)).unwrap());
    // As scrapes append: one append per timestamp round.
    for round in data.samples.chunks(6) {
        queue.append(round).unwrap();
    }
    let endpoint = Endpoint::http(web::Client::new(Duration::from_secs(5)), url).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sender = tokio::spawn(remote_write::run(
        Arc::clone(&queue),
        endpoint,
        sender_config(),
        async move {
            let _ = stopped.await;
        },
    ));
    let total = data.samples.len() as u64;
    wait_for("every sample sent", Duration::from_secs(10), async || {
        (counters.stats().samples_sent == total).then_some(())
    })
    .await;
    stop.send(()).unwrap();
    sender.await.unwrap().unwrap();
    let stats = counters.stats();
    assert_eq!(
        stats.samples_dropped.iter().map(|(_, n)| n).sum::<u64>(),
        0,
        "{stats:?}"
    );
    assert_eq!(stats.newest_sent_timestamp_ms, data.base_ms + 600_000);
    assert_eq!(stats.newest_appended_timestamp_ms, data.base_ms + 600_000);
    counters
}

/// The expected series: labels as a map, and `(timestamp, value bits)` without stale markers.
fn expected(data: &DataSet) -> BTreeMap<BTreeMap<String, String>, Vec<(i64, u64)>> {
    let mut series: BTreeMap<BTreeMap<String, String>, Vec<(i64, u64)>> = BTreeMap::new();
    for sample in &data.samples {
        let labels = sample
            .labels
            .as_slice()
            .iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect();
        let points = series.entry(labels).or_default();
        if !is_stale_marker(sample.value) {
            points.push((sample.timestamp_ms, sample.value.to_bits()));
        }
    }
    series
}

fn labels_of(metric: &Value) -> BTreeMap<String, String> {
    metric
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// Reads a value as Prometheus' JSON writes it (Go's shortest round-trip formatting).
fn parse_value(text: &str) -> f64 {
    match text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().unwrap(),
    }
}

/// `GET {base}/api/v1/query?query=..&time=..` through Prometheus' JSON API.
async fn query(base: &str, promql: &str, time_ms: i64) -> Vec<Value> {
    let url = format!(
        "{base}/api/v1/query?query={}&time={}.{:03}",
        aws_api::uri_encode(promql),
        time_ms / 1000,
        time_ms % 1000
    );
    let (status, body) = http_get(&url).await;
    assert_eq!(status, 200, "{url}: {body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    json["data"]["result"].as_array().unwrap().clone()
}

/// Checks every value, timestamp and label of the data set as the receiver serves them through
/// the Prometheus query API, and that the stale marker ended series 0.
async fn check_query_api(base: &str, data: &DataSet) {
    let want = expected(data);
    // The raw samples of the last hour, at a time after every sample.
    let at = data.base_ms + 900_000;
    let result = query(base, "{__name__=~\"rw_test_.*\"}[1h]", at).await;
    let mut got = BTreeMap::new();
    for series in &result {
        let points: Vec<(i64, u64)> = series["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|point| {
                let seconds = point[0].as_f64().unwrap();
                let value = parse_value(point[1].as_str().unwrap());
                ((seconds * 1000.0).round() as i64, value.to_bits())
            })
            .collect();
        got.insert(labels_of(&series["metric"]), points);
    }
    assert_eq!(got.len(), 6);
    for (labels, points) in &want {
        let received = got
            .get(labels)
            .unwrap_or_else(|| panic!("series {labels:?} missing"));
        assert_eq!(received.len(), 60, "{labels:?}");
        for (a, b) in received.iter().zip(points) {
            // -0.0 is written as "-0" by Go and read back with its sign.
            assert_eq!(
                a,
                b,
                "{labels:?}: got {} want {}",
                f64::from_bits(a.1),
                f64::from_bits(b.1)
            );
        }
    }
    // One second after the stale marker, series 0 is gone while the others are still there.
    let after_stale = data.base_ms + 601_000;
    let instant = query(base, "rw_test_a", after_stale).await;
    let mut series: Vec<String> = instant
        .iter()
        .map(|s| s["metric"]["series"].as_str().unwrap().to_owned())
        .collect();
    series.sort();
    assert_eq!(series, ["1", "2"], "{instant:?}");
    // Just before it, series 0 still has its last value.
    let before_stale = query(base, "rw_test_a{series=\"0\"}", data.base_ms + 599_000).await;
    assert_eq!(before_stale.len(), 1);
    assert_eq!(before_stale[0]["value"][1], "14.75");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stores_every_sample_exactly_and_ends_the_series_at_its_stale_marker() {
    let dir = temp_dir("prometheus");
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let _prometheus = KillOnDrop(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus"),
    );
    let base = format!("http://{address}");
    wait_for("Prometheus ready", Duration::from_secs(10), async || {
        let ready = tokio::net::TcpStream::connect(&address).await.is_ok()
            && http_get(&format!("{base}/-/ready")).await.0 == 200;
        ready.then_some(())
    })
    .await;
    let data = data_set();
    let counters = send_all("prometheus-queue", &format!("{base}/api/v1/write"), &data).await;
    let stats = counters.stats();
    assert!(stats.requests_sent >= 361 / 50, "{stats:?}");
    check_query_api(&base, &data).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn victoria_metrics_stores_every_sample_exactly_and_ends_the_series_at_its_stale_marker() {
    if Command::new("victoria-metrics")
        .arg("-version")
        .output()
        .is_err()
    {
        eprintln!("victoria-metrics is not installed (Debian package victoria-metrics); skipped");
        return;
    }
    let dir = temp_dir("victoria-metrics");
    let address = format!("127.0.0.1:{}", free_port());
    let _vm = KillOnDrop(
        Command::new("victoria-metrics")
            .arg(format!("-storageDataPath={}", dir.join("data").display()))
            .arg(format!("-httpListenAddr={address}"))
            .arg("-retentionPeriod=10y")
            // Serve what was just written, at once.
            .arg("-search.latencyOffset=0s")
            .arg("-search.disableCache")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("victoria-metrics"),
    );
    let base = format!("http://{address}");
    wait_for(
        "VictoriaMetrics ready",
        Duration::from_secs(10),
        async || {
            let ready = tokio::net::TcpStream::connect(&address).await.is_ok()
                && http_get(&format!("{base}/health")).await.0 == 200;
            ready.then_some(())
        },
    )
    .await;
    let data = data_set();
    send_all(
        "victoria-metrics-queue",
        &format!("{base}/api/v1/write"),
        &data,
    )
    .await;
    let (status, _) = http_get(&format!("{base}/internal/force_flush")).await;
    assert_eq!(status, 200);

    // The raw samples as stored, through the export API (timestamps in ms, values as JSON).
    let want = expected(&data);
    let url = format!(
        "{base}/api/v1/export?match[]={}",
        aws_api::uri_encode("{__name__=~\"rw_test_.*\"}")
    );
    let got = wait_for(
        "the export of 6 series",
        Duration::from_secs(5),
        async || {
            let (status, body) = http_get(&url).await;
            assert_eq!(status, 200, "{body}");
            let lines: Vec<Value> = body
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            (lines.len() == 6).then_some(lines)
        },
    )
    .await;
    let mut mismatches = Vec::new();
    for series in &got {
        let labels = labels_of(&series["metric"]);
        let points: Vec<(i64, f64)> = series["timestamps"]
            .as_array()
            .unwrap()
            .iter()
            .zip(series["values"].as_array().unwrap())
            .map(|(t, v)| {
                let value = match v {
                    Value::Number(n) => n.as_f64().unwrap(),
                    Value::String(s) => parse_value(s),
                    // NaN, the stale marker included, is exported as null.
                    Value::Null => f64::NAN,
                    other => panic!("value {other}"),
                };
                (t.as_i64().unwrap(), value)
            })
            .collect();
        let stale: Vec<i64> = points
            .iter()
            .filter(|(_, v)| v.is_nan())
            .map(|(t, _)| *t)
            .collect();
        let expected_stale: &[i64] = if labels["series"] == "0" {
            &[data.base_ms + 600_000]
        } else {
            &[]
        };
        assert_eq!(
            stale, expected_stale,
            "{labels:?}: the stale marker is stored"
        );
        let points: Vec<(i64, f64)> = points.into_iter().filter(|(_, v)| !v.is_nan()).collect();
        let want = want
            .get(&labels)
            .unwrap_or_else(|| panic!("unexpected {labels:?}"));
        assert_eq!(points.len(), want.len(), "{labels:?}");
        for ((t, v), (wt, wv)) in points.iter().zip(want) {
            assert_eq!(*t, *wt, "{labels:?}");
            // VictoriaMetrics stores values as decimals (an int64 mantissa and an exponent):
            // what has at most 12 significant digits comes back exactly (but for the sign of
            // -0); anything else to 12 digits, and 1e-300 underflows to 0.
            let want = f64::from_bits(*wv);
            let digits = format!("{want:e}")
                .split('e')
                .next()
                .unwrap()
                .chars()
                .filter(char::is_ascii_digit)
                .count();
            let ok = if want.abs() < 1e-200 {
                *v == 0.0
            } else if digits <= 12 {
                *v == want
            } else {
                (v - want).abs() <= want.abs() * 1e-12
            };
            if !ok {
                mismatches.push(format!("{labels:?} at {t}: got {v:e} want {want:e}"));
            }
        }
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    check_query_api_stale_only(&base, &data).await;
}

/// VictoriaMetrics' query API: the stale marker ends series 0 (its raw-sample API is checked
/// through the export above).
async fn check_query_api_stale_only(base: &str, data: &DataSet) {
    let instant = query(base, "rw_test_a", data.base_ms + 601_000).await;
    let mut series: Vec<String> = instant
        .iter()
        .map(|s| s["metric"]["series"].as_str().unwrap().to_owned())
        .collect();
    series.sort();
    assert_eq!(series, ["1", "2"], "{instant:?}");
}

/// One request as the stand-in receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    at: Instant,
    status: u16,
    target: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// Given `Some(n)` for a body not seen before (the n-th distinct, from 0) and `None` for one
/// seen before (a retry), the status and `Retry-After` to answer.
type Script = Arc<dyn Fn(Option<usize>) -> (u16, Option<&'static str>) + Send + Sync>;

/// A remote-write receiver on `port` answering each request as `script` says,
/// recording every request in `log`. Each answer closes its connection.
async fn stand_in(
    port: u16,
    log: Arc<Mutex<Vec<Received>>>,
    script: Script,
) -> tokio::task::JoinHandle<()> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(([127, 0, 0, 1], port).into()).unwrap();
    let listener = socket.listen(64).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let log = Arc::clone(&log);
            let script = Arc::clone(&script);
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    let read = stream.read(&mut chunk).await.unwrap_or(0);
                    if read == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                    if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        break end;
                    }
                };
                let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
                let mut lines = head.split("\r\n");
                let target = lines.next().unwrap().split(' ').nth(1).unwrap().to_owned();
                let headers: HashMap<String, String> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
                    .collect();
                let length: usize = headers
                    .get("content-length")
                    .map_or(0, |v| v.parse().unwrap());
                let mut body = buffer[head_end + 4..].to_vec();
                while body.len() < length {
                    let read = stream.read(&mut chunk).await.unwrap_or(0);
                    if read == 0 {
                        return;
                    }
                    body.extend_from_slice(&chunk[..read]);
                }
                let (status, retry_after) = {
                    let mut log = log.lock().unwrap();
                    let new = !log.iter().any(|r| r.body == body);
                    let distinct = {
                        let mut bodies: Vec<&Vec<u8>> = log.iter().map(|r| &r.body).collect();
                        bodies.sort();
                        bodies.dedup();
                        bodies.len()
                    };
                    let (status, retry_after) = script(new.then_some(distinct));
                    log.push(Received {
                        at: Instant::now(),
                        status,
                        target,
                        headers,
                        body,
                    });
                    (status, retry_after)
                };
                let extra = retry_after
                    .map(|v| format!("retry-after: {v}\r\n"))
                    .unwrap_or_default();
                let answer = format!(
                    "HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n{extra}\r\n"
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    })
}

/// `(series, timestamp, value bits)` of every sample of a request body.
fn samples_of(body: &[u8]) -> Vec<(String, i64, u64)> {
    let request = WriteRequest::from_body(body).expect("a snappy WriteRequest");
    let mut out = Vec::new();
    for series in &request.timeseries {
        let names: Vec<&str> = series
            .labels
            .as_slice()
            .iter()
            .map(|l| l.name.as_str())
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted, "labels sorted by name and unique");
        let key = format!("{:?}", series.labels);
        let mut last = i64::MIN;
        for (t, v) in &series.samples {
            assert!(*t > last, "samples of a series in timestamp order");
            last = *t;
            out.push((key.clone(), *t, v.to_bits()));
        }
    }
    out
}

fn fresh_samples(first: i64, count: i64) -> Vec<Sample> {
    let base = now_ms() - 60_000;
    (first..first + count)
        .map(|i| Sample {
            labels: Labels::new([
                ("__name__", "fault_test".to_owned()),
                ("series", (i % 40).to_string()),
            ])
            .unwrap(),
            timestamp_ms: base + i,
            value: if i % 97 == 0 {
                stale_marker()
            } else {
                i as f64
            },
        })
        .collect()
}

fn fault_test_config() -> SenderConfig {
    SenderConfig {
        shards: 2,
        max_samples_per_send: 50,
        batch_send_deadline: Duration::from_millis(20),
        min_backoff: Duration::from_millis(30),
        max_backoff: Duration::from_millis(200),
        ..SenderConfig::default()
    }
}

fn start_sender(
    queue: &Arc<Queue>,
    url: &str,
    config: SenderConfig,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), remote_write::Error>>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let endpoint = Endpoint::http(web::Client::new(Duration::from_secs(2)), url).unwrap();
    let sender = tokio::spawn(remote_write::run(
        Arc::clone(queue),
        endpoint,
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    (stop, sender)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_errors_refusals_and_a_restart_every_sample_arrives_once_or_is_counted() {
    let dir = temp_dir("faults");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/api/v1/write");
    let log = Arc::new(Mutex::new(Vec::<Received>::new()));
    let script: Script = Arc::new(|n| match n {
        Some(0) => (500, None),
        Some(1) => (429, Some("1")),
        Some(2) => (400, None),
        _ => (204, None),
    });
    let server = stand_in(port, Arc::clone(&log), Arc::clone(&script)).await;
    let all = fresh_samples(0, 700);

    // Phase 1: a 500, a 429 with Retry-After: 1, a 400, then successes.
    let config = QueueConfig::new(dir.join("queue"));
    let counters1 = Arc::new(Counters::default());
    let queue1 = Arc::new(Queue::open(config.clone(), Arc::clone(&counters1)).unwrap());
    for batch in all[..400].chunks(40) {
        queue1.append(batch).unwrap();
    }
    let (stop1, sender1) = start_sender(&queue1, &url, fault_test_config());
    wait_for(
        "phase 1 sent or rejected",
        Duration::from_secs(8),
        async || {
            let stats = counters1.stats();
            (stats.samples_sent + stats.dropped(DropReason::Rejected) == 400).then_some(())
        },
    )
    .await;

    // Phase 2: the receiver refuses connections; the agent restarts from disk meanwhile.
    server.abort();
    let _ = server.await;
    queue1.append(&all[400..600]).unwrap();
    let failed_before = counters1.stats().requests_failed;
    wait_for("refused attempts", Duration::from_secs(5), async || {
        (counters1.stats().requests_failed >= failed_before + 3).then_some(())
    })
    .await;
    stop1.send(()).unwrap();
    sender1.await.unwrap().unwrap();
    drop(queue1);
    let counters2 = Arc::new(Counters::default());
    let queue2 = Arc::new(Queue::open(config, Arc::clone(&counters2)).unwrap());
    assert_eq!(
        queue2.unread_samples(),
        200,
        "resumed after what was acknowledged"
    );
    queue2.append(&all[600..]).unwrap();
    let (stop2, sender2) = start_sender(&queue2, &url, fault_test_config());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server = stand_in(port, Arc::clone(&log), script).await;
    wait_for("phase 2 sent", Duration::from_secs(8), async || {
        (counters2.stats().samples_sent == 300).then_some(())
    })
    .await;
    stop2.send(()).unwrap();
    sender2.await.unwrap().unwrap();
    server.abort();

    let log = log.lock().unwrap().clone();
    let first = &log[0];
    assert_eq!(first.target, "/api/v1/write");
    assert_eq!(first.headers["content-encoding"], "snappy");
    assert_eq!(first.headers["content-type"], "application/x-protobuf");
    assert_eq!(first.headers["x-prometheus-remote-write-version"], "0.1.0");
    assert!(first.headers["user-agent"].starts_with("ecs-prom/"));

    // The 500 and the 429 were retried with the same body; the 429 not before its Retry-After.
    let answered = |status: u16| log.iter().position(|r| r.status == status).unwrap();
    for (index, wait) in [
        (answered(500), Duration::ZERO),
        (answered(429), Duration::from_millis(950)),
    ] {
        let failed = &log[index];
        let retry = log[index + 1..]
            .iter()
            .find(|r| r.body == failed.body)
            .unwrap_or_else(|| panic!("request {index} ({}) was not retried", failed.status));
        assert!(
            retry.at.duration_since(failed.at) >= wait,
            "retried after {:?}",
            retry.at.duration_since(failed.at)
        );
    }
    // The 400 was not retried, and its samples were counted.
    let bad = &log[answered(400)];
    let rejected = samples_of(&bad.body);
    assert_eq!(log.iter().filter(|r| r.body == bad.body).count(), 1);
    assert_eq!(
        counters1.stats().dropped(DropReason::Rejected),
        rejected.len() as u64
    );
    assert!(!rejected.is_empty());

    // Every sample accepted exactly once; accepted and rejected together are all of them.
    let mut accepted: Vec<(String, i64, u64)> = log
        .iter()
        .filter(|r| r.status == 204)
        .flat_map(|r| samples_of(&r.body))
        .collect();
    let accepted_count = accepted.len();
    accepted.sort();
    accepted.dedup();
    assert_eq!(accepted.len(), accepted_count, "a sample arrived twice");
    let mut everything = accepted.clone();
    everything.extend(rejected.iter().cloned());
    everything.sort();
    let mut want: Vec<(String, i64, u64)> = all
        .iter()
        .map(|s| (format!("{:?}", s.labels), s.timestamp_ms, s.value.to_bits()))
        .collect();
    want.sort();
    assert_eq!(everything, want);
    let (stats1, stats2) = (counters1.stats(), counters2.stats());
    assert_eq!(
        stats1.samples_sent + stats2.samples_sent,
        accepted.len() as u64
    );
    assert_eq!(stats2.samples_sent, 300);
    assert!(stats1.samples_retried >= 100, "{stats1:?}");
    assert_eq!(stats2.queue_segments, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samples_older_than_the_age_limit_are_given_up_while_throttled_and_counted() {
    let port = free_port();
    let log = Arc::new(Mutex::new(Vec::<Received>::new()));
    let server = stand_in(port, Arc::clone(&log), Arc::new(|_| (429, Some("0")))).await;
    let dir = temp_dir("too-old");
    let counters = Arc::new(Counters::default());
    let queue =
        Arc::new(Queue::open(QueueConfig::new(dir.join("queue")), Arc::clone(&counters)).unwrap());
    // 100 samples two hours old.
    let mut samples = fresh_samples(0, 100);
    for sample in &mut samples {
        sample.timestamp_ms -= 2 * 3600 * 1000;
    }
    queue.append(&samples).unwrap();
    let config = SenderConfig {
        sample_age_limit: Some(Duration::from_secs(3600)),
        ..fault_test_config()
    };
    let url = format!("http://127.0.0.1:{port}/api/v1/write");
    let (stop, sender) = start_sender(&queue, &url, config);
    wait_for(
        "the old samples given up",
        Duration::from_secs(8),
        async || (counters.stats().dropped(DropReason::TooOld) == 100).then_some(()),
    )
    .await;
    stop.send(()).unwrap();
    sender.await.unwrap().unwrap();
    server.abort();
    let stats = counters.stats();
    assert_eq!(stats.samples_sent, 0);
    // Each request was tried once, answered 429, and given up at its retry.
    let log = log.lock().unwrap().clone();
    let attempted: usize = log.iter().map(|r| samples_of(&r.body).len()).sum();
    assert_eq!(attempted, 100);
    assert_eq!(stats.samples_retried, 0);
    assert_eq!(queue.unread_samples(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_write_to_amp_is_signed_for_aps_and_sent_to_the_workspace_path() {
    let port = free_port();
    let log = Arc::new(Mutex::new(Vec::<Received>::new()));
    let server = stand_in(port, Arc::clone(&log), Arc::new(|_| (200, None))).await;
    let env: HashMap<&str, String> = [
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE".to_owned()),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
        ),
        ("AWS_ENDPOINT_URL_AMP", format!("http://127.0.0.1:{port}")),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
    .into_iter()
    .collect();
    let client = Arc::new(aws_api::AwsClient::new(
        aws_api::AwsConfig::from_env(|key| env.get(key).cloned()),
        "eu-west-1".into(),
        aws_api::ClientOptions {
            max_attempts: 1,
            ..aws_api::ClientOptions::default()
        },
    ));
    let endpoint = Endpoint::amp(
        client,
        "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-0123/api/v1/remote_write",
    )
    .unwrap();
    let dir = temp_dir("amp");
    let counters = Arc::new(Counters::default());
    let queue =
        Arc::new(Queue::open(QueueConfig::new(dir.join("queue")), Arc::clone(&counters)).unwrap());
    let samples = fresh_samples(0, 120);
    queue.append(&samples).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = SenderConfig {
        batch_send_deadline: Duration::from_millis(20),
        ..SenderConfig::default()
    };
    let sender = tokio::spawn(remote_write::run(
        Arc::clone(&queue),
        endpoint,
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    wait_for("the samples sent", Duration::from_secs(10), async || {
        (counters.stats().samples_sent == 120).then_some(())
    })
    .await;
    stop.send(()).unwrap();
    sender.await.unwrap().unwrap();
    server.abort();
    let log = log.lock().unwrap().clone();
    assert!(!log.is_empty());
    let mut received = 0;
    for request in &log {
        assert_eq!(request.target, "/workspaces/ws-0123/api/v1/remote_write");
        let authorization = &request.headers["authorization"];
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{authorization}"
        );
        assert!(
            authorization.contains("/eu-west-1/aps/aws4_request"),
            "{authorization}"
        );
        for signed in [
            "content-encoding",
            "content-type",
            "x-prometheus-remote-write-version",
        ] {
            assert!(
                authorization.contains(signed),
                "{signed} is signed: {authorization}"
            );
        }
        assert_eq!(request.headers["content-encoding"], "snappy");
        received += samples_of(&request.body).len();
    }
    assert_eq!(received, 120);
}

/// Not a timed test: prints the append rate, the bytes per sample on disk and the send rate to
/// a loopback receiver that accepts everything (`cargo test -p remote-write --release --
/// --ignored --nocapture throughput`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn throughput() {
    let port = free_port();
    let log = Arc::new(Mutex::new(Vec::<Received>::new()));
    let server = stand_in(port, Arc::clone(&log), Arc::new(|_| (204, None))).await;
    let dir = temp_dir("throughput");
    let counters = Arc::new(Counters::default());
    let queue =
        Arc::new(Queue::open(QueueConfig::new(dir.join("queue")), Arc::clone(&counters)).unwrap());
    let base = now_ms() - 60_000;
    let total = 200_000i64;
    let scrape: Vec<Vec<Sample>> = (0..total / 1000)
        .map(|round| {
            (0..1000)
                .map(|series| Sample {
                    labels: Labels::new([
                        ("__name__", format!("metric_{}", series % 50)),
                        (
                            "instance",
                            format!("10.0.{}.{}:8080", series % 7, series % 13),
                        ),
                        ("job", "demo-app".to_owned()),
                        ("ecs_task_id", "0123456789abcdef0123456789abcdef".to_owned()),
                        ("series", series.to_string()),
                    ])
                    .unwrap(),
                    timestamp_ms: base + round * 15_000,
                    value: (round * series) as f64 * 0.5,
                })
                .collect()
        })
        .collect();
    let started = Instant::now();
    for batch in &scrape {
        queue.append(batch).unwrap();
    }
    let append = started.elapsed();
    let bytes = counters.stats().queue_bytes;
    let url = format!("http://127.0.0.1:{port}/api/v1/write");
    let started = Instant::now();
    let config = SenderConfig {
        batch_send_deadline: Duration::from_millis(20),
        ..SenderConfig::default()
    };
    let (stop, sender) = start_sender(&queue, &url, config);
    wait_for("all sent", Duration::from_secs(120), async || {
        (counters.stats().samples_sent == total as u64).then_some(())
    })
    .await;
    let send = started.elapsed();
    stop.send(()).unwrap();
    sender.await.unwrap().unwrap();
    server.abort();
    let stats = counters.stats();
    println!(
        "{total} samples: append {:.0} samples/s, {:.1} bytes/sample on disk, send {:.0} samples/s \
         in {} requests ({:.1} compressed bytes/sample)",
        total as f64 / append.as_secs_f64(),
        bytes as f64 / total as f64,
        total as f64 / send.as_secs_f64(),
        stats.requests_sent,
        stats.bytes_sent as f64 / total as f64,
    );
}

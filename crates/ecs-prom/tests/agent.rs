//! `ecs-prom agent` as a user runs it, against real receivers: Debian's Prometheus with its
//! remote-write receiver and VictoriaMetrics. A deterministic target counts the scrapes it
//! answers and serves the count, so what the receiver holds can be checked value by value:
//! every scrape arrives once, with exact labels; stale markers end series; through 500s, 429s,
//! 400s, a minute of refused connections and a SIGKILL of the agent, every sample arrives
//! but those the receiver refused with 400 (which are not retried); a small disk bound drops
//! the oldest samples and counts exactly how many.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use test_support::{KillOnDrop, free_port, http_get, read_http_request};

const BINARY: &str = env!("CARGO_BIN_EXE_ecs-prom");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ecs-prom-agent-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn wait_for<T>(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn ready(base: &str, path: &str) -> bool {
    let address = base.trim_start_matches("http://");
    tokio::net::TcpStream::connect(address).await.is_ok()
        && http_get(&format!("{base}{path}")).await.0 == 200
}

/// Debian's Prometheus with its remote-write receiver, storing under `dir`.
async fn prometheus_receiver(dir: &Path) -> (KillOnDrop, String) {
    let config = dir.join("receiver.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1m\n").unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("receiver-data").display()
        ))
        .arg(format!("--web.listen-address={address}"))
        .arg("--web.enable-remote-write-receiver")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus is installed (Debian package prometheus)");
    let base = format!("http://{address}");
    let guard = KillOnDrop(child);
    wait_for("Prometheus ready", Duration::from_secs(20), async || {
        ready(&base, "/-/ready").await.then_some(())
    })
    .await;
    (guard, base)
}

/// Debian's VictoriaMetrics, serving what it was sent at once.
async fn victoria_metrics(dir: &Path) -> (KillOnDrop, String) {
    let address = format!("127.0.0.1:{}", free_port());
    let child = Command::new("victoria-metrics")
        .arg(format!(
            "-storageDataPath={}",
            dir.join("vm-data").display()
        ))
        .arg(format!("-httpListenAddr={address}"))
        .arg("-retentionPeriod=10y")
        .arg("-search.latencyOffset=0s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("victoria-metrics is installed (Debian package victoria-metrics)");
    let base = format!("http://{address}");
    let guard = KillOnDrop(child);
    wait_for(
        "VictoriaMetrics ready",
        Duration::from_secs(20),
        async || ready(&base, "/health").await.then_some(()),
    )
    .await;
    (guard, base)
}

/// A target that counts the scrapes it answers and serves `body(n)` to the n-th (from 1).
struct CountingTarget {
    address: String,
    served: Arc<AtomicU64>,
}

fn counting_target(body: impl Fn(u64) -> String + Send + Sync + 'static) -> CountingTarget {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let served = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&served);
    let body = Arc::new(body);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let counter = Arc::clone(&counter);
            let body = Arc::clone(&body);
            std::thread::spawn(move || {
                if read_http_request(&stream).is_none() {
                    return;
                }
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let text = body(n);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
            });
        }
    });
    CountingTarget { address, served }
}

/// The agent, its endpoints on a free port; its log goes to `dir/agent-<port>.log`.
async fn start_agent(dir: &Path, config: &Path, extra: &[&str]) -> (KillOnDrop, String) {
    let address = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(dir.join(format!("agent-{}.log", address.replace(':', "-"))))
        .unwrap();
    let child = Command::new(BINARY)
        .arg("agent")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", dir.join("storage").display()))
        .arg(format!("--web.listen-address={address}"))
        .args(extra)
        .env_clear()
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the binary runs");
    let base = format!("http://{address}");
    let guard = KillOnDrop(child);
    wait_for("the agent ready", Duration::from_secs(20), async || {
        ready(&base, "/-/ready").await.then_some(())
    })
    .await;
    (guard, base)
}

/// The value of one sample of the agent's `/metrics`, by its exact name and labels.
async fn agent_metric(base: &str, series: &str) -> f64 {
    let (status, body) = http_get(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{series} not in /metrics:\n{body}"))
}

/// Every raw sample of the series `selector` matches in the last hour, by label set.
/// VictoriaMetrics returns stale markers among raw samples (as NaN), Prometheus does not: they
/// are left out here, and checked through instant queries instead. No test value is a NaN.
async fn raw_samples(
    base: &str,
    selector: &str,
) -> BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>> {
    let url = format!(
        "{base}/api/v1/query?query={}",
        aws_api_like_encode(&format!("{selector}[1h]"))
    );
    let (status, body) = http_get(&url).await;
    assert_eq!(status, 200, "{url}: {body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    let mut all = BTreeMap::new();
    for series in json["data"]["result"].as_array().unwrap() {
        let labels = labels_of(&series["metric"]);
        let points = series["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                (t, p[1].as_str().unwrap().parse::<f64>().unwrap())
            })
            .filter(|(_, v): &(i64, f64)| !v.is_nan())
            .collect();
        all.insert(labels, points);
    }
    all
}

/// The series an instant query of `selector` returns now.
async fn instant(base: &str, selector: &str) -> usize {
    let url = format!(
        "{base}/api/v1/query?query={}",
        aws_api_like_encode(selector)
    );
    let (status, body) = http_get(&url).await;
    assert_eq!(status, 200, "{url}: {body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    json["data"]["result"].as_array().unwrap().len()
}

fn labels_of(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect()
}

/// Percent-encodes a query parameter (everything but unreserved characters).
fn aws_api_like_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn write_targets(file: &Path, targets: &str) {
    let temporary = file.with_extension("tmp");
    std::fs::write(&temporary, targets).unwrap();
    std::fs::rename(&temporary, file).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scrape_arrives_exactly_at_prometheus_and_victoria_metrics_and_stale_markers_end_series()
 {
    let dir = temp_dir("receivers");
    let (_prometheus, prometheus) = prometheus_receiver(&dir).await;
    let (_vm, vm) = victoria_metrics(&dir).await;
    let target = counting_target(|n| {
        let mut body = format!(
            "# HELP agent_test_scrapes_total Scrapes answered.\n# TYPE agent_test_scrapes_total counter\n\
             agent_test_scrapes_total{{path=\"a \\\"b\\\" \\\\ c\"}} {n}\n\
             # TYPE agent_test_half gauge\nagent_test_half {}\n\
             agent_test_dropped 1\n",
            n as f64 / 2.0
        );
        if n <= 2 {
            body.push_str("agent_test_early 1\n");
        }
        body
    });
    let targets_file = dir.join("targets.json");
    write_targets(
        &targets_file,
        &format!(
            r#"[{{"targets":["{}"],"labels":{{"team":"a"}}}}]"#,
            target.address
        ),
    );
    let config = dir.join("agent.yml");
    std::fs::write(
        &config,
        format!(
            r#"global:
  scrape_interval: 1s
  external_labels: {{cluster: test}}
scrape_configs:
  - job_name: app
    file_sd_configs:
      - files: ['{}']
        refresh_interval: 1s
    relabel_configs:
      - {{source_labels: [team], target_label: owner}}
    metric_relabel_configs:
      - {{source_labels: [__name__], regex: agent_test_dropped, action: drop}}
remote_write:
  - url: {prometheus}/api/v1/write
    name: prometheus
    queue_config: {{batch_send_deadline: 1s}}
  - url: {vm}/api/v1/write
    name: vm
    queue_config: {{batch_send_deadline: 1s}}
    write_relabel_configs:
      - {{source_labels: [__name__], regex: 'scrape_.*', action: drop}}
"#,
            dir.join("*.json").display()
        ),
    )
    .unwrap();
    let (_agent, agent) = start_agent(&dir, &config, &[]).await;
    wait_for("5 scrapes", Duration::from_secs(20), async || {
        (target.served.load(Ordering::SeqCst) >= 5).then_some(())
    })
    .await;
    // The target goes away: its series end.
    write_targets(&targets_file, "[]");
    wait_for("the target dropped", Duration::from_secs(10), async || {
        (agent_metric(&agent, "ecs_prom_agent_targets{job=\"app\",health=\"up\"}").await == 0.0)
            .then_some(())
    })
    .await;
    let served = target.served.load(Ordering::SeqCst);
    let every_value: Vec<f64> = (1..=served).map(|n| n as f64).collect();
    let labels: BTreeMap<String, String> = [
        ("__name__", "agent_test_scrapes_total"),
        ("cluster", "test"),
        ("instance", target.address.as_str()),
        ("job", "app"),
        ("owner", "a"),
        ("path", "a \"b\" \\ c"),
        ("team", "a"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();

    for (name, base) in [("Prometheus", &prometheus), ("VictoriaMetrics", &vm)] {
        if name == "VictoriaMetrics" {
            let _ = http_get(&format!("{base}/internal/force_flush")).await;
        }
        let got = wait_for(
            &format!("{served} scrapes at {name}"),
            Duration::from_secs(20),
            async || {
                if name == "VictoriaMetrics" {
                    let _ = http_get(&format!("{base}/internal/force_flush")).await;
                }
                let got = raw_samples(base, "agent_test_scrapes_total").await;
                let values: Vec<f64> = got.values().flatten().map(|(_, v)| *v).collect();
                (values.len() >= served as usize).then_some(got)
            },
        )
        .await;
        assert_eq!(got.len(), 1, "{name}: {got:?}");
        let (got_labels, points) = got.iter().next().unwrap();
        assert_eq!(got_labels, &labels, "{name}");
        let values: Vec<f64> = points.iter().map(|(_, v)| *v).collect();
        assert_eq!(values, every_value, "{name}: every scrape once, in order");
        for pair in points.windows(2) {
            let gap = pair[1].0 - pair[0].0;
            assert!(
                (900..=1100).contains(&gap),
                "{name}: scrapes {gap} ms apart"
            );
        }
        let halves: Vec<f64> = raw_samples(base, "agent_test_half")
            .await
            .values()
            .flatten()
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(
            halves,
            every_value.iter().map(|v| v / 2.0).collect::<Vec<_>>(),
            "{name}"
        );
        let early: Vec<f64> = raw_samples(base, "agent_test_early")
            .await
            .values()
            .flatten()
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(early, [1.0, 1.0], "{name}");
        assert!(
            raw_samples(base, "agent_test_dropped").await.is_empty(),
            "{name}"
        );
        // Stale markers: the series gone from the third scrape, and every series of the
        // target that went away, are no longer returned (without them they would be for 5
        // minutes).
        for selector in [
            "agent_test_early",
            "agent_test_half",
            "agent_test_scrapes_total",
        ] {
            wait_for(
                &format!("{name} to end {selector}"),
                Duration::from_secs(10),
                async || (instant(base, selector).await == 0).then_some(()),
            )
            .await;
        }
    }
    // The report series: one `up` per scrape at Prometheus, none at VictoriaMetrics, whose
    // write_relabel_configs drop `scrape_*` only.
    let up = raw_samples(&prometheus, "up{job=\"app\"}").await;
    let ups: Vec<f64> = up.values().flatten().map(|(_, v)| *v).collect();
    assert_eq!(ups, vec![1.0; served as usize]);
    wait_for("up to end", Duration::from_secs(10), async || {
        (instant(&prometheus, "up{job=\"app\"}").await == 0).then_some(())
    })
    .await;
    let durations = raw_samples(&prometheus, "scrape_duration_seconds").await;
    assert_eq!(durations.values().flatten().count(), served as usize);
    assert!(raw_samples(&vm, "scrape_duration_seconds").await.is_empty());
    assert_eq!(
        raw_samples(&vm, "up").await.values().flatten().count(),
        served as usize
    );
}

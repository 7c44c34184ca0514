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
use std::process::{Child, Command, Stdio};
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

/// `child`, once it answers 200 on `path` at `address` (within 20 s); killed when the test
/// ends. Its base URL.
async fn serving(child: Child, address: &str, path: &str, what: &str) -> (KillOnDrop, String) {
    let base = format!("http://{address}");
    let guard = KillOnDrop(child);
    wait_for(what, Duration::from_secs(20), async || {
        ready(&base, path).await.then_some(())
    })
    .await;
    (guard, base)
}

/// Debian's Prometheus with its remote-write receiver, storing under `dir`.
async fn prometheus_receiver(dir: &Path) -> (KillOnDrop, String) {
    prometheus_with(dir, "global:\n  scrape_interval: 1m\n").await
}

/// Debian's Prometheus with its remote-write receiver and the configuration `config`.
async fn prometheus_with(dir: &Path, config_text: &str) -> (KillOnDrop, String) {
    let config = dir.join("receiver.yml");
    std::fs::write(&config, config_text).unwrap();
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
    serving(child, &address, "/-/ready", "Prometheus ready").await
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
    serving(child, &address, "/health", "VictoriaMetrics ready").await
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
    start_agent_with(dir, config, extra, &[]).await
}

/// [`start_agent`] with environment variables.
async fn start_agent_with(
    dir: &Path,
    config: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (KillOnDrop, String) {
    let config = format!("--config.file={}", config.display());
    let mut args = vec![config.as_str()];
    args.extend_from_slice(extra);
    spawn_agent(dir, &args, env).await
}

/// The agent with `args` (and its storage under `dir`, its endpoints on a free port).
async fn spawn_agent(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (KillOnDrop, String) {
    let address = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(dir.join(format!("agent-{}.log", address.replace(':', "-"))))
        .unwrap();
    let child = Command::new(BINARY)
        .arg("agent")
        .arg(format!("--storage.path={}", dir.join("storage").display()))
        .arg(format!("--web.listen-address={address}"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the binary runs");
    serving(child, &address, "/-/ready", "the agent ready").await
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
        aws_api::uri_encode(&format!("{selector}[1h]"))
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
        aws_api::uri_encode(selector)
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
    // Every self-metric the agent serves is in its reference.
    let reference =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/agent.md"))
            .unwrap();
    let (_, metrics) = http_get(&format!("{agent}/metrics")).await;
    let families: Vec<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .filter(|name| name.starts_with("ecs_prom_"))
        .collect();
    assert!(families.len() >= 20, "{families:?}");
    for family in families {
        assert!(
            reference.contains(&format!("`{family}`")),
            "docs/agent.md lacks {family}"
        );
    }
    wait_for("5 scrapes", Duration::from_secs(20), async || {
        (target.served.load(Ordering::SeqCst) >= 5).then_some(())
    })
    .await;
    // The target goes away: its series end.
    write_targets(&targets_file, "[]");
    wait_for("the target dropped", Duration::from_secs(10), async || {
        (agent_metric(
            &agent,
            "ecs_prom_agent_targets{scrape_job=\"app\",health=\"up\"}",
        )
        .await
            == 0.0)
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

/// What a fault proxy does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Fault {
    /// Forward it to the receiver and relay the answer.
    Pass,
    /// Answer 500.
    ServerError,
    /// Answer 429 with `Retry-After: 1`.
    TooManyRequests,
    /// Answer 400.
    BadRequest,
    /// Close the port: connections are refused.
    Refuse,
}

impl Fault {
    fn from_u8(value: u8) -> Fault {
        [
            Fault::Pass,
            Fault::ServerError,
            Fault::TooManyRequests,
            Fault::BadRequest,
            Fault::Refuse,
        ][usize::from(value)]
    }
}

/// A request the proxy saw and how it was answered.
struct Seen {
    fault: Fault,
    body: Vec<u8>,
}

/// A proxy in front of a receiver that fails on command.
struct FaultProxy {
    url: String,
    fault: Arc<AtomicU8>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FaultProxy {
    fn set(&self, fault: Fault) {
        self.fault.store(fault as u8, Ordering::SeqCst);
    }
}

fn fault_proxy(upstream: &str) -> FaultProxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let fault = Arc::new(AtomicU8::new(Fault::Pass as u8));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let upstream = upstream.trim_start_matches("http://").to_owned();
    let (mode, log) = (Arc::clone(&fault), Arc::clone(&seen));
    std::thread::spawn(move || {
        let mut listener = Some(listener);
        loop {
            let current = Fault::from_u8(mode.load(Ordering::SeqCst));
            if current == Fault::Refuse {
                listener = None;
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            let bound = listener.get_or_insert_with(|| {
                loop {
                    if let Ok(bound) = TcpListener::bind(address) {
                        break bound;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
            bound.set_nonblocking(true).unwrap();
            match bound.accept() {
                Ok((stream, _)) => {
                    let (upstream, log) = (upstream.clone(), Arc::clone(&log));
                    std::thread::spawn(move || answer(stream, current, &upstream, &log));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    FaultProxy {
        url: format!("http://{address}/api/v1/write"),
        fault,
        seen,
    }
}

fn answer(mut stream: TcpStream, fault: Fault, upstream: &str, log: &Mutex<Vec<Seen>>) {
    use std::io::Read as _;
    stream.set_nonblocking(false).unwrap();
    let Some(request) = read_http_request(&stream) else {
        return;
    };
    let canned = |status: &str, extra: &str| {
        format!("HTTP/1.1 {status}\r\n{extra}content-length: 0\r\nconnection: close\r\n\r\n")
    };
    let reply = match fault {
        Fault::Pass => {
            let mut to = TcpStream::connect(upstream).unwrap();
            let mut head = format!(
                "{} {} HTTP/1.1\r\nhost: {upstream}\r\nconnection: close\r\ncontent-length: {}\r\n",
                request.method,
                request.target,
                request.body.len()
            );
            for name in [
                "content-type",
                "content-encoding",
                "x-prometheus-remote-write-version",
            ] {
                if let Some(value) = request.header(name) {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
            }
            head.push_str("\r\n");
            to.write_all(head.as_bytes()).unwrap();
            to.write_all(&request.body).unwrap();
            let mut reply = Vec::new();
            let _ = to.read_to_end(&mut reply);
            reply
        }
        Fault::ServerError => canned("500 Internal Server Error", "").into_bytes(),
        Fault::TooManyRequests => {
            canned("429 Too Many Requests", "retry-after: 1\r\n").into_bytes()
        }
        Fault::BadRequest | Fault::Refuse => canned("400 Bad Request", "").into_bytes(),
    };
    log.lock().unwrap().push(Seen {
        fault,
        body: request.body,
    });
    let _ = stream.write_all(&reply);
}

/// The values of `agent_test_scrapes_total` in a remote-write body, and its sample count.
fn decode(body: &[u8]) -> (Vec<f64>, usize) {
    let request =
        remote_write::WriteRequest::decode(&remote_write::decompress(body).unwrap()).unwrap();
    let mut values = Vec::new();
    let mut samples = 0;
    for series in &request.timeseries {
        samples += series.samples.len();
        if series.labels.get("__name__") == Some("agent_test_scrapes_total") {
            values.extend(series.samples.iter().map(|(_, v)| *v));
        }
    }
    (values, samples)
}

/// Resident memory of a process now and at its peak, in bytes.
fn memory_of(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .map_or(0, |kib: u64| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A counting target with `filler` more series, all worth the scrape's number.
fn target_with_filler(filler: usize) -> CountingTarget {
    counting_target(move |n| {
        let mut body = format!("agent_test_scrapes_total {n}\n");
        for i in 0..filler {
            body.push_str(&format!("agent_test_filler{{i=\"{i}\"}} {n}\n"));
        }
        body
    })
}

fn fault_config(dir: &Path, target: &CountingTarget, url: &str) -> PathBuf {
    let config = dir.join("agent.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs: [{{targets: ['{}']}}]\n\
             remote_write:\n  - url: {url}\n    name: receiver\n    queue_config: {{batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}}\n",
            target.address
        ),
    )
    .unwrap();
    config
}

async fn received_scrape_values(base: &str) -> Vec<f64> {
    raw_samples(base, "agent_test_scrapes_total")
        .await
        .values()
        .flatten()
        .map(|(_, v)| *v)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_errors_a_minute_of_refusals_and_a_sigkill_every_sample_arrives_but_those_refused_with_400()
 {
    let dir = temp_dir("faults");
    let (_prometheus, prometheus) = prometheus_receiver(&dir).await;
    let proxy = fault_proxy(&prometheus);
    // 5,000 series a second: the queue grows by megabytes during the outage.
    let target = target_with_filler(5000);
    let config = fault_config(&dir, &target, &proxy.url);
    let (mut first, agent) = start_agent(&dir, &config, &[]).await;
    let remote = "{remote=\"receiver\"";
    let wait_scrapes = async |count: u64| {
        let until = target.served.load(Ordering::SeqCst) + count;
        wait_for("scrapes", Duration::from_secs(30), async || {
            (target.served.load(Ordering::SeqCst) >= until).then_some(())
        })
        .await;
    };
    wait_scrapes(3).await;
    for fault in [Fault::ServerError, Fault::TooManyRequests] {
        proxy.set(fault);
        wait_scrapes(4).await;
    }
    proxy.set(Fault::BadRequest);
    wait_for(
        "a scrape count answered 400",
        Duration::from_secs(20),
        async || {
            let seen = proxy.seen.lock().unwrap();
            seen.iter()
                .any(|s| s.fault == Fault::BadRequest && !decode(&s.body).0.is_empty())
                .then_some(())
        },
    )
    .await;
    // The receiver takes everything again until the agent has caught up, so that the
    // outage below starts with nothing in flight: a crash re-sends the chunk it was sending
    // (up to max_samples_per_send × shards samples), batches already answered included.
    proxy.set(Fault::Pass);
    let appended = format!("ecs_prom_agent_remote_samples_appended_total{remote}}}");
    let sent = format!("ecs_prom_agent_remote_samples_sent_total{remote}}}");
    let rejected =
        format!("ecs_prom_agent_remote_samples_dropped_total{remote},reason=\"rejected\"}}");
    wait_for(
        "the agent to catch up",
        Duration::from_secs(30),
        async || {
            let done = agent_metric(&agent, &sent).await + agent_metric(&agent, &rejected).await;
            (done == agent_metric(&agent, &appended).await).then_some(())
        },
    )
    .await;
    proxy.set(Fault::Refuse);
    // What the receiver refused with 400: dropped, counted, never sent again.
    let refused_bodies: Vec<Vec<u8>> = proxy
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.fault == Fault::BadRequest)
        .map(|s| s.body.clone())
        .collect();
    let mut refused_values = BTreeSet::new();
    let mut refused_samples = 0;
    for body in &refused_bodies {
        let (values, samples) = decode(body);
        refused_values.extend(values.into_iter().map(|v| v as u64));
        refused_samples += samples;
    }
    let counted = agent_metric(&agent, &rejected).await;
    assert_eq!(
        counted, refused_samples as f64,
        "rejected samples counted exactly"
    );

    // Half a minute of refused connections, then the agent is killed right after a scrape...
    tokio::time::sleep(Duration::from_secs(30)).await;
    wait_scrapes(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, first_peak) = memory_of(first.0.id());
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    // ...and restarted on the same storage, for another half minute of refusals.
    let (second, agent) = start_agent(&dir, &config, &[]).await;
    let queue_bytes = format!("ecs_prom_agent_queue_bytes{remote}}}");
    // Measured once the agent has settled (its first scrapes allocate what every later one
    // reuses, and the 20,000 samples it keeps in memory for the sender are in), then at the
    // end of the outage.
    tokio::time::sleep(Duration::from_secs(14)).await;
    // The receiver has been down since this agent started: its lag shows it.
    let lag = agent_metric(
        &agent,
        &format!("ecs_prom_agent_remote_lag_seconds{remote}}}"),
    )
    .await;
    assert!(lag >= 10.0, "lag {lag} s after 14 s of refusals");
    let (rss_before, _) = memory_of(second.0.id());
    let queue_before = agent_metric(&agent, &queue_bytes).await;
    let appended_before = agent_metric(&agent, &appended).await;
    tokio::time::sleep(Duration::from_secs(16)).await;
    let (rss_after, second_peak) = memory_of(second.0.id());
    let queue_after = agent_metric(&agent, &queue_bytes).await;
    let appended_during = agent_metric(&agent, &appended).await - appended_before;
    let outage_end = target.served.load(Ordering::SeqCst);
    proxy.set(Fault::Pass);

    let expected: Vec<f64> = (1..=outage_end)
        .filter(|n| !refused_values.contains(n))
        .map(|n| n as f64)
        .collect();
    let received = wait_for(
        "every sample of the outage at the receiver",
        Duration::from_secs(60),
        async || {
            let values = received_scrape_values(&prometheus).await;
            let upto: Vec<f64> = values
                .iter()
                .copied()
                .filter(|v| *v <= outage_end as f64)
                .collect();
            (upto.len() >= expected.len()).then_some(upto)
        },
    )
    .await;
    assert_eq!(
        received, expected,
        "every scrape but those refused with 400, once, in order"
    );
    assert!(!refused_values.is_empty());
    // A body refused with 400 was not sent again.
    let seen = proxy.seen.lock().unwrap();
    for body in &refused_bodies {
        // Retried through 500s and 429s, it may have been; never after its 400.
        let sent: Vec<Fault> = seen
            .iter()
            .filter(|s| &s.body == body)
            .map(|s| s.fault)
            .collect();
        assert_eq!(
            sent.last(),
            Some(&Fault::BadRequest),
            "a 400 was retried: {sent:?}"
        );
        assert_eq!(
            sent.iter().filter(|f| **f == Fault::BadRequest).count(),
            1,
            "{sent:?}"
        );
    }
    for fault in [Fault::ServerError, Fault::TooManyRequests] {
        assert!(
            seen.iter().any(|s| s.fault == fault),
            "no request met {fault:?}"
        );
    }
    drop(seen);
    // Memory stays put while the queue on disk grows.
    let queue_growth = queue_after - queue_before;
    let rss_growth = rss_after.saturating_sub(rss_before) as f64;
    eprintln!(
        "queue {queue_before} -> {queue_after} bytes; resident {rss_before} -> {rss_after} bytes; peaks {first_peak} and {second_peak}"
    );
    // Held in memory, the samples queued meanwhile would take at least 32 bytes each; the
    // agent grows by less than half of that (allocator noise is a few hundred kilobytes).
    assert!(
        queue_growth > 400_000.0,
        "the queue grew by {queue_growth} bytes only"
    );
    assert!(
        appended_during * 32.0 > 2_000_000.0,
        "{appended_during} samples queued"
    );
    assert!(
        rss_growth < appended_during * 16.0,
        "resident memory grew by {rss_growth} bytes while {appended_during} samples were queued"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_outage_against_a_small_disk_bound_drops_the_oldest_samples_and_counts_them_exactly()
{
    let dir = temp_dir("disk-bound");
    let (_prometheus, prometheus) = prometheus_receiver(&dir).await;
    let proxy = fault_proxy(&prometheus);
    // 200 series plus the scrape count and 5 report series: 206 samples per scrape.
    let target = target_with_filler(200);
    let per_scrape = 206.0;
    let config = fault_config(&dir, &target, &proxy.url);
    let (_agent, agent) = start_agent(&dir, &config, &["--storage.max-bytes=64KB"]).await;
    let remote = "{remote=\"receiver\"";
    let served = || target.served.load(Ordering::SeqCst);
    wait_for("3 scrapes", Duration::from_secs(20), async || {
        (served() >= 3).then_some(())
    })
    .await;
    proxy.set(Fault::Refuse);
    let dropped_series =
        format!("ecs_prom_agent_remote_samples_dropped_total{remote},reason=\"queue_full\"}}");
    wait_for(
        "the queue to overflow",
        Duration::from_secs(60),
        async || (agent_metric(&agent, &dropped_series).await >= 4.0 * per_scrape).then_some(()),
    )
    .await;
    let outage_end = served();
    proxy.set(Fault::Pass);
    let received = wait_for("the rest delivered", Duration::from_secs(60), async || {
        let values = received_scrape_values(&prometheus).await;
        values.contains(&(outage_end as f64)).then_some(values)
    })
    .await;
    let dropped = agent_metric(&agent, &dropped_series).await;
    let missing: Vec<u64> = (1..=outage_end)
        .filter(|n| !received.contains(&(*n as f64)))
        .collect();
    assert!(!missing.is_empty());
    // Whole scrapes were dropped, the oldest of the outage: one run of consecutive scrapes,
    // after which everything arrived.
    assert_eq!(
        missing,
        (missing[0]..=missing[missing.len() - 1]).collect::<Vec<_>>(),
        "the dropped scrapes are one run"
    );
    assert!(missing[0] > 1, "samples sent before the outage arrived");
    assert_eq!(
        dropped,
        missing.len() as f64 * per_scrape,
        "dropped samples counted exactly: {} scrapes missing",
        missing.len()
    );
    let on_disk = agent_metric(&agent, &format!("ecs_prom_agent_queue_bytes{remote}}}")).await;
    assert!(on_disk <= 64.0 * 1024.0, "the queue holds {on_disk} bytes");
}

/// A server answering `/case/<name>` with the body `cases` holds for that name, with its
/// content type.
fn case_server(cases: BTreeMap<String, (&'static str, String)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let cases = Arc::new(cases);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let cases = Arc::clone(&cases);
            std::thread::spawn(move || {
                let Some(request) = read_http_request(&stream) else {
                    return;
                };
                let name = request.target.trim_start_matches("/case/");
                let name = name.split('?').next().unwrap_or_default();
                let reply = match cases.get(name) {
                    Some((content_type, body)) => format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    ),
                    None => {
                        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                            .to_owned()
                    }
                };
                let _ = stream.write_all(reply.as_bytes());
            });
        }
    });
    address
}

/// The expositions both scrape: every OpenMetrics parser case Prometheus 2.42 accepts (as it
/// recorded them), and text-format bodies with what the text format allows.
fn differential_cases() -> BTreeMap<String, (&'static str, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/openmetrics-parsers");
    let verdicts: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("prometheus-2.42-verdicts.json")).unwrap(),
    )
    .unwrap();
    let mut cases = BTreeMap::new();
    for (name, verdict) in verdicts["cases"].as_object().unwrap() {
        if verdict["accepted"].as_bool() == Some(true) {
            let body = std::fs::read_to_string(root.join(name).join("metrics")).unwrap();
            cases.insert(
                name.clone(),
                (
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    body,
                ),
            );
        }
    }
    let text = "text/plain; version=0.0.4; charset=utf-8";
    cases.insert(
        "text_labels".to_owned(),
        (
            text,
            "# HELP t_total A counter\n# TYPE t_total counter\nt_total{job=\"inner\",instance=\"x\",exported_job=\"e\",path=\"a\\\\b\\\"c\\nd\"} 1.5 1520879607789\n\
             t_total{path=\"\"} -0\n# TYPE g gauge\ng NaN\ng{a=\"1\"} +Inf\ng{a=\"2\"} -Inf\ng{a=\"3\"} 1e-300\n"
                .to_owned(),
        ),
    );
    cases.insert(
        "text_histogram".to_owned(),
        (
            text,
            "# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 4\nh_sum 2.5\nh_count 4\n\
             # TYPE s summary\ns{quantile=\"0.5\"} 0.2\ns_sum 1\ns_count 5\nuntyped_metric 7\n"
                .to_owned(),
        ),
    );
    cases
}

/// Every series of `job` an instant query returns now, split by whether the agent wrote it
/// (`via="agent"`), as label set (without `via`) to value text.
async fn latest_by_source(
    base: &str,
    job: &str,
) -> (
    BTreeMap<BTreeMap<String, String>, String>,
    BTreeMap<BTreeMap<String, String>, String>,
) {
    let selector = format!("{{job=\"{job}\",__name__!=\"scrape_duration_seconds\"}}");
    let url = format!(
        "{base}/api/v1/query?query={}",
        aws_api::uri_encode(&selector)
    );
    let (status, body) = http_get(&url).await;
    assert_eq!(status, 200, "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    let (mut prometheus, mut agent) = (BTreeMap::new(), BTreeMap::new());
    for series in json["data"]["result"].as_array().unwrap() {
        let mut labels = labels_of(&series["metric"]);
        let value = series["value"][1].as_str().unwrap().to_owned();
        if labels.remove("via").as_deref() == Some("agent") {
            agent.insert(labels, value);
        } else {
            prometheus.insert(labels, value);
        }
    }
    (prometheus, agent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_expositions_give_the_same_samples_and_target_labels_as_prometheus() {
    let dir = temp_dir("differential");
    let cases = differential_cases();
    let names: Vec<String> = cases.keys().cloned().collect();
    // Relabeling drops the clashing-names cases, the rest are kept.
    let dropped = names
        .iter()
        .filter(|n| n.starts_with("bad_clashing_names_"))
        .count();
    assert!(dropped > 0);
    let server = case_server(cases);
    // One job; each case a target of its own, its path set by relabeling, with the target
    // label rules Prometheus applies (params, a default port, labelmap, hashmod, drop).
    let mut groups = String::new();
    for name in &names {
        groups.push_str(&format!(
            "      - targets: ['{server}']\n        labels: {{case: '{name}', __meta_kind: '{}'}}\n",
            name.split('_').next().unwrap_or_default()
        ));
    }
    let scrape = format!(
        r#"global:
  scrape_interval: 1s
scrape_configs:
  - job_name: cases
    honor_timestamps: false
    params:
      module: [a, b]
    static_configs:
{groups}    relabel_configs:
      - {{source_labels: [case], target_label: __metrics_path__, replacement: '/case/$1'}}
      - {{source_labels: [case], target_label: __param_module}}
      - {{regex: '__meta_(kind)', action: labelmap}}
      - {{source_labels: [case], modulus: 4, target_label: shard, action: hashmod}}
      - {{source_labels: [case], regex: 'bad_clashing_names_.*', action: drop}}
"#
    );
    let (_prometheus, base) = prometheus_with(&dir, &scrape).await;
    let agent_config = dir.join("agent.yml");
    std::fs::write(
        &agent_config,
        scrape.replace(
            "global:\n  scrape_interval: 1s\n",
            "global:\n  scrape_interval: 1s\n  external_labels: {via: agent}\n",
        ) + &format!(
            "remote_write:\n  - url: {base}/api/v1/write\n    queue_config: {{batch_send_deadline: 1s}}\n"
        ),
    )
    .unwrap();
    let (_agent, agent) = start_agent(&dir, &agent_config, &[]).await;

    // Both have scraped every kept target a few times.
    let kept = names.len() - dropped;
    wait_for(
        "every target scraped by both",
        Duration::from_secs(30),
        async || {
            let (prometheus, agent) = latest_by_source(&base, "cases").await;
            let ups = |side: &BTreeMap<BTreeMap<String, String>, String>| {
                side.keys().filter(|l| l["__name__"] == "up").count()
            };
            (ups(&prometheus) == kept && ups(&agent) == kept).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (theirs, ours) = latest_by_source(&base, "cases").await;
    let mut differences = Vec::new();
    for (labels, value) in &theirs {
        match ours.get(labels) {
            Some(v) if v == value => {}
            Some(v) => differences.push(format!("{labels:?}: Prometheus {value}, agent {v}")),
            None => differences.push(format!("{labels:?} = {value}: only Prometheus has it")),
        }
    }
    for (labels, value) in &ours {
        if !theirs.contains_key(labels) {
            differences.push(format!("{labels:?} = {value}: only the agent has it"));
        }
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
    // Not two empty sets: every accepted case is up in both, with its samples, the text
    // bodies' clashing labels and histograms among them.
    eprintln!("{} series compared", theirs.len());
    assert!(theirs.len() > 500, "{} series", theirs.len());
    for (name, label) in [("t_total", "exported_job"), ("h_bucket", "le"), ("g", "a")] {
        assert!(
            theirs
                .keys()
                .any(|l| l["__name__"] == name && l.contains_key(label)),
            "no {name} with {label}"
        );
    }
    let down: Vec<_> = theirs
        .iter()
        .filter(|(l, v)| l["__name__"] == "up" && v.as_str() != "1")
        .collect();
    assert!(down.is_empty(), "{down:?}");
    // The same targets dropped by relabeling.
    let (_, targets) = http_get(&format!("{base}/api/v1/targets?state=dropped")).await;
    let targets: Value = serde_json::from_str(&targets).unwrap();
    let dropped_by_prometheus = targets["data"]["droppedTargets"].as_array().unwrap().len();
    let dropped_here = agent_metric(
        &agent,
        "ecs_prom_agent_targets_dropped{scrape_job=\"cases\"}",
    )
    .await as usize;
    assert_eq!(dropped_by_prometheus, dropped);
    assert_eq!(dropped_here, dropped);
}

/// POSTs to the agent's `/-/reload`: the status and the body.
fn post_reload(base: &str) -> (u16, String) {
    use std::io::Read as _;
    let mut stream = TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    stream
        .write_all(b"POST /-/reload HTTP/1.1\r\nhost: agent\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reloads_keep_the_queue_and_a_bad_file_changes_nothing() {
    let dir = temp_dir("reload");
    let (_prometheus, prometheus) = prometheus_receiver(&dir).await;
    let proxy = fault_proxy(&prometheus);
    let target = target_with_filler(0);
    let config = fault_config(&dir, &target, &proxy.url);
    let good = std::fs::read_to_string(&config).unwrap();
    let (agent_process, agent) = start_agent(&dir, &config, &[]).await;
    let served = || target.served.load(Ordering::SeqCst);
    wait_for("2 scrapes", Duration::from_secs(20), async || {
        (served() >= 2).then_some(())
    })
    .await;
    // The receiver goes away: what follows waits in the queue through both reloads.
    proxy.set(Fault::Refuse);
    let from = served();
    wait_for("2 more scrapes", Duration::from_secs(20), async || {
        (served() >= from + 2).then_some(())
    })
    .await;

    std::fs::write(
        &config,
        good.replace("global:\n", "global:\n  evaluation_interval: 1m\n"),
    )
    .unwrap();
    let (status, body) = post_reload(&agent);
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("global.evaluation_interval (line 2)"),
        "{body}"
    );
    let reload_ok = "ecs_prom_agent_config_last_reload_successful";
    assert_eq!(agent_metric(&agent, reload_ok).await, 0.0);
    let (_, page) = http_get(&format!("{agent}/")).await;
    assert!(page.contains("The last reload failed"), "{page}");
    // A remote that cannot be set up (SigV4 without a region anywhere) changes nothing either:
    // the running remote keeps its queue.
    std::fs::write(&config, format!("{good}    sigv4: {{}}\n")).unwrap();
    let (status, body) = post_reload(&agent);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("remote_write receiver: sigv4"), "{body}");

    // A good file with an external label more, by SIGHUP.
    std::fs::write(
        &config,
        good.replace(
            "global:\n",
            "global:\n  external_labels: {reloaded: 'yes'}\n",
        ),
    )
    .unwrap();
    let before_hup = served();
    let hup = Command::new("kill")
        .args(["-HUP", &agent_process.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_for("the reload", Duration::from_secs(10), async || {
        (agent_metric(&agent, reload_ok).await == 1.0).then_some(())
    })
    .await;
    let reloaded_at = served();
    wait_for(
        "2 scrapes after the reload",
        Duration::from_secs(20),
        async || (served() >= reloaded_at + 2).then_some(()),
    )
    .await;
    let outage_end = served();
    proxy.set(Fault::Pass);
    let every: Vec<f64> = (1..=outage_end).map(|n| n as f64).collect();
    let got = wait_for(
        "every scrape delivered",
        Duration::from_secs(30),
        async || {
            let all = raw_samples(&prometheus, "agent_test_scrapes_total").await;
            let mut values: Vec<f64> = all
                .values()
                .flatten()
                .map(|(_, v)| *v)
                .filter(|v| *v <= outage_end as f64)
                .collect();
            values.sort_by(f64::total_cmp);
            (values.len() >= every.len()).then_some(all)
        },
    )
    .await;
    let mut values: Vec<f64> = got
        .values()
        .flatten()
        .map(|(_, v)| *v)
        .filter(|v| *v <= outage_end as f64)
        .collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values, every, "nothing lost or repeated across the reloads");
    // Scrapes after the reload carry the new external label, those before do not.
    for (labels, points) in &got {
        let relabeled = labels.contains_key("reloaded");
        for (_, value) in points {
            if *value > reloaded_at as f64 {
                assert!(relabeled, "scrape {value} after the reload lacks the label");
            }
            if *value <= before_hup as f64 {
                assert!(!relabeled, "scrape {value} before the reload has the label");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigv4_remote_write_is_signed_as_botocore_signs_it() {
    let dir = temp_dir("sigv4");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let keep = Arc::clone(&received);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            if let Some(request) = read_http_request(&stream) {
                keep.lock().unwrap().push(request);
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    let target = target_with_filler(0);
    let config = dir.join("agent.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs: [{{targets: ['{}']}}]\n\
             remote_write:\n  - url: https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-test/api/v1/remote_write\n\
             \x20   queue_config: {{batch_send_deadline: 1s}}\n    sigv4: {{access_key: AKIDAGENTTEST, secret_key: agent-test-secret}}\n",
            target.address
        ),
    )
    .unwrap();
    let (_agent, _) =
        start_agent_with(&dir, &config, &[], &[("AWS_ENDPOINT_URL_AMP", &endpoint)]).await;
    let request = wait_for(
        "a signed remote write",
        Duration::from_secs(20),
        async || received.lock().unwrap().first().cloned(),
    )
    .await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.target, "/workspaces/ws-test/api/v1/remote_write");
    let authorization = request.header("authorization").unwrap().to_owned();
    assert!(
        authorization.contains("Credential=AKIDAGENTTEST/")
            && authorization.contains("/eu-west-1/aps/aws4_request"),
        "{authorization}"
    );
    let expected = test_support::botocore_signature(
        &request,
        "AKIDAGENTTEST",
        "agent-test-secret",
        None,
        "eu-west-1",
        "aps",
    );
    assert_eq!(
        authorization.rsplit("Signature=").next(),
        Some(expected.as_str())
    );
    // The shards send in parallel: the first scrape's count is in one of the requests.
    wait_for(
        "the first scrape's count",
        Duration::from_secs(20),
        async || {
            let received = received.lock().unwrap();
            received
                .iter()
                .any(|r| decode(&r.body).0.contains(&1.0))
                .then_some(())
        },
    )
    .await;
}

/// Every series an instant query of `selector` returns: labels and value.
async fn instant_values(base: &str, selector: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let url = format!(
        "{base}/api/v1/query?query={}",
        aws_api::uri_encode(selector)
    );
    let (status, body) = http_get(&url).await;
    assert_eq!(status, 200, "{url}: {body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    json["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|series| {
            let value = series["value"][1].as_str().unwrap().parse().unwrap();
            (labels_of(&series["metric"]), value)
        })
        .collect()
}

/// The metadata simulator in this process on a loopback port, serving `simulation` until the
/// test ends. Its base URL.
async fn simulator(simulation: ecs_simulator::Simulation) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(ecs_simulator::run(
        simulation,
        ecs_simulator::Faults::default(),
        listener,
        std::future::pending(),
    ));
    url
}

/// The identity labels of a task as its metadata document says them, read here from the
/// JSON itself rather than through ecs-prom's parser.
async fn identity_of(metadata_url: &str) -> BTreeMap<String, String> {
    let (status, body) = http_get(&format!("{metadata_url}/task")).await;
    assert_eq!(status, 200);
    let task: Value = serde_json::from_str(&body).unwrap();
    let text = |name: &str| task[name].as_str().unwrap().to_owned();
    let cluster = text("Cluster");
    BTreeMap::from([
        (
            "cluster".to_owned(),
            cluster.rsplit('/').next().unwrap().to_owned(),
        ),
        ("service".to_owned(), text("ServiceName")),
        ("task_family".to_owned(), text("Family")),
        ("task_revision".to_owned(), text("Revision")),
        (
            "task_id".to_owned(),
            text("TaskARN").rsplit('/').next().unwrap().to_owned(),
        ),
        ("availability_zone".to_owned(), text("AvailabilityZone")),
        ("launch_type".to_owned(), text("LaunchType")),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ecs_task_sidecar_scrapes_its_containers_with_exact_labels_and_follows_a_restart() {
    let dir = temp_dir("ecs-task");
    let (_prometheus, prometheus) = prometheus_receiver(&dir).await;
    let app = counting_target(|n| format!("# TYPE served counter\nserved_total {n}\n"));
    let stats = counting_target(|n| format!("custom_stat {n}\n"));
    let app_port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let stats_port: u16 = stats.address.rsplit(':').next().unwrap().parse().unwrap();
    let mut simulation = ecs_simulator::Simulation::new(7, 1, ecs_simulator::now() - 60.0);
    let task_id = simulation.tasks[0].id.clone();
    // A Fargate task (awsvpc): its app labelled as the simulator labels it, on this test's
    // port; the exporter-image container labelled the CloudWatch way, with a path.
    let containers = &mut simulation.tasks[0].containers;
    containers[0].container_port = Some(app_port);
    containers[0]
        .docker_labels
        .insert("PROMETHEUS_EXPORTER_PORT".into(), app_port.to_string());
    containers[1].image = "quay.io/prometheuscommunity/ecs-exporter:v0.4.0".to_owned();
    containers[1].docker_labels.extend([
        (
            "ECS_PROMETHEUS_EXPORTER_PORT".to_owned(),
            stats_port.to_string(),
        ),
        (
            "ECS_PROMETHEUS_EXPORTER_PATH".to_owned(),
            "/stats".to_owned(),
        ),
    ]);
    let exporter_container = containers[1].name.clone();
    let simulator = simulator(simulation).await;
    let metadata_url = ecs_simulator::metadata_uri(&simulator, &task_id);
    let identity = identity_of(&metadata_url).await;
    assert_eq!(identity["launch_type"], "FARGATE");
    let (_agent, agent) = spawn_agent(
        &dir,
        &[
            "--ecs.task",
            "--scrape.interval=1s",
            "--scrape.timeout=1s",
            "--ecs.refresh-interval=1s",
        ],
        &[
            ("ECS_CONTAINER_METADATA_URI_V4", metadata_url.as_str()),
            (
                "ECS_PROM_AGENT_REMOTE_WRITE_URL",
                &format!("{prometheus}/api/v1/write"),
            ),
        ],
    )
    .await;

    // Exact labels: the app names its job and is labelled with its container; the
    // exporter-image container is not (its series carry their own), and has the default job.
    let with = |extra: &[(&str, String)]| {
        let mut labels = identity.clone();
        for (name, value) in extra {
            labels.insert((*name).to_owned(), value.clone());
        }
        labels
    };
    let expected_app = with(&[
        ("__name__", "served_total".to_owned()),
        ("job", "demo-app".to_owned()),
        ("instance", format!("127.0.0.1:{app_port}")),
        ("container_name", "app".to_owned()),
    ]);
    let expected_stats = with(&[
        ("__name__", "custom_stat".to_owned()),
        ("job", agent::TASK_JOB.to_owned()),
        ("instance", format!("127.0.0.1:{stats_port}")),
    ]);
    wait_for(
        "both containers' samples",
        Duration::from_secs(30),
        async || {
            let app_series = instant_values(&prometheus, "served_total").await;
            let stats_series = instant_values(&prometheus, "custom_stat").await;
            (app_series.len() == 1 && stats_series.len() == 1).then_some(())
        },
    )
    .await;
    let app_series = instant_values(&prometheus, "served_total").await;
    assert_eq!(app_series[0].0, expected_app);
    let stats_series = instant_values(&prometheus, "custom_stat").await;
    assert_eq!(stats_series[0].0, expected_stats);
    assert!(stats.served.load(Ordering::SeqCst) >= 1);

    // The task's ECS metrics, collected in-process, with the same identity.
    let limit = instant_values(&prometheus, "ecs_task_cpu_limit_vcpus").await;
    assert_eq!(limit.len(), 1);
    let mut expected_limit = with(&[
        ("__name__", "ecs_task_cpu_limit_vcpus".to_owned()),
        ("job", "ecs-exporter".to_owned()),
    ]);
    // Every task's endpoint has the same address on ECS: the task id names the target.
    expected_limit.insert("instance".to_owned(), identity["task_id"].clone());
    assert_eq!(limit[0].0, expected_limit);
    assert_eq!(limit[0].1, 0.25, "the simulated Fargate task's Limits.CPU");

    // The container exits: its target goes and its series end; it restarts: it is back.
    let client = web::Client::new(Duration::from_secs(5));
    let control = async |action: &str| {
        let url = format!("{simulator}/control/{task_id}/{exporter_container}/{action}");
        let answer = client.post(&url).send().await.unwrap();
        assert!(answer.status.is_success(), "{url}: {}", answer.status);
    };
    control("exit/1").await;
    wait_for(
        "the exited container's series to end",
        Duration::from_secs(20),
        async || {
            instant_values(&prometheus, "custom_stat")
                .await
                .is_empty()
                .then_some(())
        },
    )
    .await;
    let served_while_stopped = stats.served.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        stats.served.load(Ordering::SeqCst),
        served_while_stopped,
        "a stopped container is not scraped"
    );
    control("restart").await;
    wait_for(
        "the restarted container's series",
        Duration::from_secs(20),
        async || {
            let series = instant_values(&prometheus, "custom_stat").await;
            (series.len() == 1 && series[0].1 > served_while_stopped as f64).then_some(())
        },
    )
    .await;
    assert_eq!(
        instant_values(&prometheus, "custom_stat").await[0].0,
        expected_stats
    );
    assert_eq!(
        agent_metric(&agent, "ecs_prom_agent_config_last_reload_successful").await,
        1.0
    );
    assert!(
        dir.join("storage/ecs-task.yml").exists(),
        "the configuration it made is shown"
    );
}

/// A loopback server answering `GET <path>` with the file `paths[path]` as JSON.
fn fixture_server(paths: Vec<(String, PathBuf)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let paths = Arc::new(paths);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let paths = Arc::clone(&paths);
            std::thread::spawn(move || {
                let Some(request) = read_http_request(&stream) else {
                    return;
                };
                let (status, body) = match paths.iter().find(|(p, _)| *p == request.target) {
                    Some((_, file)) => ("200 OK", std::fs::read(file).unwrap()),
                    None => ("404 Not Found", Vec::new()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(&body);
            });
        }
    });
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecars_ecs_metrics_equal_the_exporters_for_the_same_fixtures() {
    let dir = temp_dir("ecs-golden");
    let (_prometheus, prometheus) = prometheus_receiver(&dir).await;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/ecs-metadata");
    let endpoint = fixture_server(vec![
        (
            "/v4/fx/task".to_owned(),
            fixtures.join("ecs_exporter-fargate_task_metadata.json"),
        ),
        (
            "/v4/fx/task/stats".to_owned(),
            fixtures.join("ecs_exporter-fargate_task_stats.json"),
        ),
    ]);
    let metadata_url = format!("{endpoint}/v4/fx");
    let (_agent, _) = spawn_agent(
        &dir,
        &[
            "--ecs.task",
            &format!("--ecs.metadata-url={metadata_url}"),
            &format!("--remote-write.url={prometheus}/api/v1/write"),
            "--scrape.interval=1s",
            "--scrape.timeout=1s",
        ],
        &[],
    )
    .await;
    // What the exporter serves for the same endpoint, read through its text.
    let collector = ecs_exporter::Collector::new(
        &metadata_url,
        ecs_exporter::Scope::Task,
        Duration::from_secs(5),
    )
    .unwrap();
    let mut text = String::new();
    exposition::encode(&collector.collect().await.unwrap(), &mut text);
    // The identity, checked by hand against the fixture.
    let identity = [
        ("cluster", "prom-ecs-exporter-sandbox"),
        ("task_family", "prom-ecs-exporter-sandbox-main-fargate"),
        ("task_revision", "9"),
        ("availability_zone", "us-east-1a"),
        ("launch_type", "FARGATE"),
        ("job", "ecs-exporter"),
    ];
    // As Prometheus would store a scrape of the exporter with these target labels: a scraped
    // label that a target label also names becomes `exported_<name>`, and an empty one is no
    // label.
    let target_labels: Vec<&str> = identity
        .iter()
        .map(|(name, _)| *name)
        .chain(["task_id", "instance"])
        .collect();
    let as_stored = |sample: exposition::ParsedSample| {
        let mut labels: BTreeMap<String, String> = sample
            .labels
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(
                |(name, value)| match target_labels.contains(&name.as_str()) {
                    true => (format!("exported_{name}"), value),
                    false => (name, value),
                },
            )
            .collect();
        labels.insert("__name__".to_owned(), sample.name);
        (labels, sample.value)
    };
    let varying = ["ecs_exporter_collector_duration_seconds"];
    let exporter: BTreeMap<BTreeMap<String, String>, f64> = exposition::parse_samples(&text)
        .unwrap()
        .into_iter()
        .filter(|sample| !varying.contains(&sample.name.as_str()))
        .map(as_stored)
        .collect();
    assert!(exporter.len() > 40, "{}", exporter.len());
    let query =
        r#"{job="ecs-exporter", __name__!~"up|scrape_.*|ecs_exporter_collector_duration_seconds"}"#;
    let agent_series = wait_for(
        "the sidecar's ECS metrics",
        Duration::from_secs(30),
        async || {
            let series = instant_values(&prometheus, query).await;
            (series.len() >= exporter.len()).then_some(series)
        },
    )
    .await;
    let mut received: BTreeMap<BTreeMap<String, String>, f64> = BTreeMap::new();
    for (mut labels, value) in agent_series {
        for (name, expected) in identity {
            assert_eq!(
                labels.remove(name).as_deref(),
                Some(expected),
                "{name} on {labels:?}"
            );
        }
        assert!(labels.remove("task_id").is_some());
        assert!(labels.remove("instance").is_some());
        received.insert(labels, value);
    }
    assert_eq!(received, exporter);
    // And the values ecs_exporter v0.4 gives for this capture (checked by hand when the
    // exporter was built) are among them, to the last bits of Go's float arithmetic.
    let golden =
        std::fs::read_to_string(fixtures.join("expected/ecs_exporter-fargate_metrics.prom"))
            .unwrap();
    for (labels, expected) in exposition::parse_samples(&golden)
        .unwrap()
        .into_iter()
        .map(as_stored)
    {
        let value = received
            .get(&labels)
            .unwrap_or_else(|| panic!("{labels:?} missing"));
        assert!(
            (value - expected).abs() <= 1e-12 * expected.abs(),
            "{labels:?}: {value} against {expected}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_sd_and_cloudmap_sd_find_the_targets_discovery_finds_for_the_same_account() {
    let moto = test_support::MotoServer::start();
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("../discovery/tests/aws_setup.py");
    moto.run_python(&setup, &["cluster"]);
    let dir = temp_dir("aws-sd");
    let mut env: Vec<(&str, String)> = moto.aws_env();
    env.push(("AWS_ENDPOINT_URL", moto.url.clone()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    // What `ecs-prom discovery` writes for the cluster and the two namespaces.
    let file = dir.join("ecs-services.json");
    let output = Command::new(BINARY)
        .args([
            "discovery",
            "--once",
            "--ecs.cluster=prod",
            "--cloudmap.namespace=ecs-services,apps",
        ])
        .arg(format!("--output.file={}", file.display()))
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let groups: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    // Each target as Prometheus would see it in a job `cluster` scraping every minute: the
    // group's labels, its address, and the job's defaults where the group sets none.
    let mut expected = BTreeSet::new();
    for group in &groups {
        for address in group["targets"].as_array().unwrap() {
            let mut labels = labels_of(&group["labels"]);
            labels.insert("__address__".into(), address.as_str().unwrap().to_owned());
            for (name, default) in [
                ("job", "cluster"),
                ("__scheme__", "http"),
                ("__metrics_path__", "/metrics"),
                ("__scrape_interval__", "1m"),
                ("__scrape_timeout__", "10s"),
            ] {
                labels
                    .entry(name.into())
                    .or_insert_with(|| default.to_owned());
            }
            expected.insert(labels);
        }
    }
    assert_eq!(
        expected.len(),
        8,
        "aws_setup.py's cluster has 8 targets: {groups:?}"
    );

    // The agent with the same sources in its configuration. Its targets' addresses are in
    // the made-up VPC: relabeling sends every scrape to a refused loopback port instead.
    let config = dir.join("agent.yml");
    std::fs::write(
        &config,
        "scrape_configs:\n  - job_name: cluster\n    scrape_interval: 1m\n\
         \x20   ecs_sd_configs: [{clusters: [prod]}]\n\
         \x20   cloudmap_sd_configs: [{namespaces: [ecs-services, apps]}]\n\
         \x20   relabel_configs:\n\
         \x20     - {source_labels: [__address__], target_label: instance}\n\
         \x20     - {target_label: __address__, replacement: '127.0.0.1:1'}\n",
    )
    .unwrap();
    let (_agent, agent) = start_agent_with(&dir, &config, &[], &env).await;
    let found = wait_for(
        "the agent's 8 targets",
        Duration::from_secs(60),
        async || {
            let (status, body) = http_get(&format!("{agent}/api/v1/targets")).await;
            assert_eq!(status, 200);
            let json: Value = serde_json::from_str(&body).unwrap();
            let active = json["data"]["activeTargets"].as_array().unwrap().clone();
            (active.len() >= expected.len()).then_some(active)
        },
    )
    .await;
    let discovered: BTreeSet<BTreeMap<String, String>> = found
        .iter()
        .map(|target| labels_of(&target["discoveredLabels"]))
        .collect();
    assert_eq!(discovered, expected);
    assert!(found.iter().all(|t| {
        t["scrapeUrl"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:1/")
    }));
}

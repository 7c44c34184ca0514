//! `ecs-prom demo` end to end, as a user runs it: with the real Prometheus (Debian's
//! `prometheus` package), asserting through Prometheus' HTTP API that the whole pipeline
//! delivers; without it, the live summary; and that SIGTERM, Ctrl-C and `--duration` release
//! every port and process.

// Test helpers fail the test on any unexpected error.
#![allow(clippy::expect_used)]

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use test_support::free_port;
use test_support::http_get;

const BINARY: &str = env!("CARGO_BIN_EXE_ecs-prom");

/// A port nobody listens on right now.
/// Starts the demo with `args`, in its own process group as a shell starts a foreground job;
/// its standard output arrives line by line on the channel.
fn start_demo(args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(BINARY)
        .arg("demo")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .expect("the demo starts");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    (child, received)
}

/// Reads lines until one contains `needle`, within `timeout`; returns every line read.
fn lines_until(lines: &mpsc::Receiver<String>, needle: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(_) => panic!("no line with {needle:?} within {timeout:?}; got:\n{seen:#?}"),
        }
    }
}

/// Waits for the process to exit within `timeout`.
fn wait_for_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the demo did not stop within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn refuses_connections(address: &str) -> bool {
    std::net::TcpStream::connect_timeout(
        &address.parse().expect("an address"),
        Duration::from_secs(1),
    )
    .is_err()
}

/// Command lines of the running processes that were given `argument`.
fn processes_with_argument(argument: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let arguments: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if arguments.iter().any(|a| a == argument) {
            found.push(arguments.join(" "));
        }
    }
    found
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One series of an instant query: its labels and value.
type Series = (BTreeMap<String, String>, f64);

/// An instant query through Prometheus' HTTP API.
async fn query(prometheus: &str, promql: &str) -> Vec<Series> {
    let url = format!("{prometheus}/api/v1/query?query={}", percent_encode(promql));
    let (status, body) = http_get(&url).await;
    assert_eq!(status, 200, "{promql}: {body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    answer["data"]["result"]
        .as_array()
        .expect("a vector")
        .iter()
        .map(|series| {
            let labels = series["metric"]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            let value = series["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .expect("a value");
            (labels, value)
        })
        .collect()
}

fn key(labels: &BTreeMap<String, String>) -> (String, String) {
    (
        labels.get("task_id").cloned().unwrap_or_default(),
        labels.get("container_name").cloned().unwrap_or_default(),
    )
}

/// What the issue asks Prometheus to show, checked once; `Err` says what is not there yet.
/// `extra_jobs` are scraped besides the tasks' apps and exporters, each that many times.
async fn pipeline_delivers(
    prometheus: &str,
    tasks: usize,
    extra_jobs: &[(&str, usize)],
) -> Result<(), String> {
    let up = query(prometheus, "up").await;
    let jobs: BTreeMap<String, usize> = up.iter().fold(BTreeMap::new(), |mut jobs, (l, _)| {
        *jobs.entry(l["job"].clone()).or_default() += 1;
        jobs
    });
    let mut expected_jobs = BTreeMap::from([
        ("demo-app".to_owned(), tasks),
        ("ecs-exporter".to_owned(), tasks),
    ]);
    expected_jobs.extend(extra_jobs.iter().map(|(job, n)| ((*job).to_owned(), *n)));
    if jobs != expected_jobs || up.iter().any(|(_, value)| *value != 1.0) {
        return Err(format!("targets: {up:?}"));
    }

    // Every running container's CPU counter rises. Each simulated task runs two containers
    // (the app and the exporter); the Fargate and EC2 tasks' init containers have exited.
    let running: BTreeSet<_> = query(prometheus, r#"ecs_container_info{known_status="RUNNING"}"#)
        .await
        .iter()
        .map(|(labels, _)| key(labels))
        .collect();
    if running.len() != 2 * tasks {
        return Err(format!("running containers: {running:?}"));
    }
    let rising: BTreeSet<_> = query(
        prometheus,
        "increase(ecs_container_cpu_usage_seconds_total[1m]) > 0",
    )
    .await
    .iter()
    .map(|(labels, _)| key(labels))
    .collect();
    if !running.is_subset(&rising) {
        return Err(format!("CPU rising for {rising:?}, running {running:?}"));
    }

    // Working set below the limit wherever a limit exists (every container here has one:
    // its own on EC2, the task's elsewhere).
    let limits: BTreeMap<_, f64> = query(prometheus, "ecs_container_memory_limit_bytes")
        .await
        .iter()
        .map(|(labels, value)| (key(labels), *value))
        .collect();
    let working_sets = query(prometheus, "ecs_container_memory_working_set_bytes").await;
    if working_sets.len() != 2 * tasks {
        return Err(format!("working sets: {working_sets:?}"));
    }
    for (labels, working_set) in &working_sets {
        let limit = limits.get(&key(labels)).copied();
        if !limit.is_some_and(|limit| *working_set > 0.0 && *working_set < limit) {
            return Err(format!(
                "working set {working_set} vs limit {limit:?} for {labels:?}"
            ));
        }
    }

    let requests = query(prometheus, "sum(rate(http_requests_total[1m]))").await;
    if !requests.first().is_some_and(|(_, rate)| *rate > 0.0) {
        return Err(format!("request rate: {requests:?}"));
    }
    let p95 = query(
        prometheus,
        "histogram_quantile(0.95, sum by (le) (rate(request_duration_milliseconds_bucket[1m])))",
    )
    .await;
    if !p95
        .first()
        .is_some_and(|(_, ms)| ms.is_finite() && *ms > 0.0)
    {
        return Err(format!("p95: {p95:?}"));
    }
    let errors = query(prometheus, r#"http_requests_total{status="500"}"#).await;
    if errors.is_empty() || errors.iter().any(|(labels, _)| labels["path"] != "/error") {
        return Err(format!("5xx series: {errors:?}"));
    }
    Ok(())
}

/// Waits up to 120 s for [`pipeline_delivers`] to hold; fails the test with what is missing.
async fn wait_until_delivered(prometheus: &str, tasks: usize, extra_jobs: &[(&str, usize)]) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match pipeline_delivers(prometheus, tasks, extra_jobs).await {
            Ok(()) => return,
            Err(missing) if Instant::now() > deadline => {
                panic!("after 120 s Prometheus still lacks: {missing}")
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_delivers_into_a_real_prometheus_and_stops_cleanly() {
    let address = format!("127.0.0.1:{}", free_port());
    let prometheus = format!("http://{address}");
    let (mut demo, lines) = start_demo(&[
        "--prometheus",
        "--prometheus.listen-address",
        &address,
        "--duration",
        "5m",
        "--summary.interval",
        "5s",
    ]);
    let header = lines_until(&lines, "# Prometheus:", Duration::from_secs(60));
    let endpoints: Vec<String> = header.iter().flat_map(|line| addresses(line)).collect();
    // The simulator, three apps and three exporters, then Prometheus.
    assert_eq!(endpoints.len(), 8, "{header:#?}");
    assert_eq!(endpoints[7], address);

    wait_until_delivered(&prometheus, 3, &[]).await;

    test_support::sigterm(demo.id());
    let status = wait_for_exit(&mut demo, Duration::from_secs(30));
    assert!(status.success(), "exit status {status}");
    for endpoint in &endpoints {
        assert!(refuses_connections(endpoint), "{endpoint} still listens");
    }
    let leftovers = processes_with_argument(&format!("--web.listen-address={address}"));
    assert!(
        leftovers.is_empty(),
        "a Prometheus was left running: {leftovers:?}"
    );
    let workdir = std::env::temp_dir().join(format!("ecs-prom-demo-{}", demo.id()));
    assert!(!workdir.exists(), "{} was left behind", workdir.display());
}

/// `--agent`: every task's agent sidecar remote-writes its app's and its ECS metrics into the
/// demo's Prometheus, which scrapes only the agents; with Prometheus stopped (SIGSTOP) for
/// 30 s, the agents keep what they scrape and deliver it afterwards: no sample is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_agents_every_task_arrives_by_remote_write_and_a_30_s_outage_loses_no_sample() {
    let address = format!("127.0.0.1:{}", free_port());
    let prometheus = format!("http://{address}");
    let (mut demo, lines) = start_demo(&[
        "--agent",
        "--prometheus",
        "--prometheus.listen-address",
        &address,
        "--prometheus.scrape-interval",
        "2s",
        "--duration",
        "5m",
    ]);
    let header = lines_until(&lines, "# Prometheus:", Duration::from_secs(60));
    assert!(
        header.iter().any(|line| line.contains(" agent http://")),
        "{header:#?}"
    );
    // The apps' and the tasks' ECS metrics through the agents, the agents' own scraped.
    wait_until_delivered(&prometheus, 3, &[("ecs-prom-agent", 3)]).await;
    for metric in [
        "ecs_container_cpu_usage_seconds_total",
        "http_requests_total",
    ] {
        let series = query(&prometheus, metric).await;
        let tasks: BTreeSet<&str> = series.iter().map(|(l, _)| l["task_id"].as_str()).collect();
        assert_eq!(tasks.len(), 3, "{metric}: {series:?}");
        for (labels, _) in &series {
            for name in [
                "cluster",
                "service",
                "task_family",
                "task_revision",
                "launch_type",
            ] {
                assert!(
                    labels.contains_key(name),
                    "{metric} without {name}: {labels:?}"
                );
            }
        }
    }

    // Prometheus stops answering for 30 s.
    let pid = prometheus_pid(&address);
    let stopped_at = timestamps::now();
    signal(&pid, "-STOP");
    tokio::time::sleep(Duration::from_secs(30)).await;
    signal(&pid, "-CONT");
    let resumed_at = timestamps::now();

    // Every scrape of every task's app, from before the outage to after it, arrives: the
    // samples of `up` are 2 s apart (the agents' interval) with no gap.
    let window = format!(
        "[{}s]",
        (timestamps::now() - stopped_at + 60.0).ceil() as u64
    );
    let complete = async || -> Result<(), String> {
        let url = format!(
            "{prometheus}/api/v1/query?query={}",
            percent_encode(&format!(r#"up{{job="demo-app"}}{window}"#))
        );
        let (status, body) = http_get(&url).await;
        if status != 200 {
            return Err(body);
        }
        let answer: Value = serde_json::from_str(&body).expect("JSON");
        let series = answer["data"]["result"].as_array().expect("a matrix");
        if series.len() != 3 {
            return Err(format!("{} app series", series.len()));
        }
        for one in series {
            let times: Vec<f64> = one["values"]
                .as_array()
                .expect("values")
                .iter()
                .map(|p| p[0].as_f64().expect("a time"))
                .collect();
            let last = times.last().copied().unwrap_or_default();
            if times.first().is_none_or(|first| *first > stopped_at - 10.0)
                || last < resumed_at + 4.0
            {
                return Err(format!("{} .. {last}: not yet past the outage", times[0]));
            }
            if let Some(gap) = times.windows(2).map(|w| w[1] - w[0]).find(|gap| *gap > 3.0) {
                return Err(format!("a gap of {gap} s in {:?}", one["metric"]));
            }
        }
        Ok(())
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match complete().await {
            Ok(()) => break,
            Err(missing) if Instant::now() > deadline => panic!("after the outage: {missing}"),
            Err(_) => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
    test_support::sigterm(demo.id());
    let status = wait_for_exit(&mut demo, Duration::from_secs(30));
    assert!(status.success(), "exit status {status}");
}

/// The process id of the Prometheus listening on `address`.
fn prometheus_pid(address: &str) -> String {
    let argument = format!("--web.listen-address={address}");
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline.split(|b| *b == 0).any(|a| a == argument.as_bytes()) {
            return entry.file_name().to_string_lossy().into_owned();
        }
    }
    panic!("no Prometheus listens on {address}");
}

fn signal(pid: &str, which: &str) {
    let status = Command::new("kill")
        .args([which, pid])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {which} {pid}");
}

/// The `http://host:port` addresses in `line`, in order.
fn addresses(line: &str) -> Vec<String> {
    line.split_whitespace()
        .filter_map(|word| word.strip_prefix("http://"))
        .filter_map(|rest| rest.split('/').next())
        .map(str::to_owned)
        .collect()
}

/// `--discovery`: moto_server's Cloud Map holds the tasks, `ecs-prom discovery` finds them,
/// and Prometheus scrapes what discovery wrote; stopping the demo stops moto_server too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_discovery_prometheus_scrapes_the_tasks_found_in_cloud_map() {
    let address = format!("127.0.0.1:{}", free_port());
    let prometheus = format!("http://{address}");
    let (mut demo, lines) = start_demo(&[
        "--prometheus",
        "--prometheus.listen-address",
        &address,
        "--discovery",
        "--discovery.refresh-interval",
        "2s",
        "--duration",
        "5m",
        "--summary.interval",
        "5s",
    ]);
    let header = lines_until(&lines, "# Prometheus:", Duration::from_secs(90));
    let task_ids: BTreeSet<String> = header
        .iter()
        .filter_map(|line| line.strip_prefix("#   task "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert_eq!(task_ids.len(), 3, "{header:#?}");
    let discovery_line = header
        .iter()
        .find(|line| line.starts_with("# Discovery: "))
        .expect("the header names discovery");
    let [discovery, moto] = <[String; 2]>::try_from(addresses(discovery_line))
        .unwrap_or_else(|found| panic!("two addresses in {discovery_line:?}: {found:?}"));

    wait_until_delivered(&prometheus, 3, &[("ecs-prom-discovery", 1)]).await;
    // Every task's app and exporter came through Cloud Map, labelled from its attributes.
    let from_cloud_map: BTreeSet<(String, String)> =
        query(&prometheus, r#"up{namespace="ecs-prom-demo"}"#)
            .await
            .iter()
            .map(|(labels, _)| {
                let short_id = labels["task_id"].chars().take(8).collect();
                (labels["job"].clone(), short_id)
            })
            .collect();
    let expected: BTreeSet<(String, String)> = ["demo-app", "ecs-exporter"]
        .iter()
        .flat_map(|job| task_ids.iter().map(|id| ((*job).to_owned(), id.clone())))
        .collect();
    assert_eq!(from_cloud_map, expected);
    let counted = query(&prometheus, "ecs_prom_discovery_targets").await;
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert_eq!(counted[0].0["name"], "ecs-prom-demo", "{counted:?}");
    assert_eq!(counted[0].1, 6.0, "{counted:?}");

    test_support::sigterm(demo.id());
    let status = wait_for_exit(&mut demo, Duration::from_secs(30));
    assert!(status.success(), "exit status {status}");
    for endpoint in [&address, &discovery, &moto] {
        assert!(refuses_connections(endpoint), "{endpoint} still listens");
    }
    let moto_port = moto.rsplit(':').next().expect("a port").to_owned();
    let leftovers = processes_with_argument(&moto_port);
    assert!(
        leftovers.is_empty(),
        "moto_server was left running: {leftovers:?}"
    );
}

#[test]
fn ctrl_c_stops_the_demo_and_its_prometheus() {
    let address = format!("127.0.0.1:{}", free_port());
    let (mut demo, lines) = start_demo(&["--prometheus", "--prometheus.listen-address", &address]);
    lines_until(&lines, "# Prometheus:", Duration::from_secs(60));
    // A terminal's Ctrl-C goes to the whole foreground process group.
    test_support::interrupt_group(demo.id());
    let status = wait_for_exit(&mut demo, Duration::from_secs(30));
    assert!(status.success(), "exit status {status}");
    assert!(refuses_connections(&address), "Prometheus still listens");
    let leftovers = processes_with_argument(&format!("--web.listen-address={address}"));
    assert!(
        leftovers.is_empty(),
        "a Prometheus was left running: {leftovers:?}"
    );
}

#[test]
fn without_prometheus_the_summary_shows_every_task_and_the_duration_ends_it() {
    let started = Instant::now();
    let (mut demo, lines) = start_demo(&[
        "--duration",
        "12s",
        "--summary.interval",
        "3s",
        "--tasks",
        "3",
    ]);
    let status = wait_for_exit(&mut demo, Duration::from_secs(60));
    assert!(status.success(), "exit status {status}");
    assert!(started.elapsed() >= Duration::from_secs(12));
    let output: Vec<String> = lines.try_iter().collect();
    let rows: Vec<&String> = output.iter().filter(|l| l.starts_with("task=")).collect();
    // One row per task every 3 s for 12 s: at least three rounds.
    assert!(rows.len() >= 9, "{output:#?}");
    let last_round = &rows[rows.len() - 3..];
    let launch_types: BTreeSet<&str> = last_round
        .iter()
        .filter_map(|row| {
            row.split_whitespace()
                .find_map(|f| f.strip_prefix("launch_type="))
        })
        .collect();
    assert_eq!(
        launch_types,
        BTreeSet::from(["EC2", "FARGATE", "MANAGED_INSTANCES"])
    );
    for row in last_round {
        let field = |name: &str| {
            row.split_whitespace()
                .find_map(|f| f.strip_prefix(&format!("{name}=")[..]))
                .unwrap_or_else(|| panic!("{name} in {row}"))
                .to_owned()
        };
        let requests: f64 = field("requests_per_second").parse().expect(row);
        assert!(requests > 0.0, "{row}");
        assert!(field("memory_working_set").ends_with("MiB"), "{row}");
        assert!(field("p95").ends_with("ms"), "{row}");
        // The EC2 task's stats are sampled every second: its CPU is known within seconds.
        if row.contains("launch_type=EC2") {
            let cpu: f64 = field("cpu_vcpus").parse().expect(row);
            assert!(cpu > 0.0, "{row}");
        }
    }
    let endpoints: Vec<&str> = output
        .iter()
        .filter(|line| line.starts_with('#'))
        .flat_map(|line| line.split_whitespace())
        .filter_map(|word| word.strip_prefix("http://"))
        .filter_map(|rest| rest.split('/').next())
        .collect();
    assert_eq!(endpoints.len(), 7, "{output:#?}");
    for endpoint in endpoints {
        assert!(refuses_connections(endpoint), "{endpoint} still listens");
    }
}

#[test]
fn prometheus_problems_are_clear_errors() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_address = taken.local_addr().expect("address").to_string();
    let cases = [
        (
            vec![
                "--prometheus",
                "--prometheus.binary",
                "/nonexistent/prometheus",
            ],
            "sudo apt install prometheus",
        ),
        (
            vec![
                "--prometheus",
                "--prometheus.listen-address",
                &taken_address,
            ],
            "cannot listen there",
        ),
    ];
    for (args, expected) in cases {
        let output = Command::new(BINARY)
            .arg("demo")
            .args(&args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

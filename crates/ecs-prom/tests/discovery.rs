//! `ecs-prom discovery` as a user runs it when things go wrong: restarted while AWS is down,
//! writing into a directory someone planted a symlink in or that does not exist, keeping a
//! SecureString configuration, and calling an API whose pagination never ends or that never
//! answers. AWS is a real `moto_server`, or a loopback stand-in where moto cannot misbehave.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use test_support::MotoServer;

const BINARY: &str = env!("CARGO_BIN_EXE_ecs-prom");
/// An address where nothing listens: every AWS call is refused.
const AWS_DOWN: &str = "http://127.0.0.1:1";

fn setup_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../discovery/tests/aws_setup.py")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("ecs-prom-discovery-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The binary with moto's credentials and region, AWS at `endpoint`, nothing else inherited.
fn discovery(moto: &MotoServer, endpoint: &str, args: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command.arg("discovery").args(args).env_clear();
    for (key, value) in moto.aws_env() {
        command.env(key, value);
    }
    command.env("AWS_ENDPOINT_URL", endpoint);
    command
}

/// Runs a command to its end, failing the test if it takes longer than `limit`.
fn run_within(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "still running after {limit:?}; it printed:\n{}\n{}",
                text(&output.stdout),
                text(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn once(mut command: Command) -> Command {
    command.arg("--once");
    command
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The sources of `aws_setup.py cluster`: the namespaces in SSM and the ECS cluster.
fn cluster_sources(output: &Path) -> Vec<String> {
    [
        "--cloudmap.namespaces-parameter",
        "ECS-ServiceDiscovery-Namespaces",
        "--ecs.cluster",
        "prod",
        "--output.file",
        output.to_str().expect("utf-8 path"),
        "--aws.timeout",
        "2s",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn args(list: &[String]) -> Vec<&str> {
    list.iter().map(String::as_str).collect()
}

/// The number of targets in a file_sd document.
fn target_count(json: &str) -> usize {
    let groups: Vec<serde_json::Value> = serde_json::from_str(json).expect("file_sd JSON");
    groups
        .iter()
        .map(|g| g["targets"].as_array().expect("targets").len())
        .sum()
}

/// A running `ecs-prom discovery` serving on a free loopback port, stopped on drop.
struct Serving {
    child: Child,
    url: String,
}

impl Serving {
    fn start(mut command: Command) -> Serving {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = command
            .args(["--web.listen-address", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "discovery did not listen within 10s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Serving {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    fn get(&self, path: &str) -> (u16, String) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(test_support::http_get(&format!("{}{path}", self.url)))
    }

    /// The value of an unlabelled self-metric.
    fn metric(&self, name: &str) -> f64 {
        let (_, body) = self.get("/metrics");
        body.lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{body}"))
            .trim()
            .parse()
            .expect("a number")
    }

    /// Waits until `metric` is at least `at_least`.
    fn wait_for(&self, name: &str, at_least: f64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.metric(name) < at_least {
            assert!(Instant::now() < deadline, "{name} stayed below {at_least}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_restart_during_an_aws_outage_keeps_every_target() {
    let moto = MotoServer::start();
    moto.run_python(&setup_script(), &["cluster"]);
    let dir = temp_dir("restart");
    let file = dir.join("ecs-services.json");
    let sources = cluster_sources(&file);

    // A good refresh writes the targets and, beside them, the state.
    let output = run_within(
        once(discovery(&moto, &moto.url, &args(&sources))),
        Duration::from_secs(60),
    );
    assert!(output.status.success(), "{}", text(&output.stdout));
    let published = std::fs::read_to_string(&file).expect("file_sd written");
    let count = target_count(&published);
    // aws_setup.py's cluster: Cloud Map web-task-0 and -1 (application and exporter), api-task-0
    // (web-task-2 is unhealthy), the two labelled web tasks and the host-mode node task.
    assert_eq!(count, 8, "{published}");
    assert!(dir.join("ecs-services.json.state").exists());

    // AWS down: --once fails, says so, and leaves the file as it was.
    let output = run_within(
        once(discovery(&moto, AWS_DOWN, &args(&sources))),
        Duration::from_secs(60),
    );
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("ecs prod: FAILED"), "{stdout}");
    assert!(stdout.contains("cloudmap ecs-services: FAILED"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), published);

    // A restarted server serves the targets it last published, before and after its first
    // refresh fails; it is not ready.
    let mut command = discovery(&moto, AWS_DOWN, &args(&sources));
    command.args(["--refresh.interval", "1s"]);
    let serving = Serving::start(command);
    let (status, body) = serving.get("/prometheus-targets");
    assert_eq!((status, target_count(&body)), (200, count), "{body}");
    serving.wait_for("ecs_prom_discovery_refreshes_total", 2.0);
    let (status, body) = serving.get("/prometheus-targets");
    assert_eq!((status, body.as_str()), (200, published.as_str()));
    assert_eq!(serving.get("/-/ready").0, 503);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), published);
    drop(serving);

    // Without the state file (an upgrade from a version that kept none) nothing is known:
    // the file stays as it is and http_sd says 503, so Prometheus keeps its list too.
    std::fs::remove_file(dir.join("ecs-services.json.state")).expect("remove state");
    let output = run_within(
        once(discovery(&moto, AWS_DOWN, &args(&sources))),
        Duration::from_secs(60),
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), published);
    let mut command = discovery(&moto, AWS_DOWN, &args(&sources));
    command.args(["--refresh.interval", "1s"]);
    let serving = Serving::start(command);
    serving.wait_for("ecs_prom_discovery_refreshes_total", 1.0);
    assert_eq!(serving.get("/prometheus-targets").0, 503);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), published);
    drop(serving);

    // AWS back: the file is the same targets again, and the state file is back.
    let output = run_within(
        once(discovery(&moto, &moto.url, &args(&sources))),
        Duration::from_secs(60),
    );
    assert!(output.status.success(), "{}", text(&output.stdout));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), published);
    assert!(dir.join("ecs-services.json.state").exists());
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_symlink_planted_where_the_temporary_file_goes_is_not_followed() {
    let moto = MotoServer::start();
    moto.run_python(&setup_script(), &["cluster"]);
    let dir = temp_dir("symlink");
    let file = dir.join("ecs-services.json");
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").expect("victim");
    // Earlier versions wrote `.ecs-services.json.tmp-<pid>`; `exec` keeps the shell's pid,
    // so the link is planted at exactly the name the binary would have used.
    let mut command = Command::new("sh");
    command
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .arg("-c")
        .arg(format!(
            "ln -s {victim} {dir}/.ecs-services.json.tmp-$$ && exec {BINARY} discovery --once \
         --ecs.cluster prod --output.file {file}",
            victim = victim.display(),
            dir = dir.display(),
            file = file.display()
        ));
    command.envs(moto.aws_env());
    let output = run_within(command, Duration::from_secs(60));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let metadata = std::fs::symlink_metadata(&file).expect("file_sd written");
    assert!(metadata.file_type().is_file());
    assert!(target_count(&std::fs::read_to_string(&file).unwrap()) > 0);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn an_output_that_cannot_be_written_is_counted_and_not_ready() {
    let moto = MotoServer::start();
    moto.run_python(&setup_script(), &["cluster"]);
    let dir = temp_dir("unwritable");
    let file = dir.join("missing").join("ecs-services.json");
    let file_arg = file.to_str().unwrap();

    let output = run_within(
        discovery(
            &moto,
            &moto.url,
            &["--once", "--ecs.cluster", "prod", "--output.file", file_arg],
        ),
        Duration::from_secs(60),
    );
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("file_sd: FAILED"), "{stdout}");
    assert!(stdout.contains("No such file or directory"), "{stdout}");

    let mut command = discovery(
        &moto,
        &moto.url,
        &["--ecs.cluster", "prod", "--output.file", file_arg],
    );
    command.args(["--refresh.interval", "1s"]);
    let serving = Serving::start(command);
    serving.wait_for("ecs_prom_discovery_file_write_failures_total", 1.0);
    let (status, body) = serving.get("/-/ready");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("missing"), "{body}");
    // The targets themselves are known and served.
    let (status, body) = serving.get("/prometheus-targets");
    assert_eq!(status, 200);
    assert!(target_count(&body) > 0);

    // Once the directory exists the file is written and discovery becomes ready.
    std::fs::create_dir_all(file.parent().unwrap()).expect("create the directory");
    let deadline = Instant::now() + Duration::from_secs(30);
    while serving.get("/-/ready").0 != 200 {
        assert!(Instant::now() < deadline, "never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(file.exists());
    drop(serving);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[test]
fn a_secure_string_configuration_is_readable_by_its_owner_only() {
    let moto = MotoServer::start();
    let dir = temp_dir("secure");
    let source = dir.join("source.yaml");
    std::fs::write(
        &source,
        "scrape_configs:\n  - job_name: x\n    basic_auth: {username: u, password: secret}\n",
    )
    .expect("source");
    moto.run_python(
        &setup_script(),
        &["put-secure", "prometheus-config", source.to_str().unwrap()],
    );
    let config = dir.join("prometheus.yaml");
    let config_arg = config.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "--once",
            "--ecs.cluster",
            "prod",
            "--prometheus.config-parameter",
            "prometheus-config",
            "--prometheus.config-file",
            config_arg,
            "--prometheus.url",
            "",
        ];
        args.extend_from_slice(extra);
        run_within(discovery(&moto, &moto.url, &args), Duration::from_secs(60))
    };
    let mode = || std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;

    // moto has no cluster "prod" here, so the run fails; the configuration is still written.
    run(&[]);
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        std::fs::read_to_string(&source).unwrap()
    );
    assert_eq!(mode(), 0o600);
    // For a Prometheus running as another user of the same group; the content is unchanged,
    // the mode alone makes it rewrite the file.
    run(&["--prometheus.config-file-mode", "0640"]);
    assert_eq!(mode(), 0o640);
    // A plain String parameter holds nothing secret by its owner's choice: 0644 as before.
    moto.run_python(
        &setup_script(),
        &["put", "prometheus-config", source.to_str().unwrap()],
    );
    run(&[]);
    assert_eq!(mode(), 0o644);
    std::fs::remove_dir_all(&dir).expect("clean up");
}

/// A stand-in for the ECS API on loopback: ListTasks of cluster `loop` always gives the same
/// next-page token, of cluster `stuck` never answers, of anything else answers an empty list.
fn misbehaving_ecs() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let Some(body) = test_support::read_http_request(&stream).map(|r| r.body) else {
                    return;
                };
                let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let answer = match request["cluster"].as_str() {
                    Some("loop") => r#"{"taskArns":[],"nextToken":"again"}"#,
                    Some("stuck") => {
                        std::thread::sleep(Duration::from_secs(60));
                        return;
                    }
                    _ => r#"{"taskArns":[]}"#,
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            });
        }
    });
    format!("http://{address}")
}

#[test]
fn endless_pagination_ends_and_a_stuck_source_does_not_hold_up_the_others() {
    let ecs = misbehaving_ecs();
    let started = Instant::now();
    let mut command = Command::new(BINARY);
    command
        .args([
            "discovery",
            "--once",
            "--ecs.cluster",
            "loop",
            "--ecs.cluster",
            "stuck",
            "--ecs.cluster",
            "quiet",
            "--refresh.timeout",
            "3s",
            "--aws.timeout",
            "30s",
        ])
        .env_clear()
        .env("AWS_ENDPOINT_URL", &ecs)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1");
    let output = run_within(command, Duration::from_secs(20));
    let elapsed = started.elapsed();
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("ecs loop: FAILED") && stdout.contains("pagination does not end"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ecs stuck: FAILED")
            && stdout.contains("not done within the refresh deadline of 3s"),
        "{stdout}"
    );
    assert!(stdout.contains("ecs quiet: 0 targets"), "{stdout}");
    // The deadline, not the 30 s attempt timeout, ended the refresh.
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
}

#[test]
fn configuration_errors_read_as_one_sentence() {
    for (args, expected) in [
        (
            vec![],
            "nothing to discover: give --cloudmap.namespace, --cloudmap.namespaces-parameter or --ecs.cluster (or the seed's",
        ),
        (
            vec![
                "--cloudmap.namespace",
                "a",
                "--cloudmap.namespaces-parameter",
                "p",
            ],
            "either by name (--cloudmap.namespace) or through an SSM parameter (--cloudmap.namespaces-parameter \"p\"), not both",
        ),
    ] {
        let output = Command::new(BINARY)
            .arg("discovery")
            .args(&args)
            .env_clear()
            .output()
            .expect("runs");
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("  "), "a run of spaces in: {stderr}");
    }
}

/// A stand-in for the ECS API whose clock is an hour ahead of this host's, as AWS is to a host
/// whose clock is an hour behind: a request signed more than five minutes away from its time
/// is refused as AWS refuses it (400 `InvalidSignatureException` "Signature expired", with
/// its `Date`); any other ListTasks gets an empty list. Counts both.
fn ecs_an_hour_ahead(rejected: Arc<AtomicUsize>, answered: Arc<AtomicUsize>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (rejected, answered) = (rejected.clone(), answered.clone());
            std::thread::spawn(move || {
                let Some(request) = test_support::read_http_request(&stream) else {
                    return;
                };
                let aws_now = timestamps::now() as i64 + 3600;
                let signed_at = request
                    .header("x-amz-date")
                    .and_then(amz_date_seconds)
                    .unwrap_or(0);
                let (status, body) = if (signed_at - aws_now).abs() > 300 {
                    rejected.fetch_add(1, Ordering::SeqCst);
                    (
                        "400 Bad Request",
                        r#"{"__type":"InvalidSignatureException","message":"Signature expired: 20261130T030000Z is now earlier than 20261130T035500Z (20261130T040000Z - 5 min.)"}"#,
                    )
                } else {
                    answered.fetch_add(1, Ordering::SeqCst);
                    ("200 OK", r#"{"taskArns":[]}"#)
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/x-amz-json-1.1\r\n\
                     date: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    timestamps::format_http_date(aws_now as u64),
                    body.len()
                );
            });
        }
    });
    format!("http://{address}")
}

/// Seconds since the epoch of an `x-amz-date` (`20261130T040000Z`).
fn amz_date_seconds(text: &str) -> Option<i64> {
    let rfc3339 = format!(
        "{}-{}-{}T{}:{}:{}Z",
        text.get(0..4)?,
        text.get(4..6)?,
        text.get(6..8)?,
        text.get(9..11)?,
        text.get(11..13)?,
        text.get(13..15)?
    );
    timestamps::parse_rfc3339(&rfc3339).map(|s| s as i64)
}

#[test]
fn a_host_an_hour_behind_aws_is_answered_after_one_rejected_request() {
    let (rejected, answered) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let ecs = ecs_an_hour_ahead(rejected.clone(), answered.clone());
    let mut command = Command::new(BINARY);
    command
        .args([
            "discovery",
            "--ecs.cluster",
            "prod",
            "--refresh.interval",
            "1s",
        ])
        .env_clear()
        .env("AWS_ENDPOINT_URL", &ecs)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1");
    let serving = Serving::start(command);
    serving.wait_for("ecs_prom_discovery_refreshes_total", 3.0);
    assert_eq!(
        rejected.load(Ordering::SeqCst),
        1,
        "only the first request is refused"
    );
    assert!(answered.load(Ordering::SeqCst) >= 3);
    let offset = serving.metric("ecs_prom_discovery_aws_clock_offset_seconds");
    assert!((3598.0..=3602.0).contains(&offset), "offset {offset}");
    assert_eq!(serving.get("/-/ready").0, 200);
}

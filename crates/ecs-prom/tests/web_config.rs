//! The exporter behind `--web.config.file` as an ecs_exporter user runs it: TLS with a
//! required client certificate and basic auth. Debian's Prometheus scrapes it with the right
//! certificate and password (`up` is 1 and the metrics arrive), and fails with a wrong password
//! or without a client certificate (`up` is 0). Certificates are made by the test (`openssl`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../../web/src/test_pki.rs"]
mod test_pki;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use test_pki::Pki;
use test_support::http_get;
use test_support::{KillOnDrop, free_port};

const BINARY: &str = env!("CARGO_BIN_EXE_ecs-prom");

/// bcrypt (cost 4, cheap for a test) of "scrape-me".
const PASSWORD_HASH: &str = "$2y$04$XULxJV/wZ0yrbETxbAzxWOT4Xl84ToZjPtO8ad6DL3fRQx6W94gaa";

/// Starts `ecs-prom <args>` on a loopback port and returns it with the address its
/// "listening" log line names.
fn start(args: &[&str]) -> (KillOnDrop, SocketAddr) {
    let mut child = Command::new(BINARY)
        .args(args)
        .args([
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.format",
            "json",
        ])
        .env_clear()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ecs-prom starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if line.contains("listening") {
                let _ = tx.send(line);
            }
        }
    });
    let child = KillOnDrop(child);
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a listening log line");
    let start = line.find("127.0.0.1:").expect("a loopback address");
    let address: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
        .collect();
    (child, address.parse().unwrap())
}

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_exporter_over_tls_with_a_client_certificate_and_basic_auth() {
    let pki = Pki::standard("exporter-tls");
    let web_config = pki.write(
        "web.yml",
        &format!(
            "tls_server_config:
  cert_file: server.pem
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.pem
basic_auth_users:
  prometheus: {PASSWORD_HASH}
"
        ),
    );

    // The simulated metadata endpoint, and the exporter reading its first task.
    let (_simulator, simulator) = start(&["simulate", "--tasks", "1"]);
    let (status, index) = http_get(&format!("http://{simulator}/")).await;
    assert_eq!(status, 200, "{index}");
    let prefix = format!("http://{simulator}/v4/");
    let from = index.find(&prefix).expect("a task URI in the index");
    let to = index[from..].find('"').unwrap() + from;
    let metadata_uri = &index[from..to];
    let (_exporter, exporter) = start(&[
        "exporter",
        "--ecs.metadata-uri",
        metadata_uri,
        "--web.config.file",
        web_config.to_str().unwrap(),
    ]);

    // Plain HTTP is refused with Go's words, so the exporter really is on TLS.
    let mut plain = std::net::TcpStream::connect(exporter).unwrap();
    std::io::Write::write_all(&mut plain, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut plain, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 400 Bad Request"), "{answer}");

    let path = |name: &str| pki.path(name).display().to_string();
    let job = |name: &str, password: &str, client_cert: bool| {
        let cert = if client_cert {
            format!(
                "\n    cert_file: {}\n    key_file: {}",
                path("client.pem"),
                path("client.key")
            )
        } else {
            String::new()
        };
        format!(
            "- job_name: {name}
  scheme: https
  basic_auth:
    username: prometheus
    password: {password}
  tls_config:
    ca_file: {}{cert}
  static_configs:
  - targets: ['{exporter}']
",
            path("ca.pem")
        )
    };
    let prometheus_config = pki.write(
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}{}{}",
            job("ecs", "scrape-me", true),
            job("wrong-password", "guess", true),
            job("no-client-cert", "scrape-me", false),
        ),
    );
    let prometheus_address = format!("127.0.0.1:{}", free_port());
    let _prometheus = KillOnDrop(
        Command::new("prometheus")
            .arg(format!("--config.file={}", prometheus_config.display()))
            .arg(format!("--storage.tsdb.path={}", path("data")))
            .arg(format!("--web.listen-address={prometheus_address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(pki.path("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus is installed (Debian package prometheus)"),
    );

    let query = |q: &str| {
        format!(
            "http://{prometheus_address}/api/v1/query?query={}",
            q.replace(' ', "%20")
        )
    };
    let up_query = query("up");
    let up = wait_for("a scrape of every job", async || {
        std::net::TcpStream::connect(&prometheus_address).ok()?;
        let (status, body) = http_get(&up_query).await;
        if status != 200 {
            return None;
        }
        let answer: Value = serde_json::from_str(&body).ok()?;
        let series = answer["data"]["result"].as_array()?.clone();
        let by_job: std::collections::BTreeMap<String, String> = series
            .iter()
            .map(|s| {
                (
                    s["metric"]["job"].as_str().unwrap_or("").to_owned(),
                    s["value"][1].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        (by_job.len() == 3 && by_job["ecs"] == "1").then_some(by_job)
    })
    .await;
    let log = std::fs::read_to_string(pki.path("prometheus.log")).unwrap_or_default();
    assert_eq!(up["ecs"], "1", "{log}");
    assert_eq!(up["wrong-password"], "0", "{up:?}");
    assert_eq!(up["no-client-cert"], "0", "{up:?}");

    // The exporter's metrics arrived, not just an answer.
    let samples = query("scrape_samples_scraped{job=\"ecs\"}");
    let (_, body) = http_get(&samples).await;
    let answer: Value = serde_json::from_str(&body).unwrap();
    let scraped: f64 = answer["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(scraped > 10.0, "{body}");
    let (_, body) = http_get(&query("count(ecs_task_metadata_info{job=\"ecs\"})")).await;
    assert!(body.contains("\"result\":[{"), "{body}");

    // Prometheus says why the other two failed.
    let (_, targets) = http_get(&format!("http://{prometheus_address}/api/v1/targets")).await;
    let targets: Value = serde_json::from_str(&targets).unwrap();
    for target in targets["data"]["activeTargets"].as_array().unwrap() {
        let job = target["labels"]["job"].as_str().unwrap();
        let error = target["lastError"].as_str().unwrap_or("");
        match job {
            "wrong-password" => assert!(error.contains("401"), "{job}: {error}"),
            "no-client-cert" => assert!(!error.is_empty(), "{job}: no error"),
            _ => assert_eq!(error, "", "{job}"),
        }
    }
}

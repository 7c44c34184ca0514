//! The real Prometheus consuming discovery: two demo applications registered in Cloud Map
//! (moto_server) are found, written to file_sd and served over http_sd; Prometheus, whose
//! configuration discovery itself writes from SSM, scrapes both through both mechanisms
//! (`up == 1`), and reloads when the configuration in SSM changes.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use aws_api::{AwsClient, AwsConfig, ClientOptions};
use discovery::Namespaces;
use discovery::{Config, PrometheusConfig};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::{KillOnDrop, free_port};
use test_support::{MotoServer, http_get};
use tokio::net::TcpListener;

fn prometheus_config(file_sd: &Path, http_sd: &str, marker: &str) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  external_labels:\n    config: {marker}\n\
         scrape_configs:\n\
         - job_name: file\n  file_sd_configs:\n  - files: ['{}']\n    refresh_interval: 1s\n\
         - job_name: http\n  http_sd_configs:\n  - url: '{http_sd}'\n    refresh_interval: 1s\n",
        file_sd.display()
    )
}

async fn wait_for<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_what_discovery_finds_through_file_sd_and_http_sd() {
    // Two demo applications on loopback.
    let mut app_ports = Vec::new();
    for _ in 0..2 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        app_ports.push(listener.local_addr().unwrap().port());
        let config = demo_app::Config {
            load_requests_per_second: 0.0,
            ..demo_app::Config::default()
        };
        tokio::spawn(demo_app::run(config, listener, std::future::pending()));
    }
    let moto = MotoServer::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aws_setup.py");
    let (p1, p2) = (app_ports[0].to_string(), app_ports[1].to_string());
    moto.run_python(&script, &["loopback", &p1, &p2]);

    let dir = std::env::temp_dir().join(format!("discovery-prometheus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let targets_file = dir.join("ecs-services.json");
    let prometheus_file = dir.join("prometheus.yaml");
    let discovery_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let discovery_url = format!("http://{}", discovery_listener.local_addr().unwrap());
    let http_sd = format!("{discovery_url}/prometheus-targets");
    let prometheus_address = format!("127.0.0.1:{}", free_port());
    let prometheus_url = format!("http://{prometheus_address}");
    let first_config = dir.join("first.yaml");
    std::fs::write(
        &first_config,
        prometheus_config(&targets_file, &http_sd, "first"),
    )
    .unwrap();
    moto.run_python(
        &script,
        &[
            "put",
            "ECS-Prometheus-Configuration",
            first_config.to_str().unwrap(),
        ],
    );

    let env: HashMap<&str, String> = moto.aws_env().into_iter().collect();
    let client = Arc::new(AwsClient::new(
        AwsConfig::from_env(|key| env.get(key).cloned()),
        "us-east-1".into(),
        ClientOptions::default(),
    ));
    let config = Config {
        namespaces: Namespaces::Parameter("ECS-ServiceDiscovery-Namespaces".into()),
        clusters: Vec::new(),
        output_file: Some(targets_file.clone()),
        state_file: None,
        refresh_interval: Duration::from_secs(1),
        refresh_timeout: Duration::from_secs(60),
        container_instance_ttl: Duration::from_secs(600),
        prometheus_config: Some(PrometheusConfig {
            parameter: "ECS-Prometheus-Configuration".into(),
            file: prometheus_file.clone(),
            reload_url: Some(prometheus_url.clone()),
            file_mode: None,
        }),
    };
    tokio::spawn(discovery::run(
        config,
        client,
        discovery_listener,
        std::future::pending(),
    ));

    // Discovery writes Prometheus' configuration before Prometheus starts, as in the seed's task.
    wait_for("the Prometheus configuration file", async || {
        prometheus_file.exists().then_some(())
    })
    .await;
    let body = wait_for("the first refresh on http_sd", async || {
        let (status, body) = http_get(&http_sd).await;
        (status == 200).then_some(body)
    })
    .await;
    let served: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(served.len(), 2);
    let _prometheus = KillOnDrop(
        Command::new("prometheus")
            .arg(format!("--config.file={}", prometheus_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={prometheus_address}"))
            .arg("--web.enable-lifecycle")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus is installed (Debian package prometheus)"),
    );

    // Both applications are up through both jobs.
    let expected: BTreeSet<(String, String)> = ["file", "http"]
        .iter()
        .flat_map(|job| {
            app_ports
                .iter()
                .map(move |port| (job.to_string(), format!("127.0.0.1:{port}")))
        })
        .collect();
    let query = format!("{prometheus_url}/api/v1/query?query=up");
    let up = wait_for("up == 1 for every target", async || {
        std::net::TcpStream::connect(&prometheus_address).ok()?;
        let (status, body) = http_get(&query).await;
        if status != 200 {
            return None;
        }
        let answer: Value = serde_json::from_str(&body).ok()?;
        let series = answer["data"]["result"].as_array()?.clone();
        let all_up = series.iter().all(|s| s["value"][1] == "1");
        (series.len() == 4 && all_up).then_some(series)
    })
    .await;
    let found: BTreeSet<(String, String)> = up
        .iter()
        .map(|s| {
            (
                s["metric"]["job"].as_str().unwrap().to_owned(),
                s["metric"]["instance"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(found, expected);
    for series in &up {
        assert_eq!(series["metric"]["namespace"], "demo");
        assert_eq!(series["metric"]["service"], "demo-app");
        assert_eq!(series["metric"]["cluster"], "local");
    }
    // The applications' own metrics arrive too.
    let (_, body) = http_get(&format!(
        "{prometheus_url}/api/v1/query?query=count(http_requests_total)"
    ))
    .await;
    assert!(body.contains("\"result\":[{"), "{body}");

    // A new configuration in SSM is written and Prometheus reloads it.
    let second_config = dir.join("second.yaml");
    std::fs::write(
        &second_config,
        prometheus_config(&targets_file, &http_sd, "second"),
    )
    .unwrap();
    moto.run_python(
        &script,
        &[
            "put",
            "ECS-Prometheus-Configuration",
            second_config.to_str().unwrap(),
        ],
    );
    wait_for("Prometheus to load the new configuration", async || {
        let (_, body) = http_get(&format!("{prometheus_url}/api/v1/status/config")).await;
        body.contains("config: second").then_some(())
    })
    .await;
    let (_, metrics) = http_get(&format!("{discovery_url}/metrics")).await;
    assert!(
        metrics.contains("ecs_prom_discovery_prometheus_reloads_total{outcome=\"success\"} 2"),
        "{metrics}"
    );
    assert_eq!(http_get(&format!("{discovery_url}/-/ready")).await.0, 200);
    std::fs::remove_dir_all(&dir).unwrap();
}

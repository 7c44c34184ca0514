//! The real Prometheus (Debian's 2.42) and this crate give every target the same labels and
//! drop the same ones: the fixture's jobs share their targets and each applies its own
//! relabel_configs, and Prometheus' targets API shows each kept target's labels after
//! relabeling and how many it dropped. (Prometheus 2.42 shows some targets' `discoveredLabels`
//! partly relabeled, its builder writing over them, so the inputs are rebuilt from the fixture
//! as Prometheus builds them.)

use relabel::{Labels, RelabelConfig, process};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use test_support::http_get;
use test_support::{KillOnDrop, free_port};

/// What this test reads of the fixture: each job's relabel_configs, parsed by this crate.
#[derive(Deserialize)]
struct PrometheusConfig {
    scrape_configs: Vec<ScrapeConfig>,
}

#[derive(Deserialize)]
struct ScrapeConfig {
    job_name: String,
    static_configs: Vec<StaticConfig>,
    #[serde(default)]
    relabel_configs: Vec<RelabelConfig>,
}

#[derive(Deserialize)]
struct StaticConfig {
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// A target's labels before relabeling, as Prometheus 2.42 builds them from a static target
/// and the fixture's globals.
fn discovered(job: &str, address: &str, group: &BTreeMap<String, String>) -> Labels {
    let mut labels: Vec<(String, String)> = group.clone().into_iter().collect();
    for (name, value) in [
        ("__address__", address),
        ("job", job),
        ("__scheme__", "http"),
        ("__metrics_path__", "/metrics"),
        ("__scrape_interval__", "1h"),
        ("__scrape_timeout__", "10s"),
    ] {
        labels.push((name.to_owned(), value.to_owned()));
    }
    Labels::from_pairs(labels)
}

fn labels_of(value: &Value) -> Labels {
    value
        .as_object()
        .expect("a label object")
        .iter()
        .map(|(name, value)| (name.clone(), value.as_str().expect("a string").to_owned()))
        .collect()
}

/// What Prometheus does after relabeling a target it keeps, as far as the API shows it:
/// `instance` defaults to the address (the fixture's addresses all have ports), and labels
/// starting with `__` are not shown.
fn shown(mut labels: Labels) -> Labels {
    if labels.get("instance").is_none() {
        let address = labels.get("__address__").expect("an address").to_owned();
        labels.set("instance", &address);
    }
    labels.retain(|name, _| !name.starts_with("__"));
    labels
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_labels_and_same_drops_as_prometheus() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/differential.yaml");
    let text = std::fs::read_to_string(&fixture).unwrap();
    let config: PrometheusConfig = serde_saphyr::from_str(&text).unwrap();
    let jobs = config.scrape_configs;

    let dir = std::env::temp_dir().join(format!("relabel-prometheus-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let address = format!("127.0.0.1:{}", free_port());
    let log = dir.join("prometheus.log");
    let _prometheus = KillOnDrop(
        Command::new("prometheus")
            .arg(format!("--config.file={}", fixture.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("prometheus is installed (Debian package prometheus)"),
    );

    // Prometheus applies discovered targets a few seconds after it starts; wait until every
    // target of every job is either active or dropped.
    let expected: usize = jobs
        .iter()
        .flat_map(|job| &job.static_configs)
        .map(|group| group.targets.len())
        .sum();
    let deadline = Instant::now() + Duration::from_secs(25);
    let data = loop {
        if std::net::TcpStream::connect(&address).is_ok() {
            let (status, body) =
                http_get(&format!("http://{address}/api/v1/targets?state=any")).await;
            if status == 200 {
                let answer: Value = serde_json::from_str(&body).unwrap();
                let data = answer["data"].clone();
                let seen = data["activeTargets"].as_array().unwrap().len()
                    + data["droppedTargets"].as_array().unwrap().len();
                if seen >= expected {
                    break data;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not show all {expected} targets in time; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // Prometheus' kept targets by job and address (no job here rewrites `instance`).
    let mut active: BTreeMap<(String, String), Labels> = BTreeMap::new();
    for target in data["activeTargets"].as_array().unwrap() {
        let labels = labels_of(&target["labels"]);
        let pool = target["scrapePool"].as_str().unwrap().to_owned();
        let instance = labels.get("instance").unwrap().to_owned();
        active.insert((pool, instance), labels);
    }
    let dropped_by_prometheus = data["droppedTargets"].as_array().unwrap().len();

    let mut mismatches = Vec::new();
    let mut dropped_here = 0;
    for job in &jobs {
        let (mut kept_in_job, mut dropped_in_job) = (0, 0);
        for group in &job.static_configs {
            for address in &group.targets {
                let input = discovered(&job.job_name, address, &group.labels);
                let mut ours = input.clone();
                let kept = process(&mut ours, &job.relabel_configs);
                let theirs = active.remove(&(job.job_name.clone(), address.clone()));
                match (kept, theirs) {
                    (true, Some(theirs)) => {
                        kept_in_job += 1;
                        if shown(ours.clone()) != theirs {
                            mismatches.push(format!(
                                "{}: {input:?}\n  Prometheus: {theirs:?}\n  here:       {:?}",
                                job.job_name,
                                shown(ours)
                            ));
                        }
                    }
                    (false, None) => dropped_in_job += 1,
                    (true, None) => mismatches.push(format!(
                        "{}: {input:?} dropped by Prometheus, kept here as {ours:?}",
                        job.job_name
                    )),
                    (false, Some(theirs)) => mismatches.push(format!(
                        "{}: {input:?} kept by Prometheus as {theirs:?}, dropped here",
                        job.job_name
                    )),
                }
            }
        }
        // The comparison is not between two empty results: every job keeps some targets,
        // and the filtering ones drop some.
        let filters = [
            "keep",
            "keep_case",
            "drop",
            "keep_empty",
            "keepequal",
            "dropequal",
            "hashmod",
            "chain",
        ];
        assert!(kept_in_job > 0, "job {} keeps nothing", job.job_name);
        assert_eq!(
            dropped_in_job > 0,
            filters.contains(&job.job_name.as_str()),
            "job {} drops {dropped_in_job}",
            job.job_name
        );
        dropped_here += dropped_in_job;
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    assert!(active.is_empty(), "targets only Prometheus has: {active:?}");
    assert_eq!(dropped_by_prometheus, dropped_here);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Discovery against a real `moto_server`: the resources are created with boto3
//! (`aws_setup.py`), and the tests assert the exact targets and labels, the Prometheus
//! configuration written from SSM, and that a warm refresh calls nothing but ListTasks.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use aws_api::{AwsClient, AwsConfig, ClientOptions};
use discovery::Namespaces;
use discovery::{Config, Pipeline, PrometheusConfig};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use test_support::MotoServer;

fn setup_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aws_setup.py")
}

fn client_for(moto: &MotoServer) -> Arc<AwsClient> {
    let env: HashMap<&str, String> = moto.aws_env().into_iter().collect();
    let config = AwsConfig::from_env(|key| env.get(key).cloned());
    Arc::new(AwsClient::new(
        config,
        "us-east-1".into(),
        ClientOptions::default(),
    ))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("discovery-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn config(dir: &Path) -> Config {
    Config {
        namespaces: Namespaces::Parameter("ECS-ServiceDiscovery-Namespaces".into()),
        clusters: vec!["prod".into()],
        output_file: Some(dir.join("ecs-services.json")),
        state_file: None,
        refresh_interval: Duration::from_secs(1),
        refresh_timeout: Duration::from_secs(60),
        container_instance_ttl: Duration::from_secs(600),
        prometheus_config: Some(PrometheusConfig {
            parameter: "ECS-Prometheus-Configuration".into(),
            file: dir.join("prometheus.yaml"),
            reload_url: None,
            file_mode: None,
        }),
    }
}

/// Target address -> labels other than `__meta_*`.
fn plain_labels(targets: &[file_sd::TargetGroup]) -> BTreeMap<String, BTreeMap<String, String>> {
    targets
        .iter()
        .map(|t| {
            assert_eq!(t.targets.len(), 1);
            let labels = t
                .labels
                .iter()
                .filter(|(k, _)| !k.starts_with("__meta_"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (t.targets[0].clone(), labels)
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_the_exact_targets_of_cloud_map_and_ecs() {
    let moto = MotoServer::start();
    let setup: Value =
        serde_json::from_str(&moto.run_python(&setup_script(), &["cluster"])).unwrap();
    let dir = temp_dir("exact");
    let config = config(&dir);
    let (snapshot, ok) = discovery::once(&config, client_for(&moto)).await;
    assert!(ok, "refresh failed: {:?}", snapshot.errors());

    // What aws_setup.py registered, written out by hand.
    let mut expected = BTreeMap::new();
    for i in 0..2 {
        let ip = format!("10.0.1.{}", 10 + i);
        let base = [
            ("namespace", "ecs-services"),
            ("service", "web"),
            ("cluster", "prod"),
            ("task_family", "web"),
            ("availability_zone", "us-east-1a"),
        ];
        let id = format!("web-task-{i}");
        let mut app = labels(&base);
        app.insert("task_id".into(), id.clone());
        app.insert("__metrics_path__".into(), "/app/metrics".into());
        expected.insert(format!("{ip}:3000"), app);
        let mut exporter = labels(&base);
        exporter.insert("task_id".into(), id);
        expected.insert(format!("{ip}:9779"), exporter);
    }
    // web-task-2 is unhealthy; the "not-listed" namespace is not in the parameter.
    expected.insert(
        "10.0.1.20:8080".into(),
        labels(&[
            ("namespace", "apps"),
            ("service", "api"),
            ("task_id", "api-task-0"),
        ]),
    );
    for task in setup["web_tasks"].as_array().unwrap() {
        let arn = task["arn"].as_str().unwrap();
        expected.insert(
            format!("{}:3000", task["address"].as_str().unwrap()),
            labels(&[
                ("cluster", "prod"),
                ("service", "web"),
                ("task_family", "web"),
                ("task_revision", "1"),
                ("task_id", task_id(arn)),
                ("container_name", "app"),
                ("launch_type", "FARGATE"),
                ("job", "shop"),
                ("__metrics_path__", "/app/metrics"),
            ]),
        );
    }
    for task in setup["node_tasks"].as_array().unwrap() {
        let arn = task["arn"].as_str().unwrap();
        expected.insert(
            format!("{}:9100", setup["instance_address"].as_str().unwrap()),
            labels(&[
                ("cluster", "prod"),
                ("service", "node"),
                ("task_family", "node"),
                ("task_revision", "1"),
                ("task_id", task_id(arn)),
                ("container_name", "node-exporter"),
                ("launch_type", "EC2"),
            ]),
        );
    }
    assert_eq!(plain_labels(&snapshot.targets), expected);

    // Relabelling material.
    let by_target: HashMap<&str, &BTreeMap<String, String>> = snapshot
        .targets
        .iter()
        .map(|t| (t.targets[0].as_str(), &t.labels))
        .collect();
    let web_ip = setup["web_tasks"][0]["address"].as_str().unwrap();
    let web = by_target[format!("{web_ip}:3000").as_str()];
    assert_eq!(web["__meta_ecs_task_tag_team"], "shop");
    assert_eq!(
        web["__meta_ecs_docker_label_PROMETHEUS_EXPORTER_JOB_NAME"],
        "shop"
    );
    assert_eq!(web["__meta_ecs_network_mode"], "awsvpc");
    let exporter = by_target["10.0.1.10:9779"];
    assert_eq!(exporter["__meta_cloudmap_endpoint"], "exporter");
    assert_eq!(
        exporter["__meta_cloudmap_service_tag_ECS_METRICS_PORT"],
        "9779"
    );
    assert_eq!(
        exporter["__meta_cloudmap_instance_attribute_AWS_INSTANCE_IPV4"],
        "10.0.1.10"
    );

    // The file holds the same list, and the Prometheus configuration came from SSM.
    let file: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("ecs-services.json")).unwrap())
            .unwrap();
    assert_eq!(file.len(), expected.len());
    assert_eq!(
        std::fs::read_to_string(dir.join("prometheus.yaml")).unwrap(),
        "global:\n  scrape_interval: 15s\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn ecs_calls(client: &AwsClient) -> BTreeMap<&'static str, u64> {
    let mut calls = BTreeMap::new();
    for ((service, operation, _), count) in client.counts().snapshot() {
        if matches!(service, aws_api::Service::Ecs | aws_api::Service::Ec2) {
            *calls.entry(operation).or_default() += count;
        }
    }
    calls
}

fn delta(
    before: &BTreeMap<&'static str, u64>,
    after: &BTreeMap<&'static str, u64>,
) -> BTreeMap<&'static str, u64> {
    after
        .iter()
        .map(|(op, n)| (*op, n - before.get(op).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_refresh_only_lists_tasks_and_new_tasks_are_described_once() {
    let moto = MotoServer::start();
    moto.run_python(&setup_script(), &["cluster"]);
    let dir = temp_dir("warm");
    let mut config = config(&dir);
    config.namespaces = Namespaces::None;
    config.prometheus_config = None;
    let client = client_for(&moto);
    let mut pipeline = Pipeline::new(&config, client.clone());

    let (first, ok) = pipeline.refresh().await;
    assert!(ok, "{:?}", first.errors());
    let cold = ecs_calls(&client);
    // 4 tasks: one page of ListTasks, one DescribeTasks, 3 task definitions, one container
    // instance and its EC2 instance.
    assert_eq!(
        cold,
        BTreeMap::from([
            ("DescribeContainerInstances", 1),
            ("DescribeInstances", 1),
            ("DescribeTaskDefinition", 3),
            ("DescribeTasks", 1),
            ("ListTasks", 1),
        ])
    );
    assert_eq!(first.targets.len(), 3);

    let (second, ok) = pipeline.refresh().await;
    assert!(ok);
    assert_eq!(second.targets, first.targets);
    let warm = ecs_calls(&client);
    assert_eq!(delta(&cold, &warm), BTreeMap::from([("ListTasks", 1)]));
    assert_eq!(second.cache.task_hits, 4);

    // A new task of a known task definition: described once, its definition from the cache.
    let new: Value = serde_json::from_str(&moto.run_python(&setup_script(), &["run-web"])).unwrap();
    let (third, ok) = pipeline.refresh().await;
    assert!(ok);
    assert_eq!(third.targets.len(), 4);
    let after_new = ecs_calls(&client);
    assert_eq!(
        delta(&warm, &after_new),
        BTreeMap::from([("DescribeTasks", 1), ("ListTasks", 1)])
    );

    // A stopped task's target goes, without any describe.
    moto.run_python(&setup_script(), &["stop", new["arn"].as_str().unwrap()]);
    let (fourth, ok) = pipeline.refresh().await;
    assert!(ok);
    assert_eq!(fourth.targets, first.targets);
    assert_eq!(
        delta(&after_new, &ecs_calls(&client)),
        BTreeMap::from([("ListTasks", 1)])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_map_lists_are_read_to_their_last_page() {
    let moto = MotoServer::start();
    moto.run_python(&setup_script(), &["many", "230"]);
    let client = client_for(&moto);
    let config = Config {
        namespaces: Namespaces::Fixed(vec!["many".into()]),
        clusters: Vec::new(),
        output_file: None,
        state_file: None,
        refresh_interval: Duration::from_secs(1),
        refresh_timeout: Duration::from_secs(60),
        container_instance_ttl: Duration::from_secs(600),
        prometheus_config: None,
    };
    let (snapshot, ok) = discovery::once(&config, client.clone()).await;
    assert!(ok, "{:?}", snapshot.errors());
    let addresses: std::collections::BTreeSet<String> = snapshot
        .targets
        .iter()
        .map(|t| t.targets[0].clone())
        .collect();
    let expected: std::collections::BTreeSet<String> = (0..230)
        .map(|i| format!("10.1.{}.{}:8080", i / 250, i % 250))
        .collect();
    assert_eq!(addresses, expected);
    // 230 instances in pages of 100.
    assert_eq!(client.counts().attempts("ListInstances"), 3);
    assert_eq!(client.counts().attempts("GetInstancesHealthStatus"), 3);
}

//! The simulator's promises: the JSON shapes of each platform, exact determinism for a seed,
//! counters that only grow, restarts and exits, faults, and an exporter that reads every
//! simulated task without a warning from promtool.

// Test helpers fail the test on any unexpected error.
#![allow(clippy::expect_used)]

use ecs_simulator::documents::{
    container_stats, instance_metadata, instance_stats, task_metadata, task_stats,
};
use ecs_simulator::{Faults, Platform, Simulation};
use serde_json::Value;
use std::collections::HashMap;
use test_support::http_get as get;

const START: f64 = 1_780_000_000.0;

fn documents(simulation: &mut Simulation, now: f64) -> Vec<(String, String)> {
    simulation.advance_to(now);
    let sim = &*simulation;
    sim.tasks
        .iter()
        .map(|task| {
            (
                task_metadata(sim, task, true).to_string(),
                task_stats(sim, task, now).to_string(),
            )
        })
        .collect()
}

#[test]
fn the_same_seed_gives_the_same_documents_and_another_seed_does_not() {
    let times = [START + 0.5, START + 61.0, START + 3_600.0];
    let run = |seed| {
        let mut simulation = Simulation::new(seed, 3, START);
        times
            .iter()
            .map(|t| documents(&mut simulation, *t))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
    // Values depend on the period, not on how often the simulation was asked.
    let mut often = Simulation::new(7, 3, START);
    for step in 0..=610 {
        often.advance_to(START + f64::from(step) * 0.1);
    }
    let mut once = Simulation::new(7, 3, START);
    assert_eq!(
        documents(&mut often, START + 61.0),
        documents(&mut once, START + 61.0)
    );
}

#[test]
fn each_platform_has_its_documented_shape() {
    let mut simulation = Simulation::new(1, 3, START);
    let now = START + 30.0;
    simulation.advance_to(now);
    let sim = &simulation;
    for task in &sim.tasks {
        let metadata = task_metadata(sim, task, false);
        let stats = task_stats(sim, task, now);
        let parsed = ecs_metadata::parse_tasks(metadata.to_string().as_bytes()).expect("parses");
        let parsed_task = &parsed[0];
        assert_eq!(parsed_task.launch_type, task.platform.launch_type());
        let app = parsed_task
            .containers
            .iter()
            .find(|c| c.name == "app")
            .expect("an app container");
        let app_stats = &stats[&app.docker_id];
        match task.platform {
            Platform::Fargate => {
                assert_eq!(app.network_mode.as_deref(), Some("awsvpc"));
                assert!(
                    app.docker_id.len() == 43 && app.docker_id.as_bytes()[32] == b'-',
                    "{}",
                    app.docker_id
                );
                assert!(
                    app_stats["memory_stats"]["stats"]["cache"].is_number(),
                    "cgroup v1"
                );
                assert!(app_stats["networks"]["eth1"].is_object());
                let stopped = parsed_task
                    .containers
                    .iter()
                    .find(|c| c.is_stopped())
                    .expect("a stopped container");
                assert_eq!(stats[&stopped.docker_id], Value::Null);
                assert_eq!(metadata["Limits"]["CPU"], 0.25);
            }
            Platform::Ec2Bridge => {
                assert_eq!(app.network_mode.as_deref(), Some("bridge"));
                assert_eq!(app.docker_id.len(), 64);
                assert!(app_stats["memory_stats"]["stats"]["inactive_file"].is_number());
                assert!(
                    app_stats["memory_stats"]["stats"].get("cache").is_none(),
                    "cgroup v2 has no cache"
                );
                let port = &metadata["Containers"][0]["Ports"][0];
                assert!(
                    port["HostPort"].as_u64().is_some_and(|p| p >= 32768),
                    "dynamic host port: {port}"
                );
                let stopped = parsed_task
                    .containers
                    .iter()
                    .find(|c| c.is_stopped())
                    .expect("a stopped container");
                assert_eq!(stats[&stopped.docker_id], serde_json::json!({}));
                assert!(metadata.get("Limits").is_none(), "no task limits on EC2");
            }
            Platform::ManagedInstances => {
                assert_eq!(app.network_mode, None, "no Networks on Managed Instances");
                assert_eq!(app_stats["memory_stats"]["limit"].as_u64(), Some(u64::MAX));
            }
        }
        let period = app_stats["read"]
            .as_str()
            .and_then(timestamps::parse_rfc3339)
            .expect("read")
            - app_stats["preread"]
                .as_str()
                .and_then(timestamps::parse_rfc3339)
                .expect("preread");
        assert!(
            (period - task.platform.sample_period()).abs() < 1e-6,
            "{period}"
        );
    }
    let instance = instance_metadata(sim);
    assert_eq!(instance.as_array().map(Vec::len), Some(1));
    assert_eq!(instance_stats(sim, now).as_array().map(Vec::len), Some(1));
}

#[test]
fn counters_only_grow_and_memory_stays_below_limits() {
    let mut simulation = Simulation::new(3, 6, START);
    let mut previous: HashMap<String, [f64; 7]> = HashMap::new();
    for step in 0..400 {
        let now = START + f64::from(step) * 2.5;
        simulation.advance_to(now);
        let sim = &simulation;
        for task in &sim.tasks {
            let stats =
                ecs_metadata::parse_stats(task_stats(sim, task, now).to_string().as_bytes())
                    .expect("parses");
            for (id, s) in stats {
                let network = s
                    .networks
                    .first()
                    .map(|(_, n)| n.clone())
                    .unwrap_or_default();
                let now_values = [
                    s.cpu.total_seconds.expect("cpu"),
                    s.cpu.user_seconds.expect("user"),
                    s.block_io_read_bytes.expect("read"),
                    s.block_io_write_bytes.expect("write"),
                    network.rx_bytes.expect("rx"),
                    network.tx_bytes.expect("tx"),
                    network.rx_packets.expect("packets"),
                ];
                if let Some(before) = previous.get(&id) {
                    for (a, b) in before.iter().zip(now_values) {
                        assert!(
                            b >= *a,
                            "{id}: a counter went from {a} to {b} at step {step}"
                        );
                    }
                }
                previous.insert(id, now_values);
                let working_set = s.memory.working_set().expect("working set");
                assert!(working_set > 0.0 && working_set < 512.0 * 1024.0 * 1024.0);
            }
        }
    }
    // Over 1,000 s, the busy containers used CPU.
    assert!(previous.values().any(|v| v[0] > 10.0), "{previous:?}");
}

#[test]
fn the_task_eni_keeps_counting_through_a_container_restart() {
    let mut simulation = Simulation::new(2, 1, START);
    let task = simulation.tasks[0].id.clone();
    let eni_rx = |simulation: &Simulation, now: f64| {
        let stats = task_stats(simulation, &simulation.tasks[0], now);
        let app = &simulation.tasks[0].containers[0].docker_id;
        stats[app]["networks"]["eth1"]["rx_bytes"]
            .as_f64()
            .expect("rx_bytes")
    };
    simulation.advance_to(START + 100.0);
    let before = eni_rx(&simulation, START + 100.0);
    assert!(simulation.restart(&task, "app", START + 100.0));
    simulation.advance_to(START + 120.0);
    assert!(
        eni_rx(&simulation, START + 120.0) >= before,
        "the ENI counter went backwards"
    );
}

#[test]
fn restarts_and_exits_show_in_the_metadata() {
    let mut simulation = Simulation::new(1, 2, START);
    let task = simulation.tasks[1].id.clone();
    simulation.advance_to(START + 100.0);
    let before = simulation.tasks[1].containers[0].counters.cpu_ns[0];
    assert!(before > 0.0);
    assert!(simulation.restart(&task, "app", START + 100.0));
    simulation.advance_to(START + 101.0);
    let app = &simulation.tasks[1].containers[0];
    assert_eq!(app.restart_count, 1);
    assert_eq!(app.started_at, START + 100.0);
    assert!(
        app.counters.cpu_ns[0] < before,
        "a restarted container's counters start again"
    );

    assert!(simulation.exit(&task, "app", 137, START + 102.0));
    let sim = &simulation;
    let metadata = task_metadata(sim, &sim.tasks[1], false);
    assert_eq!(metadata["Containers"][0]["KnownStatus"], "STOPPED");
    assert_eq!(metadata["Containers"][0]["ExitCode"], 137);
    assert_eq!(
        container_stats(
            sim,
            &sim.tasks[1],
            &sim.tasks[1].containers[0],
            START + 103.0
        ),
        serde_json::json!({})
    );
    assert!(!simulation.clone().restart("no-such-task", "app", START));
}

async fn serve(faults: Faults) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let simulation = Simulation::new(5, 3, ecs_simulator::now() - 60.0);
    tokio::spawn(ecs_simulator::run(
        simulation,
        faults,
        listener,
        std::future::pending(),
    ));
    url
}

#[tokio::test]
async fn the_server_serves_every_path_and_its_index() {
    let url = serve(Faults::default()).await;
    let (status, index) = get(&format!("{url}/")).await;
    assert_eq!(status, 200);
    let index: Value = serde_json::from_str(&index).expect("JSON index");
    let uris: Vec<&str> = index["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["metadata_uri"].as_str())
        .collect();
    assert_eq!(uris.len(), 3);
    for uri in &uris {
        for path in [
            "",
            "/task",
            "/taskWithTags",
            "/stats",
            "/task/stats",
            "/tasks",
            "/tasks/stats",
        ] {
            let (status, body) = get(&format!("{uri}{path}")).await;
            assert_eq!(status, 200, "{uri}{path}");
            serde_json::from_str::<Value>(&body).unwrap_or_else(|e| panic!("{uri}{path}: {e}"));
        }
    }
    assert_eq!(get(&format!("{url}/v4/unknown/task")).await.0, 404);
}

#[tokio::test]
async fn faults_fail_the_requests_they_promise_to() {
    let failing = serve(Faults {
        error_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let (_, index) = get(&format!("{failing}/")).await;
    let index: Value = serde_json::from_str(&index).expect("the index is never faulted");
    let uri = index["tasks"][0]["metadata_uri"]
        .as_str()
        .expect("uri")
        .to_owned();
    assert_eq!(get(&format!("{uri}/task")).await.0, 500);

    let malformed = serve(Faults {
        malformed_rate: 1.0,
        ..Faults::default()
    })
    .await;
    let (_, index) = get(&format!("{malformed}/")).await;
    let index: Value = serde_json::from_str(&index).expect("JSON index");
    let uri = index["tasks"][0]["metadata_uri"]
        .as_str()
        .expect("uri")
        .to_owned();
    let (status, body) = get(&format!("{uri}/task")).await;
    assert_eq!(status, 200);
    assert!(
        serde_json::from_str::<Value>(&body).is_err(),
        "a truncated body is not JSON"
    );

    let slow = serve(Faults {
        latency: std::time::Duration::from_millis(300),
        ..Faults::default()
    })
    .await;
    let (_, index) = get(&format!("{slow}/")).await;
    let index: Value = serde_json::from_str(&index).expect("JSON index");
    let uri = index["tasks"][0]["metadata_uri"]
        .as_str()
        .expect("uri")
        .to_owned();
    let started = std::time::Instant::now();
    assert_eq!(get(&format!("{uri}/task")).await.0, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
}

#[tokio::test]
async fn the_exporter_reads_every_simulated_task_and_promtool_accepts_the_result() {
    let url = serve(Faults::default()).await;
    let (_, index) = get(&format!("{url}/")).await;
    let index: Value = serde_json::from_str(&index).expect("JSON index");
    for task in index["tasks"].as_array().expect("tasks") {
        let scope = if task["launch_type"] == "MANAGED_INSTANCES" {
            ecs_exporter::Scope::Instance
        } else {
            ecs_exporter::Scope::Task
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let exporter = format!("http://{}/metrics", listener.local_addr().expect("address"));
        let config = ecs_exporter::Config {
            metadata_url: task["metadata_uri"].as_str().expect("uri").to_owned(),
            scope,
            timeout: std::time::Duration::from_secs(2),
            telemetry_path: "/metrics".into(),
            process_metrics: false,
        };
        tokio::spawn(ecs_exporter::run(config, listener, std::future::pending()));
        let (status, body) = get(&exporter).await;
        assert_eq!(status, 200, "{body}");
        for family in [
            "ecs_task_metadata_info",
            "ecs_container_cpu_usage_seconds_total",
            "ecs_container_memory_working_set_bytes",
            "ecs_network_receive_bytes_total",
            "ecs_container_block_io_read_bytes_total",
        ] {
            assert!(
                body.contains(&format!("\n{family}{{")) || body.contains(&format!("\n{family} ")),
                "{family} missing:\n{body}"
            );
        }
        if let Err(said) = test_support::promtool_check_metrics(body.as_bytes()) {
            panic!("{}: {said}", task["launch_type"]);
        }
    }
}

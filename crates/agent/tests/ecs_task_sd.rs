//! `ecs_task_sd_configs` against the metadata simulator: the address of each container for
//! each network mode and scope, as the targets the agent would scrape.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use agent::{EcsScope, EcsTaskSdConfig, Outcome};
use std::time::Duration;

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

/// The URLs of the targets found at `path` of `metadata_url` (`/task` or `/tasks`), and the
/// problems.
async fn urls(metadata_url: &str, scope: EcsScope) -> (Vec<String>, Vec<String>) {
    let client = ecs_metadata::MetadataClient::new(metadata_url, Duration::from_secs(5)).unwrap();
    let path = match scope {
        EcsScope::Task => ecs_metadata::paths::TASK,
        EcsScope::Instance => ecs_metadata::paths::TASKS,
    };
    let tasks = ecs_metadata::parse_tasks(&client.fetch(path).await.unwrap()).unwrap();
    let config = EcsTaskSdConfig {
        scope,
        metadata_url: None,
        refresh_interval: Duration::from_secs(10),
        task_metrics: false,
        task_metrics_job: "ecs-exporter".to_owned(),
    };
    let found = agent::ecs_task_target_groups(&tasks, &config, metadata_url);
    let job = &agent::AgentConfig::parse(
        "scrape_configs:\n  - job_name: ecs-task\n",
        std::path::Path::new("/"),
    )
    .unwrap()
    .scrape_configs[0];
    let urls = found
        .groups
        .iter()
        .flat_map(|group| agent::populate_group(job, group))
        .map(|outcome| match outcome {
            Outcome::Kept(target) => target.url,
            other => panic!("{other:?}"),
        })
        .collect();
    (urls, found.problems)
}

#[tokio::test]
async fn each_network_mode_gives_the_address_the_agent_reaches_the_container_at() {
    // Tasks 0, 1, 2: Fargate (awsvpc), EC2 bridge, Managed Instances (no networks reported).
    let simulation = ecs_simulator::Simulation::new(3, 3, ecs_simulator::now() - 60.0);
    let ids: Vec<String> = simulation.tasks.iter().map(|t| t.id.clone()).collect();
    let base = simulator(simulation).await;
    let uri = |index: usize| ecs_simulator::metadata_uri(&base, &ids[index]);

    // Task scope: awsvpc shares the task's network namespace; bridge containers are at their
    // own bridge address (the app is the task's first container: 172.17.0.2) and their
    // container port, not the host port.
    assert_eq!(
        urls(&uri(0), EcsScope::Task).await,
        (vec!["http://127.0.0.1:3000/metrics".to_owned()], vec![])
    );
    assert_eq!(
        urls(&uri(1), EcsScope::Task).await,
        (vec!["http://172.17.0.2:3000/metrics".to_owned()], vec![])
    );
    assert_eq!(
        urls(&uri(2), EcsScope::Task).await,
        (vec!["http://127.0.0.1:3000/metrics".to_owned()], vec![])
    );

    // Instance scope, from a Managed Instances host (`/tasks` lists its tasks): they report no
    // network, so the host cannot know where to reach them, and says so rather than guess.
    // (An awsvpc task's ENI address in instance scope is checked in the unit tests.)
    let (instance, problems) = urls(&uri(2), EcsScope::Instance).await;
    assert!(instance.is_empty(), "{instance:?}");
    assert_eq!(
        problems,
        [format!(
            "task {} container app: unknown network mode, and the task metadata gives no IPv4 address",
            ids[2]
        )]
    );
}

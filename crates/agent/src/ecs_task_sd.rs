//! `ecs_task_sd_configs`: the scrape targets of the agent's own task (or, in instance scope,
//! of every task on its host) read from the task metadata endpoint, with the docker labels
//! `ecs-prom discovery` reads (`PROMETHEUS_EXPORTER_PORT`, `_PATH`, `_JOB_NAME`, `_SCHEME`,
//! each also with an `ECS_` prefix) and the labels it gives, plus one target for the task's
//! ECS metrics, read in-process.
//!
//! Addresses follow the network mode as seen from the agent's container: in task scope an
//! `awsvpc` or `host` task shares one network namespace, so a container is at `127.0.0.1`;
//! in `bridge` mode each container has its own address on the Docker bridge, which the
//! metadata gives. In instance scope the agent runs on the host: `awsvpc` containers are at
//! their task's ENI address, `bridge` containers at their bridge address, `host` ones at
//! `127.0.0.1`.

use crate::config::{EcsScope, EcsTaskSdConfig};
use crate::targets::{Source, TargetGroup};
use discovery::docker_labels;
use ecs_metadata::{Container, Task};

/// What one reading of the endpoint yields: the groups, and one line per container that names
/// a port but cannot be addressed.
#[derive(Debug, Default, PartialEq)]
pub struct Found {
    /// The target groups.
    pub groups: Vec<TargetGroup>,
    /// Why some containers are left out.
    pub problems: Vec<String>,
}

/// The targets of `tasks`, read from the endpoint at `metadata_url`.
pub fn target_groups(tasks: &[Task], config: &EcsTaskSdConfig, metadata_url: &str) -> Found {
    let mut found = Found::default();
    for task in tasks {
        let identity = task.identity_labels();
        if config.task_metrics && config.scope == EcsScope::Task {
            let mut group = task_metrics_group(config, metadata_url, &identity);
            // Every task's endpoint is at the same address (169.254.170.2): the task names
            // the target instead.
            group
                .labels
                .insert("instance".to_owned(), task.task_id().to_owned());
            found.groups.push(group);
        }
        for container in &task.containers {
            if container.is_internal() || container.known_status != "RUNNING" {
                continue;
            }
            match container_group(task, container, config.scope, &identity) {
                Ok(Some(group)) => found.groups.push(group),
                Ok(None) => {}
                Err(problem) => found.problems.push(format!(
                    "task {} container {}: {problem}",
                    task.task_id(),
                    container.name
                )),
            }
        }
    }
    // In instance scope the ECS metrics of every task come from one reading of `/tasks`:
    // one target, its series told apart by their `task_arn` label.
    if config.task_metrics && config.scope == EcsScope::Instance {
        found
            .groups
            .push(task_metrics_group(config, metadata_url, &[]));
    }
    found
}

/// The target of the ECS metrics: the endpoint itself, read in-process.
fn task_metrics_group(
    config: &EcsTaskSdConfig,
    metadata_url: &str,
    identity: &[(&'static str, String)],
) -> TargetGroup {
    let (scheme, rest) = metadata_url
        .split_once("://")
        .unwrap_or(("http", metadata_url));
    let (address, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let mut group = TargetGroup {
        targets: vec![address.to_owned()],
        source: Source::EcsMetadata(config.scope),
        ..TargetGroup::default()
    };
    for (name, value) in identity {
        group.labels.insert((*name).to_owned(), value.clone());
    }
    group
        .labels
        .insert("job".to_owned(), config.task_metrics_job.clone());
    group.labels.insert(
        "__metrics_path__".to_owned(),
        path.trim_end_matches('/').to_owned(),
    );
    group
        .labels
        .insert("__scheme__".to_owned(), scheme.to_ascii_lowercase());
    group
}

/// The target of one container, if its docker labels name a port.
fn container_group(
    task: &Task,
    container: &Container,
    scope: EcsScope,
    identity: &[(&'static str, String)],
) -> Result<Option<TargetGroup>, String> {
    let label = |name: &str| {
        container
            .labels
            .get(name)
            .or_else(|| container.labels.get(&format!("ECS_{name}")))
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let Some(port_text) = label(docker_labels::PORT) else {
        return Ok(None);
    };
    let port: u16 = port_text
        .parse()
        .map_err(|_| format!("{} {port_text:?} is not a port", docker_labels::PORT))?;
    let host = address(container, scope)?;
    let mut group = file_sd::TargetGroup::new(host, port);
    for (name, value) in identity {
        group.label(name, value);
    }
    if !discovery::is_task_metadata_exporter(&container.image, port) {
        group.label("container_name", &container.name);
    }
    if let Some(job) = label(docker_labels::JOB_NAME) {
        group.label("job", job);
    }
    group.metrics_path(label(docker_labels::PATH).unwrap_or("/metrics"));
    if let Some(scheme) = label(docker_labels::SCHEME) {
        group.label("__scheme__", &scheme.to_ascii_lowercase());
    }
    group.label("__meta_ecs_task_arn", &task.task_arn);
    group.label("__meta_ecs_container_name", &container.name);
    group.label("__meta_ecs_container_image", &container.image);
    group.label(
        "__meta_ecs_network_mode",
        container.network_mode.as_deref().unwrap_or_default(),
    );
    for (name, value) in &container.labels {
        group.meta_label("__meta_ecs_docker_label_", name, value);
    }
    Ok(Some(TargetGroup {
        targets: group.targets,
        labels: group.labels,
        source: Source::Http,
    }))
}

/// Where the agent reaches a container (see the module documentation).
fn address(container: &Container, scope: EcsScope) -> Result<&str, String> {
    const LOOPBACK: &str = "127.0.0.1";
    let own_address = || {
        container
            .ipv4_addresses
            .first()
            .map(String::as_str)
            .ok_or_else(|| {
                format!(
                    "{} mode, and the task metadata gives no IPv4 address",
                    container
                        .network_mode
                        .as_deref()
                        .unwrap_or("unknown network")
                )
            })
    };
    match (scope, container.network_mode.as_deref()) {
        (_, Some("host")) => Ok(LOOPBACK),
        (_, Some("bridge")) => own_address(),
        // Managed Instances tasks use awsvpc and report no networks.
        (EcsScope::Task, _) => Ok(LOOPBACK),
        (EcsScope::Instance, _) => own_address(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config(scope: EcsScope) -> EcsTaskSdConfig {
        EcsTaskSdConfig {
            scope,
            metadata_url: None,
            refresh_interval: Duration::from_secs(10),
            task_metrics: true,
            task_metrics_job: "ecs-exporter".to_owned(),
        }
    }

    fn task(network: &str, addresses: &str) -> Task {
        let body = format!(
            r#"{{"Cluster": "arn:aws:ecs:us-east-1:1:cluster/prod", "TaskARN": "arn:aws:ecs:us-east-1:1:task/prod/t1",
                "Family": "shop", "Revision": "7", "ServiceName": "web", "AvailabilityZone": "us-east-1a",
                "LaunchType": "EC2",
                "Containers": [
                  {{"Name": "app", "Image": "shop:1", "KnownStatus": "RUNNING", "Type": "NORMAL",
                    "Labels": {{"PROMETHEUS_EXPORTER_PORT": "9090", "PROMETHEUS_EXPORTER_PATH": "/stats",
                               "PROMETHEUS_EXPORTER_JOB_NAME": "shop", "team": "a.b"}},
                    "Ports": [{{"ContainerPort": 9090, "HostPort": 32768}}],
                    "Networks": [{{"NetworkMode": "{network}", "IPv4Addresses": [{addresses}]}}]}},
                  {{"Name": "worker", "Image": "shop:1", "KnownStatus": "STOPPED", "Type": "NORMAL",
                    "Labels": {{"ECS_PROMETHEUS_EXPORTER_PORT": "9091"}}}},
                  {{"Name": "log-router", "Image": "fluent-bit", "KnownStatus": "RUNNING"}},
                  {{"Name": "exporter", "Image": "ghcr.io/ecs-prom/ecs-prom:0.1", "KnownStatus": "RUNNING",
                    "Labels": {{"ECS_PROMETHEUS_EXPORTER_PORT": "9779", "PROMETHEUS_EXPORTER_SCHEME": "HTTPS"}},
                    "Networks": [{{"NetworkMode": "{network}", "IPv4Addresses": [{addresses}]}}]}}
                ]}}"#
        );
        ecs_metadata::parse_tasks(body.as_bytes())
            .expect("parses")
            .remove(0)
    }

    fn label<'a>(group: &'a TargetGroup, name: &str) -> Option<&'a str> {
        group.labels.get(name).map(String::as_str)
    }

    #[test]
    fn an_awsvpc_task_is_scraped_on_loopback_with_discoverys_labels() {
        let found = target_groups(
            &[task("awsvpc", r#""10.0.1.5""#)],
            &config(EcsScope::Task),
            "http://169.254.170.2/v4/abc-123",
        );
        assert!(found.problems.is_empty(), "{:?}", found.problems);
        assert_eq!(
            found.groups.len(),
            3,
            "metrics, app, exporter; the stopped worker is not"
        );
        let metrics = &found.groups[0];
        assert_eq!(metrics.targets, ["169.254.170.2"]);
        assert_eq!(metrics.source, Source::EcsMetadata(EcsScope::Task));
        assert_eq!(label(metrics, "job"), Some("ecs-exporter"));
        assert_eq!(label(metrics, "__metrics_path__"), Some("/v4/abc-123"));
        assert_eq!(label(metrics, "__scheme__"), Some("http"));
        assert_eq!(label(metrics, "instance"), Some("t1"));
        assert_eq!(label(metrics, "container_name"), None);
        let app = &found.groups[1];
        assert_eq!(app.targets, ["127.0.0.1:9090"]);
        assert_eq!(app.source, Source::Http);
        for (name, value) in [
            ("cluster", "prod"),
            ("service", "web"),
            ("task_family", "shop"),
            ("task_revision", "7"),
            ("task_id", "t1"),
            ("availability_zone", "us-east-1a"),
            ("launch_type", "EC2"),
            ("container_name", "app"),
            ("job", "shop"),
            ("__metrics_path__", "/stats"),
            ("__meta_ecs_network_mode", "awsvpc"),
            ("__meta_ecs_docker_label_team", "a.b"),
        ] {
            assert_eq!(label(app, name), Some(value), "{name}");
            if !name.starts_with("__") && name != "job" && name != "container_name" {
                assert_eq!(
                    label(metrics, name),
                    Some(value),
                    "{name} on the metrics target"
                );
            }
        }
        let exporter = &found.groups[2];
        assert_eq!(exporter.targets, ["127.0.0.1:9779"]);
        assert_eq!(
            label(exporter, "container_name"),
            None,
            "its series carry their own"
        );
        assert_eq!(label(exporter, "__scheme__"), Some("https"));
    }

    #[test]
    fn bridge_containers_are_at_their_bridge_address_and_say_so_when_it_is_missing() {
        let found = target_groups(
            &[task("bridge", r#""172.17.0.3""#)],
            &config(EcsScope::Task),
            "http://169.254.170.2/v4/abc",
        );
        assert_eq!(found.groups[1].targets, ["172.17.0.3:9090"]);
        let missing = target_groups(
            &[task("bridge", r#""""#)],
            &config(EcsScope::Task),
            "http://169.254.170.2/v4/abc",
        );
        assert_eq!(missing.groups.len(), 1, "only the metrics target");
        assert_eq!(
            missing.problems,
            [
                "task t1 container app: bridge mode, and the task metadata gives no IPv4 address",
                "task t1 container exporter: bridge mode, and the task metadata gives no IPv4 address"
            ]
        );
    }

    #[test]
    fn instance_scope_reaches_awsvpc_tasks_at_their_eni_and_reads_metrics_once() {
        let mut config = config(EcsScope::Instance);
        let found = target_groups(
            &[task("awsvpc", r#""10.0.1.5""#), task("host", "")],
            &config,
            "http://169.254.170.2/v4/abc",
        );
        let addresses: Vec<&str> = found.groups.iter().map(|g| g.targets[0].as_str()).collect();
        assert_eq!(
            addresses,
            [
                "10.0.1.5:9090",
                "10.0.1.5:9779",
                "127.0.0.1:9090",
                "127.0.0.1:9779",
                "169.254.170.2"
            ]
        );
        assert_eq!(
            found.groups[4].source,
            Source::EcsMetadata(EcsScope::Instance)
        );
        assert_eq!(label(&found.groups[4], "task_id"), None);
        config.task_metrics = false;
        let found = target_groups(&[task("awsvpc", r#""10.0.1.5""#)], &config, "http://x/v4/a");
        assert_eq!(found.groups.len(), 2);
    }

    #[test]
    fn a_port_that_is_not_one_is_a_problem_not_a_target() {
        let mut t = task("awsvpc", r#""10.0.1.5""#);
        t.containers[0]
            .labels
            .insert("PROMETHEUS_EXPORTER_PORT".into(), "http".into());
        let found = target_groups(&[t], &config(EcsScope::Task), "http://x/v4/a");
        assert_eq!(
            found.problems,
            ["task t1 container app: PROMETHEUS_EXPORTER_PORT \"http\" is not a port"]
        );
    }
}

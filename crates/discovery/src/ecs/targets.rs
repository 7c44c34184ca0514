//! The target rules: which containers of a running task are scrape targets (docker labels),
//! at which address (awsvpc ENI, or the instance address with the bound host port), with
//! which labels.

use super::wire::{Task, TaskDefinition};
use crate::error::TargetError;
use file_sd::TargetGroup;

/// Docker labels that select a container and configure its target. Each is also accepted with
/// an `ECS_` prefix (the CloudWatch agent's spelling).
pub mod docker_labels {
    /// The container port serving metrics: its presence makes the container a target.
    pub const PORT: &str = "PROMETHEUS_EXPORTER_PORT";
    /// The metrics path (default `/metrics`).
    pub const PATH: &str = "PROMETHEUS_EXPORTER_PATH";
    /// The `job` label.
    pub const JOB_NAME: &str = "PROMETHEUS_EXPORTER_JOB_NAME";
    /// `http` or `https`.
    pub const SCHEME: &str = "PROMETHEUS_EXPORTER_SCHEME";
}

/// The targets of one running task: one per container whose docker labels name a port.
pub fn targets_of_task(
    task: &Task,
    definition: &TaskDefinition,
    instance_address: Option<&str>,
) -> Result<Vec<TargetGroup>, TargetError> {
    let network_mode = definition.network_mode.as_deref().unwrap_or("bridge");
    let mut targets = Vec::new();
    for container in &definition.container_definitions {
        let label = |name: &str| {
            container
                .docker_labels
                .get(name)
                .or_else(|| container.docker_labels.get(&format!("ECS_{name}")))
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        };
        let Some(port_text) = label(docker_labels::PORT) else {
            continue;
        };
        let port: u16 = port_text.parse().map_err(|_| TargetError::BadPort {
            container: container.name.clone(),
            label: docker_labels::PORT,
            value: port_text.to_owned(),
        })?;
        let container_port = port;
        let (host, port) = match network_mode {
            "awsvpc" => (
                task.eni_address().ok_or(TargetError::NoAddress {
                    network_mode: "awsvpc",
                    missing: "a private IPv4 address",
                })?,
                port,
            ),
            "host" => (
                instance_address.ok_or(TargetError::NoAddress {
                    network_mode: "host",
                    missing: "a container instance address",
                })?,
                port,
            ),
            _ => (
                instance_address.ok_or(TargetError::NoAddress {
                    network_mode: "bridge",
                    missing: "a container instance address",
                })?,
                task.host_port(&container.name, port)
                    .ok_or_else(|| TargetError::NoHostPort {
                        container: container.name.clone(),
                        port,
                    })?,
            ),
        };
        let mut target = TargetGroup::new(host, port);
        target.label("cluster", task.cluster_name());
        target.label("service", task.service_name().unwrap_or_default());
        target.label(
            "task_family",
            definition.family.as_deref().unwrap_or_default(),
        );
        target.label(
            "task_revision",
            &definition
                .revision
                .map(|r| r.to_string())
                .unwrap_or_default(),
        );
        target.label("task_id", task.task_id());
        if !is_task_metadata_exporter(
            container.image.as_deref().unwrap_or_default(),
            container_port,
        ) {
            target.label("container_name", &container.name);
        }
        target.label(
            "availability_zone",
            task.availability_zone.as_deref().unwrap_or_default(),
        );
        target.label(
            "launch_type",
            task.launch_type.as_deref().unwrap_or_default(),
        );
        if let Some(job) = label(docker_labels::JOB_NAME) {
            target.label("job", job);
        }
        target.metrics_path(label(docker_labels::PATH).unwrap_or("/metrics"));
        if let Some(scheme) = label(docker_labels::SCHEME) {
            target.label("__scheme__", &scheme.to_ascii_lowercase());
        }
        target.label(
            "__meta_ecs_cluster_arn",
            task.cluster_arn.as_deref().unwrap_or_default(),
        );
        target.label("__meta_ecs_task_arn", &task.task_arn);
        target.label(
            "__meta_ecs_task_definition_arn",
            task.task_definition_arn.as_deref().unwrap_or_default(),
        );
        target.label("__meta_ecs_container_name", &container.name);
        target.label(
            "__meta_ecs_container_image",
            container.image.as_deref().unwrap_or_default(),
        );
        target.label("__meta_ecs_network_mode", network_mode);
        target.label(
            "__meta_ecs_container_instance_arn",
            task.container_instance_arn.as_deref().unwrap_or_default(),
        );
        for (name, value) in &container.docker_labels {
            target.meta_label("__meta_ecs_docker_label_", name, value);
        }
        for tag in &task.tags {
            target.meta_label("__meta_ecs_task_tag_", &tag.key, &tag.value);
        }
        targets.push(target);
    }
    Ok(targets)
}

/// The port `ecs-prom exporter` and ecs_exporter serve on unless told otherwise.
const EXPORTER_PORT: u16 = 9779;

/// Whether a container labelled with metrics port `port` is a task-metadata exporter:
/// ecs_exporter's image, or the ecs-prom image (which also runs the demo app and the agent)
/// serving on the exporter's port. Its metrics carry a `container_name` label per container
/// of the task, which a `container_name` target label would overwrite, so its target leaves
/// that label to `__meta_ecs_container_name`.
pub fn is_task_metadata_exporter(image: &str, port: u16) -> bool {
    let repository = image.split(['@']).next().unwrap_or(image);
    let name = repository
        .rsplit('/')
        .next()
        .unwrap_or(repository)
        .split(':')
        .next()
        .unwrap_or_default();
    match name {
        "ecs-exporter" | "ecs_exporter" => true,
        "ecs-prom" => port == EXPORTER_PORT,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ecs::wire::Task;

    /// A bridge-mode task as DescribeTasks returns it (shape from the ECS API reference).
    const BRIDGE_TASK: &str = r#"{
      "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/prod/0a1b2c3d4e5f",
      "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
      "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/shop:7",
      "group": "service:shop", "lastStatus": "RUNNING", "launchType": "EC2",
      "availabilityZone": "us-east-1b",
      "containerInstanceArn": "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/ci1",
      "containers": [
        {"name": "app", "networkBindings": [
          {"bindIP": "0.0.0.0", "containerPort": 8080, "hostPort": 32768, "protocol": "tcp"},
          {"bindIP": "0.0.0.0", "containerPort": 9090, "hostPort": 32769, "protocol": "tcp"}]},
        {"name": "exporter", "networkBindings": [
          {"bindIP": "0.0.0.0", "containerPort": 9779, "hostPort": 32770, "protocol": "tcp"}]}
      ],
      "tags": [{"key": "team", "value": "web"}],
      "someFieldAddedLater": {"ignored": true}
    }"#;

    const BRIDGE_DEFINITION: &str = r#"{
      "family": "shop", "revision": 7,
      "containerDefinitions": [
        {"name": "app", "image": "shop:1.2",
         "dockerLabels": {"PROMETHEUS_EXPORTER_PORT": "9090", "PROMETHEUS_EXPORTER_PATH": "/stats",
                          "PROMETHEUS_EXPORTER_JOB_NAME": "shop"}},
        {"name": "exporter", "image": "ghcr.io/ecs-prom/ecs-prom:0.1.0",
         "dockerLabels": {"ECS_PROMETHEUS_EXPORTER_PORT": "9779"}},
        {"name": "log-router", "image": "fluent-bit"}
      ]
    }"#;

    #[test]
    fn bridge_mode_uses_the_instance_address_and_the_dynamic_host_port() {
        let task: Task = serde_json::from_str(BRIDGE_TASK).expect("task");
        let definition: TaskDefinition =
            serde_json::from_str(BRIDGE_DEFINITION).expect("definition");
        let targets = targets_of_task(&task, &definition, Some("10.0.3.7")).expect("targets");
        assert_eq!(targets.len(), 2);
        let app = &targets[0];
        assert_eq!(app.targets, ["10.0.3.7:32769"]);
        let label = |t: &TargetGroup, name: &str| t.labels.get(name).cloned();
        assert_eq!(label(app, "cluster").as_deref(), Some("prod"));
        assert_eq!(label(app, "service").as_deref(), Some("shop"));
        assert_eq!(label(app, "task_family").as_deref(), Some("shop"));
        assert_eq!(label(app, "task_revision").as_deref(), Some("7"));
        assert_eq!(label(app, "task_id").as_deref(), Some("0a1b2c3d4e5f"));
        assert_eq!(label(app, "container_name").as_deref(), Some("app"));
        assert_eq!(
            label(app, "availability_zone").as_deref(),
            Some("us-east-1b")
        );
        assert_eq!(label(app, "launch_type").as_deref(), Some("EC2"));
        assert_eq!(label(app, "job").as_deref(), Some("shop"));
        assert_eq!(label(app, "__metrics_path__").as_deref(), Some("/stats"));
        assert_eq!(
            label(app, "__meta_ecs_task_tag_team").as_deref(),
            Some("web")
        );
        assert_eq!(
            label(app, "__meta_ecs_docker_label_PROMETHEUS_EXPORTER_PORT").as_deref(),
            Some("9090")
        );
        let exporter = &targets[1];
        assert_eq!(exporter.targets, ["10.0.3.7:32770"]);
        assert_eq!(label(exporter, "container_name"), None);
        assert_eq!(
            label(exporter, "__meta_ecs_container_name").as_deref(),
            Some("exporter")
        );
        assert_eq!(label(exporter, "job"), None);
        assert_eq!(label(exporter, "__metrics_path__"), None);
    }

    #[test]
    fn a_task_that_cannot_be_addressed_says_why() {
        let mut task: Task = serde_json::from_str(BRIDGE_TASK).expect("task");
        let definition: TaskDefinition =
            serde_json::from_str(BRIDGE_DEFINITION).expect("definition");
        let error = targets_of_task(&task, &definition, None).expect_err("no address");
        assert_eq!(
            error.to_string(),
            "bridge-mode task without a container instance address"
        );
        task.containers[0].network_bindings.clear();
        let error = targets_of_task(&task, &definition, Some("10.0.3.7")).expect_err("no binding");
        assert_eq!(
            error,
            crate::error::TargetError::NoHostPort {
                container: "app".into(),
                port: 9090
            }
        );
        let bad_port: TaskDefinition = serde_json::from_str(
            r#"{"containerDefinitions":[{"name":"a","dockerLabels":{"PROMETHEUS_EXPORTER_PORT":"http"}}]}"#,
        )
        .expect("definition");
        assert!(targets_of_task(&task, &bad_port, Some("10.0.3.7")).is_err());
    }

    #[test]
    fn recognises_task_metadata_exporter_images() {
        for image in [
            "ecs-prom",
            "ghcr.io/ecs-prom/ecs-prom:0.1.0",
            "quay.io/prometheuscommunity/ecs-exporter:v0.4.0",
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ecs-prom@sha256:abc",
        ] {
            assert!(is_task_metadata_exporter(image, 9779), "{image}");
        }
        for image in ["shop:1.2", "ecs-prom-demo", "nginx", ""] {
            assert!(!is_task_metadata_exporter(image, 9779), "{image}");
        }
        // The ecs-prom image on another port is the demo app or the agent.
        assert!(!is_task_metadata_exporter(
            "ghcr.io/ecs-prom/ecs-prom:0.1.0",
            3000
        ));
        assert!(is_task_metadata_exporter(
            "quay.io/prometheuscommunity/ecs-exporter:v0.4.0",
            9100
        ));
    }
}

//! The task document (`/task`, and each element of `/tasks`) and its containers.

use crate::ShapeError;
use crate::json::{kind, number, object, string};
use crate::time::parse_rfc3339;
use serde_json::{Map, Value};

/// One ECS task as the metadata endpoint describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Task {
    /// `Cluster`: a short name on EC2, a full ARN on Fargate.
    pub cluster: String,
    /// `TaskARN`.
    pub task_arn: String,
    /// `Family` of the task definition.
    pub family: String,
    /// `Revision` of the task definition.
    pub revision: String,
    /// `DesiredStatus`.
    pub desired_status: String,
    /// `KnownStatus`.
    pub known_status: String,
    /// `AvailabilityZone` (empty on old agents).
    pub availability_zone: String,
    /// `LaunchType`: `EC2`, `FARGATE` or `MANAGED_INSTANCES` (empty on old agents).
    pub launch_type: String,
    /// `ServiceName`, for tasks started by a service.
    pub service_name: String,
    /// Task-level `Limits.CPU`, in vCPUs.
    pub cpu_limit_vcpus: Option<f64>,
    /// Task-level `Limits.Memory`, in MiB.
    pub memory_limit_mib: Option<f64>,
    /// `PullStartedAt`, seconds since the Unix epoch.
    pub pull_started_at: Option<f64>,
    /// `PullStoppedAt`, seconds since the Unix epoch.
    pub pull_stopped_at: Option<f64>,
    /// Fargate `EphemeralStorageMetrics.Utilized`, in MiB.
    pub ephemeral_storage_utilized_mib: Option<f64>,
    /// Fargate `EphemeralStorageMetrics.Reserved`, in MiB.
    pub ephemeral_storage_reserved_mib: Option<f64>,
    /// Fargate `ClockDrift`.
    pub clock: Option<ClockDrift>,
    /// `Containers`, internal ones included.
    pub containers: Vec<Container>,
}

/// Fargate's `ClockDrift` object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClockDrift {
    /// `ClockErrorBound`, which AWS documents in milliseconds.
    pub error_bound_ms: Option<f64>,
    /// `ClockSynchronizationStatus` is `SYNCHRONIZED` (`Some(false)` for any other value).
    pub synchronized: Option<bool>,
}

/// One container of a task.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Container {
    /// `DockerId`: the key of this container in the stats document.
    pub docker_id: String,
    /// `Name` from the task definition.
    pub name: String,
    /// `Image`.
    pub image: String,
    /// `ImageID`.
    pub image_id: String,
    /// `DesiredStatus`.
    pub desired_status: String,
    /// `KnownStatus`.
    pub known_status: String,
    /// `Type`: `NORMAL` for task-definition containers (also when the field is absent).
    pub container_type: String,
    /// `ExitCode`, once the container has exited.
    pub exit_code: Option<f64>,
    /// Container-level `Limits.CPU`, in CPU units (1024 per vCPU).
    pub cpu_units: Option<f64>,
    /// Container-level `Limits.Memory`, in MiB.
    pub memory_limit_mib: Option<f64>,
    /// `StartedAt`, seconds since the Unix epoch.
    pub started_at: Option<f64>,
    /// `RestartCount`, present only when a restart policy is configured.
    pub restart_count: Option<f64>,
    /// `Health.status` (`HEALTHY`, `UNHEALTHY`, `UNKNOWN`), when a health check is defined.
    pub health_status: Option<String>,
    /// `Networks[0].NetworkMode`: `awsvpc`, `bridge`, `host`, ... when reported.
    pub network_mode: Option<String>,
}

impl Container {
    /// Containers the ECS agent adds itself (`~internal~ecs~pause` and the like).
    pub fn is_internal(&self) -> bool {
        self.container_type != "NORMAL"
    }

    /// Whether the container has stopped (its stats are then `{}` or `null`).
    pub fn is_stopped(&self) -> bool {
        self.known_status == "STOPPED"
    }
}

impl Task {
    /// Reads a task object. Anything but an object is a [`ShapeError`]; inside it, unknown
    /// fields are ignored and missing or mistyped ones are left empty.
    pub fn from_json(value: &Value) -> Result<Task, ShapeError> {
        let Value::Object(task) = value else {
            return Err(ShapeError {
                expected: "a task object",
                found: kind(value),
            });
        };
        let limits = object(task, "Limits");
        let storage = object(task, "EphemeralStorageMetrics");
        Ok(Task {
            cluster: string(task, "Cluster"),
            task_arn: string(task, "TaskARN"),
            family: string(task, "Family"),
            revision: string(task, "Revision"),
            desired_status: string(task, "DesiredStatus"),
            known_status: string(task, "KnownStatus"),
            availability_zone: string(task, "AvailabilityZone"),
            launch_type: string(task, "LaunchType"),
            service_name: string(task, "ServiceName"),
            cpu_limit_vcpus: limits.and_then(|l| number(l, "CPU")),
            memory_limit_mib: limits.and_then(|l| number(l, "Memory")),
            pull_started_at: timestamp(task, "PullStartedAt"),
            pull_stopped_at: timestamp(task, "PullStoppedAt"),
            ephemeral_storage_utilized_mib: storage.and_then(|s| number(s, "Utilized")),
            ephemeral_storage_reserved_mib: storage.and_then(|s| number(s, "Reserved")),
            clock: object(task, "ClockDrift").map(|clock| ClockDrift {
                error_bound_ms: number(clock, "ClockErrorBound"),
                synchronized: clock
                    .get("ClockSynchronizationStatus")
                    .and_then(Value::as_str)
                    .map(|status| status == "SYNCHRONIZED"),
            }),
            containers: task
                .get("Containers")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(Value::as_object)
                        .map(container)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

fn container(c: &Map<String, Value>) -> Container {
    let limits = object(c, "Limits");
    let container_type = string(c, "Type");
    Container {
        docker_id: string(c, "DockerId"),
        name: string(c, "Name"),
        image: string(c, "Image"),
        image_id: string(c, "ImageID"),
        desired_status: string(c, "DesiredStatus"),
        known_status: string(c, "KnownStatus"),
        container_type: if container_type.is_empty() {
            "NORMAL".to_owned()
        } else {
            container_type
        },
        exit_code: number(c, "ExitCode"),
        cpu_units: limits.and_then(|l| number(l, "CPU")),
        memory_limit_mib: limits.and_then(|l| number(l, "Memory")),
        started_at: timestamp(c, "StartedAt"),
        restart_count: number(c, "RestartCount"),
        health_status: object(c, "Health")
            .and_then(|health| health.get("status"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        network_mode: c
            .get("Networks")
            .and_then(Value::as_array)
            .and_then(|networks| networks.first())
            .and_then(Value::as_object)
            .map(|network| string(network, "NetworkMode"))
            .filter(|mode| !mode.is_empty()),
    }
}

fn timestamp(object: &Map<String, Value>, key: &str) -> Option<f64> {
    object
        .get(key)
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
}

/// Reads `/task` (one object) or `/tasks` (an array of objects) into a list of tasks.
/// Elements of an array that are not objects are skipped.
pub fn parse_tasks(value: &Value) -> Result<Vec<Task>, ShapeError> {
    match value {
        Value::Array(items) => Ok(items
            .iter()
            .filter_map(|item| Task::from_json(item).ok())
            .collect()),
        Value::Object(_) => Ok(vec![Task::from_json(value)?]),
        other => Err(ShapeError {
            expected: "a task object or an array of tasks",
            found: kind(other),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_known_fields_and_ignores_the_rest() {
        let task = Task::from_json(&json!({
            "Cluster": "c", "TaskARN": "arn", "Family": "f", "Revision": 7,
            "Limits": {"CPU": 0.25, "Memory": 512},
            "PullStartedAt": "1970-01-03T00:00:00Z",
            "PullStoppedAt": "0001-01-01T00:00:00Z",
            "ClockDrift": {"ClockErrorBound": 0.5, "ClockSynchronizationStatus": "NOT_SYNCHRONIZED"},
            "SomethingNew": {"deep": [1, 2]},
            "Containers": [
                {"DockerId": "a", "Name": "app", "Limits": {"CPU": "lots"}, "Health": {"status": "HEALTHY"},
                 "Networks": [{"NetworkMode": "bridge"}]},
                {"DockerId": "p", "Name": "~internal~ecs~pause", "Type": "CNI_PAUSE"},
                "not a container"
            ]
        }))
        .expect("an object is a task");
        assert_eq!(task.revision, "7");
        assert_eq!(task.cpu_limit_vcpus, Some(0.25));
        assert_eq!(task.memory_limit_mib, Some(512.0));
        assert_eq!(task.pull_started_at, Some(172_800.0));
        assert_eq!(task.pull_stopped_at, None);
        assert_eq!(
            task.clock,
            Some(ClockDrift {
                error_bound_ms: Some(0.5),
                synchronized: Some(false)
            })
        );
        assert_eq!(task.containers.len(), 2);
        let app = &task.containers[0];
        assert_eq!(app.cpu_units, None);
        assert_eq!(app.health_status.as_deref(), Some("HEALTHY"));
        assert_eq!(app.network_mode.as_deref(), Some("bridge"));
        assert!(!app.is_internal());
        assert!(task.containers[1].is_internal());
    }

    #[test]
    fn rejects_documents_that_are_not_tasks() {
        assert!(Task::from_json(&Value::Null).is_err());
        assert!(parse_tasks(&json!("text")).is_err());
        assert_eq!(parse_tasks(&json!([{}, 1, null])).map(|t| t.len()), Ok(1));
        assert_eq!(Task::from_json(&json!({})), Ok(Task::default()));
    }
}

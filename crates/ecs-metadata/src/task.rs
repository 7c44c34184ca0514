//! The task document (`/task`, and each element of `/tasks`) and its containers.

use crate::DocumentError;
use crate::lenient::{List, Num, Obj, OneOrMany, Strings, Text, Texts, Time, read_document};
use serde::Deserialize;
use std::collections::BTreeMap;

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

impl Task {
    /// The task id: the last part of the task ARN.
    pub fn task_id(&self) -> &str {
        self.task_arn.rsplit('/').next().unwrap_or(&self.task_arn)
    }

    /// The labels that say which task a target belongs to, as `ecs-prom discovery` gives
    /// them (`cluster` is the name, whether `Cluster` is a name or an ARN); empty ones are left
    /// out.
    pub fn identity_labels(&self) -> Vec<(&'static str, String)> {
        let cluster = self.cluster.rsplit('/').next().unwrap_or(&self.cluster);
        [
            ("cluster", cluster),
            ("service", self.service_name.as_str()),
            ("task_family", self.family.as_str()),
            ("task_revision", self.revision.as_str()),
            ("task_id", self.task_id()),
            ("availability_zone", self.availability_zone.as_str()),
            ("launch_type", self.launch_type.as_str()),
        ]
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| (name, value.to_owned()))
        .collect()
    }
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
    /// `Networks[0].IPv4Addresses`, empty ones left out (bridge-mode captures show `""`).
    pub ipv4_addresses: Vec<String>,
    /// `Labels`: the container's Docker labels, those of its task definition among them.
    pub labels: BTreeMap<String, String>,
    /// `Ports`: the ports it exposes and, in bridge and host mode, where they are bound.
    pub ports: Vec<Port>,
}

/// One entry of a container's `Ports`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Port {
    /// `ContainerPort`.
    pub container_port: Option<u16>,
    /// `HostPort`: the port on the host (bridge mode: often a dynamic one).
    pub host_port: Option<u16>,
    /// `HostIp`: the host address it is bound to (`0.0.0.0`, `::`).
    pub host_ip: String,
    /// `Protocol`: `tcp` or `udp`.
    pub protocol: String,
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

/// The task document as it arrives; every field lenient.
#[derive(Default, Deserialize)]
#[serde(default)]
struct RawTask {
    #[serde(rename = "Cluster")]
    cluster: Text,
    #[serde(rename = "TaskARN")]
    task_arn: Text,
    #[serde(rename = "Family")]
    family: Text,
    #[serde(rename = "Revision")]
    revision: Text,
    #[serde(rename = "DesiredStatus")]
    desired_status: Text,
    #[serde(rename = "KnownStatus")]
    known_status: Text,
    #[serde(rename = "AvailabilityZone")]
    availability_zone: Text,
    #[serde(rename = "LaunchType")]
    launch_type: Text,
    #[serde(rename = "ServiceName")]
    service_name: Text,
    #[serde(rename = "Limits")]
    limits: Obj<RawLimits>,
    #[serde(rename = "PullStartedAt")]
    pull_started_at: Time,
    #[serde(rename = "PullStoppedAt")]
    pull_stopped_at: Time,
    #[serde(rename = "EphemeralStorageMetrics")]
    ephemeral_storage: Obj<RawEphemeralStorage>,
    #[serde(rename = "ClockDrift")]
    clock: Obj<RawClockDrift>,
    #[serde(rename = "Containers")]
    containers: List<RawContainer>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawLimits {
    #[serde(rename = "CPU")]
    cpu: Num,
    #[serde(rename = "Memory")]
    memory: Num,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawEphemeralStorage {
    #[serde(rename = "Utilized")]
    utilized: Num,
    #[serde(rename = "Reserved")]
    reserved: Num,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawClockDrift {
    #[serde(rename = "ClockErrorBound")]
    error_bound: Num,
    #[serde(rename = "ClockSynchronizationStatus")]
    status: Text,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawContainer {
    #[serde(rename = "DockerId")]
    docker_id: Text,
    #[serde(rename = "Name")]
    name: Text,
    #[serde(rename = "Image")]
    image: Text,
    #[serde(rename = "ImageID")]
    image_id: Text,
    #[serde(rename = "DesiredStatus")]
    desired_status: Text,
    #[serde(rename = "KnownStatus")]
    known_status: Text,
    #[serde(rename = "Type")]
    container_type: Text,
    #[serde(rename = "ExitCode")]
    exit_code: Num,
    #[serde(rename = "Limits")]
    limits: Obj<RawLimits>,
    #[serde(rename = "StartedAt")]
    started_at: Time,
    #[serde(rename = "RestartCount")]
    restart_count: Num,
    #[serde(rename = "Health")]
    health: Obj<RawHealth>,
    #[serde(rename = "Networks")]
    networks: List<RawNetwork>,
    #[serde(rename = "Labels")]
    labels: Strings,
    #[serde(rename = "Ports")]
    ports: List<RawPort>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawPort {
    #[serde(rename = "ContainerPort")]
    container_port: Num,
    #[serde(rename = "HostPort")]
    host_port: Num,
    #[serde(rename = "HostIp")]
    host_ip: Text,
    #[serde(rename = "Protocol")]
    protocol: Text,
}

/// A port number, if the number is one.
fn port_number(value: Option<f64>) -> Option<u16> {
    value
        .filter(|v| v.fract() == 0.0 && (1.0..=65535.0).contains(v))
        .map(|v| v as u16)
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawHealth {
    status: Text,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawNetwork {
    #[serde(rename = "NetworkMode")]
    network_mode: Text,
    #[serde(rename = "IPv4Addresses")]
    ipv4_addresses: Texts,
}

impl From<RawTask> for Task {
    fn from(raw: RawTask) -> Task {
        let limits = raw.limits.0.unwrap_or_default();
        let storage = raw.ephemeral_storage.0.unwrap_or_default();
        Task {
            cluster: raw.cluster.0,
            task_arn: raw.task_arn.0,
            family: raw.family.0,
            revision: raw.revision.0,
            desired_status: raw.desired_status.0,
            known_status: raw.known_status.0,
            availability_zone: raw.availability_zone.0,
            launch_type: raw.launch_type.0,
            service_name: raw.service_name.0,
            cpu_limit_vcpus: limits.cpu.0,
            memory_limit_mib: limits.memory.0,
            pull_started_at: raw.pull_started_at.0,
            pull_stopped_at: raw.pull_stopped_at.0,
            ephemeral_storage_utilized_mib: storage.utilized.0,
            ephemeral_storage_reserved_mib: storage.reserved.0,
            clock: raw.clock.0.map(|clock| ClockDrift {
                error_bound_ms: clock.error_bound.0,
                synchronized: Some(clock.status.0)
                    .filter(|status| !status.is_empty())
                    .map(|status| status == "SYNCHRONIZED"),
            }),
            containers: raw
                .containers
                .0
                .unwrap_or_default()
                .into_iter()
                .map(Container::from)
                .collect(),
        }
    }
}

impl From<RawContainer> for Container {
    fn from(raw: RawContainer) -> Container {
        let limits = raw.limits.0.unwrap_or_default();
        let container_type = raw.container_type.0;
        let network = raw.networks.0.unwrap_or_default().into_iter().next();
        Container {
            docker_id: raw.docker_id.0,
            name: raw.name.0,
            image: raw.image.0,
            image_id: raw.image_id.0,
            desired_status: raw.desired_status.0,
            known_status: raw.known_status.0,
            container_type: if container_type.is_empty() {
                "NORMAL".to_owned()
            } else {
                container_type
            },
            exit_code: raw.exit_code.0,
            cpu_units: limits.cpu.0,
            memory_limit_mib: limits.memory.0,
            started_at: raw.started_at.0,
            restart_count: raw.restart_count.0,
            health_status: raw
                .health
                .0
                .map(|health| health.status.0)
                .filter(|s| !s.is_empty()),
            network_mode: network
                .as_ref()
                .map(|network| network.network_mode.0.clone())
                .filter(|mode| !mode.is_empty()),
            ipv4_addresses: network
                .map(|network| network.ipv4_addresses.0)
                .unwrap_or_default()
                .into_iter()
                .filter(|address| !address.is_empty())
                .collect(),
            labels: raw.labels.0.into_iter().collect(),
            ports: raw
                .ports
                .0
                .unwrap_or_default()
                .into_iter()
                .map(|port| Port {
                    container_port: port_number(port.container_port.0),
                    host_port: port_number(port.host_port.0),
                    host_ip: port.host_ip.0,
                    protocol: port.protocol.0,
                })
                .collect(),
        }
    }
}

/// Reads `/task` (one object) or `/tasks` (an array of objects) into a list of tasks.
/// Elements of an array that are not objects are skipped; unknown fields are ignored and
/// fields of the wrong type are left empty. Text that is not JSON, or JSON that is neither an
/// object nor an array, is a [`DocumentError`].
pub fn parse_tasks(body: &[u8]) -> Result<Vec<Task>, DocumentError> {
    let tasks: OneOrMany<RawTask> = read_document(body).map_err(|source| DocumentError {
        what: "task metadata",
        source,
    })?;
    Ok(tasks.0.into_iter().map(Task::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse(value: Value) -> Result<Vec<Task>, DocumentError> {
        parse_tasks(value.to_string().as_bytes())
    }

    #[test]
    fn reads_labels_ports_and_addresses_of_real_captures() {
        let read = |name: &str| {
            let path = format!(
                "{}/../../fixtures/ecs-metadata/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            parse_tasks(&std::fs::read(path).expect("fixture")).expect("parses")
        };
        // EC2 bridge mode: the exporter's port bound twice (IPv4 and IPv6) on a dynamic host
        // port and its bridge address; the other container's `IPv4Addresses` is `[""]`.
        let ec2 = read("ecs_exporter-ec2_task_metadata.json");
        let exporter = ec2[0]
            .containers
            .iter()
            .find(|c| c.name == "ecs-exporter")
            .expect("exporter container");
        assert_eq!(exporter.network_mode.as_deref(), Some("bridge"));
        assert_eq!(exporter.ipv4_addresses, ["172.17.0.2"]);
        assert!(ec2[0].containers[0].ipv4_addresses.is_empty());
        assert_eq!(exporter.ports.len(), 2);
        assert_eq!(exporter.ports[0].container_port, Some(9779));
        assert_eq!(exporter.ports[0].host_port, Some(32768));
        assert_eq!(exporter.ports[0].host_ip, "0.0.0.0");
        assert_eq!(exporter.ports[1].host_ip, "::");
        assert_eq!(
            exporter
                .labels
                .get("com.amazonaws.ecs.cluster")
                .map(String::as_str),
            Some("prom-ecs-exporter-sandbox")
        );
        // awsvpc: the task ENI's address on every container.
        let awsvpc = read("aws-docs-ec2-awsvpc-task_metadata.json");
        assert_eq!(awsvpc[0].containers[0].ipv4_addresses, ["10.0.2.61"]);
        assert!(awsvpc[0].containers[0].ports.is_empty());
    }

    #[test]
    fn odd_labels_and_ports_are_left_out() {
        let tasks = parse(json!({
            "TaskARN": "arn",
            "Containers": [{
                "Labels": {"a": "1", "n": 2, "o": {"x": "y"}, "z": null},
                "Ports": [{"ContainerPort": 70000, "HostPort": 8080.5}, "x",
                          {"ContainerPort": 8080, "HostPort": 32768, "Protocol": "tcp"}],
                "Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": ["", 7, "10.0.0.1"]}]
            }, {"Labels": ["not", "an", "object"], "Ports": {}}]
        }))
        .expect("parses");
        let c = &tasks[0].containers[0];
        assert_eq!(c.labels, BTreeMap::from([("a".to_owned(), "1".to_owned())]));
        assert_eq!(c.ports.len(), 2);
        assert_eq!(
            (c.ports[0].container_port, c.ports[0].host_port),
            (None, None)
        );
        assert_eq!(c.ports[1].container_port, Some(8080));
        assert_eq!(c.ports[1].host_port, Some(32768));
        assert_eq!(c.ipv4_addresses, ["10.0.0.1"]);
        assert!(tasks[0].containers[1].labels.is_empty());
        assert!(tasks[0].containers[1].ports.is_empty());
    }

    #[test]
    fn reads_known_fields_and_ignores_the_rest() {
        let tasks = parse(json!({
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
        let task = &tasks[0];
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
        for bad in [
            &b"null"[..],
            b"\"text\"",
            b"42",
            b"",
            b"{\"Cluster\": ",
            b"{} trailing",
        ] {
            let error = parse_tasks(bad).expect_err("not a task document");
            assert!(error.to_string().contains("task metadata"), "{error}");
        }
        assert_eq!(parse(json!([{}, 1, null])).map(|t| t.len()).ok(), Some(1));
        assert_eq!(parse(json!({})).ok(), Some(vec![Task::default()]));
    }
}

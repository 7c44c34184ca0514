//! The ECS API's documents as discovery reads them: only the fields it uses, every one
//! optional, unknown ones ignored.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListTasksPage {
    #[serde(default)]
    pub(super) task_arns: Vec<String>,
    #[serde(default)]
    pub(super) next_token: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct DescribeTasksAnswer {
    #[serde(default)]
    pub(super) tasks: Vec<Task>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeTaskDefinitionAnswer {
    pub(super) task_definition: TaskDefinition,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DescribeContainerInstancesAnswer {
    #[serde(default)]
    pub(super) container_instances: Vec<ContainerInstance>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ContainerInstance {
    pub(super) container_instance_arn: Option<String>,
    pub(super) ec2_instance_id: Option<String>,
}

/// The parts of a described task discovery uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Task {
    /// Task ARN.
    pub task_arn: String,
    /// Cluster ARN.
    pub cluster_arn: Option<String>,
    /// Task definition ARN (with revision).
    pub task_definition_arn: Option<String>,
    /// `service:NAME` for service tasks.
    pub group: Option<String>,
    /// `PROVISIONING`, `PENDING`, `RUNNING`, ...
    pub last_status: Option<String>,
    /// `FARGATE`, `EC2`, `EXTERNAL`, `MANAGED_INSTANCES`.
    pub launch_type: Option<String>,
    /// Availability zone.
    pub availability_zone: Option<String>,
    /// The container instance of EC2 tasks.
    pub container_instance_arn: Option<String>,
    /// Elastic network interfaces of awsvpc tasks.
    pub attachments: Vec<Attachment>,
    /// Containers with their port bindings.
    pub containers: Vec<TaskContainer>,
    /// Task tags (with `include: TAGS`).
    pub tags: Vec<Tag>,
}

impl Task {
    /// The last part of the ARN.
    pub fn task_id(&self) -> &str {
        self.task_arn.rsplit('/').next().unwrap_or(&self.task_arn)
    }

    /// The cluster's name.
    pub fn cluster_name(&self) -> &str {
        let arn = self.cluster_arn.as_deref().unwrap_or_default();
        arn.rsplit('/').next().unwrap_or(arn)
    }

    /// The service of a service task (`group` is `service:NAME`).
    pub fn service_name(&self) -> Option<&str> {
        self.group.as_deref()?.strip_prefix("service:")
    }

    /// The private IPv4 address of the task's ENI.
    pub fn eni_address(&self) -> Option<&str> {
        let from_attachment = self
            .attachments
            .iter()
            .filter(|a| a.kind.as_deref() == Some("ElasticNetworkInterface"))
            .flat_map(|a| &a.details)
            .find(|d| d.name.as_deref() == Some("privateIPv4Address"))
            .and_then(|d| d.value.as_deref());
        from_attachment.or_else(|| {
            self.containers
                .iter()
                .flat_map(|c| &c.network_interfaces)
                .find_map(|n| n.private_ipv4_address.as_deref())
        })
    }

    /// The host port bound to `container_port` of `container` (bridge mode).
    pub fn host_port(&self, container: &str, container_port: u16) -> Option<u16> {
        self.containers
            .iter()
            .filter(|c| c.name == container)
            .flat_map(|c| &c.network_bindings)
            .find(|b| b.container_port == Some(container_port))
            .and_then(|b| b.host_port)
    }
}

/// A task attachment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Attachment {
    /// `ElasticNetworkInterface` for awsvpc.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Name-value details.
    pub details: Vec<NameValue>,
}

/// A name-value pair.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NameValue {
    /// Name.
    pub name: Option<String>,
    /// Value.
    pub value: Option<String>,
}

/// A container of a described task.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskContainer {
    /// Name from the container definition.
    pub name: String,
    /// Port bindings (bridge and host mode).
    pub network_bindings: Vec<NetworkBinding>,
    /// Network interfaces (awsvpc).
    pub network_interfaces: Vec<NetworkInterface>,
}

/// A port binding.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkBinding {
    /// Container port.
    pub container_port: Option<u16>,
    /// Host port (dynamic in bridge mode).
    pub host_port: Option<u16>,
}

/// A container's network interface.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkInterface {
    /// Private IPv4 address.
    pub private_ipv4_address: Option<String>,
}

/// A task tag.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Tag {
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// The parts of a task definition discovery uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TaskDefinition {
    /// Family.
    pub family: Option<String>,
    /// Revision.
    pub revision: Option<u64>,
    /// `awsvpc`, `bridge`, `host`, `none` (absent means bridge).
    pub network_mode: Option<String>,
    /// Container definitions.
    pub container_definitions: Vec<ContainerDefinition>,
}

/// The parts of a container definition discovery uses.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerDefinition {
    /// Name.
    pub name: String,
    /// Image.
    pub image: Option<String>,
    /// Docker labels.
    pub docker_labels: BTreeMap<String, String>,
}

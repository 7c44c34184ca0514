//! Targets from the ECS API for one cluster: every container whose docker labels name a
//! Prometheus port. Running tasks are listed every refresh, but a task is described only once,
//! when its ARN first appears (a running task's addresses and ports never change); task
//! definitions are cached for good (revisions are immutable) and container-instance addresses
//! for a while.

use crate::pagination::Pages;
use aws_api::{AwsClient, AwsError, Service};
use file_sd::TargetGroup;
use serde::Deserialize;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use tokio::time::Instant;

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

/// The most ARNs one ListTasks page, DescribeTasks or DescribeContainerInstances call takes.
const BATCH: usize = 100;

/// Hit and miss counts of the caches, for self-metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Listed tasks already described.
    pub task_hits: u64,
    /// Listed tasks that had to be described.
    pub task_misses: u64,
    /// Task definitions found in the cache.
    pub task_definition_hits: u64,
    /// Task definitions described.
    pub task_definition_misses: u64,
    /// Container-instance addresses found in the cache.
    pub container_instance_hits: u64,
    /// Container-instance addresses looked up.
    pub container_instance_misses: u64,
}

/// What a refresh of a cluster gave.
#[derive(Debug)]
pub struct Refreshed {
    /// Targets of every described running task.
    pub targets: Vec<TargetGroup>,
    /// Why some new tasks could not be described yet (they are tried again next refresh).
    pub partial_error: Option<String>,
}

/// One cluster's discovery state.
pub struct ClusterSource {
    cluster: String,
    container_instance_ttl: Duration,
    /// Targets of every described running task, by task ARN (a task with no labelled
    /// container has an empty list, so it is not described again).
    tasks: BTreeMap<String, Vec<TargetGroup>>,
    task_definitions: HashMap<String, TaskDefinition>,
    instance_addresses: HashMap<String, (String, Instant)>,
    /// Cache statistics since start.
    pub stats: CacheStats,
}

impl ClusterSource {
    /// A source for `cluster` (a name or an ARN).
    pub fn new(cluster: String, container_instance_ttl: Duration) -> Self {
        ClusterSource {
            cluster,
            container_instance_ttl,
            tasks: BTreeMap::new(),
            task_definitions: HashMap::new(),
            instance_addresses: HashMap::new(),
            stats: CacheStats::default(),
        }
    }

    /// The cluster as configured.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Lists the running tasks, describes the new ones and returns every target. Fails only
    /// when the list itself cannot be had.
    pub async fn refresh(&mut self, client: &AwsClient) -> Result<Refreshed, AwsError> {
        let listed = self.list_running_tasks(client).await?;
        self.tasks.retain(|arn, _| listed.contains(arn));
        let new: Vec<&String> = listed
            .iter()
            .filter(|arn| !self.tasks.contains_key(*arn))
            .collect();
        self.stats.task_hits += (listed.len() - new.len()) as u64;
        self.stats.task_misses += new.len() as u64;
        let mut errors = Vec::new();
        let mut described = Vec::new();
        for batch in new.chunks(BATCH) {
            match describe_tasks(client, &self.cluster, batch).await {
                Ok(tasks) => described.extend(tasks),
                Err(error) => errors.push(error.to_string()),
            }
        }
        // A task still starting has no address yet: describe it again next time.
        described.retain(|task| task.last_status.as_deref() == Some("RUNNING"));
        if let Err(error) = self.resolve_instance_addresses(client, &described).await {
            errors.push(error.to_string());
        }
        for task in described {
            let Some(definition_arn) = task.task_definition_arn.clone() else {
                continue;
            };
            let definition = match self.task_definition(client, &definition_arn).await {
                Ok(definition) => definition,
                Err(error) => {
                    errors.push(error.to_string());
                    continue;
                }
            };
            let instance_address = task
                .container_instance_arn
                .as_ref()
                .and_then(|arn| self.instance_addresses.get(arn))
                .map(|(address, _)| address.as_str());
            match targets_of_task(&task, &definition, instance_address) {
                Ok(targets) => {
                    self.tasks.insert(task.task_arn.clone(), targets);
                }
                Err(reason) => errors.push(format!("task {}: {reason}", task.task_arn)),
            }
        }
        Ok(Refreshed {
            targets: self.tasks.values().flatten().cloned().collect(),
            partial_error: (!errors.is_empty()).then(|| errors.join("; ")),
        })
    }

    async fn list_running_tasks(&self, client: &AwsClient) -> Result<BTreeSet<String>, AwsError> {
        let mut arns = BTreeSet::new();
        let mut next_token: Option<String> = None;
        let mut pages = Pages::new("ListTasks");
        loop {
            let mut input = json!({
                "cluster": self.cluster,
                "desiredStatus": "RUNNING",
                "maxResults": BATCH,
            });
            if let Some(token) = &next_token {
                input["nextToken"] = json!(token);
            }
            let page: ListTasksPage = client.json(Service::Ecs, "ListTasks", &input).await?;
            arns.extend(page.task_arns);
            next_token = pages.next(page.next_token)?;
            if next_token.is_none() {
                return Ok(arns);
            }
        }
    }

    async fn task_definition(
        &mut self,
        client: &AwsClient,
        arn: &str,
    ) -> Result<TaskDefinition, AwsError> {
        if let Some(definition) = self.task_definitions.get(arn) {
            self.stats.task_definition_hits += 1;
            return Ok(definition.clone());
        }
        self.stats.task_definition_misses += 1;
        let answer: DescribeTaskDefinitionAnswer = client
            .json(
                Service::Ecs,
                "DescribeTaskDefinition",
                &json!({ "taskDefinition": arn }),
            )
            .await?;
        self.task_definitions
            .insert(arn.to_owned(), answer.task_definition.clone());
        Ok(answer.task_definition)
    }

    /// Looks up the private address of every container instance these tasks run on that is
    /// not cached (or whose cache entry is older than the TTL).
    async fn resolve_instance_addresses(
        &mut self,
        client: &AwsClient,
        tasks: &[Task],
    ) -> Result<(), AwsError> {
        let now = Instant::now();
        let ttl = self.container_instance_ttl;
        let mut wanted = BTreeSet::new();
        for arn in tasks
            .iter()
            .filter_map(|t| t.container_instance_arn.as_ref())
        {
            match self.instance_addresses.get(arn) {
                Some((_, at)) if now.duration_since(*at) < ttl => {
                    self.stats.container_instance_hits += 1
                }
                _ => {
                    wanted.insert(arn.clone());
                }
            }
        }
        self.stats.container_instance_misses += wanted.len() as u64;
        let wanted: Vec<String> = wanted.into_iter().collect();
        for batch in wanted.chunks(BATCH) {
            let answer: DescribeContainerInstancesAnswer = client
                .json(
                    Service::Ecs,
                    "DescribeContainerInstances",
                    &json!({ "cluster": self.cluster, "containerInstances": batch }),
                )
                .await?;
            let by_instance: Vec<(String, String)> = answer
                .container_instances
                .into_iter()
                .filter_map(|ci| Some((ci.ec2_instance_id?, ci.container_instance_arn?)))
                .collect();
            if by_instance.is_empty() {
                continue;
            }
            let parameters: Vec<(String, String)> = by_instance
                .iter()
                .enumerate()
                .map(|(i, (id, _))| (format!("InstanceId.{}", i + 1), id.clone()))
                .collect();
            let xml = client.ec2_query("DescribeInstances", &parameters).await?;
            let addresses =
                aws_api::ec2::private_addresses(&xml).map_err(|reason| AwsError::Decode {
                    operation: "DescribeInstances",
                    reason,
                })?;
            for (instance_id, address) in addresses {
                if let Some((_, arn)) = by_instance.iter().find(|(id, _)| *id == instance_id) {
                    self.instance_addresses
                        .insert(arn.clone(), (address, Instant::now()));
                }
            }
        }
        Ok(())
    }
}

async fn describe_tasks(
    client: &AwsClient,
    cluster: &str,
    arns: &[&String],
) -> Result<Vec<Task>, AwsError> {
    let answer: DescribeTasksAnswer = client
        .json(
            Service::Ecs,
            "DescribeTasks",
            &json!({ "cluster": cluster, "tasks": arns, "include": ["TAGS"] }),
        )
        .await?;
    Ok(answer.tasks)
}

/// The targets of one running task: one per container whose docker labels name a port.
pub fn targets_of_task(
    task: &Task,
    definition: &TaskDefinition,
    instance_address: Option<&str>,
) -> Result<Vec<TargetGroup>, String> {
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
        let port: u16 = port_text.parse().map_err(|_| {
            format!(
                "container {:?}: {} {port_text:?} is not a port number",
                container.name,
                docker_labels::PORT
            )
        })?;
        let (host, port) = match network_mode {
            "awsvpc" => (
                task.eni_address()
                    .ok_or("awsvpc task without a private IPv4 address")?,
                port,
            ),
            "host" => (
                instance_address.ok_or("host-mode task without a container instance address")?,
                port,
            ),
            _ => (
                instance_address.ok_or("bridge-mode task without a container instance address")?,
                task.host_port(&container.name, port).ok_or_else(|| {
                    format!(
                        "container {:?} has no host port bound to container port {port}",
                        container.name
                    )
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
        if !is_task_metadata_exporter(container.image.as_deref().unwrap_or_default()) {
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

/// Whether an image is a task-metadata exporter (ecs-prom or ecs_exporter). Its metrics carry
/// a `container_name` label per container of the task, which a `container_name` target label
/// would overwrite, so its target leaves that label to `__meta_ecs_container_name`.
fn is_task_metadata_exporter(image: &str) -> bool {
    let repository = image.split(['@']).next().unwrap_or(image);
    let name = repository
        .rsplit('/')
        .next()
        .unwrap_or(repository)
        .split(':')
        .next()
        .unwrap_or_default();
    matches!(name, "ecs-prom" | "ecs-exporter" | "ecs_exporter")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListTasksPage {
    #[serde(default)]
    task_arns: Vec<String>,
    #[serde(default)]
    next_token: Option<String>,
}

#[derive(Deserialize)]
struct DescribeTasksAnswer {
    #[serde(default)]
    tasks: Vec<Task>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeTaskDefinitionAnswer {
    task_definition: TaskDefinition,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DescribeContainerInstancesAnswer {
    #[serde(default)]
    container_instances: Vec<ContainerInstance>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerInstance {
    container_instance_arn: Option<String>,
    ec2_instance_id: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(error.contains("container instance address"), "{error}");
        task.containers[0].network_bindings.clear();
        let error = targets_of_task(&task, &definition, Some("10.0.3.7")).expect_err("no binding");
        assert!(
            error.contains("no host port bound to container port 9090"),
            "{error}"
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
            assert!(is_task_metadata_exporter(image), "{image}");
        }
        for image in ["shop:1.2", "ecs-prom-demo", "nginx", ""] {
            assert!(!is_task_metadata_exporter(image), "{image}");
        }
    }
}

//! Targets from the ECS API for one cluster: every container whose docker labels name a
//! Prometheus port. Running tasks are listed every refresh, but a task is described only once,
//! when its ARN first appears (a running task's addresses and ports never change); task
//! definitions are cached for good (revisions are immutable) and container-instance addresses
//! for a while. The target rules are in `targets.rs`, the API documents in `wire.rs`.

mod targets;
mod wire;

pub use targets::{docker_labels, is_task_metadata_exporter, targets_of_task};
pub use wire::{
    Attachment, ContainerDefinition, NameValue, NetworkBinding, NetworkInterface, Tag, Task,
    TaskContainer, TaskDefinition,
};
use wire::{
    DescribeContainerInstancesAnswer, DescribeTaskDefinitionAnswer, DescribeTasksAnswer,
    ListTasksPage,
};

use crate::error::RefreshError;
use crate::pagination::Pages;
use aws_api::{AwsClient, AwsError, Service};
use file_sd::TargetGroup;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;
use tokio::time::Instant;

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
    pub partial_error: Option<RefreshError>,
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
                Err(error) => errors.push(RefreshError::from(error)),
            }
        }
        // A task still starting has no address yet: describe it again next time.
        described.retain(|task| task.last_status.as_deref() == Some("RUNNING"));
        if let Err(error) = self.resolve_instance_addresses(client, &described).await {
            errors.push(error.into());
        }
        for task in described {
            let Some(definition_arn) = task.task_definition_arn.clone() else {
                continue;
            };
            let definition = match self.task_definition(client, &definition_arn).await {
                Ok(definition) => definition,
                Err(error) => {
                    errors.push(error.into());
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
                Err(source) => errors.push(RefreshError::Target {
                    task_arn: task.task_arn.clone(),
                    source,
                }),
            }
        }
        Ok(Refreshed {
            targets: self.tasks.values().flatten().cloned().collect(),
            partial_error: RefreshError::of_all(errors),
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
                aws_api::private_addresses(&xml).map_err(|reason| AwsError::Decode {
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

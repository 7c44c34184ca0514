//! Targets from AWS Cloud Map, as the seed's sidecar found them: every instance of every
//! service in the named namespaces (of any type), scraped at the port and path the service's
//! tags name, plus a second target per instance for the task's exporter sidecar when the tags
//! name one. Every list call is paginated; instances Cloud Map reports unhealthy are left out
//! where the service has health checking.

use crate::error::RefreshError;
use crate::pagination::Pages;
use aws_api::{AwsClient, AwsError, Service};
use file_sd::TargetGroup;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};

/// Service tags that configure the targets.
pub mod tags {
    /// Path of the application's metrics (default `/metrics`).
    pub const METRICS_PATH: &str = "METRICS_PATH";
    /// Port of the application's metrics (default: the instance's `AWS_INSTANCE_PORT`, then 80).
    pub const METRICS_PORT: &str = "METRICS_PORT";
    /// Path of the exporter sidecar's metrics (default `/metrics`).
    pub const ECS_METRICS_PATH: &str = "ECS_METRICS_PATH";
    /// Port of the exporter sidecar: its presence adds the second target.
    pub const ECS_METRICS_PORT: &str = "ECS_METRICS_PORT";
}

/// Instance attributes ECS registers.
mod attributes {
    pub const IPV4: &str = "AWS_INSTANCE_IPV4";
    pub const PORT: &str = "AWS_INSTANCE_PORT";
    pub const CLUSTER: &str = "ECS_CLUSTER_NAME";
    pub const SERVICE: &str = "ECS_SERVICE_NAME";
    pub const FAMILY: &str = "ECS_TASK_DEFINITION_FAMILY";
    pub const REVISION: &str = "ECS_TASK_DEFINITION_REVISION";
    pub const ZONE: &str = "AVAILABILITY_ZONE";
}

/// A page of a Cloud Map list operation: its items and the token of the next page.
trait Page: DeserializeOwned {
    type Item;
    fn into_parts(self) -> (Vec<Self::Item>, Option<String>);
}

/// Calls a paginated list `operation` page by page (100 items a page) and gathers every item.
async fn all_pages<P: Page>(
    client: &AwsClient,
    operation: &'static str,
    mut input: serde_json::Value,
) -> Result<Vec<P::Item>, AwsError> {
    input["MaxResults"] = json!(100);
    let mut items = Vec::new();
    let mut pages = Pages::new(operation);
    loop {
        let page: P = client.json(Service::CloudMap, operation, &input).await?;
        let (page_items, next_token) = page.into_parts();
        items.extend(page_items);
        match pages.next(next_token)? {
            Some(token) => input["NextToken"] = json!(token),
            None => return Ok(items),
        }
    }
}

/// The id of every namespace in the account and region, by name.
pub async fn namespace_ids(client: &AwsClient) -> Result<HashMap<String, String>, AwsError> {
    let namespaces = all_pages::<ListNamespacesPage>(client, "ListNamespaces", json!({})).await?;
    Ok(namespaces.into_iter().map(|n| (n.name, n.id)).collect())
}

/// Every target of the namespace `name` (whose id `ids` holds).
pub async fn namespace_targets(
    client: &AwsClient,
    name: &str,
    ids: &HashMap<String, String>,
) -> Result<Vec<TargetGroup>, RefreshError> {
    let id = ids
        .get(name)
        .ok_or_else(|| RefreshError::UnknownNamespace(name.to_owned()))?;
    let mut targets = Vec::new();
    for service in list_services(client, id).await? {
        let tags = service_tags(client, &service.arn).await?;
        let mut instances = list_instances(client, &service.id).await?;
        if service.health_check_config.is_some() || service.health_check_custom_config.is_some() {
            let health = instance_health(client, &service.id).await?;
            instances.retain(|i| health.get(&i.id).map(String::as_str) != Some("UNHEALTHY"));
        }
        for instance in &instances {
            targets.extend(instance_targets(name, &service.name, &tags, instance));
        }
    }
    Ok(targets)
}

async fn list_services(
    client: &AwsClient,
    namespace_id: &str,
) -> Result<Vec<ServiceSummary>, AwsError> {
    let filter = json!({
        "Filters": [{ "Name": "NAMESPACE_ID", "Values": [namespace_id], "Condition": "EQ" }],
    });
    let mut services = all_pages::<ListServicesPage>(client, "ListServices", filter).await?;
    // The filter is the API's job; a summary that names another namespace is left out all
    // the same (some stand-ins ignore filters).
    services.retain(|s| s.namespace_id.as_deref().is_none_or(|n| n == namespace_id));
    Ok(services)
}

async fn service_tags(client: &AwsClient, arn: &str) -> Result<BTreeMap<String, String>, AwsError> {
    let answer: ListTagsAnswer = client
        .json(
            Service::CloudMap,
            "ListTagsForResource",
            &json!({ "ResourceARN": arn }),
        )
        .await?;
    Ok(answer.tags.into_iter().map(|t| (t.key, t.value)).collect())
}

async fn list_instances(client: &AwsClient, service_id: &str) -> Result<Vec<Instance>, AwsError> {
    all_pages::<ListInstancesPage>(client, "ListInstances", json!({ "ServiceId": service_id }))
        .await
}

async fn instance_health(
    client: &AwsClient,
    service_id: &str,
) -> Result<HashMap<String, String>, AwsError> {
    let status = all_pages::<HealthPage>(
        client,
        "GetInstancesHealthStatus",
        json!({ "ServiceId": service_id }),
    )
    .await?;
    Ok(status.into_iter().collect())
}

/// The application target of an instance and, when the tags name an exporter port, the
/// exporter target. An instance without an IPv4 address (or with an unusable port) has none.
pub fn instance_targets(
    namespace: &str,
    service: &str,
    tags: &BTreeMap<String, String>,
    instance: &Instance,
) -> Vec<TargetGroup> {
    let attribute = |name: &str| {
        instance
            .attributes
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let tag = |name: &str| tags.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let Some(address) = attribute(attributes::IPV4) else {
        return Vec::new();
    };
    let app_port = tag(tags::METRICS_PORT)
        .or_else(|| attribute(attributes::PORT))
        .unwrap_or("80");
    let mut endpoints = vec![("application", app_port, tag(tags::METRICS_PATH))];
    if let Some(port) = tag(tags::ECS_METRICS_PORT) {
        endpoints.push(("exporter", port, tag(tags::ECS_METRICS_PATH)));
    }
    let mut targets = Vec::new();
    for (role, port, path) in endpoints {
        let Ok(port) = port.parse::<u16>() else {
            tracing::warn!(namespace, service, instance = %instance.id, port, "Cloud Map port is not a number; target left out");
            continue;
        };
        let mut target = TargetGroup::new(address, port);
        target.label("namespace", namespace);
        target.label("service", attribute(attributes::SERVICE).unwrap_or(service));
        target.label(
            "cluster",
            attribute(attributes::CLUSTER).unwrap_or_default(),
        );
        target.label(
            "task_family",
            attribute(attributes::FAMILY).unwrap_or_default(),
        );
        target.label(
            "task_revision",
            attribute(attributes::REVISION).unwrap_or_default(),
        );
        // ECS registers each task as an instance whose id is the task id.
        target.label("task_id", &instance.id);
        target.label(
            "availability_zone",
            attribute(attributes::ZONE).unwrap_or_default(),
        );
        target.metrics_path(path.unwrap_or("/metrics"));
        target.label("__meta_cloudmap_namespace", namespace);
        target.label("__meta_cloudmap_service_name", service);
        target.label("__meta_cloudmap_instance_id", &instance.id);
        target.label("__meta_cloudmap_endpoint", role);
        for (name, value) in &instance.attributes {
            target.meta_label("__meta_cloudmap_instance_attribute_", name, value);
        }
        for (name, value) in tags {
            target.meta_label("__meta_cloudmap_service_tag_", name, value);
        }
        targets.push(target);
    }
    targets
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListNamespacesPage {
    #[serde(default)]
    namespaces: Vec<NamespaceSummary>,
    #[serde(default)]
    next_token: Option<String>,
}

impl Page for ListNamespacesPage {
    type Item = NamespaceSummary;
    fn into_parts(self) -> (Vec<NamespaceSummary>, Option<String>) {
        (self.namespaces, self.next_token)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NamespaceSummary {
    id: String,
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListServicesPage {
    #[serde(default)]
    services: Vec<ServiceSummary>,
    #[serde(default)]
    next_token: Option<String>,
}

impl Page for ListServicesPage {
    type Item = ServiceSummary;
    fn into_parts(self) -> (Vec<ServiceSummary>, Option<String>) {
        (self.services, self.next_token)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServiceSummary {
    id: String,
    arn: String,
    name: String,
    #[serde(default)]
    namespace_id: Option<String>,
    #[serde(default)]
    health_check_config: Option<serde_json::Value>,
    #[serde(default)]
    health_check_custom_config: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListTagsAnswer {
    #[serde(default)]
    tags: Vec<CloudMapTag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CloudMapTag {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListInstancesPage {
    #[serde(default)]
    instances: Vec<Instance>,
    #[serde(default)]
    next_token: Option<String>,
}

impl Page for ListInstancesPage {
    type Item = Instance;
    fn into_parts(self) -> (Vec<Instance>, Option<String>) {
        (self.instances, self.next_token)
    }
}

/// A registered instance.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Instance {
    /// Instance id (the task id for ECS registrations).
    pub id: String,
    /// Attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HealthPage {
    #[serde(default)]
    status: HashMap<String, String>,
    #[serde(default)]
    next_token: Option<String>,
}

impl Page for HealthPage {
    type Item = (String, String);
    fn into_parts(self) -> (Vec<(String, String)>, Option<String>) {
        (self.status.into_iter().collect(), self.next_token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(attributes: &[(&str, &str)]) -> Instance {
        Instance {
            id: "5f2e9c".into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn tags_give_an_application_and_an_exporter_target() {
        let tags: BTreeMap<String, String> = [
            ("METRICS_PATH", "/app/metrics"),
            ("METRICS_PORT", "3000"),
            ("ECS_METRICS_PATH", "/metrics"),
            ("ECS_METRICS_PORT", "9779"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let i = instance(&[
            ("AWS_INSTANCE_IPV4", "10.0.1.10"),
            ("AWS_INSTANCE_PORT", "8080"),
            ("ECS_CLUSTER_NAME", "prod"),
            ("ECS_SERVICE_NAME", "web-svc"),
            ("ECS_TASK_DEFINITION_FAMILY", "web"),
            ("AVAILABILITY_ZONE", "us-east-1a"),
        ]);
        let targets = instance_targets("ecs-services", "web", &tags, &i);
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].targets, ["10.0.1.10:3000"]);
        assert_eq!(targets[1].targets, ["10.0.1.10:9779"]);
        let app = &targets[0].labels;
        assert_eq!(app["__metrics_path__"], "/app/metrics");
        assert_eq!(app["namespace"], "ecs-services");
        assert_eq!(app["service"], "web-svc");
        assert_eq!(app["cluster"], "prod");
        assert_eq!(app["task_family"], "web");
        assert_eq!(app["task_id"], "5f2e9c");
        assert_eq!(app["availability_zone"], "us-east-1a");
        assert_eq!(app["__meta_cloudmap_endpoint"], "application");
        assert_eq!(app["__meta_cloudmap_service_tag_METRICS_PORT"], "3000");
        assert!(!targets[1].labels.contains_key("__metrics_path__"));
        assert_eq!(targets[1].labels["__meta_cloudmap_endpoint"], "exporter");
    }

    #[test]
    fn port_falls_back_to_the_instance_port_then_80() {
        let none = BTreeMap::new();
        let with_port = instance(&[
            ("AWS_INSTANCE_IPV4", "10.0.0.1"),
            ("AWS_INSTANCE_PORT", "8080"),
        ]);
        assert_eq!(
            instance_targets("n", "s", &none, &with_port)[0].targets,
            ["10.0.0.1:8080"]
        );
        let bare = instance(&[("AWS_INSTANCE_IPV4", "10.0.0.1")]);
        let targets = instance_targets("n", "s", &none, &bare);
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].targets, ["10.0.0.1:80"]);
        assert_eq!(targets[0].labels["service"], "s");
        assert!(instance_targets("n", "s", &none, &instance(&[])).is_empty());
    }
}

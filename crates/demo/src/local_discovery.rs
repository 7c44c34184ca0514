//! `ecs-prom demo --discovery`: a local `moto_server` stands in for AWS, the cluster's tasks are
//! registered in its Cloud Map the way ECS registers a service's tasks, and `ecs-prom discovery`
//! finds them there and writes the file_sd file the demo's Prometheus reads.

use crate::cluster::DemoTask;
use crate::process::Program;
use crate::targets::{APP_JOB, EXPORTER_JOB};
use ::discovery::Namespaces;
use anyhow::Context;
use aws_api::{AwsClient, AwsConfig, ClientOptions, Service};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How discovery runs in the demo.
#[derive(Debug, Clone)]
pub struct DiscoveryConfig {
    /// The `moto_server` executable (a name looked up on `PATH`, or a path).
    pub moto_binary: PathBuf,
    /// Time between discovery's refreshes.
    pub refresh_interval: Duration,
}

/// The Cloud Map namespace the demo registers its tasks in.
pub const NAMESPACE: &str = "ecs-prom-demo";

/// How long moto_server may take to answer after it was started.
const MOTO_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A `moto_server` on a free loopback port, playing AWS.
pub struct LocalAws {
    program: Program,
    /// Its base URL, the endpoint of every AWS service.
    pub url: String,
}

impl LocalAws {
    /// Starts moto_server with its log in `dir` and waits until it answers.
    pub async fn start(config: &DiscoveryConfig, dir: &Path) -> anyhow::Result<LocalAws> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("finding a free loopback port for moto_server")?
            .port();
        let args = [
            "-H".to_owned(),
            "127.0.0.1".to_owned(),
            "-p".to_owned(),
            port.to_string(),
        ];
        let program = Program::start(
            "moto_server",
            &config.moto_binary,
            &args,
            dir.join("moto_server.log"),
            "install it (`pip install 'moto[server]'`, in a virtualenv) or give its path with \
             --discovery.moto-binary",
        )?;
        let mut aws = LocalAws {
            program,
            url: format!("http://127.0.0.1:{port}"),
        };
        aws.program
            .wait_until_ready(&aws.url, "/moto-api/", MOTO_READY_TIMEOUT)
            .await?;
        Ok(aws)
    }

    /// A client for this server, with the dummy credentials moto accepts.
    pub fn client(&self) -> AwsClient {
        let env = |key: &str| match key {
            "AWS_ENDPOINT_URL" => Some(self.url.clone()),
            "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("demo".to_owned()),
            _ => None,
        };
        let options = ClientOptions {
            attempt_timeout: Duration::from_secs(5),
            ..ClientOptions::default()
        };
        AwsClient::new(AwsConfig::from_env(env), "us-east-1".to_owned(), options)
    }

    /// Completes if moto_server exits on its own.
    pub async fn exited(&mut self) -> anyhow::Error {
        self.program.exited().await
    }

    /// Stops moto_server.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.program.stop().await
    }
}

/// Registers every task twice in the namespace [`NAMESPACE`]: its demo app as an instance of
/// the Cloud Map service `demo-app`, its exporter as one of `ecs-exporter`, with the
/// attributes ECS gives a task's instance. All share 127.0.0.1, so each instance carries its
/// own port (`AWS_INSTANCE_PORT`) where a real service would tag one port for all.
pub async fn register(client: &AwsClient, tasks: &[DemoTask]) -> anyhow::Result<()> {
    let _: serde_json::Value = client
        .json(
            Service::CloudMap,
            "CreateHttpNamespace",
            &json!({ "Name": NAMESPACE }),
        )
        .await
        .context("creating the Cloud Map namespace")?;
    let namespace_id = namespace_id(client).await?;
    for service in [APP_JOB, EXPORTER_JOB] {
        let created: CreatedService = client
            .json(
                Service::CloudMap,
                "CreateService",
                &json!({
                    "Name": service,
                    "NamespaceId": namespace_id,
                    "Tags": [{ "Key": "METRICS_PATH", "Value": "/metrics" }],
                }),
            )
            .await
            .with_context(|| format!("creating the Cloud Map service {service}"))?;
        for task in tasks {
            let url = if service == APP_JOB {
                &task.app_url
            } else {
                &task.exporter_url
            };
            let _: serde_json::Value = client
                .json(
                    Service::CloudMap,
                    "RegisterInstance",
                    &json!({
                        "ServiceId": created.service.id,
                        "InstanceId": task.id,
                        "Attributes": instance_attributes(task, url)?,
                    }),
                )
                .await
                .with_context(|| format!("registering task {} in {service}", task.id))?;
        }
    }
    Ok(())
}

/// The attributes ECS sets on a task's Cloud Map instance, for the server at `url`.
fn instance_attributes(task: &DemoTask, url: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let (host, port) = url
        .trim_start_matches("http://")
        .rsplit_once(':')
        .with_context(|| format!("{url} has no port"))?;
    let m = &task.metadata;
    // The metadata names the cluster by ARN; ECS registers its name.
    let cluster = m.cluster.rsplit('/').next().unwrap_or(&m.cluster);
    let attributes = [
        ("AWS_INSTANCE_IPV4", host),
        ("AWS_INSTANCE_PORT", port),
        ("ECS_CLUSTER_NAME", cluster),
        ("ECS_SERVICE_NAME", &m.service_name),
        ("ECS_TASK_DEFINITION_FAMILY", &m.family),
        ("ECS_TASK_DEFINITION_REVISION", &m.revision),
        ("AVAILABILITY_ZONE", &m.availability_zone),
    ];
    Ok(attributes
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect())
}

async fn namespace_id(client: &AwsClient) -> anyhow::Result<String> {
    let listed: ListedNamespaces = client
        .json(Service::CloudMap, "ListNamespaces", &json!({}))
        .await
        .context("listing the Cloud Map namespaces")?;
    listed
        .namespaces
        .into_iter()
        .find(|namespace| namespace.name == NAMESPACE)
        .map(|namespace| namespace.id)
        .context("the namespace just created is not listed")
}

/// Discovery's configuration: the demo's namespace, written to `file_sd`.
pub fn discovery_config(config: &DiscoveryConfig, file_sd: &Path) -> ::discovery::Config {
    ::discovery::Config {
        namespaces: Namespaces::Fixed(vec![NAMESPACE.to_owned()]),
        clusters: Vec::new(),
        output_file: Some(file_sd.to_owned()),
        state_file: None,
        refresh_interval: config.refresh_interval,
        refresh_timeout: config.refresh_interval,
        container_instance_ttl: Duration::from_secs(300),
        prometheus_config: None,
    }
}

#[derive(Deserialize)]
struct CreatedService {
    #[serde(rename = "Service")]
    service: IdOnly,
}

#[derive(Deserialize)]
struct IdOnly {
    #[serde(rename = "Id")]
    id: String,
}

#[derive(Deserialize)]
struct ListedNamespaces {
    #[serde(rename = "Namespaces", default)]
    namespaces: Vec<NamespaceSummary>,
}

#[derive(Deserialize)]
struct NamespaceSummary {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "Name")]
    name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_carries_the_task_s_ecs_attributes_and_its_own_port() {
        let task = crate::cluster::fixture_task();
        let attributes = instance_attributes(&task, &task.exporter_url).expect("attributes");
        // Values read from the fixture by hand; it names no service, so none is registered.
        let expected: BTreeMap<String, String> = [
            ("AWS_INSTANCE_IPV4", "127.0.0.1"),
            ("AWS_INSTANCE_PORT", "3"),
            ("ECS_CLUSTER_NAME", "prom-ecs-exporter-sandbox"),
            (
                "ECS_TASK_DEFINITION_FAMILY",
                "prom-ecs-exporter-sandbox-main-fargate",
            ),
            ("ECS_TASK_DEFINITION_REVISION", "9"),
            ("AVAILABILITY_ZONE", "us-east-1a"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(attributes, expected);
    }
}

//! The simulated cluster: the metadata simulator, and for every simulated task one demo app
//! and one exporter sidecar reading that task's metadata endpoint, and, in agent mode, one
//! `ecs-prom agent --ecs.task` sidecar. Every server runs in this process on a loopback port
//! chosen by the operating system, so nothing can collide.

use anyhow::Context;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// How the cluster is made.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Number of simulated tasks.
    pub tasks: usize,
    /// Seed of the simulation.
    pub seed: u64,
    /// The configuration every task's demo app starts from.
    pub app: demo_app::Config,
    /// An agent sidecar in every task.
    pub agents: Option<AgentSidecars>,
}

/// The agent sidecars of agent mode.
#[derive(Debug, Clone)]
pub struct AgentSidecars {
    /// Where they remote-write.
    pub remote_write_url: String,
    /// Their queues and configurations, one directory per task.
    pub storage: std::path::PathBuf,
    /// How often they scrape.
    pub scrape_interval: Duration,
}

/// The job of the agents' own metrics.
pub const AGENT_JOB: &str = "ecs-prom-agent";

/// One simulated task and the servers that belong to it.
#[derive(Debug, Clone)]
pub struct DemoTask {
    /// The task as its metadata endpoint describes it.
    pub metadata: ecs_metadata::Task,
    /// The task id (the last part of the task ARN).
    pub id: String,
    /// The task's `ECS_CONTAINER_METADATA_URI_V4`.
    pub metadata_uri: String,
    /// Base URL of the task's demo app.
    pub app_url: String,
    /// Base URL of the task's exporter sidecar.
    pub exporter_url: String,
    /// Base URL of the task's agent sidecar, in agent mode.
    pub agent_url: Option<String>,
}

/// The running cluster.
pub struct Cluster {
    /// Base URL of the metadata simulator (its `/` lists the tasks).
    pub simulator_url: String,
    /// The tasks, in simulation order.
    pub tasks: Vec<DemoTask>,
    servers: JoinSet<anyhow::Result<()>>,
    stop: watch::Sender<bool>,
}

/// A listener on a free loopback port and its base URL.
async fn loopback_listener() -> anyhow::Result<(TcpListener, String)> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("listening on a loopback port")?;
    let url = format!("http://{}", listener.local_addr()?);
    Ok((listener, url))
}

impl Cluster {
    /// Starts every server of the cluster and reads each task's metadata once.
    pub async fn start(config: &ClusterConfig) -> anyhow::Result<Cluster> {
        let (stop, _) = watch::channel(false);
        let mut cluster = Cluster {
            simulator_url: String::new(),
            tasks: Vec::new(),
            servers: JoinSet::new(),
            stop,
        };
        // The simulated tasks started a minute ago, so counters have history from the start.
        let started = ecs_simulator::now() - 60.0;
        let mut simulation = ecs_simulator::Simulation::new(config.seed, config.tasks, started);
        let task_ids: Vec<String> = simulation.tasks.iter().map(|t| t.id.clone()).collect();
        // Each app listens first, so its task's metadata can say where: the agents find the
        // apps through their docker labels, as on ECS.
        let mut app_listeners = Vec::new();
        for task in &mut simulation.tasks {
            let (listener, app_url) = loopback_listener().await?;
            let port = listener.local_addr()?.port();
            if let Some(app) = task.containers.iter_mut().find(|c| c.name == "app") {
                app.container_port = Some(port);
                app.docker_labels
                    .insert("PROMETHEUS_EXPORTER_PORT".to_owned(), port.to_string());
                // A bridge-mode container is reached at its bridge address: here, loopback.
                app.bridge_address = Some("127.0.0.1".to_owned());
            }
            app_listeners.push((listener, app_url));
        }
        let (listener, simulator_url) = loopback_listener().await?;
        let faults = ecs_simulator::Faults::default();
        cluster.spawn("metadata simulator", |stopped| {
            ecs_simulator::run(simulation, faults, listener, stopped)
        });
        cluster.simulator_url = simulator_url;

        for (id, (listener, app_url)) in task_ids.into_iter().zip(app_listeners) {
            let metadata_uri = ecs_simulator::metadata_uri(&cluster.simulator_url, &id);
            let metadata = read_task(&metadata_uri).await?;

            let app = config.app.clone();
            cluster.spawn("demo app", |stopped| demo_app::run(app, listener, stopped));

            let (listener, exporter_url) = loopback_listener().await?;
            let exporter = ecs_exporter::Config {
                metadata_url: metadata_uri.clone(),
                scope: ecs_exporter::Scope::Task,
                timeout: Duration::from_secs(5),
                telemetry_path: "/metrics".to_owned(),
                // Every exporter shares this process: process_* would be the demo's figures.
                process_metrics: false,
            };
            cluster.spawn("exporter", |stopped| {
                ecs_exporter::run(exporter, listener, stopped)
            });

            let agent_url = match &config.agents {
                Some(agents) => Some(cluster.start_agent(agents, &id, &metadata_uri).await?),
                None => None,
            };

            cluster.tasks.push(DemoTask {
                metadata,
                id,
                metadata_uri,
                app_url,
                exporter_url,
                agent_url,
            });
        }
        Ok(cluster)
    }

    /// Starts the agent sidecar of task `id` in task mode, as `ecs-prom agent --ecs.task`
    /// would run with this metadata endpoint. Its base URL.
    async fn start_agent(
        &mut self,
        agents: &AgentSidecars,
        id: &str,
        metadata_uri: &str,
    ) -> anyhow::Result<String> {
        let storage = agents.storage.join(format!("agent-{id}"));
        std::fs::create_dir_all(&storage)
            .with_context(|| format!("creating {}", storage.display()))?;
        let options = agent::EcsTaskOptions {
            scope: agent::EcsScope::Task,
            metadata_url: Some(metadata_uri.to_owned()),
            task_metrics: true,
            refresh_interval: Duration::from_secs(5),
            scrape_interval: agents.scrape_interval,
            scrape_timeout: agents.scrape_interval,
            remote_write_url: agents.remote_write_url.clone(),
            region: None,
            role_arn: None,
        };
        let config_file = storage.join("ecs-task.yml");
        std::fs::write(&config_file, agent::ecs_task_config(&options))
            .with_context(|| format!("writing {}", config_file.display()))?;
        let options = agent::AgentOptions {
            config_file,
            storage: agent::StorageOptions {
                path: storage,
                max_bytes: 64 * 1024 * 1024,
                // The demo's queues die with it.
                fsync: false,
            },
            strictness: agent::Strictness::Prometheus,
        };
        let (listener, url) = loopback_listener().await?;
        self.spawn("agent", |stopped| async move {
            agent::run(options, listener.into(), stopped)
                .await
                .map_err(|error| std::io::Error::other(web::error_chain(&error)))
        });
        Ok(url)
    }

    /// Runs one server until the cluster stops. `serve` gets the future that completes when
    /// it should shut down gracefully. A new component of the demo is one more call.
    pub fn spawn<F>(
        &mut self,
        what: &'static str,
        serve: impl FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> F,
    ) where
        F: Future<Output = std::io::Result<()>> + Send + 'static,
    {
        let mut stop = self.stop.subscribe();
        let stopped = Box::pin(async move {
            // An error means the sender is gone, which also means stop.
            let _ = stop.wait_for(|stop| *stop).await;
        });
        let served = serve(stopped);
        self.servers
            .spawn(async move { served.await.with_context(|| format!("the {what} failed")) });
    }

    /// Completes with an error as soon as a server ends before the cluster was told to stop.
    pub async fn failed(&mut self) -> anyhow::Error {
        match self.servers.join_next().await {
            Some(Ok(Err(error))) => error,
            Some(Ok(Ok(()))) => anyhow::anyhow!("a server of the demo stopped unexpectedly"),
            Some(Err(error)) => anyhow::Error::from(error).context("a server of the demo failed"),
            None => std::future::pending().await,
        }
    }

    /// Stops every server gracefully and waits for each to release its port.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let mut first_error = None;
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(joined) = self.servers.join_next().await {
                let outcome = joined
                    .map_err(anyhow::Error::from)
                    .and_then(|served| served);
                if let Err(error) = outcome {
                    first_error.get_or_insert(error);
                }
            }
        })
        .await;
        if drained.is_err() {
            // Dropping the set aborts what is left; its sockets close with it.
            self.servers.abort_all();
            first_error.get_or_insert(anyhow::anyhow!(
                "servers of the demo did not stop within 10 s and were aborted"
            ));
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Reads a task's own metadata document from its simulated endpoint.
async fn read_task(metadata_uri: &str) -> anyhow::Result<ecs_metadata::Task> {
    let client = ecs_metadata::MetadataClient::new(metadata_uri, Duration::from_secs(5))?;
    let body = client.fetch(ecs_metadata::paths::TASK).await?;
    ecs_metadata::parse_tasks(&body)?
        .into_iter()
        .next()
        .context("the simulated task metadata holds no task")
}

/// A task made from the captured Fargate fixture, with its app on port 2 and its exporter on
/// port 3 of 127.0.0.1 (for unit tests).
#[cfg(test)]
#[allow(clippy::expect_used)]
pub(crate) fn fixture_task() -> DemoTask {
    let body = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/ecs-metadata/ecs_exporter-fargate_task_metadata.json"
    ))
    .expect("fixture");
    let metadata = ecs_metadata::parse_tasks(&body).expect("parses").remove(0);
    DemoTask {
        metadata,
        id: "abc".to_owned(),
        metadata_uri: "http://127.0.0.1:1/v4/abc".to_owned(),
        app_url: "http://127.0.0.1:2".to_owned(),
        exporter_url: "http://127.0.0.1:3".to_owned(),
        agent_url: None,
    }
}

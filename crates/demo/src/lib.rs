//! `ecs-prom demo`: the whole pipeline on a laptop. A [`cluster`] of simulated ECS tasks, each
//! with its demo app and exporter sidecar, their scrape [`targets`] in a file_sd file (or, with
//! [`local_discovery`], registered in a local Cloud Map and found by `ecs-prom discovery`), a
//! real [`prometheus`] when asked for, and a live [`summary`] computed from what the demo
//! scrapes. In agent mode every task also has an `ecs-prom agent --ecs.task` sidecar that
//! remote-writes its app's and its ECS metrics into the demo's Prometheus, which then scrapes
//! only the agents' own metrics.
//!
//! A new component joins with one [`Cluster::spawn`] call (it gets the stop signal and its
//! failure ends the demo), plus, where Prometheus should read from it instead of the demo's own
//! file_sd file, a line in [`prometheus::config_file`].

pub mod cluster;
pub mod figures;
pub mod local_discovery;
pub mod process;
pub mod prometheus;
pub mod summary;
pub mod targets;

pub use cluster::{AgentSidecars, ClusterConfig};
pub use local_discovery::DiscoveryConfig;
pub use prometheus::PrometheusConfig;
pub use summary::Style;

use anyhow::Context;
use cluster::Cluster;
use local_discovery::LocalAws;
use prometheus::Prometheus;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use summary::Summary;
use tokio::time::Instant;

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The simulated cluster.
    pub cluster: ClusterConfig,
    /// Start a Prometheus that scrapes the cluster.
    pub prometheus: Option<PrometheusConfig>,
    /// Register the tasks in a local Cloud Map (moto_server) and let `ecs-prom discovery`
    /// write the file_sd file.
    pub discovery: Option<DiscoveryConfig>,
    /// Stop after this long; `None`: run until shut down.
    pub duration: Option<Duration>,
    /// How often the summary is written.
    pub summary_interval: Duration,
    /// How the summary is written.
    pub style: Style,
    /// An agent sidecar in every task, remote-writing into the demo's Prometheus (which
    /// [`Config::prometheus`] must then start).
    pub agent: bool,
}

/// Runs the demo until `duration` has passed or `shutdown` completes, then stops everything
/// it started (Prometheus first, moto_server last) and removes its working directory.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let workdir = WorkDir::create()?;
    let mut cluster_config = config.cluster.clone();
    if config.agent {
        let prometheus = config
            .prometheus
            .as_ref()
            .context("the agents remote-write into the demo's Prometheus: start it too")?;
        cluster_config.agents = Some(AgentSidecars {
            remote_write_url: format!("http://{}/api/v1/write", prometheus.listen_address),
            storage: workdir.path().join("agents"),
            scrape_interval: prometheus.scrape_interval,
        });
    }
    let mut cluster = Cluster::start(&cluster_config).await?;
    let mut aws = None;
    let outcome = run_cluster(&config, &mut cluster, &mut aws, workdir.path(), shutdown).await;
    let stopped = cluster.stop().await;
    let aws_stopped = match aws {
        Some(aws) => aws.stop().await,
        None => Ok(()),
    };
    drop(workdir);
    outcome.and(stopped).and(aws_stopped)
}

/// Where discovery runs in the demo.
struct DiscoveryUrls {
    /// `host:port` of discovery's endpoints.
    address: String,
    /// Base URL of the moto_server discovery reads.
    aws: String,
}

async fn run_cluster(
    config: &Config,
    cluster: &mut Cluster,
    aws: &mut Option<LocalAws>,
    workdir: &Path,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let file_sd = workdir.join("targets.json");
    let discovery = match &config.discovery {
        Some(discovery) => Some(start_discovery(discovery, cluster, aws, workdir, &file_sd).await?),
        None => {
            targets::write_file_sd(&file_sd, &targets::target_groups(&cluster.tasks))
                .context("writing the file_sd targets")?;
            None
        }
    };
    let discovery_address = discovery.as_ref().map(|d| d.address.as_str());
    let mut prometheus = match &config.prometheus {
        Some(prometheus) => {
            Some(Prometheus::start(prometheus, workdir, &file_sd, discovery_address).await?)
        }
        None => None,
    };
    let header = header(config, cluster, prometheus.as_ref(), discovery.as_ref());
    write_out(&header);
    let mut summary = Summary::new(&cluster.tasks)?;
    let started = Instant::now();
    let end = config.duration.map(|duration| started + duration);
    let mut scrapes = tokio::time::interval(summary::SCRAPE_INTERVAL);
    // A slow round of scrapes delays the next one rather than causing a burst.
    scrapes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_summary = started + config.summary_interval;
    let mut shutdown = std::pin::pin!(shutdown);
    let outcome = loop {
        tokio::select! {
            () = &mut shutdown => break Ok(()),
            () = sleep_until(end) => break Ok(()),
            error = cluster.failed() => break Err(error),
            error = exited(&mut prometheus) => break Err(error),
            error = aws_exited(aws) => break Err(error),
            _ = scrapes.tick() => {
                summary.scrape().await;
                if Instant::now() >= next_summary {
                    next_summary += config.summary_interval;
                    let table = summary::render(&summary.figures(), config.style);
                    match config.style {
                        // Clear the screen and redraw from its top-left corner.
                        Style::Table => write_out(&format!("\x1b[2J\x1b[H{header}\n{table}")),
                        Style::Lines => write_out(&table),
                    }
                }
            }
        }
    };
    let stopped = match prometheus {
        Some(prometheus) => prometheus.stop().await,
        None => Ok(()),
    };
    outcome.and(stopped)
}

/// Starts moto_server, registers the tasks in its Cloud Map, and runs `ecs-prom discovery`
/// against it as one of the cluster's servers, writing `file_sd`.
async fn start_discovery(
    config: &DiscoveryConfig,
    cluster: &mut Cluster,
    aws: &mut Option<LocalAws>,
    workdir: &Path,
    file_sd: &Path,
) -> anyhow::Result<DiscoveryUrls> {
    let local = aws.insert(LocalAws::start(config, workdir).await?);
    let client = Arc::new(local.client());
    local_discovery::register(&client, &cluster.tasks)
        .await
        .context("registering the tasks in moto_server's Cloud Map")?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("listening on a loopback port for discovery")?;
    let address = listener.local_addr()?.to_string();
    let discovery_config = local_discovery::discovery_config(config, file_sd);
    cluster.spawn("discovery", move |stopped| {
        ::discovery::run(discovery_config, client, listener, stopped)
    });
    Ok(DiscoveryUrls {
        address,
        aws: local.url.clone(),
    })
}

/// What runs where, and how to stop it.
fn header(
    config: &Config,
    cluster: &Cluster,
    prometheus: Option<&Prometheus>,
    discovery: Option<&DiscoveryUrls>,
) -> String {
    let prefix = match config.style {
        Style::Table => "",
        Style::Lines => "# ",
    };
    let mut lines = vec![format!(
        "ecs-prom demo: {} simulated ECS tasks; metadata simulator {}/",
        cluster.tasks.len(),
        cluster.simulator_url
    )];
    for task in &cluster.tasks {
        let sidecar = match &task.agent_url {
            Some(agent_url) => format!("agent {agent_url}/"),
            None => format!("exporter {}/metrics", task.exporter_url),
        };
        lines.push(format!(
            "  task {} {:<17} app {}/metrics  {sidecar}",
            &task.id[..task.id.len().min(8)],
            task.metadata.launch_type,
            task.app_url,
        ));
    }
    if let Some(discovery) = discovery {
        lines.push(format!(
            "Discovery: http://{}/ finds the tasks in Cloud Map namespace {} of moto_server {}",
            discovery.address,
            local_discovery::NAMESPACE,
            discovery.aws
        ));
    }
    if let Some(prometheus) = prometheus {
        lines.push(format!("Prometheus: {}", graph_url(&prometheus.url)));
        lines.push(format!("  targets: {}/targets", prometheus.url));
    }
    lines.push(match config.duration {
        Some(duration) => format!("Stops after {duration:?}, or on Ctrl-C."),
        None => "Ctrl-C stops the demo.".to_owned(),
    });
    lines
        .iter()
        .map(|line| format!("{prefix}{line}\n"))
        .collect()
}

/// A Prometheus graph page with the demo's two liveliest figures: CPU used per task and
/// requests per second per task.
pub fn graph_url(prometheus_url: &str) -> String {
    let expressions = [
        "sum by (task_id, launch_type) (rate(ecs_container_cpu_usage_seconds_total[1m]))",
        "sum by (task_id, launch_type) (rate(http_requests_total[1m]))",
    ];
    let panels: Vec<String> = expressions
        .iter()
        .enumerate()
        .map(|(i, expression)| {
            format!(
                "g{i}.expr={}&g{i}.tab=0&g{i}.range_input=15m",
                aws_api::uri_encode(expression)
            )
        })
        .collect();
    format!("{prometheus_url}/graph?{}", panels.join("&"))
}

/// Writes to standard output. A reader that went away (`| head`) does not stop the demo.
fn write_out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

async fn sleep_until(end: Option<Instant>) {
    match end {
        Some(end) => tokio::time::sleep_until(end).await,
        None => std::future::pending().await,
    }
}

async fn exited(prometheus: &mut Option<Prometheus>) -> anyhow::Error {
    match prometheus {
        Some(prometheus) => prometheus.exited().await,
        None => std::future::pending().await,
    }
}

async fn aws_exited(aws: &mut Option<LocalAws>) -> anyhow::Error {
    match aws {
        Some(aws) => aws.exited().await,
        None => std::future::pending().await,
    }
}

/// The demo's own directory (Prometheus' configuration, data and log, the file_sd file),
/// removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> anyhow::Result<WorkDir> {
        let path = std::env::temp_dir().join(format!("ecs-prom-demo-{}", std::process::id()));
        // Left over from an earlier demo that had the same process id and was killed.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(WorkDir(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(path = %self.0.display(), %error, "could not remove the demo's directory");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_url_carries_both_expressions_encoded() {
        let url = graph_url("http://127.0.0.1:9090");
        assert!(url.starts_with("http://127.0.0.1:9090/graph?g0.expr=sum%20by%20%28task_id%2C%20launch_type%29%20%28rate%28ecs_container_cpu_usage_seconds_total%5B1m%5D%29%29&g0.tab=0"), "{url}");
        assert!(url.contains("&g1.expr=sum%20by%20%28task_id%2C%20launch_type%29%20%28rate%28http_requests_total%5B1m%5D%29%29&g1.tab=0&g1.range_input=15m"), "{url}");
    }
}

//! The exporter's metrics without its HTTP server: one read of the metadata endpoint turned
//! into the ECS families and the collectors' own, as `/metrics` serves them. The agent calls
//! it in-process for a task's ECS metrics.

use crate::metrics::{Inputs, Scope, SharedInterfaces, ecs_families};
use crate::upstream::{Collected, Upstream};
use ecs_metadata::{InvalidBaseUrl, MetadataClient};
use exposition::{Family, MetricType};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Reads one endpoint (task or instance scope) into metric families.
pub struct Collector {
    upstream: Arc<Upstream>,
    scope: Scope,
    shared_interfaces: Mutex<SharedInterfaces>,
}

impl Collector {
    /// A collector of the endpoint at `metadata_url`, each request within `timeout`.
    pub fn new(
        metadata_url: &str,
        scope: Scope,
        timeout: Duration,
    ) -> Result<Self, InvalidBaseUrl> {
        let client = MetadataClient::new(metadata_url, timeout)?;
        Ok(Collector {
            upstream: Arc::new(Upstream::new(client, scope)),
            scope,
            shared_interfaces: Mutex::new(SharedInterfaces::default()),
        })
    }

    /// The endpoint, for readiness checks.
    pub fn upstream(&self) -> &Arc<Upstream> {
        &self.upstream
    }

    /// The ECS families and the collectors' own (`ecs_exporter_*`), or, when nothing usable
    /// could be read, why: one line per collector that failed.
    pub async fn collect(&self) -> Result<Vec<Family>, String> {
        let reading = self.upstream.read().await;
        // `last_good_tasks` is this reading's metadata when it was read, else the last good copy.
        let tasks = reading
            .last_good_tasks
            .as_ref()
            .filter(|_| !reading.all_failed());
        let Some(tasks) = tasks else {
            let mut reasons = String::from("the ECS task metadata endpoint could not be read:\n");
            for (collector, error) in [
                ("metadata", reading.metadata.result.as_ref().err()),
                ("stats", reading.stats.result.as_ref().err()),
            ] {
                if let Some(error) = error {
                    reasons.push_str(&format!("{collector}: {}\n", web::error_chain(error)));
                }
            }
            if reading.metadata.result.is_err() && reading.stats.result.is_ok() {
                reasons.push_str("stats cannot be attributed to containers before the task metadata has been read once\n");
            }
            return Err(reasons);
        };
        let inputs = Inputs {
            tasks,
            tasks_current: reading.metadata.result.is_ok(),
            stats: reading.stats.result.as_ref().ok(),
            scope: self.scope,
        };
        let mut families = match self.shared_interfaces.lock() {
            Ok(mut shared_interfaces) => ecs_families(&inputs, &mut shared_interfaces),
            Err(_) => ecs_families(&inputs, &mut SharedInterfaces::default()),
        };
        families.extend(self_families(&reading.metadata, &reading.stats));
        Ok(families)
    }
}

fn self_families<A, B>(metadata: &Collected<A>, stats: &Collected<B>) -> Vec<Family> {
    let mut build = Family::new(
        "ecs_exporter_build_info",
        "ecs-prom build that serves these metrics; always 1.",
        MetricType::Gauge,
    );
    build.push(vec![("version", env!("CARGO_PKG_VERSION").to_owned())], 1.0);
    let mut success = Family::new(
        "ecs_exporter_collector_success",
        "1 when the collector's request to the metadata endpoint succeeded in this scrape, else 0.",
        MetricType::Gauge,
    );
    let mut duration = Family::new(
        "ecs_exporter_collector_duration_seconds",
        "How long the collector's request to the metadata endpoint took in this scrape, in seconds.",
        MetricType::Gauge,
    );
    for (name, ok, took) in [
        ("metadata", metadata.result.is_ok(), metadata.duration),
        ("stats", stats.result.is_ok(), stats.duration),
    ] {
        success.push(vec![("collector", name.to_owned())], f64::from(ok));
        duration.push(vec![("collector", name.to_owned())], took.as_secs_f64());
    }
    vec![build, duration, success]
}

//! What the HTTP endpoints serve: a copy of discovery's state taken after each refresh, so
//! requests never wait for AWS and never trigger discovery themselves.

use crate::ecs::CacheStats;
use crate::error::RefreshError;
use crate::refresh::{Discovery, SourceKey, SourceStatus};
use aws_api::AwsClient;
use exposition::{Family, MetricType};
use file_sd::TargetGroup;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Where an error happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A namespace or a cluster.
    Source(SourceKey),
    /// The SSM parameter naming the namespaces.
    NamespacesParameter,
    /// Prometheus' configuration from SSM.
    PrometheusConfiguration,
    /// The file_sd or state file.
    Files,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Source(key) => write!(f, "{key}"),
            Place::NamespacesParameter => f.write_str("namespaces parameter"),
            Place::PrometheusConfiguration => f.write_str("prometheus configuration"),
            Place::Files => f.write_str("output"),
        }
    }
}

/// How writing discovery's files went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileCounts {
    /// file_sd writes.
    pub writes: u64,
    /// Failed writes of the file_sd file or the state file.
    pub failures: u64,
    /// Why the last write of one of them failed, while it does.
    pub error: Option<String>,
}

/// The state after the last completed refresh.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The http_sd / file_sd document.
    pub targets_json: String,
    /// The targets it holds.
    pub targets: Vec<TargetGroup>,
    /// Whether the targets are known (some source answered, now or before a restart, or a
    /// refresh succeeded); until then http_sd answers 503, not an empty list.
    pub known: bool,
    /// Whether a refresh has completed with every source good and the files are written.
    pub ready: bool,
    /// Each source's status.
    pub sources: BTreeMap<SourceKey, SourceStatus>,
    /// The error of the last read of the namespaces parameter.
    pub namespaces_error: Option<RefreshError>,
    /// The error of the last Prometheus configuration sync.
    pub config_error: Option<RefreshError>,
    /// Refreshes so far.
    pub refreshes: u64,
    /// Duration of the last refresh.
    pub last_duration: Option<Duration>,
    /// Last refresh with every source good.
    pub last_success: Option<f64>,
    /// Cache statistics.
    pub cache: CacheStats,
    /// How writing the files went.
    pub files: FileCounts,
    /// Prometheus configuration writes, reloads and failed reloads.
    pub config_counts: Option<(u64, u64, u64)>,
}

impl Snapshot {
    /// A copy of `discovery`'s state; `targets` are its targets and `targets_json` their
    /// rendering, both already made by the caller.
    pub fn of(
        discovery: &Discovery,
        targets: Vec<TargetGroup>,
        targets_json: String,
        files: FileCounts,
    ) -> Self {
        Snapshot {
            targets_json,
            targets,
            known: discovery.knows_targets(),
            ready: discovery.last_success.is_some() && files.error.is_none(),
            sources: discovery.sources.clone(),
            namespaces_error: discovery.namespaces_error.clone(),
            config_error: discovery
                .config_sync
                .as_ref()
                .and_then(|s| s.last_error.clone()),
            refreshes: discovery.refreshes,
            last_duration: discovery.last_duration,
            last_success: discovery.last_success,
            cache: discovery.cache_stats(),
            files,
            config_counts: discovery
                .config_sync
                .as_ref()
                .map(|s| (s.writes, s.reloads, s.reload_failures)),
        }
    }

    /// Every error of the last refresh in words, with where it happened.
    pub fn errors(&self) -> Vec<(Place, String)> {
        let mut errors: Vec<(Place, String)> = self
            .sources
            .iter()
            .filter_map(|(key, s)| {
                let error = s.last_error.as_ref()?;
                Some((Place::Source(key.clone()), error.to_string()))
            })
            .collect();
        if let Some(error) = &self.namespaces_error {
            errors.push((Place::NamespacesParameter, error.to_string()));
        }
        if let Some(error) = &self.config_error {
            errors.push((Place::PrometheusConfiguration, error.to_string()));
        }
        if let Some(error) = &self.files.error {
            errors.push((Place::Files, error.clone()));
        }
        errors
    }

    /// The self-metrics families.
    pub fn families(&self, client: &Arc<AwsClient>) -> Vec<Family> {
        let mut build = Family::new(
            "ecs_prom_discovery_build_info",
            "ecs-prom build that runs discovery; always 1.",
            MetricType::Gauge,
        );
        build.push(vec![("version", env!("CARGO_PKG_VERSION").to_owned())], 1.0);
        let mut refreshes = Family::new(
            "ecs_prom_discovery_refreshes_total",
            "Refreshes completed.",
            MetricType::Counter,
        );
        refreshes.push(Vec::new(), self.refreshes as f64);
        let mut duration = Family::new(
            "ecs_prom_discovery_refresh_duration_seconds",
            "How long the last refresh took.",
            MetricType::Gauge,
        );
        duration.push(
            Vec::new(),
            self.last_duration.map_or(0.0, |d| d.as_secs_f64()),
        );
        let mut last_success = Family::new(
            "ecs_prom_discovery_last_success_timestamp_seconds",
            "When a refresh last completed with every source good (0: never).",
            MetricType::Gauge,
        );
        last_success.push(Vec::new(), self.last_success.unwrap_or(0.0));
        let mut failures = Family::new(
            "ecs_prom_discovery_refresh_failures_total",
            "Refreshes in which a source failed (its previous targets were kept).",
            MetricType::Counter,
        );
        let mut targets = Family::new(
            "ecs_prom_discovery_targets",
            "Targets each source contributes.",
            MetricType::Gauge,
        );
        let mut source_up = Family::new(
            "ecs_prom_discovery_source_up",
            "1 when the source's last refresh succeeded, else 0.",
            MetricType::Gauge,
        );
        let mut source_success = Family::new(
            "ecs_prom_discovery_source_last_success_timestamp_seconds",
            "When the source last refreshed without error (0: never).",
            MetricType::Gauge,
        );
        for (key, status) in &self.sources {
            let labels = vec![
                ("source", key.kind.as_str().to_owned()),
                ("name", key.name.clone()),
            ];
            failures.push(labels.clone(), status.failures as f64);
            targets.push(labels.clone(), status.targets.len() as f64);
            source_up.push(
                labels.clone(),
                f64::from(u8::from(status.last_error.is_none())),
            );
            source_success.push(labels, status.last_success.unwrap_or(0.0));
        }
        let mut requests = Family::new(
            "ecs_prom_discovery_aws_requests_total",
            "AWS API attempts by service, operation and outcome (retries count; outcome=\"throttled\" counts throttles).",
            MetricType::Counter,
        );
        for ((service, operation, outcome), count) in client.counts().snapshot() {
            requests.push(
                vec![
                    ("service", service.signing_name().to_owned()),
                    ("operation", operation.to_owned()),
                    ("outcome", outcome.as_str().to_owned()),
                ],
                count as f64,
            );
        }
        let mut clock_offset = Family::new(
            "ecs_prom_discovery_aws_clock_offset_seconds",
            "AWS time minus local time, learnt when AWS rejected a request for its time; requests are signed with the corrected time (0 until then).",
            MetricType::Gauge,
        );
        clock_offset.push(Vec::new(), client.clock_offset_seconds() as f64);
        let mut hits = Family::new(
            "ecs_prom_discovery_cache_hits_total",
            "Look-ups answered from a cache instead of an AWS call.",
            MetricType::Counter,
        );
        let mut misses = Family::new(
            "ecs_prom_discovery_cache_misses_total",
            "Look-ups that needed an AWS call.",
            MetricType::Counter,
        );
        for (cache, hit, miss) in [
            ("task", self.cache.task_hits, self.cache.task_misses),
            (
                "task_definition",
                self.cache.task_definition_hits,
                self.cache.task_definition_misses,
            ),
            (
                "container_instance",
                self.cache.container_instance_hits,
                self.cache.container_instance_misses,
            ),
        ] {
            hits.push(vec![("cache", cache.to_owned())], hit as f64);
            misses.push(vec![("cache", cache.to_owned())], miss as f64);
        }
        let mut file_writes = Family::new(
            "ecs_prom_discovery_file_writes_total",
            "Times the file_sd file was rewritten (only changes are written).",
            MetricType::Counter,
        );
        file_writes.push(Vec::new(), self.files.writes as f64);
        let mut file_failures = Family::new(
            "ecs_prom_discovery_file_write_failures_total",
            "Failed writes of the file_sd file or the state file (discovery is not ready while the last one failed).",
            MetricType::Counter,
        );
        file_failures.push(Vec::new(), self.files.failures as f64);
        let mut families = vec![
            build,
            refreshes,
            duration,
            last_success,
            failures,
            targets,
            source_up,
            source_success,
            requests,
            clock_offset,
            hits,
            misses,
            file_writes,
            file_failures,
        ];
        if let Some((writes, reloads, reload_failures)) = self.config_counts {
            let mut config_writes = Family::new(
                "ecs_prom_discovery_config_writes_total",
                "Times the Prometheus configuration file was rewritten from SSM.",
                MetricType::Counter,
            );
            config_writes.push(Vec::new(), writes as f64);
            let mut reload = Family::new(
                "ecs_prom_discovery_prometheus_reloads_total",
                "Reload requests sent to Prometheus, by outcome.",
                MetricType::Counter,
            );
            reload.push(vec![("outcome", "success".to_owned())], reloads as f64);
            reload.push(
                vec![("outcome", "failure".to_owned())],
                reload_failures as f64,
            );
            families.push(config_writes);
            families.push(reload);
        }
        families
    }
}

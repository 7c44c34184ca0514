//! What the endpoints show: the jobs with their targets, the remotes with their queues, the
//! last reload; and the agent's self-metrics built from them.

use crate::status::{Health, JobCounters, TargetStatus};
use exposition::{Family, MetricType};
use remote_write::{Counters, DropReason};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The agent as the endpoints see it.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Jobs by name.
    pub jobs: BTreeMap<String, JobView>,
    /// Remotes in configuration order.
    pub remotes: Vec<RemoteView>,
    /// Configuration reloads.
    pub reloads: Reloads,
    /// Whether the configuration was loaded and the remotes started.
    pub ready: bool,
}

/// A job.
#[derive(Debug, Clone)]
pub struct JobView {
    /// Its targets, by labels.
    pub targets: Vec<Arc<TargetStatus>>,
    /// Addresses relabeling dropped.
    pub dropped: usize,
    /// Addresses that cannot be scraped, with why.
    pub invalid: Vec<String>,
    /// Providers whose last refresh failed (their last good targets are kept), with why.
    pub discovery_errors: Vec<String>,
    /// Its counters.
    pub counters: Arc<JobCounters>,
}

/// A remote.
#[derive(Debug, Clone)]
pub struct RemoteView {
    /// `name`, or the URL.
    pub name: String,
    /// `url`.
    pub url: String,
    /// Its queue's and sender's counters.
    pub counters: Arc<Counters>,
}

/// The configuration's reloads.
#[derive(Debug, Clone, Default)]
pub struct Reloads {
    /// Whether the last one succeeded.
    pub last_successful: bool,
    /// When one last succeeded (seconds since the epoch).
    pub last_success_seconds: f64,
    /// Why the last one failed, while it is the last.
    pub last_error: Option<String>,
}

impl Reloads {
    /// Records a reload that succeeded (`None`) or failed.
    pub fn record(&mut self, error: Option<String>) {
        self.last_successful = error.is_none();
        if error.is_none() {
            self.last_success_seconds = timestamps::now();
        }
        self.last_error = error;
    }
}

impl View {
    /// The self-metrics.
    pub fn families(&self) -> Vec<Family> {
        let mut build = Family::new(
            "ecs_prom_agent_build_info",
            "ecs-prom build that runs the agent; always 1.",
            MetricType::Gauge,
        );
        build.push(vec![("version", env!("CARGO_PKG_VERSION").to_owned())], 1.0);
        let mut reload_ok = Family::new(
            "ecs_prom_agent_config_last_reload_successful",
            "Whether the last configuration reload succeeded (1) or failed (0).",
            MetricType::Gauge,
        );
        reload_ok.push(
            Vec::new(),
            f64::from(u8::from(self.reloads.last_successful)),
        );
        let mut reload_at = Family::new(
            "ecs_prom_agent_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully.",
            MetricType::Gauge,
        );
        reload_at.push(Vec::new(), self.reloads.last_success_seconds);

        let mut targets = Family::new(
            "ecs_prom_agent_targets",
            "Targets by job and health of their last scrape (unknown: not scraped yet).",
            MetricType::Gauge,
        );
        let mut dropped = Family::new(
            "ecs_prom_agent_targets_dropped",
            "Discovered addresses of a job dropped by its relabel_configs.",
            MetricType::Gauge,
        );
        let mut invalid = Family::new(
            "ecs_prom_agent_targets_invalid",
            "Discovered addresses of a job that cannot be scraped (see the status page for why).",
            MetricType::Gauge,
        );
        let mut sd_failing = Family::new(
            "ecs_prom_agent_discovery_failing",
            "Service discovery providers of a job whose last refresh failed (their last good targets are kept).",
            MetricType::Gauge,
        );
        let mut scrapes = Family::new(
            "ecs_prom_agent_scrapes_total",
            "Scrapes by job and result (success, failure).",
            MetricType::Counter,
        );
        let mut scraped = Family::new(
            "ecs_prom_agent_samples_scraped_total",
            "Samples scraped, after metric relabeling, by job.",
            MetricType::Counter,
        );
        let mut append_failures = Family::new(
            "ecs_prom_agent_append_failures_total",
            "Appends to a remote's queue that failed (their samples were lost), by job.",
            MetricType::Counter,
        );
        for (name, job) in &self.jobs {
            let job_label = || vec![("scrape_job", name.clone())];
            for health in [Health::Up, Health::Down, Health::Unknown] {
                let count = job
                    .targets
                    .iter()
                    .filter(|t| t.state().health == health)
                    .count();
                targets.push(
                    vec![
                        ("scrape_job", name.clone()),
                        ("health", health.as_str().to_owned()),
                    ],
                    count as f64,
                );
            }
            dropped.push(job_label(), job.dropped as f64);
            invalid.push(job_label(), job.invalid.len() as f64);
            sd_failing.push(job_label(), job.discovery_errors.len() as f64);
            let counters = &job.counters;
            let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed) as f64;
            scrapes.push(
                vec![
                    ("scrape_job", name.clone()),
                    ("result", "success".to_owned()),
                ],
                load(&counters.scrapes_succeeded),
            );
            scrapes.push(
                vec![
                    ("scrape_job", name.clone()),
                    ("result", "failure".to_owned()),
                ],
                load(&counters.scrapes_failed),
            );
            scraped.push(job_label(), load(&counters.samples_scraped));
            append_failures.push(job_label(), load(&counters.append_failures));
        }

        let mut appended = Family::new(
            "ecs_prom_agent_remote_samples_appended_total",
            "Samples appended to a remote's queue (scraped, report series and stale markers).",
            MetricType::Counter,
        );
        let mut sent = Family::new(
            "ecs_prom_agent_remote_samples_sent_total",
            "Samples a remote accepted.",
            MetricType::Counter,
        );
        let mut retried = Family::new(
            "ecs_prom_agent_remote_samples_retried_total",
            "Samples sent again after a failed attempt (once per retry).",
            MetricType::Counter,
        );
        let mut dropped_samples = Family::new(
            "ecs_prom_agent_remote_samples_dropped_total",
            "Samples given up, by reason: too_old (retried past the age limit), rejected (a 4xx), queue_full (oldest data removed at the disk bound), corrupt (a damaged record).",
            MetricType::Counter,
        );
        let mut requests = Family::new(
            "ecs_prom_agent_remote_requests_total",
            "Remote-write requests by result: success (2xx) or failure (an error answer or none).",
            MetricType::Counter,
        );
        let mut bytes = Family::new(
            "ecs_prom_agent_remote_sent_bytes_total",
            "Compressed bytes of the requests a remote accepted.",
            MetricType::Counter,
        );
        let mut queue_bytes = Family::new(
            "ecs_prom_agent_queue_bytes",
            "Bytes of a remote's queue segments on disk.",
            MetricType::Gauge,
        );
        let mut queue_segments = Family::new(
            "ecs_prom_agent_queue_segments",
            "Segment files of a remote's queue.",
            MetricType::Gauge,
        );
        let mut newest_appended = Family::new(
            "ecs_prom_agent_remote_newest_appended_timestamp_seconds",
            "Timestamp of the newest sample appended to a remote's queue.",
            MetricType::Gauge,
        );
        let mut newest_sent = Family::new(
            "ecs_prom_agent_remote_newest_sent_timestamp_seconds",
            "Timestamp of the newest sample a remote accepted (the agent's start until one newer is).",
            MetricType::Gauge,
        );
        let mut lag = Family::new(
            "ecs_prom_agent_remote_lag_seconds",
            "Newest sample appended minus newest sample sent (or the agent's start, until a newer sample is sent): how far a remote is behind.",
            MetricType::Gauge,
        );
        for remote in &self.remotes {
            let stats = remote.counters.stats();
            let label = || vec![("remote", remote.name.clone())];
            appended.push(label(), stats.samples_appended as f64);
            sent.push(label(), stats.samples_sent as f64);
            retried.push(label(), stats.samples_retried as f64);
            for reason in DropReason::ALL {
                dropped_samples.push(
                    vec![
                        ("remote", remote.name.clone()),
                        ("reason", reason.as_str().to_owned()),
                    ],
                    stats.dropped(reason) as f64,
                );
            }
            requests.push(
                vec![
                    ("remote", remote.name.clone()),
                    ("result", "success".to_owned()),
                ],
                stats.requests_sent as f64,
            );
            requests.push(
                vec![
                    ("remote", remote.name.clone()),
                    ("result", "failure".to_owned()),
                ],
                stats.requests_failed as f64,
            );
            bytes.push(label(), stats.bytes_sent as f64);
            queue_bytes.push(label(), stats.queue_bytes as f64);
            queue_segments.push(label(), stats.queue_segments as f64);
            newest_appended.push(label(), stats.newest_appended_timestamp_ms as f64 / 1000.0);
            newest_sent.push(label(), stats.newest_sent_timestamp_ms as f64 / 1000.0);
            lag.push(label(), lag_seconds(&stats));
        }
        vec![
            build,
            reload_ok,
            reload_at,
            targets,
            dropped,
            invalid,
            sd_failing,
            scrapes,
            scraped,
            append_failures,
            appended,
            sent,
            retried,
            dropped_samples,
            requests,
            bytes,
            queue_bytes,
            queue_segments,
            newest_appended,
            newest_sent,
            lag,
        ]
    }
}

/// How far a remote is behind: newest appended minus newest sent, the agent's start standing
/// for the newest sent until something newer is (so a receiver down from the start shows a
/// growing lag); 0 before anything is appended.
pub fn lag_seconds(stats: &remote_write::Stats) -> f64 {
    if stats.newest_appended_timestamp_ms == 0 {
        return 0.0;
    }
    (stats.newest_appended_timestamp_ms - stats.newest_sent_timestamp_ms).max(0) as f64 / 1000.0
}

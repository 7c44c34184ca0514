//! The figures of one task, computed from its targets' scrapes as PromQL would compute them.

use super::history::Target;
use crate::figures::{Point, event_rate, histogram_quantile, increase, sampled_rate};
use exposition::ParsedSample;
use std::collections::BTreeMap;

/// A sampled counter that has not moved for this long is idle (two Fargate sample periods).
const QUIET_SECONDS: f64 = 20.0;

/// A figure as shown: known, not known yet (too few scrapes), or not applicable (no such
/// series: a task without a limit, Managed Instances without network stats).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading {
    /// The value.
    Value(f64),
    /// Needs more scrapes.
    Pending,
    /// The targets do not report it.
    Absent,
}

impl Reading {
    /// The sum of the rates of a metric's series. A series too new to have a rate yet is
    /// left out, as PromQL's `sum(rate(...))` leaves it out; pending while no series has one.
    pub(super) fn from_rates(rates: impl IntoIterator<Item = Option<f64>>) -> Reading {
        let (mut series, mut total) = (0, None);
        for rate in rates {
            series += 1;
            if let Some(rate) = rate {
                *total.get_or_insert(0.0) += rate;
            }
        }
        match total {
            Some(total) => Reading::Value(total),
            None if series > 0 => Reading::Pending,
            None => Reading::Absent,
        }
    }

    pub(super) fn value(self) -> Option<f64> {
        match self {
            Reading::Value(value) => Some(value),
            Reading::Pending | Reading::Absent => None,
        }
    }
}

/// What the summary shows for one task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFigures {
    /// vCPUs in use: the rate of CPU seconds of all its containers.
    pub cpu_vcpus: Reading,
    /// The task's CPU limit, else the sum of its containers' limits.
    pub cpu_limit_vcpus: Reading,
    /// Working set of all its containers.
    pub memory_working_set_bytes: Reading,
    /// The task's memory limit, else the sum of its containers' limits.
    pub memory_limit_bytes: Reading,
    /// Bytes received per second on all its interfaces.
    pub network_receive_bytes_per_second: Reading,
    /// Bytes sent per second on all its interfaces.
    pub network_transmit_bytes_per_second: Reading,
    /// Requests per second the demo app answered.
    pub requests_per_second: Reading,
    /// Share of those answered with a 5xx status.
    pub error_ratio: Reading,
    /// 95th percentile of the request duration over the last minute, in milliseconds.
    pub latency_p95_ms: Reading,
    /// Why the last scrape of the exporter or the app failed, if it did.
    pub scrape_error: Option<String>,
}

/// The figures of a task from its exporter's and its app's scrapes.
pub(super) fn task_figures(exporter: &Target, app: &Target) -> TaskFigures {
    let sampled_sum = |series: &BTreeMap<Vec<(String, String)>, Vec<Point>>| {
        Reading::from_rates(
            series
                .values()
                .map(|points| sampled_rate(points, QUIET_SECONDS)),
        )
    };
    let sampled = |name: &str| sampled_sum(&exporter.series(name));
    let cpu_usage = exporter.series("ecs_container_cpu_usage_seconds_total");
    let working_set: Vec<&ParsedSample> = exporter
        .latest("ecs_container_memory_working_set_bytes")
        .collect();
    let memory_containers: Vec<&str> = working_set
        .iter()
        .filter_map(|s| s.label("container_name"))
        .collect();
    let cpu_containers: Vec<&str> = cpu_usage
        .keys()
        .filter_map(|labels| {
            labels
                .iter()
                .find(|(name, _)| name == "container_name")
                .map(|(_, value)| value.as_str())
        })
        .collect();

    let requests = app.series("http_requests_total");
    let request_rate = Reading::from_rates(requests.values().map(|points| event_rate(points)));
    let error_rate = Reading::from_rates(
        requests
            .iter()
            .filter(|(labels, _)| {
                labels
                    .iter()
                    .any(|(name, value)| name == "status" && value.starts_with('5'))
            })
            .map(|(_, points)| event_rate(points)),
    );
    let error_ratio = match (request_rate, error_rate) {
        (Reading::Value(all), Reading::Value(errors)) if all > 0.0 => Reading::Value(errors / all),
        // No error series, or only one too new to have a rate (as in PromQL's sum).
        (Reading::Value(all), Reading::Absent | Reading::Pending) if all > 0.0 => {
            Reading::Value(0.0)
        }
        (Reading::Pending, _) | (_, Reading::Pending) => Reading::Pending,
        _ => Reading::Absent,
    };

    TaskFigures {
        cpu_vcpus: sampled_sum(&cpu_usage),
        cpu_limit_vcpus: limit(
            exporter,
            "ecs_task_cpu_limit_vcpus",
            "ecs_container_cpu_limit_vcpus",
            &cpu_containers,
        ),
        memory_working_set_bytes: if working_set.is_empty() {
            Reading::Absent
        } else {
            Reading::Value(working_set.iter().map(|s| s.value).sum())
        },
        memory_limit_bytes: limit(
            exporter,
            "ecs_task_memory_limit_bytes",
            "ecs_container_memory_limit_bytes",
            &memory_containers,
        ),
        network_receive_bytes_per_second: sampled("ecs_network_receive_bytes_total"),
        network_transmit_bytes_per_second: sampled("ecs_network_transmit_bytes_total"),
        requests_per_second: request_rate,
        error_ratio,
        latency_p95_ms: latency_quantile(app, 0.95),
        scrape_error: exporter
            .last_error
            .clone()
            .or_else(|| app.last_error.clone()),
    }
}

/// The task-level limit when the task has one, else the sum of the containers' own limits
/// (on EC2 the task limit is optional); absent when a container has none.
fn limit(
    exporter: &Target,
    task_limit: &str,
    container_limit: &str,
    containers: &[&str],
) -> Reading {
    if let Some(sample) = exporter.latest(task_limit).next() {
        return Reading::Value(sample.value);
    }
    let limits: BTreeMap<&str, f64> = exporter
        .latest(container_limit)
        .filter_map(|s| Some((s.label("container_name")?, s.value)))
        .collect();
    let mut total = 0.0;
    for container in containers {
        match limits.get(container) {
            Some(limit) => total += limit,
            None => return Reading::Absent,
        }
    }
    if containers.is_empty() {
        Reading::Absent
    } else {
        Reading::Value(total)
    }
}

/// The `q` quantile of the request duration over the window, all paths together:
/// `histogram_quantile(q, sum by (le) (increase(request_duration_milliseconds_bucket[1m])))`.
fn latency_quantile(app: &Target, q: f64) -> Reading {
    let series = app.series("request_duration_milliseconds_bucket");
    if series.is_empty() {
        return Reading::Absent;
    }
    // Keyed by the bound's bits, so `5e2` and `500` are one bucket.
    let mut by_bound: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for (labels, points) in &series {
        let Some(le) = labels.iter().find(|(name, _)| name == "le").map(|(_, v)| v) else {
            continue;
        };
        let bound = match le.as_str() {
            "+Inf" => f64::INFINITY,
            other => match other.parse::<f64>() {
                Ok(bound) => bound,
                Err(_) => continue,
            },
        };
        // A series seen only once has no increase yet: left out, as in `rate()`.
        if let Some(increase) = increase(points) {
            by_bound.entry(bound.to_bits()).or_insert((bound, 0.0)).1 += increase;
        }
    }
    if by_bound.is_empty() {
        return Reading::Pending;
    }
    let buckets: Vec<(f64, f64)> = by_bound.into_values().collect();
    histogram_quantile(q, &buckets).map_or(Reading::Absent, Reading::Value)
}

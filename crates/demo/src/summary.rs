//! The live summary: scrapes every exporter and demo app once a second, keeps a minute of
//! what it read, and shows per task the figures a platform engineer looks at first. All of
//! it is computed from the scrapes, as Prometheus would compute it, never from the
//! simulator's internals.

use crate::cluster::DemoTask;
use crate::figures::{Point, event_rate, histogram_quantile, increase, sampled_rate};
use exposition::{ParsedSample, parse_samples};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// How often the summary scrapes: often enough to see when a sampled counter steps.
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
/// How much history the rates look at, as `rate(...[1m])` would.
const WINDOW_SECONDS: f64 = 60.0;
/// A sampled counter that has not moved for this long is idle (two Fargate sample periods).
const QUIET_SECONDS: f64 = 20.0;

/// The series the summary reads; everything else in a scrape is dropped on arrival.
const EXPORTER_SERIES: &[&str] = &[
    "ecs_container_cpu_usage_seconds_total",
    "ecs_container_cpu_limit_vcpus",
    "ecs_task_cpu_limit_vcpus",
    "ecs_container_memory_working_set_bytes",
    "ecs_container_memory_limit_bytes",
    "ecs_task_memory_limit_bytes",
    "ecs_network_receive_bytes_total",
    "ecs_network_transmit_bytes_total",
];
const APP_SERIES: &[&str] = &[
    "http_requests_total",
    "request_duration_milliseconds_bucket",
];

/// Deadline of one scrape: a stuck target holds up the summary's tick by at most this.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest scrape read; a demo target answers a few tens of KiB.
const MAX_SCRAPE_BYTES: usize = 4 * 1024 * 1024;

/// One scraped endpoint and what it answered over the last minute.
struct Target {
    client: web::Client,
    /// The target's `/metrics` URL.
    url: String,
    keep: &'static [&'static str],
    /// (seconds since the summary started, the samples kept).
    history: VecDeque<(f64, Vec<ParsedSample>)>,
    last_error: Option<String>,
}

impl Target {
    fn new(base_url: &str, keep: &'static [&'static str]) -> anyhow::Result<Target> {
        let url = format!("{}/metrics", base_url.trim_end_matches('/'));
        web::parse_url(&url)?;
        Ok(Target {
            client: web::Client::new(SCRAPE_TIMEOUT).with_max_body_bytes(MAX_SCRAPE_BYTES),
            url,
            keep,
            history: VecDeque::new(),
            last_error: None,
        })
    }

    fn record(&mut self, at: f64, scraped: Result<Vec<ParsedSample>, String>) {
        match scraped {
            Ok(mut samples) => {
                samples.retain(|s| self.keep.contains(&s.name.as_str()));
                self.history.push_back((at, samples));
                self.last_error = None;
            }
            Err(error) => self.last_error = Some(error),
        }
        while self
            .history
            .front()
            .is_some_and(|(then, _)| at - then > WINDOW_SECONDS)
        {
            self.history.pop_front();
        }
    }

    /// Every series of `name` over the window, keyed by its labels.
    fn series(&self, name: &str) -> BTreeMap<Vec<(String, String)>, Vec<Point>> {
        let mut series: BTreeMap<_, Vec<Point>> = BTreeMap::new();
        for (at, samples) in &self.history {
            for sample in samples.iter().filter(|s| s.name == name) {
                series
                    .entry(sample.labels.clone())
                    .or_default()
                    .push((*at, sample.value));
            }
        }
        series
    }

    /// The samples of `name` in the latest scrape.
    fn latest<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a ParsedSample> + 'a {
        self.history
            .back()
            .into_iter()
            .flat_map(|(_, samples)| samples.iter())
            .filter(move |s| s.name == name)
    }
}

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
    fn from_rates(rates: impl IntoIterator<Item = Option<f64>>) -> Reading {
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

    fn value(self) -> Option<f64> {
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

/// A task's pair of targets.
struct Watched {
    id: String,
    launch_type: String,
    exporter: Target,
    app: Target,
}

/// The summary of every task of the cluster.
pub struct Summary {
    started: Instant,
    tasks: Vec<Watched>,
}

impl Summary {
    /// Watches the exporter and app of every task.
    pub fn new(tasks: &[DemoTask]) -> anyhow::Result<Summary> {
        let tasks = tasks
            .iter()
            .map(|task| {
                Ok(Watched {
                    id: task.id.clone(),
                    launch_type: task.metadata.launch_type.clone(),
                    exporter: Target::new(&task.exporter_url, EXPORTER_SERIES)?,
                    app: Target::new(&task.app_url, APP_SERIES)?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Summary {
            started: Instant::now(),
            tasks,
        })
    }

    /// Scrapes every target once, all at the same time.
    pub async fn scrape(&mut self) {
        let at = self.started.elapsed().as_secs_f64();
        let mut scrapes = tokio::task::JoinSet::new();
        for (index, task) in self.tasks.iter().enumerate() {
            for (is_app, target) in [(false, &task.exporter), (true, &task.app)] {
                let (client, url) = (target.client.clone(), target.url.clone());
                scrapes.spawn(async move { (index, is_app, scrape(&client, &url).await) });
            }
        }
        while let Some(Ok((index, is_app, scraped))) = scrapes.join_next().await {
            let task = &mut self.tasks[index];
            let target = if is_app {
                &mut task.app
            } else {
                &mut task.exporter
            };
            target.record(at, scraped);
        }
    }

    /// The figures of every task: (short task id, launch type, figures).
    pub fn figures(&self) -> Vec<(&str, &str, TaskFigures)> {
        self.tasks
            .iter()
            .map(|task| {
                (
                    &task.id[..task.id.len().min(8)],
                    task.launch_type.as_str(),
                    task_figures(&task.exporter, &task.app),
                )
            })
            .collect()
    }
}

async fn scrape(client: &web::Client, url: &str) -> Result<Vec<ParsedSample>, String> {
    let response = client
        .get(url)
        .header("accept", "text/plain;version=0.0.4")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status.is_success() {
        return Err(format!(
            "GET {url} answered HTTP {}",
            response.status.as_u16()
        ));
    }
    let text =
        std::str::from_utf8(&response.body).map_err(|_| "the scrape is not UTF-8".to_owned())?;
    parse_samples(text).map_err(|e| format!("{url}: {e}"))
}

fn task_figures(exporter: &Target, app: &Target) -> TaskFigures {
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

/// How the summary is written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A table, for a terminal that redraws it in place.
    Table,
    /// One `key=value` line per task per update, for logs and pipes.
    Lines,
}

/// Writes the figures in `style`.
pub fn render(rows: &[(&str, &str, TaskFigures)], style: Style) -> String {
    let mut out = String::new();
    match style {
        Style::Table => {
            let _ = writeln!(
                out,
                "{:<9}  {:<17}  {:>22}  {:>28}  {:>23}  {:>6}  {:>6}  {:>7}",
                "TASK",
                "LAUNCH TYPE",
                "CPU OF LIMIT",
                "WORKING SET / LIMIT",
                "NETWORK RX / TX",
                "REQ/S",
                "5XX",
                "P95"
            );
            for (id, launch_type, f) in rows {
                let _ = writeln!(
                    out,
                    "{:<9}  {:<17}  {:>22}  {:>28}  {:>23}  {:>6}  {:>6}  {:>7}",
                    id,
                    launch_type,
                    share_of(f.cpu_vcpus, f.cpu_limit_vcpus, vcpus, style),
                    used_of(
                        f.memory_working_set_bytes,
                        f.memory_limit_bytes,
                        bytes,
                        style
                    ),
                    format!(
                        "{} / {}",
                        shown(f.network_receive_bytes_per_second, byte_rate, style),
                        shown(f.network_transmit_bytes_per_second, byte_rate, style)
                    ),
                    shown(f.requests_per_second, |v| format!("{v:.1}"), style),
                    shown(f.error_ratio, percent, style),
                    shown(f.latency_p95_ms, milliseconds, style),
                );
                if let Some(error) = &f.scrape_error {
                    let _ = writeln!(out, "          scrape failed: {error}");
                }
            }
        }
        Style::Lines => {
            for (id, launch_type, f) in rows {
                let _ = write!(
                    out,
                    "task={id} launch_type={launch_type} cpu_vcpus={} cpu_limit_vcpus={} \
                     memory_working_set={} memory_limit={} network_rx={} network_tx={} \
                     requests_per_second={} errors={} p95={}",
                    shown(f.cpu_vcpus, |v| format!("{v:.3}"), style),
                    shown(f.cpu_limit_vcpus, |v| format!("{v:.3}"), style),
                    shown(f.memory_working_set_bytes, compact(bytes), style),
                    shown(f.memory_limit_bytes, compact(bytes), style),
                    shown(
                        f.network_receive_bytes_per_second,
                        compact(byte_rate),
                        style
                    ),
                    shown(
                        f.network_transmit_bytes_per_second,
                        compact(byte_rate),
                        style
                    ),
                    shown(f.requests_per_second, |v| format!("{v:.2}"), style),
                    shown(f.error_ratio, percent, style),
                    shown(f.latency_p95_ms, compact(milliseconds), style),
                );
                if let Some(error) = &f.scrape_error {
                    let _ = write!(out, " scrape_error={error:?}");
                }
                out.push('\n');
            }
        }
    }
    out
}

fn shown(reading: Reading, format: impl Fn(f64) -> String, style: Style) -> String {
    match (reading, style) {
        (Reading::Value(value), _) => format(value),
        (Reading::Pending, Style::Table) => "…".to_owned(),
        (Reading::Pending, Style::Lines) => "pending".to_owned(),
        (Reading::Absent, _) => "n/a".to_owned(),
    }
}

/// `44.0% of 0.25 vCPU`: a usage as a share of its limit, or the usage alone without one.
fn share_of(used: Reading, limit: Reading, unit: fn(f64) -> String, style: Style) -> String {
    match (used, limit.value()) {
        (Reading::Value(used), Some(limit)) if limit > 0.0 => {
            format!("{} of {}", percent(used / limit), unit(limit))
        }
        (used, _) => shown(used, unit, style),
    }
}

/// `52.0 MiB / 512.0 MiB (10.2%)`: a usage, its limit and the share, or the usage alone.
fn used_of(used: Reading, limit: Reading, unit: fn(f64) -> String, style: Style) -> String {
    match (used, limit.value()) {
        (Reading::Value(used), Some(limit)) if limit > 0.0 => {
            format!(
                "{} / {} ({})",
                unit(used),
                unit(limit),
                percent(used / limit)
            )
        }
        (used, _) => shown(used, unit, style),
    }
}

/// Drops the spaces, for `key=value` lines.
fn compact(format: fn(f64) -> String) -> impl Fn(f64) -> String {
    move |value| format(value).replace(' ', "")
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

fn vcpus(value: f64) -> String {
    format!("{value:.2} vCPU")
}

fn milliseconds(value: f64) -> String {
    format!("{value:.0} ms")
}

fn bytes(value: f64) -> String {
    scaled(value, "B")
}

fn byte_rate(value: f64) -> String {
    scaled(value, "B/s")
}

/// Binary prefixes, as `free -h` and the ECS console show memory.
fn scaled(value: f64, unit: &str) -> String {
    let mut value = value;
    for prefix in ["", "Ki", "Mi", "Gi"] {
        if value.abs() < 1024.0 || prefix == "Gi" {
            let digits = if prefix.is_empty() { 0 } else { 1 };
            return format!("{value:.digits$} {prefix}{unit}");
        }
        value /= 1024.0;
    }
    unreachable!("the loop returns at Gi")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target_with(scrapes: &[(f64, &str)], keep: &'static [&'static str]) -> Target {
        let mut target = Target::new("http://127.0.0.1:9", keep).expect("valid URL");
        for (at, text) in scrapes {
            target.record(*at, Ok(parse_samples(text).expect("valid text")));
        }
        target
    }

    /// Two containers, a task limit of 0.25 vCPU and 512 MiB; CPU sampled every 10 s,
    /// scraped every 5 s from t = 0 to t = 30.
    fn fargate_exporter() -> Target {
        let mut scrapes = Vec::new();
        for step in 0..=6 {
            let t = f64::from(step) * 5.0;
            let period = (t / 10.0).floor();
            scrapes.push((
                t,
                format!(
                    "ecs_task_cpu_limit_vcpus 0.25\n\
                     ecs_task_memory_limit_bytes 536870912\n\
                     ecs_container_memory_limit_bytes{{container_name=\"app\"}} 536870912\n\
                     ecs_container_memory_limit_bytes{{container_name=\"sidecar\"}} 536870912\n\
                     ecs_container_cpu_usage_seconds_total{{container_name=\"app\"}} {}\n\
                     ecs_container_cpu_usage_seconds_total{{container_name=\"sidecar\"}} {}\n\
                     ecs_container_memory_working_set_bytes{{container_name=\"app\"}} 50331648\n\
                     ecs_container_memory_working_set_bytes{{container_name=\"sidecar\"}} 4194304\n\
                     ecs_network_receive_bytes_total{{interface=\"eth1\"}} {}\n\
                     ecs_network_transmit_bytes_total{{interface=\"eth1\"}} {}\n\
                     ecs_exporter_build_info{{version=\"x\"}} 1\n",
                    100.0 + period * 1.0,
                    7.0 + period * 0.1,
                    period * 20480.0,
                    period * 10240.0,
                ),
            ));
        }
        let scrapes: Vec<(f64, &str)> = scrapes.iter().map(|(t, s)| (*t, s.as_str())).collect();
        target_with(&scrapes, EXPORTER_SERIES)
    }

    fn app_after(requests: &[(f64, u32, u32)]) -> Target {
        // (time, 200 responses so far, 500 responses so far); every 200 took ≤ 50 ms, every
        // 500 took (50, 100] ms.
        let texts: Vec<(f64, String)> = requests
            .iter()
            .map(|(t, ok, errors)| {
                (
                    *t,
                    format!(
                        "http_requests_total{{method=\"GET\",path=\"/work\",status=\"200\"}} {ok}\n\
                         http_requests_total{{method=\"GET\",path=\"/error\",status=\"500\"}} {errors}\n\
                         request_duration_milliseconds_bucket{{path=\"/work\",le=\"50\"}} {ok}\n\
                         request_duration_milliseconds_bucket{{path=\"/work\",le=\"100\"}} {ok}\n\
                         request_duration_milliseconds_bucket{{path=\"/work\",le=\"+Inf\"}} {ok}\n\
                         request_duration_milliseconds_bucket{{path=\"/error\",le=\"50\"}} 0\n\
                         request_duration_milliseconds_bucket{{path=\"/error\",le=\"100\"}} {errors}\n\
                         request_duration_milliseconds_bucket{{path=\"/error\",le=\"+Inf\"}} {errors}\n"
                    ),
                )
            })
            .collect();
        let scrapes: Vec<(f64, &str)> = texts.iter().map(|(t, s)| (*t, s.as_str())).collect();
        target_with(&scrapes, APP_SERIES)
    }

    #[test]
    fn computes_the_figures_of_a_fargate_task_from_its_scrapes() {
        let exporter = fargate_exporter();
        // 90 OK and 10 errors over 20 s.
        let app = app_after(&[(10.0, 10, 0), (20.0, 60, 5), (30.0, 100, 10)]);
        let f = task_figures(&exporter, &app);
        // CPU changes seen at t = 10, 20, 30: (1.0 + 0.1) vCPU-seconds per 10 s.
        let Reading::Value(cpu) = f.cpu_vcpus else {
            panic!("{:?}", f.cpu_vcpus)
        };
        assert!((cpu - 0.11).abs() < 1e-9, "{cpu}");
        assert_eq!(f.cpu_limit_vcpus, Reading::Value(0.25));
        assert_eq!(f.memory_working_set_bytes, Reading::Value(54525952.0));
        assert_eq!(f.memory_limit_bytes, Reading::Value(536870912.0));
        assert_eq!(f.network_receive_bytes_per_second, Reading::Value(2048.0));
        assert_eq!(f.network_transmit_bytes_per_second, Reading::Value(1024.0));
        assert_eq!(f.requests_per_second, Reading::Value(5.0));
        assert_eq!(f.error_ratio, Reading::Value(0.1));
        // 100 requests in the window: 90 in (0, 50], 10 in (50, 100]. Rank 95 is 5 of the 10
        // in (50, 100]: 75 ms.
        assert_eq!(f.latency_p95_ms, Reading::Value(75.0));
        assert_eq!(f.scrape_error, None);
    }

    #[test]
    fn limits_fall_back_to_the_containers_and_figures_wait_for_data() {
        let exporter = target_with(
            &[(
                0.0,
                "ecs_container_cpu_limit_vcpus{container_name=\"a\"} 0.125\n\
                 ecs_container_cpu_limit_vcpus{container_name=\"b\"} 0.125\n\
                 ecs_container_cpu_limit_vcpus{container_name=\"stopped\"} 0.125\n\
                 ecs_container_cpu_usage_seconds_total{container_name=\"a\"} 1\n\
                 ecs_container_cpu_usage_seconds_total{container_name=\"b\"} 1\n\
                 ecs_container_memory_limit_bytes{container_name=\"a\"} 268435456\n\
                 ecs_container_memory_working_set_bytes{container_name=\"a\"} 1024\n\
                 ecs_container_memory_working_set_bytes{container_name=\"b\"} 1024\n",
            )],
            EXPORTER_SERIES,
        );
        let f = task_figures(&exporter, &app_after(&[(0.0, 1, 0)]));
        // Only the containers with usage count: a and b, not the stopped one.
        assert_eq!(f.cpu_limit_vcpus, Reading::Value(0.25));
        // b has no limit of its own, and there is no task limit.
        assert_eq!(f.memory_limit_bytes, Reading::Absent);
        assert_eq!(f.cpu_vcpus, Reading::Pending);
        assert_eq!(f.network_receive_bytes_per_second, Reading::Absent);
        assert_eq!(f.requests_per_second, Reading::Pending);
        assert_eq!(f.latency_p95_ms, Reading::Pending);
    }

    #[test]
    fn a_series_that_just_appeared_does_not_hold_the_others_back() {
        let app = target_with(
            &[
                (0.0, "http_requests_total{status=\"200\"} 10\n"),
                (
                    10.0,
                    "http_requests_total{status=\"200\"} 60\n\
                     http_requests_total{status=\"500\"} 1\n\
                     request_duration_milliseconds_bucket{le=\"+Inf\"} 5\n",
                ),
            ],
            APP_SERIES,
        );
        let f = task_figures(&target_with(&[], EXPORTER_SERIES), &app);
        assert_eq!(f.requests_per_second, Reading::Value(5.0));
        assert_eq!(f.error_ratio, Reading::Value(0.0));
        assert_eq!(f.latency_p95_ms, Reading::Pending);
        assert_eq!(f.cpu_vcpus, Reading::Absent);
    }

    #[test]
    fn a_failed_scrape_is_reported_and_keeps_the_history() {
        let mut exporter = fargate_exporter();
        exporter.record(
            31.0,
            Err("GET http://127.0.0.1:9/metrics failed".to_owned()),
        );
        let f = task_figures(&exporter, &app_after(&[]));
        assert!(matches!(f.cpu_vcpus, Reading::Value(_)));
        assert_eq!(
            f.scrape_error.as_deref(),
            Some("GET http://127.0.0.1:9/metrics failed")
        );
        assert_eq!(f.requests_per_second, Reading::Absent);
    }

    #[test]
    fn history_is_limited_to_the_window() {
        let mut target = target_with(&[], APP_SERIES);
        for second in 0..200 {
            target.record(f64::from(second), Ok(Vec::new()));
        }
        assert_eq!(target.history.len(), 61);
        assert_eq!(target.history.front().map(|(t, _)| *t), Some(139.0));
    }

    #[test]
    fn renders_a_table_and_plain_lines() {
        let f = task_figures(
            &fargate_exporter(),
            &app_after(&[(10.0, 10, 0), (20.0, 60, 5), (30.0, 100, 10)]),
        );
        let rows = [("0123abcd", "FARGATE", f)];
        let table = render(&rows, Style::Table);
        let row = table.lines().nth(1).expect("a row");
        for part in [
            "0123abcd",
            "FARGATE",
            "44.0% of 0.25 vCPU",
            "52.0 MiB / 512.0 MiB (10.2%)",
            "2.0 KiB/s / 1.0 KiB/s",
            "5.0",
            "10.0%",
            "75 ms",
        ] {
            assert!(row.contains(part), "{part:?} in {row:?}");
        }
        assert_eq!(
            render(&rows, Style::Lines),
            "task=0123abcd launch_type=FARGATE cpu_vcpus=0.110 cpu_limit_vcpus=0.250 \
             memory_working_set=52.0MiB memory_limit=512.0MiB network_rx=2.0KiB/s \
             network_tx=1.0KiB/s requests_per_second=5.00 errors=10.0% p95=75ms\n"
        );
    }

    #[test]
    fn scales_with_binary_prefixes() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(536870912.0), "512.0 MiB");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0), "3072.0 GiB");
    }
}

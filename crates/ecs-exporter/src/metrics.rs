//! The ECS metrics: every family the exporter serves from task metadata and Docker stats,
//! and the rules that turn one task's documents into samples.

use ecs_metadata::stats::NetworkCounters;
use ecs_metadata::{Container, ContainerStats, Task};
use exposition::{Family, MetricType};
use std::collections::{HashMap, HashSet};

const MIB: f64 = 1024.0 * 1024.0;
/// CPU units per vCPU.
const CPU_UNITS_PER_VCPU: f64 = 1024.0;
/// The ECS agent reports 2 CPU units (Docker's minimum share) for containers without a
/// CPU limit, so values up to 2 mean "unset".
const UNSET_CPU_UNITS: f64 = 2.0;
/// Container health states, written as a state set.
const HEALTH_STATES: [&str; 3] = ["HEALTHY", "UNHEALTHY", "UNKNOWN"];

/// Whether the exporter watches its own task or every task on the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `/task` and `/task/stats`: the task the exporter runs in.
    Task,
    /// `/tasks` and `/tasks/stats`: every task on an ECS Managed Instances host. Every task
    /// and container series then carries a `task_arn` label.
    Instance,
}

impl Scope {
    /// The scope as the `--ecs.scope` flag spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Task => "task",
            Scope::Instance => "instance",
        }
    }
}

/// One metric family the exporter may serve.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// The metric name.
    pub name: &'static str,
    /// Counter or gauge.
    pub kind: MetricType,
    /// The `# HELP` text.
    pub help: &'static str,
}

const fn def(name: &'static str, kind: MetricType, help: &'static str) -> MetricDef {
    MetricDef { name, kind, help }
}

use MetricType::{Counter, Gauge};

/// Every ECS metric family, sorted by name (the order they are written in).
pub const ECS_METRICS: &[MetricDef] = &[
    def(
        "ecs_container_block_io_read_bytes_total",
        Counter,
        "Bytes the container read from block devices, summed over devices.",
    ),
    def(
        "ecs_container_block_io_write_bytes_total",
        Counter,
        "Bytes the container wrote to block devices, summed over devices.",
    ),
    def(
        "ecs_container_cpu_limit_vcpus",
        Gauge,
        "CPU limit of the container in vCPUs (its CPU units / 1024), when the task definition sets one.",
    ),
    def(
        "ecs_container_cpu_system_seconds_total",
        Counter,
        "CPU time the container spent in kernel mode, in seconds.",
    ),
    def(
        "ecs_container_cpu_usage_seconds_total",
        Counter,
        "CPU time the container used, in seconds.",
    ),
    def(
        "ecs_container_cpu_user_seconds_total",
        Counter,
        "CPU time the container spent in user mode, in seconds.",
    ),
    def(
        "ecs_container_exit_code",
        Gauge,
        "Exit code of the container, once it has exited.",
    ),
    def(
        "ecs_container_health_status",
        Gauge,
        "Health check status of the container: 1 for the current status, 0 for the others.",
    ),
    def(
        "ecs_container_info",
        Gauge,
        "Identity and status of a container of the task; always 1.",
    ),
    def(
        "ecs_container_memory_limit_bytes",
        Gauge,
        "Memory limit of the container in bytes: its own limit from the task definition, otherwise the task's limit.",
    ),
    def(
        "ecs_container_memory_max_usage_bytes",
        Gauge,
        "Highest memory usage of the container in bytes, where the runtime reports it (cgroup v1, Windows).",
    ),
    def(
        "ecs_container_memory_page_cache_size_bytes",
        Gauge,
        "Page cache charged to the container in bytes (cgroup v1 cache, cgroup v2 file); part of memory usage.",
    ),
    def(
        "ecs_container_memory_usage_bytes",
        Gauge,
        "Memory usage of the container in bytes as the cgroup reports it, page cache included.",
    ),
    def(
        "ecs_container_memory_utilized_bytes",
        Gauge,
        "Memory of the container in bytes as CloudWatch Container Insights reports it.",
    ),
    def(
        "ecs_container_memory_working_set_bytes",
        Gauge,
        "Working set of the container in bytes: usage less inactive file pages, as cAdvisor and docker stats compute it.",
    ),
    def(
        "ecs_container_pids",
        Gauge,
        "Number of processes and threads in the container.",
    ),
    def(
        "ecs_container_restarts_total",
        Counter,
        "Times the ECS agent restarted the container under its restart policy.",
    ),
    def(
        "ecs_container_start_time_seconds",
        Gauge,
        "When the container last started, in seconds since the Unix epoch.",
    ),
    def(
        "ecs_network_receive_bytes_total",
        Counter,
        "Bytes received on the network interface.",
    ),
    def(
        "ecs_network_receive_errors_total",
        Counter,
        "Receive errors on the network interface.",
    ),
    def(
        "ecs_network_receive_packets_dropped_total",
        Counter,
        "Received packets dropped on the network interface.",
    ),
    def(
        "ecs_network_receive_packets_total",
        Counter,
        "Packets received on the network interface.",
    ),
    def(
        "ecs_network_transmit_bytes_total",
        Counter,
        "Bytes transmitted on the network interface.",
    ),
    def(
        "ecs_network_transmit_errors_total",
        Counter,
        "Transmit errors on the network interface.",
    ),
    def(
        "ecs_network_transmit_packets_dropped_total",
        Counter,
        "Transmitted packets dropped on the network interface.",
    ),
    def(
        "ecs_network_transmit_packets_total",
        Counter,
        "Packets transmitted on the network interface.",
    ),
    def(
        "ecs_task_clock_error_bound_seconds",
        Gauge,
        "Fargate's bound on the error of the task's clock against the reference time, in seconds.",
    ),
    def(
        "ecs_task_clock_synchronized",
        Gauge,
        "1 when Fargate reports the task's clock as synchronized with the reference time, else 0.",
    ),
    def(
        "ecs_task_cpu_limit_vcpus",
        Gauge,
        "Task-level CPU limit in vCPUs, when the task definition sets one.",
    ),
    def(
        "ecs_task_ephemeral_storage_allocated_bytes",
        Gauge,
        "Fargate ephemeral storage reserved for the task, in bytes.",
    ),
    def(
        "ecs_task_ephemeral_storage_used_bytes",
        Gauge,
        "Fargate ephemeral storage the task uses, in bytes.",
    ),
    def(
        "ecs_task_image_pull_start_timestamp_seconds",
        Gauge,
        "When the task began pulling its first container image, in seconds since the Unix epoch.",
    ),
    def(
        "ecs_task_image_pull_stop_timestamp_seconds",
        Gauge,
        "When the task finished pulling its last container image, in seconds since the Unix epoch.",
    ),
    def(
        "ecs_task_memory_limit_bytes",
        Gauge,
        "Task-level memory limit in bytes, when the task definition sets one.",
    ),
    def(
        "ecs_task_metadata_info",
        Gauge,
        "Identity and status of the ECS task; always 1.",
    ),
];

/// What one scrape has read from the endpoint.
pub struct Inputs<'a> {
    /// The tasks to report on.
    pub tasks: &'a [Task],
    /// `false` when the metadata request failed and `tasks` is the last good copy: it then
    /// only names the containers whose stats are reported, and no metadata series are served
    /// from it (they could be stale).
    pub tasks_current: bool,
    /// Stats by Docker ID, when the stats request succeeded.
    pub stats: Option<&'a HashMap<String, ContainerStats>>,
    /// Task or instance scope.
    pub scope: Scope,
}

/// The freshest sample of every shared (`awsvpc` or `host`) interface served so far, by task
/// ARN and interface name. When the container whose sample was freshest stops, the others'
/// samples can be older: serving them would make the counters go backwards, which
/// Prometheus takes for a reset. Keep one per exporter and pass it to every scrape.
#[derive(Debug, Default)]
pub struct SharedInterfaces(HashMap<(String, String), (f64, NetworkCounters)>);

/// Builds every ECS family for the inputs, in [`ECS_METRICS`] order.
pub fn ecs_families(inputs: &Inputs<'_>, shared: &mut SharedInterfaces) -> Vec<Family> {
    let mut out = Families::new();
    for task in inputs.tasks {
        let task_labels = match inputs.scope {
            Scope::Task => Vec::new(),
            Scope::Instance => vec![("task_arn", task.task_arn.clone())],
        };
        let mut names = HashSet::new();
        // A name seen twice would give two series with one label set: keep the first.
        let containers: Vec<&Container> = task
            .containers
            .iter()
            .filter(|c| !c.is_internal() && names.insert(c.name.as_str()))
            .collect();
        if inputs.tasks_current {
            task_series(&mut out, task, &task_labels);
            for container in &containers {
                container_metadata_series(&mut out, task, container, &task_labels);
            }
        }
        if let Some(stats) = inputs.stats {
            let running: Vec<(&Container, &ContainerStats)> = containers
                .iter()
                .filter(|c| !c.is_stopped())
                .filter_map(|c| Some((*c, stats.get(&c.docker_id)?)))
                .collect();
            for (container, stats) in &running {
                container_stats_series(&mut out, container, stats, &task_labels);
            }
            network_series(&mut out, task, &running, &task_labels, shared);
        }
    }
    if inputs.stats.is_some() {
        let present: HashSet<&str> = inputs.tasks.iter().map(|t| t.task_arn.as_str()).collect();
        shared
            .0
            .retain(|(task_arn, _), _| present.contains(task_arn.as_str()));
    }
    out.families
}

/// The families in [`ECS_METRICS`] order, filled by name.
struct Families {
    families: Vec<Family>,
}

impl Families {
    fn new() -> Self {
        Families {
            families: ECS_METRICS
                .iter()
                .map(|d| Family::new(d.name, d.help, d.kind))
                .collect(),
        }
    }

    fn add(&mut self, name: &'static str, labels: Vec<(&'static str, String)>, value: f64) {
        match ECS_METRICS.binary_search_by(|d| d.name.cmp(name)) {
            Ok(index) => self.families[index].push(labels, value),
            Err(_) => debug_assert!(false, "{name} is missing from ECS_METRICS"),
        }
    }

    fn add_some(
        &mut self,
        name: &'static str,
        labels: &[(&'static str, String)],
        value: Option<f64>,
    ) {
        if let Some(value) = value {
            self.add(name, labels.to_vec(), value);
        }
    }
}

fn with(
    base: &[(&'static str, String)],
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    let mut labels = base.to_vec();
    labels.extend(
        extra
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned())),
    );
    labels
}

fn positive(value: Option<f64>) -> Option<f64> {
    value.filter(|v| *v > 0.0)
}

fn task_series(out: &mut Families, task: &Task, labels: &[(&'static str, String)]) {
    let info = vec![
        ("cluster", task.cluster.clone()),
        ("task_arn", task.task_arn.clone()),
        ("family", task.family.clone()),
        ("revision", task.revision.clone()),
        ("desired_status", task.desired_status.clone()),
        ("known_status", task.known_status.clone()),
        ("availability_zone", task.availability_zone.clone()),
        ("launch_type", task.launch_type.clone()),
        ("service", task.service_name.clone()),
    ];
    out.add("ecs_task_metadata_info", info, 1.0);
    out.add_some(
        "ecs_task_cpu_limit_vcpus",
        labels,
        positive(task.cpu_limit_vcpus),
    );
    out.add_some(
        "ecs_task_memory_limit_bytes",
        labels,
        positive(task.memory_limit_mib).map(|m| m * MIB),
    );
    out.add_some(
        "ecs_task_ephemeral_storage_used_bytes",
        labels,
        task.ephemeral_storage_utilized_mib.map(|m| m * MIB),
    );
    out.add_some(
        "ecs_task_ephemeral_storage_allocated_bytes",
        labels,
        task.ephemeral_storage_reserved_mib.map(|m| m * MIB),
    );
    out.add_some(
        "ecs_task_image_pull_start_timestamp_seconds",
        labels,
        task.pull_started_at,
    );
    out.add_some(
        "ecs_task_image_pull_stop_timestamp_seconds",
        labels,
        task.pull_stopped_at,
    );
    if let Some(clock) = &task.clock {
        out.add_some(
            "ecs_task_clock_synchronized",
            labels,
            clock.synchronized.map(f64::from),
        );
        out.add_some(
            "ecs_task_clock_error_bound_seconds",
            labels,
            clock.error_bound_ms.map(|ms| ms / 1000.0),
        );
    }
}

fn container_metadata_series(
    out: &mut Families,
    task: &Task,
    c: &Container,
    task_labels: &[(&'static str, String)],
) {
    let labels = with(task_labels, &[("container_name", &c.name)]);
    let info = with(
        &labels,
        &[
            ("container_id", &c.docker_id),
            ("image", &c.image),
            ("image_id", &c.image_id),
            ("known_status", &c.known_status),
            ("desired_status", &c.desired_status),
        ],
    );
    out.add("ecs_container_info", info, 1.0);
    out.add_some(
        "ecs_container_cpu_limit_vcpus",
        &labels,
        c.cpu_units
            .filter(|units| *units > UNSET_CPU_UNITS)
            .map(|units| units / CPU_UNITS_PER_VCPU),
    );
    let memory_limit_mib = positive(c.memory_limit_mib).or(positive(task.memory_limit_mib));
    out.add_some(
        "ecs_container_memory_limit_bytes",
        &labels,
        memory_limit_mib.map(|m| m * MIB),
    );
    out.add_some("ecs_container_exit_code", &labels, c.exit_code);
    out.add_some("ecs_container_start_time_seconds", &labels, c.started_at);
    out.add_some("ecs_container_restarts_total", &labels, c.restart_count);
    if let Some(status) = &c.health_status {
        for state in HEALTH_STATES {
            out.add(
                "ecs_container_health_status",
                with(&labels, &[("status", state)]),
                f64::from(state == status),
            );
        }
        if !HEALTH_STATES.contains(&status.as_str()) {
            out.add(
                "ecs_container_health_status",
                with(&labels, &[("status", status)]),
                1.0,
            );
        }
    }
}

fn container_stats_series(
    out: &mut Families,
    c: &Container,
    s: &ContainerStats,
    task_labels: &[(&'static str, String)],
) {
    let labels = with(task_labels, &[("container_name", &c.name)]);
    out.add_some(
        "ecs_container_cpu_usage_seconds_total",
        &labels,
        s.cpu.total_seconds,
    );
    out.add_some(
        "ecs_container_cpu_user_seconds_total",
        &labels,
        s.cpu.user_seconds,
    );
    out.add_some(
        "ecs_container_cpu_system_seconds_total",
        &labels,
        s.cpu.system_seconds,
    );
    out.add_some("ecs_container_memory_usage_bytes", &labels, s.memory.usage);
    out.add_some(
        "ecs_container_memory_max_usage_bytes",
        &labels,
        s.memory.max_usage,
    );
    out.add_some(
        "ecs_container_memory_page_cache_size_bytes",
        &labels,
        s.memory.page_cache(),
    );
    out.add_some(
        "ecs_container_memory_working_set_bytes",
        &labels,
        s.memory.working_set(),
    );
    out.add_some(
        "ecs_container_memory_utilized_bytes",
        &labels,
        s.memory.utilized(),
    );
    out.add_some(
        "ecs_container_block_io_read_bytes_total",
        &labels,
        s.block_io_read_bytes,
    );
    out.add_some(
        "ecs_container_block_io_write_bytes_total",
        &labels,
        s.block_io_write_bytes,
    );
    out.add_some("ecs_container_pids", &labels, s.pids);
}

/// Network counters. In `awsvpc` and `host` mode every container sees the same interfaces,
/// so each interface is reported once per task, from the freshest sample. In `bridge` mode,
/// or when the mode is not reported, each container has interfaces of its own, so the
/// series also carry `container_name`.
fn network_series(
    out: &mut Families,
    task: &Task,
    running: &[(&Container, &ContainerStats)],
    task_labels: &[(&'static str, String)],
    shared: &mut SharedInterfaces,
) {
    let shared_namespace = task
        .containers
        .iter()
        .find_map(|c| c.network_mode.as_deref())
        .is_some_and(|mode| mode == "awsvpc" || mode == "host");
    if shared_namespace {
        let mut freshest: Vec<(&str, f64, &NetworkCounters)> = Vec::new();
        for (_, stats) in running {
            let read_at = stats.read_at.unwrap_or(f64::MIN);
            for (interface, counters) in &stats.networks {
                match freshest.iter_mut().find(|(name, _, _)| name == interface) {
                    Some(entry) if entry.1 < read_at => *entry = (interface, read_at, counters),
                    Some(_) => {}
                    None => freshest.push((interface, read_at, counters)),
                }
            }
        }
        freshest.sort_by(|a, b| a.0.cmp(b.0));
        for (interface, read_at, counters) in freshest {
            let key = (task.task_arn.clone(), interface.to_owned());
            let served = match shared.0.get(&key) {
                Some((served_at, served)) if *served_at > read_at => served.clone(),
                _ => {
                    shared.0.insert(key, (read_at, counters.clone()));
                    counters.clone()
                }
            };
            interface_series(out, with(task_labels, &[("interface", interface)]), &served);
        }
    } else {
        for (container, stats) in running {
            for (interface, counters) in &stats.networks {
                let labels = with(
                    task_labels,
                    &[
                        ("container_name", &container.name),
                        ("interface", interface),
                    ],
                );
                interface_series(out, labels, counters);
            }
        }
    }
}

fn interface_series(out: &mut Families, labels: Vec<(&'static str, String)>, c: &NetworkCounters) {
    out.add_some("ecs_network_receive_bytes_total", &labels, c.rx_bytes);
    out.add_some("ecs_network_receive_packets_total", &labels, c.rx_packets);
    out.add_some(
        "ecs_network_receive_packets_dropped_total",
        &labels,
        c.rx_dropped,
    );
    out.add_some("ecs_network_receive_errors_total", &labels, c.rx_errors);
    out.add_some("ecs_network_transmit_bytes_total", &labels, c.tx_bytes);
    out.add_some("ecs_network_transmit_packets_total", &labels, c.tx_packets);
    out.add_some(
        "ecs_network_transmit_packets_dropped_total",
        &labels,
        c.tx_dropped,
    );
    out.add_some("ecs_network_transmit_errors_total", &labels, c.tx_errors);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn awsvpc_task(stats: &[(&str, f64, f64)]) -> (Task, HashMap<String, ContainerStats>) {
        let container = |name: &str| Container {
            docker_id: name.to_owned(),
            name: name.to_owned(),
            container_type: "NORMAL".to_owned(),
            known_status: "RUNNING".to_owned(),
            network_mode: Some("awsvpc".to_owned()),
            ..Container::default()
        };
        let task = Task {
            task_arn: "arn:task".to_owned(),
            containers: vec![container("a"), container("b")],
            ..Task::default()
        };
        let stats = stats
            .iter()
            .map(|(id, read_at, rx)| {
                let counters = NetworkCounters {
                    rx_bytes: Some(*rx),
                    ..NetworkCounters::default()
                };
                let s = ContainerStats {
                    read_at: Some(*read_at),
                    networks: vec![("eth1".to_owned(), counters)],
                    ..ContainerStats::default()
                };
                ((*id).to_owned(), s)
            })
            .collect();
        (task, stats)
    }

    fn received(
        task: &Task,
        stats: &HashMap<String, ContainerStats>,
        shared: &mut SharedInterfaces,
    ) -> Vec<f64> {
        let inputs = Inputs {
            tasks: std::slice::from_ref(task),
            tasks_current: true,
            stats: Some(stats),
            scope: Scope::Task,
        };
        ecs_families(&inputs, shared)
            .into_iter()
            .filter(|f| f.name == "ecs_network_receive_bytes_total")
            .flat_map(|f| f.samples.into_iter().map(|s| s.value))
            .collect()
    }

    #[test]
    fn shared_interface_counters_never_go_backwards() {
        let mut shared = SharedInterfaces::default();
        let (task, stats) = awsvpc_task(&[("a", 10.0, 1000.0), ("b", 9.0, 900.0)]);
        assert_eq!(
            received(&task, &stats, &mut shared),
            vec![1000.0],
            "the freshest sample, once per task"
        );
        // Container a stops: b's sample is older than the one already served.
        let (task, stats) = awsvpc_task(&[("b", 9.0, 900.0)]);
        assert_eq!(received(&task, &stats, &mut shared), vec![1000.0]);
        let (task, stats) = awsvpc_task(&[("b", 11.0, 1100.0)]);
        assert_eq!(received(&task, &stats, &mut shared), vec![1100.0]);
    }

    #[test]
    fn the_metric_table_is_sorted_and_unique() {
        assert!(
            ECS_METRICS
                .windows(2)
                .all(|pair| pair[0].name < pair[1].name)
        );
    }

    #[test]
    fn counters_end_in_total_and_nothing_else_does() {
        for metric in ECS_METRICS {
            assert_eq!(
                metric.name.ends_with("_total"),
                metric.kind == Counter,
                "{}",
                metric.name
            );
        }
    }
}

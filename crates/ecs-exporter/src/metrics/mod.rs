//! The ECS metrics: every family the exporter serves from task metadata and Docker stats,
//! addressed by typed handles ([`Metric`]), and the collectors that turn one task's documents
//! into samples, one file per resource: [`task`], [`container`], [`network`].

mod catalog;
mod container;
mod network;
mod task;

pub use catalog::{ECS_METRICS, Metric, MetricDef};

use ecs_metadata::{Container, ContainerStats, NetworkCounters, Task};
use exposition::Family;
use std::collections::{HashMap, HashSet};

const MIB: f64 = 1024.0 * 1024.0;

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
            task::task_series(&mut out, task, &task_labels);
            for container in &containers {
                container::container_metadata_series(&mut out, task, container, &task_labels);
            }
        }
        if let Some(stats) = inputs.stats {
            let running: Vec<(&Container, &ContainerStats)> = containers
                .iter()
                .filter(|c| !c.is_stopped())
                .filter_map(|c| Some((*c, stats.get(&c.docker_id)?)))
                .collect();
            for (container, stats) in &running {
                container::container_stats_series(&mut out, container, stats, &task_labels);
            }
            network::network_series(&mut out, task, &running, &task_labels, shared);
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

/// The families in [`Metric::ALL`] order, each filled through its [`Metric`].
pub(crate) struct Families {
    families: Vec<Family>,
}

impl Families {
    fn new() -> Self {
        Families {
            families: Metric::ALL
                .iter()
                .map(|m| {
                    let d = m.def();
                    Family::new(d.name, d.help, d.kind)
                })
                .collect(),
        }
    }

    /// Adds a sample to `metric`'s family.
    pub(crate) fn add(&mut self, metric: Metric, labels: Vec<(&'static str, String)>, value: f64) {
        // The variants are declared in `ALL` order (a test checks), so the discriminant is
        // the family's position.
        self.families[metric as usize].push(labels, value);
    }

    /// Adds a sample to `metric`'s family when there is a value.
    pub(crate) fn add_some(
        &mut self,
        metric: Metric,
        labels: &[(&'static str, String)],
        value: Option<f64>,
    ) {
        if let Some(value) = value {
            self.add(metric, labels.to_vec(), value);
        }
    }
}

pub(crate) fn with(
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

pub(crate) fn positive(value: Option<f64>) -> Option<f64> {
    value.filter(|v| *v > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use exposition::MetricType::Counter;

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
    fn every_handle_is_its_familys_position() {
        for (index, metric) in Metric::ALL.iter().enumerate() {
            assert_eq!(*metric as usize, index, "{}", metric.def().name);
        }
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

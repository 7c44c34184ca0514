//! The network collector: interface counters from Docker stats, once per task for shared
//! (`awsvpc`, `host`) namespaces, per container otherwise.

use super::{Families, Metric, SharedInterfaces, with};
use ecs_metadata::{Container, ContainerStats, NetworkCounters, Task};

/// Network counters. In `awsvpc` and `host` mode every container sees the same interfaces,
/// so each interface is reported once per task, from the freshest sample. In `bridge` mode,
/// or when the mode is not reported, each container has interfaces of its own, so the
/// series also carry `container_name`.
pub(super) fn network_series(
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
    out.add_some(Metric::NetworkReceiveBytesTotal, &labels, c.rx_bytes);
    out.add_some(Metric::NetworkReceivePacketsTotal, &labels, c.rx_packets);
    out.add_some(
        Metric::NetworkReceivePacketsDroppedTotal,
        &labels,
        c.rx_dropped,
    );
    out.add_some(Metric::NetworkReceiveErrorsTotal, &labels, c.rx_errors);
    out.add_some(Metric::NetworkTransmitBytesTotal, &labels, c.tx_bytes);
    out.add_some(Metric::NetworkTransmitPacketsTotal, &labels, c.tx_packets);
    out.add_some(
        Metric::NetworkTransmitPacketsDroppedTotal,
        &labels,
        c.tx_dropped,
    );
    out.add_some(Metric::NetworkTransmitErrorsTotal, &labels, c.tx_errors);
}

//! The Docker stats document (`/task/stats`, each element of `/tasks/stats`) and the memory
//! figures derived from it.

use crate::ShapeError;
use crate::json::{kind, number, object};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Docker stats of one running container, in the units the metrics use.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerStats {
    /// Whether these are Windows stats (`memory_stats.privateworkingset` or `commitbytes`).
    pub windows: bool,
    /// CPU time.
    pub cpu: CpuUsage,
    /// `memory_stats`.
    pub memory: MemoryStats,
    /// Bytes read from block devices, all devices summed.
    pub block_io_read_bytes: Option<f64>,
    /// Bytes written to block devices, all devices summed.
    pub block_io_write_bytes: Option<f64>,
    /// `pids_stats.current`.
    pub pids: Option<f64>,
    /// `networks`, by interface name, sorted by name.
    pub networks: Vec<(String, NetworkCounters)>,
    /// `read`: when the agent took this sample, seconds since the Unix epoch.
    pub read_at: Option<f64>,
}

/// Cumulative CPU time in seconds (already converted from Linux nanoseconds or Windows
/// 100-nanosecond units).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuUsage {
    /// `cpu_usage.total_usage`.
    pub total_seconds: Option<f64>,
    /// `cpu_usage.usage_in_usermode`.
    pub user_seconds: Option<f64>,
    /// `cpu_usage.usage_in_kernelmode`.
    pub system_seconds: Option<f64>,
}

/// The `memory_stats` fields the metrics need, in bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryStats {
    /// `usage`: includes page cache on Linux.
    pub usage: Option<f64>,
    /// `max_usage` (cgroup v1 and Windows only).
    pub max_usage: Option<f64>,
    /// `limit` (cgroup value; "unlimited" is a huge number).
    pub limit: Option<f64>,
    /// `stats.cache` (cgroup v1 only).
    pub cache: Option<f64>,
    /// `stats.file` (cgroup v2 only).
    pub file: Option<f64>,
    /// `stats.inactive_file`.
    pub inactive_file: Option<f64>,
    /// `stats.total_inactive_file` (cgroup v1, includes child cgroups).
    pub total_inactive_file: Option<f64>,
    /// `privateworkingset` (Windows only).
    pub private_working_set: Option<f64>,
}

impl MemoryStats {
    fn is_cgroup_v1(&self) -> bool {
        self.cache.is_some()
    }

    /// Page cache: cgroup v1 `cache`, cgroup v2 `file`; nothing on Windows.
    pub fn page_cache(&self) -> Option<f64> {
        if self.private_working_set.is_some() {
            return None;
        }
        self.cache.or(self.file)
    }

    /// Working set as cAdvisor and `docker stats` compute it: usage less inactive file pages
    /// (cgroup v1 `total_inactive_file`, cgroup v2 `inactive_file`), never below zero;
    /// Windows `privateworkingset`.
    pub fn working_set(&self) -> Option<f64> {
        if self.private_working_set.is_some() {
            return self.private_working_set;
        }
        let usage = self.usage?;
        match self.total_inactive_file.or(self.inactive_file) {
            Some(inactive) => Some((usage - inactive).max(0.0)),
            None => Some(usage),
        }
    }

    /// Memory as CloudWatch Container Insights reports it (the ECS agent's rule): cgroup v1
    /// `usage - cache`, cgroup v2 `usage - inactive_file`, each only when smaller than
    /// `usage`, else `usage`; Windows `privateworkingset`.
    pub fn utilized(&self) -> Option<f64> {
        if self.private_working_set.is_some() {
            return self.private_working_set;
        }
        let usage = self.usage?;
        let reclaimable = if self.is_cgroup_v1() {
            self.cache
        } else {
            self.inactive_file
        };
        match reclaimable {
            Some(reclaimable) if reclaimable < usage => Some(usage - reclaimable),
            _ => Some(usage),
        }
    }
}

/// Cumulative counters of one network interface.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkCounters {
    /// `rx_bytes`.
    pub rx_bytes: Option<f64>,
    /// `rx_packets`.
    pub rx_packets: Option<f64>,
    /// `rx_dropped`.
    pub rx_dropped: Option<f64>,
    /// `rx_errors`.
    pub rx_errors: Option<f64>,
    /// `tx_bytes`.
    pub tx_bytes: Option<f64>,
    /// `tx_packets`.
    pub tx_packets: Option<f64>,
    /// `tx_dropped`.
    pub tx_dropped: Option<f64>,
    /// `tx_errors`.
    pub tx_errors: Option<f64>,
}

impl ContainerStats {
    /// Reads one container's stats. `null`, `{}` (a stopped container) and anything that is
    /// not an object give `None`.
    pub fn from_json(value: &Value) -> Option<ContainerStats> {
        let stats = value.as_object().filter(|stats| !stats.is_empty())?;
        let memory = object(stats, "memory_stats");
        let windows = memory
            .is_some_and(|m| m.contains_key("privateworkingset") || m.contains_key("commitbytes"));
        Some(ContainerStats {
            windows,
            cpu: cpu_usage(stats, windows),
            memory: memory.map(memory_stats).unwrap_or_default(),
            block_io_read_bytes: block_io(stats, "read", "read_size_bytes"),
            block_io_write_bytes: block_io(stats, "write", "write_size_bytes"),
            pids: object(stats, "pids_stats").and_then(|p| number(p, "current")),
            networks: networks(stats),
            read_at: stats
                .get("read")
                .and_then(Value::as_str)
                .and_then(crate::time::parse_rfc3339),
        })
    }
}

fn cpu_usage(stats: &Map<String, Value>, windows: bool) -> CpuUsage {
    // Linux reports nanoseconds, Windows 100-nanosecond intervals.
    let per_second = if windows { 1e7 } else { 1e9 };
    let usage = object(stats, "cpu_stats").and_then(|cpu| object(cpu, "cpu_usage"));
    let seconds = |key| usage.and_then(|u| number(u, key)).map(|v| v / per_second);
    CpuUsage {
        total_seconds: seconds("total_usage"),
        user_seconds: seconds("usage_in_usermode"),
        system_seconds: seconds("usage_in_kernelmode"),
    }
}

fn memory_stats(memory: &Map<String, Value>) -> MemoryStats {
    let inner = object(memory, "stats");
    let stat = |key| inner.and_then(|s| number(s, key));
    MemoryStats {
        usage: number(memory, "usage"),
        max_usage: number(memory, "max_usage"),
        limit: number(memory, "limit"),
        cache: stat("cache"),
        file: stat("file"),
        inactive_file: stat("inactive_file"),
        total_inactive_file: stat("total_inactive_file"),
        private_working_set: number(memory, "privateworkingset"),
    }
}

/// Sums `blkio_stats.io_service_bytes_recursive` entries whose `op` matches (any case) over
/// all devices; when that list is missing, Windows' `storage_stats` field is used.
fn block_io(stats: &Map<String, Value>, op: &str, windows_key: &str) -> Option<f64> {
    let entries = object(stats, "blkio_stats")
        .and_then(|blkio| blkio.get("io_service_bytes_recursive"))
        .and_then(Value::as_array);
    match entries {
        Some(entries) => Some(
            entries
                .iter()
                .filter_map(Value::as_object)
                .filter(|e| {
                    e.get("op")
                        .and_then(Value::as_str)
                        .is_some_and(|o| o.eq_ignore_ascii_case(op))
                })
                .filter_map(|e| number(e, "value"))
                .sum(),
        ),
        None => object(stats, "storage_stats").and_then(|s| number(s, windows_key)),
    }
}

fn networks(stats: &Map<String, Value>) -> Vec<(String, NetworkCounters)> {
    let Some(networks) = object(stats, "networks") else {
        return Vec::new();
    };
    let mut list: Vec<(String, NetworkCounters)> = networks
        .iter()
        .filter_map(|(name, counters)| {
            let c = counters.as_object()?;
            Some((
                name.clone(),
                NetworkCounters {
                    rx_bytes: number(c, "rx_bytes"),
                    rx_packets: number(c, "rx_packets"),
                    rx_dropped: number(c, "rx_dropped"),
                    rx_errors: number(c, "rx_errors"),
                    tx_bytes: number(c, "tx_bytes"),
                    tx_packets: number(c, "tx_packets"),
                    tx_dropped: number(c, "tx_dropped"),
                    tx_errors: number(c, "tx_errors"),
                },
            ))
        })
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    list
}

/// Reads `/task/stats` (an object from Docker ID to stats) or `/tasks/stats` (an array of
/// such objects) into one map. Stopped containers (`{}` or `null`) and elements that are not
/// objects are left out.
pub fn parse_stats(value: &Value) -> Result<HashMap<String, ContainerStats>, ShapeError> {
    let mut all = HashMap::new();
    let mut add = |map: &Map<String, Value>| {
        for (docker_id, stats) in map {
            if let Some(stats) = ContainerStats::from_json(stats) {
                all.insert(docker_id.clone(), stats);
            }
        }
    };
    match value {
        Value::Object(map) => add(map),
        Value::Array(items) => items.iter().filter_map(Value::as_object).for_each(add),
        other => {
            return Err(ShapeError {
                expected: "an object of container stats or an array of them",
                found: kind(other),
            });
        }
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn memory(value: Value) -> MemoryStats {
        ContainerStats::from_json(&json!({ "memory_stats": value }))
            .expect("an object with memory_stats is stats")
            .memory
    }

    #[test]
    fn derives_memory_figures_for_each_platform() {
        let v1 = memory(
            json!({"usage": 1000, "stats": {"cache": 300, "total_inactive_file": 200, "inactive_file": 150}}),
        );
        assert_eq!(
            (v1.page_cache(), v1.working_set(), v1.utilized()),
            (Some(300.0), Some(800.0), Some(700.0))
        );

        let v2 = memory(json!({"usage": 1000, "stats": {"file": 400, "inactive_file": 250}}));
        assert_eq!(
            (v2.page_cache(), v2.working_set(), v2.utilized()),
            (Some(400.0), Some(750.0), Some(750.0))
        );

        // Reclaimable figures larger than usage: working set floors at zero, utilised keeps usage.
        let odd =
            memory(json!({"usage": 100, "stats": {"cache": 500, "total_inactive_file": 900}}));
        assert_eq!(
            (odd.working_set(), odd.utilized()),
            (Some(0.0), Some(100.0))
        );

        // Trimmed cgroup v2 stats without inactive_file.
        let trimmed = memory(json!({"usage": 100, "stats": {"file": 40}}));
        assert_eq!(
            (trimmed.working_set(), trimmed.utilized()),
            (Some(100.0), Some(100.0))
        );

        let windows = memory(json!({"usage": 900, "privateworkingset": 600, "max_usage": 950}));
        assert_eq!(
            (
                windows.page_cache(),
                windows.working_set(),
                windows.utilized()
            ),
            (None, Some(600.0), Some(600.0))
        );
    }

    #[test]
    fn converts_windows_cpu_units_and_reads_storage_stats() {
        let stats = ContainerStats::from_json(&json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 30_000_000u64, "usage_in_usermode": 20_000_000u64}},
            "memory_stats": {"privateworkingset": 1},
            "blkio_stats": {"io_service_bytes_recursive": "None"},
            "storage_stats": {"read_size_bytes": 10, "write_size_bytes": 20}
        }))
        .expect("stats");
        assert!(stats.windows);
        assert_eq!(stats.cpu.total_seconds, Some(3.0));
        assert_eq!(stats.cpu.user_seconds, Some(2.0));
        assert_eq!(
            (stats.block_io_read_bytes, stats.block_io_write_bytes),
            (Some(10.0), Some(20.0))
        );
    }

    #[test]
    fn sums_block_io_over_devices_in_any_case() {
        let stats =
            ContainerStats::from_json(&json!({"blkio_stats": {"io_service_bytes_recursive": [
                {"op": "Read", "value": 1}, {"op": "read", "value": 2}, {"op": "READ", "value": 4},
                {"op": "Write", "value": 8}, {"op": "Total", "value": 15}, {"op": "read"}, "junk"
            ]}}))
            .expect("stats");
        assert_eq!(
            (stats.block_io_read_bytes, stats.block_io_write_bytes),
            (Some(7.0), Some(8.0))
        );
    }

    #[test]
    fn stopped_containers_and_wrong_shapes() {
        assert_eq!(ContainerStats::from_json(&json!({})), None);
        assert_eq!(ContainerStats::from_json(&Value::Null), None);
        let map =
            parse_stats(&json!([{"a": {"pids_stats": {"current": 3}}, "b": null}, 7, {"c": {}}]))
                .expect("an array of maps");
        assert_eq!(map.len(), 1);
        assert_eq!(map["a"].pids, Some(3.0));
        assert!(parse_stats(&json!(null)).is_err());
    }
}

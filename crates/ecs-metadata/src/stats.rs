//! The Docker stats document (`/task/stats`, each element of `/tasks/stats`) and the memory
//! figures derived from it.

use crate::DocumentError;
use crate::lenient::{Entries, List, Num, Obj, OneOrMany, Time, absent_otherwise, read_document};
use serde::Deserialize;
use serde::de::{self, Visitor};
use std::collections::HashMap;
use std::fmt;

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
    /// Whether these are Windows figures (no page cache; the working set is reported).
    pub windows: bool,
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
        if self.windows {
            return None;
        }
        self.cache.or(self.file)
    }

    /// Working set as cAdvisor and `docker stats` compute it: usage less inactive file pages
    /// (cgroup v1 `total_inactive_file`, cgroup v2 `inactive_file`), never below zero;
    /// Windows `privateworkingset`.
    pub fn working_set(&self) -> Option<f64> {
        if self.windows {
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
        if self.windows {
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

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawStats {
    read: Time,
    cpu_stats: Obj<RawCpuStats>,
    memory_stats: Obj<RawMemory>,
    blkio_stats: Obj<RawBlkio>,
    storage_stats: Obj<RawStorage>,
    pids_stats: Obj<RawPids>,
    networks: Entries<RawNetwork>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawCpuStats {
    cpu_usage: Obj<RawCpuUsage>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawCpuUsage {
    total_usage: Num,
    usage_in_usermode: Num,
    usage_in_kernelmode: Num,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawMemory {
    usage: Num,
    max_usage: Num,
    limit: Num,
    privateworkingset: Num,
    commitbytes: Num,
    stats: Obj<RawMemoryStats>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawMemoryStats {
    cache: Num,
    file: Num,
    inactive_file: Num,
    total_inactive_file: Num,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawBlkio {
    io_service_bytes_recursive: List<RawBlkioEntry>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawBlkioEntry {
    op: BlkioOp,
    value: Num,
}

/// The `op` of a blkio entry, compared without allocating: the arrays are long (six ops per
/// device on cgroup v1) and read on every scrape.
#[derive(Default, PartialEq)]
enum BlkioOp {
    Read,
    Write,
    #[default]
    Other,
}

impl<'de> Deserialize<'de> for BlkioOp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BlkioOp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a blkio op")
            }
            fn visit_str<E: de::Error>(self, op: &str) -> Result<BlkioOp, E> {
                Ok(if op.eq_ignore_ascii_case("read") {
                    BlkioOp::Read
                } else if op.eq_ignore_ascii_case("write") {
                    BlkioOp::Write
                } else {
                    BlkioOp::Other
                })
            }
            absent_otherwise!(bool, u64, i64, f64, seq, map);
        }
        deserializer.deserialize_any(V)
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawStorage {
    read_size_bytes: Num,
    write_size_bytes: Num,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawPids {
    current: Num,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RawNetwork {
    rx_bytes: Num,
    rx_packets: Num,
    rx_dropped: Num,
    rx_errors: Num,
    tx_bytes: Num,
    tx_packets: Num,
    tx_dropped: Num,
    tx_errors: Num,
}

impl ContainerStats {
    /// Converts the document's stats of one container. A stopped container's stats (`{}`,
    /// or an object with none of the known fields) give `None`.
    fn from_raw(raw: RawStats) -> Option<ContainerStats> {
        let memory = raw.memory_stats.0.unwrap_or_default();
        let storage = raw.storage_stats.0;
        // Windows stats carry privateworkingset or commitbytes in memory_stats, or the
        // read/write sizes in storage_stats; Linux stats have none of them.
        let windows = memory.privateworkingset.0.is_some()
            || memory.commitbytes.0.is_some()
            || storage
                .as_ref()
                .is_some_and(|s| s.read_size_bytes.0.is_some() || s.write_size_bytes.0.is_some());
        // Linux reports CPU time in nanoseconds, Windows in 100-nanosecond intervals.
        let per_second = if windows { 1e7 } else { 1e9 };
        let cpu = raw
            .cpu_stats
            .0
            .and_then(|cpu| cpu.cpu_usage.0)
            .unwrap_or_default();
        let seconds = |value: Num| value.0.map(|v| v / per_second);
        let inner = memory.stats.0.unwrap_or_default();
        let (block_io_read_bytes, block_io_write_bytes) = block_io(
            raw.blkio_stats
                .0
                .and_then(|b| b.io_service_bytes_recursive.0),
            storage,
        );
        let mut networks: Vec<(String, NetworkCounters)> = raw
            .networks
            .0
            .into_iter()
            .map(|(name, n)| {
                let counters = NetworkCounters {
                    rx_bytes: n.rx_bytes.0,
                    rx_packets: n.rx_packets.0,
                    rx_dropped: n.rx_dropped.0,
                    rx_errors: n.rx_errors.0,
                    tx_bytes: n.tx_bytes.0,
                    tx_packets: n.tx_packets.0,
                    tx_dropped: n.tx_dropped.0,
                    tx_errors: n.tx_errors.0,
                };
                (name, counters)
            })
            .collect();
        networks.sort_by(|a, b| a.0.cmp(&b.0));
        // A key repeated in the JSON object would give one interface twice: keep one.
        networks.dedup_by(|a, b| a.0 == b.0);
        let stats = ContainerStats {
            windows,
            cpu: CpuUsage {
                total_seconds: seconds(cpu.total_usage),
                user_seconds: seconds(cpu.usage_in_usermode),
                system_seconds: seconds(cpu.usage_in_kernelmode),
            },
            memory: MemoryStats {
                windows,
                usage: memory.usage.0,
                max_usage: memory.max_usage.0,
                limit: memory.limit.0,
                cache: inner.cache.0,
                file: inner.file.0,
                inactive_file: inner.inactive_file.0,
                total_inactive_file: inner.total_inactive_file.0,
                private_working_set: memory.privateworkingset.0,
            },
            block_io_read_bytes,
            block_io_write_bytes,
            pids: raw.pids_stats.0.and_then(|p| p.current.0),
            networks,
            read_at: raw.read.0,
        };
        (stats
            != ContainerStats {
                windows,
                ..ContainerStats::default()
            })
        .then_some(stats)
    }
}

/// Sums `io_service_bytes_recursive` entries whose `op` is `read` or `write` (any case) over
/// all devices; when that list is missing, Windows' `storage_stats` fields are used.
fn block_io(
    entries: Option<Vec<RawBlkioEntry>>,
    storage: Option<RawStorage>,
) -> (Option<f64>, Option<f64>) {
    match entries {
        Some(entries) => {
            let sum = |op: BlkioOp| {
                entries
                    .iter()
                    .filter(|e| e.op == op)
                    .filter_map(|e| e.value.0)
                    // fold from +0: `sum` of no f64s is -0, which would be written as "-0".
                    .fold(0.0, |total, value| total + value)
            };
            (Some(sum(BlkioOp::Read)), Some(sum(BlkioOp::Write)))
        }
        None => {
            let storage = storage.unwrap_or_default();
            (storage.read_size_bytes.0, storage.write_size_bytes.0)
        }
    }
}

/// Reads `/task/stats` (an object from Docker ID to stats) or `/tasks/stats` (an array of
/// such objects) into one map. Stopped containers (`{}` or `null`) and values that are not
/// objects are left out; text that is not JSON, or JSON of another shape, is a
/// [`DocumentError`].
pub fn parse_stats(body: &[u8]) -> Result<HashMap<String, ContainerStats>, DocumentError> {
    let maps: OneOrMany<Entries<RawStats>> =
        read_document(body).map_err(|source| DocumentError {
            what: "container stats",
            source,
        })?;
    Ok(maps
        .0
        .into_iter()
        .flat_map(|map| map.0)
        .filter_map(|(docker_id, raw)| Some((docker_id, ContainerStats::from_raw(raw)?)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse(value: Value) -> Result<HashMap<String, ContainerStats>, DocumentError> {
        parse_stats(value.to_string().as_bytes())
    }

    /// One container's stats, read through a `/task/stats` document.
    fn one(value: Value) -> Option<ContainerStats> {
        parse(json!({ "id": value }))
            .expect("an object is a stats document")
            .remove("id")
    }

    fn memory(value: Value) -> MemoryStats {
        one(json!({ "memory_stats": value }))
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
    fn windows_is_recognised_without_memory_stats() {
        let stats = one(json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 10_000_000u64}},
            "storage_stats": {"read_size_bytes": 1}
        }))
        .expect("stats");
        assert!(stats.windows && stats.memory.windows);
        assert_eq!(stats.cpu.total_seconds, Some(1.0));
        let commit_only = memory(json!({"usage": 500, "commitbytes": 400}));
        assert_eq!(
            (commit_only.page_cache(), commit_only.working_set()),
            (None, None)
        );
    }

    #[test]
    fn converts_windows_cpu_units_and_reads_storage_stats() {
        let stats = one(json!({
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
        let stats = one(json!({"blkio_stats": {"io_service_bytes_recursive": [
            {"op": "Read", "value": 1}, {"op": "read", "value": 2}, {"op": "READ", "value": 4},
            {"op": "Write", "value": 8}, {"op": "Total", "value": 15}, {"op": "read"}, "junk"
        ]}}))
        .expect("stats");
        assert_eq!(
            (stats.block_io_read_bytes, stats.block_io_write_bytes),
            (Some(7.0), Some(8.0))
        );
        let empty = one(json!({"blkio_stats": {"io_service_bytes_recursive": []}})).expect("stats");
        assert!(
            empty
                .block_io_read_bytes
                .is_some_and(|v| v == 0.0 && v.is_sign_positive())
        );
    }

    #[test]
    fn stopped_containers_and_wrong_shapes() {
        assert_eq!(one(json!({})), None);
        assert_eq!(one(Value::Null), None);
        let map = parse(json!([{"a": {"pids_stats": {"current": 3}}, "b": null}, 7, {"c": {}}]))
            .expect("an array of maps");
        assert_eq!(map.len(), 1);
        assert_eq!(map["a"].pids, Some(3.0));
        assert!(parse(json!(null)).is_err());
    }
}

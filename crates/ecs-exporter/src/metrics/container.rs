//! The container collector: identity, limits, status and health from the task metadata
//! document, and CPU, memory, block I/O and process counts from Docker stats.

use super::{Families, MIB, Metric, positive, with};
use ecs_metadata::{Container, ContainerStats, Task};

/// CPU units per vCPU.
const CPU_UNITS_PER_VCPU: f64 = 1024.0;
/// The ECS agent reports 2 CPU units (Docker's minimum share) for containers without a
/// CPU limit, so values up to 2 mean "unset".
const UNSET_CPU_UNITS: f64 = 2.0;
/// Container health states, written as a state set.
const HEALTH_STATES: [&str; 3] = ["HEALTHY", "UNHEALTHY", "UNKNOWN"];

/// A container's series from the task metadata document.
pub(super) fn container_metadata_series(
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
    out.add(Metric::ContainerInfo, info, 1.0);
    out.add_some(
        Metric::ContainerCpuLimitVcpus,
        &labels,
        c.cpu_units
            .filter(|units| *units > UNSET_CPU_UNITS)
            .map(|units| units / CPU_UNITS_PER_VCPU),
    );
    let memory_limit_mib = positive(c.memory_limit_mib).or(positive(task.memory_limit_mib));
    out.add_some(
        Metric::ContainerMemoryLimitBytes,
        &labels,
        memory_limit_mib.map(|m| m * MIB),
    );
    out.add_some(Metric::ContainerExitCode, &labels, c.exit_code);
    out.add_some(Metric::ContainerStartTimeSeconds, &labels, c.started_at);
    out.add_some(Metric::ContainerRestartsTotal, &labels, c.restart_count);
    if let Some(status) = &c.health_status {
        for state in HEALTH_STATES {
            out.add(
                Metric::ContainerHealthStatus,
                with(&labels, &[("status", state)]),
                f64::from(state == status),
            );
        }
        if !HEALTH_STATES.contains(&status.as_str()) {
            out.add(
                Metric::ContainerHealthStatus,
                with(&labels, &[("status", status)]),
                1.0,
            );
        }
    }
}

/// A running container's series from its Docker stats.
pub(super) fn container_stats_series(
    out: &mut Families,
    c: &Container,
    s: &ContainerStats,
    task_labels: &[(&'static str, String)],
) {
    let labels = with(task_labels, &[("container_name", &c.name)]);
    out.add_some(
        Metric::ContainerCpuUsageSecondsTotal,
        &labels,
        s.cpu.total_seconds,
    );
    out.add_some(
        Metric::ContainerCpuUserSecondsTotal,
        &labels,
        s.cpu.user_seconds,
    );
    out.add_some(
        Metric::ContainerCpuSystemSecondsTotal,
        &labels,
        s.cpu.system_seconds,
    );
    out.add_some(Metric::ContainerMemoryUsageBytes, &labels, s.memory.usage);
    out.add_some(
        Metric::ContainerMemoryMaxUsageBytes,
        &labels,
        s.memory.max_usage,
    );
    out.add_some(
        Metric::ContainerMemoryPageCacheSizeBytes,
        &labels,
        s.memory.page_cache(),
    );
    out.add_some(
        Metric::ContainerMemoryWorkingSetBytes,
        &labels,
        s.memory.working_set(),
    );
    out.add_some(
        Metric::ContainerMemoryUtilizedBytes,
        &labels,
        s.memory.utilized(),
    );
    out.add_some(
        Metric::ContainerBlockIoReadBytesTotal,
        &labels,
        s.block_io_read_bytes,
    );
    out.add_some(
        Metric::ContainerBlockIoWriteBytesTotal,
        &labels,
        s.block_io_write_bytes,
    );
    out.add_some(Metric::ContainerPids, &labels, s.pids);
}

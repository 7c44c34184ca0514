//! The task collector: the task's identity, its limits, ephemeral storage, image pull times
//! and clock, from the task metadata document.

use super::{Families, MIB, Metric, positive};
use ecs_metadata::Task;

/// The series of one task (from current metadata only).
pub(super) fn task_series(out: &mut Families, task: &Task, labels: &[(&'static str, String)]) {
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
    out.add(Metric::TaskMetadataInfo, info, 1.0);
    out.add_some(
        Metric::TaskCpuLimitVcpus,
        labels,
        positive(task.cpu_limit_vcpus),
    );
    out.add_some(
        Metric::TaskMemoryLimitBytes,
        labels,
        positive(task.memory_limit_mib).map(|m| m * MIB),
    );
    out.add_some(
        Metric::TaskEphemeralStorageUsedBytes,
        labels,
        task.ephemeral_storage_utilized_mib.map(|m| m * MIB),
    );
    out.add_some(
        Metric::TaskEphemeralStorageAllocatedBytes,
        labels,
        task.ephemeral_storage_reserved_mib.map(|m| m * MIB),
    );
    out.add_some(
        Metric::TaskImagePullStartTimestampSeconds,
        labels,
        task.pull_started_at,
    );
    out.add_some(
        Metric::TaskImagePullStopTimestampSeconds,
        labels,
        task.pull_stopped_at,
    );
    if let Some(clock) = &task.clock {
        out.add_some(
            Metric::TaskClockSynchronized,
            labels,
            clock.synchronized.map(f64::from),
        );
        out.add_some(
            Metric::TaskClockErrorBoundSeconds,
            labels,
            clock.error_bound_ms.map(|ms| ms / 1000.0),
        );
    }
}

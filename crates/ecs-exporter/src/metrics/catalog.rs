//! The catalogue of ECS metric families: each family's name, type and help text behind a
//! typed handle.

use exposition::MetricType;

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

/// Every ECS metric family the exporter may serve. The variants are in name order, the order
/// the families are written in; a family is addressed by its variant, so a misspelt name does
/// not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// `ecs_container_block_io_read_bytes_total`.
    ContainerBlockIoReadBytesTotal,
    /// `ecs_container_block_io_write_bytes_total`.
    ContainerBlockIoWriteBytesTotal,
    /// `ecs_container_cpu_limit_vcpus`.
    ContainerCpuLimitVcpus,
    /// `ecs_container_cpu_system_seconds_total`.
    ContainerCpuSystemSecondsTotal,
    /// `ecs_container_cpu_usage_seconds_total`.
    ContainerCpuUsageSecondsTotal,
    /// `ecs_container_cpu_user_seconds_total`.
    ContainerCpuUserSecondsTotal,
    /// `ecs_container_exit_code`.
    ContainerExitCode,
    /// `ecs_container_health_status`.
    ContainerHealthStatus,
    /// `ecs_container_info`.
    ContainerInfo,
    /// `ecs_container_memory_limit_bytes`.
    ContainerMemoryLimitBytes,
    /// `ecs_container_memory_max_usage_bytes`.
    ContainerMemoryMaxUsageBytes,
    /// `ecs_container_memory_page_cache_size_bytes`.
    ContainerMemoryPageCacheSizeBytes,
    /// `ecs_container_memory_usage_bytes`.
    ContainerMemoryUsageBytes,
    /// `ecs_container_memory_utilized_bytes`.
    ContainerMemoryUtilizedBytes,
    /// `ecs_container_memory_working_set_bytes`.
    ContainerMemoryWorkingSetBytes,
    /// `ecs_container_pids`.
    ContainerPids,
    /// `ecs_container_restarts_total`.
    ContainerRestartsTotal,
    /// `ecs_container_start_time_seconds`.
    ContainerStartTimeSeconds,
    /// `ecs_network_receive_bytes_total`.
    NetworkReceiveBytesTotal,
    /// `ecs_network_receive_errors_total`.
    NetworkReceiveErrorsTotal,
    /// `ecs_network_receive_packets_dropped_total`.
    NetworkReceivePacketsDroppedTotal,
    /// `ecs_network_receive_packets_total`.
    NetworkReceivePacketsTotal,
    /// `ecs_network_transmit_bytes_total`.
    NetworkTransmitBytesTotal,
    /// `ecs_network_transmit_errors_total`.
    NetworkTransmitErrorsTotal,
    /// `ecs_network_transmit_packets_dropped_total`.
    NetworkTransmitPacketsDroppedTotal,
    /// `ecs_network_transmit_packets_total`.
    NetworkTransmitPacketsTotal,
    /// `ecs_task_clock_error_bound_seconds`.
    TaskClockErrorBoundSeconds,
    /// `ecs_task_clock_synchronized`.
    TaskClockSynchronized,
    /// `ecs_task_cpu_limit_vcpus`.
    TaskCpuLimitVcpus,
    /// `ecs_task_ephemeral_storage_allocated_bytes`.
    TaskEphemeralStorageAllocatedBytes,
    /// `ecs_task_ephemeral_storage_used_bytes`.
    TaskEphemeralStorageUsedBytes,
    /// `ecs_task_image_pull_start_timestamp_seconds`.
    TaskImagePullStartTimestampSeconds,
    /// `ecs_task_image_pull_stop_timestamp_seconds`.
    TaskImagePullStopTimestampSeconds,
    /// `ecs_task_memory_limit_bytes`.
    TaskMemoryLimitBytes,
    /// `ecs_task_metadata_info`.
    TaskMetadataInfo,
}

impl Metric {
    /// Every family, in name order.
    pub const ALL: [Metric; 35] = [
        Metric::ContainerBlockIoReadBytesTotal,
        Metric::ContainerBlockIoWriteBytesTotal,
        Metric::ContainerCpuLimitVcpus,
        Metric::ContainerCpuSystemSecondsTotal,
        Metric::ContainerCpuUsageSecondsTotal,
        Metric::ContainerCpuUserSecondsTotal,
        Metric::ContainerExitCode,
        Metric::ContainerHealthStatus,
        Metric::ContainerInfo,
        Metric::ContainerMemoryLimitBytes,
        Metric::ContainerMemoryMaxUsageBytes,
        Metric::ContainerMemoryPageCacheSizeBytes,
        Metric::ContainerMemoryUsageBytes,
        Metric::ContainerMemoryUtilizedBytes,
        Metric::ContainerMemoryWorkingSetBytes,
        Metric::ContainerPids,
        Metric::ContainerRestartsTotal,
        Metric::ContainerStartTimeSeconds,
        Metric::NetworkReceiveBytesTotal,
        Metric::NetworkReceiveErrorsTotal,
        Metric::NetworkReceivePacketsDroppedTotal,
        Metric::NetworkReceivePacketsTotal,
        Metric::NetworkTransmitBytesTotal,
        Metric::NetworkTransmitErrorsTotal,
        Metric::NetworkTransmitPacketsDroppedTotal,
        Metric::NetworkTransmitPacketsTotal,
        Metric::TaskClockErrorBoundSeconds,
        Metric::TaskClockSynchronized,
        Metric::TaskCpuLimitVcpus,
        Metric::TaskEphemeralStorageAllocatedBytes,
        Metric::TaskEphemeralStorageUsedBytes,
        Metric::TaskImagePullStartTimestampSeconds,
        Metric::TaskImagePullStopTimestampSeconds,
        Metric::TaskMemoryLimitBytes,
        Metric::TaskMetadataInfo,
    ];

    /// The family's name, type and help text.
    pub const fn def(self) -> MetricDef {
        match self {
            Metric::ContainerBlockIoReadBytesTotal => def(
                "ecs_container_block_io_read_bytes_total",
                Counter,
                "Bytes the container read from block devices, summed over devices.",
            ),
            Metric::ContainerBlockIoWriteBytesTotal => def(
                "ecs_container_block_io_write_bytes_total",
                Counter,
                "Bytes the container wrote to block devices, summed over devices.",
            ),
            Metric::ContainerCpuLimitVcpus => def(
                "ecs_container_cpu_limit_vcpus",
                Gauge,
                "CPU limit of the container in vCPUs (its CPU units / 1024), when the task definition sets one.",
            ),
            Metric::ContainerCpuSystemSecondsTotal => def(
                "ecs_container_cpu_system_seconds_total",
                Counter,
                "CPU time the container spent in kernel mode, in seconds.",
            ),
            Metric::ContainerCpuUsageSecondsTotal => def(
                "ecs_container_cpu_usage_seconds_total",
                Counter,
                "CPU time the container used, in seconds.",
            ),
            Metric::ContainerCpuUserSecondsTotal => def(
                "ecs_container_cpu_user_seconds_total",
                Counter,
                "CPU time the container spent in user mode, in seconds.",
            ),
            Metric::ContainerExitCode => def(
                "ecs_container_exit_code",
                Gauge,
                "Exit code of the container, once it has exited.",
            ),
            Metric::ContainerHealthStatus => def(
                "ecs_container_health_status",
                Gauge,
                "Health check status of the container: 1 for the current status, 0 for the others.",
            ),
            Metric::ContainerInfo => def(
                "ecs_container_info",
                Gauge,
                "Identity and status of a container of the task; always 1.",
            ),
            Metric::ContainerMemoryLimitBytes => def(
                "ecs_container_memory_limit_bytes",
                Gauge,
                "Memory limit of the container in bytes: its own limit from the task definition, otherwise the task's limit.",
            ),
            Metric::ContainerMemoryMaxUsageBytes => def(
                "ecs_container_memory_max_usage_bytes",
                Gauge,
                "Highest memory usage of the container in bytes, where the runtime reports it (cgroup v1, Windows).",
            ),
            Metric::ContainerMemoryPageCacheSizeBytes => def(
                "ecs_container_memory_page_cache_size_bytes",
                Gauge,
                "Page cache charged to the container in bytes (cgroup v1 cache, cgroup v2 file); part of memory usage.",
            ),
            Metric::ContainerMemoryUsageBytes => def(
                "ecs_container_memory_usage_bytes",
                Gauge,
                "Memory usage of the container in bytes as the cgroup reports it, page cache included.",
            ),
            Metric::ContainerMemoryUtilizedBytes => def(
                "ecs_container_memory_utilized_bytes",
                Gauge,
                "Memory of the container in bytes as CloudWatch Container Insights reports it.",
            ),
            Metric::ContainerMemoryWorkingSetBytes => def(
                "ecs_container_memory_working_set_bytes",
                Gauge,
                "Working set of the container in bytes: usage less inactive file pages, as cAdvisor and docker stats compute it.",
            ),
            Metric::ContainerPids => def(
                "ecs_container_pids",
                Gauge,
                "Number of processes and threads in the container.",
            ),
            Metric::ContainerRestartsTotal => def(
                "ecs_container_restarts_total",
                Counter,
                "Times the ECS agent restarted the container under its restart policy.",
            ),
            Metric::ContainerStartTimeSeconds => def(
                "ecs_container_start_time_seconds",
                Gauge,
                "When the container last started, in seconds since the Unix epoch.",
            ),
            Metric::NetworkReceiveBytesTotal => def(
                "ecs_network_receive_bytes_total",
                Counter,
                "Bytes received on the network interface.",
            ),
            Metric::NetworkReceiveErrorsTotal => def(
                "ecs_network_receive_errors_total",
                Counter,
                "Receive errors on the network interface.",
            ),
            Metric::NetworkReceivePacketsDroppedTotal => def(
                "ecs_network_receive_packets_dropped_total",
                Counter,
                "Received packets dropped on the network interface.",
            ),
            Metric::NetworkReceivePacketsTotal => def(
                "ecs_network_receive_packets_total",
                Counter,
                "Packets received on the network interface.",
            ),
            Metric::NetworkTransmitBytesTotal => def(
                "ecs_network_transmit_bytes_total",
                Counter,
                "Bytes transmitted on the network interface.",
            ),
            Metric::NetworkTransmitErrorsTotal => def(
                "ecs_network_transmit_errors_total",
                Counter,
                "Transmit errors on the network interface.",
            ),
            Metric::NetworkTransmitPacketsDroppedTotal => def(
                "ecs_network_transmit_packets_dropped_total",
                Counter,
                "Transmitted packets dropped on the network interface.",
            ),
            Metric::NetworkTransmitPacketsTotal => def(
                "ecs_network_transmit_packets_total",
                Counter,
                "Packets transmitted on the network interface.",
            ),
            Metric::TaskClockErrorBoundSeconds => def(
                "ecs_task_clock_error_bound_seconds",
                Gauge,
                "Fargate's bound on the error of the task's clock against the reference time, in seconds.",
            ),
            Metric::TaskClockSynchronized => def(
                "ecs_task_clock_synchronized",
                Gauge,
                "1 when Fargate reports the task's clock as synchronized with the reference time, else 0.",
            ),
            Metric::TaskCpuLimitVcpus => def(
                "ecs_task_cpu_limit_vcpus",
                Gauge,
                "Task-level CPU limit in vCPUs, when the task definition sets one.",
            ),
            Metric::TaskEphemeralStorageAllocatedBytes => def(
                "ecs_task_ephemeral_storage_allocated_bytes",
                Gauge,
                "Fargate ephemeral storage reserved for the task, in bytes.",
            ),
            Metric::TaskEphemeralStorageUsedBytes => def(
                "ecs_task_ephemeral_storage_used_bytes",
                Gauge,
                "Fargate ephemeral storage the task uses, in bytes.",
            ),
            Metric::TaskImagePullStartTimestampSeconds => def(
                "ecs_task_image_pull_start_timestamp_seconds",
                Gauge,
                "When the task began pulling its first container image, in seconds since the Unix epoch.",
            ),
            Metric::TaskImagePullStopTimestampSeconds => def(
                "ecs_task_image_pull_stop_timestamp_seconds",
                Gauge,
                "When the task finished pulling its last container image, in seconds since the Unix epoch.",
            ),
            Metric::TaskMemoryLimitBytes => def(
                "ecs_task_memory_limit_bytes",
                Gauge,
                "Task-level memory limit in bytes, when the task definition sets one.",
            ),
            Metric::TaskMetadataInfo => def(
                "ecs_task_metadata_info",
                Gauge,
                "Identity and status of the ECS task; always 1.",
            ),
        }
    }
}

/// Every ECS metric family's definition, in name order (the order they are written in).
pub const ECS_METRICS: [MetricDef; Metric::ALL.len()] = {
    let mut defs = [Metric::ALL[0].def(); Metric::ALL.len()];
    let mut i = 0;
    while i < defs.len() {
        defs[i] = Metric::ALL[i].def();
        i += 1;
    }
    defs
};

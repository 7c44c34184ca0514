//! The simulated tasks as the Task Metadata Endpoint v4 writes them: the same field names,
//! nesting, units and per-platform quirks as the captures in `fixtures/ecs-metadata/`.

use crate::{
    ACCOUNT, CLUSTER, ContainerState, Platform, REGION, SimulatedContainer, SimulatedTask,
    Simulation, random,
};
use serde_json::{Map, Value, json};
use timestamps::format_rfc3339;

const MIB: f64 = 1024.0 * 1024.0;
const PAGE: f64 = 4096.0;
/// cgroup v1's "no limit".
const CGROUP_V1_UNLIMITED: u64 = 9_223_372_036_854_771_712;

/// Memory figures of a container at one sample period, in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Memory {
    /// Anonymous memory (the working set proper).
    pub anon: f64,
    /// Page cache.
    pub file: f64,
    /// The inactive part of the page cache.
    pub inactive_file: f64,
    /// `anon + file`.
    pub usage: f64,
}

/// A container's memory at sample period `k`: anonymous memory moving around its working set,
/// page cache filling up towards 60% of it after a (re)start.
pub fn memory_at(seed: u64, stream: u64, c: &SimulatedContainer, k: u64) -> Memory {
    let pages = |bytes: f64| (bytes / PAGE).round() * PAGE;
    let since_start = k.saturating_sub(c.counters_from) as f64;
    let wave = (k as f64 / 7.0 + stream as f64).sin();
    let anon =
        pages(c.working_set_bytes * (0.9 + 0.08 * wave + 0.04 * random::unit(seed, stream, 6, k)));
    let file = pages(c.working_set_bytes * 0.6 * (1.0 - (-since_start / 30.0).exp()));
    let inactive_file = pages(file * 0.55);
    Memory {
        anon,
        file,
        inactive_file,
        usage: anon + file,
    }
}

fn index_of(sim: &Simulation, task: &SimulatedTask) -> usize {
    sim.tasks.iter().position(|t| t.id == task.id).unwrap_or(0)
}

fn stream(sim: &Simulation, task: &SimulatedTask, c: &SimulatedContainer) -> u64 {
    let container_index = task
        .containers
        .iter()
        .position(|x| x.name == c.name)
        .unwrap_or(0);
    (index_of(sim, task) * 16 + container_index) as u64
}

fn cluster(task: &SimulatedTask) -> String {
    match task.platform {
        Platform::Ec2Bridge => CLUSTER.to_owned(),
        Platform::Fargate | Platform::ManagedInstances => {
            format!("arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}")
        }
    }
}

/// `${ECS_CONTAINER_METADATA_URI_V4}` itself: the calling container's metadata.
pub fn container_metadata(sim: &Simulation, task: &SimulatedTask, c: &SimulatedContainer) -> Value {
    let index = task
        .containers
        .iter()
        .position(|x| x.name == c.name)
        .unwrap_or(0);
    let mut m = Map::new();
    m.insert("DockerId".into(), json!(c.docker_id));
    m.insert("Name".into(), json!(c.name));
    m.insert(
        "DockerName".into(),
        json!(match task.platform {
            Platform::Ec2Bridge =>
                format!("ecs-{}-3-{}-{}", task.family, c.name, &c.docker_id[..20]),
            Platform::Fargate | Platform::ManagedInstances => c.name.clone(),
        }),
    );
    m.insert("Image".into(), json!(c.image));
    m.insert(
        "ImageID".into(),
        json!(format!(
            "sha256:{}",
            random::hex(sim.seed, index as u64, 90, 64)
        )),
    );
    if let Some(port) = c.container_port {
        m.insert(
            "Ports".into(),
            json!([{
                "ContainerPort": port,
                "Protocol": "tcp",
                "HostPort": c.host_port.unwrap_or(port),
                "HostIp": "0.0.0.0"
            }]),
        );
    }
    let mut labels = json!({
        "com.amazonaws.ecs.cluster": cluster(task),
        "com.amazonaws.ecs.container-name": c.name,
        "com.amazonaws.ecs.task-arn": task.arn(),
        "com.amazonaws.ecs.task-definition-family": task.family,
        "com.amazonaws.ecs.task-definition-version": "3"
    });
    if let Some(labels) = labels.as_object_mut() {
        for (name, value) in &c.docker_labels {
            labels.insert(name.clone(), json!(value));
        }
    }
    m.insert("Labels".into(), labels);
    m.insert("DesiredStatus".into(), json!("RUNNING"));
    let mut limits = Map::new();
    limits.insert("CPU".into(), json!(c.cpu_units));
    if let Some(memory) = c.memory_limit_mib {
        limits.insert("Memory".into(), json!(memory));
    }
    match c.state {
        ContainerState::Running => {
            m.insert("KnownStatus".into(), json!("RUNNING"));
        }
        ContainerState::Exited { code, .. } => {
            m.insert("KnownStatus".into(), json!("STOPPED"));
            m.insert("ExitCode".into(), json!(code));
        }
    }
    m.insert("Limits".into(), Value::Object(limits));
    m.insert(
        "CreatedAt".into(),
        json!(format_rfc3339(c.started_at - 1.5)),
    );
    m.insert("StartedAt".into(), json!(format_rfc3339(c.started_at)));
    if let ContainerState::Exited { at, .. } = c.state {
        m.insert("FinishedAt".into(), json!(format_rfc3339(at)));
    }
    m.insert("Type".into(), json!("NORMAL"));
    if c.essential {
        m.insert("RestartCount".into(), json!(c.restart_count));
    }
    m.insert(
        "ContainerARN".into(),
        json!(format!(
            "arn:aws:ecs:{REGION}:{ACCOUNT}:container/{CLUSTER}/{}/{}",
            task.id,
            &c.docker_id[..8]
        )),
    );
    match task.platform {
        Platform::Fargate => {
            m.insert(
                "Networks".into(),
                json!([{
                    "NetworkMode": "awsvpc",
                    "IPv4Addresses": [task.ip],
                    "AttachmentIndex": 0,
                    "MACAddress": "0a:ff:e5:34:fa:c9",
                    "IPv4SubnetCIDRBlock": "10.0.0.0/16",
                    "PrivateDNSName": format!("ip-{}.ec2.internal", task.ip.replace('.', "-")),
                    "SubnetGatewayIpv4Address": "10.0.0.1/16"
                }]),
            );
        }
        Platform::Ec2Bridge => {
            m.insert(
                "Networks".into(),
                json!([{"NetworkMode": "bridge", "IPv4Addresses": [c
                    .bridge_address
                    .clone()
                    .unwrap_or_else(|| format!("172.17.0.{}", index + 2))]}]),
            );
        }
        // Managed Instances tasks report no Networks.
        Platform::ManagedInstances => {}
    }
    Value::Object(m)
}

/// `/task` (and, with tags, `/taskWithTags`).
pub fn task_metadata(sim: &Simulation, task: &SimulatedTask, with_tags: bool) -> Value {
    let mut m = Map::new();
    m.insert("Cluster".into(), json!(cluster(task)));
    m.insert("TaskARN".into(), json!(task.arn()));
    m.insert("Family".into(), json!(task.family));
    m.insert("Revision".into(), json!("3"));
    m.insert("DesiredStatus".into(), json!("RUNNING"));
    m.insert("KnownStatus".into(), json!("RUNNING"));
    match task.platform {
        Platform::Fargate => {
            m.insert("Limits".into(), json!({"CPU": 0.25, "Memory": 512}));
        }
        Platform::ManagedInstances => {
            m.insert("Limits".into(), json!({"CPU": 1, "Memory": 2048}));
        }
        // Task-level limits are optional on EC2.
        Platform::Ec2Bridge => {}
    }
    m.insert(
        "PullStartedAt".into(),
        json!(format_rfc3339(sim.started - 90.25)),
    );
    m.insert(
        "PullStoppedAt".into(),
        json!(format_rfc3339(sim.started - 70.5)),
    );
    m.insert("AvailabilityZone".into(), json!(format!("{REGION}a")));
    m.insert("LaunchType".into(), json!(task.platform.launch_type()));
    m.insert(
        "Containers".into(),
        Value::Array(
            task.containers
                .iter()
                .map(|c| container_metadata(sim, task, c))
                .collect(),
        ),
    );
    m.insert("ServiceName".into(), json!("demo-app"));
    match task.platform {
        Platform::Fargate => {
            m.insert(
                "ClockDrift".into(),
                json!({
                    "ClockErrorBound": 0.31,
                    "ReferenceTimestamp": format_rfc3339(sim.started.floor()).replace(".000000000", ""),
                    "ClockSynchronizationStatus": "SYNCHRONIZED"
                }),
            );
            m.insert(
                "EphemeralStorageMetrics".into(),
                json!({"Utilized": 312, "Reserved": 20496}),
            );
        }
        Platform::Ec2Bridge => {
            m.insert("VPCID".into(), json!("vpc-0123456789abcdef0"));
        }
        Platform::ManagedInstances => {
            m.insert("Group".into(), json!("service:demo-app"));
        }
    }
    if with_tags {
        m.insert(
            "TaskTags".into(),
            json!({"team": "platform", "app": "demo"}),
        );
        if task.platform == Platform::Ec2Bridge {
            m.insert("ContainerInstanceTags".into(), json!({"pool": "general"}));
        }
    }
    Value::Object(m)
}

/// `/stats` for one container: `null` (Fargate) or `{}` (elsewhere) once it has exited.
pub fn container_stats(
    sim: &Simulation,
    task: &SimulatedTask,
    c: &SimulatedContainer,
    now: f64,
) -> Value {
    if c.state != ContainerState::Running {
        return match task.platform {
            Platform::Fargate => Value::Null,
            Platform::Ec2Bridge | Platform::ManagedInstances => json!({}),
        };
    }
    let k = sim.period_at(task, now);
    let period = task.platform.sample_period();
    // The agent samples each container at a slightly different moment.
    let container_index = task
        .containers
        .iter()
        .position(|x| x.name == c.name)
        .unwrap_or(0);
    let read = sim.started + k as f64 * period + 0.0123 + container_index as f64 * 0.137;
    let memory = memory_at(sim.seed, stream(sim, task, c), c, k);
    let counters = &c.counters;
    let cpu_stats = |cpu: [f64; 3], k: u64| {
        let system = (k as f64 * period + 86_400.0) * 2e9;
        match task.platform {
            Platform::Fargate => json!({
                "cpu_usage": {
                    "total_usage": cpu[0],
                    "percpu_usage": [(cpu[0] * 0.55).round(), cpu[0] - (cpu[0] * 0.55).round()],
                    "usage_in_kernelmode": cpu[2],
                    "usage_in_usermode": cpu[1]
                },
                "system_cpu_usage": system,
                "online_cpus": 2,
                "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
            }),
            Platform::Ec2Bridge | Platform::ManagedInstances => json!({
                "cpu_usage": {"total_usage": cpu[0], "usage_in_kernelmode": cpu[2], "usage_in_usermode": cpu[1]},
                "system_cpu_usage": system,
                "online_cpus": 2
            }),
        }
    };
    let mut m = Map::new();
    m.insert("read".into(), json!(format_rfc3339(read)));
    m.insert(
        "preread".into(),
        json!(format_rfc3339(if k == 0 { 0.0 } else { read - period })),
    );
    let pids = if c.container_port == Some(3000) {
        14
    } else {
        4
    };
    let limit_bytes = c.memory_limit_mib.map(|m| f64::from(m) * MIB);
    let [read_bytes, write_bytes] = counters.block_bytes;
    match task.platform {
        Platform::Fargate => {
            m.insert("pids_stats".into(), json!({}));
            let mut entries = Vec::new();
            for (minor, share) in [(1, 0.3), (0, 0.7)] {
                let (r, w) = (
                    (read_bytes * share / PAGE).round() * PAGE,
                    (write_bytes * share / PAGE).round() * PAGE,
                );
                for (op, value) in [
                    ("Read", r),
                    ("Write", w),
                    ("Sync", r),
                    ("Async", w),
                    ("Discard", 0.0),
                    ("Total", r + w),
                ] {
                    entries.push(json!({"major": 259, "minor": minor, "op": op, "value": value}));
                }
            }
            m.insert(
                "blkio_stats".into(),
                json!({"io_service_bytes_recursive": entries, "io_serviced_recursive": [], "io_queue_recursive": [],
                       "io_service_time_recursive": [], "io_wait_time_recursive": [], "io_merged_recursive": [],
                       "io_time_recursive": [], "sectors_recursive": []}),
            );
        }
        Platform::Ec2Bridge | Platform::ManagedInstances => {
            m.insert("pids_stats".into(), json!({"current": pids, "limit": 4096}));
            m.insert(
                "blkio_stats".into(),
                json!({"io_service_bytes_recursive": [
                    {"major": 259, "minor": 0, "op": "read", "value": read_bytes},
                    {"major": 259, "minor": 0, "op": "write", "value": write_bytes}
                ], "io_serviced_recursive": null, "io_queue_recursive": null}),
            );
        }
    }
    m.insert("num_procs".into(), json!(0));
    m.insert("storage_stats".into(), json!({}));
    m.insert("cpu_stats".into(), cpu_stats(counters.cpu_ns, k));
    m.insert(
        "precpu_stats".into(),
        if k == 0 {
            json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {}})
        } else {
            cpu_stats(counters.previous_cpu_ns, k - 1)
        },
    );
    let memory_stats = match task.platform {
        Platform::Fargate => json!({
            "usage": memory.usage,
            "max_usage": counters.max_memory_bytes.max(memory.usage),
            "stats": {
                "active_anon": 0, "active_file": memory.file - memory.inactive_file, "cache": memory.file,
                "dirty": 0, "hierarchical_memory_limit": 512.0 * MIB,
                "hierarchical_memsw_limit": CGROUP_V1_UNLIMITED, "inactive_anon": memory.anon,
                "inactive_file": memory.inactive_file, "mapped_file": (memory.file * 0.4 / PAGE).round() * PAGE,
                "rss": memory.anon, "rss_huge": 0, "total_active_anon": 0,
                "total_active_file": memory.file - memory.inactive_file, "total_cache": memory.file,
                "total_inactive_anon": memory.anon, "total_inactive_file": memory.inactive_file,
                "total_rss": memory.anon, "unevictable": 0, "writeback": 0
            },
            "limit": CGROUP_V1_UNLIMITED
        }),
        Platform::Ec2Bridge => json!({
            "usage": memory.usage,
            "stats": {
                "active_anon": (memory.anon * 0.3 / PAGE).round() * PAGE, "active_file": memory.file - memory.inactive_file,
                "anon": memory.anon, "file": memory.file, "inactive_anon": memory.anon - (memory.anon * 0.3 / PAGE).round() * PAGE,
                "inactive_file": memory.inactive_file, "kernel_stack": 393_216, "shmem": 0, "slab": 929_280
            },
            "limit": limit_bytes.unwrap_or(u64::MAX as f64)
        }),
        Platform::ManagedInstances => json!({
            "usage": memory.usage,
            "stats": {"active_anon": 16_384, "active_file": memory.file - memory.inactive_file, "anon": memory.anon,
                      "file": memory.file, "inactive_file": memory.inactive_file},
            "limit": u64::MAX
        }),
    };
    m.insert("memory_stats".into(), memory_stats);
    m.insert(
        "name".into(),
        json!(match task.platform {
            Platform::Ec2Bridge =>
                format!("/ecs-{}-3-{}-{}", task.family, c.name, &c.docker_id[..20]),
            Platform::Fargate | Platform::ManagedInstances => c.name.clone(),
        }),
    );
    m.insert("id".into(), json!(c.docker_id));
    let (interface, [rx, tx], [rx_packets, tx_packets]) = match task.platform {
        // awsvpc: every container sees the task ENI, whose traffic is the whole task's.
        Platform::Fargate => (
            "eth1",
            [task.eni[0], task.eni[1]],
            [task.eni[2], task.eni[3]],
        ),
        Platform::Ec2Bridge => ("eth0", counters.network_bytes, counters.network_packets),
        Platform::ManagedInstances => ("eth0", counters.network_bytes, counters.network_packets),
    };
    m.insert(
        "networks".into(),
        json!({interface: {"rx_bytes": rx, "rx_packets": rx_packets, "rx_errors": 0, "rx_dropped": 0,
                           "tx_bytes": tx, "tx_packets": tx_packets, "tx_errors": 0, "tx_dropped": 0}}),
    );
    let rate = |total: f64| {
        if k == 0 {
            0.0
        } else {
            total / (k as f64 * period)
        }
    };
    m.insert(
        "network_rate_stats".into(),
        json!({"rx_bytes_per_sec": rate(rx), "tx_bytes_per_sec": rate(tx)}),
    );
    let mut stats = Value::Object(m);
    write_whole_numbers_as_integers(&mut stats);
    stats
}

/// Docker writes counters and byte counts as integers; the figures here are computed as
/// `f64`, so every whole number is turned back into an integer (rates stay fractional).
fn write_whole_numbers_as_integers(value: &mut Value) {
    match value {
        Value::Number(number) => {
            if let Some(float) = number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9.0e15)
                && number.is_f64()
            {
                *value = json!(float as u64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(write_whole_numbers_as_integers),
        Value::Object(map) => map.values_mut().for_each(write_whole_numbers_as_integers),
        _ => {}
    }
}

/// `/task/stats`: every container's stats by Docker ID.
pub fn task_stats(sim: &Simulation, task: &SimulatedTask, now: f64) -> Value {
    Value::Object(
        task.containers
            .iter()
            .map(|c| (c.docker_id.clone(), container_stats(sim, task, c, now)))
            .collect(),
    )
}

/// The Managed Instances tasks: the host that `/tasks` and `/tasks/stats` describe.
fn instance_tasks(sim: &Simulation) -> impl Iterator<Item = &SimulatedTask> {
    sim.tasks
        .iter()
        .filter(|task| task.platform == Platform::ManagedInstances)
}

/// `/tasks`: an array of every task on the Managed Instances host.
pub fn instance_metadata(sim: &Simulation) -> Value {
    Value::Array(
        instance_tasks(sim)
            .map(|task| task_metadata(sim, task, false))
            .collect(),
    )
}

/// `/tasks/stats`: an array of per-task stats maps.
pub fn instance_stats(sim: &Simulation, now: f64) -> Value {
    Value::Array(
        instance_tasks(sim)
            .map(|task| task_stats(sim, task, now))
            .collect(),
    )
}

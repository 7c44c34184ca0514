//! `ecs-prom simulate`: a local ECS Task Metadata Endpoint v4 serving simulated tasks.
//!
//! [`Simulation`] holds the tasks and computes every number as a function of the seed and the
//! sample period, so two simulations with the same seed agree exactly; [`documents`] writes
//! them in the JSON shapes the real endpoint uses, and [`server`] serves them over HTTP with
//! optional faults.

pub mod documents;
mod random;
pub mod server;

pub use server::{Faults, metadata_uri, now, run};

/// The kinds of task the simulator can play, each with the shapes its platform produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Fargate, `awsvpc` networking, cgroup v1 stats sampled every 10 s; a stopped container's
    /// stats are `null`.
    Fargate,
    /// EC2 in `bridge` mode with dynamic host ports, cgroup v2 stats sampled every second; a
    /// stopped container's stats are `{}`.
    Ec2Bridge,
    /// ECS Managed Instances: cgroup v2, no `Networks` in the metadata, sampled every 10 s;
    /// the host serves `/tasks` and `/tasks/stats`.
    ManagedInstances,
}

impl Platform {
    /// Seconds between two samples of the agent (`read - preread`).
    pub fn sample_period(self) -> f64 {
        match self {
            Platform::Ec2Bridge => 1.0,
            Platform::Fargate | Platform::ManagedInstances => 10.0,
        }
    }

    /// The `LaunchType` the endpoint reports.
    pub fn launch_type(self) -> &'static str {
        match self {
            Platform::Fargate => "FARGATE",
            Platform::Ec2Bridge => "EC2",
            Platform::ManagedInstances => "MANAGED_INSTANCES",
        }
    }
}

/// Whether a container runs or has exited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ContainerState {
    /// Running.
    Running,
    /// Exited with this code at this time (seconds since the Unix epoch).
    Exited {
        /// The exit code.
        code: i32,
        /// When it exited.
        at: f64,
    },
}

/// One simulated container and how busy it is at load level 1.
#[derive(Debug, Clone)]
pub struct SimulatedContainer {
    /// `Name` in the task definition.
    pub name: String,
    /// `DockerId`, in the platform's format.
    pub docker_id: String,
    /// `Image`.
    pub image: String,
    /// Port the container listens on, if any.
    pub container_port: Option<u16>,
    /// Dynamic host port (bridge mode).
    pub host_port: Option<u16>,
    /// Docker labels of the task definition (`Labels` adds the `com.amazonaws.ecs.*` ones).
    pub docker_labels: std::collections::BTreeMap<String, String>,
    /// Its address on the Docker bridge (bridge mode); `None`: `172.17.0.<n>`. The demo puts
    /// its apps on loopback this way.
    pub bridge_address: Option<String>,
    /// Container-level CPU units (the agent reports 2 when unset).
    pub cpu_units: u32,
    /// Container-level memory limit in MiB, if set.
    pub memory_limit_mib: Option<u32>,
    /// vCPUs used at load level 1.
    pub cpu_vcpus: f64,
    /// Working set in bytes around which memory moves.
    pub working_set_bytes: f64,
    /// Whether the task still runs when this container exits.
    pub essential: bool,
    /// Running or exited.
    pub state: ContainerState,
    /// `RestartCount`.
    pub restart_count: u32,
    /// `StartedAt`, seconds since the Unix epoch.
    pub started_at: f64,
    /// The sample period from which the cgroup counters count (a restart starts new ones).
    pub counters_from: u64,
    /// Cumulative counters, advanced one sample period at a time.
    pub counters: Counters,
}

/// A container's cumulative cgroup and network counters as of one sample period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// The sample period these values belong to.
    pub period: u64,
    /// CPU time in nanoseconds: total, user mode, kernel mode.
    pub cpu_ns: [f64; 3],
    /// The same one period earlier (Docker's `precpu_stats`).
    pub previous_cpu_ns: [f64; 3],
    /// Network bytes received and transmitted.
    pub network_bytes: [f64; 2],
    /// Network packets received and transmitted.
    pub network_packets: [f64; 2],
    /// Block device bytes read and written.
    pub block_bytes: [f64; 2],
    /// Highest memory usage seen (cgroup v1 `max_usage`).
    pub max_memory_bytes: f64,
}

/// One simulated task.
#[derive(Debug, Clone)]
pub struct SimulatedTask {
    /// The 32-hex task id (the last part of the ARN, and of the base URL).
    pub id: String,
    /// Where the task runs.
    pub platform: Platform,
    /// Task definition family.
    pub family: String,
    /// The task's private IPv4 address (awsvpc) or the host's (bridge).
    pub ip: String,
    /// How busy the task is: 1 is normal, 0 idle.
    pub load: f64,
    /// Containers, in task-definition order.
    pub containers: Vec<SimulatedContainer>,
    /// The task ENI's counters (awsvpc): every container's traffic, which a container restart
    /// does not reset. Bytes received and transmitted, packets received and transmitted.
    pub eni: [f64; 4],
}

/// AWS region, account and cluster the simulated tasks claim.
pub const REGION: &str = "us-east-1";
/// The simulated account id.
pub const ACCOUNT: &str = "111122223333";
/// The simulated cluster.
pub const CLUSTER: &str = "ecs-prom-demo";

impl SimulatedTask {
    /// The task ARN.
    pub fn arn(&self) -> String {
        format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/{}", self.id)
    }
}

/// A set of simulated tasks and the instant the simulation started.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// The seed every number derives from.
    pub seed: u64,
    /// When the simulation started, seconds since the Unix epoch.
    pub started: f64,
    /// The tasks.
    pub tasks: Vec<SimulatedTask>,
}

impl Simulation {
    /// `count` tasks cycling through Fargate, EC2 bridge and Managed Instances, started at
    /// `started` (seconds since the Unix epoch), every figure derived from `seed`.
    pub fn new(seed: u64, count: usize, started: f64) -> Simulation {
        let tasks = (0..count)
            .map(|index| new_task(seed, index, started))
            .collect();
        Simulation {
            seed,
            started,
            tasks,
        }
    }

    /// The index of the agent's most recent sample of `task` at `now`.
    pub fn period_at(&self, task: &SimulatedTask, now: f64) -> u64 {
        ((now - self.started).max(0.0) / task.platform.sample_period()) as u64
    }

    /// Brings every container's counters up to the sample period current at `now`. Values
    /// depend only on the seed, the period and the load level, never on when this is called.
    pub fn advance_to(&mut self, now: f64) {
        let (seed, started) = (self.seed, self.started);
        for (task_index, task) in self.tasks.iter_mut().enumerate() {
            let period = task.platform.sample_period();
            let target = ((now - started).max(0.0) / period) as u64;
            let (load, eni) = (task.load, &mut task.eni);
            for (container_index, c) in task.containers.iter_mut().enumerate() {
                let stream = (task_index * 16 + container_index) as u64;
                if c.counters.max_memory_bytes == 0.0 {
                    c.counters.max_memory_bytes =
                        documents::memory_at(seed, stream, c, c.counters.period).usage;
                }
                while c.counters.period < target {
                    let running = c.state == ContainerState::Running;
                    let (bytes, packets) = (c.counters.network_bytes, c.counters.network_packets);
                    step(
                        seed,
                        stream,
                        period,
                        load,
                        c.cpu_vcpus,
                        running,
                        &mut c.counters,
                    );
                    eni[0] += c.counters.network_bytes[0] - bytes[0];
                    eni[1] += c.counters.network_bytes[1] - bytes[1];
                    eni[2] += c.counters.network_packets[0] - packets[0];
                    eni[3] += c.counters.network_packets[1] - packets[1];
                    let usage = documents::memory_at(seed, stream, c, c.counters.period).usage;
                    c.counters.max_memory_bytes = c.counters.max_memory_bytes.max(usage);
                }
            }
        }
    }

    /// Finds a task by id.
    pub fn task(&self, id: &str) -> Option<&SimulatedTask> {
        self.tasks.iter().find(|task| task.id == id)
    }

    /// Restarts a container at `now`, as a restart policy would: `RestartCount` goes up,
    /// `StartedAt` moves, and its cgroup counters start again from zero.
    pub fn restart(&mut self, task_id: &str, container: &str, now: f64) -> bool {
        let started = self.started;
        self.with_container(task_id, container, |task, c| {
            c.state = ContainerState::Running;
            c.restart_count += 1;
            c.started_at = now;
            c.counters_from = ((now - started).max(0.0) / task.sample_period()) as u64;
            c.counters = Counters {
                period: c.counters_from,
                ..Counters::default()
            };
        })
    }

    /// Makes a container exit with `code` at `now`.
    pub fn exit(&mut self, task_id: &str, container: &str, code: i32, now: f64) -> bool {
        self.with_container(task_id, container, |_, c| {
            c.state = ContainerState::Exited { code, at: now };
        })
    }

    /// Sets a task's load level (0 idle, 1 normal, more is busier).
    pub fn set_load(&mut self, task_id: &str, load: f64) -> bool {
        match self.tasks.iter_mut().find(|task| task.id == task_id) {
            Some(task) => {
                task.load = load.max(0.0);
                true
            }
            None => false,
        }
    }

    fn with_container(
        &mut self,
        task_id: &str,
        container: &str,
        change: impl FnOnce(Platform, &mut SimulatedContainer),
    ) -> bool {
        let Some(task) = self.tasks.iter_mut().find(|task| task.id == task_id) else {
            return false;
        };
        let platform = task.platform;
        match task.containers.iter_mut().find(|c| c.name == container) {
            Some(c) => {
                change(platform, c);
                true
            }
            None => false,
        }
    }
}

/// Advances counters by one sample period of `seconds` at the given load.
fn step(
    seed: u64,
    stream: u64,
    seconds: f64,
    load: f64,
    vcpus: f64,
    running: bool,
    c: &mut Counters,
) {
    let j = c.period;
    c.previous_cpu_ns = c.cpu_ns;
    c.period += 1;
    if !running {
        return;
    }
    let noise = |n: u64| random::unit(seed, stream, n, j);
    let cpu = (vcpus * load * (0.6 + 0.8 * noise(1)) * seconds * 1e9).round();
    c.cpu_ns[0] += cpu;
    c.cpu_ns[1] += (cpu * 0.75).round();
    c.cpu_ns[2] += cpu - (cpu * 0.75).round();
    // Busier containers move more bytes; the exporter sidecar moves little.
    let traffic = vcpus * 150_000.0 * load;
    let received = (traffic * (0.5 + noise(2)) * seconds).round();
    let sent = (traffic * 1.6 * (0.5 + noise(3)) * seconds).round();
    c.network_bytes[0] += received;
    c.network_bytes[1] += sent;
    c.network_packets[0] += (received / 900.0).ceil();
    c.network_packets[1] += (sent / 1200.0).ceil();
    c.block_bytes[0] += 4096.0 * (noise(4) * 4.0 * load).floor();
    c.block_bytes[1] += 4096.0 * (noise(5) * 8.0 * load).floor();
}

fn new_task(seed: u64, index: usize, started: f64) -> SimulatedTask {
    let platform = [
        Platform::Fargate,
        Platform::Ec2Bridge,
        Platform::ManagedInstances,
    ][index % 3];
    let hex = |stream: u64, len: usize| random::hex(seed, index as u64, stream, len);
    let id = hex(0, 32);
    let docker_id = |n: u64| match platform {
        Platform::Ec2Bridge => hex(10 + n, 64),
        Platform::Fargate | Platform::ManagedInstances => {
            format!(
                "{id}-{}",
                1_000_000_000 + random::below(seed, index as u64, 20 + n, 3_000_000_000)
            )
        }
    };
    let host_port =
        |n: u16| (platform == Platform::Ec2Bridge).then_some(32768 + (index as u16) * 4 + n);
    let (cpu_units, memory_limit_mib) = match platform {
        Platform::Ec2Bridge => (128, Some(256)),
        Platform::Fargate | Platform::ManagedInstances => (2, None),
    };
    let container =
        |n: u64, name: &str, image: &str, port: Option<u16>, cpu: f64, memory_mib: f64| {
            SimulatedContainer {
                name: name.to_owned(),
                docker_id: docker_id(n),
                image: image.to_owned(),
                container_port: port,
                host_port: port.and_then(|_| host_port(n as u16)),
                docker_labels: std::collections::BTreeMap::new(),
                bridge_address: None,
                cpu_units,
                memory_limit_mib,
                cpu_vcpus: cpu,
                working_set_bytes: memory_mib * 1024.0 * 1024.0,
                essential: true,
                state: ContainerState::Running,
                restart_count: 0,
                started_at: started + 1.0,
                counters_from: 0,
                counters: Counters::default(),
            }
        };
    let mut app = container(0, "app", "ecs-prom:demo-app", Some(3000), 0.12, 48.0);
    // How the demo app's task definition asks to be scraped (docs/discovery.md).
    app.docker_labels = [
        ("PROMETHEUS_EXPORTER_PORT", "3000"),
        ("PROMETHEUS_EXPORTER_JOB_NAME", "demo-app"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    let mut containers = vec![
        app,
        container(
            1,
            "ecs-prom-exporter",
            "ecs-prom:latest",
            Some(9779),
            0.004,
            3.5,
        ),
    ];
    if platform != Platform::ManagedInstances {
        let mut init = container(
            2,
            "init",
            "public.ecr.aws/docker/library/alpine:3",
            None,
            0.0,
            1.0,
        );
        init.essential = false;
        init.state = ContainerState::Exited {
            code: 0,
            at: started + 2.0,
        };
        containers.push(init);
    }
    let octet = |stream| 2 + random::below(seed, index as u64, stream, 250);
    SimulatedTask {
        id,
        platform,
        family: format!(
            "demo-{}",
            platform
                .launch_type()
                .to_ascii_lowercase()
                .replace('_', "-")
        ),
        ip: format!("10.0.{}.{}", octet(30), octet(31)),
        load: 1.0,
        containers,
        eni: [0.0; 4],
    }
}

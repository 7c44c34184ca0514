//! Every environment variable ecs-prom reads, declared once.

/// Set by the ECS agent in every container: the Task Metadata Endpoint v4 base URL.
pub const ECS_METADATA_URI_V4: &str = "ECS_CONTAINER_METADATA_URI_V4";
/// Set by older ECS agents: the Task Metadata Endpoint v3 base URL (v4 paths work on
/// agents that set both).
pub const ECS_METADATA_URI_V3: &str = "ECS_CONTAINER_METADATA_URI";

/// `--log.level`.
pub const LOG_LEVEL: &str = "ECS_PROM_LOG_LEVEL";
/// `--log.format`.
pub const LOG_FORMAT: &str = "ECS_PROM_LOG_FORMAT";
/// `exporter --web.listen-address`.
pub const EXPORTER_LISTEN_ADDRESS: &str = "ECS_PROM_WEB_LISTEN_ADDRESS";
/// `exporter --web.telemetry-path`.
pub const EXPORTER_TELEMETRY_PATH: &str = "ECS_PROM_WEB_TELEMETRY_PATH";
/// `exporter --web.disable-exporter-metrics`.
pub const EXPORTER_DISABLE_EXPORTER_METRICS: &str = "ECS_PROM_WEB_DISABLE_EXPORTER_METRICS";
/// `exporter --ecs.metadata-uri`.
pub const EXPORTER_METADATA_URI: &str = "ECS_PROM_ECS_METADATA_URI";
/// `exporter --ecs.scope`.
pub const EXPORTER_SCOPE: &str = "ECS_PROM_ECS_SCOPE";
/// `exporter --ecs.timeout`.
pub const EXPORTER_TIMEOUT: &str = "ECS_PROM_ECS_TIMEOUT";
/// `simulate --web.listen-address`.
pub const SIMULATE_LISTEN_ADDRESS: &str = "ECS_PROM_SIMULATE_LISTEN_ADDRESS";
/// `simulate --tasks`.
pub const SIMULATE_TASKS: &str = "ECS_PROM_SIMULATE_TASKS";
/// `simulate --seed`.
pub const SIMULATE_SEED: &str = "ECS_PROM_SIMULATE_SEED";
/// `simulate --fault.latency`.
pub const SIMULATE_FAULT_LATENCY: &str = "ECS_PROM_SIMULATE_FAULT_LATENCY";
/// `simulate --fault.error-rate`.
pub const SIMULATE_FAULT_ERROR_RATE: &str = "ECS_PROM_SIMULATE_FAULT_ERROR_RATE";
/// `simulate --fault.malformed-rate`.
pub const SIMULATE_FAULT_MALFORMED_RATE: &str = "ECS_PROM_SIMULATE_FAULT_MALFORMED_RATE";

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
/// `exporter --web.config.file`.
pub const EXPORTER_WEB_CONFIG_FILE: &str = "ECS_PROM_WEB_CONFIG_FILE";
/// `exporter --web.read-timeout`.
pub const EXPORTER_WEB_READ_TIMEOUT: &str = "ECS_PROM_WEB_READ_TIMEOUT";
/// `exporter --web.idle-timeout`.
pub const EXPORTER_WEB_IDLE_TIMEOUT: &str = "ECS_PROM_WEB_IDLE_TIMEOUT";
/// `exporter --web.max-connections`.
pub const EXPORTER_WEB_MAX_CONNECTIONS: &str = "ECS_PROM_WEB_MAX_CONNECTIONS";
/// `exporter --ecs.metadata-uri`.
pub const EXPORTER_METADATA_URI: &str = "ECS_PROM_ECS_METADATA_URI";
/// `exporter --ecs.scope`.
pub const EXPORTER_SCOPE: &str = "ECS_PROM_ECS_SCOPE";
/// `exporter --ecs.timeout`.
pub const EXPORTER_TIMEOUT: &str = "ECS_PROM_ECS_TIMEOUT";
/// `simulate --web.listen-address`.
pub const SIMULATE_LISTEN_ADDRESS: &str = "ECS_PROM_SIMULATE_LISTEN_ADDRESS";
/// `simulate --web.config.file`.
pub const SIMULATE_WEB_CONFIG_FILE: &str = "ECS_PROM_SIMULATE_WEB_CONFIG_FILE";
/// `simulate --web.read-timeout`.
pub const SIMULATE_WEB_READ_TIMEOUT: &str = "ECS_PROM_SIMULATE_WEB_READ_TIMEOUT";
/// `simulate --web.idle-timeout`.
pub const SIMULATE_WEB_IDLE_TIMEOUT: &str = "ECS_PROM_SIMULATE_WEB_IDLE_TIMEOUT";
/// `simulate --web.max-connections`.
pub const SIMULATE_WEB_MAX_CONNECTIONS: &str = "ECS_PROM_SIMULATE_WEB_MAX_CONNECTIONS";
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
/// `demo-app --web.listen-address`.
pub const DEMO_APP_LISTEN_ADDRESS: &str = "ECS_PROM_DEMO_APP_LISTEN_ADDRESS";
/// `demo-app --web.config.file`.
pub const DEMO_APP_WEB_CONFIG_FILE: &str = "ECS_PROM_DEMO_APP_WEB_CONFIG_FILE";
/// `demo-app --web.read-timeout`.
pub const DEMO_APP_WEB_READ_TIMEOUT: &str = "ECS_PROM_DEMO_APP_WEB_READ_TIMEOUT";
/// `demo-app --web.idle-timeout`.
pub const DEMO_APP_WEB_IDLE_TIMEOUT: &str = "ECS_PROM_DEMO_APP_WEB_IDLE_TIMEOUT";
/// `demo-app --web.max-connections`.
pub const DEMO_APP_WEB_MAX_CONNECTIONS: &str = "ECS_PROM_DEMO_APP_WEB_MAX_CONNECTIONS";
/// `demo-app --work.latency-median`.
pub const DEMO_APP_WORK_MEDIAN: &str = "ECS_PROM_DEMO_APP_WORK_LATENCY_MEDIAN";
/// `demo-app --work.latency-p99`.
pub const DEMO_APP_WORK_P99: &str = "ECS_PROM_DEMO_APP_WORK_LATENCY_P99";
/// `demo-app --external.url`.
pub const DEMO_APP_EXTERNAL_URL: &str = "ECS_PROM_DEMO_APP_EXTERNAL_URL";
/// `demo-app --external.timeout`.
pub const DEMO_APP_EXTERNAL_TIMEOUT: &str = "ECS_PROM_DEMO_APP_EXTERNAL_TIMEOUT";
/// `demo-app --load.rps`.
pub const DEMO_APP_LOAD_RPS: &str = "ECS_PROM_DEMO_APP_LOAD_RPS";
/// `demo-app --load.concurrency`.
pub const DEMO_APP_LOAD_CONCURRENCY: &str = "ECS_PROM_DEMO_APP_LOAD_CONCURRENCY";
/// `demo-app --instrumentation.disable`.
pub const DEMO_APP_DISABLE_INSTRUMENTATION: &str = "ECS_PROM_DEMO_APP_DISABLE_INSTRUMENTATION";
/// `demo --tasks`.
pub const DEMO_TASKS: &str = "ECS_PROM_DEMO_TASKS";
/// `demo --seed`.
pub const DEMO_SEED: &str = "ECS_PROM_DEMO_SEED";
/// `demo --duration`.
pub const DEMO_DURATION: &str = "ECS_PROM_DEMO_DURATION";
/// `demo --load.rps`.
pub const DEMO_LOAD_RPS: &str = "ECS_PROM_DEMO_LOAD_RPS";
/// `demo --summary.interval`.
pub const DEMO_SUMMARY_INTERVAL: &str = "ECS_PROM_DEMO_SUMMARY_INTERVAL";
/// `demo --summary.format`.
pub const DEMO_SUMMARY_FORMAT: &str = "ECS_PROM_DEMO_SUMMARY_FORMAT";
/// `demo --prometheus`.
pub const DEMO_PROMETHEUS: &str = "ECS_PROM_DEMO_PROMETHEUS";
/// `demo --prometheus.listen-address`.
pub const DEMO_PROMETHEUS_LISTEN_ADDRESS: &str = "ECS_PROM_DEMO_PROMETHEUS_LISTEN_ADDRESS";
/// `demo --prometheus.binary`.
pub const DEMO_PROMETHEUS_BINARY: &str = "ECS_PROM_DEMO_PROMETHEUS_BINARY";
/// `demo --prometheus.scrape-interval`.
pub const DEMO_PROMETHEUS_SCRAPE_INTERVAL: &str = "ECS_PROM_DEMO_PROMETHEUS_SCRAPE_INTERVAL";
/// `demo --discovery`.
pub const DEMO_DISCOVERY: &str = "ECS_PROM_DEMO_DISCOVERY";
/// `demo --agent`.
pub const DEMO_AGENT: &str = "ECS_PROM_DEMO_AGENT";
/// `demo --discovery.moto-binary`.
pub const DEMO_DISCOVERY_MOTO_BINARY: &str = "ECS_PROM_DEMO_DISCOVERY_MOTO_BINARY";
/// `demo --discovery.refresh-interval`.
pub const DEMO_DISCOVERY_REFRESH_INTERVAL: &str = "ECS_PROM_DEMO_DISCOVERY_REFRESH_INTERVAL";
/// `discovery --web.listen-address`.
pub const DISCOVERY_LISTEN_ADDRESS: &str = "ECS_PROM_DISCOVERY_LISTEN_ADDRESS";
/// `discovery --web.config.file`.
pub const DISCOVERY_WEB_CONFIG_FILE: &str = "ECS_PROM_DISCOVERY_WEB_CONFIG_FILE";
/// `discovery --web.read-timeout`.
pub const DISCOVERY_WEB_READ_TIMEOUT: &str = "ECS_PROM_DISCOVERY_WEB_READ_TIMEOUT";
/// `discovery --web.idle-timeout`.
pub const DISCOVERY_WEB_IDLE_TIMEOUT: &str = "ECS_PROM_DISCOVERY_WEB_IDLE_TIMEOUT";
/// `discovery --web.max-connections`.
pub const DISCOVERY_WEB_MAX_CONNECTIONS: &str = "ECS_PROM_DISCOVERY_WEB_MAX_CONNECTIONS";
/// `discovery --cloudmap.namespace` (comma-separated).
pub const DISCOVERY_NAMESPACES: &str = "ECS_PROM_DISCOVERY_NAMESPACES";
/// `discovery --cloudmap.namespaces-parameter`.
pub const DISCOVERY_NAMESPACES_PARAMETER: &str = "ECS_PROM_DISCOVERY_NAMESPACES_PARAMETER";
/// `discovery --ecs.cluster` (comma-separated).
pub const DISCOVERY_CLUSTERS: &str = "ECS_PROM_DISCOVERY_CLUSTERS";
/// `discovery --ecs.container-instance-ttl`.
pub const DISCOVERY_CONTAINER_INSTANCE_TTL: &str = "ECS_PROM_DISCOVERY_CONTAINER_INSTANCE_TTL";
/// `discovery --ecs.requests-per-second`.
pub const DISCOVERY_ECS_RATE: &str = "ECS_PROM_DISCOVERY_ECS_REQUESTS_PER_SECOND";
/// `discovery --output.file`.
pub const DISCOVERY_OUTPUT_FILE: &str = "ECS_PROM_DISCOVERY_OUTPUT_FILE";
/// `discovery --refresh.interval`.
pub const DISCOVERY_REFRESH_INTERVAL: &str = "ECS_PROM_DISCOVERY_REFRESH_INTERVAL";
/// `ecs-prom discovery --refresh.timeout`.
pub const DISCOVERY_REFRESH_TIMEOUT: &str = "ECS_PROM_DISCOVERY_REFRESH_TIMEOUT";
/// `ecs-prom discovery --state.file`.
pub const DISCOVERY_STATE_FILE: &str = "ECS_PROM_DISCOVERY_STATE_FILE";
/// `ecs-prom discovery --prometheus.config-file-mode`.
pub const DISCOVERY_CONFIG_FILE_MODE: &str = "ECS_PROM_DISCOVERY_PROMETHEUS_CONFIG_FILE_MODE";
/// `discovery --prometheus.config-parameter`.
pub const DISCOVERY_CONFIG_PARAMETER: &str = "ECS_PROM_DISCOVERY_PROMETHEUS_CONFIG_PARAMETER";
/// `discovery --prometheus.config-file`.
pub const DISCOVERY_CONFIG_FILE: &str = "ECS_PROM_DISCOVERY_PROMETHEUS_CONFIG_FILE";
/// `discovery --prometheus.url`.
pub const DISCOVERY_PROMETHEUS_URL: &str = "ECS_PROM_DISCOVERY_PROMETHEUS_URL";
/// `discovery --aws.region`.
pub const DISCOVERY_REGION: &str = "ECS_PROM_DISCOVERY_AWS_REGION";
/// `discovery --aws.timeout`.
pub const DISCOVERY_AWS_TIMEOUT: &str = "ECS_PROM_DISCOVERY_AWS_TIMEOUT";
/// `discovery --aws.role-arn`.
pub const DISCOVERY_AWS_ROLE_ARN: &str = "ECS_PROM_DISCOVERY_AWS_ROLE_ARN";
/// `discovery --aws.external-id`.
pub const DISCOVERY_AWS_EXTERNAL_ID: &str = "ECS_PROM_DISCOVERY_AWS_EXTERNAL_ID";
/// `discovery --aws.role-session-name`.
pub const DISCOVERY_AWS_ROLE_SESSION_NAME: &str = "ECS_PROM_DISCOVERY_AWS_ROLE_SESSION_NAME";
/// `agent --config.file`.
pub const AGENT_CONFIG_FILE: &str = "ECS_PROM_AGENT_CONFIG_FILE";
/// `agent --storage.path`.
pub const AGENT_STORAGE_PATH: &str = "ECS_PROM_AGENT_STORAGE_PATH";
/// `agent --storage.max-bytes`.
pub const AGENT_STORAGE_MAX_BYTES: &str = "ECS_PROM_AGENT_STORAGE_MAX_BYTES";
/// `agent --storage.fsync`.
pub const AGENT_STORAGE_FSYNC: &str = "ECS_PROM_AGENT_STORAGE_FSYNC";
/// `agent --scrape.openmetrics-strict`.
pub const AGENT_OPENMETRICS_STRICT: &str = "ECS_PROM_AGENT_SCRAPE_OPENMETRICS_STRICT";
/// `agent --web.listen-address`.
pub const AGENT_LISTEN_ADDRESS: &str = "ECS_PROM_AGENT_LISTEN_ADDRESS";
/// `agent --ecs.task`.
pub const AGENT_ECS_TASK: &str = "ECS_PROM_AGENT_ECS_TASK";
/// `agent --ecs.scope`.
pub const AGENT_ECS_SCOPE: &str = "ECS_PROM_AGENT_ECS_SCOPE";
/// `agent --ecs.metadata-url`.
pub const AGENT_ECS_METADATA_URL: &str = "ECS_PROM_AGENT_ECS_METADATA_URL";
/// `agent --ecs.task-metrics`.
pub const AGENT_ECS_TASK_METRICS: &str = "ECS_PROM_AGENT_ECS_TASK_METRICS";
/// `agent --ecs.refresh-interval`.
pub const AGENT_ECS_REFRESH_INTERVAL: &str = "ECS_PROM_AGENT_ECS_REFRESH_INTERVAL";
/// `agent --scrape.interval`.
pub const AGENT_SCRAPE_INTERVAL: &str = "ECS_PROM_AGENT_SCRAPE_INTERVAL";
/// `agent --scrape.timeout`.
pub const AGENT_SCRAPE_TIMEOUT: &str = "ECS_PROM_AGENT_SCRAPE_TIMEOUT";
/// `agent --remote-write.url`.
pub const AGENT_REMOTE_WRITE_URL: &str = "ECS_PROM_AGENT_REMOTE_WRITE_URL";
/// `agent --remote-write.region`.
pub const AGENT_REMOTE_WRITE_REGION: &str = "ECS_PROM_AGENT_REMOTE_WRITE_REGION";
/// `agent --remote-write.role-arn`.
pub const AGENT_REMOTE_WRITE_ROLE_ARN: &str = "ECS_PROM_AGENT_REMOTE_WRITE_ROLE_ARN";
/// `agent --web.config.file`.
pub const AGENT_WEB_CONFIG_FILE: &str = "ECS_PROM_AGENT_WEB_CONFIG_FILE";
/// `agent --web.read-timeout`.
pub const AGENT_WEB_READ_TIMEOUT: &str = "ECS_PROM_AGENT_WEB_READ_TIMEOUT";
/// `agent --web.idle-timeout`.
pub const AGENT_WEB_IDLE_TIMEOUT: &str = "ECS_PROM_AGENT_WEB_IDLE_TIMEOUT";
/// `agent --web.max-connections`.
pub const AGENT_WEB_MAX_CONNECTIONS: &str = "ECS_PROM_AGENT_WEB_MAX_CONNECTIONS";
/// `health --url`.
pub const HEALTH_URL: &str = "ECS_PROM_HEALTH_URL";
/// `health --timeout`.
pub const HEALTH_TIMEOUT: &str = "ECS_PROM_HEALTH_TIMEOUT";

/// The seed sidecar's variables, accepted so its task definitions run unchanged.
pub mod seed {
    /// `FILE_BASED` (write `ecs-services.json`) or `HTTP_BASED` (serve http_sd only).
    pub const SERVICE_DISCOVERY_MODE: &str = "SERVICE_DISCOVERY_MODE";
    /// Directory of `ecs-services.json` and `prometheus.yaml` (default `/etc/config/`).
    pub const CONFIG_FILE_DIR: &str = "CONFIG_FILE_DIR";
    /// Seconds between refreshes.
    pub const CONFIG_RELOAD_FREQUENCY: &str = "CONFIG_RELOAD_FREQUENCY";
    /// SSM parameter with Prometheus' configuration (default `ECS-Prometheus-Configuration`).
    pub const PROMETHEUS_CONFIG_PARAMETER_NAME: &str = "PROMETHEUS_CONFIG_PARAMETER_NAME";
    /// SSM parameter with the namespace names (default `ECS-ServiceDiscovery-Namespaces`).
    pub const DISCOVERY_NAMESPACES_PARAMETER_NAME: &str = "DISCOVERY_NAMESPACES_PARAMETER_NAME";
}

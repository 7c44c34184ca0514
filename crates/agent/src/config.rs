//! The finished agent configuration: every default applied, every check Prometheus makes at
//! load made, file names resolved against the configuration file's directory.

use crate::ConfigError;
use crate::raw::{
    LabelMap, RawAuthorization, RawBasicAuth, RawConfig, RawGlobal, RawQueue, RawRemoteWrite,
    RawScrape, RawSigV4, RawTls,
};
use relabel::RelabelConfig;
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

/// The agent's whole configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// `global`.
    pub global: GlobalConfig,
    /// `scrape_configs`, in file order, job names unique.
    pub scrape_configs: Vec<ScrapeConfig>,
    /// `remote_write`, in file order.
    pub remote_write: Vec<RemoteWriteConfig>,
}

/// `global`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalConfig {
    /// `scrape_interval` (1m).
    pub scrape_interval: Duration,
    /// `scrape_timeout` (10s, or the interval when that is shorter).
    pub scrape_timeout: Duration,
    /// `external_labels`, names checked.
    pub external_labels: BTreeMap<String, String>,
}

/// `scheme` of a scrape configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// `http` (the default).
    Http,
    /// `https`.
    Https,
}

/// One `scrape_configs` entry.
#[derive(Debug, Clone)]
pub struct ScrapeConfig {
    /// `job_name`.
    pub job_name: String,
    /// `scrape_interval` (global's).
    pub scrape_interval: Duration,
    /// `scrape_timeout` (global's, or the interval when that is shorter); never above the
    /// interval.
    pub scrape_timeout: Duration,
    /// `metrics_path` (`/metrics`).
    pub metrics_path: String,
    /// `scheme` (http).
    pub scheme: Scheme,
    /// `params`: URL query parameters.
    pub params: BTreeMap<String, Vec<String>>,
    /// `honor_labels` (false).
    pub honor_labels: bool,
    /// `honor_timestamps` (true).
    pub honor_timestamps: bool,
    /// `static_configs`.
    pub static_configs: Vec<StaticConfig>,
    /// `file_sd_configs`.
    pub file_sd_configs: Vec<FileSdConfig>,
    /// `http_sd_configs`.
    pub http_sd_configs: Vec<HttpSdConfig>,
    /// `ecs_task_sd_configs`: the containers of the agent's own task (or instance).
    pub ecs_task_sd_configs: Vec<EcsTaskSdConfig>,
    /// `ecs_sd_configs`: ECS clusters through the ECS API.
    pub ecs_sd_configs: Vec<EcsSdConfig>,
    /// `cloudmap_sd_configs`: Cloud Map namespaces.
    pub cloudmap_sd_configs: Vec<CloudMapSdConfig>,
    /// `relabel_configs`.
    pub relabel_configs: Vec<RelabelConfig>,
    /// `metric_relabel_configs`.
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// `sample_limit` (0: no limit).
    pub sample_limit: u64,
    /// `label_limit` (0: no limit).
    pub label_limit: u64,
    /// `body_size_limit` in bytes (0: no limit, also when written negative).
    pub body_size_limit: u64,
    /// `basic_auth`, `authorization` and `tls_config`.
    pub http: HttpClientConfig,
}

/// One `static_configs` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticConfig {
    /// `targets`: `host:port` addresses.
    pub targets: Vec<String>,
    /// `labels`, names checked.
    pub labels: BTreeMap<String, String>,
}

/// One `file_sd_configs` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSdConfig {
    /// `files`: paths or patterns with a `*` in the last element, resolved against the
    /// configuration file's directory.
    pub files: Vec<PathBuf>,
    /// `refresh_interval` (5m).
    pub refresh_interval: Duration,
}

/// One `http_sd_configs` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSdConfig {
    /// `url`: http or https, with a host.
    pub url: String,
    /// `refresh_interval` (60s).
    pub refresh_interval: Duration,
}

/// One `ecs_task_sd_configs` entry: targets from the task metadata endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsTaskSdConfig {
    /// `scope`: `task` (the agent's own task, `/task`) or `instance` (every task on the
    /// host, `/tasks`).
    pub scope: EcsScope,
    /// `metadata_url`: the endpoint's base URL; `None`: `$ECS_CONTAINER_METADATA_URI_V4`.
    pub metadata_url: Option<String>,
    /// `refresh_interval` (10s): how soon containers that start, stop or restart are seen.
    pub refresh_interval: Duration,
    /// `task_metrics` (true): also a target for the task's ECS metrics, collected in-process.
    pub task_metrics: bool,
    /// `task_metrics_job` (`ecs-exporter`): the `job` of those metrics.
    pub task_metrics_job: String,
}

/// Whose containers `ecs_task_sd_configs` reads.
pub type EcsScope = ecs_exporter::Scope;

/// One `ecs_sd_configs` entry: the targets of ECS clusters, as `ecs-prom discovery` finds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsSdConfig {
    /// `region`; `None`: the environment's, else the task's.
    pub region: Option<String>,
    /// `clusters`: names or ARNs.
    pub clusters: Vec<String>,
    /// `refresh_interval` (60s).
    pub refresh_interval: Duration,
}

/// One `cloudmap_sd_configs` entry: the instances of Cloud Map namespaces, as
/// `ecs-prom discovery` finds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudMapSdConfig {
    /// `region`; `None`: the environment's, else the task's.
    pub region: Option<String>,
    /// `namespaces`: names.
    pub namespaces: Vec<String>,
    /// `refresh_interval` (60s).
    pub refresh_interval: Duration,
}

/// A secret given in the file or in a file of its own.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// Given inline (possibly empty).
    Value(String),
    /// Read from this file (resolved against the configuration file's directory).
    File(PathBuf),
}

impl std::fmt::Debug for Secret {
    // Never print a credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Value(_) => f.write_str("Secret(<redacted>)"),
            Secret::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// `basic_auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// `username`.
    pub username: String,
    /// `password` or `password_file` (an empty password when neither).
    pub password: Secret,
}

/// `authorization`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// `type` (`Bearer`).
    pub kind: String,
    /// `credentials` or `credentials_file` (empty when neither).
    pub credentials: Secret,
}

/// `tls_config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// `ca_file`: CA certificates to verify the server with instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// `cert_file`: client certificate (always with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// `key_file`: client key (always with `cert_file`).
    pub key_file: Option<PathBuf>,
    /// `server_name`: the name to verify instead of the URL's host.
    pub server_name: Option<String>,
    /// `insecure_skip_verify` (false).
    pub insecure_skip_verify: bool,
}

/// The HTTP client fields a scrape or remote-write configuration shares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpClientConfig {
    /// `basic_auth` (at most one of it and `authorization`).
    pub basic_auth: Option<BasicAuth>,
    /// `authorization`.
    pub authorization: Option<Authorization>,
    /// `tls_config`.
    pub tls_config: TlsConfig,
}

/// One `remote_write` entry.
#[derive(Debug, Clone)]
pub struct RemoteWriteConfig {
    /// `url`: http or https, with a host.
    pub url: String,
    /// `name` (empty when not given); unique among those given.
    pub name: String,
    /// `remote_timeout` (30s).
    pub remote_timeout: Duration,
    /// `headers`, none of those Prometheus reserves.
    pub headers: BTreeMap<String, String>,
    /// `write_relabel_configs`.
    pub write_relabel_configs: Vec<RelabelConfig>,
    /// `queue_config`.
    pub queue_config: QueueConfig,
    /// `sigv4` (exclusive with `basic_auth` and `authorization`).
    pub sigv4: Option<SigV4Config>,
    /// `basic_auth`, `authorization` and `tls_config`.
    pub http: HttpClientConfig,
}

/// `queue_config`, with Prometheus 2.42's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// `capacity` (2500).
    pub capacity: u64,
    /// `min_shards` (1).
    pub min_shards: u64,
    /// `max_shards` (200).
    pub max_shards: u64,
    /// `max_samples_per_send` (500).
    pub max_samples_per_send: u64,
    /// `batch_send_deadline` (5s).
    pub batch_send_deadline: Duration,
    /// `min_backoff` (30ms).
    pub min_backoff: Duration,
    /// `max_backoff` (5s).
    pub max_backoff: Duration,
    /// `retry_on_http_429` (true here; Prometheus 2.42's default is false). Amazon Managed
    /// Service for Prometheus answers 429 when it throttles, and dropping those samples would
    /// lose data a short wait delivers; retries still stop at the sample age limit.
    pub retry_on_http_429: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 2500,
            min_shards: 1,
            max_shards: 200,
            max_samples_per_send: 500,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: true,
        }
    }
}

/// `sigv4`: every field optional, as the credential chain fills in what is missing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SigV4Config {
    /// `region`.
    pub region: Option<String>,
    /// `access_key` (always with `secret_key`).
    pub access_key: Option<String>,
    /// `secret_key`.
    pub secret_key: Option<String>,
    /// `profile`.
    pub profile: Option<String>,
    /// `role_arn`.
    pub role_arn: Option<String>,
}

impl std::fmt::Debug for SigV4Config {
    // Never print the secret key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigV4Config")
            .field("region", &self.region)
            .field("access_key", &self.access_key)
            .field(
                "secret_key",
                &self.secret_key.as_ref().map(|_| "<redacted>"),
            )
            .field("profile", &self.profile)
            .field("role_arn", &self.role_arn)
            .finish()
    }
}

const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_FILE_SD_REFRESH: Duration = Duration::from_secs(300);
const DEFAULT_HTTP_SD_REFRESH: Duration = Duration::from_secs(60);
const DEFAULT_ECS_TASK_SD_REFRESH: Duration = Duration::from_secs(10);
const DEFAULT_AWS_SD_REFRESH: Duration = Duration::from_secs(60);
/// The `job` of the task's ECS metrics: the exporter sidecar's, so dashboards and alerts
/// written for it keep working.
pub const DEFAULT_TASK_METRICS_JOB: &str = "ecs-exporter";
const DEFAULT_REMOTE_TIMEOUT: Duration = Duration::from_secs(30);

/// Headers Prometheus does not let `remote_write.headers` set.
const RESERVED_HEADERS: [&str; 11] = [
    "host",
    "authorization",
    "content-encoding",
    "content-type",
    "x-prometheus-remote-write-version",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
];

/// What file_sd accepts as a file name: a `*` only in the last path element.
// A fixed pattern, compiled by the tests: it cannot fail at run time.
#[allow(clippy::expect_used)]
static FILE_SD_PATTERN: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$")
        .expect("a fixed pattern that compiles (tested)")
});

impl AgentConfig {
    /// Reads and checks the Prometheus configuration file at `path`; files it names are
    /// resolved against its directory.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        AgentConfig::parse(&text, path.parent().unwrap_or_else(|| Path::new(".")))
    }

    /// Checks `text` as a Prometheus configuration file whose relative file names resolve
    /// against `dir`.
    pub fn parse(text: &str, dir: &Path) -> Result<AgentConfig, ConfigError> {
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            let options = serde_saphyr::options! { with_snippet: false };
            serde_saphyr::from_str_with_options::<Option<RawConfig>>(text, options)
                .map_err(|source| parse_error(text, source))?
                .unwrap_or_default()
        };
        Finisher { dir }.finish(raw)
    }
}

/// Turns the YAML reader's error into one that names the field and its line.
fn parse_error(text: &str, source: serde_saphyr::Error) -> ConfigError {
    let location = source.location();
    let line = location.map_or(0, |l| l.line());
    let column = location.map_or(0, |l| l.column());
    // These errors point at a key, which is then the field; the others point at a value,
    // and a value that is a mapping starts at its first key, which is not the field.
    let at_key = matches!(
        source.without_snippet(),
        serde_saphyr::Error::SerdeUnknownField { .. }
            | serde_saphyr::Error::DuplicateMappingKey { .. }
    );
    let reason = source.without_snippet().to_string();
    // The reader's message ends with its own "at line L, column C"; the line is said once.
    let reason = match reason.rfind(" at line ") {
        Some(at) => reason[..at].to_owned(),
        None => reason,
    };
    ConfigError::Parse {
        field: yaml_path_at(text, line, if at_key { 0 } else { column }),
        line,
        reason,
        yaml_error: Box::new(source),
    }
}

/// The path of the key at `line` (1-based), found from the indentation of the lines up to
/// it: `scrape_configs[1].static_configs[0].labels`; with a `column`, of the node that starts
/// there instead (0: the key on that line). Flow collections (`[a, b]`, `{a: b}`)
/// are not entered; the path then ends at the key that holds them.
pub(crate) fn yaml_path_at(text: &str, line: u64, column: u64) -> String {
    enum Segment {
        Key(String),
        Item(usize),
    }
    let mut stack: Vec<(usize, Segment)> = Vec::new();
    for (number, content) in text.lines().enumerate() {
        let number = number as u64 + 1;
        if number > line {
            break;
        }
        let trimmed = content.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let mut indent = content.len() - trimmed.len();
        let mut rest = trimmed;
        while rest == "-" || rest.starts_with("- ") {
            let mut index = 0;
            while let Some((top, segment)) = stack.last() {
                if *top > indent {
                    stack.pop();
                } else if *top == indent {
                    if let Segment::Item(previous) = segment {
                        index = previous + 1;
                    }
                    stack.pop();
                } else {
                    break;
                }
            }
            stack.push((indent, Segment::Item(index)));
            let after = rest[1..].trim_start();
            indent += rest.len() - after.len();
            rest = after;
        }
        // On the error's own line, a key after the error's column is not the culprit.
        // On the error's own line, the error is at a node that starts at `column`: keys
        // from there on are not the culprit, nor are earlier siblings at that depth.
        if number == line && column > 0 && (indent as u64) >= column.saturating_sub(1) {
            let depth = column.saturating_sub(1) as usize;
            while stack.last().is_some_and(|(top, _)| *top >= depth) {
                stack.pop();
            }
            break;
        }
        let key = rest
            .split_once(": ")
            .map(|(key, _)| key)
            .or_else(|| rest.strip_suffix(':'));
        if let Some(key) = key.filter(|k| !k.starts_with(['{', '[', '"', '\''])) {
            while stack.last().is_some_and(|(top, _)| *top >= indent) {
                stack.pop();
            }
            stack.push((indent, Segment::Key(key.trim().to_owned())));
        }
    }
    let mut path = String::new();
    for (_, segment) in &stack {
        match segment {
            Segment::Key(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Segment::Item(index) => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

struct Finisher<'a> {
    dir: &'a Path,
}

/// The `ecs_task_sd_configs` of the job at `field`.
fn ecs_task_sd_configs(
    field: &str,
    raw: Option<Vec<Spanned<crate::raw::RawEcsTaskSd>>>,
) -> Result<Vec<EcsTaskSdConfig>, ConfigError> {
    let mut configs = Vec::new();
    for (i, sd) in raw.unwrap_or_default().into_iter().enumerate() {
        let here = format!("{field}.ecs_task_sd_configs[{i}]");
        let scope = match sd.value.scope {
            None => EcsScope::Task,
            Some(scope) => match scope.value.as_str() {
                "task" => EcsScope::Task,
                "instance" => EcsScope::Instance,
                other => {
                    return Err(invalid(
                        format!("{here}.scope"),
                        scope.referenced,
                        format!("unknown scope {other:?}: task or instance"),
                    ));
                }
            },
        };
        let metadata_url = match sd.value.metadata_url {
            Some(url) => Some(http_url(
                &format!("{here}.metadata_url"),
                url.referenced,
                Some(url),
                "URL is missing",
            )?),
            None => None,
        };
        let task_metrics_job = match sd.value.task_metrics_job {
            Some(job) if job.value.is_empty() => {
                return Err(invalid(
                    format!("{here}.task_metrics_job"),
                    job.referenced,
                    "the job name must not be empty",
                ));
            }
            Some(job) => job.value,
            None => DEFAULT_TASK_METRICS_JOB.to_owned(),
        };
        configs.push(EcsTaskSdConfig {
            scope,
            metadata_url,
            refresh_interval: sd
                .value
                .refresh_interval
                .map_or(DEFAULT_ECS_TASK_SD_REFRESH, |d| d.0),
            task_metrics: sd.value.task_metrics.unwrap_or(true),
            task_metrics_job,
        });
    }
    Ok(configs)
}

fn invalid(field: impl Into<String>, at: Location, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        line: at.line(),
        reason: reason.into(),
    }
}

/// Label values as Go reads them: a null value is the empty string.
fn labels(map: Option<LabelMap>) -> BTreeMap<String, String> {
    map.unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name.0, value.unwrap_or_default()))
        .collect()
}

/// A duration where 0 means "not set", as in Prometheus.
fn set(value: &Option<Spanned<crate::raw::PromDuration>>) -> Option<(Duration, Location)> {
    value
        .as_ref()
        .map(|d| (d.value.0, d.referenced))
        .filter(|(d, _)| !d.is_zero())
}

impl Finisher<'_> {
    fn finish(&self, raw: RawConfig) -> Result<AgentConfig, ConfigError> {
        let global = self.global(raw.global.unwrap_or_default())?;
        let mut jobs = BTreeSet::new();
        let mut scrape_configs = Vec::new();
        for (i, scrape) in raw
            .scrape_configs
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let field = format!("scrape_configs[{i}]");
            let line = scrape.value.job_name.as_ref().map(|n| n.referenced);
            let config = self.scrape(&global, &field, scrape)?;
            if !jobs.insert(config.job_name.clone()) {
                return Err(invalid(
                    format!("{field}.job_name"),
                    line.unwrap_or(Location::UNKNOWN),
                    format!(
                        "found multiple scrape configs with job name {:?}",
                        config.job_name
                    ),
                ));
            }
            scrape_configs.push(config);
        }
        let mut names = BTreeSet::new();
        let mut remote_write = Vec::new();
        for (i, remote) in raw.remote_write.unwrap_or_default().into_iter().enumerate() {
            let field = format!("remote_write[{i}]");
            if let Some(name) = &remote.value.name
                && !name.value.is_empty()
                && !names.insert(name.value.clone())
            {
                return Err(invalid(
                    format!("{field}.name"),
                    name.referenced,
                    format!(
                        "found multiple remote write configs with job name {:?}",
                        name.value
                    ),
                ));
            }
            remote_write.push(self.remote_write(&field, remote)?);
        }
        Ok(AgentConfig {
            global,
            scrape_configs,
            remote_write,
        })
    }

    fn global(&self, raw: RawGlobal) -> Result<GlobalConfig, ConfigError> {
        let scrape_interval = set(&raw.scrape_interval).map_or(DEFAULT_SCRAPE_INTERVAL, |d| d.0);
        let scrape_timeout = match set(&raw.scrape_timeout) {
            Some((timeout, at)) if timeout > scrape_interval => {
                return Err(invalid(
                    "global.scrape_timeout",
                    at,
                    "global scrape timeout greater than scrape interval",
                ));
            }
            Some((timeout, _)) => timeout,
            None => DEFAULT_SCRAPE_TIMEOUT.min(scrape_interval),
        };
        Ok(GlobalConfig {
            scrape_interval,
            scrape_timeout,
            external_labels: labels(raw.external_labels),
        })
    }

    fn scrape(
        &self,
        global: &GlobalConfig,
        field: &str,
        spanned: Spanned<RawScrape>,
    ) -> Result<ScrapeConfig, ConfigError> {
        let raw = spanned.value;
        let job_name = match raw.job_name {
            Some(name) if !name.value.is_empty() => name.value,
            Some(name) => {
                return Err(invalid(
                    format!("{field}.job_name"),
                    name.referenced,
                    "job_name is empty",
                ));
            }
            None => {
                return Err(invalid(
                    format!("{field}.job_name"),
                    spanned.referenced,
                    "job_name is empty",
                ));
            }
        };
        let scrape_interval = set(&raw.scrape_interval).map_or(global.scrape_interval, |d| d.0);
        let scrape_timeout = match set(&raw.scrape_timeout) {
            Some((timeout, at)) if timeout > scrape_interval => {
                return Err(invalid(
                    format!("{field}.scrape_timeout"),
                    at,
                    format!(
                        "scrape timeout greater than scrape interval for scrape config with job name {job_name:?}"
                    ),
                ));
            }
            Some((timeout, _)) => timeout,
            None => global.scrape_timeout.min(scrape_interval),
        };
        let static_configs = raw
            .static_configs
            .unwrap_or_default()
            .into_iter()
            .map(|s| StaticConfig {
                targets: s
                    .targets
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| t.0)
                    .collect(),
                labels: labels(s.labels),
            })
            .collect();
        let mut file_sd_configs = Vec::new();
        for (i, sd) in raw
            .file_sd_configs
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let here = format!("{field}.file_sd_configs[{i}]");
            let mut files = Vec::new();
            for file in sd.value.files.unwrap_or_default() {
                if !FILE_SD_PATTERN.is_match(&file.value) {
                    return Err(invalid(
                        format!("{here}.files"),
                        file.referenced,
                        format!("path name {:?} is not valid for file discovery", file.value),
                    ));
                }
                files.push(self.dir.join(&file.value));
            }
            if files.is_empty() {
                return Err(invalid(
                    format!("{here}.files"),
                    sd.referenced,
                    "file service discovery config must contain at least one path name",
                ));
            }
            file_sd_configs.push(FileSdConfig {
                files,
                refresh_interval: sd
                    .value
                    .refresh_interval
                    .map_or(DEFAULT_FILE_SD_REFRESH, |d| d.0),
            });
        }
        let mut http_sd_configs = Vec::new();
        for (i, sd) in raw
            .http_sd_configs
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let here = format!("{field}.http_sd_configs[{i}].url");
            let url = http_url(&here, sd.referenced, sd.value.url, "URL is missing")?;
            http_sd_configs.push(HttpSdConfig {
                url,
                refresh_interval: sd
                    .value
                    .refresh_interval
                    .map_or(DEFAULT_HTTP_SD_REFRESH, |d| d.0),
            });
        }
        let ecs_task_sd_configs = ecs_task_sd_configs(field, raw.ecs_task_sd_configs)?;
        let mut ecs_sd_configs = Vec::new();
        for (i, sd) in raw
            .ecs_sd_configs
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let clusters = sd.value.clusters.unwrap_or_default();
            if clusters.is_empty() {
                return Err(invalid(
                    format!("{field}.ecs_sd_configs[{i}].clusters"),
                    sd.referenced,
                    "at least one cluster is required",
                ));
            }
            ecs_sd_configs.push(EcsSdConfig {
                region: sd.value.region,
                clusters,
                refresh_interval: sd
                    .value
                    .refresh_interval
                    .map_or(DEFAULT_AWS_SD_REFRESH, |d| d.0),
            });
        }
        let mut cloudmap_sd_configs = Vec::new();
        for (i, sd) in raw
            .cloudmap_sd_configs
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            let namespaces = sd.value.namespaces.unwrap_or_default();
            if namespaces.is_empty() {
                return Err(invalid(
                    format!("{field}.cloudmap_sd_configs[{i}].namespaces"),
                    sd.referenced,
                    "at least one namespace is required",
                ));
            }
            cloudmap_sd_configs.push(CloudMapSdConfig {
                region: sd.value.region,
                namespaces,
                refresh_interval: sd
                    .value
                    .refresh_interval
                    .map_or(DEFAULT_AWS_SD_REFRESH, |d| d.0),
            });
        }
        let http = self.http(field, raw.basic_auth, raw.authorization, raw.tls_config)?;
        Ok(ScrapeConfig {
            job_name,
            scrape_interval,
            scrape_timeout,
            metrics_path: raw.metrics_path.unwrap_or_else(|| "/metrics".to_owned()),
            scheme: raw.scheme.unwrap_or(Scheme::Http),
            params: raw.params.unwrap_or_default(),
            honor_labels: raw.honor_labels.unwrap_or(false),
            honor_timestamps: raw.honor_timestamps.unwrap_or(true),
            static_configs,
            file_sd_configs,
            http_sd_configs,
            ecs_task_sd_configs,
            ecs_sd_configs,
            cloudmap_sd_configs,
            relabel_configs: raw.relabel_configs.unwrap_or_default(),
            metric_relabel_configs: raw.metric_relabel_configs.unwrap_or_default(),
            sample_limit: raw.sample_limit.unwrap_or(0),
            label_limit: raw.label_limit.unwrap_or(0),
            // Prometheus reads any size up to 0 as "no limit".
            body_size_limit: raw.body_size_limit.map_or(0, |s| s.0.max(0) as u64),
            http,
        })
    }

    /// A file named in the configuration, resolved against its directory. Prometheus reads
    /// such files when it uses them; the ones `promtool check config` requires at load
    /// (`required`, with promtool's description of the file) are required here too.
    fn file(
        &self,
        field: String,
        file: Spanned<String>,
        required: Option<&str>,
    ) -> Result<PathBuf, ConfigError> {
        let path = self.dir.join(&file.value);
        if let Some(what) = required
            && let Err(error) = std::fs::metadata(&path)
        {
            return Err(invalid(
                field,
                file.referenced,
                format!(
                    "error checking {what} {:?}: {error}",
                    path.display().to_string()
                ),
            ));
        }
        Ok(path)
    }

    fn http(
        &self,
        field: &str,
        basic_auth: Option<Spanned<RawBasicAuth>>,
        authorization: Option<Spanned<RawAuthorization>>,
        tls: Option<Spanned<RawTls>>,
    ) -> Result<HttpClientConfig, ConfigError> {
        if let (Some(_), Some(auth)) = (&basic_auth, &authorization) {
            return Err(invalid(
                format!("{field}.authorization"),
                auth.referenced,
                "at most one of basic_auth, oauth2 & authorization must be configured",
            ));
        }
        let basic_auth = match basic_auth {
            None => None,
            Some(spanned) => {
                let raw = spanned.value;
                let password = match (raw.password, raw.password_file) {
                    (Some(_), Some(file)) => {
                        return Err(invalid(
                            format!("{field}.basic_auth.password_file"),
                            file.referenced,
                            "at most one of basic_auth password & password_file must be configured",
                        ));
                    }
                    (_, Some(file)) => Secret::File(self.file(
                        format!("{field}.basic_auth.password_file"),
                        file,
                        None,
                    )?),
                    (password, None) => Secret::Value(password.unwrap_or_default()),
                };
                Some(BasicAuth {
                    username: raw.username.unwrap_or_default(),
                    password,
                })
            }
        };
        let authorization = match authorization {
            None => None,
            Some(spanned) => {
                let raw = spanned.value;
                let kind = raw.kind.filter(|k| !k.is_empty());
                if kind
                    .as_deref()
                    .is_some_and(|k| k.eq_ignore_ascii_case("basic"))
                {
                    return Err(invalid(
                        format!("{field}.authorization.type"),
                        spanned.referenced,
                        "authorization type cannot be set to \"basic\", use \"basic_auth\" instead",
                    ));
                }
                let credentials = match (raw.credentials, raw.credentials_file) {
                    (Some(_), Some(file)) => {
                        return Err(invalid(
                            format!("{field}.authorization.credentials_file"),
                            file.referenced,
                            "at most one of authorization credentials & credentials_file must be configured",
                        ));
                    }
                    (_, Some(file)) => Secret::File(self.file(
                        format!("{field}.authorization.credentials_file"),
                        file,
                        Some("authorization credentials or bearer token file"),
                    )?),
                    (credentials, None) => Secret::Value(credentials.unwrap_or_default()),
                };
                Some(Authorization {
                    kind: kind.unwrap_or_else(|| "Bearer".to_owned()),
                    credentials,
                })
            }
        };
        let tls_config = match tls {
            None => TlsConfig::default(),
            Some(spanned) => {
                let raw = spanned.value;
                let here = format!("{field}.tls_config");
                match (&raw.cert_file, &raw.key_file) {
                    (Some(_), None) => {
                        return Err(invalid(
                            format!("{here}.key_file"),
                            spanned.referenced,
                            "exactly one of key or key_file must be configured when a client certificate is configured",
                        ));
                    }
                    (None, Some(_)) => {
                        return Err(invalid(
                            format!("{here}.cert_file"),
                            spanned.referenced,
                            "exactly one of cert or cert_file must be configured when a client key is configured",
                        ));
                    }
                    _ => {}
                }
                let file = |name: &str, value: Option<Spanned<String>>, required| {
                    value
                        .filter(|v| !v.value.is_empty())
                        .map(|v| self.file(format!("{here}.{name}"), v, required))
                        .transpose()
                };
                TlsConfig {
                    ca_file: file("ca_file", raw.ca_file, None)?,
                    cert_file: file("cert_file", raw.cert_file, Some("client cert file"))?,
                    key_file: file("key_file", raw.key_file, Some("client key file"))?,
                    server_name: raw.server_name.filter(|s| !s.is_empty()),
                    insecure_skip_verify: raw.insecure_skip_verify.unwrap_or(false),
                }
            }
        };
        Ok(HttpClientConfig {
            basic_auth,
            authorization,
            tls_config,
        })
    }

    fn remote_write(
        &self,
        field: &str,
        spanned: Spanned<RawRemoteWrite>,
    ) -> Result<RemoteWriteConfig, ConfigError> {
        let raw = spanned.value;
        let url = http_url(
            &format!("{field}.url"),
            spanned.referenced,
            raw.url,
            "url for remote_write is empty",
        )?;
        let mut headers = BTreeMap::new();
        if let Some(given) = raw.headers {
            for (name, value) in given.value {
                if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                    return Err(invalid(
                        format!("{field}.headers"),
                        given.referenced,
                        format!("{name} is a reserved header. It must not be changed"),
                    ));
                }
                headers.insert(name, value);
            }
        }
        let sigv4 = match raw.sigv4 {
            None => None,
            Some(spanned) => {
                if raw.basic_auth.is_some() || raw.authorization.is_some() {
                    return Err(invalid(
                        format!("{field}.sigv4"),
                        spanned.referenced,
                        "at most one of basic_auth, authorization, oauth2, & sigv4 must be configured",
                    ));
                }
                let RawSigV4 {
                    region,
                    access_key,
                    secret_key,
                    profile,
                    role_arn,
                } = spanned.value;
                let nonempty = |s: Option<String>| s.filter(|s| !s.is_empty());
                let (access_key, secret_key) = (nonempty(access_key), nonempty(secret_key));
                if access_key.is_some() != secret_key.is_some() {
                    return Err(invalid(
                        format!("{field}.sigv4"),
                        spanned.referenced,
                        "must provide a AWS SigV4 Access key and Secret Key if credentials are specified in the SigV4 config",
                    ));
                }
                Some(SigV4Config {
                    region: nonempty(region),
                    access_key,
                    secret_key,
                    profile: nonempty(profile),
                    role_arn: nonempty(role_arn),
                })
            }
        };
        let http = self.http(field, raw.basic_auth, raw.authorization, raw.tls_config)?;
        Ok(RemoteWriteConfig {
            url,
            name: raw.name.map(|n| n.value).unwrap_or_default(),
            remote_timeout: raw.remote_timeout.map_or(DEFAULT_REMOTE_TIMEOUT, |d| d.0),
            headers,
            write_relabel_configs: raw.write_relabel_configs.unwrap_or_default(),
            queue_config: queue(raw.queue_config.unwrap_or_default()),
            sigv4,
            http,
        })
    }
}

fn queue(raw: RawQueue) -> QueueConfig {
    let default = QueueConfig::default();
    // Prometheus reads a 0 as "not set" for every queue field.
    let count = |v: Option<u64>, d: u64| v.filter(|&v| v != 0).unwrap_or(d);
    let time = |v: Option<crate::raw::PromDuration>, d: Duration| {
        v.map(|v| v.0).filter(|v| !v.is_zero()).unwrap_or(d)
    };
    QueueConfig {
        capacity: count(raw.capacity, default.capacity),
        min_shards: count(raw.min_shards, default.min_shards),
        max_shards: count(raw.max_shards, default.max_shards),
        max_samples_per_send: count(raw.max_samples_per_send, default.max_samples_per_send),
        batch_send_deadline: time(raw.batch_send_deadline, default.batch_send_deadline),
        min_backoff: time(raw.min_backoff, default.min_backoff),
        max_backoff: time(raw.max_backoff, default.max_backoff),
        retry_on_http_429: raw.retry_on_http_429.unwrap_or(true),
    }
}

/// A required http or https URL with a host.
fn http_url(
    field: &str,
    parent: Location,
    url: Option<Spanned<String>>,
    missing: &str,
) -> Result<String, ConfigError> {
    let Some(url) = url.filter(|u| !u.value.is_empty()) else {
        return Err(invalid(field, parent, missing));
    };
    let parsed: http::Uri = url
        .value
        .parse()
        .map_err(|error| invalid(field, url.referenced, format!("invalid URL: {error}")))?;
    if !matches!(parsed.scheme_str(), Some("http" | "https")) {
        return Err(invalid(
            field,
            url.referenced,
            "URL scheme must be 'http' or 'https'",
        ));
    }
    if parsed.host().is_none_or(str::is_empty) {
        return Err(invalid(field, url.referenced, "host is missing in URL"));
    }
    Ok(url.value)
}

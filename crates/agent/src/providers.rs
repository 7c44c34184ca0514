//! Where target groups come from: `static_configs` (once), `file_sd_configs` (files read again
//! when they change, checked every few seconds, and at least every `refresh_interval`),
//! `http_sd_configs` (fetched every `refresh_interval`), `ecs_task_sd_configs` (the task
//! metadata endpoint, read every `refresh_interval`), and `ecs_sd_configs` and
//! `cloudmap_sd_configs` (`ecs-prom discovery`'s sources, refreshed every
//! `refresh_interval`). A provider that fails keeps its last good groups, as Prometheus does,
//! and says why on the status page.

use crate::config::{EcsScope, EcsTaskSdConfig, FileSdConfig, HttpSdConfig, ScrapeConfig};
use crate::targets::TargetGroup;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

/// The deadline of one request to the task metadata endpoint.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// The variable ECS sets to the task metadata endpoint of each container.
pub const METADATA_URI_VARIABLE: &str = "ECS_CONTAINER_METADATA_URI_V4";

/// How long a container instance's address is kept by `ecs_sd_configs` (as discovery's
/// `--ecs.container-instance-ttl` default).
const CONTAINER_INSTANCE_TTL: Duration = Duration::from_secs(600);

/// The deadline of one AWS API call of `ecs_sd_configs` and `cloudmap_sd_configs`.
const AWS_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// ECS API calls a second at most, as discovery's `--ecs.requests-per-second` default.
const ECS_REQUESTS_PER_SECOND: f64 = 10.0;

/// How often file_sd looks for changed files.
const FILE_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// The largest http_sd answer read.
const HTTP_SD_MAX_BYTES: usize = 16 * 1024 * 1024;

/// The deadline of one http_sd request.
const HTTP_SD_TIMEOUT: Duration = Duration::from_secs(30);

/// One provider's groups, replacing what it gave before.
#[derive(Debug)]
pub struct Update {
    /// The job.
    pub job: String,
    /// Which of the job's providers.
    pub provider: usize,
    /// Its groups (its last good ones when `error` is set).
    pub groups: Vec<TargetGroup>,
    /// Why the last refresh failed, if it did.
    pub error: Option<String>,
}

/// Starts every provider of `job`; each sends its updates to `updates` until the returned
/// tasks are aborted. Static groups are sent at once.
pub fn start(
    job: &ScrapeConfig,
    client: &web::Client,
    updates: &mpsc::UnboundedSender<Update>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    let mut provider = 0;
    let statics: Vec<TargetGroup> = job
        .static_configs
        .iter()
        .map(|group| TargetGroup {
            targets: group.targets.clone(),
            labels: group.labels.clone(),
            ..TargetGroup::default()
        })
        .collect();
    let _ = updates.send(Update {
        job: job.job_name.clone(),
        provider,
        groups: statics,
        error: None,
    });
    for config in &job.file_sd_configs {
        provider += 1;
        tasks.push(tokio::spawn(watch_files(
            job.job_name.clone(),
            provider,
            config.clone(),
            updates.clone(),
        )));
    }
    for config in &job.http_sd_configs {
        provider += 1;
        tasks.push(tokio::spawn(poll_http(
            job.job_name.clone(),
            provider,
            config.clone(),
            client.clone(),
            updates.clone(),
        )));
    }
    for config in &job.ecs_task_sd_configs {
        provider += 1;
        tasks.push(tokio::spawn(watch_task_metadata(
            job.job_name.clone(),
            provider,
            config.clone(),
            updates.clone(),
        )));
    }
    let ecs = job.ecs_sd_configs.iter().map(|config| AwsSource {
        region: config.region.clone(),
        namespaces: Vec::new(),
        clusters: config.clusters.clone(),
        refresh_interval: config.refresh_interval,
    });
    let cloudmap = job.cloudmap_sd_configs.iter().map(|config| AwsSource {
        region: config.region.clone(),
        namespaces: config.namespaces.clone(),
        clusters: Vec::new(),
        refresh_interval: config.refresh_interval,
    });
    for source in ecs.chain(cloudmap) {
        provider += 1;
        tasks.push(tokio::spawn(poll_aws(
            job.job_name.clone(),
            provider,
            source,
            updates.clone(),
        )));
    }
    tasks
}

/// How many providers `start` starts for `job` (static included).
pub fn count(job: &ScrapeConfig) -> usize {
    1 + job.file_sd_configs.len()
        + job.http_sd_configs.len()
        + job.ecs_task_sd_configs.len()
        + job.ecs_sd_configs.len()
        + job.cloudmap_sd_configs.len()
}

/// Sends an update unless it says what the last one said; whether the receiver is still there.
fn send_if_changed(
    updates: &mpsc::UnboundedSender<Update>,
    last: &mut Option<(Vec<TargetGroup>, Option<String>)>,
    update: Update,
) -> bool {
    let now = (update.groups.clone(), update.error.clone());
    if last.as_ref() == Some(&now) {
        return !updates.is_closed();
    }
    *last = Some(now);
    updates.send(update).is_ok()
}

/// `ecs_task_sd_configs`: reads `/task` (or `/tasks`) every `refresh_interval`.
async fn watch_task_metadata(
    job: String,
    provider: usize,
    config: EcsTaskSdConfig,
    updates: mpsc::UnboundedSender<Update>,
) {
    let url = config
        .metadata_url
        .clone()
        .or_else(|| std::env::var(METADATA_URI_VARIABLE).ok())
        .filter(|url| !url.is_empty());
    let client = match url
        .as_deref()
        .map(|url| ecs_metadata::MetadataClient::new(url, METADATA_TIMEOUT))
    {
        Some(Ok(client)) => client,
        unusable => {
            let why = match unusable {
                Some(Err(error)) => web::error_chain(&error),
                _ => format!(
                    "no metadata_url given and {METADATA_URI_VARIABLE} is not set (not running on ECS?)"
                ),
            };
            let _ = updates.send(Update {
                job,
                provider,
                groups: Vec::new(),
                error: Some(format!("ecs_task_sd: {why}")),
            });
            return;
        }
    };
    let url = client.base_url().to_owned();
    let path = match config.scope {
        EcsScope::Task => ecs_metadata::paths::TASK,
        EcsScope::Instance => ecs_metadata::paths::TASKS,
    };
    let mut groups = Vec::new();
    let mut last = None;
    // The document rarely changes: an answer the same as the last good one is not read again.
    let mut last_body: Option<bytes::Bytes> = None;
    loop {
        let read = match client.fetch(path).await {
            Ok(body) if last_body.as_ref() == Some(&body) => Ok(None),
            Ok(body) => match ecs_metadata::parse_tasks(&body) {
                Ok(tasks) => {
                    last_body = Some(body);
                    Ok(Some(tasks))
                }
                Err(error) => Err(web::error_chain(&error)),
            },
            Err(error) => Err(web::error_chain(&error)),
        };
        let error = match read {
            Ok(Some(mut tasks)) => {
                tasks.retain(|task| !task.task_arn.is_empty());
                let found = crate::ecs_task_sd::target_groups(&tasks, &config, &url);
                groups = found.groups;
                (!found.problems.is_empty()).then(|| found.problems.join("; "))
            }
            // Unchanged: the problems found in it are still the same.
            Ok(None) => last
                .as_ref()
                .and_then(|(_, error): &(_, Option<String>)| error.clone()),
            // The last good groups stay.
            Err(error) => {
                last_body = None;
                Some(format!("GET {url}{path}: {error}"))
            }
        };
        let update = Update {
            job: job.clone(),
            provider,
            groups: groups.clone(),
            error,
        };
        if !send_if_changed(&updates, &mut last, update) {
            return;
        }
        tokio::time::sleep(config.refresh_interval).await;
    }
}

/// What one `ecs_sd_configs` or `cloudmap_sd_configs` entry asks of discovery.
struct AwsSource {
    region: Option<String>,
    namespaces: Vec<String>,
    clusters: Vec<String>,
    refresh_interval: Duration,
}

/// `ecs_sd_configs` and `cloudmap_sd_configs`: `ecs-prom discovery`'s sources, refreshed
/// every `refresh_interval`; each keeps its last good targets through AWS errors.
async fn poll_aws(
    job: String,
    provider: usize,
    source: AwsSource,
    updates: mpsc::UnboundedSender<Update>,
) {
    let mut last = None;
    let client = loop {
        match aws_client(source.region.clone()).await {
            Ok(client) => break client,
            Err(error) => {
                let update = Update {
                    job: job.clone(),
                    provider,
                    groups: Vec::new(),
                    error: Some(error),
                };
                if !send_if_changed(&updates, &mut last, update) {
                    return;
                }
                tokio::time::sleep(source.refresh_interval).await;
            }
        }
    };
    let namespaces = if source.namespaces.is_empty() {
        discovery::Namespaces::None
    } else {
        discovery::Namespaces::Fixed(source.namespaces.clone())
    };
    let mut sources = discovery::Discovery::new(
        Arc::new(client),
        namespaces,
        &source.clusters,
        CONTAINER_INSTANCE_TTL,
        None,
    );
    loop {
        sources.refresh(source.refresh_interval).await;
        let groups = sources
            .targets()
            .into_iter()
            .map(|group| TargetGroup {
                targets: group.targets,
                labels: group.labels,
                ..TargetGroup::default()
            })
            .collect();
        let mut errors: Vec<String> = sources
            .namespaces_error
            .iter()
            .map(|error| web::error_chain(error))
            .collect();
        for (key, status) in &sources.sources {
            if let Some(error) = &status.last_error {
                errors.push(format!("{key}: {}", web::error_chain(error)));
            }
        }
        let update = Update {
            job: job.clone(),
            provider,
            groups,
            error: (!errors.is_empty()).then(|| errors.join("; ")),
        };
        if !send_if_changed(&updates, &mut last, update) {
            return;
        }
        tokio::time::sleep(source.refresh_interval).await;
    }
}

/// The AWS client of discovery's sources: the standard credential chain, in the given region,
/// else the environment's, else the task's.
async fn aws_client(region: Option<String>) -> Result<aws_api::AwsClient, String> {
    let env = |name: &str| std::env::var(name).ok();
    let aws = aws_api::AwsConfig::load(env)
        .map_err(|e| format!("AWS credentials: {}", web::error_chain(&e)))?;
    let region = match region.or_else(|| aws.region.clone()) {
        Some(region) => region,
        None => aws_api::region_of_this_task(env)
            .await
            .map_err(|e| format!("no region given and none found: {}", web::error_chain(&e)))?,
    };
    let options = aws_api::ClientOptions {
        attempt_timeout: AWS_CALL_TIMEOUT,
        rate_limits: vec![(aws_api::Service::Ecs, ECS_REQUESTS_PER_SECOND)],
        ..aws_api::ClientOptions::default()
    };
    Ok(aws_api::AwsClient::new(aws, region, options))
}

/// What file_sd knows of one file: when it changed and its last good groups.
struct FileState {
    modified: Option<SystemTime>,
    groups: Vec<TargetGroup>,
    error: Option<String>,
}

async fn watch_files(
    job: String,
    provider: usize,
    config: FileSdConfig,
    updates: mpsc::UnboundedSender<Update>,
) {
    let mut files: BTreeMap<PathBuf, FileState> = BTreeMap::new();
    let mut last_full_read: Option<Instant> = None;
    let mut first = true;
    loop {
        let full = last_full_read.is_none_or(|at| at.elapsed() >= config.refresh_interval);
        if full {
            last_full_read = Some(Instant::now());
        }
        let (changed, list_error) = refresh_files(&config, &mut files, full);
        if changed || first {
            first = false;
            let mut groups = Vec::new();
            let mut errors: Vec<String> = list_error.into_iter().collect();
            for (path, state) in &files {
                groups.extend(state.groups.iter().cloned());
                if let Some(error) = &state.error {
                    errors.push(format!("{}: {error}", path.display()));
                }
            }
            let update = Update {
                job: job.clone(),
                provider,
                groups,
                error: (!errors.is_empty()).then(|| errors.join("; ")),
            };
            if updates.send(update).is_err() {
                return;
            }
        }
        tokio::time::sleep(FILE_CHECK_INTERVAL.min(config.refresh_interval)).await;
    }
}

/// Reads the files that changed (all of them when `full`), forgets those gone; whether
/// anything changed, and why the file list could not be read.
fn refresh_files(
    config: &FileSdConfig,
    files: &mut BTreeMap<PathBuf, FileState>,
    full: bool,
) -> (bool, Option<String>) {
    let mut present = Vec::new();
    let mut list_error = None;
    for pattern in &config.files {
        match expand(pattern) {
            Ok(paths) => present.extend(paths),
            Err(error) => list_error = Some(error),
        }
    }
    let before = files.len();
    files.retain(|path, _| present.contains(path));
    let mut changed = files.len() != before;
    for path in present {
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let known = files.get(&path).map(|state| state.modified);
        if !full && known.is_some_and(|known| known == modified) {
            continue;
        }
        let result = read_groups_file(&path);
        let state = files.entry(path.clone()).or_insert(FileState {
            modified: None,
            groups: Vec::new(),
            error: None,
        });
        state.modified = modified;
        match result {
            Ok(groups) => {
                changed |= state.groups != groups || state.error.is_some();
                state.groups = groups;
                state.error = None;
            }
            Err(error) => {
                changed |= state.error.as_ref() != Some(&error);
                tracing::warn!(file = %path.display(), %error, "file_sd: keeping the file's last good targets");
                state.error = Some(error);
            }
        }
    }
    (changed, list_error)
}

/// The files a `files` entry names: itself, or those its `*` in the last element matches.
fn expand(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let name = pattern
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if !name.contains('*') {
        return Ok(if pattern.exists() {
            vec![pattern.to_owned()]
        } else {
            Vec::new()
        });
    }
    let dir = pattern.parent().unwrap_or_else(|| Path::new("."));
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // A directory that does not exist yet holds no targets, as for Prometheus.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(format!("listing {}: {error}", dir.display())),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_str()
                .is_some_and(|candidate| glob_matches(name, candidate))
        })
        .map(|entry| entry.path())
        .collect();
    paths.sort();
    Ok(paths)
}

/// Whether `name` matches `pattern`, whose only special character is `*` (any run of
/// characters), as file_sd patterns are used.
fn glob_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = parts.split_first().unwrap_or((&"", &[]));
    let Some(mut remaining) = name.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return remaining.is_empty();
    };
    for part in middle {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

/// One file's groups, each with `__meta_filepath`; JSON or YAML by extension.
fn read_groups_file(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let is_json = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let mut groups: Vec<TargetGroup> = if is_json {
        serde_json::from_str(&text).map_err(|e| e.to_string())?
    } else if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_saphyr::from_str::<Option<Vec<TargetGroup>>>(&text)
            .map_err(|e| e.to_string())?
            .unwrap_or_default()
    };
    let file = path.display().to_string();
    for group in &mut groups {
        check_group(group)?;
        group.labels.insert("__meta_filepath".into(), file.clone());
    }
    Ok(groups)
}

/// Prometheus refuses a group with an invalid label name; so does this.
fn check_group(group: &TargetGroup) -> Result<(), String> {
    for name in group.labels.keys() {
        if !crate::raw::is_valid_label_name(name) {
            return Err(format!("{name:?} is not a valid label name"));
        }
    }
    Ok(())
}

async fn poll_http(
    job: String,
    provider: usize,
    config: HttpSdConfig,
    client: web::Client,
    updates: mpsc::UnboundedSender<Update>,
) {
    let mut groups = Vec::new();
    loop {
        let error = match fetch_http(&client, &config.url).await {
            Ok(fresh) => {
                groups = fresh;
                None
            }
            Err(error) => {
                tracing::warn!(url = %config.url, %error, "http_sd: keeping the last good targets");
                Some(error)
            }
        };
        let update = Update {
            job: job.clone(),
            provider,
            groups: groups.clone(),
            error,
        };
        if updates.send(update).is_err() {
            return;
        }
        tokio::time::sleep(config.refresh_interval).await;
    }
}

/// One http_sd answer's groups, each with `__meta_url`.
async fn fetch_http(client: &web::Client, url: &str) -> Result<Vec<TargetGroup>, String> {
    let response = client
        .get(url)
        .header(http::header::ACCEPT, "application/json")
        .timeout(HTTP_SD_TIMEOUT)
        .max_body_bytes(HTTP_SD_MAX_BYTES)
        .send()
        .await
        .map_err(|e| web::error_chain(&e))?;
    if response.status != http::StatusCode::OK {
        return Err(format!("server returned HTTP status {}", response.status));
    }
    let content_type = response
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with("application/json") {
        return Err(format!("unsupported content type {content_type:?}"));
    }
    let mut groups: Vec<TargetGroup> =
        serde_json::from_slice(&response.body).map_err(|e| e.to_string())?;
    for group in &mut groups {
        check_group(group)?;
        group.labels.insert("__meta_url".into(), url.to_owned());
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn star_matches_any_run() {
        assert!(glob_matches("*.json", "a.json"));
        assert!(glob_matches("ecs-*.json", "ecs-1.json"));
        assert!(!glob_matches("ecs-*.json", "ecs-1.json.state"));
        assert!(!glob_matches("*.json", "a.yml"));
        assert!(glob_matches("a*b*c", "abc"));
        assert!(!glob_matches("a*a", "a"));
    }

    #[test]
    fn files_are_read_as_json_or_yaml_and_bad_labels_refused() {
        let dir = std::env::temp_dir().join(format!("agent-file-sd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let json = dir.join("a.json");
        std::fs::write(&json, r#"[{"targets":["h:1"],"labels":{"team":"x"}}]"#).unwrap();
        let groups = read_groups_file(&json).unwrap();
        assert_eq!(groups[0].targets, ["h:1"]);
        assert_eq!(
            groups[0].labels.get("__meta_filepath").map(String::as_str),
            Some(json.to_str().unwrap())
        );
        let yaml = dir.join("b.yml");
        std::fs::write(&yaml, "- targets: ['h:2']\n").unwrap();
        assert_eq!(read_groups_file(&yaml).unwrap()[0].targets, ["h:2"]);
        std::fs::write(&json, r#"[{"targets":["h:1"],"labels":{"1x":"x"}}]"#).unwrap();
        assert!(
            read_groups_file(&json)
                .unwrap_err()
                .contains("not a valid label name")
        );
        let listed = expand(&dir.join("*.json")).unwrap();
        assert_eq!(listed, [json]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A loopback server answering every request with `answer`.
    async fn serve(answer: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer).await;
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        format!("http://{address}/targets")
    }

    #[tokio::test]
    async fn http_sd_reads_groups_and_refuses_what_prometheus_refuses() {
        let client = web::Client::new(Duration::from_secs(5));
        let body = r#"[{"targets":["h:1","h:2"],"labels":{"team":"a"}}]"#;
        let ok: &'static str = Box::leak(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_boxed_str(),
        );
        let url = serve(ok).await;
        let groups = fetch_http(&client, &url).await.unwrap();
        assert_eq!(groups[0].targets, ["h:1", "h:2"]);
        assert_eq!(groups[0].labels.get("team").map(String::as_str), Some("a"));
        assert_eq!(
            groups[0].labels.get("__meta_url").map(String::as_str),
            Some(url.as_str())
        );
        let text = serve("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\n[]").await;
        assert!(
            fetch_http(&client, &text)
                .await
                .unwrap_err()
                .contains("content type")
        );
        let failing = serve(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(
            fetch_http(&client, &failing)
                .await
                .unwrap_err()
                .contains("503")
        );
    }
}

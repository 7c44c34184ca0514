//! The `remote_write` side: one durable queue per remote under `--storage.path` (its directory
//! named after the remote, so a reload or a restart finds its samples again), what every
//! scraped sample becomes on its way in (`write_relabel_configs`), and one
//! sender per queue, restarted on the same queue when its configuration changes.

use crate::config::{RemoteWriteConfig, SigV4Config};
use relabel::{Labels as RelabelLabels, RelabelConfig};
use remote_write::Sample;
use remote_write::{Counters, Endpoint, Queue, QueueConfig, SenderConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How the queues are kept.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// `--storage.path`: each remote's queue is a directory under it.
    pub path: PathBuf,
    /// `--storage.max-bytes`: disk all queues may use together, shared evenly.
    pub max_bytes: u64,
    /// `--storage.fsync`: flush the queues to the disk (each second at most), so that they
    /// survive a crash of the machine, not only of the agent.
    pub fsync: bool,
}

/// Why a remote cannot be started.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// Its queue cannot be opened.
    #[error("remote_write {name}: opening its queue")]
    Queue {
        /// The remote.
        name: String,
        /// Why.
        #[source]
        source: remote_write::Error,
    },
    /// Its endpoint cannot be used.
    #[error("remote_write {name}: {reason}")]
    Endpoint {
        /// The remote.
        name: String,
        /// Why.
        reason: String,
    },
}

/// One remote: where its samples wait and what is done to them first.
pub struct Remote {
    /// `name`, or the URL when it has none.
    pub name: String,
    /// `url`.
    pub url: String,
    /// Its queue's directory.
    pub directory: PathBuf,
    /// The queue.
    pub queue: Arc<Queue>,
    write_relabel_configs: Vec<RelabelConfig>,
    /// What the sender was started with, to tell whether a reload changes it.
    fingerprint: String,
    sender: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("name", &self.name)
            .field("directory", &self.directory)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// Appends what `samples` become for this remote (after its `write_relabel_configs`); a
    /// failure is logged and counted by the caller, as the samples cannot be kept anywhere
    /// else.
    pub fn append(&self, mut samples: Vec<Sample>) -> Result<(), remote_write::Error> {
        if !self.write_relabel_configs.is_empty() {
            samples.retain_mut(|sample| match self.relabeled(&sample.labels) {
                Some(labels) => {
                    sample.labels = labels;
                    true
                }
                None => false,
            });
        }
        self.queue.append(&samples)
    }

    /// A series' labels after `write_relabel_configs`; `None` when they drop it.
    fn relabeled(&self, labels: &remote_write::Labels) -> Option<remote_write::Labels> {
        let mut set = RelabelLabels::from_pairs(
            labels
                .as_slice()
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str())),
        );
        if !relabel::process(&mut set, &self.write_relabel_configs) {
            return None;
        }
        remote_write::Labels::new(set.into_vec()).ok()
    }

    /// The queue's counters.
    pub fn counters(&self) -> &Arc<Counters> {
        self.queue.counters()
    }

    /// Stops the sender, which flushes the queue and writes its checkpoint.
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.sender.take() {
            let _ = stop.send(());
            let _ = task.await;
        }
    }
}

/// The directory of a remote's queue: its name, made safe for a file name, or a hash of its
/// URL when it has none.
pub fn queue_directory(storage: &Path, config: &RemoteWriteConfig) -> PathBuf {
    let name = if config.name.is_empty() {
        format!("url-{:016x}", fnv1a(config.url.as_bytes()))
    } else {
        config
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    storage.join("queues").join(name)
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// What a remote will run with, checked before anything running is touched.
struct Planned {
    name: String,
    directory: PathBuf,
    fingerprint: String,
    /// `None` when the running remote of this directory is kept as it is.
    start: Option<(Endpoint, Option<Arc<Queue>>)>,
}

/// Brings `current` to what `configs` asks for: a remote whose sending configuration is
/// unchanged keeps running; one that changed is restarted on its queue (samples kept); one
/// no longer configured is stopped (its queue stays on disk, and is sent if it comes back).
/// Every endpoint and new queue is made first: when one fails, `current` is left running as
/// it was and the error returned.
pub async fn reconcile(
    current: &mut Vec<Remote>,
    configs: &[RemoteWriteConfig],
    storage: &StorageOptions,
) -> Result<(), RemoteError> {
    let per_queue = storage.max_bytes / configs.len().max(1) as u64;
    let mut plans = Vec::with_capacity(configs.len());
    for config in configs {
        let name = if config.name.is_empty() {
            config.url.clone()
        } else {
            config.name.clone()
        };
        let directory = queue_directory(&storage.path, config);
        // The configuration prints its secrets redacted: their digest shows a change.
        let secret_key = config
            .sigv4
            .as_ref()
            .and_then(|v4| v4.secret_key.as_deref());
        let fingerprint = format!(
            "{config:?} {per_queue} {}",
            crate::http_client::inline_secrets_digest(
                &config.http,
                &[secret_key.unwrap_or_default()]
            )
        );
        let running = current.iter().find(|r| r.directory == directory);
        let start = if running.is_some_and(|r| r.fingerprint == fingerprint) {
            None
        } else {
            let endpoint = endpoint(config)
                .await
                .map_err(|reason| RemoteError::Endpoint {
                    name: name.clone(),
                    reason,
                })?;
            let queue = match running {
                Some(_) => None,
                None => {
                    let mut queue_config = QueueConfig::new(&directory);
                    queue_config.max_bytes = per_queue;
                    queue_config.fsync = storage.fsync;
                    let counters = Counters::starting_at(timestamps::now_ms());
                    let queue =
                        Queue::open(queue_config, Arc::new(counters)).map_err(|source| {
                            RemoteError::Queue {
                                name: name.clone(),
                                source,
                            }
                        })?;
                    Some(Arc::new(queue))
                }
            };
            Some((endpoint, queue))
        };
        plans.push((
            config,
            Planned {
                name,
                directory,
                fingerprint,
                start,
            },
        ));
    }
    let mut old: BTreeMap<PathBuf, Remote> = std::mem::take(current)
        .into_iter()
        .map(|remote| (remote.directory.clone(), remote))
        .collect();
    for (config, plan) in plans {
        let (endpoint, opened) = match plan.start {
            None => {
                if let Some(remote) = old.remove(&plan.directory) {
                    // The disk is shared anew when the number of remotes changes.
                    remote.queue.set_max_bytes(per_queue);
                    current.push(remote);
                }
                continue;
            }
            Some(start) => start,
        };
        let queue = match (opened, old.remove(&plan.directory)) {
            (Some(queue), _) => queue,
            (None, Some(mut remote)) => {
                remote.stop().await;
                remote.queue.set_max_bytes(per_queue);
                remote.queue
            }
            // Planned as running, so present: unreachable, but a queue is never invented.
            (None, None) => continue,
        };
        let sender_config = sender_config(config);
        let (stop, stopped) = oneshot::channel::<()>();
        let sending = Arc::clone(&queue);
        let remote_name = plan.name.clone();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(error) = remote_write::run(sending, endpoint, sender_config, shutdown).await
            {
                tracing::error!(remote = %remote_name, error = %web::error_chain(&error), "remote write stopped");
            }
        });
        current.push(Remote {
            name: plan.name,
            url: config.url.clone(),
            directory: plan.directory,
            queue,
            write_relabel_configs: config.write_relabel_configs.clone(),
            fingerprint: plan.fingerprint,
            sender: Some((stop, task)),
        });
    }
    for (_, mut remote) in old {
        remote.stop().await;
    }
    Ok(())
}

/// Prometheus' queue settings in the sender's terms. Shards are fixed at 4 (within
/// `min_shards`..`max_shards`): the queue on disk, not shard scaling, absorbs a slow receiver.
fn sender_config(config: &RemoteWriteConfig) -> SenderConfig {
    let queue = &config.queue_config;
    let shards = 4u64.min(queue.max_shards).max(queue.min_shards).max(1);
    SenderConfig {
        shards: usize::try_from(shards).unwrap_or(4),
        max_samples_per_send: usize::try_from(queue.max_samples_per_send.max(1)).unwrap_or(500),
        batch_send_deadline: queue.batch_send_deadline,
        min_backoff: queue.min_backoff,
        max_backoff: queue.max_backoff,
        retry_on_http_429: queue.retry_on_http_429,
        ..SenderConfig::default()
    }
}

/// The endpoint of a remote: signed for AMP with `sigv4`, else plain with its headers and
/// credentials.
async fn endpoint(config: &RemoteWriteConfig) -> Result<Endpoint, String> {
    if let Some(sigv4) = &config.sigv4 {
        let client = amp_client(sigv4, &config.url, config.remote_timeout).await?;
        return Endpoint::amp(Arc::new(client), &config.url).map_err(|e| e.to_string());
    }
    let client = crate::http_client::client(&config.http, config.remote_timeout)?;
    let mut headers: Vec<(String, String)> = config
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    if let Some(value) = crate::http_client::authorization(&config.http)? {
        headers.push(("authorization".to_owned(), value));
    }
    match Endpoint::http(client, &config.url).map_err(|e| e.to_string())? {
        Endpoint::Http { client, url, .. } => Ok(Endpoint::Http {
            client,
            url,
            headers,
        }),
        amp => Ok(amp),
    }
}

/// The AWS client of a `sigv4` block: the standard credential chain with the block's keys or
/// profile in front, its role assumed on top, in its region (else the URL's, else the
/// environment's). One attempt per call: the sender retries itself.
async fn amp_client(
    sigv4: &SigV4Config,
    url: &str,
    timeout: std::time::Duration,
) -> Result<aws_api::AwsClient, String> {
    let overrides: Vec<(&str, String)> = [
        ("AWS_ACCESS_KEY_ID", sigv4.access_key.clone()),
        ("AWS_SECRET_ACCESS_KEY", sigv4.secret_key.clone()),
        ("AWS_PROFILE", sigv4.profile.clone()),
    ]
    .into_iter()
    .filter_map(|(name, value)| value.map(|v| (name, v)))
    .collect();
    let keys_given = sigv4.access_key.is_some();
    let env = |name: &str| {
        if let Some((_, value)) = overrides.iter().find(|(n, _)| *n == name) {
            return Some(value.clone());
        }
        // Keys given in the block are used alone, without the environment's session token.
        if keys_given && name == "AWS_SESSION_TOKEN" {
            return None;
        }
        std::env::var(name).ok()
    };
    let mut aws = aws_api::AwsConfig::load(env).map_err(|e| web::error_chain(&e))?;
    if let Some(role_arn) = &sigv4.role_arn {
        aws = aws.with_role(aws_api::RoleSettings {
            role_arn: role_arn.clone(),
            external_id: None,
            session_name: None,
            duration_seconds: None,
        });
    }
    let region = match sigv4
        .region
        .clone()
        .or_else(|| region_of_amp_url(url))
        .or_else(|| aws.region.clone())
    {
        Some(region) => region,
        None => aws_api::region_of_this_task(env).await.map_err(|e| {
            format!(
                "sigv4: no region given and none found: {}",
                web::error_chain(&e)
            )
        })?,
    };
    let options = aws_api::ClientOptions {
        attempt_timeout: timeout,
        max_attempts: 1,
        ..aws_api::ClientOptions::default()
    };
    Ok(aws_api::AwsClient::new(aws, region, options))
}

/// The region in `https://aps-workspaces.<region>.amazonaws.com/...`.
pub fn region_of_amp_url(url: &str) -> Option<String> {
    let host = url.split("://").nth(1)?.split(['/', ':']).next()?;
    let region = host.strip_prefix("aps-workspaces.")?.split('.').next()?;
    (!region.is_empty()).then(|| region.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_comes_from_an_amp_url() {
        assert_eq!(
            region_of_amp_url(
                "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write"
            )
            .as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            region_of_amp_url("http://127.0.0.1:9090/api/v1/write"),
            None
        );
    }
}

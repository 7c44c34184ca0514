//! The sending loop: chunks read from the queue, split into shards by series so each series'
//! samples stay in order while shards send in parallel, each shard's samples packed into
//! requests under a sample and a byte bound, and each request retried as Prometheus does
//! until it is sent, rejected or too old.

use crate::counters::{Counters, DropReason};
use crate::endpoint::{Attempt, Endpoint};
use crate::error::Error;
use crate::labels::{Labels, Sample};
use crate::protobuf::{
    TimeSeries, WriteRequest, compress, sample_field_len, series_field_len, series_labels_len,
};
use crate::queue::Queue;
use crate::retry::Backoff;
use bytes::Bytes;
use foldhash::{HashMap, HashMapExt};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How the sender batches and retries.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Shards sending in parallel (fixed; each series always goes to the same one).
    pub shards: usize,
    /// Samples per request at most.
    pub max_samples_per_send: usize,
    /// Uncompressed protobuf bytes per request at most (a single larger sample is still sent
    /// alone). The default, 1 MiB, is about what Prometheus' own default of 2000 samples per
    /// request reaches with long label sets; the compressed body is smaller still.
    pub max_request_bytes: usize,
    /// Longest wait for a full request before sending a partial one.
    pub batch_send_deadline: Duration,
    /// First retry delay.
    pub min_backoff: Duration,
    /// Largest retry delay (a longer `Retry-After` is still honoured).
    pub max_backoff: Duration,
    /// Samples older than this are given up instead of being retried (`None`: never).
    pub sample_age_limit: Option<Duration>,
    /// Whether a 429 is retried (within `sample_age_limit`) rather than dropped as rejected.
    pub retry_on_http_429: bool,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            shards: 4,
            max_samples_per_send: 2000,
            max_request_bytes: 1024 * 1024,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            sample_age_limit: Some(Duration::from_secs(3600)),
            retry_on_http_429: true,
        }
    }
}

/// The shard of a series: a stable hash (FNV-1a) of its sorted labels.
pub fn shard_of(labels: &Labels, shards: usize) -> usize {
    (labels.stable_hash() % shards.max(1) as u64) as usize
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Sends what `queue` holds to `endpoint` until `shutdown` completes, then flushes the queue
/// and writes its checkpoint. Samples read and not acknowledged when it stops are read again
/// by the next run.
pub async fn run(
    queue: Arc<Queue>,
    endpoint: Endpoint,
    config: SenderConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let counters = Arc::clone(queue.counters());
    queue.rewind()?;
    let mut shutdown = std::pin::pin!(shutdown);
    // Flushing appends and writing the checkpoint when the queue says they are due, not on a
    // ticker: an idle sidecar then sleeps between scrapes.
    let housekeeping_due = || queue.housekeeping_due().map(tokio::time::Instant::from_std);
    let per_chunk = config.max_samples_per_send.max(1) * config.shards.max(1);
    'outer: loop {
        // Wait for a full request's worth, or for the deadline once something is there.
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            let unread = queue.unread_samples();
            if unread as usize >= config.max_samples_per_send {
                break;
            }
            if unread > 0 {
                let due = *deadline.get_or_insert_with(|| {
                    tokio::time::Instant::now() + config.batch_send_deadline
                });
                if tokio::time::Instant::now() >= due {
                    break;
                }
            }
            tokio::select! {
                () = &mut shutdown => break 'outer,
                () = queue.appended() => {}
                () = sleep_until(deadline) => {}
                () = sleep_until(housekeeping_due()) => queue.housekeeping()?,
            }
        }
        let chunk = queue.read_chunk(per_chunk)?;
        let count = chunk.samples.len() as u64;
        if count == 0 {
            continue;
        }
        let send = send_chunk(&endpoint, &config, &counters, chunk.samples);
        let mut send = std::pin::pin!(send);
        loop {
            tokio::select! {
                () = &mut shutdown => break 'outer,
                () = &mut send => break,
                () = sleep_until(housekeeping_due()) => queue.housekeeping()?,
            }
        }
        queue.ack(chunk.end, count)?;
    }
    queue.close()
}

/// Completes at `at`; never when there is no `at`.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Sends one chunk: every shard in parallel, each shard's requests one after the other.
async fn send_chunk(
    endpoint: &Endpoint,
    config: &SenderConfig,
    counters: &Counters,
    samples: Vec<Sample>,
) {
    let shards = config.shards.max(1);
    let mut by_shard: Vec<Vec<Sample>> = (0..shards).map(|_| Vec::new()).collect();
    for sample in samples {
        by_shard[shard_of(&sample.labels, shards)].push(sample);
    }
    let sends = by_shard
        .into_iter()
        .filter(|samples| !samples.is_empty())
        .map(|samples| send_shard(endpoint, config, counters, samples));
    futures_util::future::join_all(sends).await;
}

async fn send_shard(
    endpoint: &Endpoint,
    config: &SenderConfig,
    counters: &Counters,
    samples: Vec<Sample>,
) {
    for batch in pack(
        samples,
        config.max_samples_per_send,
        config.max_request_bytes,
    ) {
        send_batch(endpoint, config, counters, batch).await;
    }
}

/// Splits `samples` (in order) into groups of at most `max_samples` whose request encodes
/// to at most `max_bytes` (a single sample larger than that goes alone).
fn pack(samples: Vec<Sample>, max_samples: usize, max_bytes: usize) -> Vec<Vec<Sample>> {
    let mut batches = Vec::new();
    let mut batch: Vec<Sample> = Vec::new();
    // Encoded size of each series in the batch so far, by labels.
    let mut series: HashMap<Labels, usize> = HashMap::new();
    let mut bytes = 0usize;
    for sample in samples {
        let added = sample_field_len(sample.timestamp_ms);
        let growth = match series.get(&sample.labels) {
            Some(inner) => series_field_len(inner + added) - series_field_len(*inner),
            None => series_field_len(series_labels_len(&sample.labels) + added),
        };
        if !batch.is_empty() && (batch.len() >= max_samples.max(1) || bytes + growth > max_bytes) {
            batches.push(std::mem::take(&mut batch));
            series.clear();
            bytes = 0;
        }
        let growth = match series.get_mut(&sample.labels) {
            Some(inner) => {
                let before = series_field_len(*inner);
                *inner += added;
                series_field_len(*inner) - before
            }
            None => {
                let inner = series_labels_len(&sample.labels) + added;
                series.insert(sample.labels.clone(), inner);
                series_field_len(inner)
            }
        };
        bytes += growth;
        batch.push(sample);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// The request of `samples`: one series per label set, samples in their order.
fn build_request(samples: &[Sample]) -> WriteRequest {
    let mut index: HashMap<&Labels, usize> = HashMap::new();
    let mut request = WriteRequest::default();
    for sample in samples {
        let at = *index.entry(&sample.labels).or_insert_with(|| {
            request.timeseries.push(TimeSeries {
                labels: sample.labels.clone(),
                samples: Vec::new(),
            });
            request.timeseries.len() - 1
        });
        request.timeseries[at]
            .samples
            .push((sample.timestamp_ms, sample.value));
    }
    request
}

async fn send_batch(
    endpoint: &Endpoint,
    config: &SenderConfig,
    counters: &Counters,
    mut samples: Vec<Sample>,
) {
    let mut backoff = Backoff::new(config.min_backoff, config.max_backoff);
    let mut retry = false;
    loop {
        if retry && let Some(limit) = config.sample_age_limit {
            let oldest_kept = now_ms() - limit.as_millis() as i64;
            let before = samples.len();
            samples.retain(|s| s.timestamp_ms >= oldest_kept);
            let dropped = (before - samples.len()) as u64;
            if dropped > 0 {
                counters.drop_samples(DropReason::TooOld, dropped);
                tracing::warn!(
                    dropped,
                    "samples older than the age limit given up while retrying"
                );
            }
            if samples.is_empty() {
                return;
            }
        }
        let count = samples.len() as u64;
        if retry {
            counters.retried.fetch_add(count, Ordering::Relaxed);
        }
        let body = Bytes::from(compress(&build_request(&samples).encode()));
        let size = body.len() as u64;
        let attempt = match endpoint.send(body).await {
            // Without retries on 429 (Prometheus' `retry_on_http_429: false`), a 429 is a
            // refusal like any other 4xx.
            Attempt::Retry {
                status: 429,
                reason,
                ..
            } if !config.retry_on_http_429 => Attempt::Rejected {
                status: 429,
                reason,
            },
            attempt => attempt,
        };
        match attempt {
            Attempt::Sent => {
                counters.sent.fetch_add(count, Ordering::Relaxed);
                counters.requests.fetch_add(1, Ordering::Relaxed);
                counters.sent_bytes.fetch_add(size, Ordering::Relaxed);
                counters.clear_last_error();
                let newest = samples.iter().map(|s| s.timestamp_ms).max().unwrap_or(0);
                counters.newest_sent_ms.fetch_max(newest, Ordering::Relaxed);
                tracing::debug!(samples = count, bytes = size, "remote write sent");
                return;
            }
            Attempt::Rejected { status, reason } => {
                counters.failed_requests.fetch_add(1, Ordering::Relaxed);
                counters.drop_samples(DropReason::Rejected, count);
                counters.set_last_error(format!("samples dropped: {reason}"));
                tracing::warn!(status, samples = count, %reason, "remote write rejected; samples dropped");
                return;
            }
            Attempt::Retry { after, reason, .. } => {
                counters.failed_requests.fetch_add(1, Ordering::Relaxed);
                counters.set_last_error(format!("retrying: {reason}"));
                let delay = match after {
                    Some(after) => {
                        backoff.next_delay();
                        after
                    }
                    None => backoff.next_delay(),
                };
                tracing::warn!(samples = count, ?delay, %reason, "remote write failed; retrying");
                tokio::time::sleep(delay).await;
                retry = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sample(series: usize, t: i64) -> Sample {
        Sample {
            labels: Labels::new([("__name__", "m".to_owned()), ("series", series.to_string())])
                .unwrap(),
            timestamp_ms: t,
            value: t as f64,
        }
    }

    #[test]
    fn shards_are_stable_per_series_and_spread() {
        let labels = Labels::new([("__name__", "up"), ("job", "a")]).unwrap();
        assert_eq!(shard_of(&labels, 8), shard_of(&labels.clone(), 8));
        let mut used = [0usize; 4];
        for series in 0..400 {
            used[shard_of(&sample(series, 0).labels, 4)] += 1;
        }
        assert!(used.iter().all(|n| *n > 50), "{used:?}");
    }

    #[test]
    fn batches_keep_order_and_respect_both_bounds() {
        let samples: Vec<Sample> = (0..1000).map(|i| sample(i % 7, i as i64)).collect();
        let batches = pack(samples.clone(), 300, usize::MAX);
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            [300, 300, 300, 100]
        );
        let batches = pack(samples.clone(), 10_000, 4096);
        assert!(batches.len() > 1);
        for batch in &batches {
            let encoded = build_request(batch).encode().len();
            assert!(encoded <= 4096, "{encoded}");
        }
        let flattened: Vec<Sample> = batches.into_iter().flatten().collect();
        assert_eq!(flattened, samples);
    }

    #[test]
    fn the_size_accounting_matches_the_encoding_exactly() {
        let samples: Vec<Sample> = (0..500)
            .map(|i| sample(i % 13, i as i64 * 1_000_000))
            .collect();
        for max_bytes in [100, 1000, 5000, 20_000] {
            for batch in pack(samples.clone(), 10_000, max_bytes) {
                let len = build_request(&batch).encode().len();
                // Bound exact: adding the next sample would have gone over.
                assert!(len <= max_bytes || batch.len() == 1, "{len} > {max_bytes}");
            }
        }
    }
}

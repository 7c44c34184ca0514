//! One target's scrape loop: a scrape every interval, at a phase of its own within the
//! interval (so targets of one job spread out rather than fire together), its samples, stale
//! markers and report series appended to every remote's queue, and its state kept for the
//! status page and the self-metrics.

use crate::remotes::Remote;
use crate::scrape::{Sample, ScrapeSettings, SeriesCache};
use crate::status::{Health, JobCounters, TargetStatus};
use crate::targets::{Source, Target};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{RwLock, oneshot};
use tokio::task::JoinHandle;

/// Why a loop stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The target is gone: its series end with stale markers.
    TargetGone,
    /// The loop is replaced (new settings) or the agent stops: its series go on.
    Quietly,
}

/// A running loop.
pub struct LoopHandle {
    stop: oneshot::Sender<Stop>,
    task: JoinHandle<SeriesCache>,
    /// The loop's target and job settings, to tell whether an update changes them.
    pub fingerprint: String,
    /// What the status page shows.
    pub status: Arc<TargetStatus>,
}

impl LoopHandle {
    /// Stops the loop and returns what it knew of its series (nothing if it panicked).
    pub async fn stop(self, why: Stop) -> Option<SeriesCache> {
        let _ = self.stop.send(why);
        self.task.await.ok()
    }
}

/// Everything one loop needs.
pub struct LoopContext {
    /// The job's client (its TLS settings).
    pub client: web::Client,
    /// The job's scrape settings.
    pub settings: Arc<ScrapeSettings>,
    /// The target.
    pub target: Target,
    /// Where samples go.
    pub remotes: Arc<RwLock<Vec<Remote>>>,
    /// The job's counters.
    pub counters: Arc<JobCounters>,
    /// The target's series, from a previous loop of the same target or new.
    pub series: SeriesCache,
    /// What the status page shows, kept from a previous loop of the same target.
    pub status: Arc<TargetStatus>,
}

/// Starts the loop.
pub fn start(context: LoopContext, fingerprint: String) -> LoopHandle {
    let (stop, stopped) = oneshot::channel();
    let status = Arc::clone(&context.status);
    let task = tokio::spawn(run(context, stopped));
    LoopHandle {
        stop,
        task,
        fingerprint,
        status,
    }
}

/// The delay before the first scrape: the target's phase (a hash of its URL and labels)
/// within the interval, counted from the last multiple of the interval since the epoch.
fn first_delay(target: &Target, now_ms: i64) -> Duration {
    use std::hash::{Hash, Hasher};
    let interval = target.interval.as_millis().max(1) as u64;
    // Fixed keys: the same target keeps its phase across reloads.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (&target.url, target.labels.as_slice()).hash(&mut hasher);
    let phase = hasher.finish() % interval;
    let now_in_interval = (now_ms.max(0) as u64) % interval;
    Duration::from_millis((phase + interval - now_in_interval) % interval)
}

async fn run(mut context: LoopContext, mut stopped: oneshot::Receiver<Stop>) -> SeriesCache {
    let interval = context.target.interval;
    // A metadata endpoint target is read in-process. Its URL is one discovery found, unless
    // relabeling made it something else (an https URL, say): then every scrape says so.
    let collector = match context.target.source {
        Source::Http => None,
        Source::EcsMetadata(scope) => Some(
            ecs_exporter::Collector::new(&context.target.url, scope, context.target.timeout)
                .map_err(|error| web::error_chain(&error)),
        ),
    };
    let start = tokio::time::Instant::now() + first_delay(&context.target, timestamps::now_ms());
    let mut ticker = tokio::time::interval_at(start, interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            why = &mut stopped => {
                if why.unwrap_or(Stop::Quietly) == Stop::TargetGone {
                    end(&mut context).await;
                }
                return context.series;
            }
            _ = ticker.tick() => {}
        }
        let now_ms = timestamps::now_ms();
        let scraping = async {
            match &collector {
                Some(collector) => {
                    let collector = collector.as_ref().map_err(String::as_str);
                    context
                        .series
                        .collect_ecs(collector, &context.settings, now_ms)
                        .await
                }
                None => {
                    context
                        .series
                        .scrape(
                            &context.client,
                            &context.target.url,
                            &context.settings,
                            now_ms,
                        )
                        .await
                }
            }
        };
        let outcome = tokio::select! {
            why = &mut stopped => {
                if why.unwrap_or(Stop::Quietly) == Stop::TargetGone {
                    end(&mut context).await;
                }
                return context.series;
            }
            outcome = scraping => outcome,
        };
        let scraped = outcome.samples.len() as u64;
        let mut batch = outcome.samples;
        batch.extend(outcome.stale_markers);
        batch.extend(outcome.report);
        append(&context, batch).await;
        let counters = &context.counters;
        match &outcome.error {
            None => counters.scrapes_succeeded.fetch_add(1, Ordering::Relaxed),
            Some(error) => {
                tracing::debug!(url = %context.target.url, %error, "scrape failed");
                counters.scrapes_failed.fetch_add(1, Ordering::Relaxed)
            }
        };
        counters
            .samples_scraped
            .fetch_add(scraped, Ordering::Relaxed);
        context.status.record(
            if outcome.error.is_none() {
                Health::Up
            } else {
                Health::Down
            },
            outcome.error,
            now_ms,
            outcome.duration,
            scraped,
        );
    }
}

/// The target went away: a stale marker for each of its series.
async fn end(context: &mut LoopContext) {
    let markers = context.series.end(timestamps::now_ms());
    append(context, markers).await;
}

async fn append(context: &LoopContext, samples: Vec<Sample>) {
    if samples.is_empty() {
        return;
    }
    let remotes = context.remotes.read().await;
    let count = samples.len();
    // The last remote takes the samples; the others copy them (labels are shared).
    let mut remaining = Some(samples);
    for (index, remote) in remotes.iter().enumerate() {
        let samples = if index + 1 == remotes.len() {
            remaining.take().unwrap_or_default()
        } else {
            remaining.clone().unwrap_or_default()
        };
        if let Err(error) = remote.append(samples) {
            context
                .counters
                .append_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(remote = %remote.name, error = %web::error_chain(&error), samples = count, "appending to the queue failed; samples lost");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relabel::Labels;

    #[test]
    fn each_target_has_a_stable_phase_within_its_interval() {
        let target = |url: &str| Target {
            labels: Labels::from_pairs([("job", "a")]),
            discovered: Labels::new(),
            url: url.to_owned(),
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            source: Source::Http,
        };
        let a = target("http://a:1/metrics");
        let delay = first_delay(&a, 1_000_000);
        assert!(delay < Duration::from_secs(10));
        // A second later, the same phase is a second closer (or just passed).
        let later = first_delay(&a, 1_001_000);
        assert_eq!(
            (delay.as_millis() + 10_000 - 1000) % 10_000,
            later.as_millis()
        );
        let phases: std::collections::BTreeSet<u128> = (0..20)
            .map(|i| first_delay(&target(&format!("http://h{i}:1/metrics")), 0).as_millis())
            .collect();
        assert!(phases.len() > 15, "{phases:?}");
    }
}

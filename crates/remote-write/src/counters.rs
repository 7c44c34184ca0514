//! What the agent exposes about sending: samples appended, sent, retried and dropped by
//! reason, the queue's size, and the newest timestamps appended and sent (their difference is
//! the lag).

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Why samples were given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Older than the sample age limit while their request was being retried.
    TooOld,
    /// The receiver refused them with a 4xx other than 429.
    Rejected,
    /// The queue was full and their segment, the oldest, was removed.
    QueueFull,
    /// Their record on disk was damaged.
    Corrupt,
}

impl DropReason {
    /// Every reason, in label order.
    pub const ALL: [DropReason; 4] = [
        DropReason::TooOld,
        DropReason::Rejected,
        DropReason::QueueFull,
        DropReason::Corrupt,
    ];

    /// The label value in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::TooOld => "too_old",
            DropReason::Rejected => "rejected",
            DropReason::QueueFull => "queue_full",
            DropReason::Corrupt => "corrupt",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The counters, shared by the queue and the sender; read with [`Counters::stats`].
#[derive(Debug, Default)]
pub struct Counters {
    pub(crate) appended: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) retried: AtomicU64,
    pub(crate) dropped: [AtomicU64; 4],
    pub(crate) requests: AtomicU64,
    pub(crate) failed_requests: AtomicU64,
    pub(crate) sent_bytes: AtomicU64,
    pub(crate) queue_bytes: AtomicU64,
    pub(crate) queue_segments: AtomicU64,
    pub(crate) newest_appended_ms: AtomicI64,
    pub(crate) newest_sent_ms: AtomicI64,
    last_error: Mutex<Option<String>>,
}

/// A reading of the counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stats {
    /// Samples appended to the queue.
    pub samples_appended: u64,
    /// Samples a receiver accepted.
    pub samples_sent: u64,
    /// Samples sent again after a failed attempt (once per retry).
    pub samples_retried: u64,
    /// Samples given up, by reason.
    pub samples_dropped: Vec<(DropReason, u64)>,
    /// Requests answered with a 2xx.
    pub requests_sent: u64,
    /// Attempts that failed (error answer or no answer).
    pub requests_failed: u64,
    /// Compressed bytes of the requests accepted.
    pub bytes_sent: u64,
    /// Bytes of the queue's segment files.
    pub queue_bytes: u64,
    /// Segment files of the queue.
    pub queue_segments: u64,
    /// The newest timestamp appended (ms; 0 before the first).
    pub newest_appended_timestamp_ms: i64,
    /// The newest timestamp a receiver accepted (ms; 0 before the first, or the start given
    /// to [`Counters::starting_at`]).
    pub newest_sent_timestamp_ms: i64,
    /// The last failed attempt, in words, until a request succeeds again.
    pub last_error: Option<String>,
}

impl Stats {
    /// Samples dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.samples_dropped
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }
}

impl Counters {
    pub(crate) fn drop_samples(&self, reason: DropReason, count: u64) {
        if count > 0 {
            self.dropped[reason.index()].fetch_add(count, Ordering::Relaxed);
        }
    }

    /// Counters of a queue whose sending starts at `started_ms`: until a newer sample is sent,
    /// that is the newest-sent time, so the lag of a receiver that is down from the start
    /// grows from then instead of reading 0.
    pub fn starting_at(started_ms: i64) -> Counters {
        let counters = Counters::default();
        counters.newest_sent_ms.store(started_ms, Ordering::Relaxed);
        counters
    }

    pub(crate) fn set_last_error(&self, error: String) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(error);
        }
    }

    pub(crate) fn clear_last_error(&self) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = None;
        }
    }

    /// The current values.
    pub fn stats(&self) -> Stats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            samples_appended: load(&self.appended),
            samples_sent: load(&self.sent),
            samples_retried: load(&self.retried),
            samples_dropped: DropReason::ALL
                .iter()
                .map(|r| (*r, load(&self.dropped[r.index()])))
                .collect(),
            requests_sent: load(&self.requests),
            requests_failed: load(&self.failed_requests),
            bytes_sent: load(&self.sent_bytes),
            queue_bytes: load(&self.queue_bytes),
            queue_segments: load(&self.queue_segments),
            newest_appended_timestamp_ms: self.newest_appended_ms.load(Ordering::Relaxed),
            newest_sent_timestamp_ms: self.newest_sent_ms.load(Ordering::Relaxed),
            last_error: self.last_error.lock().ok().and_then(|last| last.clone()),
        }
    }
}

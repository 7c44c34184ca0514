//! What the agent knows about itself for its status page and `/metrics`: each target's last
//! scrape, each job's counters and discovery errors, and the configuration's last reload.

use relabel::Labels;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// A target's health, as Prometheus names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Health {
    /// Not scraped yet.
    #[default]
    Unknown,
    /// The last scrape succeeded.
    Up,
    /// The last scrape failed.
    Down,
}

impl Health {
    /// `unknown`, `up` or `down`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// A target's last scrape.
#[derive(Debug, Clone, Default)]
pub struct ScrapeState {
    /// Health after it.
    pub health: Health,
    /// Why it failed.
    pub last_error: Option<String>,
    /// When it started (ms since the epoch; 0: never).
    pub last_scrape_ms: i64,
    /// How long it took.
    pub last_duration: Duration,
    /// Samples it gave after metric relabeling.
    pub samples: u64,
}

/// A target as the status page shows it.
#[derive(Debug)]
pub struct TargetStatus {
    /// The target's labels.
    pub labels: Labels,
    /// Its labels before relabeling.
    pub discovered: Labels,
    /// The URL scraped.
    pub url: String,
    state: Mutex<ScrapeState>,
}

impl TargetStatus {
    /// A target not scraped yet.
    pub fn new(labels: Labels, discovered: Labels, url: &str) -> TargetStatus {
        TargetStatus {
            labels,
            discovered,
            url: url.to_owned(),
            state: Mutex::new(ScrapeState::default()),
        }
    }

    /// Records a scrape.
    pub fn record(
        &self,
        health: Health,
        error: Option<String>,
        at_ms: i64,
        duration: Duration,
        samples: u64,
    ) {
        if let Ok(mut state) = self.state.lock() {
            *state = ScrapeState {
                health,
                last_error: error,
                last_scrape_ms: at_ms,
                last_duration: duration,
                samples,
            };
        }
    }

    /// The last scrape.
    pub fn state(&self) -> ScrapeState {
        self.state.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// One job's counters, kept across reloads.
#[derive(Debug, Default)]
pub struct JobCounters {
    /// Scrapes that succeeded.
    pub scrapes_succeeded: AtomicU64,
    /// Scrapes that failed.
    pub scrapes_failed: AtomicU64,
    /// Samples scraped, after metric relabeling.
    pub samples_scraped: AtomicU64,
    /// Appends to a queue that failed (their samples are lost).
    pub append_failures: AtomicU64,
}

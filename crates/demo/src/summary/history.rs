//! Scraping for the summary: each target's `/metrics` read with a deadline and a size limit,
//! only the series the figures need kept, for the last minute.

use crate::figures::Point;
use exposition::{ParsedSample, parse_samples};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// How much history the rates look at, as `rate(...[1m])` would.
pub(super) const WINDOW_SECONDS: f64 = 60.0;
/// The series the summary reads; everything else in a scrape is dropped on arrival.
pub(super) const EXPORTER_SERIES: &[&str] = &[
    "ecs_container_cpu_usage_seconds_total",
    "ecs_container_cpu_limit_vcpus",
    "ecs_task_cpu_limit_vcpus",
    "ecs_container_memory_working_set_bytes",
    "ecs_container_memory_limit_bytes",
    "ecs_task_memory_limit_bytes",
    "ecs_network_receive_bytes_total",
    "ecs_network_transmit_bytes_total",
];
pub(super) const APP_SERIES: &[&str] = &[
    "http_requests_total",
    "request_duration_milliseconds_bucket",
];

/// Deadline of one scrape: a stuck target holds up the summary's tick by at most this.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest scrape read; a demo target answers a few tens of KiB.
const MAX_SCRAPE_BYTES: usize = 4 * 1024 * 1024;

/// One scraped endpoint and what it answered over the last minute.
pub(super) struct Target {
    pub(super) client: web::Client,
    /// The target's `/metrics` URL.
    pub(super) url: String,
    keep: &'static [&'static str],
    /// (seconds since the summary started, the samples kept).
    pub(super) history: VecDeque<(f64, Vec<ParsedSample>)>,
    pub(super) last_error: Option<String>,
}

impl Target {
    pub(super) fn new(base_url: &str, keep: &'static [&'static str]) -> anyhow::Result<Target> {
        let url = format!("{}/metrics", base_url.trim_end_matches('/'));
        web::parse_url(&url)?;
        Ok(Target {
            client: web::Client::new(SCRAPE_TIMEOUT).with_max_body_bytes(MAX_SCRAPE_BYTES),
            url,
            keep,
            history: VecDeque::new(),
            last_error: None,
        })
    }

    pub(super) fn record(&mut self, at: f64, scraped: Result<Vec<ParsedSample>, String>) {
        match scraped {
            Ok(mut samples) => {
                samples.retain(|s| self.keep.contains(&s.name.as_str()));
                self.history.push_back((at, samples));
                self.last_error = None;
            }
            Err(error) => self.last_error = Some(error),
        }
        while self
            .history
            .front()
            .is_some_and(|(then, _)| at - then > WINDOW_SECONDS)
        {
            self.history.pop_front();
        }
    }

    /// Every series of `name` over the window, keyed by its labels.
    pub(super) fn series(&self, name: &str) -> BTreeMap<Vec<(String, String)>, Vec<Point>> {
        let mut series: BTreeMap<_, Vec<Point>> = BTreeMap::new();
        for (at, samples) in &self.history {
            for sample in samples.iter().filter(|s| s.name == name) {
                series
                    .entry(sample.labels.clone())
                    .or_default()
                    .push((*at, sample.value));
            }
        }
        series
    }

    /// The samples of `name` in the latest scrape.
    pub(super) fn latest<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a ParsedSample> + 'a {
        self.history
            .back()
            .into_iter()
            .flat_map(|(_, samples)| samples.iter())
            .filter(move |s| s.name == name)
    }
}

/// Reads one target's samples, or why it could not.
pub(super) async fn scrape(client: &web::Client, url: &str) -> Result<Vec<ParsedSample>, String> {
    let response = client
        .get(url)
        .header("accept", "text/plain;version=0.0.4")
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status.is_success() {
        return Err(format!(
            "GET {url} answered HTTP {}",
            response.status.as_u16()
        ));
    }
    let text =
        std::str::from_utf8(&response.body).map_err(|_| "the scrape is not UTF-8".to_owned())?;
    parse_samples(text).map_err(|e| format!("{url}: {e}"))
}

//! One scrape of one target, as Prometheus does it: the request (Prometheus' `Accept`, gzip, a
//! deadline, a body limit), the body parsed as a whole (a malformed exposition fails the scrape
//! rather than sending half of it), the target's labels merged into every sample
//! (`honor_labels`, `exported_*`), metric relabeling, the sample and label limits, and the
//! series Prometheus adds per target (`up`, `scrape_duration_seconds`,
//! `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling`, `scrape_series_added`),
//! and stale markers for the series a scrape lacks. What a scraped series becomes is kept in
//! the target's [`SeriesCache`], so a steady target costs no label work after its first scrape.

use exposition::{SCRAPE_ACCEPT, Strictness, parse_scrape};
use relabel::{Labels, RelabelConfig};
use std::time::{Duration, Instant};

/// How a target is scraped.
#[derive(Debug, Clone)]
pub struct ScrapeSettings {
    /// Deadline of the whole exchange.
    pub timeout: Duration,
    /// Largest body read, in bytes; 0 for Prometheus' "no limit" (bounded here at 256 MiB).
    pub body_size_limit: u64,
    /// Most samples after metric relabeling; 0 for no limit.
    pub sample_limit: usize,
    /// Most labels on one sample; 0 for no limit.
    pub label_limit: usize,
    /// Whether the scraped labels win over the target's.
    pub honor_labels: bool,
    /// Whether timestamps in the exposition are kept.
    pub honor_timestamps: bool,
    /// `metric_relabel_configs`.
    pub metric_relabel_configs: Vec<RelabelConfig>,
    /// Which verdict a doubtful OpenMetrics body gets.
    pub strictness: Strictness,
    /// `basic_auth` or `authorization` (secrets in files are read at each scrape).
    pub auth: crate::config::HttpClientConfig,
    /// `global.external_labels`, added to every series that lacks them.
    pub external_labels: Vec<(String, String)>,
}

/// A body without a limit of its own is still held to this, so one target cannot exhaust the
/// agent's memory.
const MAX_BODY_BYTES: u64 = 256 * 1024 * 1024;

/// One sample ready to be appended: labels sorted, unique and shared, value, timestamp in ms.
pub use remote_write::Sample;

/// What one scrape gave.
#[derive(Debug, Clone)]
pub struct ScrapeOutcome {
    /// The scraped samples after relabeling (none when the scrape failed).
    pub samples: Vec<Sample>,
    /// The series Prometheus adds per target: `up`, `scrape_duration_seconds`,
    /// `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling`,
    /// `scrape_series_added`.
    pub report: Vec<Sample>,
    /// Stale markers for the series of the previous scrape this one lacks.
    pub stale_markers: Vec<Sample>,
    /// Why the scrape failed, if it did (`up` is then 0).
    pub error: Option<String>,
    /// How long it took.
    pub duration: Duration,
}

/// Scrapes `url` once for the target whose labels (after relabeling, `job` and `instance`
/// among them, no `__` labels) are `target_labels`, at `now_ms`, with nothing known of earlier
/// scrapes. A scrape loop keeps a [`SeriesCache`] instead.
pub async fn scrape(
    client: &web::Client,
    url: &str,
    target_labels: &Labels,
    settings: &ScrapeSettings,
    now_ms: i64,
) -> ScrapeOutcome {
    SeriesCache::new(target_labels.clone())
        .scrape(client, url, settings, now_ms)
        .await
}

/// A series as the target writes it (its name and its labels, as parsed), by two independent
/// 64-bit hashes of them: 16 bytes a series instead of its text. One is SipHash with a random
/// key, so even an exporter that tries cannot make two series collide on both but by chance,
/// and chance is about one in 2^64 per pair of series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SeriesKey(u64, u64);

/// The two hash functions of [`SeriesKey`], seeded once per target.
#[derive(Debug, Default)]
struct KeyHashers {
    fast: foldhash::quality::RandomState,
    keyed: std::collections::hash_map::RandomState,
}

impl KeyHashers {
    fn key(&self, name: &str, labels: &[(String, String)]) -> SeriesKey {
        use std::hash::BuildHasher;
        SeriesKey(
            self.fast.hash_one((name, labels)),
            self.keyed.hash_one((name, labels)),
        )
    }
}

/// What a scraped series becomes.
#[derive(Debug)]
struct Entry {
    /// Its labels as sent (target labels merged, metric relabeling and external labels
    /// applied); `None` when metric relabeling drops it.
    labels: Option<remote_write::Labels>,
    /// Labels after metric relabeling, before external labels: what `label_limit` counts.
    label_count: usize,
    /// The last scrape that had it.
    seen: u64,
    /// The scrape that had it before that.
    seen_before: u64,
    /// Whether its samples carry the scrape's time (series with timestamps of their own are
    /// not ended with stale markers, as in Prometheus).
    tracked: bool,
}

/// A target's series across its scrapes, as Prometheus' scrape cache keeps them: what each
/// scraped series becomes is worked out once, not at every scrape, and the series a scrape
/// lacks get their stale markers.
#[derive(Debug)]
pub struct SeriesCache {
    target_labels: Labels,
    keys: KeyHashers,
    entries: std::collections::HashMap<SeriesKey, Entry, foldhash::fast::RandomState>,
    generation: u64,
    /// The labels of the report series, once known.
    report: Vec<remote_write::Labels>,
    /// Series sent by a previous loop of this target (before a reload), ended at the first
    /// scrape that lacks them.
    carried: Vec<remote_write::Labels>,
}

/// The names of the report series, in the order of [`ScrapeOutcome::report`].
const REPORT_SERIES: [&str; 5] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

impl SeriesCache {
    /// Nothing known yet of the target whose labels are `target_labels`.
    pub fn new(target_labels: Labels) -> SeriesCache {
        SeriesCache {
            target_labels,
            keys: KeyHashers::default(),
            entries: std::collections::HashMap::default(),
            generation: 0,
            report: Vec::new(),
            carried: Vec::new(),
        }
    }

    /// The cache of the same target under new settings (a reload): labels are worked out
    /// again, and the series sent so far end at the first scrape that lacks them.
    pub fn renewed(mut self, target_labels: Labels) -> SeriesCache {
        let mut carried: Vec<remote_write::Labels> = self
            .entries
            .drain()
            .filter(|(_, e)| e.tracked)
            .filter_map(|(_, e)| e.labels)
            .collect();
        carried.extend(self.carried);
        SeriesCache {
            carried,
            ..SeriesCache::new(target_labels)
        }
    }

    /// Stale markers at `now_ms` for every series and report series the target had: it went
    /// away. Every entry counts, those of a scrape cut short too: a marker for a series never
    /// sent is harmless, a series left without one would linger for five minutes.
    pub fn end(&mut self, now_ms: i64) -> Vec<Sample> {
        let mut all: Vec<remote_write::Labels> = self
            .entries
            .drain()
            .filter(|(_, e)| e.tracked)
            .filter_map(|(_, e)| e.labels)
            .chain(self.carried.drain(..))
            .chain(self.report.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all.into_iter()
            .map(|labels| marker(labels, now_ms))
            .collect()
    }

    /// Scrapes `url` at `now_ms`.
    pub async fn scrape(
        &mut self,
        client: &web::Client,
        url: &str,
        settings: &ScrapeSettings,
        now_ms: i64,
    ) -> ScrapeOutcome {
        self.read(fetch(client, url, settings), settings, now_ms)
            .await
    }

    /// Reads the ECS metrics `collector` gives, in-process, at `now_ms`: the exporter's
    /// families, handled as a scrape of the exporter would be. A collector that could not be
    /// made is a failed scrape saying why.
    pub async fn collect_ecs(
        &mut self,
        collector: Result<&ecs_exporter::Collector, &str>,
        settings: &ScrapeSettings,
        now_ms: i64,
    ) -> ScrapeOutcome {
        let collected = async {
            let families = collector?.collect().await?;
            Ok(scrape_of_families(&families))
        };
        self.read(collected, settings, now_ms).await
    }

    /// One scrape whose body `fetched` reads.
    async fn read(
        &mut self,
        fetched: impl std::future::Future<Output = Result<exposition::Scrape, String>>,
        settings: &ScrapeSettings,
        now_ms: i64,
    ) -> ScrapeOutcome {
        let started = Instant::now();
        self.generation += 1;
        let result = match fetched.await {
            Ok(scrape) => self.process(scrape, settings, now_ms),
            Err(error) => Err(error),
        };
        let duration = started.elapsed();
        let (samples, scraped, added, error) = match result {
            Ok((samples, scraped, added)) => (samples, scraped, added, None),
            Err(error) => (Vec::new(), 0, 0, Some(error)),
        };
        let stale_markers = self.sweep(&samples, error.is_some(), now_ms);
        let up = f64::from(u8::from(error.is_none()));
        let values = [
            up,
            duration.as_secs_f64(),
            scraped as f64,
            samples.len() as f64,
            added as f64,
        ];
        if self.report.is_empty() {
            self.report = REPORT_SERIES
                .iter()
                .map(|name| {
                    let mut labels = self.target_labels.clone();
                    labels.set("__name__", name);
                    add_external_labels(labels, &settings.external_labels)
                })
                .collect();
        }
        let report = self
            .report
            .iter()
            .zip(values)
            .map(|(labels, value)| Sample {
                labels: labels.clone(),
                timestamp_ms: now_ms,
                value,
            })
            .collect();
        ScrapeOutcome {
            samples,
            report,
            stale_markers,
            error,
            duration,
        }
    }

    /// Turns a parsed body into samples: the samples, how many the body held and how many
    /// series are new; or why the scrape fails.
    fn process(
        &mut self,
        scrape: exposition::Scrape,
        settings: &ScrapeSettings,
        now_ms: i64,
    ) -> Result<(Vec<Sample>, usize, usize), String> {
        let scraped = scrape.samples.len();
        let mut samples = Vec::with_capacity(scraped);
        let mut added = 0;
        for sample in scrape.samples {
            let key = self.keys.key(&sample.name, &sample.labels);
            let entry = match self.entries.get_mut(&key) {
                Some(entry) => entry,
                None => {
                    let entry = self.work_out(sample.name, sample.labels, settings);
                    added += usize::from(entry.labels.is_some());
                    self.entries.entry(key).or_insert(entry)
                }
            };
            if entry.seen != self.generation {
                entry.seen_before = entry.seen;
                entry.seen = self.generation;
            }
            let Some(labels) = &entry.labels else {
                continue;
            };
            if settings.label_limit > 0 && entry.label_count > settings.label_limit {
                return Err(format!(
                    "label_limit exceeded (metric: {}, number of labels: {}, limit: {})",
                    labels.get("__name__").unwrap_or_default(),
                    entry.label_count,
                    settings.label_limit
                ));
            }
            let timestamp_ms = match (settings.honor_timestamps, sample.timestamp_ms) {
                (true, Some(at)) => {
                    entry.tracked = false;
                    at
                }
                _ => {
                    entry.tracked = true;
                    now_ms
                }
            };
            samples.push(Sample {
                labels: labels.clone(),
                timestamp_ms,
                value: sample.value,
            });
        }
        if settings.sample_limit > 0 && samples.len() > settings.sample_limit {
            return Err(format!(
                "sample limit exceeded ({} samples, limit {})",
                samples.len(),
                settings.sample_limit
            ));
        }
        Ok((samples, scraped, added))
    }

    /// What a scraped series becomes under `settings`.
    fn work_out(
        &self,
        name: String,
        scraped: Vec<(String, String)>,
        settings: &ScrapeSettings,
    ) -> Entry {
        let mut labels = Labels::from_pairs(scraped);
        labels.set("__name__", &name);
        merge_target_labels(&mut labels, &self.target_labels, settings.honor_labels);
        if !relabel::process(&mut labels, &settings.metric_relabel_configs) {
            return Entry {
                labels: None,
                label_count: 0,
                seen: u64::MAX,
                seen_before: u64::MAX,
                tracked: false,
            };
        }
        let label_count = labels.len();
        Entry {
            labels: Some(add_external_labels(labels, &settings.external_labels)),
            label_count,
            seen: u64::MAX,
            seen_before: u64::MAX,
            tracked: true,
        }
    }

    /// Forgets the series this scrape lacks (all of them after a failed scrape, `failed`)
    /// and returns stale markers for those of the previous scrape that were sent with the
    /// scrape's time; `samples` are this scrape's, which end what a previous loop carried over
    /// if they lack it.
    fn sweep(&mut self, samples: &[Sample], failed: bool, now_ms: i64) -> Vec<Sample> {
        let generation = self.generation;
        let previous = generation - 1;
        let mut gone: Vec<remote_write::Labels> = Vec::new();
        self.entries.retain(|_, entry| {
            if entry.seen == generation && !failed {
                return true;
            }
            let in_previous = entry.seen == previous
                || (entry.seen == generation && entry.seen_before == previous);
            if in_previous
                && entry.tracked
                && let Some(labels) = &entry.labels
            {
                gone.push(labels.clone());
            }
            false
        });
        if !self.carried.is_empty() {
            let now: std::collections::HashSet<&remote_write::Labels> =
                samples.iter().map(|s| &s.labels).collect();
            gone.extend(self.carried.drain(..).filter(|l| !now.contains(l)));
        }
        gone.sort();
        gone.dedup();
        gone.into_iter()
            .map(|labels| marker(labels, now_ms))
            .collect()
    }
}

fn marker(labels: remote_write::Labels, now_ms: i64) -> Sample {
    Sample {
        labels,
        timestamp_ms: now_ms,
        value: remote_write::stale_marker(),
    }
}

/// `labels` as sent: the external labels a series lacks added, as Prometheus adds them to
/// everything it remote-writes.
fn add_external_labels(mut labels: Labels, external: &[(String, String)]) -> remote_write::Labels {
    for (name, value) in external {
        if labels.get(name).is_none() {
            labels.set(name, value);
        }
    }
    // Relabeled labels are sorted, unique and named; an empty value is left out.
    remote_write::Labels::new(labels.into_vec()).unwrap_or_default()
}

/// The parsed body, or why the scrape fails.
/// Families built in-process as the parser would read their text: sample names with their
/// suffixes, labels sorted, no timestamps. The series cache reads only the samples.
fn scrape_of_families(families: &[exposition::Family]) -> exposition::Scrape {
    let samples = families
        .iter()
        .flat_map(|family| {
            family.samples.iter().map(move |sample| {
                let mut labels: Vec<(String, String)> = sample
                    .labels
                    .iter()
                    .map(|(name, value)| ((*name).to_owned(), value.clone()))
                    .collect();
                labels.sort();
                exposition::ScrapedSample {
                    name: format!("{}{}", family.name, sample.suffix),
                    labels,
                    value: sample.value,
                    timestamp_ms: None,
                }
            })
        })
        .collect();
    exposition::Scrape {
        format: exposition::Format::Text,
        samples,
        families: Vec::new(),
    }
}

async fn fetch(
    client: &web::Client,
    url: &str,
    settings: &ScrapeSettings,
) -> Result<exposition::Scrape, String> {
    let limit = match settings.body_size_limit {
        0 => MAX_BODY_BYTES,
        limit => limit.min(MAX_BODY_BYTES),
    };
    let mut request = client.get(url);
    if let Some(value) = crate::http_client::authorization(&settings.auth)? {
        request = request.header(http::header::AUTHORIZATION, value);
    }
    let response = request
        .header(http::header::ACCEPT, SCRAPE_ACCEPT)
        .timeout(settings.timeout)
        .max_body_bytes(usize::try_from(limit).unwrap_or(usize::MAX))
        .gzip(true)
        .send()
        .await
        .map_err(|e| web::error_chain(&e))?;
    if !response.status.is_success() {
        return Err(format!("server returned HTTP status {}", response.status));
    }
    let content_type = response
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    parse_scrape(&response.body, content_type, settings.strictness).map_err(|e| e.to_string())
}

/// Adds the target's labels to a scraped sample's. With `honor_labels` the scraped values win;
/// otherwise the target's do, and a scraped label they replace is kept as `exported_<name>`
/// (`exported_exported_<name>` if that is taken too), as Prometheus does.
fn merge_target_labels(labels: &mut Labels, target: &Labels, honor_labels: bool) {
    for (name, value) in target.iter() {
        match labels.get(name).map(str::to_owned) {
            Some(scraped) if !scraped.is_empty() => {
                if honor_labels {
                    continue;
                }
                let mut exported = format!("exported_{name}");
                while labels.get(&exported).is_some() {
                    exported = format!("exported_{exported}");
                }
                labels.set(&exported, &scraped);
                labels.set(name, value);
            }
            _ => labels.set(name, value),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn settings() -> ScrapeSettings {
        ScrapeSettings {
            timeout: Duration::from_secs(1),
            body_size_limit: 0,
            sample_limit: 0,
            label_limit: 0,
            honor_labels: false,
            honor_timestamps: true,
            metric_relabel_configs: Vec::new(),
            strictness: Strictness::Prometheus,
            auth: crate::config::HttpClientConfig::default(),
            external_labels: vec![("cluster".into(), "c".into())],
        }
    }

    /// One scrape of `body` (`None`: a failed scrape) at `now`: the names of the samples,
    /// of the stale markers, and the series added.
    fn step(
        cache: &mut SeriesCache,
        body: Option<&str>,
        now: i64,
    ) -> (Vec<String>, Vec<String>, usize) {
        cache.generation += 1;
        let result = match body {
            Some(body) => {
                let parsed = parse_scrape(body.as_bytes(), None, Strictness::Prometheus).unwrap();
                cache.process(parsed, &settings(), now)
            }
            None => Err("failed".to_owned()),
        };
        let (samples, added) = match &result {
            Ok((samples, _, added)) => (samples.clone(), *added),
            Err(_) => (Vec::new(), 0),
        };
        let markers = cache.sweep(&samples, result.is_err(), now);
        assert!(
            markers
                .iter()
                .all(|m| remote_write::is_stale_marker(m.value) && m.timestamp_ms == now)
        );
        let names = |list: &[Sample]| -> Vec<String> {
            list.iter()
                .map(|s| s.labels.get("__name__").unwrap().to_owned())
                .collect()
        };
        (names(&samples), names(&markers), added)
    }

    #[test]
    fn series_that_disappear_get_a_stale_marker_and_new_ones_are_counted() {
        let mut cache = SeriesCache::new(labels(&[("job", "j"), ("instance", "i")]));
        assert_eq!(
            step(&mut cache, Some("a 1\nb 1\n"), 10),
            (vec!["a".into(), "b".into()], vec![], 2)
        );
        assert_eq!(
            step(&mut cache, Some("b 2\nc 2\n"), 20),
            (vec!["b".into(), "c".into()], vec!["a".into()], 1)
        );
        // Only the series of the last scrape are kept.
        assert_eq!(cache.entries.len(), 2);
        // A failed scrape ends every series of the previous one.
        assert_eq!(
            step(&mut cache, None, 30),
            (vec![], vec!["b".into(), "c".into()], 0)
        );
        // Nothing left to end after that; a series with its own timestamp is never ended.
        assert_eq!(
            step(&mut cache, Some("d 1\ne 1 5\n"), 40),
            (vec!["d".into(), "e".into()], vec![], 2)
        );
        assert_eq!(
            step(&mut cache, Some(""), 50),
            (vec![], vec!["d".into()], 0)
        );
        // A target that goes away ends its series and its report series.
        step(&mut cache, Some("f 1\n"), 60);
        cache.report = vec![remote_write::Labels::new([("__name__", "up")]).unwrap()];
        let ended = cache.end(70);
        let names: Vec<&str> = ended
            .iter()
            .map(|s| s.labels.get("__name__").unwrap())
            .collect();
        assert_eq!(names, ["f", "up"]);
        assert!(
            cache
                .end(80)
                .iter()
                .all(|s| s.labels.get("__name__") == Some("up"))
        );
    }

    #[test]
    fn a_renewed_cache_ends_what_the_previous_loop_sent_once_it_is_missing() {
        let mut cache = SeriesCache::new(labels(&[("job", "j")]));
        step(&mut cache, Some("a 1\nb 1\n"), 10);
        let mut renewed = cache.renewed(labels(&[("job", "j")]));
        assert_eq!(
            step(&mut renewed, Some("a 2\n"), 20),
            (vec!["a".into()], vec!["b".into()], 1)
        );
        assert_eq!(
            step(&mut renewed, Some("a 3\n"), 30).1,
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_series_is_sent_with_target_and_external_labels() {
        let mut cache = SeriesCache::new(labels(&[("job", "j"), ("instance", "i")]));
        cache.generation += 1;
        let parsed = parse_scrape(
            b"x{cluster=\"own\",k=\"v\"} 1\n",
            None,
            Strictness::Prometheus,
        )
        .unwrap();
        let (samples, _, _) = cache.process(parsed, &settings(), 1).unwrap();
        let sent: Vec<(&str, &str)> = samples[0]
            .labels
            .as_slice()
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        // The series' own `cluster` wins over the external label, as in Prometheus.
        assert_eq!(
            sent,
            [
                ("__name__", "x"),
                ("cluster", "own"),
                ("instance", "i"),
                ("job", "j"),
                ("k", "v")
            ]
        );
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn the_target_wins_and_keeps_the_scraped_value_as_exported() {
        let mut scraped = labels(&[("__name__", "x"), ("job", "inner"), ("exported_job", "a")]);
        merge_target_labels(
            &mut scraped,
            &labels(&[("job", "outer"), ("instance", "h:1")]),
            false,
        );
        assert_eq!(
            scraped.into_vec(),
            labels(&[
                ("__name__", "x"),
                ("exported_exported_job", "inner"),
                ("exported_job", "a"),
                ("instance", "h:1"),
                ("job", "outer"),
            ])
            .into_vec()
        );
    }

    #[test]
    fn with_honor_labels_the_scraped_value_wins() {
        let mut scraped = labels(&[("__name__", "x"), ("job", "inner")]);
        merge_target_labels(
            &mut scraped,
            &labels(&[("job", "outer"), ("instance", "h:1")]),
            true,
        );
        assert_eq!(scraped.get("job"), Some("inner"));
        assert_eq!(scraped.get("instance"), Some("h:1"));
        assert_eq!(scraped.get("exported_job"), None);
    }
}

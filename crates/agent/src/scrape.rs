//! One scrape of one target, as Prometheus does it: the request (Prometheus' `Accept`, gzip, a
//! deadline, a body limit), the body parsed as a whole (a malformed exposition fails the scrape
//! rather than sending half of it), the target's labels merged into every sample
//! (`honor_labels`, `exported_*`), metric relabeling, the sample and label limits, and the
//! series Prometheus adds per target (`up`, `scrape_duration_seconds`,
//! `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling`).

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
}

/// A body without a limit of its own is still held to this, so one target cannot exhaust the
/// agent's memory.
const MAX_BODY_BYTES: u64 = 256 * 1024 * 1024;

/// One sample ready to be appended: labels sorted and unique, value, timestamp in ms.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Labels, `__name__` among them.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
}

/// What one scrape gave.
#[derive(Debug, Clone)]
pub struct ScrapeOutcome {
    /// The scraped samples after relabeling (none when the scrape failed).
    pub samples: Vec<Sample>,
    /// The series Prometheus adds per target: `up`, `scrape_duration_seconds`,
    /// `scrape_samples_scraped`, `scrape_samples_post_metric_relabeling`.
    pub report: Vec<Sample>,
    /// Why the scrape failed, if it did (`up` is then 0).
    pub error: Option<String>,
    /// How long it took.
    pub duration: Duration,
}

/// Scrapes `url` for the target whose labels (after relabeling, `job` and `instance` among
/// them, no `__` labels) are `target_labels`, at `now_ms`.
pub async fn scrape(
    client: &web::Client,
    url: &str,
    target_labels: &Labels,
    settings: &ScrapeSettings,
    now_ms: i64,
) -> ScrapeOutcome {
    let started = Instant::now();
    let result = fetch_and_parse(client, url, target_labels, settings, now_ms).await;
    let duration = started.elapsed();
    let (samples, scraped, error) = match result {
        Ok((samples, scraped)) => (samples, scraped, None),
        Err(error) => (Vec::new(), 0, Some(error)),
    };
    let post_relabel = samples.len();
    let up = f64::from(u8::from(error.is_none()));
    let mut report = Vec::with_capacity(4);
    for (name, value) in [
        ("up", up),
        ("scrape_duration_seconds", duration.as_secs_f64()),
        ("scrape_samples_scraped", scraped as f64),
        ("scrape_samples_post_metric_relabeling", post_relabel as f64),
    ] {
        let mut labels = target_labels.clone();
        labels.set("__name__", name);
        report.push(Sample {
            labels: labels.into_vec(),
            value,
            timestamp_ms: now_ms,
        });
    }
    ScrapeOutcome {
        samples,
        report,
        error,
        duration,
    }
}

/// The relabeled samples and how many the body held, or why the scrape fails.
async fn fetch_and_parse(
    client: &web::Client,
    url: &str,
    target_labels: &Labels,
    settings: &ScrapeSettings,
    now_ms: i64,
) -> Result<(Vec<Sample>, usize), String> {
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
    let parsed = parse_scrape(&response.body, content_type, settings.strictness)
        .map_err(|e| e.to_string())?;
    let scraped = parsed.samples.len();
    let mut samples = Vec::with_capacity(scraped);
    for sample in parsed.samples {
        let mut labels = Labels::from_pairs(sample.labels);
        labels.set("__name__", &sample.name);
        merge_target_labels(&mut labels, target_labels, settings.honor_labels);
        if !relabel::process(&mut labels, &settings.metric_relabel_configs) {
            continue;
        }
        if settings.label_limit > 0 && labels.len() > settings.label_limit {
            return Err(format!(
                "label_limit exceeded (metric: {}, number of labels: {}, limit: {})",
                labels.get("__name__").unwrap_or_default(),
                labels.len(),
                settings.label_limit
            ));
        }
        let timestamp_ms = match (settings.honor_timestamps, sample.timestamp_ms) {
            (true, Some(at)) => at,
            _ => now_ms,
        };
        samples.push(Sample {
            labels: labels.into_vec(),
            value: sample.value,
            timestamp_ms,
        });
    }
    if settings.sample_limit > 0 && samples.len() > settings.sample_limit {
        return Err(format!(
            "sample limit exceeded ({} samples, limit {})",
            samples.len(),
            settings.sample_limit
        ));
    }
    Ok((samples, scraped))
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
    use super::*;

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

//! From discovered target groups to scrape targets, as Prometheus 2.42's `PopulateLabels`
//! does it: the group's labels under the target's, the job's defaults (`job`, `__scheme__`,
//! `__metrics_path__`, `__scrape_interval__`, `__scrape_timeout__`, `__param_*`), the job's
//! `relabel_configs`, a default port for the scheme, `__meta_*` removed and `instance`
//! defaulted to the address; then the URL from `__scheme__`, `__address__`,
//! `__metrics_path__` and the `__param_*` labels.

use crate::config::ScrapeConfig;
use crate::duration::{format_duration, parse_duration};
use relabel::Labels;
use std::collections::BTreeMap;
use std::time::Duration;

/// A group of targets sharing labels, as service discovery yields it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct TargetGroup {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    /// Labels of every target of the group.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// How its targets are read; only `ecs_task_sd_configs` gives anything but HTTP.
    #[serde(skip)]
    pub source: Source,
}

/// How a target's samples are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Source {
    /// A scrape of its URL.
    #[default]
    Http,
    /// Its URL is a task metadata endpoint, read in-process into the exporter's ECS metrics.
    EcsMetadata(crate::config::EcsScope),
}

/// A target to scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The labels every sample of the target gets (`job` and `instance` among them, no `__`
    /// labels), sorted.
    pub labels: Labels,
    /// The labels before relabeling, as the status page shows them.
    pub discovered: Labels,
    /// The URL scraped.
    pub url: String,
    /// How often.
    pub interval: Duration,
    /// The deadline of each scrape.
    pub timeout: Duration,
    /// How it is read.
    pub source: Source,
}

/// What became of one discovered address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Scraped as this target.
    Kept(Target),
    /// Dropped by `relabel_configs`; its labels before relabeling.
    Dropped(Labels),
    /// Unusable (no address, a bad scheme or interval); why.
    Invalid(Labels, String),
}

/// The targets of one group of `job`.
pub fn populate_group(job: &ScrapeConfig, group: &TargetGroup) -> Vec<Outcome> {
    group
        .targets
        .iter()
        .map(|address| {
            let mut outcome = populate(job, address, &group.labels);
            if let Outcome::Kept(target) = &mut outcome {
                target.source = group.source;
                if group.source != Source::Http {
                    // A metadata endpoint is read at its own paths: no query parameters.
                    target
                        .url
                        .truncate(target.url.find('?').unwrap_or(target.url.len()));
                }
            }
            outcome
        })
        .collect()
}

/// The target of one address of a group whose labels are `group_labels`.
pub fn populate(
    job: &ScrapeConfig,
    address: &str,
    group_labels: &BTreeMap<String, String>,
) -> Outcome {
    let mut labels = Labels::from_pairs(
        group_labels
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    labels.set("__address__", address);
    let scheme = match job.scheme {
        crate::config::Scheme::Http => "http",
        crate::config::Scheme::Https => "https",
    };
    let defaults = [
        ("job", job.job_name.clone()),
        ("__scrape_interval__", format_duration(job.scrape_interval)),
        ("__scrape_timeout__", format_duration(job.scrape_timeout)),
        ("__metrics_path__", job.metrics_path.clone()),
        ("__scheme__", scheme.to_owned()),
    ];
    for (name, value) in defaults {
        if labels.get(name).is_none() {
            labels.set(name, &value);
        }
    }
    for (name, values) in &job.params {
        let label = format!("__param_{name}");
        if let Some(first) = values.first()
            && labels.get(&label).is_none()
        {
            labels.set(&label, first);
        }
    }
    let discovered = labels.clone();
    if !relabel::process(&mut labels, &job.relabel_configs) {
        return Outcome::Dropped(discovered);
    }
    match finish(job, labels) {
        Ok(target) => Outcome::Kept(Target {
            discovered,
            ..target
        }),
        Err(reason) => Outcome::Invalid(discovered, reason),
    }
}

/// Checks a relabeled target and builds what is scraped.
fn finish(job: &ScrapeConfig, mut labels: Labels) -> Result<Target, String> {
    let Some(address) = labels.get("__address__").map(str::to_owned) else {
        return Err("no address".to_owned());
    };
    let scheme = labels.get("__scheme__").unwrap_or_default().to_owned();
    let address = match (has_port(&address), scheme.as_str()) {
        (true, _) => address,
        (false, "http" | "") => format!("{address}:80"),
        (false, "https") => format!("{address}:443"),
        (false, other) => return Err(format!("invalid scheme: {other:?}")),
    };
    if !matches!(scheme.as_str(), "http" | "https") {
        return Err(format!("invalid scheme: {scheme:?}"));
    }
    if address.contains('/') {
        return Err(format!("{address:?} is not a valid hostname"));
    }
    labels.set("__address__", &address);
    let interval = duration_label(&labels, "__scrape_interval__")?;
    let timeout = duration_label(&labels, "__scrape_timeout__")?;
    if interval.is_zero() {
        return Err("scrape interval cannot be 0".to_owned());
    }
    if timeout.is_zero() {
        return Err("scrape timeout cannot be 0".to_owned());
    }
    if timeout > interval {
        return Err(format!(
            "scrape timeout cannot be greater than scrape interval ({} > {})",
            format_duration(timeout),
            format_duration(interval)
        ));
    }
    labels.retain(|name, _| !name.starts_with("__meta_"));
    if labels.get("instance").is_none() {
        labels.set("instance", &address);
    }
    let url = scrape_url(job, &labels, &scheme, &address);
    labels.retain(|name, _| !name.starts_with("__"));
    Ok(Target {
        labels,
        discovered: Labels::new(),
        url,
        interval,
        timeout,
        source: Source::Http,
    })
}

fn duration_label(labels: &Labels, name: &str) -> Result<Duration, String> {
    let text = labels.get(name).unwrap_or_default();
    parse_duration(text).map_err(|e| format!("error parsing {name} {text:?}: {e}"))
}

/// Whether `address` already ends in a port (`host:port`, `[v6]:port`).
fn has_port(address: &str) -> bool {
    match address.rsplit_once(':') {
        Some((host, port)) => {
            !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && (!host.contains(':') || (host.starts_with('[') && host.ends_with(']')))
        }
        None => false,
    }
}

/// `scheme://address/path?params`, the job's `params` with each `__param_<name>` label
/// replacing that parameter's first value (or giving it one), as Prometheus does.
fn scrape_url(job: &ScrapeConfig, labels: &Labels, scheme: &str, address: &str) -> String {
    let mut params: BTreeMap<String, Vec<String>> = job.params.clone();
    for (name, value) in labels.iter() {
        if let Some(param) = name.strip_prefix("__param_") {
            let values = params.entry(param.to_owned()).or_default();
            match values.first_mut() {
                Some(first) => *first = value.to_owned(),
                None => values.push(value.to_owned()),
            }
        }
    }
    let path = labels.get("__metrics_path__").unwrap_or_default();
    let mut url = format!("{scheme}://{address}{path}");
    let mut separator = if path.contains('?') { '&' } else { '?' };
    for (name, values) in &params {
        for value in values {
            url.push(separator);
            url.push_str(&query_escape(name));
            url.push('=');
            url.push_str(&query_escape(value));
            separator = '&';
        }
    }
    url
}

/// Go's `url.QueryEscape`: unreserved bytes kept, a space as `+`, the rest `%XX`.
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::AgentConfig;
    use std::path::Path;

    fn job(yaml: &str) -> ScrapeConfig {
        AgentConfig::parse(yaml, Path::new("/"))
            .unwrap()
            .scrape_configs
            .remove(0)
    }

    fn kept(outcome: Outcome) -> Target {
        match outcome {
            Outcome::Kept(target) => target,
            other => panic!("not kept: {other:?}"),
        }
    }

    #[test]
    fn a_static_target_gets_job_instance_and_its_url() {
        let job = job(
            "scrape_configs:\n  - job_name: app\n    scrape_interval: 15s\n    params:\n      module: [http_2xx, x]\n",
        );
        let target = kept(populate(
            &job,
            "10.0.0.1:9100",
            &BTreeMap::from([("team".into(), "a b".into())]),
        ));
        assert_eq!(
            target.labels.into_vec(),
            Labels::from_pairs([
                ("instance", "10.0.0.1:9100"),
                ("job", "app"),
                ("team", "a b")
            ])
            .into_vec()
        );
        assert_eq!(
            target.url,
            "http://10.0.0.1:9100/metrics?module=http_2xx&module=x"
        );
        assert_eq!(target.interval, Duration::from_secs(15));
        assert_eq!(target.timeout, Duration::from_secs(10));
        assert_eq!(target.discovered.get("__scrape_interval__"), Some("15s"));
    }

    #[test]
    fn relabeling_can_change_the_url_drop_or_invalidate() {
        let job = job(concat!(
            "scrape_configs:\n  - job_name: app\n    scheme: https\n    relabel_configs:\n",
            "      - {source_labels: [__meta_path], target_label: __metrics_path__}\n",
            "      - {source_labels: [__meta_module], target_label: __param_module}\n",
            "      - {source_labels: [__meta_skip], regex: 'yes', action: drop}\n",
        ));
        let group = BTreeMap::from([
            ("__meta_path".into(), "/probe".into()),
            ("__meta_module".into(), "tcp&x".into()),
        ]);
        let target = kept(populate(&job, "example.com", &group));
        assert_eq!(target.url, "https://example.com:443/probe?module=tcp%26x");
        assert_eq!(target.labels.get("instance"), Some("example.com:443"));
        assert_eq!(target.labels.get("__meta_path"), None);

        let mut skip = group.clone();
        skip.insert("__meta_skip".into(), "yes".into());
        assert!(matches!(populate(&job, "h:1", &skip), Outcome::Dropped(_)));

        let bad = BTreeMap::from([("__scrape_interval__".into(), "5s".into())]);
        assert!(
            matches!(populate(&job, "h:1", &bad), Outcome::Invalid(_, reason) if reason.contains("greater than scrape interval"))
        );
    }

    #[test]
    fn ports_are_recognised() {
        assert!(has_port("h:1"));
        assert!(has_port("[::1]:80"));
        assert!(!has_port("h"));
        assert!(!has_port("::1"));
        assert!(!has_port("[::1]"));
    }
}

//! Scrape targets as Prometheus' file_sd and http_sd read them: a list of
//! `{"targets": ["host:port"], "labels": {...}}` groups, here one target per group so every
//! endpoint carries its own labels.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One scrape endpoint and its labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TargetGroup {
    /// `host:port`, always exactly one.
    pub targets: Vec<String>,
    /// Target labels, `__meta_*` labels and `__metrics_path__` / `__scheme__`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl TargetGroup {
    /// A group for `host:port` with no labels yet.
    pub fn new(host: &str, port: u16) -> Self {
        let address = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        TargetGroup {
            targets: vec![address],
            labels: BTreeMap::new(),
        }
    }

    /// Sets `name` to `value` unless the value is empty (Prometheus treats an empty label as
    /// absent anyway).
    pub fn label(&mut self, name: &str, value: &str) {
        if !value.is_empty() {
            self.labels.insert(name.to_owned(), value.to_owned());
        }
    }

    /// Sets `prefix` + the sanitized `key` to `value`, for docker labels, tags and attributes.
    pub fn meta_label(&mut self, prefix: &str, key: &str, value: &str) {
        self.label(&format!("{prefix}{}", sanitize_label_name(key)), value);
    }

    /// The scrape path, when it is not Prometheus' default `/metrics`.
    pub fn metrics_path(&mut self, path: &str) {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        if path != "/metrics" {
            self.label("__metrics_path__", &path);
        }
    }
}

/// A label name made of `[a-zA-Z0-9_]` (every other character becomes `_`), as Prometheus'
/// own service discoveries turn tags into `__meta_*` names.
pub fn sanitize_label_name(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The number of targets in a file_sd document, if it is one.
pub fn count(json: &str) -> Option<usize> {
    serde_json::from_str::<Vec<TargetGroup>>(json)
        .ok()
        .map(|groups| groups.iter().map(|g| g.targets.len()).sum())
}

/// The JSON document Prometheus reads, sorted so equal target lists give equal bytes.
pub fn render(groups: &[TargetGroup]) -> String {
    let mut sorted: Vec<&TargetGroup> = groups.iter().collect();
    sorted.sort();
    let mut out = String::from("[");
    for (i, group) in sorted.iter().enumerate() {
        out.push_str(if i == 0 { "\n  " } else { ",\n  " });
        // Serializing strings and string maps cannot fail.
        out.push_str(&serde_json::to_string(group).unwrap_or_default());
    }
    out.push_str(if sorted.is_empty() { "]\n" } else { "\n]\n" });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_sorted_groups_prometheus_can_read() {
        let mut b = TargetGroup::new("10.0.0.2", 9779);
        b.label("task_id", "b");
        b.metrics_path("metrics");
        let mut a = TargetGroup::new("10.0.0.1", 3000);
        a.meta_label("__meta_ecs_docker_label_", "com.example/team", "x");
        a.metrics_path("/stats");
        a.label("empty", "");
        let rendered = render(&[b, a]);
        assert_eq!(
            rendered,
            "[\n  {\"targets\":[\"10.0.0.1:3000\"],\"labels\":{\"__meta_ecs_docker_label_com_example_team\":\"x\",\"__metrics_path__\":\"/stats\"}},\n  \
             {\"targets\":[\"10.0.0.2:9779\"],\"labels\":{\"task_id\":\"b\"}}\n]\n"
        );
        assert_eq!(render(&[]), "[]\n");
        assert_eq!(TargetGroup::new("fd00::1", 80).targets, ["[fd00::1]:80"]);
    }
}

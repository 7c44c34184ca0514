//! The application's own metrics: `http_requests_total{method,path,status}` and the histogram
//! `request_duration_milliseconds{path}`, with label values limited to a fixed set so that
//! unknown paths cannot create new series.

use exposition::{Family, MetricType};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Upper bounds of the latency buckets, in milliseconds: fine below 100 ms for fast endpoints,
/// and 500, 1000, 2500 and 5000 for the thresholds users chart.
pub const BUCKETS_MS: [f64; 12] = [
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0,
];

/// The paths the application serves; anything else is counted as `other`.
pub const PATHS: [&str; 6] = [
    "/work",
    "/health",
    "/api/data",
    "/external",
    "/error",
    "/metrics",
];

/// The label value for a request path.
pub fn path_label(path: &str) -> &'static str {
    PATHS
        .iter()
        .find(|known| **known == path)
        .copied()
        .unwrap_or("other")
}

/// The label value for a request method: the standard methods, else `other`.
pub fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::PATCH => "PATCH",
        _ => "other",
    }
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS_MS.len()],
    sum_ms: f64,
    count: u64,
}

/// Request counts and latencies.
#[derive(Default)]
pub struct RequestMetrics {
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    durations: Mutex<BTreeMap<&'static str, Histogram>>,
}

impl RequestMetrics {
    /// Records one finished request.
    pub fn observe(&self, method: &'static str, path: &'static str, status: u16, duration_ms: f64) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests.entry((method, path, status)).or_default() += 1;
        }
        if let Ok(mut durations) = self.durations.lock() {
            let histogram = durations.entry(path).or_default();
            if let Some(bucket) = BUCKETS_MS.iter().position(|bound| duration_ms <= *bound) {
                histogram.counts[bucket] += 1;
            }
            histogram.sum_ms += duration_ms;
            histogram.count += 1;
        }
    }

    /// The two families, in the text format's terms.
    pub fn families(&self) -> Vec<Family> {
        let mut requests = Family::new(
            "http_requests_total",
            "HTTP requests served, by method, path and status code.",
            MetricType::Counter,
        );
        if let Ok(counts) = self.requests.lock() {
            for ((method, path, status), count) in counts.iter() {
                let labels = vec![
                    ("method", (*method).to_owned()),
                    ("path", (*path).to_owned()),
                    ("status", status.to_string()),
                ];
                requests.push(labels, *count as f64);
            }
        }
        let mut durations = Family::new(
            "request_duration_milliseconds",
            "Time to serve a request, in milliseconds, by path.",
            MetricType::Histogram,
        );
        if let Ok(histograms) = self.durations.lock() {
            for (path, histogram) in histograms.iter() {
                let mut cumulative = 0;
                let buckets: Vec<(f64, u64)> = BUCKETS_MS
                    .iter()
                    .zip(histogram.counts)
                    .map(|(bound, count)| {
                        cumulative += count;
                        (*bound, cumulative)
                    })
                    .collect();
                durations.push_histogram(
                    &[("path", (*path).to_owned())],
                    &buckets,
                    histogram.sum_ms,
                    histogram.count,
                );
            }
        }
        vec![requests, durations]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_include_the_documented_thresholds() {
        for threshold in [500.0, 1000.0, 2500.0, 5000.0] {
            assert!(BUCKETS_MS.contains(&threshold));
        }
        let metrics = RequestMetrics::default();
        for ms in [0.5, 3.0, 700.0, 9000.0] {
            metrics.observe("GET", "/work", 200, ms);
        }
        let mut text = String::new();
        exposition::encode(&metrics.families(), &mut text);
        assert!(
            text.contains("request_duration_milliseconds_bucket{path=\"/work\",le=\"1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("request_duration_milliseconds_bucket{path=\"/work\",le=\"5\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("request_duration_milliseconds_bucket{path=\"/work\",le=\"1000\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("request_duration_milliseconds_bucket{path=\"/work\",le=\"5000\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("request_duration_milliseconds_bucket{path=\"/work\",le=\"+Inf\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("request_duration_milliseconds_sum{path=\"/work\"} 9703.5\n"),
            "{text}"
        );
        assert!(
            text.contains("http_requests_total{method=\"GET\",path=\"/work\",status=\"200\"} 4\n"),
            "{text}"
        );
    }

    #[test]
    fn unknown_paths_and_methods_share_one_label_value() {
        assert_eq!(path_label("/work"), "/work");
        assert_eq!(path_label("/wp-admin.php"), "other");
        assert_eq!(path_label("/work/../x"), "other");
        assert_eq!(
            method_label(&http::Method::from_bytes(b"BREW").expect("a method")),
            "other"
        );
    }
}

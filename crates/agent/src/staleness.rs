//! What a target's last scrape had, so that series which disappear end as Prometheus ends them:
//! a stale marker (the NaN Prometheus reserves for it) for every series of the previous scrape
//! that the new one lacks (a failed scrape lacks all of them), and for every series and report
//! series of a target that goes away. It also counts the series a scrape adds
//! (`scrape_series_added`).

use crate::scrape::Sample;
use std::collections::HashSet;

/// The series of a target's last scrape.
#[derive(Debug, Default)]
pub struct SeriesTracker {
    scraped: HashSet<Vec<(String, String)>>,
    report: HashSet<Vec<(String, String)>>,
}

impl SeriesTracker {
    /// Takes one scrape's samples (`scraped`, empty when the scrape failed) and the target's
    /// report series; returns the stale markers to append at `now_ms` and how many scraped
    /// series are new since the previous scrape.
    pub fn observe(
        &mut self,
        scraped: &[Sample],
        report: &[Sample],
        now_ms: i64,
    ) -> (Vec<Sample>, usize) {
        let current: HashSet<Vec<(String, String)>> =
            scraped.iter().map(|s| s.labels.clone()).collect();
        let added = current.difference(&self.scraped).count();
        let mut gone: Vec<&Vec<(String, String)>> = self.scraped.difference(&current).collect();
        gone.sort();
        let markers = gone
            .into_iter()
            .map(|labels| marker(labels, now_ms))
            .collect();
        self.scraped = current;
        self.report = report.iter().map(|s| s.labels.clone()).collect();
        (markers, added)
    }

    /// The target went away: a stale marker for each of its series and report series.
    pub fn end(&mut self, now_ms: i64) -> Vec<Sample> {
        let mut all: Vec<Vec<(String, String)>> =
            self.scraped.drain().chain(self.report.drain()).collect();
        all.sort();
        all.iter().map(|labels| marker(labels, now_ms)).collect()
    }
}

fn marker(labels: &[(String, String)], now_ms: i64) -> Sample {
    Sample {
        labels: labels.to_vec(),
        value: remote_write::stale_marker(),
        timestamp_ms: now_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Sample {
        Sample {
            labels: vec![("__name__".to_owned(), name.to_owned())],
            value: 1.0,
            timestamp_ms: 0,
        }
    }

    fn names(samples: &[Sample]) -> Vec<&str> {
        samples.iter().map(|s| s.labels[0].1.as_str()).collect()
    }

    #[test]
    fn disappearing_series_get_a_stale_marker_and_new_ones_are_counted() {
        let mut tracker = SeriesTracker::default();
        let up = [sample("up")];
        let (markers, added) = tracker.observe(&[sample("a"), sample("b")], &up, 10);
        assert_eq!((markers.len(), added), (0, 2));
        let (markers, added) = tracker.observe(&[sample("b"), sample("c")], &up, 20);
        assert_eq!((names(&markers), added), (vec!["a"], 1));
        assert_eq!(markers[0].timestamp_ms, 20);
        assert!(remote_write::is_stale_marker(markers[0].value));
        // A failed scrape has no series: every one of the last scrape ends.
        let (markers, added) = tracker.observe(&[], &up, 30);
        assert_eq!((names(&markers), added), (vec!["b", "c"], 0));
        // A target that goes away ends its report series too.
        tracker.observe(&[sample("d")], &up, 40);
        assert_eq!(names(&tracker.end(50)), ["d", "up"]);
        assert!(tracker.end(60).is_empty());
    }
}

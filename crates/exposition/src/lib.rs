//! Prometheus text exposition format (version 0.0.4): metric families, escaping, number
//! formatting, the standard `process_*` metrics that every exporter serves, a simple reader of
//! the format ([`parse`]) and the scraper's reader of both text formats, 0.0.4 and
//! OpenMetrics 1.0 ([`scrape`]).

pub mod parse;
pub mod process;
pub mod scrape;

pub use parse::{ParseError, ParsedSample, parse_samples};
pub use process::families as process_families;
pub use scrape::{
    FamilyMetadata, FamilyType, Format, OPENMETRICS_CONTENT_TYPE, SCRAPE_ACCEPT, Scrape,
    ScrapeError, ScrapedSample, Strictness, parse_openmetrics, parse_scrape, parse_text,
};

use std::fmt::Write as _;

/// The `Content-Type` of the classic text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The kind of a metric family, as written on its `# TYPE` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// A value that only goes up (or resets to zero when its source restarts).
    Counter,
    /// A value that can go up and down.
    Gauge,
    /// Observations counted in cumulative buckets, with `_bucket`, `_sum` and `_count` samples.
    Histogram,
}

impl MetricType {
    fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

/// One sample: its label pairs (in the order given) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Appended to the family name: `""`, or `_bucket`, `_sum`, `_count` in a histogram.
    pub suffix: &'static str,
    /// Label names and values. Names must be valid Prometheus label names.
    pub labels: Vec<(&'static str, String)>,
    /// The sample value.
    pub value: f64,
}

/// A metric family: one name, one help text, one type, any number of samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The metric name.
    pub name: &'static str,
    /// The help text (escaped when written).
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: MetricType,
    /// The samples, written in this order.
    pub samples: Vec<Sample>,
}

impl Family {
    /// An empty family.
    pub fn new(name: &'static str, help: &'static str, kind: MetricType) -> Self {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    /// Adds a sample.
    pub fn push(&mut self, labels: Vec<(&'static str, String)>, value: f64) {
        self.samples.push(Sample {
            suffix: "",
            labels,
            value,
        });
    }

    /// Adds one histogram series: a `_bucket` sample per upper bound (cumulative counts, `le`
    /// label added after `labels`, `+Inf` last), then `_sum` and `_count`.
    pub fn push_histogram(
        &mut self,
        labels: &[(&'static str, String)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) {
        for (upper_bound, cumulative) in buckets {
            let mut le = String::new();
            write_value(*upper_bound, &mut le);
            let mut with_le = labels.to_vec();
            with_le.push(("le", le));
            self.samples.push(Sample {
                suffix: "_bucket",
                labels: with_le,
                value: *cumulative as f64,
            });
        }
        let mut with_le = labels.to_vec();
        with_le.push(("le", "+Inf".to_owned()));
        self.samples.push(Sample {
            suffix: "_bucket",
            labels: with_le,
            value: count as f64,
        });
        self.samples.push(Sample {
            suffix: "_sum",
            labels: labels.to_vec(),
            value: sum,
        });
        self.samples.push(Sample {
            suffix: "_count",
            labels: labels.to_vec(),
            value: count as f64,
        });
    }
}

/// Writes every family that has at least one sample, in the order given.
///
/// Families without samples are left out entirely, so a metric that does not apply (a task
/// without a CPU limit, say) produces no `# HELP` line either.
pub fn encode(families: &[Family], out: &mut String) {
    for family in families.iter().filter(|f| !f.samples.is_empty()) {
        out.push_str("# HELP ");
        out.push_str(family.name);
        out.push(' ');
        escape(family.help, false, out);
        out.push_str("\n# TYPE ");
        out.push_str(family.name);
        out.push(' ');
        out.push_str(family.kind.as_str());
        out.push('\n');
        for sample in &family.samples {
            out.push_str(family.name);
            out.push_str(sample.suffix);
            if !sample.labels.is_empty() {
                out.push('{');
                for (i, (name, value)) in sample.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(name);
                    out.push_str("=\"");
                    escape(value, true, out);
                    out.push('"');
                }
                out.push('}');
            }
            out.push(' ');
            write_value(sample.value, out);
            out.push('\n');
        }
    }
}

/// Escapes a help text (`quotes` false: backslash and newline) or a label value (`quotes`
/// true: double quotes too), as the text format requires.
fn escape(text: &str, quotes: bool, out: &mut String) {
    let special = |b: u8| b == b'\\' || b == b'\n' || (quotes && b == b'"');
    if !text.bytes().any(special) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Writes a sample value the way Prometheus parses it: `+Inf`, `-Inf`, `NaN`, or the
/// shortest decimal that reads back as the same `f64`.
pub fn write_value(value: f64, out: &mut String) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        // Most samples are whole numbers (bytes, packets); integer formatting is several
        // times cheaper than the float algorithm and writes the same digits. The cast is
        // exact below 2^53.
        let _ = write!(out, "{}", value as i64);
    } else {
        // Display for f64 is the shortest representation that round-trips, never in
        // exponent form; writing into a String cannot fail.
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(families: &[Family]) -> String {
        let mut out = String::new();
        encode(families, &mut out);
        out
    }

    #[test]
    fn writes_help_type_and_samples_and_skips_empty_families() {
        let mut a = Family::new("a_total", "Counts \\ things\nwell.", MetricType::Counter);
        a.push(vec![("x", "1".into()), ("y", "q\"\\\n".into())], 3.0);
        a.push(vec![], 0.5);
        let empty = Family::new("b", "never shown", MetricType::Gauge);
        assert_eq!(
            render(&[a, empty]),
            "# HELP a_total Counts \\\\ things\\nwell.\n# TYPE a_total counter\n\
             a_total{x=\"1\",y=\"q\\\"\\\\\\n\"} 3\na_total 0.5\n"
        );
    }

    #[test]
    fn writes_histograms_with_cumulative_buckets() {
        let mut h = Family::new("latency_milliseconds", "Latency.", MetricType::Histogram);
        h.push_histogram(&[("path", "/a".into())], &[(10.0, 1), (2.5, 3)], 12.5, 4);
        assert_eq!(
            render(&[h]),
            "# HELP latency_milliseconds Latency.\n# TYPE latency_milliseconds histogram\n\
             latency_milliseconds_bucket{path=\"/a\",le=\"10\"} 1\n\
             latency_milliseconds_bucket{path=\"/a\",le=\"2.5\"} 3\n\
             latency_milliseconds_bucket{path=\"/a\",le=\"+Inf\"} 4\n\
             latency_milliseconds_sum{path=\"/a\"} 12.5\n\
             latency_milliseconds_count{path=\"/a\"} 4\n"
        );
    }

    #[test]
    fn formats_special_and_large_values() {
        let cases = [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (0.33292849999999996, "0.33292849999999996"),
            (u64::MAX as f64, "18446744073709552000"),
            (1e-7, "0.0000001"),
        ];
        for (value, expected) in cases {
            let mut out = String::new();
            write_value(value, &mut out);
            assert_eq!(out, expected);
        }
    }

    proptest::proptest! {
        #[test]
        fn every_finite_value_reads_back_exactly(value in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
            let mut out = String::new();
            write_value(value, &mut out);
            let parsed: f64 = out.parse().map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{out}: {e}")))?;
            // Equal as numbers: -0 is written as 0.
            proptest::prop_assert_eq!(parsed, value);
        }
    }
}

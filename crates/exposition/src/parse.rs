//! Reads the text exposition format back into samples, for the tools that compute with what
//! they scrape (the demo's live summary).
//!
//! Comment, `# HELP` and `# TYPE` lines are skipped; the per-sample timestamp is read and
//! dropped.

use std::fmt;

/// One sample line: the full series name (histogram suffix included), its labels in the
/// order written, and the value.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    /// Metric name, with `_bucket`, `_sum`, `_count` or `_total` as written.
    pub name: String,
    /// Label names and unescaped values.
    pub labels: Vec<(String, String)>,
    /// The value; `NaN`, `+Inf` and `-Inf` included.
    pub value: f64,
}

impl ParsedSample {
    /// The value of label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(label, _)| label == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Why a body is not in the text format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The line, counted from 1.
    pub line: usize,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// Every sample in `text`, in order.
pub fn parse_samples(text: &str) -> Result<Vec<ParsedSample>, ParseError> {
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let sample = parse_line(line).map_err(|reason| ParseError {
            line: index + 1,
            reason,
        })?;
        samples.push(sample);
    }
    Ok(samples)
}

fn parse_line(line: &str) -> Result<ParsedSample, &'static str> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("expected a metric name");
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = parse_labels(after_brace, &mut labels)?;
    }
    let mut fields = rest.split([' ', '\t']).filter(|field| !field.is_empty());
    let value = fields.next().ok_or("expected a value")?;
    let value = parse_value(value).ok_or("the value is not a number")?;
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|_| "the timestamp is not an integer")?;
    }
    if fields.next().is_some() {
        return Err("unexpected text after the timestamp");
    }
    Ok(ParsedSample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Parses `name="value",...}` and returns what follows the closing brace.
fn parse_labels<'a>(
    mut rest: &'a str,
    labels: &mut Vec<(String, String)>,
) -> Result<&'a str, &'static str> {
    loop {
        rest = rest.trim_start_matches([' ', '\t']);
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("unterminated label set")?;
        let name = &rest[..name_end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err("expected a label name");
        }
        rest = rest[name_end..].trim_start_matches([' ', '\t']);
        rest = rest
            .strip_prefix('=')
            .ok_or("expected '=' after a label name")?;
        rest = rest.trim_start_matches([' ', '\t']);
        rest = rest
            .strip_prefix('"')
            .ok_or("expected a quoted label value")?;
        let (value, after) = unescape_label_value(rest)?;
        labels.push((name.to_owned(), value));
        rest = after.trim_start_matches([' ', '\t']);
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma;
        } else if !rest.starts_with('}') {
            return Err("expected ',' or '}' after a label");
        }
    }
}

/// Reads a label value up to its closing quote: the unescaped value and the text after it.
fn unescape_label_value(text: &str) -> Result<(String, &str), &'static str> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &text[index + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                _ => return Err("invalid escape in a label value"),
            },
            c => value.push(c),
        }
    }
    Err("unterminated label value")
}

/// Go's `ParseFloat` spellings that Prometheus writes, plus plain decimals.
fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if text.starts_with(|c: char| c.is_ascii_digit() || "+-.".contains(c)) => {
            text.parse().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Family, MetricType, encode};
    use proptest::prelude::*;

    fn pairs(labels: &[(&str, &str)]) -> Vec<(String, String)> {
        labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reads_the_shapes_prometheus_clients_write() {
        let text = "# HELP x_total Things.\n# TYPE x_total counter\n\
                    x_total 3\n\
                    x_total{a=\"1\",b=\"two words\"} 4.5e3 1700000000000\n\
                    \n\
                    h_bucket{le=\"+Inf\",} +Inf\n\
                    g{path=\"/a\\\\b \\\"q\\\"\\n\"}\t-Inf\n\
                    n NaN\n";
        let samples = parse_samples(text).expect("valid");
        assert_eq!(samples.len(), 5);
        assert_eq!(samples[0].name, "x_total");
        assert_eq!(samples[0].value, 3.0);
        assert_eq!(samples[1].labels, pairs(&[("a", "1"), ("b", "two words")]));
        assert_eq!(samples[1].value, 4500.0);
        assert_eq!(samples[2].label("le"), Some("+Inf"));
        assert_eq!(samples[2].value, f64::INFINITY);
        assert_eq!(samples[3].label("path"), Some("/a\\b \"q\"\n"));
        assert_eq!(samples[3].value, f64::NEG_INFINITY);
        assert!(samples[4].value.is_nan());
    }

    #[test]
    fn says_which_line_is_wrong() {
        for (text, line) in [
            ("ok 1\nbad\n", 2),
            ("x{a=\"1\" 2\n", 1),
            ("x{a=1} 2\n", 1),
            ("x{a=\"\\q\"} 2\n", 1),
            ("x 1 2 3\n", 1),
            ("x one\n", 1),
            ("x 1 1.5\n", 1),
            ("# c\n{a=\"1\"} 2\n", 2),
            ("x{a=\"1\"\n", 1),
        ] {
            let error = parse_samples(text).expect_err(text);
            assert_eq!(error.line, line, "{text:?}: {error}");
        }
    }

    proptest! {
        /// Whatever the writer writes, the reader reads back unchanged.
        #[test]
        fn reads_back_what_encode_writes(
            values in proptest::collection::vec(
                (".{0,12}", prop_oneof![any::<f64>(), Just(f64::INFINITY), Just(0.5)]),
                1..8,
            )
        ) {
            let mut family = Family::new("roundtrip_total", "Help \\ text\nwith lines.", MetricType::Counter);
            for (label, value) in &values {
                family.push(vec![("label", label.clone())], *value);
            }
            let mut text = String::new();
            encode(&[family], &mut text);
            let samples = parse_samples(&text).expect("encode writes valid text");
            prop_assert_eq!(samples.len(), values.len());
            for (sample, (label, value)) in samples.iter().zip(&values) {
                prop_assert_eq!(sample.name.as_str(), "roundtrip_total");
                prop_assert_eq!(sample.label("label"), Some(label.as_str()));
                prop_assert!(sample.value == *value || (sample.value.is_nan() && value.is_nan()));
            }
        }
    }
}

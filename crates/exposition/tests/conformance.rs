//! The OpenMetrics parser conformance suite (fixtures/openmetrics-parsers): every case read in
//! both verdict modes, Prometheus mode against the verdicts recorded from a real Prometheus
//! 2.42, Specification mode against the suite's own `shouldParse`.

// Test helpers outside test functions: a missing fixture should stop the test loudly.
#![allow(clippy::expect_used)]

use exposition::{Strictness, parse_scrape};
use std::path::{Path, PathBuf};

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0";

fn cases_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/openmetrics-parsers")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The boolean after `"key": ` in `json`, searching from `from`. The two files read here
/// have a fixed, simple shape; reading them by hand keeps the crate free of a JSON dependency.
fn json_bool(json: &str, from: usize, key: &str) -> Option<bool> {
    let needle = format!("\"{key}\": ");
    let at = from + json[from..].find(&needle)? + needle.len();
    let rest = &json[at..];
    if rest.starts_with("true") {
        Some(true)
    } else if rest.starts_with("false") {
        Some(false)
    } else {
        None
    }
}

/// The string after `"key": ` in `json` from `from`, escapes reduced to the escaped character
/// (enough for a message shown on failure).
fn json_string(json: &str, from: usize, key: &str) -> Option<String> {
    let needle = format!("\"{key}\": \"");
    let at = from + json[from..].find(&needle)? + needle.len();
    let mut out = String::new();
    let mut chars = json[at..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

struct Case {
    name: String,
    body: Vec<u8>,
    should_parse: bool,
    prometheus_accepts: bool,
    prometheus_error: String,
}

fn cases() -> Vec<Case> {
    let dir = cases_dir();
    let verdicts = read(&dir.join("prometheus-2.42-verdicts.json"));
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fixtures folder") {
        let path = entry.expect("entry").path();
        if !path.is_dir() {
            continue;
        }
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let test = read(&path.join("test.json"));
        let at = verdicts
            .find(&format!("\"{name}\": {{"))
            .unwrap_or_else(|| panic!("{name}: no recorded verdict"));
        cases.push(Case {
            body: std::fs::read(path.join("metrics")).expect("metrics file"),
            should_parse: json_bool(&test, 0, "shouldParse").expect("shouldParse"),
            prometheus_accepts: json_bool(&verdicts, at, "accepted").expect("accepted"),
            prometheus_error: json_string(&verdicts, at, "error").expect("error"),
            name,
        });
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

#[test]
fn the_suite_is_complete() {
    let cases = cases();
    assert_eq!(cases.len(), 211);
    assert_eq!(cases.iter().filter(|c| c.should_parse).count(), 44);
    assert_eq!(cases.iter().filter(|c| c.prometheus_accepts).count(), 115);
    // Prometheus accepts every good case; what it accepts beyond them is semantics.
    assert!(
        cases
            .iter()
            .all(|c| !c.should_parse || c.prometheus_accepts)
    );
    let negative = cases.iter().find(|c| c.name == "bad_counter_values_1");
    assert!(negative.is_some_and(|c| c.prometheus_accepts && !c.should_parse));
    let blank = cases.iter().find(|c| c.name == "bad_blank_line");
    assert!(blank.is_some_and(|c| c.prometheus_error.contains("not a valid start token")));
}

#[test]
fn prometheus_mode_gives_prometheus_2_42_verdict_on_every_case() {
    let mut mismatches = Vec::new();
    for case in cases() {
        let result = parse_scrape(&case.body, Some(CONTENT_TYPE), Strictness::Prometheus);
        if result.is_ok() != case.prometheus_accepts {
            mismatches.push(format!(
                "{}: prometheus {} ({}), we {:?}",
                case.name,
                if case.prometheus_accepts {
                    "accepts"
                } else {
                    "rejects"
                },
                case.prometheus_error,
                result.map(|s| s.samples.len())
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn specification_mode_gives_the_suite_verdict_on_every_case() {
    let mut mismatches = Vec::new();
    for case in cases() {
        let result = parse_scrape(&case.body, Some(CONTENT_TYPE), Strictness::Specification);
        if result.is_ok() != case.should_parse {
            mismatches.push(format!(
                "{}: should {}, we {:?}",
                case.name,
                if case.should_parse { "parse" } else { "fail" },
                result.map(|s| s.samples.len())
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// A rejection names a line of the body; line numbers count from 1.
#[test]
fn every_rejection_names_a_line_within_the_body() {
    for case in cases() {
        for strictness in [Strictness::Prometheus, Strictness::Specification] {
            if let Err(error) = parse_scrape(&case.body, Some(CONTENT_TYPE), strictness) {
                let lines = case.body.split(|&b| b == b'\n').count();
                assert!(
                    error.line >= 1 && error.line <= lines,
                    "{}: {error} (body has {lines} lines)",
                    case.name
                );
            }
        }
    }
}

//! The task and stats parsers on real captures of the metadata endpoint with one value changed:
//! a number too large for an `f64` in any field costs that field, never the document.

// Test helpers fail the test on any unexpected error.
#![allow(clippy::expect_used)]

use ecs_metadata::{ContainerStats, Task, parse_stats, parse_tasks};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::LazyLock;

const FARGATE_TASK: &str =
    include_str!("../../../fixtures/ecs-metadata/ecs_exporter-fargate_task_metadata.json");
const FARGATE_STATS: &str =
    include_str!("../../../fixtures/ecs-metadata/ecs_exporter-fargate_task_stats.json");
const EC2_TASK: &str =
    include_str!("../../../fixtures/ecs-metadata/ecs_exporter-ec2_task_metadata.json");
const EC2_STATS: &str =
    include_str!("../../../fixtures/ecs-metadata/ecs_exporter-ec2_task_stats.json");
const WINDOWS_TASK: &str =
    include_str!("../../../fixtures/ecs-metadata/ecs-prom-windows_task_metadata.json");
const WINDOWS_STATS: &str =
    include_str!("../../../fixtures/ecs-metadata/integrations-core-ecs_fargate-stats_windows.json");
const INSTANCE_TASKS: &str =
    include_str!("../../../fixtures/ecs-metadata/otel-instance_tasks_metadata.json");
const INSTANCE_STATS: &str =
    include_str!("../../../fixtures/ecs-metadata/otel-instance_tasks_stats.json");

/// `text` with its one occurrence of `field` (a `"Key": value` pair as the file spells it)
/// given `value` instead.
fn with(text: &str, field: &str, value: &str) -> String {
    assert_eq!(
        text.matches(field).count(),
        1,
        "{field} once in the fixture"
    );
    let key = &field[..=field.find(':').expect("a key and a value")];
    text.replacen(field, &format!("{key} {value}"), 1)
}

fn task(text: &str) -> Task {
    let mut tasks = parse_tasks(text.as_bytes()).expect("a task document");
    assert_eq!(tasks.len(), 1);
    tasks.remove(0)
}

fn stats(text: &str) -> HashMap<String, ContainerStats> {
    parse_stats(text.as_bytes()).expect("a stats document")
}

const OUT_OF_RANGE: [&str; 4] = ["1e400", "-1e400", "1E+309", "-2.5e99999999999"];

#[test]
fn an_out_of_range_task_limit_reads_as_missing_and_leaves_the_rest() {
    let mut expected = task(FARGATE_TASK);
    assert_eq!(expected.cpu_limit_vcpus, Some(0.25));
    expected.cpu_limit_vcpus = None;
    for number in OUT_OF_RANGE {
        assert_eq!(
            task(&with(FARGATE_TASK, "\"CPU\": 0.25", number)),
            expected,
            "{number}"
        );
    }
}

#[test]
fn an_out_of_range_integer_field_reads_as_missing_and_a_large_one_as_its_value() {
    let original = task(WINDOWS_TASK);
    assert_eq!(original.containers[0].restart_count, Some(2.0));
    let huge_integer = "1".repeat(400);
    for number in ["1e400", "-1e400", huge_integer.as_str()] {
        let mut expected = original.clone();
        expected.containers[0].restart_count = None;
        assert_eq!(
            task(&with(WINDOWS_TASK, "\"RestartCount\": 2", number)),
            expected,
            "{number}"
        );
    }
    // Every model number is an f64, so 1e30 in an integer field is a value, not an error.
    let mut expected = original.clone();
    expected.containers[0].restart_count = Some(1e30);
    assert_eq!(
        task(&with(WINDOWS_TASK, "\"RestartCount\": 2", "1e30")),
        expected
    );
    let mut expected = task(FARGATE_TASK);
    expected.containers[0].exit_code = Some(1e30);
    assert_eq!(
        task(&with(
            FARGATE_TASK,
            "\"ExitCode\": 0",
            "1000000000000000000000000000000"
        )),
        expected
    );
}

#[test]
fn an_out_of_range_stats_counter_reads_as_missing_and_leaves_the_rest() {
    let original = stats(EC2_STATS);
    let (docker_id, interface) = original
        .iter()
        .find_map(|(id, s)| {
            let (name, _) = s
                .networks
                .iter()
                .find(|(_, n)| n.rx_bytes == Some(101_869.0))?;
            Some((id.clone(), name.clone()))
        })
        .expect("the fixture's counter");
    for number in OUT_OF_RANGE {
        let mut expected = original.clone();
        let container = expected.get_mut(&docker_id).expect("stats");
        for (name, counters) in &mut container.networks {
            if *name == interface {
                counters.rx_bytes = None;
            }
        }
        assert_eq!(
            stats(&with(EC2_STATS, "\"rx_bytes\": 101869", number)),
            expected,
            "{number}"
        );
    }
}

/// Every number in the document, as a path of keys and indices from the root.
fn number_paths(value: &Value, path: &mut Vec<Value>, paths: &mut Vec<Vec<Value>>) {
    match value {
        Value::Number(_) => paths.push(path.clone()),
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                path.push(index.into());
                number_paths(item, path, paths);
                path.pop();
            }
        }
        Value::Object(entries) => {
            for (key, item) in entries {
                path.push(key.as_str().into());
                number_paths(item, path, paths);
                path.pop();
            }
        }
        _ => {}
    }
}

/// The document text with the number at `path` written as `number`.
fn replaced(document: &Value, path: &[Value], number: &str) -> String {
    const MARK: &str = "\u{1}the number\u{1}";
    let mut document = document.clone();
    let mut at = &mut document;
    for step in path {
        at = match step {
            Value::String(key) => &mut at[key.as_str()],
            step => &mut at[step.as_u64().expect("an index") as usize],
        };
    }
    *at = MARK.into();
    document
        .to_string()
        .replace(&Value::from(MARK).to_string(), number)
}

/// A JSON number: integers of up to ~420 digits, fractions, exponents small, near the edge of
/// an `f64` and beyond `i32`.
fn json_number() -> impl Strategy<Value = String> {
    let integer = prop_oneof![
        Just("0".to_owned()),
        (1u64.., 0usize..420).prop_map(|(n, zeros)| format!("{n}{}", "0".repeat(zeros))),
    ];
    let fraction = proptest::option::of(any::<u32>().prop_map(|f| format!(".{f}")));
    let exponent = proptest::option::of((
        prop_oneof![Just("e"), Just("E"), Just("e+"), Just("E-"), Just("e-")],
        prop_oneof![0u64..40, 280u64..340, 1_000_000_000u64..],
    ));
    (any::<bool>(), integer, fraction, exponent).prop_map(
        |(negative, integer, fraction, exponent)| {
            format!(
                "{}{integer}{}{}",
                if negative { "-" } else { "" },
                fraction.unwrap_or_default(),
                exponent
                    .map(|(e, digits)| format!("{e}{digits}"))
                    .unwrap_or_default()
            )
        },
    )
}

/// One fixture: its text, its JSON and the path of each of its numbers.
type Fixture = (&'static str, Value, Vec<Vec<Value>>);

static DOCUMENTS: LazyLock<Vec<Fixture>> = LazyLock::new(|| {
    [
        FARGATE_TASK,
        FARGATE_STATS,
        EC2_TASK,
        EC2_STATS,
        WINDOWS_TASK,
        WINDOWS_STATS,
        INSTANCE_TASKS,
        INSTANCE_STATS,
    ]
    .into_iter()
    .map(|text| {
        let document: Value = serde_json::from_str(text).expect("fixtures are JSON");
        let mut paths = Vec::new();
        number_paths(&document, &mut Vec::new(), &mut paths);
        assert!(!paths.is_empty());
        (text, document, paths)
    })
    .collect()
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    /// Any number in any place of a real document: the document still parses; a number too
    /// large for an `f64` reads exactly as `null` there would.
    #[test]
    fn a_number_anywhere_never_costs_the_document(
        which in any::<prop::sample::Index>(),
        place in any::<prop::sample::Index>(),
        number in json_number(),
    ) {
        let (text, document, paths) = &DOCUMENTS[which.index(DOCUMENTS.len())];
        let path = &paths[place.index(paths.len())];
        let changed = replaced(document, path, &number);
        let as_null = replaced(document, path, "null");
        let out_of_range = serde_json::from_str::<f64>(&number).is_err();
        if text.contains("\"Containers\"") {
            let tasks = parse_tasks(changed.as_bytes());
            prop_assert!(tasks.is_ok(), "{number} at {path:?}: {tasks:?}");
            if out_of_range {
                prop_assert_eq!(tasks.ok(), parse_tasks(as_null.as_bytes()).ok());
            }
        } else {
            let map = parse_stats(changed.as_bytes());
            prop_assert!(map.is_ok(), "{number} at {path:?}: {map:?}");
            if out_of_range {
                prop_assert_eq!(map.ok(), parse_stats(as_null.as_bytes()).ok());
            }
        }
    }
}

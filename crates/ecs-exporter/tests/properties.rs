//! Property tests: no document the endpoint could send makes the exporter panic, whether
//! entirely arbitrary JSON or a real capture with parts replaced by arbitrary values.

// Test helpers fail the test on any unexpected error.
#![allow(clippy::expect_used)]

use ecs_exporter::Scope;
use ecs_exporter::upstream::checked_tasks;
use ecs_exporter::{Inputs, SharedInterfaces, ecs_families};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::HashSet;

/// Field names the parser looks for, so that arbitrary documents reach deep code paths.
const KEYS: &[&str] = &[
    "Cluster",
    "TaskARN",
    "Revision",
    "Limits",
    "CPU",
    "Memory",
    "Containers",
    "DockerId",
    "Name",
    "Type",
    "KnownStatus",
    "ExitCode",
    "RestartCount",
    "Health",
    "status",
    "Networks",
    "NetworkMode",
    "PullStartedAt",
    "StartedAt",
    "ClockDrift",
    "ClockErrorBound",
    "EphemeralStorageMetrics",
    "memory_stats",
    "usage",
    "stats",
    "cache",
    "file",
    "inactive_file",
    "total_inactive_file",
    "privateworkingset",
    "cpu_stats",
    "cpu_usage",
    "total_usage",
    "blkio_stats",
    "io_service_bytes_recursive",
    "op",
    "value",
    "storage_stats",
    "networks",
    "eth0",
    "rx_bytes",
    "pids_stats",
    "current",
    "read",
    "a",
    "b",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![Just(u64::MAX), Just(9_223_372_036_854_771_712u64)].prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("STOPPED".to_owned()),
            Just("NORMAL".to_owned()),
            Just("awsvpc".to_owned()),
            Just("bridge".to_owned()),
            Just("HEALTHY".to_owned()),
            Just("read".to_owned()),
            Just("2025-02-27T05:09:52.332595252Z".to_owned()),
            Just("0001-01-01T00:00:00Z".to_owned()),
            ".{0,12}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 96, 8, |inner| {
        let key = prop_oneof![
            proptest::sample::select(KEYS).prop_map(str::to_owned),
            "[a-z\"\\\\\n{}]{0,6}"
        ];
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((key, inner), 0..8)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// Runs the whole scrape path on two documents, in both scopes and both metadata states.
fn scrape(task_document: &Value, stats_document: &Value) {
    let parsed =
        ecs_metadata::parse_tasks(task_document.to_string().as_bytes()).unwrap_or_default();
    let stats = ecs_metadata::parse_stats(stats_document.to_string().as_bytes()).ok();
    for scope in [Scope::Task, Scope::Instance] {
        // The tasks a scrape would use, as the upstream reader checks them.
        let tasks = checked_tasks(parsed.clone(), scope).unwrap_or_default();
        for tasks_current in [true, false] {
            let families = ecs_families(
                &Inputs {
                    tasks: &tasks,
                    tasks_current,
                    stats: stats.as_ref(),
                    scope,
                },
                &mut SharedInterfaces::default(),
            );
            let mut out = String::new();
            exposition::encode(&families, &mut out);
            let mut series = HashSet::new();
            for line in out.lines().filter(|l| !l.starts_with('#')) {
                assert!(line.starts_with("ecs_"), "unexpected line {line:?}");
                // Everything before the value names the series; each may appear once.
                let (name_and_labels, _) = line.rsplit_once(' ').expect("a value");
                assert!(
                    series.insert(name_and_labels.to_owned()),
                    "duplicate series {name_and_labels}"
                );
            }
        }
    }
}

/// Replaces the value at a pseudo-random path of `document` with `replacement`: each step
/// picks a child (modulo the number of children); a leaf ends the walk early.
fn replace_somewhere(at: &mut Value, steps: &[usize], replacement: Value) {
    let children = match at {
        Value::Object(map) => map.len(),
        Value::Array(items) => items.len(),
        _ => 0,
    };
    let Some((step, rest)) = steps.split_first().filter(|_| children > 0) else {
        *at = replacement;
        return;
    };
    let child = match at {
        Value::Object(map) => map.values_mut().nth(step % children),
        Value::Array(items) => items.get_mut(step % children),
        _ => None,
    };
    if let Some(child) = child {
        replace_somewhere(child, rest, replacement);
    }
}

const PAIRS: &[(&str, &str)] = &[
    (
        include_str!("../../../fixtures/ecs-metadata/ecs_exporter-fargate_task_metadata.json"),
        include_str!("../../../fixtures/ecs-metadata/ecs_exporter-fargate_task_stats.json"),
    ),
    (
        include_str!("../../../fixtures/ecs-metadata/ecs_exporter-ec2_task_metadata.json"),
        include_str!("../../../fixtures/ecs-metadata/ecs_exporter-ec2_task_stats.json"),
    ),
    (
        include_str!("../../../fixtures/ecs-metadata/otel-instance_tasks_metadata.json"),
        include_str!("../../../fixtures/ecs-metadata/otel-instance_tasks_stats.json"),
    ),
    (
        include_str!("../../../fixtures/ecs-metadata/ecs-prom-windows_task_metadata.json"),
        include_str!(
            "../../../fixtures/ecs-metadata/integrations-core-ecs_fargate-stats_windows.json"
        ),
    ),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(task in json(), stats in json()) {
        scrape(&task, &stats);
    }

    #[test]
    fn captures_with_arbitrary_parts_never_panic(
        pair in 0..PAIRS.len(),
        mutations in proptest::collection::vec((proptest::collection::vec(any::<usize>(), 0..7), json(), any::<bool>()), 1..6),
    ) {
        let (task_text, stats_text) = PAIRS[pair];
        let mut task: Value = serde_json::from_str(task_text).expect("fixture parses");
        let mut stats: Value = serde_json::from_str(stats_text).expect("fixture parses");
        for (steps, replacement, in_stats) in mutations {
            let target = if in_stats { &mut stats } else { &mut task };
            replace_somewhere(target, &steps, replacement);
        }
        scrape(&task, &stats);
    }

    #[test]
    fn any_text_body_is_rejected_or_parsed_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = ecs_metadata::parse_tasks(&body);
        let _ = ecs_metadata::parse_stats(&body);
    }
}

#[test]
fn deeply_nested_documents_are_an_error_not_a_stack_overflow() {
    for open in ["[", "{\"Containers\":", "{\"a\":{\"memory_stats\":"] {
        let body = open.repeat(100_000);
        assert!(ecs_metadata::parse_tasks(body.as_bytes()).is_err());
        assert!(ecs_metadata::parse_stats(body.as_bytes()).is_err());
    }
}

//! Golden snapshots of the ECS metrics for every captured fixture, checked three ways: against
//! the reviewed snapshot files, by `promtool check metrics`, and by an independent computation
//! of every value (`independent_check.py`), which also compares with ecs_exporter v0.4's own
//! golden output.

// Test helpers fail the test on any unexpected error.
#![allow(clippy::expect_used)]

use ecs_exporter::Scope;
use ecs_exporter::{Inputs, SharedInterfaces, ecs_families};
use std::path::{Path, PathBuf};
use std::process::Command;

/// (snapshot name, metadata fixture, stats fixture, scope). `independent_check.py` keeps a
/// table of its own.
const CASES: &[(&str, &str, &str, Scope)] = &[
    (
        "ecs_exporter-ec2",
        "ecs_exporter-ec2_task_metadata.json",
        "ecs_exporter-ec2_task_stats.json",
        Scope::Task,
    ),
    (
        "ecs_exporter-fargate",
        "ecs_exporter-fargate_task_metadata.json",
        "ecs_exporter-fargate_task_stats.json",
        Scope::Task,
    ),
    (
        "otel-ec2-bridge",
        "otel-task_metadata.json",
        "otel-task_stats.json",
        Scope::Task,
    ),
    (
        "otel-fargate-exited",
        "otel-task_metadata2.json",
        "otel-task_stats2.json",
        Scope::Task,
    ),
    (
        "aws-docs-ec2-awsvpc",
        "aws-docs-ec2-awsvpc-task_metadata.json",
        "aws-docs-ec2-awsvpc-task_stats.json",
        Scope::Task,
    ),
    (
        "windows-fargate",
        "ecs-prom-windows_task_metadata.json",
        "integrations-core-ecs_fargate-stats_windows.json",
        Scope::Task,
    ),
    (
        "managed-instances",
        "otel-instance_tasks_metadata.json",
        "otel-instance_tasks_stats.json",
        Scope::Instance,
    ),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/ecs-metadata")
}

fn snapshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

fn read_fixture(name: &str) -> Vec<u8> {
    let path = fixtures().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn render(metadata: &str, stats: &str, scope: Scope) -> String {
    let tasks = ecs_metadata::parse_tasks(&read_fixture(metadata)).expect("fixture tasks parse");
    let stats = ecs_metadata::parse_stats(&read_fixture(stats)).expect("fixture stats parse");
    let families = ecs_families(
        &Inputs {
            tasks: &tasks,
            tasks_current: true,
            stats: Some(&stats),
            scope,
        },
        &mut SharedInterfaces::default(),
    );
    let mut out = String::new();
    exposition::encode(&families, &mut out);
    out
}

#[test]
fn metrics_match_the_reviewed_snapshots() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut mismatches = Vec::new();
    for (name, metadata, stats, scope) in CASES {
        let rendered = render(metadata, stats, *scope);
        let path = snapshots().join(format!("{name}.prom"));
        if update {
            std::fs::write(&path, &rendered).expect("snapshot written");
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if rendered != expected {
            mismatches.push(format!(
                "{name}: rendered output differs from {}\n{rendered}",
                path.display()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{}\n(review, then rerun with UPDATE_SNAPSHOTS=1)",
        mismatches.join("\n")
    );
}

#[test]
fn snapshots_pass_promtool_without_a_warning() {
    for (name, ..) in CASES {
        let path = snapshots().join(format!("{name}.prom"));
        let body = std::fs::read(&path).expect("snapshot exists");
        if let Err(said) = test_support::promtool_check_metrics(&body) {
            panic!("{name}: promtool said:\n{said}");
        }
    }
}

#[test]
fn snapshot_values_agree_with_an_independent_computation() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/independent_check.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg(fixtures())
        .arg(snapshots())
        .output()
        .expect("python3 runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "independent check failed:\n{said}");
    assert!(said.contains("checked 7 snapshots"), "{said}");
}

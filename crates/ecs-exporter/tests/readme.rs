//! The exporter's reference (docs/exporter.md) lists every metric the exporter can serve.

// Test helpers fail the test on any unexpected error.
#![allow(clippy::expect_used)]

use ecs_exporter::ECS_METRICS;

#[test]
fn the_reference_documents_every_metric() {
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/exporter.md"
    ))
    .expect("docs/exporter.md");
    let self_metrics = [
        "ecs_exporter_build_info",
        "ecs_exporter_collector_success",
        "ecs_exporter_collector_duration_seconds",
    ];
    let names = ECS_METRICS.iter().map(|m| m.name).chain(self_metrics);
    let missing: Vec<&str> = names
        .filter(|name| !readme.contains(&format!("| `{name}` |")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/exporter.md has no table row for {missing:?}"
    );
}

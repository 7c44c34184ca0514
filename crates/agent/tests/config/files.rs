//! Realistic configurations: the repository's own, and some written for the agent.

use crate::{ok, refused};
use agent::AgentConfig;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus")
}

/// Configurations an agent user would write, every one accepted by promtool too.
pub const WRITTEN: &[&str] = &[
    // Discovery's file_sd output to AMP with an explicit identity.
    "global:
  scrape_interval: 15s
  external_labels:
    cluster: prod
    source: ecs-prom-agent
scrape_configs:
  - job_name: ecs
    file_sd_configs:
      - files: [/var/run/ecs-prom/targets/*.json]
        refresh_interval: 30s
    relabel_configs:
      - source_labels: [__meta_cloudmap_service_name]
        regex: (.+)
        target_label: job
      - regex: __meta_ecs_(.+)
        action: labelmap
    metric_relabel_configs:
      - source_labels: [__name__]
        regex: go_gc_.*
        action: drop
    sample_limit: 50000
    label_limit: 64
    body_size_limit: 50MB
remote_write:
  - url: https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-0123/api/v1/remote_write
    name: amp
    sigv4:
      region: us-east-1
      role_arn: arn:aws:iam::123456789012:role/amp-writer
    queue_config:
      max_samples_per_send: 1000
      max_shards: 20
      capacity: 2500
      retry_on_http_429: true
",
    // A sidecar scraping its task over https with bearer credentials, to two receivers.
    "scrape_configs:
  - job_name: app
    scrape_interval: 10s
    scrape_timeout: 5s
    scheme: https
    metrics_path: /internal/metrics
    params:
      format: [prometheus]
    honor_labels: true
    authorization:
      credentials: s3cr3t
    tls_config:
      server_name: app.internal
      insecure_skip_verify: true
    static_configs:
      - targets: [localhost:8443]
        labels:
          container: app
  - job_name: envoy
    metrics_path: /stats/prometheus
    honor_timestamps: false
    static_configs:
      - targets: [localhost:9901]
remote_write:
  - url: http://victoria:8428/api/v1/write
    remote_timeout: 10s
    headers:
      X-Scope-OrgID: tenant-1
    write_relabel_configs:
      - regex: container
        action: labeldrop
  - url: https://prom.example/api/v1/write
    basic_auth:
      username: writer
      password: hunter2
",
    // http_sd from discovery, every duration form.
    "global:
  scrape_interval: 1m30s
  scrape_timeout: 500ms
scrape_configs:
  - job_name: ecs
    http_sd_configs:
      - url: http://localhost:9001/prometheus-targets
        refresh_interval: 1h
  - job_name: slow
    scrape_interval: 2w
    scrape_timeout: 1w
  - job_name: yearly
    scrape_interval: 1y
",
];

#[test]
fn the_amp_deployment_configuration_is_read() {
    let config = AgentConfig::load(&deploy_dir().join("prometheus-amp.yml")).unwrap();
    assert_eq!(config.global.scrape_interval, Duration::from_secs(30));
    assert_eq!(config.global.scrape_timeout, Duration::from_secs(10));
    assert_eq!(config.global.external_labels["collector"], "prometheus-ecs");
    let jobs: Vec<_> = config
        .scrape_configs
        .iter()
        .map(|j| j.job_name.as_str())
        .collect();
    assert_eq!(jobs, ["ecs", "ecs-prom-discovery"]);
    let ecs = &config.scrape_configs[0];
    assert_eq!(
        ecs.http_sd_configs[0].url,
        "http://localhost:9001/prometheus-targets"
    );
    assert_eq!(
        ecs.http_sd_configs[0].refresh_interval,
        Duration::from_secs(30)
    );
    assert_eq!(ecs.relabel_configs.len(), 2);
    assert_eq!(ecs.relabel_configs[1].replacement(), "ecs-exporter");
    assert_eq!(
        config.scrape_configs[1].static_configs[0].targets,
        ["localhost:9001"]
    );
    let remote = &config.remote_write[0];
    assert_eq!(
        remote.url,
        "https://aps-workspaces.REGION.amazonaws.com/workspaces/WORKSPACE_ID/api/v1/remote_write"
    );
    assert_eq!(
        remote.sigv4.as_ref().unwrap().region.as_deref(),
        Some("REGION")
    );
    let queue = &remote.queue_config;
    assert_eq!(
        (queue.max_samples_per_send, queue.max_shards, queue.capacity),
        (1000, 200, 2500)
    );
}

#[test]
fn deployment_configurations_for_a_full_prometheus_name_what_the_agent_lacks() {
    // Both use evaluation_interval and rule_files, which belong to a Prometheus server
    // evaluating rules; the first one found is named.
    for (name, line) in [("prometheus-file-sd.yml", 6), ("prometheus-http-sd.yml", 7)] {
        let error = AgentConfig::load(&deploy_dir().join(name)).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "global.evaluation_interval (line {line}): unknown field `evaluation_interval`, expected one of scrape_interval, scrape_timeout, external_labels"
            ),
            "{name}"
        );
    }
    // Without those two fields they are within the subset; rule_files is refused too.
    for (name, rules_line) in [("prometheus-file-sd.yml", 7), ("prometheus-http-sd.yml", 8)] {
        let text = std::fs::read_to_string(deploy_dir().join(name)).unwrap();
        let trimmed = without_rules(&text);
        let only_rules = text.replace("  evaluation_interval: 30s\n", "");
        let (field, line, message) = refused(&only_rules);
        assert_eq!(
            (field.as_str(), line),
            ("rule_files", rules_line),
            "{name}: {message}"
        );
        let config = ok(&trimmed);
        assert_eq!(config.scrape_configs.len(), 2, "{name}");
    }
}

/// `text` without `evaluation_interval` and `rule_files` (and its list).
pub fn without_rules(text: &str) -> String {
    let mut out = String::new();
    let mut in_rules = false;
    for line in text.lines() {
        if line.starts_with("rule_files:") {
            in_rules = true;
            continue;
        }
        if in_rules && line.starts_with("  - ") {
            continue;
        }
        in_rules = false;
        if line.trim_start().starts_with("evaluation_interval:") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn written_configurations_are_read() {
    let configs: Vec<AgentConfig> = WRITTEN.iter().map(|text| ok(text)).collect();
    assert_eq!(configs[0].scrape_configs[0].body_size_limit, 50 << 20);
    assert_eq!(
        configs[0].scrape_configs[0].file_sd_configs[0].refresh_interval,
        Duration::from_secs(30)
    );
    assert!(configs[0].remote_write[0].queue_config.retry_on_http_429);
    assert_eq!(
        configs[1].scrape_configs[0].scrape_timeout,
        Duration::from_secs(5)
    );
    assert_eq!(
        configs[1].scrape_configs[1].scrape_timeout,
        Duration::from_secs(10)
    );
    assert_eq!(configs[1].remote_write.len(), 2);
    assert_eq!(configs[2].global.scrape_timeout, Duration::from_millis(500));
    assert_eq!(
        configs[2].scrape_configs[1].scrape_timeout,
        Duration::from_secs(7 * 86400)
    );
    assert_eq!(
        configs[2].scrape_configs[2].scrape_interval,
        Duration::from_secs(365 * 86400)
    );
    // The global timeout applies where it is shorter than the job's interval.
    assert_eq!(
        configs[2].scrape_configs[2].scrape_timeout,
        Duration::from_millis(500)
    );
}

//! Every supported field read, and every default applied.

use crate::ok;
use agent::{Scheme, Secret};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn an_empty_file_has_prometheus_defaults() {
    for text in ["", "# nothing\n", "{}\n", "global:\n"] {
        let config = ok(text);
        assert_eq!(config.global.scrape_interval, MINUTE, "{text:?}");
        assert_eq!(config.global.scrape_timeout, secs(10));
        assert!(config.global.external_labels.is_empty());
        assert!(config.scrape_configs.is_empty());
        assert!(config.remote_write.is_empty());
    }
}

#[test]
fn global_fields_are_read() {
    let config = ok("global:
  scrape_interval: 15s
  scrape_timeout: 5s
  external_labels:
    cluster: prod
    region: eu-west-1
    empty:
");
    assert_eq!(config.global.scrape_interval, secs(15));
    assert_eq!(config.global.scrape_timeout, secs(5));
    let labels: BTreeMap<String, String> =
        [("cluster", "prod"), ("region", "eu-west-1"), ("empty", "")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
    assert_eq!(config.global.external_labels, labels);
}

#[test]
fn a_global_interval_under_10s_shortens_the_default_timeout() {
    let config = ok("global:\n  scrape_interval: 5s\n");
    assert_eq!(config.global.scrape_timeout, secs(5));
    // 0 means "not set", as in Prometheus.
    let config = ok("global:\n  scrape_interval: 0\n  scrape_timeout: 0s\n");
    assert_eq!(config.global.scrape_interval, MINUTE);
    assert_eq!(config.global.scrape_timeout, secs(10));
}

#[test]
fn a_minimal_scrape_config_takes_every_default() {
    let config = ok("scrape_configs:\n  - job_name: app\n");
    let job = &config.scrape_configs[0];
    assert_eq!(job.job_name, "app");
    assert_eq!(job.scrape_interval, MINUTE);
    assert_eq!(job.scrape_timeout, secs(10));
    assert_eq!(job.metrics_path, "/metrics");
    assert_eq!(job.scheme, Scheme::Http);
    assert!(job.params.is_empty());
    assert!(!job.honor_labels);
    assert!(job.honor_timestamps);
    assert!(job.static_configs.is_empty());
    assert!(job.file_sd_configs.is_empty());
    assert!(job.http_sd_configs.is_empty());
    assert!(job.relabel_configs.is_empty());
    assert!(job.metric_relabel_configs.is_empty());
    assert_eq!(
        (job.sample_limit, job.label_limit, job.body_size_limit),
        (0, 0, 0)
    );
    assert_eq!(job.http, agent::HttpClientConfig::default());
}

#[test]
fn scrape_intervals_and_timeouts_follow_prometheus() {
    let config = ok("global:
  scrape_interval: 30s
  scrape_timeout: 20s
scrape_configs:
  - job_name: inherits
  - job_name: short
    scrape_interval: 15s
  - job_name: own
    scrape_interval: 1m30s
    scrape_timeout: 1m
  - job_name: equal
    scrape_interval: 500ms
    scrape_timeout: 500ms
");
    let timing: Vec<_> = config
        .scrape_configs
        .iter()
        .map(|j| (j.scrape_interval, j.scrape_timeout))
        .collect();
    assert_eq!(
        timing,
        [
            (secs(30), secs(20)),
            // The global timeout is longer than this interval: the interval is the timeout.
            (secs(15), secs(15)),
            (secs(90), MINUTE),
            (Duration::from_millis(500), Duration::from_millis(500)),
        ]
    );
}

#[test]
fn every_scrape_field_is_read() {
    let config = ok("scrape_configs:
  - job_name: full
    metrics_path: /probe
    scheme: https
    params:
      module: [http_2xx]
      target: [a, b]
    honor_labels: true
    honor_timestamps: false
    static_configs:
      - targets: [10.0.0.1:9100, 'host.example:8080']
        labels:
          env: prod
      - targets: []
    file_sd_configs:
      - files: [targets/*.json, /abs/one.yml]
      - files: [two.yaml]
        refresh_interval: 1m
    http_sd_configs:
      - url: http://localhost:9001/prometheus-targets
      - url: https://sd.example/targets?x=1
        refresh_interval: 2m
    relabel_configs:
      - source_labels: [__meta_x]
        target_label: x
    metric_relabel_configs:
      - regex: go_.*
        source_labels: [__name__]
        action: drop
      - action: labeldrop
        regex: tmp
    sample_limit: 1000
    label_limit: 30
    body_size_limit: 10MB
");
    let job = &config.scrape_configs[0];
    assert_eq!(job.metrics_path, "/probe");
    assert_eq!(job.scheme, Scheme::Https);
    assert_eq!(job.params["module"], ["http_2xx"]);
    assert_eq!(job.params["target"], ["a", "b"]);
    assert!(job.honor_labels);
    assert!(!job.honor_timestamps);
    assert_eq!(job.static_configs.len(), 2);
    assert_eq!(
        job.static_configs[0].targets,
        ["10.0.0.1:9100", "host.example:8080"]
    );
    assert_eq!(job.static_configs[0].labels["env"], "prod");
    assert!(job.static_configs[1].targets.is_empty());
    assert_eq!(
        job.file_sd_configs[0].files,
        [
            PathBuf::from("/etc/prometheus/targets/*.json"),
            PathBuf::from("/abs/one.yml")
        ]
    );
    assert_eq!(job.file_sd_configs[0].refresh_interval, secs(300));
    assert_eq!(
        job.file_sd_configs[1].files,
        [PathBuf::from("/etc/prometheus/two.yaml")]
    );
    assert_eq!(job.file_sd_configs[1].refresh_interval, MINUTE);
    assert_eq!(
        job.http_sd_configs[0].url,
        "http://localhost:9001/prometheus-targets"
    );
    assert_eq!(job.http_sd_configs[0].refresh_interval, MINUTE);
    assert_eq!(job.http_sd_configs[1].url, "https://sd.example/targets?x=1");
    assert_eq!(job.http_sd_configs[1].refresh_interval, secs(120));
    assert_eq!(job.relabel_configs.len(), 1);
    assert_eq!(job.relabel_configs[0].target_label(), "x");
    assert_eq!(job.metric_relabel_configs.len(), 2);
    assert_eq!(
        job.metric_relabel_configs[0].action(),
        relabel::Action::Drop
    );
    assert_eq!(job.metric_relabel_configs[1].regex(), "tmp");
    assert_eq!(job.sample_limit, 1000);
    assert_eq!(job.label_limit, 30);
    assert_eq!(job.body_size_limit, 10 * 1024 * 1024);
}

#[test]
fn http_client_fields_are_read_and_files_resolved_against_the_config_directory() {
    let dir = crate::scratch("http-fields");
    for file in ["password", "token", "ca.pem", "client.pem", "client.key"] {
        std::fs::write(dir.join(file), "x").unwrap();
    }
    let config = agent::AgentConfig::parse(
        "scrape_configs:
  - job_name: basic
    basic_auth:
      username: alice
      password_file: password
    tls_config:
      ca_file: ca.pem
      cert_file: client.pem
      key_file: client.key
      server_name: app.internal
      insecure_skip_verify: true
  - job_name: inline
    basic_auth:
      username: bob
      password: secret
  - job_name: bearer
    authorization:
      credentials_file: token
  - job_name: custom
    authorization:
      type: Token
      credentials: abc
",
        &dir,
    )
    .unwrap();
    let jobs = &config.scrape_configs;
    let basic = jobs[0].http.basic_auth.as_ref().unwrap();
    assert_eq!(basic.username, "alice");
    assert_eq!(basic.password, Secret::File(dir.join("password")));
    let tls = &jobs[0].http.tls_config;
    assert_eq!(tls.ca_file.as_deref(), Some(dir.join("ca.pem").as_path()));
    assert_eq!(
        tls.cert_file.as_deref(),
        Some(dir.join("client.pem").as_path())
    );
    assert_eq!(
        tls.key_file.as_deref(),
        Some(dir.join("client.key").as_path())
    );
    assert_eq!(tls.server_name.as_deref(), Some("app.internal"));
    assert!(tls.insecure_skip_verify);
    let inline = jobs[1].http.basic_auth.as_ref().unwrap();
    assert_eq!(inline.password, Secret::Value("secret".to_owned()));
    // Secrets never show in debug output.
    assert!(!format!("{:?}", jobs[1]).contains("secret"));
    let bearer = jobs[2].http.authorization.as_ref().unwrap();
    assert_eq!(bearer.kind, "Bearer");
    assert_eq!(bearer.credentials, Secret::File(dir.join("token")));
    let custom = jobs[3].http.authorization.as_ref().unwrap();
    assert_eq!(
        (custom.kind.as_str(), &custom.credentials),
        ("Token", &Secret::Value("abc".to_owned()))
    );
    assert_eq!(jobs[1].http.tls_config, agent::TlsConfig::default());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_minimal_remote_write_takes_prometheus_defaults() {
    let config = ok("remote_write:\n  - url: http://receiver:8428/api/v1/write\n");
    let remote = &config.remote_write[0];
    assert_eq!(remote.url, "http://receiver:8428/api/v1/write");
    assert_eq!(remote.name, "");
    assert_eq!(remote.remote_timeout, secs(30));
    assert!(remote.headers.is_empty());
    assert!(remote.write_relabel_configs.is_empty());
    let queue = &remote.queue_config;
    assert_eq!(
        (
            queue.capacity,
            queue.min_shards,
            queue.max_shards,
            queue.max_samples_per_send
        ),
        (2500, 1, 200, 500)
    );
    assert_eq!(queue.batch_send_deadline, secs(5));
    assert_eq!(queue.min_backoff, Duration::from_millis(30));
    assert_eq!(queue.max_backoff, secs(5));
    assert!(queue.retry_on_http_429);
    assert!(remote.sigv4.is_none());
    assert_eq!(remote.http, agent::HttpClientConfig::default());
}

#[test]
fn every_remote_write_field_is_read() {
    let config = ok("remote_write:
  - url: https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write
    name: amp
    remote_timeout: 1m
    headers:
      X-Scope-OrgID: team-a
    write_relabel_configs:
      - source_labels: [__name__]
        regex: expensive_.*
        action: drop
    queue_config:
      capacity: 10000
      min_shards: 2
      max_shards: 50
      max_samples_per_send: 2000
      batch_send_deadline: 10s
      min_backoff: 100ms
      max_backoff: 10s
      retry_on_http_429: true
    sigv4:
      region: eu-west-1
      access_key: AKIDEXAMPLE
      secret_key: wJalrXUtnFEMI
      profile: monitoring
      role_arn: arn:aws:iam::123456789012:role/writer
  - url: http://second:9090/api/v1/write
    name: second
    basic_auth: {username: u, password: p}
");
    let remote = &config.remote_write[0];
    assert_eq!(remote.name, "amp");
    assert_eq!(remote.remote_timeout, MINUTE);
    assert_eq!(remote.headers["X-Scope-OrgID"], "team-a");
    assert_eq!(remote.write_relabel_configs.len(), 1);
    let queue = &remote.queue_config;
    assert_eq!(
        (
            queue.capacity,
            queue.min_shards,
            queue.max_shards,
            queue.max_samples_per_send
        ),
        (10000, 2, 50, 2000)
    );
    assert_eq!(queue.batch_send_deadline, secs(10));
    assert_eq!(queue.min_backoff, Duration::from_millis(100));
    assert_eq!(queue.max_backoff, secs(10));
    assert!(queue.retry_on_http_429);
    let sigv4 = remote.sigv4.as_ref().unwrap();
    assert_eq!(sigv4.region.as_deref(), Some("eu-west-1"));
    assert_eq!(sigv4.access_key.as_deref(), Some("AKIDEXAMPLE"));
    assert_eq!(sigv4.secret_key.as_deref(), Some("wJalrXUtnFEMI"));
    assert_eq!(sigv4.profile.as_deref(), Some("monitoring"));
    assert_eq!(
        sigv4.role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/writer")
    );
    // Secrets never show in debug output.
    let shown = format!("{config:?}");
    assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
    assert!(shown.contains("password: Secret(<redacted>)"), "{shown}");
    let second = &config.remote_write[1];
    assert_eq!(second.http.basic_auth.as_ref().unwrap().username, "u");
    assert!(second.sigv4.is_none());
}

#[test]
fn durations_and_sizes_use_prometheus_syntax() {
    for (text, expected) in [
        ("1m30s", secs(90)),
        ("500ms", Duration::from_millis(500)),
        ("1h", secs(3600)),
        ("2d", secs(2 * 86400)),
        ("1w", secs(7 * 86400)),
        ("1y", secs(365 * 86400)),
    ] {
        let config = ok(&format!(
            "global:\n  scrape_interval: 2y\n  scrape_timeout: {text}\n"
        ));
        assert_eq!(config.global.scrape_timeout, expected, "{text}");
    }
    for (text, bytes) in [
        ("512KB", 512 << 10),
        ("1GiB", 1 << 30),
        ("0", 0),
        ("1MB512KB", (1 << 20) + (512 << 10)),
        ("1.5MB", 3 << 19),
        // Prometheus reads a negative size as no limit.
        ("-1MB", 0),
    ] {
        let config = ok(&format!(
            "scrape_configs:\n  - job_name: a\n    body_size_limit: {text}\n"
        ));
        assert_eq!(config.scrape_configs[0].body_size_limit, bytes, "{text}");
    }
}

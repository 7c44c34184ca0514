//! The differential check: every configuration these tests read is also put to Debian's
//! `promtool check config` (Prometheus 2.42). What the agent accepts promtool accepts, and
//! what promtool refuses the agent refuses. The one allowed difference is a field Prometheus
//! knows and the agent does not support, listed here.

use crate::files::{WRITTEN, deploy_dir, without_rules};
use agent::AgentConfig;
use std::path::Path;
use std::process::Command;

const PROMTOOL: &str = "/usr/bin/promtool";

/// What Prometheus 2.42 accepts at load and the agent refuses: (field as the error names it,
/// what the error says). Every one must show up in the cases below, so the list cannot go
/// stale.
const UNSUPPORTED_BUT_VALID: &[(&str, &str)] = &[
    // Fields outside the agent's subset.
    (
        "global.evaluation_interval",
        "unknown field `evaluation_interval`",
    ),
    ("rule_files", "unknown field `rule_files`"),
    (
        "scrape_configs[0].dns_sd_configs",
        "unknown field `dns_sd_configs`",
    ),
    (
        "scrape_configs[0].tls_config.min_version",
        "unknown field `min_version`",
    ),
    // Prometheus 2.42 takes any scheme at load, and then fails every scrape of the job.
    ("scrape_configs[0].scheme", "unknown variant `ftp`"),
    // Likewise any remote-write URL, which then fails every send.
    (
        "remote_write[0].url",
        "URL scheme must be 'http' or 'https'",
    ),
];

/// Accepted configurations beyond the written ones and the error table's.
const MORE_ACCEPTED: &[&str] = &[
    "",
    "global:\n  scrape_interval: 5s\n",
    "global:\n  scrape_interval: 0\n  scrape_timeout: 0s\n",
    "scrape_configs:\n  - job_name: app\n",
    "global:\n  scrape_interval: 30s\n  scrape_timeout: 20s\nscrape_configs:\n  - job_name: a\n  - job_name: b\n    scrape_interval: 15s\n",
    "remote_write:\n  - url: http://receiver:8428/api/v1/write\n",
    "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: []\n      - targets: [a:1]\n        labels: {empty: }\n",
    "remote_write:\n  - url: http://a/w\n    name: x\n  - url: http://b/w\n    name: y\n  - url: http://c/w\n",
    "remote_write:\n  - url: http://a/w\n    sigv4: {}\n",
    "scrape_configs:\n  - job_name: a\n    body_size_limit: 1GB512MB\n    sample_limit: 0\n",
    // Files named but not there that promtool does not require at load.
    "scrape_configs:\n  - job_name: a\n    basic_auth:\n      username: u\n      password_file: missing\n    tls_config:\n      ca_file: missing-ca.pem\n",
];

/// Edge cases, each accepted or refused by both.
const EDGES: &[&str] = &[
    "scrape_configs:\n  - job_name: a\n    http_sd_configs:\n      - url: 'http:///targets'\n",
    "scrape_configs:\n  - null\n",
    "remote_write:\n  - null\n",
    "scrape_configs:\n  - job_name: a\n    authorization:\n      type: Bearer\n",
    "scrape_configs:\n  - job_name: a\n    authorization:\n      type: basic\n",
    "scrape_configs:\n  - job_name: a\n    basic_auth:\n      password: p\n",
    "global:\n  external_labels:\n    __reserved: x\n",
    "scrape_configs:\n  - job_name: a\n    static_configs:\n      - labels:\n          __address__: x\n",
    "scrape_configs:\n  - job_name: a\n    params:\n      q: []\n",
    "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: []\n",
    "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - refresh_interval: 1m\n",
    "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: ['dir/*.json', 'x*y.yml']\n",
    "scrape_configs:\n  - job_name: a\n    http_sd_configs:\n      - url: http://sd/t\n        refresh_interval: 0s\n",
    "remote_write:\n  - url: http://a/w\n    headers:\n      x-prometheus-remote-write-version: '2'\n",
    "remote_write:\n  - url: http://a/w\n    sigv4:\n      secret_key: s\n",
    "remote_write:\n  - url: http://a/w\n    authorization:\n      credentials: t\n    sigv4: {}\n",
    "remote_write:\n  - url: http://a/w\n    queue_config:\n      min_shards: 10\n      max_shards: 2\n",
    "remote_write:\n  - url: http://a/w\n    name: ''\n  - url: http://b/w\n    name: ''\n",
    "remote_write:\n  - url: http://a/w\n  - url: http://a/w\n",
    "scrape_configs:\n  - job_name: a\n    tls_config:\n      key_file: k.pem\n",
    "scrape_configs:\n  - job_name: a\n    scrape_interval: 1m\n    scrape_timeout: 0s\n",
    "global:\n  scrape_interval: 1x1\n",
    "global:\n  scrape_interval: 1h1h\n",
    "global:\n  scrape_interval: 1.5s\n",
    "global:\n  scrape_interval: 300000y\n",
    "scrape_configs:\n  - job_name: a\n    body_size_limit: 10mb\n",
    "scrape_configs:\n  - job_name: a\n    body_size_limit: 1.5MB\n",
    "scrape_configs:\n  - job_name: a\n    body_size_limit: 10KiB\n",
    "scrape_configs:\n  - job_name: a\n    body_size_limit: 10B\n",
    "scrape_configs:\n  - job_name: a\n    body_size_limit: .5KB\n",
    "scrape_configs:\n  - job_name: a\n    body_size_limit: 1.KB\n",
    "scrape_configs:\n  - job_name: a\n    body_size_limit: -1MB\n",
    "scrape_configs:\n  - job_name: a\n    body_size_limit: +1MB\n",
    "scrape_configs:\n  - job_name: a\n    body_size_limit: '-'\n",
    "scrape_configs:\n  - job_name: a\n    body_size_limit: .MB\n",
    "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - source_labels: [a-b]\n",
    "scrape_configs:\n  - job_name: a\n    honor_labels: yes\n",
    "scrape_configs:\n  - job_name: a\n    job_name: b\n",
    "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [a:1, 'a b:1']\n",
];

struct Verdict {
    text: String,
    ours: Result<(), agent::ConfigError>,
    promtool: Result<(), String>,
}

fn promtool(dir: &Path, text: &str) -> Result<(), String> {
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, text).unwrap();
    let output = Command::new(PROMTOOL)
        .args(["check", "config"])
        .arg(&path)
        .output()
        .expect("promtool runs");
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

#[test]
fn promtool_agrees() {
    let mut texts: Vec<String> = WRITTEN.iter().map(|t| (*t).to_owned()).collect();
    texts.extend(MORE_ACCEPTED.iter().map(|t| (*t).to_owned()));
    texts.extend(EDGES.iter().map(|t| (*t).to_owned()));
    texts.extend(crate::errors::cases().map(str::to_owned));
    for name in [
        "prometheus-amp.yml",
        "prometheus-file-sd.yml",
        "prometheus-http-sd.yml",
    ] {
        let text = std::fs::read_to_string(deploy_dir().join(name)).unwrap();
        texts.push(without_rules(&text));
        texts.push(text);
    }
    let root = crate::scratch("promtool");
    let verdicts: Vec<Verdict> = std::thread::scope(|scope| {
        let handles: Vec<_> = texts
            .chunks(texts.len().div_ceil(4))
            .enumerate()
            .map(|(chunk, texts)| {
                let root = &root;
                scope.spawn(move || {
                    texts
                        .iter()
                        .enumerate()
                        .map(|(i, text)| {
                            let dir = root.join(format!("{chunk}-{i}"));
                            std::fs::create_dir_all(&dir).unwrap();
                            Verdict {
                                text: text.clone(),
                                ours: AgentConfig::parse(text, &dir).map(|_| ()),
                                promtool: promtool(&dir, text),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    std::fs::remove_dir_all(&root).unwrap();

    let mut failures = Vec::new();
    let mut differences = Vec::new();
    let (mut accepted, mut refused_by_both) = (0, 0);
    for verdict in &verdicts {
        match (&verdict.ours, &verdict.promtool) {
            (Ok(()), Ok(())) => accepted += 1,
            (Err(_), Err(_)) => refused_by_both += 1,
            (Ok(()), Err(promtool)) => failures.push(format!(
                "accepted, but promtool refuses:\n{}\n{promtool}",
                verdict.text
            )),
            (Err(ours), Ok(())) => {
                let message = ours.to_string();
                if UNSUPPORTED_BUT_VALID
                    .iter()
                    .any(|(field, why)| ours.field() == *field && message.contains(why))
                {
                    differences.push(ours.field().to_owned());
                } else {
                    failures.push(format!(
                        "refused, but promtool accepts:\n{}\n{ours}",
                        verdict.text
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    for (field, _) in UNSUPPORTED_BUT_VALID {
        assert!(
            differences.iter().any(|d| d == field),
            "{field} is listed as a difference but no case shows it"
        );
    }
    // The comparison covers both sides.
    assert!(
        accepted >= WRITTEN.len() + MORE_ACCEPTED.len() + 3,
        "{accepted}"
    );
    assert!(refused_by_both >= 25, "{refused_by_both}");
}

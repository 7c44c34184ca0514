//! Every refusal names the field's path and its line.

use crate::refused;

/// (configuration, field, line, what the message says).
const CASES: &[(&str, &str, u64, &str)] = &[
    // Outside the supported subset.
    (
        "global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n",
        "global.evaluation_interval",
        3,
        "unknown field `evaluation_interval`",
    ),
    (
        "rule_files: []\n",
        "rule_files",
        1,
        "unknown field `rule_files`",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    dns_sd_configs:\n      - names: [app.local]\n        type: A\n        port: 9100\n",
        "scrape_configs[0].dns_sd_configs",
        3,
        "unknown field `dns_sd_configs`",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    tls_config:\n      min_version: TLS12\n",
        "scrape_configs[0].tls_config.min_version",
        4,
        "unknown field `min_version`",
    ),
    (
        "remote_write:\n  - url: http://r/w\n    queue_config:\n      sample_age_limit: 1h\n",
        "remote_write[0].queue_config.sample_age_limit",
        4,
        "unknown field `sample_age_limit`",
    ),
    (
        "remote_write:\n  - url: http://r/w\n    oauth2:\n      client_id: x\n",
        "remote_write[0].oauth2",
        3,
        "unknown field `oauth2`",
    ),
    // Syntax of values.
    (
        "global:\n  scrape_interval: 1x\n",
        "global.scrape_interval",
        2,
        "not a valid duration string: \"1x\"",
    ),
    (
        "global:\n  scrape_timeout: 30\n",
        "global.scrape_timeout",
        2,
        "not a valid duration string: \"30\"",
    ),
    (
        "global:\n  external_labels:\n    1st: x\n",
        "global.external_labels",
        3,
        "\"1st\" is not a valid label name",
    ),
    (
        "global:\n  external_labels:\n    a: b\n    a: c\n",
        "global.external_labels.a",
        4,
        "duplicate mapping key",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    scheme: ftp\n",
        "scrape_configs[0].scheme",
        3,
        "unknown variant `ftp`",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    body_size_limit: 10\n",
        "scrape_configs[0].body_size_limit",
        3,
        "missing unit",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    sample_limit: -1\n",
        "scrape_configs[0].sample_limit",
        3,
        "",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [a:1]\n        labels:\n          a-b: x\n",
        "scrape_configs[0].static_configs[0].labels",
        6,
        "\"a-b\" is not a valid label name",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets:\n          - http://a:1/metrics\n",
        "scrape_configs[0].static_configs[0].targets[0]",
        5,
        "\"http://a:1/metrics\" is not a valid hostname",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: hashmod\n        target_label: x\n",
        "scrape_configs[0].relabel_configs[0]",
        4,
        "relabel configuration for hashmod requires non-zero modulus",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    metric_relabel_configs:\n      - regex: a(?=b)\n",
        "scrape_configs[0].metric_relabel_configs[0]",
        4,
        "invalid regex",
    ),
    // Checks Prometheus makes at load.
    (
        "scrape_configs:\n  - job_name: a\n  - scrape_interval: 1m\n",
        "scrape_configs[1].job_name",
        3,
        "job_name is empty",
    ),
    (
        "scrape_configs:\n  - job_name: ''\n",
        "scrape_configs[0].job_name",
        2,
        "job_name is empty",
    ),
    (
        "scrape_configs:\n  - job_name: a\n  - job_name: b\n  - job_name: a\n",
        "scrape_configs[2].job_name",
        4,
        "found multiple scrape configs with job name \"a\"",
    ),
    (
        "global:\n  scrape_interval: 5s\n  scrape_timeout: 6s\n",
        "global.scrape_timeout",
        3,
        "global scrape timeout greater than scrape interval",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n",
        "scrape_configs[0].scrape_timeout",
        4,
        "scrape timeout greater than scrape interval for scrape config with job name \"a\"",
    ),
    (
        "global:\n  scrape_timeout: 20s\nscrape_configs:\n  - job_name: a\n    scrape_timeout: 2m\n",
        "scrape_configs[0].scrape_timeout",
        5,
        "scrape timeout greater than scrape interval",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: ['*/x.json']\n",
        "scrape_configs[0].file_sd_configs[0].files",
        4,
        "path name \"*/x.json\" is not valid for file discovery",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    file_sd_configs:\n      - files: [targets.txt]\n",
        "scrape_configs[0].file_sd_configs[0].files",
        4,
        "path name \"targets.txt\" is not valid for file discovery",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    http_sd_configs:\n      - refresh_interval: 1m\n",
        "scrape_configs[0].http_sd_configs[0].url",
        4,
        "URL is missing",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    http_sd_configs:\n      - url: ftp://sd/targets\n",
        "scrape_configs[0].http_sd_configs[0].url",
        4,
        "URL scheme must be 'http' or 'https'",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    basic_auth:\n      username: u\n      password: p\n      password_file: p.txt\n",
        "scrape_configs[0].basic_auth.password_file",
        6,
        "at most one of basic_auth password & password_file must be configured",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u}\n    authorization: {credentials: x}\n",
        "scrape_configs[0].authorization",
        4,
        "at most one of basic_auth, oauth2 & authorization must be configured",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    authorization:\n      credentials: x\n      credentials_file: t\n",
        "scrape_configs[0].authorization.credentials_file",
        5,
        "at most one of authorization credentials & credentials_file must be configured",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    authorization:\n      type: Basic\n",
        "scrape_configs[0].authorization.type",
        4,
        "authorization type cannot be set to \"basic\"",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    tls_config:\n      cert_file: c.pem\n",
        "scrape_configs[0].tls_config.key_file",
        4,
        "exactly one of key or key_file must be configured",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['']\n",
        "scrape_configs[0].static_configs[0].targets",
        4,
        "no address",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    authorization:\n      credentials_file: missing-token\n",
        "scrape_configs[0].authorization.credentials_file",
        4,
        "error checking authorization credentials or bearer token file",
    ),
    (
        "scrape_configs:\n  - job_name: a\n    tls_config:\n      cert_file: missing.pem\n      key_file: missing.key\n",
        "scrape_configs[0].tls_config.cert_file",
        4,
        "error checking client cert file",
    ),
    (
        "remote_write:\n  - url: ftp://receiver/write\n",
        "remote_write[0].url",
        2,
        "URL scheme must be 'http' or 'https'",
    ),
    (
        "remote_write:\n  - name: r\n",
        "remote_write[0].url",
        2,
        "url for remote_write is empty",
    ),
    (
        "remote_write:\n  - url: http://a/w\n    name: x\n  - url: http://b/w\n    name: x\n",
        "remote_write[1].name",
        5,
        "found multiple remote write configs with job name \"x\"",
    ),
    (
        "remote_write:\n  - url: http://a/w\n    headers:\n      User-Agent: me\n",
        "remote_write[0].headers",
        4,
        "User-Agent is a reserved header. It must not be changed",
    ),
    (
        "remote_write:\n  - url: http://a/w\n    sigv4:\n      region: eu-west-1\n    basic_auth:\n      username: u\n",
        "remote_write[0].sigv4",
        4,
        "at most one of basic_auth, authorization, oauth2, & sigv4 must be configured",
    ),
    (
        "remote_write:\n  - url: http://a/w\n    sigv4:\n      access_key: AKID\n",
        "remote_write[0].sigv4",
        4,
        "must provide a AWS SigV4 Access key and Secret Key",
    ),
];

#[test]
fn every_refusal_names_its_field_and_line() {
    let mut failures = Vec::new();
    for (text, field, line, message) in CASES {
        let (got_field, got_line, got_message) = refused(text);
        let expected_start = format!("{field} (line {line}): ");
        if got_field != *field
            || got_line != *line
            || !got_message.starts_with(&expected_start)
            || !got_message.contains(message)
        {
            failures.push(format!(
                "{text}  expected {field} line {line} {message:?}\n  got {got_field} line {got_line}: {got_message}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_file_that_cannot_be_read_is_named() {
    let error =
        agent::AgentConfig::load(std::path::Path::new("/nonexistent/prometheus.yml")).unwrap_err();
    assert!(matches!(error, agent::ConfigError::Read { .. }));
    assert_eq!(error.to_string(), "reading /nonexistent/prometheus.yml");
}

pub fn cases() -> impl Iterator<Item = &'static str> {
    CASES.iter().map(|(text, ..)| *text)
}

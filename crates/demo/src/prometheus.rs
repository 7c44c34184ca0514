//! A real Prometheus, started as a child process with a generated configuration that scrapes
//! the cluster through a file_sd file (written by the demo, or by `ecs-prom discovery` from
//! Cloud Map), and stopped with it.

use crate::process::Program;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How Prometheus is started.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    /// The `prometheus` executable (a name looked up on `PATH`, or a path).
    pub binary: PathBuf,
    /// `host:port` for its web UI and API.
    pub listen_address: String,
    /// Scrape and rule evaluation interval.
    pub scrape_interval: Duration,
    /// Accept remote writes (`/api/v1/write`): the agent sidecars send there.
    pub remote_write_receiver: bool,
}

/// A running Prometheus.
pub struct Prometheus {
    program: Program,
    /// Base URL of its web UI and HTTP API.
    pub url: String,
}

/// How long Prometheus may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The recording and alert rules of `deploy/prometheus/rules/`, loaded into the demo's
/// Prometheus so its rules and alerts pages show them working: file name and content.
pub const RULE_FILES: [(&str, &str); 2] = [
    (
        "ecs-prom.rules.yml",
        include_str!("../../../deploy/prometheus/rules/ecs-prom.rules.yml"),
    ),
    (
        "ecs-prom.alerts.yml",
        include_str!("../../../deploy/prometheus/rules/ecs-prom.alerts.yml"),
    ),
];

/// Job of `ecs-prom discovery`'s own metrics, when the demo runs it.
pub const DISCOVERY_JOB: &str = "ecs-prom-discovery";

/// The configuration file: the [`RULE_FILES`] (in the configuration's directory), one scrape
/// job over the file_sd file, and, when the demo runs `ecs-prom discovery` at `discovery`
/// (`host:port`), one for discovery's own metrics.
///
/// Each target group's `job` label names its job; targets from Cloud Map carry none, so their
/// job is their Cloud Map service's name.
pub fn config_file(scrape_interval: Duration, file_sd: &Path, discovery: Option<&str>) -> String {
    let interval = format!("{}ms", scrape_interval.as_millis().max(1));
    // A JSON string is a valid YAML double-quoted scalar, whatever the path holds.
    let file_sd = serde_json::Value::from(file_sd.to_string_lossy()).to_string();
    let rule_files = RULE_FILES.map(|(name, _)| name).join(", ");
    let mut text = format!(
        "# Written by ecs-prom demo.\n\
         global:\n\
         \x20 scrape_interval: {interval}\n\
         \x20 scrape_timeout: {interval}\n\
         \x20 evaluation_interval: {interval}\n\
         rule_files: [{rule_files}]\n\
         scrape_configs:\n\
         \x20 - job_name: ecs\n\
         \x20   file_sd_configs:\n\
         \x20     - files: [{file_sd}]\n\
         \x20       refresh_interval: {interval}\n\
         \x20   relabel_configs:\n\
         \x20     - source_labels: [__meta_cloudmap_service_name]\n\
         \x20       regex: (.+)\n\
         \x20       target_label: job\n"
    );
    if let Some(address) = discovery {
        let address = serde_json::Value::from(address).to_string();
        text.push_str(&format!(
            "\x20 - job_name: {DISCOVERY_JOB}\n\
             \x20   static_configs:\n\
             \x20     - targets: [{address}]\n"
        ));
    }
    text
}

impl Prometheus {
    /// Writes the configuration into `dir`, starts Prometheus with its data in `dir`, and
    /// waits until it is ready. The file_sd file `file_sd` may be written before or after.
    pub async fn start(
        config: &PrometheusConfig,
        dir: &Path,
        file_sd: &Path,
        discovery: Option<&str>,
    ) -> anyhow::Result<Prometheus> {
        // Prometheus would only say "address already in use" in its log; say it here, with
        // the most likely cause.
        std::net::TcpListener::bind(&config.listen_address).with_context(|| {
            format!(
                "--prometheus.listen-address {}: cannot listen there (is another Prometheus running? \
                 Debian's prometheus package starts one on :9090: `sudo systemctl stop prometheus`, \
                 or choose another address)",
                config.listen_address
            )
        })?;
        for (name, rules) in RULE_FILES {
            std::fs::write(dir.join(name), rules)
                .with_context(|| format!("writing the rule file {name}"))?;
        }
        let config_path = dir.join("prometheus.yml");
        std::fs::write(
            &config_path,
            config_file(config.scrape_interval, file_sd, discovery),
        )
        .context("writing the Prometheus configuration")?;
        let mut args = vec![
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", dir.join("data").display()),
            format!("--web.listen-address={}", config.listen_address),
        ];
        if config.remote_write_receiver {
            args.push("--web.enable-remote-write-receiver".to_owned());
        }
        let program = Program::start(
            "Prometheus",
            &config.binary,
            &args,
            dir.join("prometheus.log"),
            "install Prometheus (Debian and Ubuntu: `sudo apt install prometheus`) \
             or give its path with --prometheus.binary",
        )?;
        let mut prometheus = Prometheus {
            program,
            url: format!("http://{}", config.listen_address),
        };
        prometheus
            .program
            .wait_until_ready(&prometheus.url, "/-/ready", READY_TIMEOUT)
            .await?;
        Ok(prometheus)
    }

    /// Completes if Prometheus exits on its own (an error: it should run until stopped).
    pub async fn exited(&mut self) -> anyhow::Error {
        self.program.exited().await
    }

    /// Asks Prometheus to shut down (SIGTERM), waits for it, and kills it if it takes longer
    /// than 15 s.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.program.stop().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_scrapes_the_file_sd_file_at_the_interval() {
        let text = config_file(
            Duration::from_secs(5),
            Path::new("/tmp/a \"b\"/targets.json"),
            None,
        );
        assert_eq!(
            text,
            "# Written by ecs-prom demo.\n\
             global:\n  scrape_interval: 5000ms\n  scrape_timeout: 5000ms\n  evaluation_interval: 5000ms\n\
             rule_files: [ecs-prom.rules.yml, ecs-prom.alerts.yml]\n\
             scrape_configs:\n  - job_name: ecs\n    file_sd_configs:\n\
             \x20     - files: [\"/tmp/a \\\"b\\\"/targets.json\"]\n        refresh_interval: 5000ms\n\
             \x20   relabel_configs:\n\
             \x20     - source_labels: [__meta_cloudmap_service_name]\n\
             \x20       regex: (.+)\n\
             \x20       target_label: job\n"
        );
        let with_discovery = config_file(
            Duration::from_secs(5),
            Path::new("/tmp/t.json"),
            Some("127.0.0.1:9001"),
        );
        assert!(
            with_discovery.ends_with(
                "  - job_name: ecs-prom-discovery\n    static_configs:\n      - targets: [\"127.0.0.1:9001\"]\n"
            ),
            "{with_discovery}"
        );
    }

    /// Both variants, with their rule files, pass `promtool check config` (Debian's
    /// `prometheus` package has it).
    #[test]
    fn promtool_accepts_both_configurations() {
        let dir = std::env::temp_dir().join(format!("ecs-prom-demo-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        for (name, rules) in RULE_FILES {
            std::fs::write(dir.join(name), rules).expect("rules written");
        }
        for (name, discovery) in [
            ("plain.yml", None),
            ("discovery.yml", Some("127.0.0.1:9001")),
        ] {
            let path = dir.join(name);
            let text = config_file(Duration::from_secs(5), &dir.join("targets.json"), discovery);
            std::fs::write(&path, text).expect("written");
            let output = std::process::Command::new("promtool")
                .arg("check")
                .arg("config")
                .arg(&path)
                .output()
                .expect("promtool runs (Debian: apt install prometheus)");
            assert!(
                output.status.success(),
                "{name}: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}

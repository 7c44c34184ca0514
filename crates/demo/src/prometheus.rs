//! A real Prometheus, started as a child process with a generated configuration that scrapes
//! the cluster through a file_sd file, and stopped with it.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How Prometheus is started.
#[derive(Debug, Clone)]
pub struct PrometheusConfig {
    /// The `prometheus` executable (a name looked up on `PATH`, or a path).
    pub binary: PathBuf,
    /// `host:port` for its web UI and API.
    pub listen_address: String,
    /// Scrape and rule evaluation interval.
    pub scrape_interval: Duration,
}

/// A running Prometheus.
pub struct Prometheus {
    child: Child,
    /// Base URL of its web UI and HTTP API.
    pub url: String,
    log: PathBuf,
}

/// How long Prometheus may take to become ready, and to stop.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// The configuration file: one scrape job over the file_sd file; each target group's `job`
/// label names its job.
pub fn config_file(scrape_interval: Duration, file_sd: &Path) -> String {
    let interval = format!("{}ms", scrape_interval.as_millis().max(1));
    // A JSON string is a valid YAML double-quoted scalar, whatever the path holds.
    let file_sd = serde_json::Value::from(file_sd.to_string_lossy()).to_string();
    format!(
        "# Written by ecs-prom demo.\n\
         global:\n\
         \x20 scrape_interval: {interval}\n\
         \x20 scrape_timeout: {interval}\n\
         \x20 evaluation_interval: {interval}\n\
         scrape_configs:\n\
         \x20 - job_name: ecs\n\
         \x20   file_sd_configs:\n\
         \x20     - files: [{file_sd}]\n\
         \x20       refresh_interval: {interval}\n"
    )
}

impl Prometheus {
    /// Writes the configuration into `dir`, starts Prometheus with its data in `dir`, and
    /// waits until it is ready. The file_sd file `file_sd` may be written before or after.
    pub async fn start(
        config: &PrometheusConfig,
        dir: &Path,
        file_sd: &Path,
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
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config_file(config.scrape_interval, file_sd))
            .context("writing the Prometheus configuration")?;
        let log = dir.join("prometheus.log");
        let log_file = std::fs::File::create(&log).context("creating the Prometheus log")?;
        let mut command = Command::new(&config.binary);
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={}", config.listen_address))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            // Whatever happens to the demo, its Prometheus does not outlive it.
            .kill_on_drop(true);
        // Its own process group: Ctrl-C in the terminal reaches only the demo, which then stops
        // Prometheus itself, in order, instead of both racing to shut down.
        #[cfg(unix)]
        command.process_group(0);
        let child = match command.spawn() {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
                "{} not found: install Prometheus (Debian and Ubuntu: `sudo apt install prometheus`) \
                 or give its path with --prometheus.binary",
                config.binary.display()
            ),
            Err(error) => {
                return Err(error).with_context(|| format!("starting {}", config.binary.display()));
            }
        };
        let mut prometheus = Prometheus {
            child,
            url: format!("http://{}", config.listen_address),
            log,
        };
        prometheus.wait_until_ready().await?;
        Ok(prometheus)
    }

    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let client = ecs_metadata::MetadataClient::new(&self.url, Duration::from_secs(2))?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "Prometheus exited during start-up ({status}); its log ends with:\n{}",
                    self.log_tail()
                );
            }
            if client.fetch("/-/ready").await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "Prometheus was not ready within {READY_TIMEOUT:?}; its log ends with:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The last lines Prometheus logged.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// Completes if Prometheus exits on its own (an error: it should run until stopped).
    pub async fn exited(&mut self) -> anyhow::Error {
        match self.child.wait().await {
            Ok(status) => anyhow::anyhow!(
                "Prometheus exited ({status}); its log ends with:\n{}",
                self.log_tail()
            ),
            Err(error) => anyhow::Error::from(error).context("waiting for Prometheus"),
        }
    }

    /// Asks Prometheus to shut down (SIGTERM), waits for it, and kills it if it takes longer
    /// than 15 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        terminate(&self.child);
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(waited) => {
                waited.context("waiting for Prometheus to stop")?;
                Ok(())
            }
            Err(_) => {
                self.child.kill().await.context("killing Prometheus")?;
                bail!("Prometheus did not stop within {STOP_TIMEOUT:?} and was killed")
            }
        }
    }
}

/// Sends SIGTERM, Prometheus' graceful shutdown signal. Elsewhere there is only kill, which
/// `stop` falls back to.
#[cfg(unix)]
fn terminate(child: &Child) {
    use rustix::process::{Pid, Signal, kill_process};
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw);
    if let Some(pid) = pid {
        // It may have exited a moment ago; then there is nothing to stop.
        let _ = kill_process(pid, Signal::TERM);
    }
}

#[cfg(not(unix))]
fn terminate(_child: &Child) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_scrapes_the_file_sd_file_at_the_interval() {
        let text = config_file(
            Duration::from_secs(5),
            Path::new("/tmp/a \"b\"/targets.json"),
        );
        assert_eq!(
            text,
            "# Written by ecs-prom demo.\n\
             global:\n  scrape_interval: 5000ms\n  scrape_timeout: 5000ms\n  evaluation_interval: 5000ms\n\
             scrape_configs:\n  - job_name: ecs\n    file_sd_configs:\n\
             \x20     - files: [\"/tmp/a \\\"b\\\"/targets.json\"]\n        refresh_interval: 5000ms\n"
        );
    }
}

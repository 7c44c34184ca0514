//! The programs the demo runs beside itself (Prometheus, moto_server): each a child process in
//! its own process group with its output in a log file, watched for exiting early, and stopped
//! with SIGTERM, or killed if it takes too long.

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How long a program may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A running child program.
pub struct Program {
    /// What it is, for messages ("Prometheus").
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Program {
    /// Starts `binary` with `args`, its standard output and error going to `log`.
    /// `install_hint` tells the user how to get the program when it is not found.
    pub fn start(
        name: &'static str,
        binary: &Path,
        args: &[String],
        log: PathBuf,
        install_hint: &str,
    ) -> anyhow::Result<Program> {
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = Command::new(binary);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            // Whatever happens to the demo, the program does not outlive it.
            .kill_on_drop(true);
        // Its own process group: Ctrl-C in the terminal reaches only the demo, which then stops
        // the program itself, in order, instead of both racing to shut down.
        #[cfg(unix)]
        command.process_group(0);
        let child = match command.spawn() {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                bail!("{} not found: {install_hint}", binary.display())
            }
            Err(error) => {
                return Err(error).with_context(|| format!("starting {}", binary.display()));
            }
        };
        Ok(Program { name, child, log })
    }

    /// Waits until `url` + `path` answers with a success status, for at most `timeout`.
    pub async fn wait_until_ready(
        &mut self,
        url: &str,
        path: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let url = format!("{}{path}", url.trim_end_matches('/'));
        // A readiness answer is a line of text; the deadline keeps a stuck start-up from
        // holding one probe past the next.
        let client = web::Client::new(Duration::from_secs(2)).with_max_body_bytes(64 * 1024);
        web::parse_url(&url)?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited during start-up ({status}); its log ends with:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            if client
                .get(&url)
                .send()
                .await
                .is_ok_and(|answer| answer.status.is_success())
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} was not ready within {timeout:?}; its log ends with:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The last lines the program logged.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// Completes if the program exits on its own (an error: it should run until stopped).
    pub async fn exited(&mut self) -> anyhow::Error {
        match self.child.wait().await {
            Ok(status) => anyhow::anyhow!(
                "{} exited ({status}); its log ends with:\n{}",
                self.name,
                self.log_tail()
            ),
            Err(error) => anyhow::Error::from(error).context(format!("waiting for {}", self.name)),
        }
    }

    /// Asks the program to shut down (SIGTERM), waits for it, and kills it if it takes longer
    /// than 15 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        terminate(&self.child);
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(waited) => {
                waited.with_context(|| format!("waiting for {} to stop", self.name))?;
                Ok(())
            }
            Err(_) => {
                self.child
                    .kill()
                    .await
                    .with_context(|| format!("killing {}", self.name))?;
                bail!(
                    "{} did not stop within {STOP_TIMEOUT:?} and was killed",
                    self.name
                )
            }
        }
    }
}

/// Sends SIGTERM, the graceful shutdown signal. Elsewhere there is only kill, which `stop`
/// falls back to.
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

//! A profile's `credential_process`: the command run with `sh -c`, as the AWS SDKs do on
//! Unix, within a deadline, and the credentials JSON it prints (`Version: 1`).

use crate::error::CredentialsError;
use crate::keys::Credentials;
use serde::Deserialize;
use std::process::Stdio;
use std::time::Duration;

/// How long the command may take (it may be waiting on a hardware key or a vault).
const TIMEOUT: Duration = Duration::from_secs(60);
/// How much of the command's standard error an error message quotes.
const MAX_STDERR_BYTES: usize = 1024;

/// What the command prints.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessCredentials {
    version: u32,
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    session_token: Option<String>,
    #[serde(default)]
    expiration: Option<String>,
}

/// Runs `command` of `profile` and reads its credentials.
pub(crate) async fn credentials(
    profile: &str,
    command: &str,
) -> Result<Credentials, CredentialsError> {
    run(profile, command, TIMEOUT).await
}

async fn run(
    profile: &str,
    command: &str,
    timeout: Duration,
) -> Result<Credentials, CredentialsError> {
    let failed = |reason: String| CredentialsError::Process {
        profile: profile.to_owned(),
        reason,
    };
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A command that outlives its deadline is killed when its future is dropped.
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| failed(format!("starting sh -c {command:?}: {e}")))?;
    let output = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| failed(format!("{command:?} did not finish within {timeout:?}")))?
        .map_err(|e| failed(format!("running {command:?}: {e}")))?;
    if !output.status.success() {
        let stderr = &output.stderr[..output.stderr.len().min(MAX_STDERR_BYTES)];
        return Err(failed(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(stderr).trim()
        )));
    }
    parse(&output.stdout).map_err(failed)
}

/// The credentials in the command's output. Error messages never quote the output: it holds
/// the secret.
fn parse(stdout: &[u8]) -> Result<Credentials, String> {
    let parsed: ProcessCredentials = serde_json::from_slice(stdout)
        .map_err(|e| format!("its output is not the credentials JSON: {e}"))?;
    if parsed.version != 1 {
        return Err(format!(
            "its output has Version {}; only 1 is supported",
            parsed.version
        ));
    }
    let expires_at = match parsed.expiration {
        None => None,
        Some(text) => Some(
            timestamps::parse_rfc3339(&text)
                .ok_or_else(|| format!("its Expiration {text:?} is not an RFC 3339 time"))?,
        ),
    };
    Ok(Credentials {
        access_key_id: parsed.access_key_id,
        secret_access_key: parsed.secret_access_key,
        session_token: parsed.session_token,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_command_past_its_deadline_is_an_error() {
        let started = std::time::Instant::now();
        let error = run("slow", "sleep 5", Duration::from_millis(300))
            .await
            .expect_err("too slow");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(
            error.to_string().contains("did not finish within 300ms"),
            "{error}"
        );
    }

    #[test]
    fn reads_version_1_output_only() {
        let credentials = parse(
            br#"{"Version":1,"AccessKeyId":"ASIAP","SecretAccessKey":"s","SessionToken":"t","Expiration":"2030-01-01T00:00:00Z"}"#,
        )
        .expect("valid");
        assert_eq!(credentials.access_key_id, "ASIAP");
        assert_eq!(credentials.expires_at, Some(1_893_456_000.0));
        let error = parse(br#"{"Version":2,"AccessKeyId":"A","SecretAccessKey":"s"}"#)
            .expect_err("version 2");
        assert!(error.contains("Version 2"), "{error}");
        let error = parse(
            br#"{"Version":1,"AccessKeyId":"A","SecretAccessKey":"very-secret","Expiration":"x"}"#,
        )
        .expect_err("bad time");
        assert!(!error.contains("very-secret"), "{error}");
    }
}

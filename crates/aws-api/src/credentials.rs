//! Credentials from the standard chain, in the SDKs' order: environment variables, the
//! profile's static keys in the shared files, the ECS container credentials endpoint (the task
//! role), then the EC2 instance metadata service (IMDSv2). Temporary credentials are kept
//! until five minutes before they expire.

use crate::config::{AwsConfig, ContainerCredentialsSource, StaticKeys};
use crate::transport::{Http, TransportError};
use bytes::Bytes;
use http_body_util::Full;
use serde::Deserialize;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

/// How long before expiry temporary credentials are fetched again.
const REFRESH_BEFORE_EXPIRY: f64 = 300.0;
/// Deadline of each request to a credentials endpoint.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(2);
/// The EC2 instance metadata service.
const IMDS: &str = "http://169.254.169.254";

/// Keys to sign with.
#[derive(Clone, PartialEq)]
pub struct Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token of temporary credentials.
    pub session_token: Option<String>,
    /// Expiry, in seconds since the Unix epoch.
    pub expires_at: Option<f64>,
}

impl std::fmt::Debug for Credentials {
    // Secrets never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl From<&StaticKeys> for Credentials {
    fn from(keys: &StaticKeys) -> Self {
        Credentials {
            access_key_id: keys.access_key_id.clone(),
            secret_access_key: keys.secret_access_key.clone(),
            session_token: keys.session_token.clone(),
            expires_at: None,
        }
    }
}

/// Why no credentials could be had.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A credentials endpoint did not answer usefully.
    #[error("{source_name} at {url}: {reason}")]
    Endpoint {
        /// Which source.
        source_name: &'static str,
        /// What was asked.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// No source in the chain is configured.
    #[error(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, give the profile static keys, \
         or run with an ECS task role{}", .note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
    )]
    NotFound {
        /// Why the profile did not help, or what the instance metadata service said.
        note: Option<String>,
    },
}

/// The part of a credentials endpoint's answer ecs-prom uses (ECS and EC2 agree on it).
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EndpointCredentials {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    expiration: Option<String>,
}

/// Resolves and caches credentials.
pub struct CredentialsProvider {
    config: AwsConfig,
    http: Http,
    cached: Mutex<Option<Credentials>>,
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl CredentialsProvider {
    /// A provider over the chain `config` describes.
    pub fn new(config: AwsConfig, http: Http) -> Self {
        CredentialsProvider {
            config,
            http,
            cached: Mutex::new(None),
        }
    }

    /// Credentials that stay valid for at least a few minutes.
    pub async fn get(&self) -> Result<Credentials, CredentialsError> {
        let mut cached = self.cached.lock().await;
        if let Some(credentials) = cached.as_ref() {
            let fresh = credentials
                .expires_at
                .is_none_or(|at| at - unix_now() > REFRESH_BEFORE_EXPIRY);
            if fresh {
                return Ok(credentials.clone());
            }
        }
        let credentials = self.resolve().await?;
        *cached = Some(credentials.clone());
        Ok(credentials)
    }

    async fn resolve(&self) -> Result<Credentials, CredentialsError> {
        if let Some(keys) = &self.config.env_credentials {
            return Ok(keys.into());
        }
        if let Some(keys) = &self.config.profile_credentials {
            return Ok(keys.into());
        }
        if let Some(source) = &self.config.container_credentials {
            return self.ask_container_endpoint(source).await;
        }
        if self.config.imds_enabled {
            return match self.ask_instance_metadata().await {
                Ok(credentials) => Ok(credentials),
                Err(error) => Err(CredentialsError::NotFound {
                    note: Some(
                        self.config
                            .profile_note
                            .clone()
                            .unwrap_or_else(|| format!("EC2 instance metadata: {error}")),
                    ),
                }),
            };
        }
        Err(CredentialsError::NotFound {
            note: self.config.profile_note.clone(),
        })
    }

    async fn ask_container_endpoint(
        &self,
        source: &ContainerCredentialsSource,
    ) -> Result<Credentials, CredentialsError> {
        let failed = |reason: String| CredentialsError::Endpoint {
            source_name: "ECS container credentials",
            url: source.url.clone(),
            reason,
        };
        let token = match (&source.token_file, &source.token) {
            (Some(file), _) => Some(
                std::fs::read_to_string(file)
                    .map_err(|e| failed(format!("reading {}: {e}", file.display())))?
                    .trim()
                    .to_owned(),
            ),
            (None, token) => token.clone(),
        };
        let mut request = http::Request::get(&source.url);
        if let Some(token) = token {
            request = request.header(http::header::AUTHORIZATION, token);
        }
        let body = self
            .exchange(request, "ECS container credentials", &source.url)
            .await?;
        parse_endpoint_credentials(&body).map_err(failed)
    }

    async fn ask_instance_metadata(&self) -> Result<Credentials, CredentialsError> {
        let token_url = format!("{IMDS}/latest/api/token");
        let token = self
            .exchange(
                http::Request::put(&token_url)
                    .header("x-aws-ec2-metadata-token-ttl-seconds", "21600"),
                "EC2 instance metadata",
                &token_url,
            )
            .await?;
        let token = String::from_utf8_lossy(&token).trim().to_owned();
        let roles_url = format!("{IMDS}/latest/meta-data/iam/security-credentials/");
        let get = |url: &str| {
            http::Request::get(url.to_owned()).header("x-aws-ec2-metadata-token", token.as_str())
        };
        let roles = self
            .exchange(get(&roles_url), "EC2 instance metadata", &roles_url)
            .await?;
        let role = String::from_utf8_lossy(&roles)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let role_url = format!("{roles_url}{role}");
        let body = self
            .exchange(get(&role_url), "EC2 instance metadata", &role_url)
            .await?;
        parse_endpoint_credentials(&body).map_err(|reason| CredentialsError::Endpoint {
            source_name: "EC2 instance metadata",
            url: role_url,
            reason,
        })
    }

    async fn exchange(
        &self,
        request: http::request::Builder,
        source_name: &'static str,
        url: &str,
    ) -> Result<Bytes, CredentialsError> {
        let failed = |reason: String| CredentialsError::Endpoint {
            source_name,
            url: url.to_owned(),
            reason,
        };
        let request = request
            .body(Full::new(Bytes::new()))
            .map_err(|e| failed(e.to_string()))?;
        let reply = self
            .http
            .send(request, ENDPOINT_TIMEOUT)
            .await
            .map_err(|e: TransportError| failed(e.to_string()))?;
        if reply.status != 200 {
            return Err(failed(format!("HTTP {}", reply.status)));
        }
        Ok(reply.body)
    }
}

fn parse_endpoint_credentials(body: &[u8]) -> Result<Credentials, String> {
    let parsed: EndpointCredentials =
        serde_json::from_slice(body).map_err(|e| format!("unreadable answer: {e}"))?;
    Ok(Credentials {
        access_key_id: parsed.access_key_id,
        secret_access_key: parsed.secret_access_key,
        session_token: parsed.token,
        expires_at: parsed
            .expiration
            .as_deref()
            .and_then(ecs_metadata::time::parse_rfc3339),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_ecs_credentials_answer() {
        let body = br#"{"RoleArn":"arn:aws:iam::1:role/r","AccessKeyId":"ASIA1","SecretAccessKey":"s","Token":"t","Expiration":"2030-01-01T00:00:00Z"}"#;
        let credentials = parse_endpoint_credentials(body).expect("valid");
        assert_eq!(credentials.access_key_id, "ASIA1");
        assert_eq!(credentials.session_token.as_deref(), Some("t"));
        assert_eq!(credentials.expires_at, Some(1_893_456_000.0));
        assert!(parse_endpoint_credentials(b"{}").is_err());
    }

    #[test]
    fn debug_output_hides_secrets() {
        let credentials = Credentials {
            access_key_id: "AKIA".into(),
            secret_access_key: "very-secret".into(),
            session_token: Some("token-secret".into()),
            expires_at: None,
        };
        let shown = format!("{credentials:?}");
        assert!(
            shown.contains("AKIA") && !shown.contains("secret"),
            "{shown}"
        );
    }
}

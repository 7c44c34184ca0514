//! Credentials from the source the configuration chose (environment keys, web identity, the
//! profile's keys, role, SSO or `credential_process`, the ECS container credentials endpoint,
//! the EC2 instance metadata service), with any roles assumed on top, each step cached.
//! Temporary credentials are renewed five minutes before they expire; when a renewal fails,
//! the cached ones are used until they really expire, and renewal is retried at most every
//! ten seconds.

use crate::config::{BaseCredentials, ConfigError, ContainerCredentialsSource, CredentialChain};
use crate::error::{CredentialsError, error_chain};
use crate::keys::Credentials;
use crate::sts::QueryCaller;
use crate::transport::Http;
use bytes::Bytes;
use http_body_util::Full;
use serde::Deserialize;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long before expiry temporary credentials are fetched again.
const REFRESH_BEFORE_EXPIRY: f64 = 300.0;
/// After a failed renewal, how long the cached credentials are used without trying again.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);
/// Deadline of each request to a credentials endpoint on the local network.
const ENDPOINT_TIMEOUT: Duration = Duration::from_secs(2);
/// The EC2 instance metadata service.
const IMDS: &str = "http://169.254.169.254";

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

/// One step of the chain: its credentials and when its last renewal failed.
#[derive(Default)]
struct Step {
    cached: Option<Credentials>,
    last_failure: Option<Instant>,
}

/// A credentials result and whether the failure, if any, happened in a lower step (and was
/// logged there).
type StepResult = (Result<Credentials, CredentialsError>, bool);

/// Resolves and caches credentials.
pub struct CredentialsProvider {
    chain: Result<CredentialChain, ConfigError>,
    http: Http,
    /// The base source, then one per role.
    steps: Vec<Mutex<Step>>,
    /// Deadline of calls to services on the internet (the SSO portal).
    remote_timeout: Duration,
}

use timestamps::now as unix_now;

impl CredentialsProvider {
    /// A provider over `chain`; `remote_timeout` bounds each request to the SSO portal.
    pub fn new(
        chain: Result<CredentialChain, ConfigError>,
        http: Http,
        remote_timeout: Duration,
    ) -> Self {
        let steps = chain.as_ref().map_or(0, |c| c.roles.len()) + 1;
        CredentialsProvider {
            chain,
            http,
            steps: (0..steps).map(|_| Mutex::new(Step::default())).collect(),
            remote_timeout,
        }
    }

    /// Credentials that are valid now; `client` makes the STS calls roles need.
    pub(crate) async fn get<C: QueryCaller>(
        &self,
        client: &C,
    ) -> Result<Credentials, CredentialsError> {
        let chain = self.chain.as_ref().map_err(|e| e.clone())?;
        self.step(chain, chain.roles.len(), client).await.0
    }

    /// The credentials of step `index` (0 the base, `i` the role `roles[i - 1]`), renewed
    /// when they are close to expiry. Boxed: a role step awaits the step below it.
    fn step<'a, C: QueryCaller>(
        &'a self,
        chain: &'a CredentialChain,
        index: usize,
        client: &'a C,
    ) -> Pin<Box<dyn Future<Output = StepResult> + Send + 'a>> {
        Box::pin(async move {
            let Some(step) = self.steps.get(index) else {
                return (Err(CredentialsError::NotFound { note: None }), false);
            };
            let mut step = step.lock().await;
            let now = unix_now();
            if let Some(cached) = &step.cached {
                let left = cached.expires_at.map(|at| at - now);
                let fresh = left.is_none_or(|left| left > REFRESH_BEFORE_EXPIRY);
                let valid = left.is_none_or(|left| left > 0.0);
                let resting = step
                    .last_failure
                    .is_some_and(|at| at.elapsed() < RETRY_AFTER_FAILURE);
                if fresh || (valid && resting) {
                    return (Ok(cached.clone()), false);
                }
            }
            let (result, failed_below) = match index.checked_sub(1) {
                None => (self.fetch_base(&chain.base, client).await, false),
                Some(below) => match self.step(chain, below, client).await {
                    (Ok(base), _) => match chain.roles.get(below) {
                        Some(role) => (crate::sts::assume_role(client, role, &base).await, false),
                        None => (Err(CredentialsError::NotFound { note: None }), false),
                    },
                    (Err(error), _) => (Err(error), true),
                },
            };
            match result {
                Ok(credentials) => {
                    tracing::debug!(
                        step = index,
                        access_key_id = %credentials.access_key_id,
                        expires_at = ?credentials.expires_at,
                        "AWS credentials renewed"
                    );
                    step.cached = Some(credentials.clone());
                    step.last_failure = None;
                    (Ok(credentials), false)
                }
                Err(error) => {
                    step.last_failure = Some(Instant::now());
                    let still_valid = step
                        .cached
                        .as_ref()
                        .filter(|c| c.expires_at.is_some_and(|at| at > unix_now()));
                    if let Some(cached) = still_valid {
                        if !failed_below {
                            tracing::warn!(
                                error = %error_chain(&error),
                                expires_in_seconds = cached.expires_at.map_or(0.0, |at| (at - unix_now()).floor()),
                                retry_in = ?RETRY_AFTER_FAILURE,
                                "renewing AWS credentials failed; signing with the cached ones until they expire"
                            );
                        }
                        return (Ok(cached.clone()), false);
                    }
                    if !failed_below {
                        tracing::warn!(error = %error_chain(&error), "getting AWS credentials failed");
                    }
                    (Err(error), failed_below)
                }
            }
        })
    }

    async fn fetch_base<C: QueryCaller>(
        &self,
        base: &BaseCredentials,
        client: &C,
    ) -> Result<Credentials, CredentialsError> {
        match base {
            BaseCredentials::Static(keys) => Ok(keys.into()),
            BaseCredentials::WebIdentity(identity) => {
                crate::sts::assume_role_with_web_identity(client, identity).await
            }
            BaseCredentials::Sso(sso) => {
                crate::sso::credentials(&self.http, sso, self.remote_timeout).await
            }
            BaseCredentials::Process { profile, command } => {
                crate::process::credentials(profile, command).await
            }
            BaseCredentials::Container(source) => self.ask_container_endpoint(source).await,
            BaseCredentials::InstanceMetadata => {
                self.ask_instance_metadata()
                    .await
                    .map_err(|error| CredentialsError::NotFound {
                        note: Some(format!("EC2 instance metadata: {}", error_chain(&error))),
                    })
            }
            BaseCredentials::Nothing => Err(CredentialsError::NotFound { note: None }),
        }
    }

    async fn ask_container_endpoint(
        &self,
        source: &ContainerCredentialsSource,
    ) -> Result<Credentials, CredentialsError> {
        let token = match (&source.token_file, &source.token) {
            (Some(file), _) => Some(
                std::fs::read_to_string(file)
                    .map_err(|source| CredentialsError::TokenFile {
                        what: "the container authorization token",
                        path: file.clone(),
                        source,
                    })?
                    .trim()
                    .to_owned(),
            ),
            (None, token) => token.clone(),
        };
        let mut request = http::Request::get(&source.url);
        if let Some(token) = token {
            request = request.header(http::header::AUTHORIZATION, token);
        }
        let body = exchange(
            &self.http,
            request,
            "ECS container credentials",
            &source.url,
            ENDPOINT_TIMEOUT,
        )
        .await?;
        parse_endpoint_credentials(&body).map_err(|reason| CredentialsError::Endpoint {
            source_name: "ECS container credentials",
            url: source.url.clone(),
            reason,
        })
    }

    async fn ask_instance_metadata(&self) -> Result<Credentials, CredentialsError> {
        let source_name = "EC2 instance metadata";
        let token_url = format!("{IMDS}/latest/api/token");
        let token = exchange(
            &self.http,
            http::Request::put(&token_url).header("x-aws-ec2-metadata-token-ttl-seconds", "21600"),
            source_name,
            &token_url,
            ENDPOINT_TIMEOUT,
        )
        .await?;
        let token = String::from_utf8_lossy(&token).trim().to_owned();
        let roles_url = format!("{IMDS}/latest/meta-data/iam/security-credentials/");
        let get = |url: &str| {
            http::Request::get(url.to_owned()).header("x-aws-ec2-metadata-token", token.as_str())
        };
        let roles = exchange(
            &self.http,
            get(&roles_url),
            source_name,
            &roles_url,
            ENDPOINT_TIMEOUT,
        )
        .await?;
        let role = String::from_utf8_lossy(&roles)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let role_url = format!("{roles_url}{role}");
        let body = exchange(
            &self.http,
            get(&role_url),
            source_name,
            &role_url,
            ENDPOINT_TIMEOUT,
        )
        .await?;
        parse_endpoint_credentials(&body).map_err(|reason| CredentialsError::Endpoint {
            source_name,
            url: role_url,
            reason,
        })
    }
}

/// Sends a bodiless `request` and returns the body of its 200 answer.
pub(crate) async fn exchange(
    http: &Http,
    request: http::request::Builder,
    source_name: &'static str,
    url: &str,
    timeout: Duration,
) -> Result<Bytes, CredentialsError> {
    let failed = |reason: String| CredentialsError::Endpoint {
        source_name,
        url: url.to_owned(),
        reason,
    };
    let request = request
        .body(Full::new(Bytes::new()))
        .map_err(|e| failed(e.to_string()))?;
    let reply = http
        .send(request, timeout)
        .await
        .map_err(|source| CredentialsError::Request {
            source_name,
            url: url.to_owned(),
            source,
        })?;
    if reply.status != 200 {
        let text = String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)])
            .trim()
            .to_owned();
        return Err(failed(format!("HTTP {}: {text}", reply.status)));
    }
    Ok(reply.body)
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
            .and_then(timestamps::parse_rfc3339),
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

    #[tokio::test]
    async fn a_refused_connection_is_named_in_the_logged_cause() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let url = format!("http://{closed}/creds");
        let error = exchange(
            &Http::new(ENDPOINT_TIMEOUT),
            http::Request::get(&url),
            "ECS container credentials",
            &url,
            ENDPOINT_TIMEOUT,
        )
        .await
        .expect_err("nothing listens");
        let text = error_chain(&error);
        assert!(
            text.starts_with(&format!("ECS container credentials at {url}: "))
                && text.to_ascii_lowercase().contains("connection refused"),
            "{text}"
        );
    }
}

//! Signed calls to the AWS APIs: JSON 1.1 (ECS, Cloud Map, SSM) and the EC2 Query protocol,
//! each attempt with a deadline, throttles and server errors retried with exponential backoff
//! and full jitter, a token bucket per service, and every attempt counted by outcome.

use crate::clock_skew::{self, ClockOffset};
use crate::config::{AwsConfig, Service};
use crate::credentials::CredentialsProvider;
pub use crate::error::AwsError;
use crate::keys::{Credentials, Signer};
use crate::sigv4;
use crate::sts::QueryCaller;
use crate::transport::{Http, Reply, TransportError};
use bytes::Bytes;
use http_body_util::Full;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Deadline of each attempt.
    pub attempt_timeout: Duration,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// First backoff ceiling; it doubles per retry.
    pub backoff_base: Duration,
    /// Largest backoff ceiling.
    pub backoff_cap: Duration,
    /// Sustained requests per second allowed per service (a token bucket holding one second's
    /// worth); services not listed are not limited.
    pub rate_limits: Vec<(Service, f64)>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            attempt_timeout: Duration::from_secs(10),
            max_attempts: 4,
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(5),
            rate_limits: Vec::new(),
        }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// A 2xx answer.
    Success,
    /// The service said to slow down.
    Throttled,
    /// A 5xx answer.
    ServerError,
    /// Any other error answer (not retried).
    ClientError,
    /// No answer within the attempt deadline.
    Timeout,
    /// The connection failed or broke.
    NetworkError,
}

impl Outcome {
    /// The label value in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Throttled => "throttled",
            Outcome::ServerError => "server_error",
            Outcome::ClientError => "client_error",
            Outcome::Timeout => "timeout",
            Outcome::NetworkError => "network_error",
        }
    }

    fn retried(self) -> bool {
        !matches!(self, Outcome::Success | Outcome::ClientError)
    }
}

/// Attempts counted by service, operation and outcome.
#[derive(Debug, Default)]
pub struct CallCounts {
    counts: Mutex<BTreeMap<(Service, &'static str, Outcome), u64>>,
}

impl CallCounts {
    fn add(&self, service: Service, operation: &'static str, outcome: Outcome) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry((service, operation, outcome)).or_default() += 1;
        }
    }

    /// Every count so far.
    pub fn snapshot(&self) -> Vec<((Service, &'static str, Outcome), u64)> {
        self.counts
            .lock()
            .map(|c| c.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default()
    }

    /// The number of attempts of `operation` so far, whatever their outcome.
    pub fn attempts(&self, operation: &str) -> u64 {
        self.snapshot()
            .iter()
            .filter(|((_, op, _), _)| *op == operation)
            .map(|(_, n)| n)
            .sum()
    }
}

/// A token bucket refilled at `rate` per second, holding at most `rate` tokens.
struct RateLimiter {
    rate: f64,
    state: tokio::sync::Mutex<(f64, Instant)>,
}

impl RateLimiter {
    fn new(rate: f64) -> Self {
        RateLimiter {
            rate,
            state: tokio::sync::Mutex::new((rate, Instant::now())),
        }
    }

    async fn acquire(&self) {
        // Holding the lock while sleeping queues callers in order.
        let mut state = self.state.lock().await;
        let now = Instant::now();
        let (tokens, last) = *state;
        let mut tokens =
            (tokens + now.duration_since(last).as_secs_f64() * self.rate).min(self.rate);
        if tokens < 1.0 {
            tokio::time::sleep(Duration::from_secs_f64((1.0 - tokens) / self.rate)).await;
            tokens = 1.0;
        }
        *state = (tokens - 1.0, Instant::now());
    }
}

/// One request to an AWS API, before the client signs it.
#[derive(Debug, Clone)]
pub struct ApiRequest<'a> {
    /// The service: its endpoint, signing name, rate limit and counts.
    pub service: Service,
    /// The operation, for counts, logs and errors (`RemoteWrite`, `ListTasks`).
    pub operation: &'static str,
    /// HTTP method.
    pub method: http::Method,
    /// Path and query after the service's endpoint, as sent (`/workspaces/ws-1/api/v1/remote_write`);
    /// empty for the endpoint itself.
    pub path_and_query: &'a str,
    /// Headers to send and sign besides `host`, `x-amz-date` and the session token.
    pub headers: Vec<(&'a str, &'a str)>,
    /// The body.
    pub body: Bytes,
}

/// A client for the AWS APIs in one region.
pub struct AwsClient {
    config: AwsConfig,
    region: String,
    http: Http,
    credentials: CredentialsProvider,
    options: ClientOptions,
    limiters: HashMap<Service, RateLimiter>,
    counts: CallCounts,
    /// AWS time minus local time, learnt from the first answer that said the clock was off.
    clock_offset: ClockOffset,
}

impl AwsClient {
    /// A client for `region` with the endpoints and credentials `config` names.
    pub fn new(config: AwsConfig, region: String, options: ClientOptions) -> Self {
        let http = Http::new(options.attempt_timeout);
        let limiters = options
            .rate_limits
            .iter()
            .filter(|(_, rate)| *rate > 0.0)
            .map(|(service, rate)| (*service, RateLimiter::new(*rate)))
            .collect();
        AwsClient {
            credentials: CredentialsProvider::new(
                config.credentials.clone(),
                http.clone(),
                options.attempt_timeout,
            ),
            config,
            region,
            http,
            options,
            limiters,
            counts: CallCounts::default(),
            clock_offset: ClockOffset::default(),
        }
    }

    /// The region called.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Attempts so far by outcome.
    pub fn counts(&self) -> &CallCounts {
        &self.counts
    }

    /// AWS time minus local time in seconds, as learnt from an answer that rejected a request
    /// for its time (0 until then). Every request is signed with the local time plus this.
    pub fn clock_offset_seconds(&self) -> i64 {
        self.clock_offset.seconds()
    }

    /// Calls a JSON 1.1 `operation` of `service` with `input` and decodes the answer.
    pub async fn json<T: DeserializeOwned>(
        &self,
        service: Service,
        operation: &'static str,
        input: &serde_json::Value,
    ) -> Result<T, AwsError> {
        let target = format!("{}.{operation}", service.json_target_prefix());
        let request = ApiRequest {
            service,
            operation,
            method: http::Method::POST,
            path_and_query: "",
            headers: vec![
                ("content-type", "application/x-amz-json-1.1"),
                ("x-amz-target", &target),
            ],
            body: Bytes::from(input.to_string()),
        };
        let reply = self.call(request, Signer::Chain).await?;
        serde_json::from_slice(&reply.body).map_err(|e| AwsError::Decode {
            operation,
            reason: e.to_string(),
        })
    }

    /// Calls an EC2 Query `operation` with form `parameters` and returns the XML answer.
    pub async fn ec2_query(
        &self,
        operation: &'static str,
        parameters: &[(String, String)],
    ) -> Result<Bytes, AwsError> {
        self.query(Service::Ec2, operation, "2016-11-15", parameters)
            .await
    }

    /// Calls a Query protocol `operation` of `service` (API `version`) with form
    /// `parameters` and returns the XML answer.
    pub async fn query(
        &self,
        service: Service,
        operation: &'static str,
        version: &str,
        parameters: &[(String, String)],
    ) -> Result<Bytes, AwsError> {
        self.query_with(service, operation, version, parameters, Signer::Chain)
            .await
    }

    /// [`AwsClient::query`] signed as `signer` says.
    async fn query_with(
        &self,
        service: Service,
        operation: &'static str,
        version: &str,
        parameters: &[(String, String)],
        signer: Signer<'_>,
    ) -> Result<Bytes, AwsError> {
        let mut form = format!("Action={operation}&Version={version}");
        for (name, value) in parameters {
            form.push('&');
            form.push_str(&sigv4::uri_encode(name));
            form.push('=');
            form.push_str(&sigv4::uri_encode(value));
        }
        let request = ApiRequest {
            service,
            operation,
            method: http::Method::POST,
            path_and_query: "",
            headers: vec![(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            body: Bytes::from(form),
        };
        let reply = self.call(request, signer).await?;
        Ok(reply.body)
    }

    /// The credentials the next call is signed with, renewed first if they are close to
    /// expiry (as every call does).
    pub async fn current_credentials(&self) -> Result<Credentials, AwsError> {
        self.credentials
            .get(self)
            .await
            .map_err(|source| AwsError::Credentials {
                operation: "credentials",
                source,
            })
    }

    /// Sends `request` to its service in this client's region, signed with the credentials
    /// of the chain, with the service's deadline, retries, rate limit and counts: the entry
    /// point for any API (a remote write to `aps`, for example) beyond the JSON 1.1 and Query
    /// helpers. Any 2xx answer is returned; other answers are errors with their AWS code.
    pub async fn send(&self, request: ApiRequest<'_>) -> Result<Reply, AwsError> {
        self.call(request, Signer::Chain).await
    }

    async fn call(&self, request: ApiRequest<'_>, signer: Signer<'_>) -> Result<Reply, AwsError> {
        let ApiRequest {
            service,
            operation,
            method,
            path_and_query,
            headers: extra_headers,
            body,
        } = request;
        let endpoint = self.config.endpoint(service, &self.region);
        let url = format!("{}{path_and_query}", endpoint.trim_end_matches('/'));
        let uri: http::Uri = url.parse().map_err(|_| AwsError::Endpoint {
            service: service.signing_name(),
            url: url.clone(),
        })?;
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or_else(|| AwsError::Endpoint {
                service: service.signing_name(),
                url: url.clone(),
            })?;
        let path = match uri.path() {
            "" => "/",
            path => path,
        };
        let query = uri.query().unwrap_or_default();
        let mut attempt = 0;
        // One extra attempt per call when AWS says the clock is off: it is the same request
        // signed with AWS' time, not a retry of a failure that may pass by itself.
        let mut clock_corrected = false;
        loop {
            attempt += 1;
            if let Some(limiter) = self.limiters.get(&service) {
                limiter.acquire().await;
            }
            let credentials = match signer {
                Signer::Chain => Some(
                    self.credentials
                        .get(self)
                        .await
                        .map_err(|source| AwsError::Credentials { operation, source })?,
                ),
                Signer::With(credentials) => Some(credentials.clone()),
                Signer::Unsigned => None,
            };
            let amz_date = sigv4::amz_date(self.clock_offset.aws_now());
            let mut headers: Vec<(&str, &str)> =
                vec![("host", &authority), ("x-amz-date", &amz_date)];
            headers.extend(extra_headers.iter().copied());
            if let Some(token) = credentials.as_ref().and_then(|c| c.session_token.as_ref()) {
                headers.push(("x-amz-security-token", token));
            }
            let authorization = credentials.as_ref().map(|credentials| {
                sigv4::authorization(
                    &sigv4::SigningInput {
                        method: method.as_str(),
                        path,
                        query,
                        headers: &headers,
                        body: &body,
                        region: &self.region,
                        service: service.signing_name(),
                        amz_date: &amz_date,
                    },
                    credentials,
                )
            });
            let mut request = http::Request::builder()
                .method(method.clone())
                .uri(&uri)
                .header(
                    http::header::USER_AGENT,
                    concat!("ecs-prom/", env!("CARGO_PKG_VERSION")),
                );
            if let Some(authorization) = authorization {
                request = request.header(http::header::AUTHORIZATION, authorization);
            }
            for (name, value) in &headers {
                request = request.header(*name, *value);
            }
            let request =
                request
                    .body(Full::new(body.clone()))
                    .map_err(|_| AwsError::Endpoint {
                        service: service.signing_name(),
                        url: url.clone(),
                    })?;
            let started = Instant::now();
            let result = self.http.send(request, self.options.attempt_timeout).await;
            let (outcome, error) = match result {
                Ok(reply) if (200..300).contains(&reply.status) => {
                    self.counts.add(service, operation, Outcome::Success);
                    tracing::debug!(operation, elapsed = ?started.elapsed(), "AWS call");
                    return Ok(reply);
                }
                Ok(reply) => {
                    let (code, message) = error_code(&reply);
                    if !clock_corrected
                        && clock_skew::is_clock_skew_error(reply.status, &code, &message)
                    {
                        let date = reply
                            .headers
                            .get(http::header::DATE)
                            .and_then(|v| v.to_str().ok());
                        if let Some(offset) = self.clock_offset.correct_from(date) {
                            self.counts.add(service, operation, Outcome::ClientError);
                            tracing::warn!(
                                operation,
                                code = %code,
                                offset_seconds = offset,
                                "AWS rejected the request time; signing with AWS' time from now on"
                            );
                            clock_corrected = true;
                            attempt -= 1;
                            continue;
                        }
                    }
                    let outcome = classify(reply.status, &code);
                    let error = AwsError::Api {
                        operation,
                        status: reply.status,
                        code,
                        message,
                    };
                    (outcome, error)
                }
                Err(source) => {
                    let outcome = match source {
                        TransportError::Timeout(_) => Outcome::Timeout,
                        _ => Outcome::NetworkError,
                    };
                    (outcome, AwsError::Transport { operation, source })
                }
            };
            self.counts.add(service, operation, outcome);
            if !outcome.retried() || attempt >= self.options.max_attempts {
                return Err(error);
            }
            let delay = self.backoff(attempt);
            tracing::debug!(operation, attempt, outcome = outcome.as_str(), ?delay, error = %error, "retrying AWS call");
            tokio::time::sleep(delay).await;
        }
    }

    /// Full jitter: a uniformly random wait below a ceiling that doubles per attempt.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .options
            .backoff_base
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.options.backoff_cap);
        let random = RandomState::new().hash_one(Instant::now()) as f64 / u64::MAX as f64;
        ceiling.mul_f64(random)
    }
}

impl QueryCaller for AwsClient {
    fn query_signed(
        &self,
        service: Service,
        operation: &'static str,
        version: &str,
        parameters: &[(String, String)],
        signer: Signer<'_>,
    ) -> impl std::future::Future<Output = Result<Bytes, AwsError>> + Send {
        self.query_with(service, operation, version, parameters, signer)
    }
}

/// The error codes the AWS APIs use for "slow down".
const THROTTLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
];

fn classify(status: u16, code: &str) -> Outcome {
    if status == 429 || THROTTLE_CODES.contains(&code) {
        Outcome::Throttled
    } else if status >= 500 {
        Outcome::ServerError
    } else {
        Outcome::ClientError
    }
}

/// The error code and message of an error answer, from the JSON body, the
/// `x-amzn-ErrorType` header, or an EC2 XML body.
fn error_code(reply: &Reply) -> (String, String) {
    let header_code = reply
        .headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or_default().to_owned());
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&reply.body) {
        let code = json
            .get("__type")
            .or_else(|| json.get("code"))
            .and_then(|v| v.as_str())
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned());
        let message = ["message", "Message"]
            .iter()
            .find_map(|key| json.get(*key).and_then(|v| v.as_str()))
            .unwrap_or_default()
            .to_owned();
        if let Some(code) = code.or(header_code.clone()) {
            return (code, message);
        }
    }
    if let Some(code) = crate::ec2::xml_error(&reply.body) {
        return code;
    }
    let text = String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)])
        .trim()
        .to_owned();
    (
        header_code.unwrap_or_else(|| format!("HTTP{}", reply.status)),
        text,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, headers: &[(&'static str, &str)], body: &str) -> Reply {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, value.parse().expect("header value"));
        }
        Reply {
            status,
            headers: map,
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn reads_error_codes_of_every_protocol() {
        let json = reply(
            400,
            &[],
            r#"{"__type":"com.amazonaws.ecs#ThrottlingException","message":"Rate exceeded"}"#,
        );
        assert_eq!(
            error_code(&json),
            ("ThrottlingException".into(), "Rate exceeded".into())
        );
        let header = reply(
            400,
            &[(
                "x-amzn-errortype",
                "ClusterNotFoundException:http://internal",
            )],
            "{}",
        );
        assert_eq!(error_code(&header).0, "ClusterNotFoundException");
        let xml = reply(
            503,
            &[],
            "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>slow</Message></Error></Errors></Response>",
        );
        assert_eq!(
            error_code(&xml),
            ("RequestLimitExceeded".into(), "slow".into())
        );
        assert_eq!(error_code(&reply(502, &[], "bad gateway")).0, "HTTP502");
    }

    #[test]
    fn classifies_outcomes() {
        assert_eq!(classify(400, "ThrottlingException"), Outcome::Throttled);
        assert_eq!(classify(429, "Whatever"), Outcome::Throttled);
        assert_eq!(classify(503, "RequestLimitExceeded"), Outcome::Throttled);
        assert_eq!(classify(500, "InternalFailure"), Outcome::ServerError);
        assert_eq!(
            classify(400, "ClusterNotFoundException"),
            Outcome::ClientError
        );
        assert!(!Outcome::ClientError.retried() && Outcome::Timeout.retried());
    }

    #[test]
    fn backoff_stays_under_a_doubling_ceiling() {
        let client = AwsClient::new(
            AwsConfig::from_env(|_| None),
            "us-east-1".into(),
            ClientOptions::default(),
        );
        for attempt in 1..8 {
            let ceiling =
                Duration::from_millis(200 * 2u64.pow(attempt - 1)).min(Duration::from_secs(5));
            for _ in 0..50 {
                assert!(client.backoff(attempt) <= ceiling);
            }
        }
        // Jitter: 50 draws are not all the same.
        let draws: std::collections::HashSet<_> = (0..50).map(|_| client.backoff(3)).collect();
        assert!(draws.len() > 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_token_bucket_paces_calls_after_its_burst() {
        let limiter = RateLimiter::new(20.0);
        let start = Instant::now();
        for _ in 0..40 {
            limiter.acquire().await;
        }
        // 20 from the full bucket, then 20 more at 20 per second.
        let elapsed = start.elapsed().as_secs_f64();
        assert!((0.95..1.1).contains(&elapsed), "{elapsed}");
    }
}

//! Why an AWS call or the credentials for it failed.

use crate::config::ConfigError;
use crate::transport::TransportError;
pub use web::error_chain;

/// Why a call failed after its last attempt.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// No credentials.
    #[error("{operation}: no usable AWS credentials")]
    Credentials {
        /// The operation.
        operation: &'static str,
        /// Why.
        #[source]
        source: CredentialsError,
    },
    /// The service answered with an error.
    #[error("{operation}: {code} (HTTP {status}): {message}")]
    Api {
        /// The operation.
        operation: &'static str,
        /// HTTP status.
        status: u16,
        /// The AWS error code (`ThrottlingException`, `ClusterNotFoundException`, ...).
        code: String,
        /// The service's message.
        message: String,
    },
    /// No answer.
    #[error("{operation}: {source}")]
    Transport {
        /// The operation.
        operation: &'static str,
        /// Why.
        #[source]
        source: TransportError,
    },
    /// The answer was not the expected document.
    #[error("{operation}: unreadable answer: {reason}")]
    Decode {
        /// The operation.
        operation: &'static str,
        /// Why.
        reason: String,
    },
    /// The endpoint URL is not usable.
    #[error("invalid endpoint URL {url:?} for {service}")]
    Endpoint {
        /// The service.
        service: &'static str,
        /// The URL.
        url: String,
    },
}

/// Why no credentials could be had.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// A credentials endpoint could not be reached.
    #[error("{source_name} at {url}")]
    Request {
        /// Which source.
        source_name: &'static str,
        /// What was asked.
        url: String,
        /// Why.
        #[source]
        source: TransportError,
    },
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
    /// A file holding a token could not be read.
    #[error("reading {what} {}", .path.display())]
    TokenFile {
        /// Which token.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// STS refused or failed to give a role's credentials.
    #[error("{operation} {role_arn}")]
    Sts {
        /// `AssumeRole` or `AssumeRoleWithWebIdentity`.
        operation: &'static str,
        /// The role.
        role_arn: String,
        /// Why.
        #[source]
        source: Box<AwsError>,
    },
    /// A profile's `credential_process` failed or printed no usable credentials.
    #[error("credential_process of AWS profile {profile:?}: {reason}")]
    Process {
        /// The profile.
        profile: String,
        /// What went wrong.
        reason: String,
    },
    /// The SSO token is missing or expired: a person has to log in again.
    #[error(
        "AWS profile {profile:?}: the SSO token {reason}; run `aws sso login --profile {profile}`"
    )]
    SsoLogin {
        /// The profile.
        profile: String,
        /// What is wrong with the token.
        reason: String,
    },
    /// The configuration names a source that cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No source in the chain is configured.
    #[error(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, configure a profile, \
         or run with an ECS task role{}", .note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
    )]
    NotFound {
        /// What the instance metadata service said.
        note: Option<String>,
    },
}

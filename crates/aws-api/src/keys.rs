//! The keys requests are signed with, and what signs a request.

use crate::config::StaticKeys;

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

/// What a request is signed with.
#[derive(Clone, Copy)]
pub(crate) enum Signer<'a> {
    /// The credentials of the configured chain (every API call).
    Chain,
    /// Given credentials (STS `AssumeRole` with the credentials below the role).
    With(&'a Credentials),
    /// Nothing (STS `AssumeRoleWithWebIdentity`, whose token is the proof).
    Unsigned,
}

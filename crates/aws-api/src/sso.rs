//! IAM Identity Center (SSO) profiles: the token `aws sso login` cached under
//! `~/.aws/sso/cache/`, exchanged at the SSO portal for the role's credentials.

use crate::config::SsoSettings;
use crate::error::CredentialsError;
use crate::keys::Credentials;
use crate::transport::Http;
use bytes::Bytes;
use http_body_util::Full;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;
use timestamps::now as unix_now;

/// The token cache file the AWS CLI writes.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CachedToken {
    access_token: String,
    expires_at: String,
}

/// The portal's answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PortalAnswer {
    role_credentials: RoleCredentials,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleCredentials {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    session_token: Option<String>,
    /// Milliseconds since the Unix epoch.
    expiration: f64,
}

/// `<cache dir>/<SHA-1 of the session name or start URL, in hex>.json`, as the AWS CLI names it.
pub(crate) fn cache_file(sso: &SsoSettings) -> PathBuf {
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        sso.cache_key.as_bytes(),
    );
    let hex: String = digest
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    sso.cache_dir.join(format!("{hex}.json"))
}

/// The role credentials for `sso`'s account and role.
pub(crate) async fn credentials(
    http: &Http,
    sso: &SsoSettings,
    timeout: Duration,
) -> Result<Credentials, CredentialsError> {
    let login = |reason: String| CredentialsError::SsoLogin {
        profile: sso.profile.clone(),
        reason,
    };
    let path = cache_file(sso);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(login(format!(
                "is not cached ({} does not exist)",
                path.display()
            )));
        }
        Err(source) => {
            return Err(CredentialsError::TokenFile {
                what: "the SSO token cache",
                path,
                source,
            });
        }
    };
    let token: CachedToken = serde_json::from_str(&text)
        .map_err(|e| login(format!("cache {} is unreadable: {e}", path.display())))?;
    // Older AWS CLIs wrote `2019-11-14T04:05:45UTC`.
    let expires_at = timestamps::parse_rfc3339(&token.expires_at.replace("UTC", "Z"))
        .ok_or_else(|| login(format!("expiry {:?} is unreadable", token.expires_at)))?;
    if expires_at <= unix_now() {
        return Err(login(format!("expired at {}", token.expires_at)));
    }
    let url = format!(
        "{}/federation/credentials?role_name={}&account_id={}",
        sso.portal_url.trim_end_matches('/'),
        crate::sigv4::uri_encode(&sso.role_name),
        crate::sigv4::uri_encode(&sso.account_id),
    );
    let source_name = "the IAM Identity Center (SSO) portal";
    let failed = |reason: String| CredentialsError::Endpoint {
        source_name,
        url: url.clone(),
        reason,
    };
    let request = http::Request::get(&url)
        .header("x-amz-sso_bearer_token", token.access_token)
        .body(Full::new(Bytes::new()))
        .map_err(|e| failed(e.to_string()))?;
    let reply = http
        .send(request, timeout)
        .await
        .map_err(|source| CredentialsError::Request {
            source_name,
            url: url.clone(),
            source,
        })?;
    if reply.status == 401 {
        return Err(login("was refused by the portal (HTTP 401)".to_owned()));
    }
    if reply.status != 200 {
        let text = String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)])
            .trim()
            .to_owned();
        return Err(failed(format!("HTTP {}: {text}", reply.status)));
    }
    let answer: PortalAnswer = serde_json::from_slice(&reply.body)
        .map_err(|e| failed(format!("unreadable answer: {e}")))?;
    let role = answer.role_credentials;
    Ok(Credentials {
        access_key_id: role.access_key_id,
        secret_access_key: role.secret_access_key,
        session_token: role.session_token,
        expires_at: Some(role.expiration / 1000.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_file_is_named_like_the_aws_clis() {
        let sso = SsoSettings {
            profile: "dev".into(),
            cache_key: "my-sso".into(),
            cache_dir: "/home/u/.aws/sso/cache".into(),
            account_id: "1".into(),
            role_name: "R".into(),
            portal_url: "https://portal.sso.eu-west-1.amazonaws.com".into(),
        };
        // printf %s my-sso | sha1sum
        assert_eq!(
            cache_file(&sso),
            PathBuf::from("/home/u/.aws/sso/cache/0ad374308c5a4e22f723adf10145eafad7c4031c.json")
        );
    }
}

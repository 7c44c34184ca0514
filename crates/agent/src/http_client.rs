//! The HTTP side of a scrape or remote-write configuration: a client with its `tls_config`
//! (files read when the configuration is loaded), and the `Authorization` header of its
//! `basic_auth` or `authorization`, whose `*_file` secrets are read at each use so a rotated
//! secret is picked up without a reload, as Prometheus does.

use crate::config::{HttpClientConfig, Secret};
use base64::Engine as _;
use std::path::Path;
use std::time::Duration;

/// A client for `http` whose exchanges each end within `timeout`.
pub fn client(http: &HttpClientConfig, timeout: Duration) -> Result<web::Client, String> {
    let tls = &http.tls_config;
    if tls == &crate::config::TlsConfig::default() {
        return Ok(web::Client::new(timeout));
    }
    let read = |path: &Option<std::path::PathBuf>, what: &str| -> Result<Option<Vec<u8>>, String> {
        path.as_deref().map(|p| read_file(p, what)).transpose()
    };
    let options = web::ClientTls {
        ca_pem: read(&tls.ca_file, "tls_config.ca_file")?,
        cert_pem: read(&tls.cert_file, "tls_config.cert_file")?,
        key_pem: read(&tls.key_file, "tls_config.key_file")?,
        server_name: tls.server_name.clone(),
        insecure_skip_verify: tls.insecure_skip_verify,
    };
    web::Client::with_tls(timeout, &options)
        .map_err(|e| format!("tls_config: {}", web::error_chain(&e)))
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{what}: reading {}: {e}", path.display()))
}

fn secret(secret: &Secret, what: &str) -> Result<String, String> {
    match secret {
        Secret::Value(value) => Ok(value.clone()),
        Secret::File(path) => {
            let bytes = read_file(path, what)?;
            // Prometheus trims the trailing newline editors add, and only that.
            Ok(String::from_utf8_lossy(&bytes)
                .trim_end_matches(['\n', '\r'])
                .to_owned())
        }
    }
}

/// A digest of the secrets written in `http` and `more` themselves (not those in files, read at
/// each use): configurations print their secrets redacted, so a reload compares this to see
/// that only a password changed.
pub fn inline_secrets_digest(http: &HttpClientConfig, more: &[&str]) -> u64 {
    use std::hash::{Hash, Hasher};
    // Fixed keys: digests of two reloads are compared, so they must hash alike.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for secret in [
        http.basic_auth.as_ref().map(|b| &b.password),
        http.authorization.as_ref().map(|a| &a.credentials),
    ]
    .into_iter()
    .flatten()
    {
        if let Secret::Value(value) = secret {
            value.hash(&mut hasher);
        }
    }
    more.hash(&mut hasher);
    hasher.finish()
}

/// The `Authorization` header value of `http`, if it has credentials.
pub fn authorization(http: &HttpClientConfig) -> Result<Option<String>, String> {
    if let Some(basic) = &http.basic_auth {
        let password = secret(&basic.password, "basic_auth.password_file")?;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{password}", basic.username));
        return Ok(Some(format!("Basic {token}")));
    }
    if let Some(auth) = &http.authorization {
        let credentials = secret(&auth.credentials, "authorization.credentials_file")?;
        return Ok(Some(format!("{} {credentials}", auth.kind)));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::{Authorization, BasicAuth};

    #[test]
    fn credentials_become_the_header_prometheus_sends() {
        let basic = HttpClientConfig {
            basic_auth: Some(BasicAuth {
                username: "user".into(),
                password: Secret::Value("pass".into()),
            }),
            ..HttpClientConfig::default()
        };
        // base64("user:pass"), worked out by hand: dXNlcjpwYXNz.
        assert_eq!(
            authorization(&basic).unwrap().as_deref(),
            Some("Basic dXNlcjpwYXNz")
        );
        let file = std::env::temp_dir().join(format!("agent-token-{}", std::process::id()));
        std::fs::write(&file, "s3cret\n").unwrap();
        let bearer = HttpClientConfig {
            authorization: Some(Authorization {
                kind: "Bearer".into(),
                credentials: Secret::File(file.clone()),
            }),
            ..HttpClientConfig::default()
        };
        assert_eq!(
            authorization(&bearer).unwrap().as_deref(),
            Some("Bearer s3cret")
        );
        std::fs::remove_file(&file).unwrap();
        assert!(
            authorization(&bearer)
                .unwrap_err()
                .contains("credentials_file")
        );
        assert_eq!(authorization(&HttpClientConfig::default()).unwrap(), None);
    }

    #[test]
    fn the_digest_changes_with_an_inline_secret_only() {
        let with = |password: &str| HttpClientConfig {
            basic_auth: Some(BasicAuth {
                username: "user".into(),
                password: Secret::Value(password.into()),
            }),
            ..HttpClientConfig::default()
        };
        assert_eq!(
            inline_secrets_digest(&with("a"), &[]),
            inline_secrets_digest(&with("a"), &[])
        );
        assert_ne!(
            inline_secrets_digest(&with("a"), &[]),
            inline_secrets_digest(&with("b"), &[])
        );
        assert_ne!(
            inline_secrets_digest(&with("a"), &["k1"]),
            inline_secrets_digest(&with("a"), &["k2"])
        );
    }
}

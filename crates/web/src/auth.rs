//! `basic_auth_users` and `http_server_config.headers` as exporter-toolkit applies them to every
//! answer: bcrypt-checked passwords that do not reveal through timing which users exist,
//! successful checks cached so a scrape every 15 s does not cost a bcrypt each time, and the
//! configured security headers on every response, 401s included.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderName, HeaderValue, StatusCode};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Most successful verifications remembered, as in exporter-toolkit.
const CACHE_CAPACITY: usize = 100;

/// The cost of the stand-in hash for unknown users when no configured hash says otherwise:
/// exporter-toolkit's stand-in is a cost-10 hash.
const DEFAULT_DUMMY_COST: u32 = 10;

/// The users of `basic_auth_users` and what remembers their recent successful logins.
pub(crate) struct BasicAuth {
    users: BTreeMap<Vec<u8>, String>,
    /// Checked against for unknown users, at the highest cost of the configured hashes, so an
    /// unknown user costs as long as a known one with a wrong password.
    dummy_hash: String,
    /// SHA-256 digests of (user, hash, password) that verified; the passwords themselves are
    /// never kept.
    cache: Mutex<HashSet<[u8; 32]>>,
    /// One bcrypt at a time, as exporter-toolkit does: a burst of bad logins then queues instead
    /// of taking every core from the scrapes.
    bcrypt_slot: Semaphore,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The hashes stay out of logs.
        f.debug_struct("BasicAuth")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// Checks every hash and prepares the stand-in hash; `Err` names the user whose hash is
    /// not a bcrypt hash.
    pub(crate) fn new(users: &BTreeMap<String, String>) -> Result<BasicAuth, (String, String)> {
        let mut max_cost = None;
        for (user, hash) in users {
            let parts: bcrypt::HashParts = hash
                .parse()
                .map_err(|e: bcrypt::BcryptError| (user.clone(), e.to_string()))?;
            max_cost = max_cost.max(Some(parts.get_cost()));
        }
        let cost = max_cost.unwrap_or(DEFAULT_DUMMY_COST);
        // The salt does not matter: nothing is ever meant to match this hash.
        let dummy_hash = bcrypt::hash_with_salt(b"ecs-prom unknown user", cost, [7u8; 16])
            .map_err(|e| (String::new(), e.to_string()))?
            .format_for_version(bcrypt::Version::TwoB);
        Ok(BasicAuth {
            users: users
                .iter()
                .map(|(u, h)| (u.as_bytes().to_vec(), h.clone()))
                .collect(),
            dummy_hash,
            cache: Mutex::new(HashSet::new()),
            bcrypt_slot: Semaphore::new(1),
        })
    }

    /// Whether an `Authorization` header carries the right password of a configured user.
    pub(crate) async fn check(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return false;
        };
        let (known, hash) = match self.users.get(&user) {
            Some(hash) => (true, hash.clone()),
            None => (false, self.dummy_hash.clone()),
        };
        let key = cache_key(&user, &hash, &password);
        if known && self.cached(&key) {
            return true;
        }
        let verified = {
            // The semaphore is never closed, so acquiring only waits.
            let _slot = self.bcrypt_slot.acquire().await;
            tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false)
        };
        let ok = known && verified;
        if ok {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            // Only successes are cached, so filling the cache takes valid credentials; starting
            // over when full costs each real user one bcrypt.
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(key);
        }
        ok
    }

    fn cached(&self, key: &[u8; 32]) -> bool {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    #[cfg(test)]
    pub(crate) fn cache_len(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

fn cache_key(user: &[u8], hash: &str, password: &[u8]) -> [u8; 32] {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
    for part in [user, hash.as_bytes(), password] {
        digest.update(&(part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.finish().as_ref());
    key
}

/// Go's `Request.BasicAuth`: the scheme in any case, standard base64, split at the first colon.
fn parse_basic(value: &HeaderValue) -> Option<(Vec<u8>, Vec<u8>)> {
    let value = value.as_bytes();
    let prefix = b"basic ";
    if value.len() < prefix.len() || !value[..prefix.len()].eq_ignore_ascii_case(prefix) {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&value[prefix.len()..])
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// exporter-toolkit's allowed response headers, with the values allowed where the header is an
/// enumeration; kept to this list so every Prometheus component offers the same ones.
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

/// Checks `http_server_config.headers` as exporter-toolkit does (exact names, enumerated values)
/// and turns them into header pairs; `Err` is the reason.
pub(crate) fn response_headers(
    headers: &BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    headers
        .iter()
        .map(|(name, value)| {
            let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| n == name) else {
                return Err(format!(
                    "HTTP header {name:?} can not be configured (allowed: {})",
                    ALLOWED_HEADERS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            };
            if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
                return Err(format!(
                    "invalid value for {name}: expected one of {allowed:?}, got {value:?}"
                ));
            }
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| format!("HTTP header {name:?}: {e}"))?;
            let header_value = HeaderValue::from_str(value)
                .map_err(|e| format!("value of HTTP header {name}: {e}"))?;
            Ok((header_name, header_value))
        })
        .collect()
}

/// What the middleware needs: the users (if any) and the headers to add.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    pub(crate) auth: Option<Arc<BasicAuth>>,
    pub(crate) headers: Arc<Vec<(HeaderName, HeaderValue)>>,
}

/// The middleware: basic auth first (401 with `WWW-Authenticate: Basic` as Go's `http.Error`
/// writes it), then the configured headers on whatever answer goes out, unless the handler
/// set the header itself (in Go the handler's own `Set` wins too).
pub(crate) async fn guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let allowed = match &guard.auth {
        None => true,
        Some(auth) => auth.check(request.headers().get(AUTHORIZATION)).await,
    };
    let mut response = if allowed {
        next.run(request).await
    } else {
        unauthorized()
    };
    let response_headers = response.headers_mut();
    for (name, value) in guard.headers.iter() {
        if !response_headers.contains_key(name) {
            response_headers.insert(name.clone(), value.clone());
        }
    }
    response
}

fn unauthorized() -> Response {
    let mut response = Response::new(axum::body::Body::from("Unauthorized\n"));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    let headers = response.headers_mut();
    headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

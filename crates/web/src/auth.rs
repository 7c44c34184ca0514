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

/// What the middleware applies: the users (if any) and the headers to add.
#[derive(Debug, Default)]
pub(crate) struct GuardState {
    pub(crate) auth: Option<BasicAuth>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
}

/// Where the middleware reads basic auth and headers from: the web configuration file, which
/// may change them between requests.
pub(crate) trait GuardSource: Send + Sync {
    /// Basic auth and headers as the file says now.
    fn guard(&self) -> Arc<GuardState>;
}

/// The middleware: basic auth first (401 with `WWW-Authenticate: Basic` as Go's `http.Error`
/// writes it), then the configured headers on whatever answer goes out, unless the handler
/// set the header itself (in Go the handler's own `Set` wins too).
pub(crate) async fn guard(
    State(live): State<Arc<dyn GuardSource>>,
    request: Request,
    next: Next,
) -> Response {
    let guard = live.guard();
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
    for (name, value) in &guard.headers {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::WebConfig;
    use axum::body::Body;
    use axum::routing::get;
    use http::Request as HttpRequest;
    use tower_service::Service;

    /// Cheap (cost 4) hashes keep the tests fast; the cost changes nothing else.
    fn hash(password: &str, cost: u32) -> String {
        bcrypt::hash_with_salt(password, cost, [3u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY)
    }

    fn basic(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn users() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("alice".to_owned(), hash("wonderland", 4)),
            ("bob".to_owned(), hash("builder", 5)),
        ])
    }

    #[tokio::test]
    async fn right_wrong_and_unknown_users() {
        let auth = BasicAuth::new(&users()).unwrap();
        assert!(auth.check(Some(&basic("alice", "wonderland"))).await);
        assert!(auth.check(Some(&basic("bob", "builder"))).await);
        assert!(!auth.check(Some(&basic("alice", "builder"))).await);
        assert!(!auth.check(Some(&basic("carol", "wonderland"))).await);
        assert!(!auth.check(Some(&basic("alice", ""))).await);
        assert!(!auth.check(None).await);
        // Go's parsing: scheme in any case, the password may contain colons.
        let colon = BasicAuth::new(&BTreeMap::from([("u".to_owned(), hash("a:b", 4))])).unwrap();
        let lower = HeaderValue::from_str(&format!(
            "basic {}",
            base64::engine::general_purpose::STANDARD.encode("u:a:b")
        ))
        .unwrap();
        assert!(colon.check(Some(&lower)).await);
        for bad in ["Bearer abc", "Basic !!!", "Basic", "Basic dXNlcg=="] {
            assert!(
                !auth.check(Some(&HeaderValue::from_static(bad))).await,
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn unknown_users_cost_a_bcrypt_at_the_highest_configured_cost() {
        let auth = BasicAuth::new(&users()).unwrap();
        let dummy: bcrypt::HashParts = auth.dummy_hash.parse().unwrap();
        assert_eq!(dummy.get_cost(), 5);
        let none = BasicAuth::new(&BTreeMap::new()).unwrap();
        let dummy: bcrypt::HashParts = none.dummy_hash.parse().unwrap();
        assert_eq!(dummy.get_cost(), DEFAULT_DUMMY_COST);
    }

    #[tokio::test]
    async fn only_successes_are_cached_and_without_the_password() {
        let auth = BasicAuth::new(&users()).unwrap();
        assert!(!auth.check(Some(&basic("alice", "nope"))).await);
        assert!(!auth.check(Some(&basic("nobody", "nope"))).await);
        assert_eq!(auth.cache_len(), 0);
        assert!(auth.check(Some(&basic("alice", "wonderland"))).await);
        assert_eq!(auth.cache_len(), 1);
        assert!(auth.check(Some(&basic("alice", "wonderland"))).await);
        assert_eq!(auth.cache_len(), 1);
        let key = cache_key(b"alice", &auth.users[b"alice".as_slice()], b"wonderland");
        assert!(auth.cached(&key));
        // A cached success does not make a wrong password pass.
        assert!(!auth.check(Some(&basic("alice", "wonderland!"))).await);
        assert!(auth.check(Some(&basic("bob", "builder"))).await);
        assert_eq!(auth.cache_len(), 2);
    }

    #[tokio::test]
    async fn a_cached_success_skips_bcrypt() {
        // Cost 12 takes a visible time; once cached, a thousand checks take less than one.
        let users = BTreeMap::from([("slow".to_owned(), hash("pw", 12))]);
        let auth = BasicAuth::new(&users).unwrap();
        let started = std::time::Instant::now();
        assert!(auth.check(Some(&basic("slow", "pw"))).await);
        let first = started.elapsed();
        let started = std::time::Instant::now();
        for _ in 0..1000 {
            assert!(auth.check(Some(&basic("slow", "pw"))).await);
        }
        assert!(
            started.elapsed() < first,
            "{:?} vs {first:?}",
            started.elapsed()
        );
    }

    async fn call(router: &mut axum::Router, auth: Option<HeaderValue>, path: &str) -> Response {
        let mut request = HttpRequest::get(path);
        if let Some(auth) = auth {
            request = request.header(AUTHORIZATION, auth);
        }
        router
            .call(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn body(response: Response) -> String {
        let bytes = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap()
            .to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn router(yaml: &str) -> axum::Router {
        let dir = std::env::temp_dir();
        let path = dir.join(format!("ecs-prom-web-auth-{}.yml", std::process::id()));
        let web = WebConfig::parse(yaml, &path, &dir).unwrap();
        web.apply(
            axum::Router::new()
                .route("/metrics", get(|| async { "up 1\n" }))
                .route(
                    "/framed",
                    get(|| async { ([("x-frame-options", "sameorigin")], "framed") }),
                ),
        )
    }

    #[tokio::test]
    async fn the_router_answers_401_with_www_authenticate_and_the_headers() {
        let yaml = format!(
            "basic_auth_users:\n  alice: {}\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=60\n",
            hash("wonderland", 4)
        );
        let mut router = router(&yaml);

        let ok = call(&mut router, Some(basic("alice", "wonderland")), "/metrics").await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()["x-frame-options"], "deny");
        assert_eq!(ok.headers()["strict-transport-security"], "max-age=60");
        assert!(ok.headers().get(WWW_AUTHENTICATE).is_none());
        assert_eq!(body(ok).await, "up 1\n");

        for auth in [
            None,
            Some(basic("alice", "rabbit")),
            Some(basic("mallory", "wonderland")),
        ] {
            let denied = call(&mut router, auth.clone(), "/metrics").await;
            assert_eq!(denied.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
            assert_eq!(denied.headers()[WWW_AUTHENTICATE], "Basic");
            assert_eq!(denied.headers()["x-frame-options"], "deny");
            assert_eq!(body(denied).await, "Unauthorized\n");
        }

        // Unknown paths are behind the password too, and still get the headers.
        let missing = call(&mut router, None, "/nothing").await;
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
        let missing = call(&mut router, Some(basic("alice", "wonderland")), "/nothing").await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(missing.headers()["x-frame-options"], "deny");

        // A header the handler sets itself is left alone.
        let framed = call(&mut router, Some(basic("alice", "wonderland")), "/framed").await;
        assert_eq!(framed.headers()["x-frame-options"], "sameorigin");
    }

    #[tokio::test]
    async fn headers_alone_need_no_password() {
        let mut router =
            router("http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n");
        let ok = call(&mut router, None, "/metrics").await;
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
    }

    #[test]
    fn header_rules() {
        let ok = response_headers(&BTreeMap::from([
            ("X-XSS-Protection".to_owned(), "0".to_owned()),
            (
                "Content-Security-Policy".to_owned(),
                "default-src 'none'".to_owned(),
            ),
        ]))
        .unwrap();
        assert_eq!(ok.len(), 2);
        let bad = response_headers(&BTreeMap::from([(
            "Strict-Transport-Security".to_owned(),
            "max-age=1\nX-Evil: 1".to_owned(),
        )]))
        .unwrap_err();
        assert!(bad.contains("Strict-Transport-Security"), "{bad}");
    }

    proptest::proptest! {
        /// Any Authorization header is a pair or nothing, never a panic; what a client encodes
        /// is read back unchanged.
        #[test]
        fn authorization_headers_parse_like_go(
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            user in "[^:]{0,16}",
            password in ".{0,24}",
        ) {
            if let Ok(value) = HeaderValue::from_bytes(&raw) {
                let _ = parse_basic(&value);
            }
            let parsed = parse_basic(&basic(&user, &password));
            proptest::prop_assert_eq!(
                parsed,
                Some((user.into_bytes(), password.into_bytes()))
            );
        }
    }
}

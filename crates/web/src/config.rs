//! The web configuration file of `--web.config.file`, in Prometheus exporter-toolkit's format
//! and with its behaviour: `tls_server_config` (certificates re-read when they change,
//! client certificates), `basic_auth_users` (bcrypt hashes) and `http_server_config.headers`.

use crate::auth::{BasicAuth, GuardSource, GuardState};
pub use crate::error::WebConfigError;
use crate::error::error_chain;
use crate::tls::{RawTlsConfig, Stamp, TlsParts, TlsServer, TlsSource, file_stamp};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttpConfig {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

/// The whole file. Strict like exporter-toolkit's `yaml.UnmarshalStrict`: a misspelt field is
/// an error, not a silently open server.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    tls_server_config: Option<RawTlsConfig>,
    http_server_config: Option<RawHttpConfig>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    /// Newer exporter-toolkit releases have it; refused by name below rather than as unknown.
    rate_limit: Option<serde::de::IgnoredAny>,
}

/// A checked configuration, before it is put in service.
struct Parsed {
    tls: Option<TlsParts>,
    guard: Arc<GuardState>,
    http2: bool,
}

/// A loaded web configuration. Like exporter-toolkit, which reads the file at every request,
/// ecs-prom checks the file (a `stat`) at each connection and request and reads it again when
/// it changed: users, headers, client certificate settings and certificates apply without a
/// restart. A changed file that cannot be used is logged and the last good configuration stays
/// in service. Turning TLS on or off takes a restart, as in exporter-toolkit.
#[derive(Debug)]
pub struct WebConfig {
    live: Arc<Live>,
    tls: Option<Arc<TlsServer>>,
    http2: bool,
}

impl Default for WebConfig {
    /// No file: no TLS, no basic auth, no headers.
    fn default() -> Self {
        WebConfig {
            live: Arc::new(Live {
                file: None,
                state: Mutex::new(LiveState {
                    stamps: Vec::new(),
                    watched: Vec::new(),
                    guard: Arc::new(GuardState::default()),
                    tls: None,
                }),
            }),
            tls: None,
            http2: true,
        }
    }
}

/// The configuration in service, and the file it comes from.
#[derive(Debug)]
pub(crate) struct Live {
    file: Option<PathBuf>,
    state: Mutex<LiveState>,
}

#[derive(Debug)]
struct LiveState {
    /// The file and the `watched` files as they were when last read (or tried).
    stamps: Vec<Option<Stamp>>,
    /// Files the configuration read once (the client CA file): a change to one of them is a
    /// change to the configuration.
    watched: Vec<PathBuf>,
    guard: Arc<GuardState>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl GuardSource for Live {
    fn guard(&self) -> Arc<GuardState> {
        self.refreshed().guard.clone()
    }
}

impl TlsSource for Live {
    fn tls_config(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.refreshed().tls.clone()
    }
}

impl Live {
    fn refreshed(&self) -> MutexGuard<'_, LiveState> {
        // A panic elsewhere while holding the lock leaves a consistent state behind.
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(path) = &self.file else {
            return state;
        };
        let now = stamps(path, &state.watched);
        if now == state.stamps {
            return state;
        }
        // Recorded whatever the outcome, so a broken file is logged once, not at every request.
        state.stamps = now;
        match WebConfig::read(path) {
            // Turning TLS on or off takes a restart; such a file is not applied at all, so
            // what is in service always comes from one version of the file.
            Ok(parsed) if parsed.tls.is_some() != state.tls.is_some() => tracing::warn!(
                path = %path.display(),
                "the web configuration file changed whether TLS is on, which takes a restart; the previous configuration stays in service"
            ),
            Ok(parsed) => {
                state.guard = parsed.guard;
                let (tls, watched) = match parsed.tls {
                    Some(tls) => (Some(tls.config), tls.watched),
                    None => (None, Vec::new()),
                };
                state.tls = tls;
                if watched != state.watched {
                    state.stamps = stamps(path, &watched);
                    state.watched = watched;
                }
                tracing::info!(path = %path.display(), "web configuration file re-read after it changed");
            }
            Err(error) => tracing::warn!(
                error = %error_chain(&error),
                "web configuration file changed but cannot be used; the previous configuration stays in service"
            ),
        }
        state
    }
}

fn stamps(file: &Path, watched: &[PathBuf]) -> Vec<Option<Stamp>> {
    std::iter::once(file)
        .chain(watched.iter().map(PathBuf::as_path))
        .map(file_stamp)
        .collect()
}

impl WebConfig {
    /// Reads and checks the file at `path`, and the certificate files it names (relative
    /// paths are relative to the file's directory).
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let before = file_stamp(path);
        let parsed = WebConfig::read(path)?;
        Ok(WebConfig::serve(parsed, Some((path.to_owned(), before))))
    }

    fn read(path: &Path) -> Result<Parsed, WebConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| WebConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        parse(&text, path, dir)
    }

    /// Puts `parsed` in service; `file` is where it was read from and the file's stamp from
    /// just before.
    fn serve(parsed: Parsed, file: Option<(PathBuf, Option<Stamp>)>) -> WebConfig {
        let tls_config = parsed.tls.as_ref().map(|tls| tls.config.clone());
        let watched = parsed
            .tls
            .as_ref()
            .map(|tls| tls.watched.clone())
            .unwrap_or_default();
        let (file, stamps) = match file {
            Some((path, before)) => {
                // The file's stamp from before it was read, so a change during the read is
                // seen at the next request.
                let mut now = stamps(&path, &watched);
                now[0] = before;
                (Some(path), now)
            }
            None => (None, Vec::new()),
        };
        let live = Arc::new(Live {
            file,
            state: Mutex::new(LiveState {
                stamps,
                watched,
                guard: parsed.guard,
                tls: tls_config,
            }),
        });
        let tls = parsed
            .tls
            .map(|parts| Arc::new(TlsServer::new(live.clone(), parts)));
        WebConfig {
            live,
            tls,
            http2: parsed.http2,
        }
    }

    /// `text` checked as the content of the file at `path` (files it names are looked up in
    /// `dir`), never read again.
    #[cfg(test)]
    pub(crate) fn parse(text: &str, path: &Path, dir: &Path) -> Result<WebConfig, WebConfigError> {
        Ok(WebConfig::serve(parse(text, path, dir)?, None))
    }

    /// `router` behind the configured basic auth, with the configured response headers (as
    /// the file says at each request).
    pub fn apply(&self, router: axum::Router) -> axum::Router {
        let source: Arc<dyn GuardSource> = self.live.clone();
        router.layer(axum::middleware::from_fn_with_state(
            source,
            crate::auth::guard,
        ))
    }

    /// The TLS server when `tls_server_config` turns TLS on; `None` means plain HTTP.
    pub fn tls(&self) -> Option<Arc<TlsServer>> {
        self.tls.clone()
    }

    /// Whether basic auth is on.
    pub fn has_basic_auth(&self) -> bool {
        self.live.guard().auth.is_some()
    }

    /// `http_server_config.http2` (default true). It has no effect: ecs-prom's servers speak
    /// HTTP/1.1 only.
    pub fn http2(&self) -> bool {
        self.http2
    }

    #[cfg(test)]
    pub(crate) fn headers(&self) -> Vec<(http::HeaderName, http::HeaderValue)> {
        self.live.guard().headers.clone()
    }
}

/// Checks `text` as the content of the file at `path`; files it names are looked up in `dir`.
fn parse(text: &str, path: &Path, dir: &Path) -> Result<Parsed, WebConfigError> {
    let invalid = |field: &str, reason: String| WebConfigError::Invalid {
        path: path.to_owned(),
        field: field.to_owned(),
        reason,
    };
    // An empty file is a valid configuration that changes nothing, as in exporter-toolkit.
    let raw: RawConfig = if text.trim().is_empty() {
        RawConfig::default()
    } else {
        // One line with the position and the field, without the source excerpt: the error
        // ends up in a log line or after `--web.config.file:` on standard error.
        let options = serde_saphyr::options! { with_snippet: false };
        serde_saphyr::from_str_with_options(text, options).map_err(|source| {
            WebConfigError::Parse {
                path: path.to_owned(),
                source: Box::new(source),
            }
        })?
    };
    if raw.rate_limit.is_some() {
        return Err(invalid(
            "rate_limit",
            "not supported by ecs-prom; remove it".to_owned(),
        ));
    }

    let tls = match &raw.tls_server_config {
        Some(tls) => crate::tls::build(tls, path, dir)?,
        None => None,
    };

    let auth = match raw.basic_auth_users.as_ref().filter(|u| !u.is_empty()) {
        None => None,
        Some(users) => Some(BasicAuth::new(users).map_err(|(user, reason)| {
            invalid(
                &format!("basic_auth_users.{user}"),
                format!("not a bcrypt hash: {reason}"),
            )
        })?),
    };

    let http = raw.http_server_config.unwrap_or_default();
    let headers = crate::auth::response_headers(&http.headers.unwrap_or_default())
        .map_err(|reason| invalid("http_server_config.headers", reason))?;
    // exporter-toolkit's default; the servers speak HTTP/1.1 only, so it changes nothing.
    let http2 = http.http2.unwrap_or(true);

    Ok(Parsed {
        tls,
        guard: Arc::new(GuardState { auth, headers }),
        http2,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::test_pki::Pki;

    /// Writes `yaml` as `web.yml` beside the certificates and loads it.
    fn load(pki: &Pki, yaml: &str) -> Result<WebConfig, WebConfigError> {
        WebConfig::load(&pki.write("web.yml", yaml))
    }

    /// The field an `Invalid` error names, and its whole message.
    fn invalid_field(result: Result<WebConfig, WebConfigError>) -> (String, String) {
        match result {
            Err(error @ WebConfigError::Invalid { .. }) => {
                let message = error.to_string();
                let WebConfigError::Invalid { field, .. } = error else {
                    unreachable!()
                };
                (field, message)
            }
            other => panic!("expected an Invalid error, got {other:?}"),
        }
    }

    fn parse_error(result: Result<WebConfig, WebConfigError>) -> String {
        match result {
            Err(WebConfigError::Parse { source, .. }) => source.to_string(),
            other => panic!("expected a Parse error, got {other:?}"),
        }
    }

    const TLS: &str = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";

    // A cost-4 bcrypt hash of "secret" (cheap for tests).
    fn hash(password: &str) -> String {
        bcrypt::hash_with_salt(password, 4, [1u8; 16])
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY)
    }

    #[test]
    fn an_empty_file_changes_nothing() {
        let pki = Pki::new("empty");
        for text in ["", "\n# only a comment\n", "{}"] {
            let web = load(&pki, text).unwrap();
            assert!(web.tls().is_none(), "{text:?}");
            assert!(!web.has_basic_auth());
            assert!(web.headers().is_empty());
            assert!(web.http2());
        }
    }

    #[test]
    fn every_field_is_read() {
        let pki = Pki::standard("every-field");
        let yaml = format!(
            "tls_server_config:
  cert_file: server.pem
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.pem
  cipher_suites:
    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    - TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
    - TLS_AES_128_GCM_SHA256
  curve_preferences: [X25519, CurveP256]
  min_version: TLS12
  max_version: TLS13
  prefer_server_cipher_suites: false
  client_allowed_sans: [scraper.example, 10.0.0.1]
http_server_config:
  http2: false
  headers:
    Strict-Transport-Security: max-age=31536000
    X-Content-Type-Options: nosniff
    X-Frame-Options: deny
    X-XSS-Protection: 1; mode=block
    Content-Security-Policy: default-src 'self'
basic_auth_users:
  alice: {}
  bob: {}
",
            hash("a"),
            hash("b")
        );
        let web = load(&pki, &yaml).unwrap();
        let tls = web.tls().expect("TLS is on");
        let config = tls.server_config().unwrap();
        assert!(!config.ignore_client_order);
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let suites: Vec<_> = config
            .crypto_provider()
            .cipher_suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .map(|s| s.suite().as_str().unwrap_or("?"))
            .collect();
        assert_eq!(
            suites,
            [
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
            ]
        );
        // TLS 1.3 suites are not configurable, as in Go: all three stay.
        assert_eq!(
            config
                .crypto_provider()
                .cipher_suites
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS13)
                .count(),
            3
        );
        let groups: Vec<_> = config
            .crypto_provider()
            .kx_groups
            .iter()
            .map(|g| g.name())
            .collect();
        assert_eq!(
            groups,
            [rustls::NamedGroup::X25519, rustls::NamedGroup::secp256r1]
        );
        assert!(web.has_basic_auth());
        assert!(!web.http2());
        let headers = web.headers();
        let names: Vec<_> = headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "content-security-policy",
                "strict-transport-security",
                "x-content-type-options",
                "x-frame-options",
                "x-xss-protection"
            ]
        );
    }

    #[test]
    fn inline_cert_key_and_client_ca_are_read() {
        let pki = Pki::standard("inline");
        let indent = |bytes: Vec<u8>| {
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        };
        let yaml = format!(
            "tls_server_config:\n  cert: |\n{}  key: |\n{}  client_ca: |\n{}  client_auth_type: RequireAndVerifyClientCert\n",
            indent(pki.read("server.pem")),
            indent(pki.read("server.key")),
            indent(pki.read("ca.pem")),
        );
        assert!(load(&pki, &yaml).unwrap().tls().is_some());
    }

    #[test]
    fn files_are_relative_to_the_configuration_files_directory() {
        let pki = Pki::standard("relative");
        std::fs::create_dir(pki.path("conf")).unwrap();
        std::fs::rename(pki.path("server.pem"), pki.path("conf/server.pem")).unwrap();
        std::fs::rename(pki.path("server.key"), pki.path("conf/server.key")).unwrap();
        let path = pki.write("conf/web.yml", TLS);
        // Loaded from elsewhere: the files are still found beside web.yml.
        assert!(WebConfig::load(&path).unwrap().tls().is_some());
        // Absolute paths stay as written.
        let absolute = format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
            pki.path("conf/server.pem").display(),
            pki.path("conf/server.key").display()
        );
        assert!(load(&pki, &absolute).unwrap().tls().is_some());
        // Relative to the file, not to the working directory: from the parent they are missing.
        let (field, message) = invalid_field(load(&pki, TLS));
        assert_eq!(field, "tls_server_config.cert_file");
        assert!(
            message.contains(&pki.path("server.pem").display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn unknown_fields_are_errors_naming_the_field() {
        let pki = Pki::new("unknown");
        let message = parse_error(load(&pki, "tls_server_confg: {}\n"));
        assert!(message.contains("tls_server_confg"), "{message}");
        // One line, with the position.
        assert!(!message.contains('\n'), "{message}");
        assert!(message.contains("line 1, column 1"), "{message}");
        // Duplicate keys are refused, as by yaml.v2's strict mode.
        let message = parse_error(load(&pki, "basic_auth_users:\n  alice: x\n  alice: y\n"));
        assert!(message.contains("duplicate"), "{message}");
        let message = parse_error(load(&pki, "tls_server_config:\n  certfile: a.pem\n"));
        assert!(message.contains("certfile"), "{message}");
        let message = parse_error(load(&pki, "http_server_config:\n  header: {}\n"));
        assert!(message.contains("header"), "{message}");
        let message = parse_error(load(&pki, "http_server_config:\n  http2: maybe\n"));
        assert!(
            message.contains("http2") || message.contains("bool"),
            "{message}"
        );
        let message = parse_error(load(&pki, "basic_auth_users: [alice]\n"));
        assert!(!message.is_empty());
    }

    #[test]
    fn scalars_read_as_text_as_in_go() {
        // yaml.v2 reads a number into a string field; so must we, or `X-XSS-Protection: 0`
        // (the usual value) would be refused.
        let pki = Pki::new("scalars");
        let web = load(
            &pki,
            "http_server_config:\n  headers:\n    X-XSS-Protection: 0\n    Strict-Transport-Security: max-age=31536000\n",
        )
        .unwrap();
        assert_eq!(web.headers()[1].0, "x-xss-protection");
        assert_eq!(web.headers()[1].1, "0");
    }

    #[test]
    fn rate_limit_is_refused_by_name() {
        let pki = Pki::new("rate-limit");
        let (field, _) = invalid_field(load(&pki, "rate_limit:\n  interval: 1s\n  burst: 5\n"));
        assert_eq!(field, "rate_limit");
    }

    #[test]
    fn a_missing_file_is_a_read_error() {
        let error = WebConfig::load(Path::new("/nonexistent/web.yml")).unwrap_err();
        assert!(matches!(error, WebConfigError::Read { .. }), "{error:?}");
    }

    #[test]
    fn tls_without_its_certificate_or_key_is_an_error() {
        let pki = Pki::standard("missing");
        let (field, message) =
            invalid_field(load(&pki, "tls_server_config:\n  key_file: server.key\n"));
        assert_eq!(field, "tls_server_config.cert_file");
        assert!(
            message.contains("missing one of cert or cert_file"),
            "{message}"
        );
        let (field, _) = invalid_field(load(&pki, "tls_server_config:\n  cert_file: server.pem\n"));
        assert_eq!(field, "tls_server_config.key_file");
        // A key that is not the certificate's.
        let (field, message) = invalid_field(load(
            &pki,
            "tls_server_config:\n  cert_file: server.pem\n  key_file: client.key\n",
        ));
        assert_eq!(field, "tls_server_config.cert_file");
        assert!(message.contains("client.key"), "{message}");
        // A certificate file without a certificate.
        let (field, message) = invalid_field(load(
            &pki,
            "tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n",
        ));
        assert_eq!(field, "tls_server_config.cert_file");
        assert!(message.contains("CERTIFICATE"), "{message}");
    }

    #[test]
    fn fields_that_do_not_turn_tls_on_leave_plain_http() {
        let pki = Pki::new("no-tls");
        let web = load(&pki, "tls_server_config:\n  min_version: TLS13\n").unwrap();
        assert!(web.tls().is_none());
    }

    #[test]
    fn client_auth_types() {
        let pki = Pki::standard("client-auth");
        for (policy, ca, expected) in [
            ("NoClientCert", false, "NoClientCert"),
            ("RequestClientCert", false, "RequestClientCert"),
            ("RequireAnyClientCert", false, "RequireAnyClientCert"),
            ("RequireClientCert", false, "RequireAnyClientCert"),
            ("VerifyClientCertIfGiven", true, "VerifyClientCertIfGiven"),
            (
                "RequireAndVerifyClientCert",
                true,
                "RequireAndVerifyClientCert",
            ),
            ("RequestClientCert", true, "RequestClientCert"),
        ] {
            let yaml = format!(
                "{TLS}  client_auth_type: {policy}\n{}",
                if ca { "  client_ca_file: ca.pem\n" } else { "" }
            );
            let tls = load(&pki, &yaml).unwrap().tls().unwrap();
            assert_eq!(tls.client_auth_name(), expected);
        }

        let (field, message) =
            invalid_field(load(&pki, &format!("{TLS}  client_auth_type: Always\n")));
        assert_eq!(field, "tls_server_config.client_auth_type");
        assert!(message.contains("\"Always\""), "{message}");

        let (field, message) =
            invalid_field(load(&pki, &format!("{TLS}  client_ca_file: ca.pem\n")));
        assert_eq!(field, "tls_server_config.client_auth_type");
        assert!(
            message.contains("without a client auth policy"),
            "{message}"
        );

        let (field, _) = invalid_field(load(
            &pki,
            &format!("{TLS}  client_auth_type: RequireAndVerifyClientCert\n"),
        ));
        assert_eq!(field, "tls_server_config.client_ca_file");

        let (field, message) = invalid_field(load(
            &pki,
            &format!(
                "{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: server.key\n"
            ),
        ));
        assert_eq!(field, "tls_server_config.client_ca_file");
        assert!(message.contains("no usable CA certificate"), "{message}");
    }

    #[test]
    fn client_allowed_sans_needs_a_required_certificate_and_a_name_rustls_can_match() {
        let pki = Pki::standard("sans");
        let (field, message) = invalid_field(load(
            &pki,
            &format!(
                "{TLS}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n  client_allowed_sans: [scraper.example]\n"
            ),
        ));
        assert_eq!(field, "tls_server_config.client_allowed_sans");
        assert!(message.contains("RequireAnyClientCert"), "{message}");
        let (field, message) = invalid_field(load(
            &pki,
            &format!(
                "{TLS}  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: [\"scraper@example.com\"]\n"
            ),
        ));
        assert_eq!(field, "tls_server_config.client_allowed_sans");
        assert!(message.contains("scraper@example.com"), "{message}");
    }

    #[test]
    fn versions() {
        let pki = Pki::standard("versions");
        let with = |min: &str, max: &str| {
            let mut yaml = TLS.to_owned();
            if !min.is_empty() {
                yaml.push_str(&format!("  min_version: {min}\n"));
            }
            if !max.is_empty() {
                yaml.push_str(&format!("  max_version: {max}\n"));
            }
            load(&pki, &yaml)
        };
        let versions = |web: WebConfig| {
            let tls = web.tls().unwrap();
            [
                rustls::ProtocolVersion::TLSv1_2,
                rustls::ProtocolVersion::TLSv1_3,
            ]
            .iter()
            .map(|v| tls.versions().contains(v))
            .collect::<Vec<_>>()
        };
        assert_eq!(versions(with("", "").unwrap()), [true, true]);
        assert_eq!(versions(with("TLS13", "").unwrap()), [false, true]);
        assert_eq!(versions(with("", "TLS12").unwrap()), [true, false]);
        for (min, max, field, words) in [
            ("TLS10", "", "min_version", "TLS 1.2 and 1.3 only"),
            ("TLS11", "", "min_version", "TLS 1.2 and 1.3 only"),
            ("", "TLS11", "max_version", "TLS 1.2 and 1.3 only"),
            ("TLS14", "", "min_version", "unknown TLS version"),
            ("TLS13", "TLS12", "min_version", "above max_version"),
        ] {
            let (got, message) = invalid_field(with(min, max));
            assert_eq!(got, format!("tls_server_config.{field}"), "{min} {max}");
            assert!(message.contains(words), "{message}");
        }
    }

    #[test]
    fn cipher_suites_and_curves_rustls_lacks_are_refused_by_name() {
        let pki = Pki::standard("suites");
        let (field, message) = invalid_field(load(
            &pki,
            &format!("{TLS}  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n"),
        ));
        assert_eq!(field, "tls_server_config.cipher_suites");
        assert!(message.contains("not implemented by rustls"), "{message}");
        let (_, message) =
            invalid_field(load(&pki, &format!("{TLS}  cipher_suites: [TLS_FAST]\n")));
        assert!(message.contains("unknown cipher suite"), "{message}");
        let (field, message) = invalid_field(load(
            &pki,
            &format!("{TLS}  curve_preferences: [CurveP521]\n"),
        ));
        assert_eq!(field, "tls_server_config.curve_preferences");
        assert!(message.contains("CurveP521"), "{message}");
        let (_, message) = invalid_field(load(
            &pki,
            &format!("{TLS}  curve_preferences: [Curve25519x]\n"),
        ));
        assert!(message.contains("unknown curve"), "{message}");
        // Only RSA-key suites with an ECDSA certificate: no suite can ever be used with TLS 1.2
        // alone, which rustls itself reports at the first handshake; with TLS 1.3 it is fine.
        assert!(
            load(
                &pki,
                &format!("{TLS}  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]\n")
            )
            .is_ok()
        );
    }

    #[test]
    fn basic_auth_users_need_bcrypt_hashes() {
        let pki = Pki::new("users");
        let (field, message) = invalid_field(load(
            &pki,
            &format!(
                "basic_auth_users:\n  alice: {}\n  bob: plaintext\n",
                hash("a")
            ),
        ));
        assert_eq!(field, "basic_auth_users.bob");
        assert!(message.contains("not a bcrypt hash"), "{message}");
        // An empty map is no basic auth, as in exporter-toolkit.
        assert!(
            !load(&pki, "basic_auth_users: {}\n")
                .unwrap()
                .has_basic_auth()
        );
    }

    #[test]
    fn only_exporter_toolkits_headers_and_values_are_allowed() {
        let pki = Pki::new("headers");
        let (field, message) = invalid_field(load(
            &pki,
            "http_server_config:\n  headers:\n    Server: ecs-prom\n",
        ));
        assert_eq!(field, "http_server_config.headers");
        assert!(
            message.contains("\"Server\" can not be configured"),
            "{message}"
        );
        let (_, message) = invalid_field(load(
            &pki,
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
        ));
        assert!(message.contains("X-Frame-Options"), "{message}");
        let (_, message) = invalid_field(load(
            &pki,
            "http_server_config:\n  headers:\n    X-Content-Type-Options: sniff\n",
        ));
        assert!(message.contains("nosniff"), "{message}");
        // Names are matched exactly, as exporter-toolkit's map lookup does.
        assert!(
            load(
                &pki,
                "http_server_config:\n  headers:\n    x-frame-options: deny\n"
            )
            .is_err()
        );
        let web = load(
            &pki,
            "http_server_config:\n  headers:\n    X-Frame-Options: sameorigin\n",
        )
        .unwrap();
        assert_eq!(web.headers()[0].1, "sameorigin");
    }

    #[test]
    fn an_alias_bomb_is_refused_quickly() {
        // Under rate_limit, which is read through to its end before being refused: 10^12
        // elements if aliases were expanded without a limit.
        let pki = Pki::new("bomb");
        let mut yaml = String::from("rate_limit:\n  - &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let p = i - 1;
            yaml.push_str(&format!(
                "  - &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let started = std::time::Instant::now();
        let message = parse_error(load(&pki, &yaml));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(
            message.contains("alias") || message.contains("budget"),
            "{message}"
        );
    }

    proptest::proptest! {
        /// Whatever the file holds, loading it ends in a configuration or an error, never a
        /// panic.
        #[test]
        fn any_file_is_a_configuration_or_an_error(
            text in "(tls_server_config|http_server_config|basic_auth_users|headers|http2|cert_file|min_version|client_auth_type|[a-z_:\\- \n\\[\\]{}\"'#&*!|>0-9.$])*"
        ) {
            let dir = std::env::temp_dir();
            let _ = WebConfig::parse(&text, &dir.join("web.yml"), &dir);
        }
    }
}

//! TLS for every ecs-prom server as exporter-toolkit's `tls_server_config` describes it, on
//! rustls with ring: the certificate and key re-read when they change on disk, the five Go
//! client-authentication policies, versions, cipher suites and curves, allowed client SANs, and
//! the Go server's plain-text answer to plain HTTP sent to the TLS port.

use crate::error::WebConfigError;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, SupportedKxGroup, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
    SupportedCipherSuite, SupportedProtocolVersion,
};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// What Go's `net/http` server (hence every exporter-toolkit exporter) writes back when a
/// client speaks plain HTTP to its TLS port; the same words make the mistake as easy to spot.
const PLAIN_HTTP_ANSWER: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// How long the rest of a plain HTTP request is read and dropped after the 400 answer, so the
/// kernel closes with a FIN the client reads the answer from rather than a reset that loses it.
const PLAIN_HTTP_DRAIN: Duration = Duration::from_millis(500);

/// `tls_server_config` as written; `build` checks it and builds the server.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTlsConfig {
    pub(crate) cert: Option<String>,
    pub(crate) key: Option<String>,
    pub(crate) client_ca: Option<String>,
    pub(crate) cert_file: Option<String>,
    pub(crate) key_file: Option<String>,
    pub(crate) client_auth_type: Option<String>,
    pub(crate) client_ca_file: Option<String>,
    pub(crate) cipher_suites: Option<Vec<String>>,
    pub(crate) curve_preferences: Option<Vec<String>>,
    pub(crate) min_version: Option<String>,
    pub(crate) max_version: Option<String>,
    pub(crate) prefer_server_cipher_suites: Option<bool>,
    pub(crate) client_allowed_sans: Option<Vec<String>>,
}

/// Where a TLS server's configuration comes from: the web configuration file, which may
/// change it between connections.
pub(crate) trait TlsSource: Send + Sync {
    /// The TLS configuration as the file says now.
    fn tls_config(&self) -> Option<Arc<ServerConfig>>;
}

/// The TLS side of a server configured by `tls_server_config`: hands each accepted TCP
/// connection its handshake, with the certificate as it is on disk at that moment.
pub struct TlsServer {
    /// Where the current rustls configuration comes from: the web configuration file may
    /// change it between connections.
    live: Arc<dyn TlsSource>,
    /// Kept for tests: rustls does not show a configuration's verifier or versions.
    #[cfg_attr(not(test), allow(dead_code))]
    client_auth: ClientAuth,
    #[cfg_attr(not(test), allow(dead_code))]
    versions: Vec<rustls::ProtocolVersion>,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer").finish_non_exhaustive()
    }
}

/// A built `tls_server_config`.
pub(crate) struct TlsParts {
    pub(crate) config: Arc<ServerConfig>,
    /// Files read into `config` once, whose change calls for a new one (the client CA file;
    /// the certificate and key are re-read by the configuration itself).
    pub(crate) watched: Vec<PathBuf>,
    client_auth: ClientAuth,
    versions: Vec<rustls::ProtocolVersion>,
}

impl TlsServer {
    pub(crate) fn new(live: Arc<dyn TlsSource>, parts: TlsParts) -> TlsServer {
        TlsServer {
            live,
            client_auth: parts.client_auth,
            versions: parts.versions,
        }
    }

    /// Runs the TLS handshake on `stream`. A client that speaks plain HTTP instead gets Go's
    /// `400 Bad Request` text and an error comes back; so does a client whose handshake or
    /// certificate fails. The caller bounds how long this may take.
    pub async fn accept(&self, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        let mut first = [0u8; 1];
        let read = stream.peek(&mut first).await?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before the TLS handshake",
            ));
        }
        if first[0] != TLS_HANDSHAKE_RECORD {
            answer_plain_http(stream).await;
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "client sent plain HTTP to the TLS port",
            ));
        }
        let config = self.server_config()?;
        TlsAcceptor::from(config).accept(stream).await
    }

    /// The rustls configuration as the web configuration file says now, for servers that drive
    /// rustls themselves.
    pub fn server_config(&self) -> std::io::Result<Arc<ServerConfig>> {
        // Once on, TLS stays on (a file that turns it off is refused), so this cannot fail.
        self.live
            .tls_config()
            .ok_or_else(|| std::io::Error::other("no TLS configuration"))
    }

    #[cfg(test)]
    pub(crate) fn client_auth_name(&self) -> String {
        format!("{:?}", self.client_auth)
    }

    #[cfg(test)]
    pub(crate) fn versions(&self) -> &[rustls::ProtocolVersion] {
        &self.versions
    }
}

/// Best effort: the client may already be gone, and the caller gets its error either way.
async fn answer_plain_http(mut stream: TcpStream) {
    if stream.write_all(PLAIN_HTTP_ANSWER).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(PLAIN_HTTP_DRAIN, async {
        let mut left: usize = 64 * 1024;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Go's `client_auth_type` policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    fn parse(name: &str) -> Option<ClientAuth> {
        Some(match name {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            // exporter-toolkit keeps the old name working.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            _ => return None,
        })
    }
}

/// Where a PEM document comes from: a file re-read when it changes, or the configuration itself.
#[derive(Debug, Clone)]
enum PemSource {
    File(PathBuf),
    Inline(String),
}

impl PemSource {
    fn read(&self) -> std::io::Result<Vec<u8>> {
        match self {
            PemSource::File(path) => std::fs::read(path),
            PemSource::Inline(text) => Ok(text.as_bytes().to_vec()),
        }
    }

    fn stamp(&self) -> Option<Stamp> {
        match self {
            PemSource::Inline(_) => None,
            PemSource::File(path) => file_stamp(path),
        }
    }

    fn describe(&self, field: &str) -> String {
        match self {
            PemSource::File(path) => format!("{field} {}", path.display()),
            PemSource::Inline(_) => field.trim_end_matches("_file").to_owned(),
        }
    }
}

/// What tells a changed file from an unchanged one without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

/// The file's modification time, length and (on Unix) inode, so a file swapped in by rename or
/// by a Kubernetes-style symlink flip counts as changed even when its time was preserved;
/// `None` when it cannot be found.
pub(crate) fn file_stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode,
    })
}

/// Every certificate of a PEM document, in order; at least one. Shared by the server's
/// certificate and the client's (`web::ClientTls`), so both refuse the same mistakes in the
/// same words.
pub(crate) fn pem_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    if chain.is_empty() {
        return Err("no PEM CERTIFICATE block".to_owned());
    }
    Ok(chain)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) of a PEM document.
pub(crate) fn pem_private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("no usable PEM private key: {e}"))
}

/// The CA certificates of a PEM document as trust anchors; certificates webpki cannot use are
/// skipped, as Go skips them, but a document with none usable is refused.
pub(crate) fn pem_roots(pem: &[u8]) -> Result<RootCertStore, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err("no usable CA certificate".to_owned());
    }
    Ok(roots)
}

/// Reads a certificate chain and its key into what rustls serves, checking they belong together.
fn load_certified_key(
    cert: &PemSource,
    key: &PemSource,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let cert_pem = cert
        .read()
        .map_err(|e| format!("{}: {e}", cert.describe("cert_file")))?;
    let key_pem = key
        .read()
        .map_err(|e| format!("{}: {e}", key.describe("key_file")))?;
    let chain = pem_certificates(&cert_pem)
        .map_err(|reason| format!("{}: {reason}", cert.describe("cert_file")))?;
    let private = pem_private_key(&key_pem)
        .map_err(|reason| format!("{}: {reason}", key.describe("key_file")))?;
    CertifiedKey::from_der(chain, private, provider).map_err(|e| {
        format!(
            "{} and {}: {e}",
            cert.describe("cert_file"),
            key.describe("key_file")
        )
    })
}

/// The last certificate and key read, and the file stamps of the last attempt.
#[derive(Debug)]
struct Loaded {
    stamps: (Option<Stamp>, Option<Stamp>),
    key: Arc<CertifiedKey>,
}

/// Serves the certificate as it is on disk: at each handshake the two files' stamps are checked
/// (a `stat` each, no read) and the pair is read again only when one changed. A pair that fails
/// to load (a half-written file, a key that does not match) is logged once and the last good
/// pair keeps being served, as a restart would otherwise be the only way back.
#[derive(Debug)]
struct ReloadingResolver {
    cert: PemSource,
    key: PemSource,
    provider: Arc<CryptoProvider>,
    loaded: Mutex<Loaded>,
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let stamps = (self.cert.stamp(), self.key.stamp());
        // A panic elsewhere while holding the lock leaves a consistent `Loaded` behind.
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if loaded.stamps != stamps {
            loaded.stamps = stamps;
            match load_certified_key(&self.cert, &self.key, &self.provider) {
                Ok(key) => {
                    loaded.key = Arc::new(key);
                    tracing::info!(
                        cert = %self.cert.describe("cert_file"),
                        "TLS certificate re-read after it changed on disk"
                    );
                }
                Err(error) => tracing::warn!(
                    %error,
                    "TLS certificate changed on disk but cannot be used; still serving the previous one"
                ),
            }
        }
        Some(loaded.key.clone())
    }
}

/// Go's `RequestClientCert` and `RequireAnyClientCert`: a certificate is asked for (and with
/// the second, required) but never checked against a CA. The handshake signature is still
/// checked, as Go does, so the client does hold the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `client_allowed_sans`: after the policy's own checks, the client certificate must name one
/// of the allowed DNS names or IP addresses.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    names: Vec<ServerName<'static>>,
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let parsed = ParsedCertificate::try_from(end_entity)?;
        if self
            .names
            .iter()
            .any(|name| rustls::client::verify_server_name(&parsed, name).is_ok())
        {
            return Ok(verified);
        }
        tracing::debug!("client certificate names none of client_allowed_sans");
        Err(rustls::Error::InvalidCertificate(
            rustls::CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A path named in the configuration, relative to the configuration file's directory as
/// exporter-toolkit resolves it.
pub(crate) fn join_dir(dir: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        path.to_owned()
    } else {
        dir.join(path)
    }
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// Cipher suite names Go knows that rustls does not implement (CBC and RSA key exchange).
const GO_ONLY_CIPHER_SUITES: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
];

/// TLS 1.3 suite names as Go spells them; Go accepts them in `cipher_suites` and ignores them
/// (TLS 1.3 suites are not configurable there), and so does ecs-prom.
const GO_TLS13_CIPHER_SUITES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// Builds the TLS server `tls_server_config` describes, or `None` when it configures no TLS
/// (exporter-toolkit then serves plain HTTP). `dir` is the configuration file's directory.
pub(crate) fn build(
    raw: &RawTlsConfig,
    config_path: &Path,
    dir: &Path,
) -> Result<Option<TlsParts>, WebConfigError> {
    let invalid = |field: &str, reason: String| WebConfigError::Invalid {
        path: config_path.to_owned(),
        field: format!("tls_server_config.{field}"),
        reason,
    };

    // exporter-toolkit's IsEnabled: any of these turns TLS on; the other fields alone do not.
    let enabled = [
        &raw.cert_file,
        &raw.cert,
        &raw.key_file,
        &raw.key,
        &raw.client_ca_file,
        &raw.client_ca,
        &raw.client_auth_type,
    ]
    .iter()
    .any(|v| non_empty(v).is_some());
    if !enabled {
        return Ok(None);
    }

    // A file wins over inline text, as in exporter-toolkit.
    let cert = match (non_empty(&raw.cert_file), non_empty(&raw.cert)) {
        (Some(file), _) => PemSource::File(join_dir(dir, file)),
        (None, Some(text)) => PemSource::Inline(text.to_owned()),
        (None, None) => {
            return Err(invalid(
                "cert_file",
                "missing one of cert or cert_file".into(),
            ));
        }
    };
    let key = match (non_empty(&raw.key_file), non_empty(&raw.key)) {
        (Some(file), _) => PemSource::File(join_dir(dir, file)),
        (None, Some(text)) => PemSource::Inline(text.to_owned()),
        (None, None) => return Err(invalid("key_file", "missing one of key or key_file".into())),
    };

    let client_auth_name = raw.client_auth_type.as_deref().unwrap_or("");
    let client_auth = ClientAuth::parse(client_auth_name).ok_or_else(|| {
        invalid(
            "client_auth_type",
            format!(
                "unknown value {client_auth_name:?} (expected NoClientCert, RequestClientCert, \
                 RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert)"
            ),
        )
    })?;

    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = cipher_suites(&provider.cipher_suites, raw.cipher_suites.as_deref())
        .map_err(|reason| invalid("cipher_suites", reason))?;
    if let Some(names) = raw.curve_preferences.as_deref().filter(|n| !n.is_empty()) {
        provider.kx_groups =
            kx_groups(names).map_err(|reason| invalid("curve_preferences", reason))?;
    }
    let provider = Arc::new(provider);

    let versions = versions(raw.min_version.as_deref(), raw.max_version.as_deref())
        .map_err(|(field, reason)| invalid(field, reason))?;

    // The first read happens now, so a wrong path or key stops the start instead of the
    // first scrape.
    let first = load_certified_key(&cert, &key, &provider).map_err(|reason| {
        invalid(
            if matches!(cert, PemSource::File(_)) {
                "cert_file"
            } else {
                "cert"
            },
            reason,
        )
    })?;

    let roots = client_roots(raw, dir).map_err(|(field, reason)| invalid(field, reason))?;
    let verifier = client_verifier(client_auth, roots, &provider)
        .map_err(|(field, reason)| invalid(field, reason))?;
    let verifier = match raw.client_allowed_sans.as_deref() {
        None => verifier,
        Some(sans) => {
            if !matches!(
                client_auth,
                ClientAuth::RequireAnyClientCert | ClientAuth::RequireAndVerifyClientCert
            ) {
                return Err(invalid(
                    "client_allowed_sans",
                    "requires client_auth_type to be one of RequireAnyClientCert or \
                     RequireAndVerifyClientCert"
                        .into(),
                ));
            }
            let names = sans
                .iter()
                .map(|san| {
                    ServerName::try_from(san.as_str())
                        .map(|n| n.to_owned())
                        .map_err(|_| {
                            invalid(
                                "client_allowed_sans",
                                format!(
                                    "{san:?}: only DNS names and IP addresses can be matched \
                                     (rustls does not expose e-mail and URI SANs)"
                                ),
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(AllowedSans {
                inner: verifier,
                names,
            })
        }
    };

    let resolver = ReloadingResolver {
        cert: cert.clone(),
        key: key.clone(),
        provider: provider.clone(),
        loaded: Mutex::new(Loaded {
            stamps: (cert.stamp(), key.stamp()),
            key: Arc::new(first),
        }),
    };

    let version_numbers = versions.iter().map(|v| v.version).collect();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| invalid("cipher_suites", format!("no usable cipher suite: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(resolver));
    // exporter-toolkit's default is true; Go itself ignores the field since Go 1.17.
    config.ignore_client_order = raw.prefer_server_cipher_suites.unwrap_or(true);
    // The servers speak HTTP/1.1 only; saying so lets an h2-preferring client fall back.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];

    Ok(Some(TlsParts {
        config: Arc::new(config),
        watched: non_empty(&raw.client_ca_file)
            .map(|file| join_dir(dir, file))
            .into_iter()
            .collect(),
        client_auth,
        versions: version_numbers,
    }))
}

fn cipher_suites(
    available: &[SupportedCipherSuite],
    names: Option<&[String]>,
) -> Result<Vec<SupportedCipherSuite>, String> {
    let Some(names) = names.filter(|n| !n.is_empty()) else {
        return Ok(available.to_vec());
    };
    let mut chosen: Vec<SupportedCipherSuite> = available
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .copied()
        .collect();
    for name in names {
        if GO_TLS13_CIPHER_SUITES.contains(&name.as_str()) {
            continue;
        }
        if let Some(suite) = available
            .iter()
            .find(|s| s.suite().as_str() == Some(name.as_str()))
        {
            if !chosen.contains(suite) {
                chosen.push(*suite);
            }
            continue;
        }
        if GO_ONLY_CIPHER_SUITES.contains(&name.as_str()) {
            return Err(format!(
                "{name}: not implemented by rustls (only ECDHE with AES-GCM or ChaCha20-Poly1305)"
            ));
        }
        return Err(format!("unknown cipher suite {name:?}"));
    }
    Ok(chosen)
}

fn kx_groups(names: &[String]) -> Result<Vec<&'static dyn SupportedKxGroup>, String> {
    use rustls::crypto::ring::kx_group;
    names
        .iter()
        .map(|name| match name.as_str() {
            "X25519" => Ok(kx_group::X25519),
            "CurveP256" => Ok(kx_group::SECP256R1),
            "CurveP384" => Ok(kx_group::SECP384R1),
            "CurveP521" => Err("CurveP521: not implemented by rustls with ring".to_owned()),
            other => Err(format!(
                "unknown curve {other:?} (expected X25519, CurveP256, CurveP384 or CurveP521)"
            )),
        })
        .collect()
}

type FieldError = (&'static str, String);

fn versions(
    min: Option<&str>,
    max: Option<&str>,
) -> Result<Vec<&'static SupportedProtocolVersion>, FieldError> {
    fn number(field: &'static str, name: &str) -> Result<u8, FieldError> {
        match name {
            "TLS10" => Ok(10),
            "TLS11" => Ok(11),
            "TLS12" => Ok(12),
            "TLS13" => Ok(13),
            other => Err((
                field,
                format!("unknown TLS version {other:?} (expected TLS10, TLS11, TLS12 or TLS13)"),
            )),
        }
    }
    // exporter-toolkit's defaults.
    let min = number(
        "min_version",
        min.filter(|v| !v.is_empty()).unwrap_or("TLS12"),
    )?;
    let max = number(
        "max_version",
        max.filter(|v| !v.is_empty()).unwrap_or("TLS13"),
    )?;
    // Refused rather than quietly raised to TLS 1.2: whoever wrote TLS10 or TLS11 has clients
    // that need it, and those would fail at their handshake instead of here.
    if min < 12 {
        return Err((
            "min_version",
            format!(
                "TLS1{}: rustls implements TLS 1.2 and 1.3 only; use TLS12 or TLS13",
                min - 10
            ),
        ));
    }
    if max < 12 {
        return Err((
            "max_version",
            format!(
                "TLS1{}: rustls implements TLS 1.2 and 1.3 only; use TLS12 or TLS13",
                max - 10
            ),
        ));
    }
    if min > max {
        return Err(("min_version", "is above max_version".to_owned()));
    }
    let mut versions = Vec::new();
    if min <= 12 {
        versions.push(&rustls::version::TLS12);
    }
    if max >= 13 {
        versions.push(&rustls::version::TLS13);
    }
    Ok(versions)
}

fn client_roots(raw: &RawTlsConfig, dir: &Path) -> Result<Option<RootCertStore>, FieldError> {
    let (field, source) = match (non_empty(&raw.client_ca_file), non_empty(&raw.client_ca)) {
        (Some(file), _) => ("client_ca_file", PemSource::File(join_dir(dir, file))),
        (None, Some(text)) => ("client_ca", PemSource::Inline(text.to_owned())),
        (None, None) => return Ok(None),
    };
    // The field is already named by the error; only the path is worth adding.
    let what = match &source {
        PemSource::File(path) => format!("{}: ", path.display()),
        PemSource::Inline(_) => String::new(),
    };
    let pem = source.read().map_err(|e| (field, format!("{what}{e}")))?;
    let roots = pem_roots(&pem).map_err(|reason| (field, format!("{what}{reason}")))?;
    Ok(Some(roots))
}

fn client_verifier(
    policy: ClientAuth,
    roots: Option<RootCertStore>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, FieldError> {
    let hints = roots.as_ref().map(|r| r.subjects()).unwrap_or_default();
    let any = |mandatory| -> Arc<dyn ClientCertVerifier> {
        Arc::new(AnyClientCert {
            mandatory,
            hints: hints.clone(),
            algorithms: provider.signature_verification_algorithms,
        })
    };
    match (policy, roots) {
        (ClientAuth::NoClientCert, None) => Ok(Arc::new(rustls::server::NoClientAuth)),
        (ClientAuth::NoClientCert, Some(_)) => Err((
            "client_auth_type",
            "client CAs are configured without a client auth policy".to_owned(),
        )),
        (ClientAuth::RequestClientCert, _) => Ok(any(false)),
        (ClientAuth::RequireAnyClientCert, _) => Ok(any(true)),
        (ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert, None) => {
            // Go would fall back to the system's CAs, which would let any publicly issued
            // client certificate in: not what someone asking for verification means.
            Err((
                "client_ca_file",
                "required by client_auth_type VerifyClientCertIfGiven and \
                 RequireAndVerifyClientCert"
                    .to_owned(),
            ))
        }
        (ClientAuth::VerifyClientCertIfGiven, Some(roots)) => {
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(|e| ("client_ca_file", e.to_string()))
        }
        (ClientAuth::RequireAndVerifyClientCert, Some(roots)) => {
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| ("client_ca_file", e.to_string()))
        }
    }
}

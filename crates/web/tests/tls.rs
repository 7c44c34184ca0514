//! A router served over TLS on loopback with a web configuration file and certificates made by
//! the test itself (the `openssl` command): client certificates, basic auth, plain HTTP to the
//! TLS port, and certificate files replaced on disk while the server runs; and `web::Client`
//! with `ClientTls` (CA, client certificate, server name, insecure_skip_verify) against such
//! servers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../src/test_pki.rs"]
mod test_pki;

use axum::routing::get;
use base64::Engine;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use test_pki::Pki;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use web::{Client, ClientError, ClientTls, TlsServer, WebConfig};

/// Accepts TCP connections and hands each to [`TlsServer::accept`], as a server loop does;
/// failed handshakes are skipped.
struct TlsListener {
    tcp: TcpListener,
    tls: Arc<TlsServer>,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            match self.tls.accept(stream).await {
                Ok(tls) => return (tls, addr),
                Err(error) => eprintln!("handshake from {addr} failed: {error}"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Serves `/metrics` with the configuration `yaml` (written beside the certificates).
async fn serve(pki: &Pki, yaml: &str) -> SocketAddr {
    let web = WebConfig::load(&pki.write("web.yml", yaml)).unwrap();
    let tls = web.tls().expect("the configuration turns TLS on");
    let router = web.apply(axum::Router::new().route("/metrics", get(|| async { "up 1\n" })));
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(TlsListener { tcp, tls }, router).await });
    addr
}

fn certs(pki: &Pki, name: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(pki.path(&format!("{name}.pem")))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A client trusting `ca`, presenting `client` (a name in `pki`) if given.
fn client(pki: &Pki, ca: &str, client: Option<&str>) -> tokio_rustls::TlsConnector {
    client_with(pki, ca, client, rustls::DEFAULT_VERSIONS)
}

fn client_with(
    pki: &Pki,
    ca: &str,
    client: Option<&str>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(certs(pki, ca));
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some(name) => builder
            .with_client_auth_cert(
                certs(pki, name),
                PrivateKeyDer::from_pem_file(pki.path(&format!("{name}.key"))).unwrap(),
            )
            .unwrap(),
    };
    // Each request a full handshake: a resumed session shows the certificate of the session,
    // and the test is about the one the server presents now.
    config.resumption = rustls::client::Resumption::disabled();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// What one HTTPS request got: the whole answer, or the error that stopped it, plus the
/// certificate the server presented and the TLS version.
struct Outcome {
    answer: Result<String, std::io::Error>,
    server_cert: Option<CertificateDer<'static>>,
    version: Option<rustls::ProtocolVersion>,
}

async fn get_metrics(
    addr: SocketAddr,
    connector: &tokio_rustls::TlsConnector,
    auth: Option<(&str, &str)>,
) -> Outcome {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::IpAddress(addr.ip().into());
    let mut tls = match connector.connect(name, tcp).await {
        Ok(tls) => tls,
        Err(error) => {
            return Outcome {
                answer: Err(error),
                server_cert: None,
                version: None,
            };
        }
    };
    let (_, session) = tls.get_ref();
    let server_cert = session
        .peer_certificates()
        .map(|c| c[0].clone().into_owned());
    let version = session.protocol_version();
    let mut request =
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".to_owned();
    if let Some((user, password)) = auth {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request.push_str(&format!("Authorization: Basic {encoded}\r\n"));
    }
    request.push_str("\r\n");
    let answer = async {
        tls.write_all(request.as_bytes()).await?;
        let mut answer = Vec::new();
        match tls.read_to_end(&mut answer).await {
            Ok(_) => {}
            // A server closing without close_notify after a whole answer is still an answer.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
            Err(e) => return Err(e),
        }
        if answer.is_empty() {
            return Err(std::io::Error::other("no answer"));
        }
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }
    .await;
    Outcome {
        answer,
        server_cert,
        version,
    }
}

fn status(outcome: &Outcome) -> &str {
    match &outcome.answer {
        Ok(answer) => answer.lines().next().unwrap_or(""),
        Err(_) => "",
    }
}

/// File times tick with the kernel's clock (a few milliseconds), and a rewritten certificate
/// can have the same length and inode as the one before: waiting a tick before each change
/// makes sure the change shows in the modification time, as it always does outside a test.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(20));
}

fn hash(password: &str) -> String {
    bcrypt::hash_with_salt(password, 4, [9u8; 16])
        .unwrap()
        .format_for_version(bcrypt::Version::TwoY)
}

fn mutual_tls_config(extra: &str) -> String {
    format!(
        "tls_server_config:
  cert_file: server.pem
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.pem
{extra}basic_auth_users:
  prometheus: {}
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
",
        hash("scrape-me")
    )
}

#[tokio::test]
async fn a_scraper_needs_its_certificate_and_its_password() {
    let pki = Pki::standard("mtls");
    pki.ca("other-ca");
    pki.leaf("other-ca", "stranger", "DNS:scraper.example", "clientAuth");
    let addr = serve(&pki, &mutual_tls_config("")).await;
    let scraper = client(&pki, "ca", Some("client"));

    let ok = get_metrics(addr, &scraper, Some(("prometheus", "scrape-me"))).await;
    assert_eq!(status(&ok), "HTTP/1.1 200 OK");
    let answer = ok.answer.unwrap();
    assert!(answer.ends_with("\r\n\r\nup 1\n"), "{answer}");
    assert!(
        answer.contains("x-content-type-options: nosniff"),
        "{answer}"
    );
    assert_eq!(ok.version, Some(rustls::ProtocolVersion::TLSv1_3));

    let wrong = get_metrics(addr, &scraper, Some(("prometheus", "guess"))).await;
    assert_eq!(status(&wrong), "HTTP/1.1 401 Unauthorized");
    let answer = wrong.answer.unwrap();
    assert!(answer.contains("www-authenticate: Basic"), "{answer}");
    assert!(answer.ends_with("Unauthorized\n"), "{answer}");

    let unknown = get_metrics(addr, &scraper, Some(("root", "scrape-me"))).await;
    assert_eq!(status(&unknown), "HTTP/1.1 401 Unauthorized");
    let none = get_metrics(addr, &scraper, None).await;
    assert_eq!(status(&none), "HTTP/1.1 401 Unauthorized");

    // No client certificate: the handshake fails (with TLS 1.3 the client learns it at its
    // first read), and no HTTP answer comes back even with the right password.
    let anonymous = client(&pki, "ca", None);
    let refused = get_metrics(addr, &anonymous, Some(("prometheus", "scrape-me"))).await;
    let error = refused
        .answer
        .expect_err("no answer without a client certificate");
    assert!(
        error.to_string().contains("CertificateRequired") || error.to_string().contains("alert"),
        "{error}"
    );

    // A certificate from another CA is no better.
    let stranger = client(&pki, "ca", Some("stranger"));
    let refused = get_metrics(addr, &stranger, Some(("prometheus", "scrape-me"))).await;
    assert!(refused.answer.is_err());

    // The server still serves after all that.
    let again = get_metrics(addr, &scraper, Some(("prometheus", "scrape-me"))).await;
    assert_eq!(status(&again), "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_gos_400_text() {
    let pki = Pki::standard("plain");
    let addr = serve(&pki, &mutual_tls_config("")).await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    assert_eq!(
        String::from_utf8(answer).unwrap(),
        "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"
    );
}

#[tokio::test]
async fn replaced_certificate_files_are_served_without_a_restart() {
    let pki = Pki::standard("reload");
    pki.leaf("ca", "renewed", "IP:127.0.0.1", "serverAuth");
    let addr = serve(
        &pki,
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n",
    )
    .await;
    let anyone = client(&pki, "ca", None);
    let first = get_metrics(addr, &anyone, None).await;
    assert_eq!(status(&first), "HTTP/1.1 200 OK");
    assert_eq!(first.server_cert.unwrap(), certs(&pki, "server")[0]);

    // The renewal lands: key first, then certificate, as a renewal script would write them.
    settle();
    std::fs::copy(pki.path("renewed.key"), pki.path("server.key")).unwrap();
    std::fs::copy(pki.path("renewed.pem"), pki.path("server.pem")).unwrap();
    let second = get_metrics(addr, &anyone, None).await;
    assert_eq!(status(&second), "HTTP/1.1 200 OK");
    assert_eq!(second.server_cert.unwrap(), certs(&pki, "renewed")[0]);

    // A broken write (a truncated certificate) keeps the last good pair in service.
    settle();
    std::fs::write(
        pki.path("server.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n",
    )
    .unwrap();
    let third = get_metrics(addr, &anyone, None).await;
    assert_eq!(status(&third), "HTTP/1.1 200 OK");
    assert_eq!(third.server_cert.unwrap(), certs(&pki, "renewed")[0]);

    // A file removed (a rename about to land) too.
    std::fs::remove_file(pki.path("server.pem")).unwrap();
    let fourth = get_metrics(addr, &anyone, None).await;
    assert_eq!(fourth.server_cert.unwrap(), certs(&pki, "renewed")[0]);

    // And the next good pair is picked up again.
    pki.leaf("ca", "third", "IP:127.0.0.1", "serverAuth");
    settle();
    std::fs::copy(pki.path("third.key"), pki.path("server.key")).unwrap();
    std::fs::copy(pki.path("third.pem"), pki.path("server.pem")).unwrap();
    let fifth = get_metrics(addr, &anyone, None).await;
    assert_eq!(status(&fifth), "HTTP/1.1 200 OK");
    assert_eq!(fifth.server_cert.unwrap(), certs(&pki, "third")[0]);
}

#[tokio::test]
async fn client_certificate_policies_over_the_wire() {
    let pki = Pki::standard("policies");
    pki.ca("other-ca");
    pki.leaf("other-ca", "stranger", "DNS:scraper.example", "clientAuth");
    let anonymous = client(&pki, "ca", None);
    let scraper = client(&pki, "ca", Some("client"));
    let stranger = client(&pki, "ca", Some("stranger"));
    let base = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";

    // RequestClientCert: anyone, with or without a certificate, checked by no CA.
    let addr = serve(
        &pki,
        &format!("{base}  client_auth_type: RequestClientCert\n"),
    )
    .await;
    for connector in [&anonymous, &stranger] {
        assert_eq!(
            status(&get_metrics(addr, connector, None).await),
            "HTTP/1.1 200 OK"
        );
    }

    // RequireAnyClientCert: a certificate, from any CA.
    let addr = serve(
        &pki,
        &format!("{base}  client_auth_type: RequireAnyClientCert\n"),
    )
    .await;
    assert!(get_metrics(addr, &anonymous, None).await.answer.is_err());
    assert_eq!(
        status(&get_metrics(addr, &stranger, None).await),
        "HTTP/1.1 200 OK"
    );

    // VerifyClientCertIfGiven: none is fine, a wrong one is not.
    let addr = serve(
        &pki,
        &format!("{base}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n"),
    )
    .await;
    assert_eq!(
        status(&get_metrics(addr, &anonymous, None).await),
        "HTTP/1.1 200 OK"
    );
    assert_eq!(
        status(&get_metrics(addr, &scraper, None).await),
        "HTTP/1.1 200 OK"
    );
    assert!(get_metrics(addr, &stranger, None).await.answer.is_err());

    // client_allowed_sans: the right CA is not enough, the certificate must carry the name.
    let addr = serve(
        &pki,
        &mutual_tls_config("  client_allowed_sans: [scraper.example]\n"),
    )
    .await;
    let ok = get_metrics(addr, &scraper, Some(("prometheus", "scrape-me"))).await;
    assert_eq!(status(&ok), "HTTP/1.1 200 OK");
    let addr = serve(
        &pki,
        &mutual_tls_config("  client_allowed_sans: [other.example, 10.1.2.3]\n"),
    )
    .await;
    let refused = get_metrics(addr, &scraper, Some(("prometheus", "scrape-me"))).await;
    assert!(refused.answer.is_err());
}

#[tokio::test]
async fn versions_are_enforced() {
    let pki = Pki::standard("versions");
    let base = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";
    let addr = serve(&pki, &format!("{base}  max_version: TLS12\n")).await;
    let outcome = get_metrics(addr, &client(&pki, "ca", None), None).await;
    assert_eq!(outcome.version, Some(rustls::ProtocolVersion::TLSv1_2));
    assert_eq!(status(&outcome), "HTTP/1.1 200 OK");

    let addr = serve(&pki, &format!("{base}  min_version: TLS13\n")).await;
    let tls12_only = client_with(&pki, "ca", None, &[&rustls::version::TLS12]);
    assert!(get_metrics(addr, &tls12_only, None).await.answer.is_err());
}

#[tokio::test]
async fn a_changed_web_configuration_file_applies_to_the_next_connection_and_request() {
    let pki = Pki::standard("file-reload");
    let base = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";
    let addr = serve(
        &pki,
        &format!(
            "{base}basic_auth_users:\n  prometheus: {}\n",
            hash("scrape-me")
        ),
    )
    .await;
    let anonymous = client(&pki, "ca", None);
    let scraper = client(&pki, "ca", Some("client"));
    let ok = get_metrics(addr, &anonymous, Some(("prometheus", "scrape-me"))).await;
    assert_eq!(status(&ok), "HTTP/1.1 200 OK");
    assert!(!ok.answer.unwrap().contains("x-frame-options"));

    // A new password, a header, and client certificates required from now on.
    settle();
    pki.write(
        "web.yml",
        &format!(
            "{base}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n\
             basic_auth_users:\n  prometheus: {}\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
            hash("rotated")
        ),
    );
    let refused = get_metrics(addr, &anonymous, Some(("prometheus", "rotated"))).await;
    assert!(refused.answer.is_err());
    let old = get_metrics(addr, &scraper, Some(("prometheus", "scrape-me"))).await;
    assert_eq!(status(&old), "HTTP/1.1 401 Unauthorized");
    let new = get_metrics(addr, &scraper, Some(("prometheus", "rotated"))).await;
    assert_eq!(status(&new), "HTTP/1.1 200 OK");
    assert!(new.answer.unwrap().contains("x-frame-options: deny"));

    // A broken file, then one that drops TLS: the last good configuration stays in service.
    for broken in [
        "tls_server_config: [\n".to_owned(),
        format!("basic_auth_users:\n  prometheus: {}\n", hash("plain")),
    ] {
        settle();
        pki.write("web.yml", &broken);
        let still = get_metrics(addr, &scraper, Some(("prometheus", "rotated"))).await;
        assert_eq!(status(&still), "HTTP/1.1 200 OK", "after {broken:?}");
        assert!(
            get_metrics(addr, &anonymous, Some(("prometheus", "rotated")))
                .await
                .answer
                .is_err()
        );
    }
}

#[tokio::test]
async fn a_replaced_client_ca_file_applies_to_the_next_connection() {
    let pki = Pki::standard("ca-reload");
    pki.ca("new-ca");
    pki.leaf("new-ca", "new-client", "DNS:scraper.example", "clientAuth");
    std::fs::copy(pki.path("ca.pem"), pki.path("client-ca.pem")).unwrap();
    let addr = serve(
        &pki,
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: client-ca.pem\n",
    )
    .await;
    let old_client = client(&pki, "ca", Some("client"));
    let new_client = client(&pki, "ca", Some("new-client"));
    assert_eq!(
        status(&get_metrics(addr, &old_client, None).await),
        "HTTP/1.1 200 OK"
    );
    assert!(get_metrics(addr, &new_client, None).await.answer.is_err());

    // The client CA moves to the new CA; web.yml itself is untouched.
    settle();
    std::fs::copy(pki.path("new-ca.pem"), pki.path("client-ca.pem")).unwrap();
    assert_eq!(
        status(&get_metrics(addr, &new_client, None).await),
        "HTTP/1.1 200 OK"
    );
    assert!(get_metrics(addr, &old_client, None).await.answer.is_err());
}

// web::Client with ClientTls, against the servers above.

/// Long enough for a loopback handshake on a loaded machine, short enough to bound a test.
const CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn tls_client(tls: &ClientTls) -> Client {
    Client::with_tls(CLIENT_TIMEOUT, tls).unwrap()
}

/// `GET /metrics`; the status and body, or the error chain.
async fn fetch(client: &Client, addr: SocketAddr) -> Result<(u16, String), String> {
    match client.get(&format!("https://{addr}/metrics")).send().await {
        Ok(response) => Ok((
            response.status.as_u16(),
            String::from_utf8_lossy(&response.body).into_owned(),
        )),
        Err(error) => {
            // A refusal is a failed exchange, never the deadline running out.
            assert!(
                matches!(
                    error,
                    ClientError::Connect { .. } | ClientError::Request { .. }
                ),
                "{error:?}"
            );
            Err(web::error_chain(&error))
        }
    }
}

fn ok() -> Result<(u16, String), String> {
    Ok((200, "up 1\n".to_owned()))
}

/// The server's certificate is for 127.0.0.1 and issued by the test CA.
const SERVER_ONLY: &str = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";

#[tokio::test]
async fn client_tls_trusts_the_given_ca_instead_of_the_webpki_roots() {
    let pki = Pki::standard("client-ca");
    pki.ca("other-ca");
    let addr = serve(&pki, SERVER_ONLY).await;

    let trusting = tls_client(&ClientTls {
        ca_pem: Some(pki.read("ca.pem")),
        ..ClientTls::default()
    });
    assert_eq!(fetch(&trusting, addr).await, ok());

    // Mozilla's roots do not know the test CA, whether by Client::new or an empty ClientTls.
    for default in [
        Client::new(CLIENT_TIMEOUT),
        tls_client(&ClientTls::default()),
    ] {
        let error = fetch(&default, addr).await.unwrap_err();
        assert!(error.contains("UnknownIssuer"), "{error}");
    }
    // A CA given replaces the roots rather than adding to them: another CA is no help.
    let other = tls_client(&ClientTls {
        ca_pem: Some(pki.read("other-ca.pem")),
        ..ClientTls::default()
    });
    let error = fetch(&other, addr).await.unwrap_err();
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn insecure_skip_verify_accepts_a_certificate_nobody_vouches_for() {
    let pki = Pki::standard("client-insecure");
    let addr = serve(&pki, SERVER_ONLY).await;
    let insecure = tls_client(&ClientTls {
        insecure_skip_verify: true,
        ..ClientTls::default()
    });
    assert_eq!(fetch(&insecure, addr).await, ok());
    // Nor is the name checked.
    let misnamed = tls_client(&ClientTls {
        server_name: Some("elsewhere.example".to_owned()),
        insecure_skip_verify: true,
        ..ClientTls::default()
    });
    assert_eq!(fetch(&misnamed, addr).await, ok());
}

/// The SNI of each handshake the server saw (`None`: none was sent).
type SeenNames = Arc<std::sync::Mutex<Vec<Option<String>>>>;

/// Presents one certificate, whatever the client asks for, and notes the SNI asked for.
#[derive(Debug)]
struct RecordingResolver {
    key: Arc<rustls::sign::CertifiedKey>,
    seen: SeenNames,
}

impl rustls::server::ResolvesServerCert for RecordingResolver {
    fn resolve(
        &self,
        hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.seen
            .lock()
            .unwrap()
            .push(hello.server_name().map(str::to_owned));
        Some(self.key.clone())
    }
}

struct AcceptorListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for AcceptorListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            match self.acceptor.accept(stream).await {
                Ok(tls) => return (tls, addr),
                Err(error) => eprintln!("handshake from {addr} failed: {error}"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Serves the certificate `name` of `pki`, answering `/metrics` with the request's `Host`
/// header, and noting every SNI.
async fn serve_recording(pki: &Pki, name: &str) -> (SocketAddr, SeenNames) {
    let provider = rustls::crypto::ring::default_provider();
    let key = rustls::sign::CertifiedKey::from_der(
        certs(pki, name),
        PrivateKeyDer::from_pem_file(pki.path(&format!("{name}.key"))).unwrap(),
        &provider,
    )
    .unwrap();
    let seen = SeenNames::default();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(RecordingResolver {
            key: Arc::new(key),
            seen: seen.clone(),
        }));
    let router = axum::Router::new().route(
        "/metrics",
        get(|headers: http::HeaderMap| async move {
            let host = headers
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            format!("host {host}\n")
        }),
    );
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move { axum::serve(AcceptorListener { tcp, acceptor }, router).await });
    (addr, seen)
}

#[tokio::test]
async fn server_name_verifies_a_certificate_issued_for_another_name_and_is_sent_as_sni() {
    let pki = Pki::new("client-server-name");
    pki.leaf("ca", "named", "DNS:metrics.example", "serverAuth");
    let (addr, seen) = serve_recording(&pki, "named").await;
    let with_name = |name: Option<&str>| {
        tls_client(&ClientTls {
            ca_pem: Some(pki.read("ca.pem")),
            server_name: name.map(str::to_owned),
            ..ClientTls::default()
        })
    };
    let last_sni = || seen.lock().unwrap().last().cloned().flatten();

    // By the URL's host the certificate is not valid, and an IP address is never sent as SNI.
    let error = fetch(&with_name(None), addr).await.unwrap_err();
    assert!(error.contains("not valid for name"), "{error}");
    assert_eq!(last_sni(), None);

    // By server_name it is; the name goes out as SNI, the Host header stays the URL's.
    assert_eq!(
        fetch(&with_name(Some("metrics.example")), addr).await,
        Ok((200, format!("host {addr}\n")))
    );
    assert_eq!(last_sni().as_deref(), Some("metrics.example"));

    // A server_name the certificate does not carry fails, though the CA is right.
    let error = fetch(&with_name(Some("other.example")), addr)
        .await
        .unwrap_err();
    assert!(error.contains("not valid for name"), "{error}");
    assert_eq!(last_sni().as_deref(), Some("other.example"));
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_server_requiring_a_client_certificate_gets_the_configured_one() {
    let pki = Pki::standard("client-mtls");
    pki.ca("other-ca");
    pki.leaf("other-ca", "stranger", "DNS:scraper.example", "clientAuth");
    let addr = serve(
        &pki,
        &format!(
            "{SERVER_ONLY}  client_auth_type: RequireAndVerifyClientCert\n  \
             client_ca_file: ca.pem\n"
        ),
    )
    .await;
    let presenting = |name: Option<&str>| {
        tls_client(&ClientTls {
            ca_pem: Some(pki.read("ca.pem")),
            cert_pem: name.map(|n| pki.read(&format!("{n}.pem"))),
            key_pem: name.map(|n| pki.read(&format!("{n}.key"))),
            ..ClientTls::default()
        })
    };

    assert_eq!(fetch(&presenting(Some("client")), addr).await, ok());
    // With TLS 1.3 the client learns of the refusal at its first read, after the handshake.
    let error = fetch(&presenting(None), addr).await.unwrap_err();
    assert!(error.contains("CertificateRequired"), "{error}");
    let error = fetch(&presenting(Some("stranger")), addr)
        .await
        .unwrap_err();
    assert!(error.contains("UnknownCA"), "{error}");
}

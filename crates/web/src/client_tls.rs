//! The client side of TLS as Prometheus' `tls_config` describes it, for [`Client::with_tls`]:
//! the CAs to trust, a client certificate for mutual TLS, the name to verify the server by,
//! and `insecure_skip_verify`, on the same rustls and ring as the servers.
//!
//! [`Client::with_tls`]: crate::Client::with_tls

use crate::tls::{pem_certificates, pem_private_key, pem_roots};
use hyper_rustls::ConfigBuilderExt as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ConfigBuilder, DigitallySignedStruct, SignatureScheme, WantsVerifier};
use std::sync::Arc;

/// A `tls_config` setting that cannot be used: its name (Prometheus') and why.
#[derive(Debug)]
pub(crate) struct InvalidSetting {
    pub(crate) field: &'static str,
    pub(crate) reason: String,
}

/// The TLS settings of a [`Client`](crate::Client), as Prometheus' `tls_config` has them for a
/// scrape job or a remote write. The default is what [`Client::new`](crate::Client::new) does:
/// Mozilla's roots (webpki-roots), no client certificate, the URL's host as the name.
///
/// The PEM documents are given as bytes, so the caller decides whether they come from a file
/// (`ca_file`) or from the configuration itself (`ca`); `None` leaves a setting unset, while an
/// empty document is refused like any other without a certificate or key. `Debug` shows the
/// documents' sizes only, so the key never reaches a log.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ClientTls {
    /// `ca`: PEM CA certificates trusted instead of Mozilla's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// `cert`: the PEM client certificate (followed by its intermediates, if any) presented
    /// when the server asks for one. Needs `key_pem`.
    pub cert_pem: Option<Vec<u8>>,
    /// `key`: the PEM private key of `cert_pem` (PKCS#8, PKCS#1 or SEC1). Needs `cert_pem`.
    pub key_pem: Option<Vec<u8>>,
    /// `server_name`: the DNS name or IP address the server's certificate must be valid for,
    /// instead of the URL's host; it is also sent as SNI (unless it is an IP address, which
    /// TLS never sends). An empty name is unset, as in Prometheus. The `Host` header stays the
    /// URL's.
    pub server_name: Option<String>,
    /// `insecure_skip_verify`: accept any server certificate, whoever issued it and whatever
    /// it names. The server must still prove in the handshake that it holds the certificate's
    /// key.
    pub insecure_skip_verify: bool,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let size = |pem: &Option<Vec<u8>>| pem.as_ref().map(|pem| format!("{} bytes", pem.len()));
        f.debug_struct("ClientTls")
            .field("ca_pem", &size(&self.ca_pem))
            .field("cert_pem", &size(&self.cert_pem))
            .field("key_pem", &size(&self.key_pem))
            .field("server_name", &self.server_name)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .finish()
    }
}

/// What the HTTPS connector is built from.
pub(crate) struct ClientTlsParts {
    pub(crate) config: ClientConfig,
    /// The name to verify and send as SNI instead of the URL's host.
    pub(crate) server_name: Option<ServerName<'static>>,
}

/// Checks `tls` and builds the rustls configuration it describes, failing on the first setting
/// that cannot be used rather than at the first request.
pub(crate) fn build(tls: &ClientTls) -> Result<ClientTlsParts, InvalidSetting> {
    let invalid = |field: &'static str, reason: String| InvalidSetting { field, reason };

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Read before anything else so a wrong CA is reported even when verification is off, as
    // Prometheus loads it either way.
    let roots = match &tls.ca_pem {
        Some(pem) => Some(pem_roots(pem).map_err(|reason| invalid("ca", reason))?),
        None => None,
    };
    let client_key = match (&tls.cert_pem, &tls.key_pem) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(invalid(
                "key",
                "a client certificate is given without its key".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(invalid(
                "cert",
                "a client key is given without its certificate".into(),
            ));
        }
        (Some(cert), Some(key)) => Some((
            pem_certificates(cert).map_err(|reason| invalid("cert", reason))?,
            pem_private_key(key).map_err(|reason| invalid("key", reason))?,
        )),
    };
    let server_name = match tls.server_name.as_deref().filter(|name| !name.is_empty()) {
        None => None,
        Some(name) => {
            Some(parse_server_name(name).map_err(|reason| invalid("server_name", reason))?)
        }
    };

    let builder = safe_defaults(provider.clone());
    let builder = if tls.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert {
                algorithms: provider.signature_verification_algorithms,
            }))
    } else {
        match roots {
            Some(roots) => builder.with_root_certificates(roots),
            None => builder.with_webpki_roots(),
        }
    };
    let config = match client_key {
        None => builder.with_no_client_auth(),
        // rustls checks here that the key is the certificate's.
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| invalid("cert", format!("the certificate and key do not match: {e}")))?,
    };
    Ok(ClientTlsParts {
        config,
        server_name,
    })
}

/// TLS 1.2 and 1.3 with every suite and key exchange of `provider`, as `Client::new` has.
#[allow(clippy::expect_used)]
fn safe_defaults(provider: Arc<CryptoProvider>) -> ConfigBuilder<ClientConfig, WantsVerifier> {
    ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring's default provider has suites and key exchanges for TLS 1.2 and 1.3")
}

fn parse_server_name(name: &str) -> Result<ServerName<'static>, String> {
    // An IPv6 address may come bracketed, as it is written in a URL.
    let bare = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(bare.to_owned())
        .map_err(|_| format!("{name:?} is neither a DNS name nor an IP address"))
}

/// `insecure_skip_verify`: any certificate is taken as the server's. The handshake signature
/// is still checked with the provider's algorithms, as Go does, so the connection is at least
/// with whoever holds the certificate's key.
#[derive(Debug)]
struct AnyServerCert {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::test_pki::Pki;

    fn error(tls: &ClientTls) -> (&'static str, String) {
        match build(tls) {
            Err(InvalidSetting { field, reason }) => (field, reason),
            Ok(_) => panic!("{tls:?} was accepted"),
        }
    }

    #[test]
    fn the_default_is_the_webpki_roots_without_a_client_certificate() {
        let parts = build(&ClientTls::default()).unwrap();
        assert!(parts.server_name.is_none());
        assert!(!parts.config.client_auth_cert_resolver.has_certs());
        assert!(parts.config.alpn_protocols.is_empty());
    }

    #[test]
    fn a_ca_without_a_certificate_is_refused() {
        let (field, reason) = error(&ClientTls {
            ca_pem: Some(b"not a PEM document\n".to_vec()),
            ..ClientTls::default()
        });
        assert_eq!(field, "ca");
        assert_eq!(reason, "no usable CA certificate");
        // Empty is not "unset": an empty CA file is a mistake to show, not a reason to fall
        // back on the public roots.
        let (field, _) = error(&ClientTls {
            ca_pem: Some(Vec::new()),
            insecure_skip_verify: true,
            ..ClientTls::default()
        });
        assert_eq!(field, "ca");
    }

    #[test]
    fn a_certificate_and_key_must_come_together_and_match() {
        let pki = Pki::standard("client-tls-pair");
        let (field, reason) = error(&ClientTls {
            cert_pem: Some(pki.read("client.pem")),
            ..ClientTls::default()
        });
        assert_eq!(field, "key");
        assert!(reason.contains("without its key"), "{reason}");
        let (field, reason) = error(&ClientTls {
            key_pem: Some(pki.read("client.key")),
            ..ClientTls::default()
        });
        assert_eq!(field, "cert");
        assert!(reason.contains("without its certificate"), "{reason}");

        let (field, reason) = error(&ClientTls {
            cert_pem: Some(pki.read("client.key")),
            key_pem: Some(pki.read("client.key")),
            ..ClientTls::default()
        });
        assert_eq!(
            (field, reason.as_str()),
            ("cert", "no PEM CERTIFICATE block")
        );
        let (field, reason) = error(&ClientTls {
            cert_pem: Some(pki.read("client.pem")),
            key_pem: Some(pki.read("client.pem")),
            ..ClientTls::default()
        });
        assert_eq!(field, "key");
        assert!(reason.starts_with("no usable PEM private key"), "{reason}");
        let (field, reason) = error(&ClientTls {
            cert_pem: Some(pki.read("client.pem")),
            key_pem: Some(pki.read("server.key")),
            ..ClientTls::default()
        });
        assert_eq!(field, "cert");
        assert!(reason.contains("do not match"), "{reason}");

        let parts = build(&ClientTls {
            cert_pem: Some(pki.read("client.pem")),
            key_pem: Some(pki.read("client.key")),
            ..ClientTls::default()
        })
        .unwrap();
        assert!(parts.config.client_auth_cert_resolver.has_certs());
    }

    #[test]
    fn debug_shows_no_key() {
        let tls = ClientTls {
            cert_pem: Some(b"-----BEGIN CERTIFICATE-----".to_vec()),
            key_pem: Some(b"-----BEGIN PRIVATE KEY-----\nsecret".to_vec()),
            server_name: Some("metrics.example".to_owned()),
            ..ClientTls::default()
        };
        assert_eq!(
            format!("{tls:?}"),
            "ClientTls { ca_pem: None, cert_pem: Some(\"27 bytes\"), \
             key_pem: Some(\"34 bytes\"), server_name: Some(\"metrics.example\"), \
             insecure_skip_verify: false }"
        );
    }

    #[test]
    fn server_name_is_a_dns_name_or_an_ip_address() {
        let name = |name: &str| {
            build(&ClientTls {
                server_name: Some(name.to_owned()),
                ..ClientTls::default()
            })
            .map(|parts| parts.server_name.map(|n| n.to_str().into_owned()))
        };
        assert_eq!(
            name("metrics.example").unwrap().as_deref(),
            Some("metrics.example")
        );
        assert_eq!(name("10.0.0.1").unwrap().as_deref(), Some("10.0.0.1"));
        assert_eq!(name("[::1]").unwrap().as_deref(), Some("::1"));
        // Prometheus' unset.
        assert_eq!(name("").unwrap(), None);
        let (field, reason) = error(&ClientTls {
            server_name: Some("not a name!".to_owned()),
            ..ClientTls::default()
        });
        assert_eq!(field, "server_name");
        assert!(reason.contains("neither a DNS name"), "{reason}");
    }
}

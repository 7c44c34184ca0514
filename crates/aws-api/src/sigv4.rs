//! AWS Signature Version 4 for the requests ecs-prom sends: a canonical request over the
//! method, path, query, the headers chosen for signing and the body's SHA-256, signed with a
//! key derived from the secret, the day, the region and the service.

use crate::keys::Credentials;
use ring::{digest, hmac};

/// What a signature covers besides the headers.
pub struct SigningInput<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// The request path as sent on the wire (percent-encoded where needed; `/` for every JSON
    /// and Query API ecs-prom calls).
    pub path: &'a str,
    /// The query string as sent on the wire, without `?`, or empty.
    pub query: &'a str,
    /// Headers to sign, names in any case; `host` must be among them.
    pub headers: &'a [(&'a str, &'a str)],
    /// The request body.
    pub body: &'a [u8],
    /// Region of the credential scope.
    pub region: &'a str,
    /// Signing name of the service (`ecs`, `servicediscovery`, `ssm`, `ec2`).
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`, the value of the `x-amz-date` header.
    pub amz_date: &'a str,
}

/// The `Authorization` header value for `input` signed with `credentials`. The caller sends
/// exactly the headers it signed (and `x-amz-date`, plus `x-amz-security-token` for
/// temporary credentials, must be among them). The path is normalised and encoded the way
/// [`SigningOptions::for_service`] says for `input.service`.
pub fn authorization(input: &SigningInput<'_>, credentials: &Credentials) -> String {
    let payload_hash = payload_hash(input.body);
    let request = Request {
        method: input.method,
        path: input.path,
        query: input.query,
        headers: input.headers,
        payload_hash: &payload_hash,
        region: input.region,
        service: input.service,
        amz_date: input.amz_date,
    };
    sign(
        &request,
        credentials,
        SigningOptions::for_service(input.service),
    )
    .authorization
}

/// Any request to sign: like [`SigningInput`], with the body given by its hash so that
/// streamed or unsigned payloads can be signed too.
pub struct Request<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// The request path as sent on the wire, percent-encoded where needed
    /// (`/workspaces/ws-1/api/v1/remote_write`). Characters that must be encoded but are not
    /// (spaces, non-ASCII) are encoded for the signature; the caller sends them encoded.
    pub path: &'a str,
    /// The query string as sent on the wire, without `?`, or empty. Parameters are decoded
    /// (`+` as a space, like the services do) and re-encoded the way SigV4 wants.
    pub query: &'a str,
    /// Headers to sign, names in any case; `host` must be among them. A name given more than
    /// once is signed as one header whose values are joined by commas in the order given.
    pub headers: &'a [(&'a str, &'a str)],
    /// Lower-case hex SHA-256 of the body ([`payload_hash`]), or [`UNSIGNED_PAYLOAD`] where
    /// the service accepts that.
    pub payload_hash: &'a str,
    /// Region of the credential scope.
    pub region: &'a str,
    /// Signing name of the service (`ecs`, `aps`, `sts`...).
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`, the value of the `x-amz-date` header.
    pub amz_date: &'a str,
}

/// The payload hash of a body the signature does not cover (S3 and a few others).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// How the path enters the canonical request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningOptions {
    /// Remove `.` and `..` segments and empty segments (`//`) before signing, as every
    /// service but S3 does on its side.
    pub normalize_path: bool,
    /// Percent-encode the wire path once more (every `%` becomes `%25`), as every service but
    /// S3 does on its side; when false, only characters that are not valid in a path are
    /// encoded and existing escapes are kept.
    pub double_encode_path: bool,
}

impl Default for SigningOptions {
    /// What every service but S3 expects.
    fn default() -> Self {
        SigningOptions {
            normalize_path: true,
            double_encode_path: true,
        }
    }
}

impl SigningOptions {
    /// What S3 expects: the path exactly as sent, encoded once.
    pub const S3: SigningOptions = SigningOptions {
        normalize_path: false,
        double_encode_path: false,
    };

    /// The options the service with signing name `service` checks signatures with.
    pub fn for_service(service: &str) -> SigningOptions {
        if service == "s3" {
            SigningOptions::S3
        } else {
            SigningOptions::default()
        }
    }
}

/// Every intermediate value of one signature, so tests can compare each step with AWS' own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The canonical request.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// The hex signature.
    pub signature: String,
    /// The `Authorization` header value.
    pub authorization: String,
}

/// Signs `request` with `credentials`.
pub fn sign(
    request: &Request<'_>,
    credentials: &Credentials,
    options: SigningOptions,
) -> Signature {
    let headers = canonical_headers(request.headers);
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut canonical_request = String::with_capacity(256);
    canonical_request.push_str(request.method);
    canonical_request.push('\n');
    canonical_request.push_str(&canonical_path(request.path, options));
    canonical_request.push('\n');
    canonical_request.push_str(&canonical_query(request.query));
    canonical_request.push('\n');
    for (name, value) in &headers {
        canonical_request.push_str(name);
        canonical_request.push(':');
        canonical_request.push_str(value);
        canonical_request.push('\n');
    }
    canonical_request.push('\n');
    canonical_request.push_str(&signed_headers);
    canonical_request.push('\n');
    canonical_request.push_str(request.payload_hash);

    let day = request.amz_date.get(..8).unwrap_or(request.amz_date);
    let scope = format!("{day}/{}/{}/aws4_request", request.region, request.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        request.amz_date,
        hex(digest::digest(&digest::SHA256, canonical_request.as_bytes()).as_ref())
    );
    let secret = format!("AWS4{}", credentials.secret_access_key);
    let key = [day, request.region, request.service, "aws4_request"]
        .iter()
        .fold(secret.into_bytes(), |key, part| {
            hmac_sha256(&key, part.as_bytes())
        });
    let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id
    );
    Signature {
        canonical_request,
        string_to_sign,
        signature,
        authorization,
    }
}

/// Lower-case hex SHA-256 of `body`, the payload hash of a signed body (and the value of
/// `x-amz-content-sha256` where a service wants that header).
pub fn payload_hash(body: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, body).as_ref())
}

/// `YYYYMMDDTHHMMSSZ` for seconds since the Unix epoch.
pub fn amz_date(unix_seconds: u64) -> String {
    // RFC 3339 `2015-08-30T12:36:00.000000000Z` without separators and fraction.
    let rfc3339 = timestamps::format_rfc3339(unix_seconds as f64);
    let mut out: String = rfc3339[..19]
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    out.push('Z');
    out
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, data).as_ref().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

/// Header names lower-cased and sorted, a name given more than once signed once with its
/// values joined by commas in the order given, each value trimmed and inner runs of spaces
/// folded to one.
fn canonical_headers(headers: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut named: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), normalize_value(value)))
        .collect();
    // A stable sort keeps the values of one name in the order given, which the signature
    // covers.
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut merged: Vec<(String, String)> = Vec::with_capacity(named.len());
    for (name, value) in named {
        match merged.last_mut() {
            Some((last, values)) if *last == name => {
                values.push(',');
                values.push_str(&value);
            }
            _ => merged.push((name, value)),
        }
    }
    merged
}

/// Header values are trimmed and inner runs of spaces folded to one. Inside a value only
/// spaces are folded (whitespace at the ends is trimmed): S3 compares other inner whitespace
/// as is, and the other services agree on spaces.
fn normalize_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut after_space = false;
    for c in value.trim_matches([' ', '\t', '\r', '\n']).chars() {
        if c == ' ' {
            if !after_space {
                out.push(' ');
            }
            after_space = true;
        } else {
            out.push(c);
            after_space = false;
        }
    }
    out
}

/// The canonical URI: the wire path, normalised (RFC 3986 dot-segment removal plus empty
/// segments dropped) and encoded as `options` say. AWS' documentation calls the non-S3
/// encoding "twice": once by the sender for the wire, once more for the signature.
fn canonical_path(path: &str, options: SigningOptions) -> String {
    let path = if options.normalize_path {
        normalize_path(path)
    } else if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    };
    let mut out = String::with_capacity(path.len() + 8);
    for byte in path.bytes() {
        let keep =
            is_unreserved(byte) || byte == b'/' || (byte == b'%' && !options.double_encode_path);
        if keep {
            out.push(char::from(byte));
        } else {
            push_escape(&mut out, byte);
        }
    }
    out
}

/// Removes `.`, `..` and empty segments; keeps a trailing slash.
fn normalize_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            segment => segments.push(segment),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    // `/a/`, `/a/.` and `/a/..` all name a directory (RFC 3986 §5.2.4).
    let trailing = ["/", "/.", "/.."].iter().any(|end| path.ends_with(end));
    if out.is_empty() || (trailing && !out.ends_with('/')) {
        out.push('/');
    }
    out
}

/// Query parameters decoded, encoded the SigV4 way and sorted by encoded name, then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode_bytes(&query_decode(name)),
                uri_encode_bytes(&query_decode(value)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte, a malformed
/// escape stays as written.
fn query_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let high = bytes.get(i + 1).and_then(|b| char::from(*b).to_digit(16));
                let low = bytes.get(i + 2).and_then(|b| char::from(*b).to_digit(16));
                if let (Some(high), Some(low)) = (high, low) {
                    // Two hex digits are below 256.
                    out.push((high * 16 + low) as u8);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    out
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte)
}

fn push_escape(out: &mut String, byte: u8) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(DIGITS[usize::from(byte >> 4)]));
    out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
}

fn uri_encode_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        if is_unreserved(byte) {
            out.push(char::from(byte));
        } else {
            push_escape(&mut out, byte);
        }
    }
    out
}

/// Percent-encodes everything but the unreserved characters of RFC 3986.
pub fn uri_encode(text: &str) -> String {
    uri_encode_bytes(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_credentials() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            expires_at: None,
        }
    }

    // The `get-vanilla` and `post-x-www-form-urlencoded` cases of AWS' published SigV4 test
    // suite (expected signatures as published there, not computed by this code).
    #[test]
    fn matches_the_published_get_vanilla_case() {
        let input = SigningInput {
            method: "GET",
            path: "/",
            query: "",
            headers: &[
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", "20150830T123600Z"),
            ],
            body: b"",
            region: "us-east-1",
            service: "service",
            amz_date: "20150830T123600Z",
        };
        assert_eq!(
            authorization(&input, &example_credentials()),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    // A remote write to Amazon Managed Service for Prometheus: a path, a query, temporary
    // credentials and a binary body. The expected signature was computed with the `aws-sigv4`
    // crate 1.6.4 (the AWS SDK for Rust's signer) from the same inputs.
    #[test]
    fn signs_a_remote_write_like_the_aws_sdk() {
        let credentials = Credentials {
            session_token: Some("session-token-example".into()),
            ..example_credentials()
        };
        let input = SigningInput {
            method: "POST",
            path: "/workspaces/ws-12345678-abcd/api/v1/remote_write",
            query: "a=b%20c&A=1",
            headers: &[
                ("host", "aps-workspaces.eu-west-1.amazonaws.com"),
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "snappy"),
                ("x-prometheus-remote-write-version", "0.1.0"),
                ("x-amz-date", "20231114T221320Z"),
                ("x-amz-security-token", "session-token-example"),
            ],
            body: b"\x00\x01snappy-bytes",
            region: "eu-west-1",
            service: "aps",
            amz_date: "20231114T221320Z",
        };
        assert_eq!(
            authorization(&input, &credentials),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-1/aps/aws4_request, \
             SignedHeaders=content-encoding;content-type;host;x-amz-date;x-amz-security-token;\
             x-prometheus-remote-write-version, \
             Signature=583ca52f82b607250bfcc1f102a52587c28094163b19b89f777819fc7e6d04a6"
        );
    }

    #[test]
    fn normalizes_and_encodes_paths_per_service() {
        let aws = SigningOptions::default();
        assert_eq!(canonical_path("/a/./b/../c//d/", aws), "/a/c/d/");
        assert_eq!(canonical_path("/a/b/..", aws), "/a/");
        assert_eq!(canonical_path("/../..", aws), "/");
        assert_eq!(canonical_path("//", aws), "/");
        // Every service but S3 encodes the wire path once more.
        assert_eq!(
            canonical_path("/example%20space/", aws),
            "/example%2520space/"
        );
        assert_eq!(canonical_path("/a b/\u{1234}", aws), "/a%20b/%E1%88%B4");
        // S3: the path as sent, only what must be encoded encoded.
        let s3 = SigningOptions::for_service("s3");
        assert_eq!(s3, SigningOptions::S3);
        assert_eq!(canonical_path("/a/./b//c", s3), "/a/./b//c");
        assert_eq!(
            canonical_path("/example%20space/a b", s3),
            "/example%20space/a%20b"
        );
    }

    #[test]
    fn signs_repeated_headers_once_with_their_values_in_order() {
        assert_eq!(
            canonical_headers(&[
                ("My-Header", " b  c "),
                ("Host", "h"),
                ("my-header", "a"),
                ("MY-HEADER", "b"),
            ]),
            vec![
                ("host".to_owned(), "h".to_owned()),
                ("my-header".to_owned(), "b c,a,b".to_owned()),
            ]
        );
    }

    #[test]
    fn canonicalizes_queries_from_their_wire_form() {
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(
            canonical_query("k=a+b&k2=%7e%41&flag"),
            "flag=&k=a%20b&k2=~A"
        );
        assert_eq!(canonical_query("%E1%88%B4=x&Z=y"), "%E1%88%B4=x&Z=y");
        // A malformed escape is signed as the characters it is.
        assert_eq!(canonical_query("a=100%"), "a=100%25");
    }

    #[test]
    fn formats_the_amz_date() {
        // 2015-08-30T12:36:00Z is 1440938160 seconds after the epoch.
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
    }

    #[test]
    fn encodes_like_aws() {
        assert_eq!(uri_encode("a b/c~d"), "a%20b%2Fc~d");
        assert_eq!(canonical_query("b=2&a=1"), "a=1&b=2");
        assert_eq!(canonical_path("/", SigningOptions::default()), "/");
        assert_eq!(canonical_path("", SigningOptions::S3), "/");
        assert_eq!(normalize_value("  a   b "), "a b");
    }
}

//! `AwsClient::send`, the entry point for any AWS API: a remote write to an AMP workspace goes
//! to the workspace host's path and query, and what arrives is exactly what was signed (the
//! usual cause of AMP's signature mismatches is a header added after signing). botocore, an
//! independent SigV4 implementation, computes the same signature for the request that arrived,
//! with a session token and with credentials of a role assumed through STS (moto_server).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use aws_api::{
    ApiRequest, AwsClient, AwsConfig, ClientOptions, Credentials, RoleSettings, Service, sigv4,
};
use bytes::Bytes;
use std::collections::HashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One HTTP/1.1 request as it arrived: request line, headers in order, body.
struct Received {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Accepts one request on `listener`, answers 204 and returns it.
async fn receive_one(listener: TcpListener) -> Received {
    let (mut stream, _) = listener.accept().await.expect("accept");
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let read = stream.read(&mut chunk).await.expect("read");
        assert!(read > 0, "connection closed before the headers ended");
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).expect("utf-8 head");
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().expect("request line").split(' ');
    let method = request_line.next().expect("method").to_owned();
    let target = request_line.next().expect("target").to_owned();
    let headers: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(':').expect("a header");
            (name.trim().to_ascii_lowercase(), value.trim().to_owned())
        })
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .map(|(_, v)| v.parse().expect("a length"))
        .unwrap_or(0);
    let mut body = buffer[head_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut chunk).await.expect("read body");
        assert!(read > 0, "connection closed before the body ended");
        body.extend_from_slice(&chunk[..read]);
    }
    stream
        .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
        .await
        .expect("answer");
    Received {
        method,
        target,
        headers,
        body,
    }
}

/// A client for `region` signing with the static `(key, secret, session token)`, whose AMP
/// endpoint is the receiver at `address`.
fn client_with_keys(
    address: std::net::SocketAddr,
    region: &str,
    (key, secret, token): (&str, &str, &str),
) -> AwsClient {
    let env: HashMap<&str, String> = [
        ("AWS_ACCESS_KEY_ID", key.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", secret.to_owned()),
        ("AWS_SESSION_TOKEN", token.to_owned()),
        ("AWS_ENDPOINT_URL_AMP", format!("http://{address}")),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
    .into_iter()
    .collect();
    AwsClient::new(
        AwsConfig::from_env(|key| env.get(key).cloned()),
        region.into(),
        ClientOptions::default(),
    )
}

#[tokio::test]
async fn a_remote_write_to_amp_is_sent_as_signed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let server = tokio::spawn(receive_one(listener));
    let client = client_with_keys(
        address,
        "eu-west-1",
        (
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "session-token",
        ),
    );
    // Not a real snappy block: the client neither reads nor changes the body.
    let body = Bytes::from_static(b"\xff\x06\x00\x00sNaPpY binary body");
    client
        .send(ApiRequest {
            service: Service::Aps,
            operation: "RemoteWrite",
            method: http::Method::POST,
            path_and_query: "/workspaces/ws-1234/api/v1/remote_write?dry=1",
            headers: vec![
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "snappy"),
                ("x-prometheus-remote-write-version", "0.1.0"),
            ],
            body: body.clone(),
        })
        .await
        .expect("a 204 is a success");
    let received = server.await.expect("the server saw the request");

    assert_eq!(received.method, "POST");
    assert_eq!(
        received.target,
        "/workspaces/ws-1234/api/v1/remote_write?dry=1"
    );
    assert_eq!(received.body, body.to_vec());
    let header = |name: &str| {
        received
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header"))
    };
    let authorization = header("authorization");
    let amz_date = header("x-amz-date");
    assert!(
        authorization.starts_with(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{}/eu-west-1/aps/aws4_request, SignedHeaders=content-encoding;content-type;host;x-amz-date;x-amz-security-token;x-prometheus-remote-write-version, Signature="
        , &amz_date[..8])),
        "{authorization}"
    );
    // Sign what arrived, with the same key: it must give the signature that came with it.
    let (path, query) = received
        .target
        .split_once('?')
        .unwrap_or((&received.target, ""));
    let signed_names = [
        "content-encoding",
        "content-type",
        "host",
        "x-amz-date",
        "x-amz-security-token",
        "x-prometheus-remote-write-version",
    ];
    let signed: Vec<(&str, &str)> = signed_names.iter().map(|n| (*n, header(n))).collect();
    let expected = sigv4::authorization(
        &sigv4::SigningInput {
            method: &received.method,
            path,
            query,
            headers: &signed,
            body: &received.body,
            region: "eu-west-1",
            service: "aps",
            amz_date,
        },
        &Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: Some("session-token".into()),
            expires_at: None,
        },
    );
    assert_eq!(authorization, expected);
    assert_eq!(client.counts().attempts("RemoteWrite"), 1);
}

/// What botocore's SigV4Auth computes for `received` signed with `credentials`.
fn botocore_signature(received: &Received, credentials: &Credentials, region: &str) -> String {
    let request = test_support::HttpRequest {
        method: received.method.clone(),
        target: received.target.clone(),
        headers: received.headers.clone(),
        body: received.body.clone(),
    };
    test_support::botocore_signature(
        &request,
        &credentials.access_key_id,
        &credentials.secret_access_key,
        credentials.session_token.as_deref(),
        region,
        "aps",
    )
}

/// The signature in an Authorization header.
fn signature_of(authorization: &str) -> &str {
    authorization
        .rsplit("Signature=")
        .next()
        .expect("a signature")
}

/// Sends one remote write through `client` to the receiver `listener` and returns what
/// arrived.
async fn remote_write(client: &AwsClient, listener: TcpListener) -> Received {
    let server = tokio::spawn(receive_one(listener));
    client
        .send(ApiRequest {
            service: Service::Aps,
            operation: "RemoteWrite",
            method: http::Method::POST,
            path_and_query: "/workspaces/ws-5678/api/v1/remote_write",
            headers: vec![
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "snappy"),
                ("x-prometheus-remote-write-version", "0.1.0"),
            ],
            body: Bytes::from_static(b"\x0a\x1f\x0a\x0b\x0a\x08__name__ a remote write"),
        })
        .await
        .expect("a 204 is a success");
    server.await.expect("the server saw the request")
}

#[tokio::test]
async fn botocore_signs_a_remote_write_with_a_session_token_the_same_way() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let client = client_with_keys(
        address,
        "us-west-2",
        (
            "ASIAEXAMPLESESSION",
            "c2VjcmV0L3dpdGgvc2xhc2hlcytwbHVz",
            "FwoGZXIvYXdzEXAMPLE//token+with/odd=chars",
        ),
    );
    let received = remote_write(&client, listener).await;
    let credentials = client.current_credentials().await.expect("credentials");
    let authorization = received
        .headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .map(|(_, v)| v.clone())
        .expect("signed");
    assert_eq!(
        signature_of(&authorization),
        botocore_signature(&received, &credentials, "us-west-2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botocore_signs_a_remote_write_with_an_assumed_role_the_same_way() {
    let moto = test_support::MotoServer::start();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let mut env: HashMap<&str, String> = moto.aws_env().into_iter().collect();
    env.insert("AWS_ENDPOINT_URL_AMP", format!("http://{address}"));
    let config = AwsConfig::from_env(|key| env.get(key).cloned()).with_role(RoleSettings {
        role_arn: "arn:aws:iam::123456789012:role/amp-writer".into(),
        external_id: None,
        session_name: Some("ecs-prom-agent".into()),
        duration_seconds: None,
    });
    let client = AwsClient::new(config, "eu-central-1".into(), ClientOptions::default());
    let received = remote_write(&client, listener).await;
    let assumed = client.current_credentials().await.expect("credentials");
    // Signed with the role's credentials from STS, not with moto_server's base keys.
    assert_ne!(assumed.access_key_id, "testing");
    assert!(assumed.session_token.is_some());
    let authorization = received
        .headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .map(|(_, v)| v.clone())
        .expect("signed");
    assert!(
        authorization.contains(&format!("Credential={}/", assumed.access_key_id)),
        "{authorization}"
    );
    assert_eq!(
        signature_of(&authorization),
        botocore_signature(&received, &assumed, "eu-central-1")
    );
}

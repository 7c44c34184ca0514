//! Every credential source against real servers on loopback: a container credentials endpoint
//! that goes away while its credentials are still valid, STS (`moto_server`, and a recording
//! stand-in where the request itself is asserted), `credential_process` scripts, and an SSO
//! portal stand-in reading the AWS CLI's token cache. Each test looks at which access key
//! signed the API call that followed.

// Tests fail on any unexpected error.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use aws_api::{AwsClient, AwsConfig, ClientOptions, RoleSettings, Service};
use std::collections::HashMap;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use test_support::MotoServer;

/// One request a stand-in server received.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The access key id in the SigV4 `Authorization` header.
    fn signed_by(&self) -> Option<String> {
        let authorization = self.header("authorization")?;
        let credential = authorization.split("Credential=").nth(1)?;
        Some(credential.split('/').next()?.to_owned())
    }

    /// The value of form field `name` in the body.
    fn form(&self, name: &str) -> Option<String> {
        self.body.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == name).then(|| percent_decode(value))
        })
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

type Handler = dyn Fn(&Recorded) -> (u16, String) + Send + Sync;

/// A loopback HTTP/1.1 server that records every request and answers through a handler.
struct Stub {
    url: String,
    address: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    stopping: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Stub {
    fn start(handler: impl Fn(&Recorded) -> (u16, String) + Send + Sync + 'static) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let thread = {
            let (requests, stopping) = (requests.clone(), stopping.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        // Dropping the listener: from now on connections are refused.
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    let (requests, handler) = (requests.clone(), handler.clone());
                    std::thread::spawn(move || serve(stream, &requests, &*handler));
                }
            })
        };
        Stub {
            url: format!("http://{address}"),
            address,
            requests,
            stopping,
            thread: Mutex::new(Some(thread)),
        }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// Stops listening; returns once connections are refused.
    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.address);
        if let Some(thread) = self.thread.lock().unwrap().take() {
            thread.join().unwrap();
        }
        assert!(TcpStream::connect(self.address).is_err());
    }
}

fn serve(stream: TcpStream, requests: &Mutex<Vec<Recorded>>, handler: &Handler) {
    let Some(received) = test_support::read_http_request(&stream) else {
        return;
    };
    let request = Recorded {
        method: received.method,
        target: received.target,
        headers: received.headers,
        body: String::from_utf8_lossy(&received.body).into_owned(),
    };
    requests.lock().unwrap().push(request.clone());
    let (status, body) = handler(&request);
    let content_type = if body.starts_with('<') {
        "text/xml"
    } else {
        "application/json"
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// An RFC 3339 UTC time `seconds` from now.
fn rfc3339_in(seconds: i64) -> String {
    let at = now() as i64 + seconds;
    let (days, rest) = (at.div_euclid(86_400), at.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// A stand-in for ECS that records who signed each call.
fn ecs_recorder() -> Stub {
    Stub::start(|_| (200, r#"{"clusterArns":[]}"#.to_owned()))
}

fn client(env: &[(&str, String)]) -> AwsClient {
    client_with(env, None)
}

fn client_with(env: &[(&str, String)], role: Option<RoleSettings>) -> AwsClient {
    let map: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let mut config = AwsConfig::from_env(|key| map.get(key).cloned());
    if let Some(role) = role {
        config = config.with_role(role);
    }
    AwsClient::new(config, "us-east-1".into(), ClientOptions::default())
}

/// Calls ECS ListClusters and returns the access key id that signed it.
async fn signer_of_next_call(client: &AwsClient, ecs: &Stub) -> String {
    let before = ecs.requests().len();
    let _: serde_json::Value = client
        .json(Service::Ecs, "ListClusters", &serde_json::json!({}))
        .await
        .expect("the call succeeds");
    let requests = ecs.requests();
    assert_eq!(requests.len(), before + 1);
    requests[before].signed_by().expect("a signed call")
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("aws-api-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn base_env(ecs: &Stub) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL_ECS", ecs.url.clone()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("HOME", "/nonexistent".into()),
    ]
}

fn container_answer(key: &str, expires_in: i64) -> String {
    format!(
        r#"{{"RoleArn":"arn:aws:iam::123456789012:role/task","AccessKeyId":"{key}","SecretAccessKey":"secret","Token":"token-{key}","Expiration":"{}"}}"#,
        rfc3339_in(expires_in)
    )
}

/// Log lines written while the returned guard lives (on this thread).
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = Buffer(buffer.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    (buffer, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn cached_credentials_outlive_their_endpoint_until_they_expire() {
    let (logs, _guard) = capture_logs();
    let served = Arc::new(AtomicUsize::new(0));
    let failing = Arc::new(AtomicBool::new(false));
    let container = {
        let (served, failing) = (served.clone(), failing.clone());
        Stub::start(move |request| {
            assert_eq!(request.header("authorization"), Some("tok-123"));
            if failing.load(Ordering::SeqCst) {
                return (500, "down for maintenance".into());
            }
            let n = served.fetch_add(1, Ordering::SeqCst) + 1;
            // Inside the five-minute renewal window from the start.
            (200, container_answer(&format!("ASIACONTAINER{n}"), 200))
        })
    };
    let ecs = ecs_recorder();
    let mut env = base_env(&ecs);
    env.push((
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        format!("{}/creds", container.url),
    ));
    env.push(("AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok-123".into()));
    let client = client(&env);

    assert_eq!(signer_of_next_call(&client, &ecs).await, "ASIACONTAINER1");
    assert_eq!(
        ecs.requests()[0].header("x-amz-security-token"),
        Some("token-ASIACONTAINER1")
    );
    // While the endpoint works, credentials inside the window are renewed.
    assert_eq!(signer_of_next_call(&client, &ecs).await, "ASIACONTAINER2");

    // The endpoint fails: one renewal attempt, then no more for a while, and every call is
    // signed with the credentials that are still valid.
    failing.store(true, Ordering::SeqCst);
    let attempts_before = container.requests().len();
    for _ in 0..5 {
        assert_eq!(signer_of_next_call(&client, &ecs).await, "ASIACONTAINER2");
    }
    assert_eq!(container.requests().len(), attempts_before + 1);
    let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert_eq!(
        logged
            .matches("renewing AWS credentials failed; signing with the cached ones")
            .count(),
        1,
        "{logged}"
    );
    assert!(
        logged.contains("WARN") && logged.contains("HTTP 500: down for maintenance"),
        "{logged}"
    );

    // Once the retry interval has passed, renewal is tried again, and works.
    tokio::time::sleep(Duration::from_millis(10_500)).await;
    failing.store(false, Ordering::SeqCst);
    assert_eq!(signer_of_next_call(&client, &ecs).await, "ASIACONTAINER3");

    // The endpoint goes away altogether: still the cached credentials, and the refused
    // connection is the logged cause.
    container.stop();
    for _ in 0..3 {
        assert_eq!(signer_of_next_call(&client, &ecs).await, "ASIACONTAINER3");
    }
    let logged = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert_eq!(
        logged.matches("renewing AWS credentials failed").count(),
        2,
        "{logged}"
    );
    assert!(
        logged.to_ascii_lowercase().contains("connection refused"),
        "{logged}"
    );
}

#[tokio::test]
async fn expired_credentials_are_not_used_when_their_endpoint_is_down() {
    let container = Stub::start(|_| (200, container_answer("ASIASHORT", 2)));
    let ecs = ecs_recorder();
    let mut env = base_env(&ecs);
    env.push(("AWS_CONTAINER_CREDENTIALS_FULL_URI", container.url.clone()));
    let client = client(&env);
    assert_eq!(signer_of_next_call(&client, &ecs).await, "ASIASHORT");
    container.stop();
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let error = client
        .json::<serde_json::Value>(Service::Ecs, "ListClusters", &serde_json::json!({}))
        .await
        .expect_err("no valid credentials");
    let text = aws_api::error_chain(&error);
    assert!(
        text.contains("ECS container credentials at")
            && text.to_ascii_lowercase().contains("connection refused"),
        "{text}"
    );
    assert_eq!(
        ecs.requests().len(),
        1,
        "nothing was signed with expired keys"
    );
}

/// A stand-in for STS: `AssumeRole` and `AssumeRoleWithWebIdentity` give `ASIASTS<n>`
/// credentials valid for `lifetime` seconds.
fn sts_stub(lifetime: i64) -> Stub {
    let issued = AtomicUsize::new(0);
    Stub::start(move |request| {
        let action = request.form("Action").unwrap_or_default();
        let n = issued.fetch_add(1, Ordering::SeqCst) + 1;
        (
            200,
            format!(
                "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><{action}Result>\
                 <Credentials><AccessKeyId>ASIASTS{n}</AccessKeyId><SecretAccessKey>s{n}</SecretAccessKey>\
                 <SessionToken>t{n}</SessionToken><Expiration>{}</Expiration></Credentials>\
                 </{action}Result></{action}Response>",
                rfc3339_in(lifetime)
            ),
        )
    })
}

fn static_env(ecs: &Stub) -> Vec<(&'static str, String)> {
    let mut env = base_env(ecs);
    env.push(("AWS_ACCESS_KEY_ID", "AKIDBASE".into()));
    env.push(("AWS_SECRET_ACCESS_KEY", "base-secret".into()));
    env
}

#[tokio::test]
async fn a_role_flag_is_assumed_with_the_chains_credentials_and_chained_roles_in_turn() {
    let sts = sts_stub(3600);
    let ecs = ecs_recorder();
    let dir = temp_dir("roles");
    std::fs::write(
        dir.join("config"),
        "[profile ops]\nrole_arn = arn:aws:iam::111111111111:role/first\nsource_profile = keys\n\
         external_id = ext-42\nrole_session_name = ops-session\nduration_seconds = 1200\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("credentials"),
        "[keys]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = p\n",
    )
    .unwrap();
    let mut env = base_env(&ecs);
    env.push(("AWS_ENDPOINT_URL_STS", sts.url.clone()));
    env.push(("AWS_PROFILE", "ops".into()));
    env.push(("AWS_CONFIG_FILE", dir.join("config").display().to_string()));
    env.push((
        "AWS_SHARED_CREDENTIALS_FILE",
        dir.join("credentials").display().to_string(),
    ));
    let flag_role = RoleSettings {
        role_arn: "arn:aws:iam::222222222222:role/second".into(),
        external_id: None,
        session_name: Some("flag-session".into()),
        duration_seconds: None,
    };
    let client = client_with(&env, Some(flag_role));
    assert_eq!(signer_of_next_call(&client, &ecs).await, "ASIASTS2");
    assert_eq!(ecs.requests()[0].header("x-amz-security-token"), Some("t2"));
    let calls = sts.requests();
    assert_eq!(calls.len(), 2);
    let first = &calls[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.form("Action").as_deref(), Some("AssumeRole"));
    assert_eq!(first.form("Version").as_deref(), Some("2011-06-15"));
    assert_eq!(
        first.form("RoleArn").as_deref(),
        Some("arn:aws:iam::111111111111:role/first")
    );
    assert_eq!(first.form("ExternalId").as_deref(), Some("ext-42"));
    assert_eq!(
        first.form("RoleSessionName").as_deref(),
        Some("ops-session")
    );
    assert_eq!(first.form("DurationSeconds").as_deref(), Some("1200"));
    assert_eq!(first.signed_by().as_deref(), Some("AKIDPROFILE"));
    assert!(
        first
            .header("authorization")
            .unwrap()
            .contains("/us-east-1/sts/aws4_request"),
        "{first:?}"
    );
    let second = &calls[1];
    assert_eq!(
        second.form("RoleArn").as_deref(),
        Some("arn:aws:iam::222222222222:role/second")
    );
    assert_eq!(
        second.form("RoleSessionName").as_deref(),
        Some("flag-session")
    );
    assert_eq!(second.form("ExternalId"), None);
    assert_eq!(second.signed_by().as_deref(), Some("ASIASTS1"));
    assert_eq!(second.header("x-amz-security-token"), Some("t1"));
    // An hour left: no renewal on the next call.
    assert_eq!(signer_of_next_call(&client, &ecs).await, "ASIASTS2");
    assert_eq!(sts.requests().len(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn sts_refusals_name_the_role() {
    let sts = Stub::start(|_| {
        (
            403,
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
             <Message>not authorized to perform sts:AssumeRole</Message></Error></ErrorResponse>"
                .into(),
        )
    });
    let ecs = ecs_recorder();
    let mut env = static_env(&ecs);
    env.push(("AWS_ENDPOINT_URL_STS", sts.url.clone()));
    let client = client_with(
        &env,
        Some(RoleSettings {
            role_arn: "arn:aws:iam::1:role/denied".into(),
            external_id: None,
            session_name: None,
            duration_seconds: None,
        }),
    );
    let error = client.current_credentials().await.expect_err("refused");
    let text = aws_api::error_chain(&error);
    assert!(
        text.contains("AssumeRole arn:aws:iam::1:role/denied")
            && text.contains("AccessDenied")
            && text.contains("sts:AssumeRole"),
        "{text}"
    );
    let session = sts.requests()[0].form("RoleSessionName").unwrap();
    assert!(session.starts_with("ecs-prom-"), "{session}");
    assert!(ecs.requests().is_empty());
}

#[tokio::test]
async fn roles_assumed_at_moto_sign_the_next_call_and_are_renewed_before_they_expire() {
    let moto = MotoServer::start();
    let ecs = ecs_recorder();
    let dir = temp_dir("moto-roles");
    // 60 s is inside the five-minute renewal window, so every call renews.
    std::fs::write(
        dir.join("config"),
        "[profile short]\nrole_arn = arn:aws:iam::123456789012:role/short\n\
         source_profile = keys\nduration_seconds = 60\n\
         [profile keys]\naws_access_key_id = AKIDKEYS\naws_secret_access_key = k\n",
    )
    .unwrap();
    let mut env = base_env(&ecs);
    env.push(("AWS_ENDPOINT_URL_STS", moto.url.clone()));
    env.push(("AWS_PROFILE", "short".into()));
    env.push(("AWS_CONFIG_FILE", dir.join("config").display().to_string()));
    let client = client(&env);
    let first = signer_of_next_call(&client, &ecs).await;
    let second = signer_of_next_call(&client, &ecs).await;
    for key in [&first, &second] {
        assert!(key.starts_with("ASIA") && key.len() == 20, "{key}");
    }
    assert_ne!(first, second, "renewed");
    let credentials = client.current_credentials().await.unwrap();
    let left = credentials.expires_at.unwrap() - now();
    assert!((30.0..=61.0).contains(&left), "{left}");
    assert_eq!(
        client
            .counts()
            .snapshot()
            .iter()
            .filter(|((service, op, _), _)| *service == Service::Sts && *op == "AssumeRole")
            .map(|(_, n)| n)
            .sum::<u64>(),
        3
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn web_identity_tokens_are_read_again_at_each_renewal_and_sent_unsigned() {
    let sts = sts_stub(60);
    let ecs = ecs_recorder();
    let dir = temp_dir("web-identity");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "token-one\n").unwrap();
    let mut env = base_env(&ecs);
    env.push(("AWS_ENDPOINT_URL_STS", sts.url.clone()));
    env.push((
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        token_file.display().to_string(),
    ));
    env.push(("AWS_ROLE_ARN", "arn:aws:iam::1:role/pod".into()));
    env.push(("AWS_ROLE_SESSION_NAME", "pod-session".into()));
    let client = client(&env);
    assert_eq!(signer_of_next_call(&client, &ecs).await, "ASIASTS1");
    std::fs::write(&token_file, "token-two\n").unwrap();
    assert_eq!(signer_of_next_call(&client, &ecs).await, "ASIASTS2");
    let calls = sts.requests();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0].form("Action").as_deref(),
        Some("AssumeRoleWithWebIdentity")
    );
    assert_eq!(
        calls[0].form("WebIdentityToken").as_deref(),
        Some("token-one")
    );
    assert_eq!(
        calls[1].form("WebIdentityToken").as_deref(),
        Some("token-two")
    );
    assert_eq!(
        calls[0].form("RoleArn").as_deref(),
        Some("arn:aws:iam::1:role/pod")
    );
    assert_eq!(
        calls[0].form("RoleSessionName").as_deref(),
        Some("pod-session")
    );
    assert_eq!(calls[0].header("authorization"), None);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_web_identity_profile_works_against_moto() {
    let moto = MotoServer::start();
    let ecs = ecs_recorder();
    let dir = temp_dir("web-identity-moto");
    std::fs::write(dir.join("token"), "eyJhbGciOiJSUzI1NiJ9.e30.sig").unwrap();
    std::fs::write(
        dir.join("config"),
        format!(
            "[default]\nrole_arn = arn:aws:iam::123456789012:role/oidc\nweb_identity_token_file = {}\n",
            dir.join("token").display()
        ),
    )
    .unwrap();
    let mut env = base_env(&ecs);
    env.push(("AWS_ENDPOINT_URL_STS", moto.url.clone()));
    env.push(("AWS_CONFIG_FILE", dir.join("config").display().to_string()));
    let client = client(&env);
    let key = signer_of_next_call(&client, &ecs).await;
    assert!(key.starts_with("ASIA") && key.len() == 20, "{key}");
    let credentials = client.current_credentials().await.unwrap();
    assert_eq!(credentials.access_key_id, key, "an hour left: not renewed");
    assert!(credentials.session_token.is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn credential_process_output_signs_the_next_call_and_failures_quote_stderr() {
    let ecs = ecs_recorder();
    let dir = temp_dir("process");
    let script = dir.join("creds.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncount=$(cat {dir}/count 2>/dev/null || echo 0)\ncount=$((count + 1))\n\
             echo $count > {dir}/count\n\
             printf '{{\"Version\": 1, \"AccessKeyId\": \"ASIAPROC%s\", \"SecretAccessKey\": \"s\", \
             \"SessionToken\": \"t\", \"Expiration\": \"%s\"}}' \"$count\" \"$1\"\n",
            dir = dir.display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("config"),
        format!(
            "[profile tool]\ncredential_process = sh {} {}\n\
             [profile short]\ncredential_process = sh {} {}\n\
             [profile broken]\ncredential_process = echo 'vault is locked' >&2; exit 3\n\
             [profile garbage]\ncredential_process = echo not json\n",
            script.display(),
            rfc3339_in(3600),
            script.display(),
            rfc3339_in(120),
        ),
    )
    .unwrap();
    let env_for = |profile: &str| {
        let mut env = base_env(&ecs);
        env.push(("AWS_CONFIG_FILE", dir.join("config").display().to_string()));
        env.push(("AWS_PROFILE", profile.to_owned()));
        env
    };
    let client = client(&env_for("tool"));
    assert_eq!(signer_of_next_call(&client, &ecs).await, "ASIAPROC1");
    assert_eq!(
        signer_of_next_call(&client, &ecs).await,
        "ASIAPROC1",
        "cached"
    );
    let short = self::client(&env_for("short"));
    assert_eq!(signer_of_next_call(&short, &ecs).await, "ASIAPROC2");
    assert_eq!(
        signer_of_next_call(&short, &ecs).await,
        "ASIAPROC3",
        "renewed"
    );

    let error = self::client(&env_for("broken"))
        .current_credentials()
        .await
        .expect_err("exit 3");
    let text = aws_api::error_chain(&error);
    assert!(
        text.contains("credential_process of AWS profile \"broken\"")
            && text.contains("exit status: 3")
            && text.contains("vault is locked"),
        "{text}"
    );
    let error = self::client(&env_for("garbage"))
        .current_credentials()
        .await
        .expect_err("not json");
    assert!(
        aws_api::error_chain(&error).contains("not the credentials JSON"),
        "{error:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The AWS CLI's cache file name for `key`.
fn sha1_hex(key: &str) -> String {
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("printf %s '{key}' | sha1sum"))
        .output()
        .unwrap();
    String::from_utf8(output.stdout).unwrap()[..40].to_owned()
}

#[tokio::test]
async fn sso_profiles_use_the_cli_token_cache_and_the_portal() {
    let expires_ms = (now() as u64 + 3600) * 1000;
    let portal = Stub::start(move |request| {
        if request.header("x-amz-sso_bearer_token") != Some("cached-access-token") {
            return (
                401,
                r#"{"message":"Session token not found or invalid"}"#.into(),
            );
        }
        (
            200,
            format!(
                r#"{{"roleCredentials":{{"accessKeyId":"ASIASSO","secretAccessKey":"s","sessionToken":"t","expiration":{expires_ms}}}}}"#
            ),
        )
    });
    let ecs = ecs_recorder();
    let home = temp_dir("sso");
    let cache = home.join(".aws/sso/cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::write(
        home.join("config"),
        "[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = ReadOnly\n\
         [sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\nsso_region = eu-west-1\n\
         [profile legacy]\nsso_start_url = https://old.awsapps.com/start\nsso_region = eu-west-1\n\
         sso_account_id = 444455556666\nsso_role_name = Admin\n",
    )
    .unwrap();
    let token = |expires_at: &str| {
        format!(
            r#"{{"startUrl":"https://corp.awsapps.com/start","region":"eu-west-1","accessToken":"cached-access-token","expiresAt":"{expires_at}"}}"#
        )
    };
    let env_for = |profile: &str| {
        let mut env = base_env(&ecs);
        env.retain(|(k, _)| *k != "HOME");
        env.push(("HOME", home.display().to_string()));
        env.push(("AWS_CONFIG_FILE", home.join("config").display().to_string()));
        env.push(("AWS_ENDPOINT_URL_SSO", portal.url.clone()));
        env.push(("AWS_PROFILE", profile.to_owned()));
        env
    };

    // Not logged in yet.
    let error = client(&env_for("dev"))
        .current_credentials()
        .await
        .expect_err("no token");
    let text = aws_api::error_chain(&error);
    assert!(text.contains("run `aws sso login --profile dev`"), "{text}");
    assert!(portal.requests().is_empty());

    std::fs::write(
        cache.join(format!("{}.json", sha1_hex("corp"))),
        token(&rfc3339_in(3600)),
    )
    .unwrap();
    let client = client(&env_for("dev"));
    assert_eq!(signer_of_next_call(&client, &ecs).await, "ASIASSO");
    let asked = &portal.requests()[0];
    assert_eq!(asked.method, "GET");
    assert_eq!(
        asked.target,
        "/federation/credentials?role_name=ReadOnly&account_id=111122223333"
    );
    let credentials = client.current_credentials().await.unwrap();
    assert_eq!(credentials.expires_at, Some(expires_ms as f64 / 1000.0));

    // The legacy form hashes the start URL; an expired token asks for a new login.
    std::fs::write(
        cache.join(format!(
            "{}.json",
            sha1_hex("https://old.awsapps.com/start")
        )),
        token(&rfc3339_in(-60)),
    )
    .unwrap();
    let error = self::client(&env_for("legacy"))
        .current_credentials()
        .await
        .expect_err("expired");
    let text = aws_api::error_chain(&error);
    assert!(
        text.contains("expired") && text.contains("aws sso login --profile legacy"),
        "{text}"
    );
    assert_eq!(portal.requests().len(), 1);
    let _ = std::fs::remove_dir_all(&home);
}

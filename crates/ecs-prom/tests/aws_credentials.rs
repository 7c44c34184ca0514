//! `ecs-prom discovery` and its AWS credentials, run as a user runs it: a container
//! credentials URL the AWS SDKs would refuse stops it at start, a loopback one is used, and
//! `--aws.role-arn` (or its variable) assumes a role whose credentials sign the ECS calls.

// Tests fail on any unexpected error.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_ecs-prom");

/// One request the stand-in received: request line, lower-case headers, body.
#[derive(Debug, Clone)]
struct Recorded {
    request_line: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn signed_by(&self) -> Option<&str> {
        let credential = self.header("authorization")?.split("Credential=").nth(1)?;
        credential.split('/').next()
    }
}

/// A loopback stand-in for the container credentials endpoint, STS and ECS at once.
fn stand_in() -> (String, Arc<Mutex<Vec<Recorded>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let log = recorded.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let log = log.clone();
            std::thread::spawn(move || answer(stream, &log));
        }
    });
    (url, recorded)
}

fn answer(stream: TcpStream, log: &Mutex<Vec<Recorded>>) {
    let Some(received) = test_support::read_http_request(&stream) else {
        return;
    };
    let recorded = Recorded {
        request_line: format!("{} {} HTTP/1.1", received.method, received.target),
        headers: received.headers,
        body: String::from_utf8_lossy(&received.body).into_owned(),
    };
    log.lock().unwrap().push(recorded.clone());
    let body = if recorded.request_line.starts_with("GET /creds") {
        r#"{"AccessKeyId":"ASIACONTAINER","SecretAccessKey":"s","Token":"container-token","Expiration":"2099-01-01T00:00:00Z"}"#.to_owned()
    } else if recorded.body.contains("Action=AssumeRole") {
        "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>ASIAASSUMED</AccessKeyId>\
         <SecretAccessKey>s</SecretAccessKey><SessionToken>assumed-token</SessionToken>\
         <Expiration>2099-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleResult></AssumeRoleResponse>"
            .to_owned()
    } else {
        r#"{"taskArns":[]}"#.to_owned()
    };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// `ecs-prom discovery --ecs.cluster prod --once` with only `env` set.
fn discovery_once(env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(["discovery", "--ecs.cluster", "prod", "--once"])
        .args(args)
        .env_clear()
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_container_credentials_url_the_sdks_refuse_stops_discovery_at_start() {
    let started = Instant::now();
    let output = discovery_once(
        &[
            (
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://192.0.2.10/creds",
            ),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "secret-token-value"),
        ],
        &[],
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            && stderr.contains("http://192.0.2.10/creds")
            && stderr.contains("https")
            && stderr.contains("loopback")
            && stderr.contains("169.254.170.2"),
        "{stderr}"
    );
    assert!(!stderr.contains("secret-token-value"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Nothing was asked: a request to that address would wait for its 2 s deadline.
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(text(&output.stdout).is_empty());
}

#[test]
fn a_loopback_container_credentials_endpoint_is_used() {
    let (url, recorded) = stand_in();
    let full_uri = format!("{url}/creds");
    let output = discovery_once(
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "tok-123"),
            ("AWS_ENDPOINT_URL", &url),
        ],
        &[],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let recorded = recorded.lock().unwrap().clone();
    let asked = recorded
        .iter()
        .find(|r| r.request_line.starts_with("GET /creds"))
        .expect("the endpoint was asked");
    assert_eq!(asked.header("authorization"), Some("tok-123"));
    let list_tasks = recorded
        .iter()
        .find(|r| r.header("x-amz-target") == Some("AmazonEC2ContainerServiceV20141113.ListTasks"))
        .expect("ListTasks was called");
    assert_eq!(list_tasks.signed_by(), Some("ASIACONTAINER"));
    assert_eq!(
        list_tasks.header("x-amz-security-token"),
        Some("container-token")
    );
}

#[test]
fn the_role_flags_assume_a_role_that_signs_the_ecs_calls() {
    let (url, recorded) = stand_in();
    let output = discovery_once(
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDBASE"),
            ("AWS_SECRET_ACCESS_KEY", "base-secret"),
            ("AWS_ENDPOINT_URL", &url),
            (
                "ECS_PROM_DISCOVERY_AWS_ROLE_ARN",
                "arn:aws:iam::123456789012:role/discovery",
            ),
        ],
        &[
            "--aws.external-id",
            "ext-7",
            "--aws.role-session-name",
            "prom-sd",
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let recorded = recorded.lock().unwrap().clone();
    let assume = recorded
        .iter()
        .find(|r| r.body.contains("Action=AssumeRole"))
        .expect("AssumeRole was called");
    assert_eq!(assume.signed_by(), Some("AKIDBASE"));
    for field in [
        "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdiscovery",
        "ExternalId=ext-7",
        "RoleSessionName=prom-sd",
        "Version=2011-06-15",
    ] {
        assert!(assume.body.contains(field), "{field} in {}", assume.body);
    }
    let list_tasks = recorded
        .iter()
        .find(|r| r.header("x-amz-target") == Some("AmazonEC2ContainerServiceV20141113.ListTasks"))
        .expect("ListTasks was called");
    assert_eq!(list_tasks.signed_by(), Some("ASIAASSUMED"));

    // The other role flags mean nothing without a role.
    let output = discovery_once(&[], &["--aws.external-id", "ext-7"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--aws.role-arn"));
}

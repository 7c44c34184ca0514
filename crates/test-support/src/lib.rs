//! Helpers shared by the integration tests of every crate: a minimal HTTP GET against a
//! server on loopback, `promtool check metrics` on an exposition body, and the signals ECS
//! and a terminal send (without depending on a `kill` command being installed), a free loopback
//! port, a child process killed when the test ends, a request read by a stand-in server, and
//! `moto_server`.

// Test helpers fail the test on any unexpected error.
#![allow(clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A minimal HTTP/1.1 GET of `http://host:port/path` over a fresh connection, read to the end
/// of the response: the status code and the body (chunked bodies decoded).
pub async fn http_get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut socket = TcpStream::connect(host).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.expect("send");
    let mut response = Vec::new();
    socket.read_to_end(&mut response).await.expect("read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete header");
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let body = &response[split + 4..];
    let body = if head.contains("\r\ntransfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_vec()
    };
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Decodes a chunked HTTP/1.1 body (Go servers such as Prometheus send larger answers so).
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).expect("a hexadecimal chunk size");
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
}

/// Runs `promtool check metrics` on `body`: `Err` with what promtool said when it fails or
/// prints anything at all (a lint warning counts).
pub fn promtool_check_metrics(body: &[u8]) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian package prometheus; ./scripts/test installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(body)
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool ran");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(said)
    }
}

/// Sends SIGTERM to the process `pid`, as ECS and `kill` do.
#[cfg(unix)]
pub fn sigterm(pid: u32) {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .expect("a process id");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM sent");
}

/// Sends SIGINT to every process of the process group `pgid`, as Ctrl-C in a terminal does.
#[cfg(unix)]
pub fn interrupt_group(pgid: u32) {
    let pgid = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .expect("a process group id");
    rustix::process::kill_process_group(pgid, rustix::process::Signal::INT).expect("SIGINT sent");
}

/// A `moto_server` (PyPI `moto[server]`) on a free loopback port, standing in for the AWS
/// APIs; stopped when dropped. `./scripts/test` installs it into a virtualenv and puts that
/// first on `PATH`, so `python3` there also has `boto3` for setting up test data.
pub struct MotoServer {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl MotoServer {
    /// Starts moto and waits until it answers. The port is free when chosen, but another test
    /// may take it before moto binds it: then moto exits, and it is started again on another
    /// port, up to five times.
    pub fn start() -> MotoServer {
        for _ in 0..5 {
            if let Some(server) = MotoServer::try_start() {
                return server;
            }
        }
        panic!("moto_server did not start on any of five free ports");
    }

    fn try_start() -> Option<MotoServer> {
        use std::io::{Read, Write};
        let port = free_port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server is installed (PyPI moto[server]; ./scripts/test installs it)");
        let mut server = MotoServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            // Gone: the port was taken by someone else (Drop reaps it).
            if !matches!(server.child.try_wait(), Ok(None)) {
                return None;
            }
            // Moto's own API answers, not whatever else might listen there.
            let answered = std::net::TcpStream::connect(("127.0.0.1", port))
                .and_then(|mut stream| {
                    stream.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
                    stream.write_all(b"GET /moto-api/data.json HTTP/1.0\r\n\r\n")?;
                    let mut head = [0u8; 12];
                    stream.read_exact(&mut head)?;
                    Ok(head.starts_with(b"HTTP/1.") && &head[9..12] == b"200")
                })
                .unwrap_or(false);
            if answered {
                return Some(server);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "moto_server did not start within 60s"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Runs the Python script `script` (with `boto3`) with `MOTO_URL` set to this server and
    /// returns what it printed to standard output; fails the test if the script fails.
    pub fn run_python(&self, script: &std::path::Path, args: &[&str]) -> String {
        let output = Command::new("python3")
            .arg(script)
            .args(args)
            .env("MOTO_URL", &self.url)
            .output()
            .expect("python3 runs");
        assert!(
            output.status.success(),
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The environment a client needs to reach this server with dummy credentials.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port on 127.0.0.1 (free when asked; a test binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A child process (a Prometheus, a receiver) killed and reaped when the test ends, passed or
/// failed.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request as a stand-in server received it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes).
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one request from `stream`; `None` when the client closed or sent something else.
pub fn read_http_request(stream: &std::net::TcpStream) -> Option<HttpRequest> {
    use std::io::{BufRead, Read};
    let mut reader = std::io::BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).ok()? == 0 {
        return None;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .map_or(Some(0), |(_, v)| v.parse().ok())?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(HttpRequest {
        method,
        target,
        headers,
        body,
    })
}

/// What botocore's SigV4Auth, an implementation independent of ecs-prom's, computes for
/// `request` (the headers its Authorization header names, its own `x-amz-date`) signed with
/// these credentials for `region` and `service`. Needs python3 with botocore (`scripts/test`
/// installs it with moto into its venv).
pub fn botocore_signature(
    request: &HttpRequest,
    access_key: &str,
    secret_key: &str,
    session_token: Option<&str>,
    region: &str,
    service: &str,
) -> String {
    use std::io::Write as _;
    let header = |name: &str| {
        request
            .header(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_owned()
    };
    let authorization = header("authorization");
    let signed: Vec<(String, String)> = authorization
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .expect("SignedHeaders")
        .split(';')
        .map(|name| (name.to_owned(), header(name)))
        .collect();
    let input = serde_json::json!({
        "method": request.method,
        "url": format!("http://{}{}", header("host"), request.target),
        "headers": signed,
        "body_hex": request.body.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "access_key": access_key,
        "secret_key": secret_key,
        "token": session_token,
        "region": region,
        "service": service,
        "amz_date": header("x-amz-date"),
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/botocore_signature.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with botocore (./scripts/test installs it with moto)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.to_string().as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("botocore ran");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

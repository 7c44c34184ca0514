//! How every ecs-prom server holds up against slow, silent and piled-up clients, on the real
//! binary: a client that sends half a header, one byte a second or nothing is cut off at
//! `--web.read-timeout`; an idle keep-alive connection at `--web.idle-timeout`; and 1,100 idle
//! connections under a 1,024 file descriptor limit do not keep a scrape out, with the EMFILE
//! logged once.

// Test helpers fail the test on any unexpected error.
#![allow(clippy::expect_used)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_ecs-prom");

/// A running component and everything it logged so far.
struct Server {
    child: Child,
    address: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `ecs-prom <args>` on a loopback port with JSON logs; with `fd_limit`, under that
    /// open-file limit (`ulimit -n`).
    fn start(args: &[&str], env: &[(&str, &str)], fd_limit: Option<u32>) -> Server {
        let mut command = match fd_limit {
            Some(limit) => {
                let mut shell = Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                    .arg(BINARY);
                shell
            }
            None => Command::new(BINARY),
        };
        command
            .args(args)
            .args([
                "--web.listen-address",
                "127.0.0.1:0",
                "--log.format",
                "json",
            ])
            .env_clear()
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("starts");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (listening, address) = mpsc::channel();
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening") {
                    let _ = listening.send(line.clone());
                }
                lines.lock().expect("log").push(line);
            }
        });
        let line = address
            .recv_timeout(Duration::from_secs(20))
            .expect("a listening log line");
        let address = line
            .split("\"address\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(|address| address.trim_start_matches("http://"))
            .and_then(|address| address.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line}"));
        Server {
            child,
            address,
            log,
        }
    }

    fn logged(&self, needle: &str) -> Vec<String> {
        self.log
            .lock()
            .expect("log")
            .iter()
            .filter(|line| line.contains(needle))
            .cloned()
            .collect()
    }

    fn connect(&self) -> TcpStream {
        TcpStream::connect(self.address).expect("connects")
    }
}

/// `ecs-prom simulate` and the metadata URI of its first task.
fn simulator() -> (Server, String) {
    let server = Server::start(&["simulate", "--tasks", "1"], &[], None);
    let uri = format!("http://{}/v4/", server.address);
    // Any task id of the simulation works for the exporter's first reading: ask the index.
    let (status, index) = get(server.address, "/");
    assert_eq!(status, 200, "{index}");
    let start = index.find(&uri).expect("a task metadata URI in the index");
    let end = index[start..].find('"').expect("end of the URI") + start;
    (server, index[start..end].to_owned())
}

/// One GET on a fresh connection; the status and body.
fn get(address: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .expect("request sent");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0);
    (status, response)
}

/// Reads one response on a kept-alive connection (headers and a `content-length` body).
fn read_response(stream: &mut TcpStream) -> u16 {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).expect("status line");
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header");
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().expect("length");
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    status_line
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or(0)
}

/// Waits for the server to close `stream` (end of file or reset), up to `limit` after
/// `since`; how long after `since` it did, `None` if it did not.
fn closed_after(stream: &mut TcpStream, since: Instant, limit: Duration) -> Option<Duration> {
    stream
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let mut buffer = [0; 1024];
    while since.elapsed() < limit {
        match stream.read(&mut buffer) {
            Ok(0) => return Some(since.elapsed()),
            Ok(_) => {}
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(since.elapsed()),
        }
    }
    None
}

/// Sends a request one byte a second until the server closes the connection; how long
/// that took.
fn trickle(address: SocketAddr, limit: Duration) -> Option<Duration> {
    let mut stream = TcpStream::connect(address).expect("connects");
    let since = Instant::now();
    let request = format!(
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Slow: {}",
        "a".repeat(200)
    );
    for byte in request.bytes() {
        if stream.write_all(&[byte]).is_err() {
            return Some(since.elapsed());
        }
        let second = Instant::now();
        if let Some(_closed) = closed_after(&mut stream, second, Duration::from_secs(1)) {
            return Some(since.elapsed());
        }
        if since.elapsed() > limit {
            return None;
        }
    }
    None
}

/// The three ways a slow client holds a connection, against one server started with
/// `--web.read-timeout=2s`: each is closed 2s after it connected, give or take scheduling.
fn assert_slow_clients_are_cut_off(server: &Server, name: &str, healthy: &str) {
    let limit = Duration::from_secs(8);
    let silent = {
        let mut stream = server.connect();
        let since = Instant::now();
        std::thread::spawn(move || closed_after(&mut stream, since, limit))
    };
    let half_header = {
        let mut stream = server.connect();
        let since = Instant::now();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: loc")
            .expect("half a header");
        std::thread::spawn(move || closed_after(&mut stream, since, limit))
    };
    let address = server.address;
    let one_byte_a_second = std::thread::spawn(move || trickle(address, limit));
    for (kind, handle) in [
        ("a silent client", silent),
        ("half a header", half_header),
        ("one byte a second", one_byte_a_second),
    ] {
        let took = handle
            .join()
            .expect("thread")
            .unwrap_or_else(|| panic!("{name}: {kind} was still connected after {limit:?}"));
        eprintln!("{name}: {kind} closed after {took:?}");
        assert!(
            took >= Duration::from_millis(1900) && took <= Duration::from_millis(3500),
            "{name}: {kind} closed after {took:?}, expected about 2s"
        );
    }
    // A body sent one byte a second: no ecs-prom handler reads a body, and a connection whose
    // body was left unread closes after its response, at once.
    let mut slow_body = server.connect();
    let since = Instant::now();
    slow_body
        .write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\na")
        .expect("headers and a byte");
    let took = closed_after(&mut slow_body, since, limit)
        .unwrap_or_else(|| panic!("{name}: a slow body was still connected after {limit:?}"));
    eprintln!("{name}: a slow body closed after {took:?}");
    assert!(
        took < Duration::from_secs(3),
        "{name}: a slow body: {took:?}"
    );
    // The server still answers.
    assert_eq!(get(server.address, healthy).0, 200, "{name}");
}

#[test]
fn slow_and_silent_clients_are_cut_off_at_the_read_timeout_on_every_server() {
    let timeouts = ["--web.read-timeout", "2s", "--web.idle-timeout", "30s"];
    let exporter = Server::start(
        &[&["exporter"][..], &timeouts[..]].concat(),
        &[(
            "ECS_CONTAINER_METADATA_URI_V4",
            "http://127.0.0.1:9/v4/unused",
        )],
        None,
    );
    let demo_app = Server::start(
        &[&["demo-app", "--load.rps", "0"][..], &timeouts[..]].concat(),
        &[],
        None,
    );
    let simulate = Server::start(&[&["simulate"][..], &timeouts[..]].concat(), &[], None);
    // Discovery serves while its AWS calls fail (here against a closed loopback port).
    let discovery = Server::start(
        &[
            &[
                "discovery",
                "--ecs.cluster",
                "c",
                "--aws.region",
                "us-east-1",
            ][..],
            &timeouts[..],
        ]
        .concat(),
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ],
        None,
    );
    // One after the other in threads of their own: the whole test takes about one timeout.
    std::thread::scope(|scope| {
        for (server, name) in [
            (&exporter, "exporter"),
            (&demo_app, "demo-app"),
            (&simulate, "simulate"),
            (&discovery, "discovery"),
        ] {
            scope.spawn(move || {
                let healthy = match name {
                    "simulate" => "/",
                    "discovery" => "/-/healthy",
                    _ => "/health",
                };
                assert_eq!(get(server.address, healthy).0, 200, "{name}");
                assert_slow_clients_are_cut_off(server, name, healthy);
            });
        }
    });
}

#[test]
fn a_kept_alive_connection_is_closed_after_the_idle_timeout_not_the_read_timeout() {
    let exporter = Server::start(
        &[
            "exporter",
            "--web.read-timeout",
            "1s",
            "--web.idle-timeout",
            "3s",
        ],
        &[(
            "ECS_CONTAINER_METADATA_URI_V4",
            "http://127.0.0.1:9/v4/unused",
        )],
        None,
    );
    let request = b"GET /-/healthy HTTP/1.1\r\nHost: localhost\r\n\r\n";

    // Idle after a response: closed at the idle timeout.
    let mut stream = exporter.connect();
    stream.write_all(request).expect("request");
    assert_eq!(read_response(&mut stream), 200);
    // Within the idle timeout (and past the read timeout), the connection serves again.
    std::thread::sleep(Duration::from_millis(2000));
    stream.write_all(request).expect("second request");
    assert_eq!(read_response(&mut stream), 200);
    let idle = Instant::now();
    let took = closed_after(&mut stream, idle, Duration::from_secs(8)).expect("closed");
    eprintln!("an idle kept-alive connection closed after {took:?}");
    assert!(
        took >= Duration::from_millis(2900) && took <= Duration::from_millis(4500),
        "closed {took:?} after its last response, expected about 3s"
    );

    // After a response, the first byte of the next request starts the read timeout.
    let mut stream = exporter.connect();
    stream.write_all(request).expect("request");
    assert_eq!(read_response(&mut stream), 200);
    stream.write_all(b"GET /-/hea").expect("half a request");
    let since = Instant::now();
    let took = closed_after(&mut stream, since, Duration::from_secs(8)).expect("closed");
    eprintln!("half a second request closed after {took:?}");
    assert!(
        took >= Duration::from_millis(900) && took <= Duration::from_millis(2500),
        "closed {took:?} after half a request, expected about 1s"
    );
}

/// Opens `count` connections to `address` and keeps them open until dropped. The test
/// process needs descriptors for them: its soft limit is raised towards the hard limit.
fn idle_connections(address: SocketAddr, count: usize) -> Vec<TcpStream> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let wanted = count as u64 + 256;
    if limit.current.is_some_and(|current| current < wanted) {
        let raised = rustix::process::Rlimit {
            current: Some(limit.maximum.map_or(wanted, |maximum| maximum.min(wanted))),
            maximum: limit.maximum,
        };
        setrlimit(Resource::Nofile, raised).expect("raising the test's open file limit");
    }
    (0..count)
        .map(|_| TcpStream::connect(address).expect("an idle connection"))
        .collect()
}

/// Starts the exporter under `ulimit -n 1024` with `args`, opens 1,100 idle connections,
/// then scrapes; returns the exporter and how long the scrape took.
fn scrape_past_1100_idle_connections(args: &[&str]) -> (Server, Duration) {
    let (_simulator, metadata_uri) = simulator();
    let exporter = Server::start(
        &[&["exporter"][..], args].concat(),
        &[("ECS_CONTAINER_METADATA_URI_V4", &metadata_uri)],
        Some(1024),
    );
    assert_eq!(get(exporter.address, "/metrics").0, 200, "before");
    let started = Instant::now();
    let idle = idle_connections(exporter.address, 1100);
    eprintln!(
        "opened {} idle connections in {:?}",
        idle.len(),
        started.elapsed()
    );
    let started = Instant::now();
    let (status, body) = get(exporter.address, "/metrics");
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ecs_exporter_collector_success"), "{body}");
    // A second scrape right after works as well.
    assert_eq!(get(exporter.address, "/metrics").0, 200, "after");
    drop(idle);
    (exporter, took)
}

#[test]
fn idle_connections_beyond_the_cap_do_not_lock_out_a_scrape() {
    let (exporter, took) = scrape_past_1100_idle_connections(&[]);
    eprintln!("/metrics with 1,100 idle connections (cap 512) answered in {took:?}");
    assert!(took < Duration::from_secs(3), "the scrape took {took:?}");
    assert!(
        exporter.logged("out of file descriptors").is_empty(),
        "the cap of 512 stays below the limit of 1,024"
    );
}

#[test]
fn running_out_of_file_descriptors_does_not_lock_out_a_scrape_and_is_logged_once() {
    let (exporter, took) = scrape_past_1100_idle_connections(&["--web.max-connections", "100000"]);
    eprintln!("/metrics with 1,100 idle connections (EMFILE) answered in {took:?}");
    assert!(took < Duration::from_secs(3), "the scrape took {took:?}");
    // The log thread may still be reading.
    std::thread::sleep(Duration::from_millis(200));
    let logged = exporter.logged("out of file descriptors");
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert!(
        logged[0].contains("Too many open files"),
        "the error itself: {}",
        logged[0]
    );
}

#[test]
fn the_web_configuration_file_is_read_at_start_and_applies_to_every_path() {
    let dir = std::env::temp_dir().join(format!("ecs-prom-serving-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("directory");
    let file = dir.join("web.yml");
    std::fs::write(
        &file,
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
    )
    .expect("web.yml");
    let exporter = Server::start(
        &[
            "exporter",
            "--web.config.file",
            file.to_str().expect("path"),
        ],
        &[(
            "ECS_CONTAINER_METADATA_URI_V4",
            "http://127.0.0.1:9/v4/unused",
        )],
        None,
    );
    for path in ["/-/healthy", "/metrics", "/nowhere"] {
        let (_, answer) = get(exporter.address, path);
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("x-frame-options: deny"),
            "{path}: {answer}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);

    // A file that cannot be used stops every component at start, named with its flag, whether
    // given as a flag or through the component's environment variable.
    for (component, variable) in [
        ("exporter", "ECS_PROM_WEB_CONFIG_FILE"),
        ("discovery", "ECS_PROM_DISCOVERY_WEB_CONFIG_FILE"),
        ("simulate", "ECS_PROM_SIMULATE_WEB_CONFIG_FILE"),
        ("demo-app", "ECS_PROM_DEMO_APP_WEB_CONFIG_FILE"),
    ] {
        let output = Command::new(BINARY)
            .arg(component)
            .env_clear()
            .env(variable, "/nonexistent/web.yml")
            .env(
                "ECS_CONTAINER_METADATA_URI_V4",
                "http://127.0.0.1:9/v4/unused",
            )
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{component}: {stderr}");
        assert!(
            stderr.contains("--web.config.file") && stderr.contains("/nonexistent/web.yml"),
            "{component}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{component}: {stderr}");
    }
}

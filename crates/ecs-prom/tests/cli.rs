//! The `ecs-prom` binary as a user runs it: help and version without an ECS environment,
//! clear errors instead of panics, a clean stop on SIGTERM, and docs that document
//! every flag.

// Test helpers fail the test on any unexpected error.
#![allow(clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_ecs-prom");

/// Runs the binary with a clean environment (no ECS variables) and the given arguments.
fn run(args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(args)
        .env_clear()
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_and_version_work_outside_ecs() {
    let help = run(&["exporter", "--help"]);
    assert!(help.status.success());
    let help = text(&help.stdout);
    for needle in [
        "--web.listen-address",
        "ECS_PROM_WEB_LISTEN_ADDRESS",
        "--ecs.metadata-uri",
        "[default: :9779]",
    ] {
        assert!(help.contains(needle), "help lacks {needle}:\n{help}");
    }
    let version = run(&["--version"]);
    assert!(version.status.success());
    assert_eq!(
        text(&version.stdout).trim(),
        format!("ecs-prom {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_missing_metadata_endpoint_is_a_clear_error() {
    let output = run(&["exporter"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("ECS_CONTAINER_METADATA_URI_V4 is not set"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_agents_task_mode_says_what_it_lacks() {
    let url = "--remote-write.url=http://127.0.0.1:9/api/v1/write";
    let meta = "--ecs.metadata-url=http://127.0.0.1:9/v4/x";
    let cases: [(&[&str], &str); 5] = [
        (
            &["agent", "--ecs.task", meta],
            "--ecs.task needs --remote-write.url",
        ),
        (
            &["agent", "--ecs.task", url],
            "ECS_CONTAINER_METADATA_URI_V4 is not set and --ecs.metadata-url is not given",
        ),
        (
            &["agent", "--ecs.task", url, meta, "--config.file=x.yml"],
            "--ecs.task makes its own configuration: remove --config.file x.yml",
        ),
        (&["agent", url], "--remote-write.url goes with --ecs.task"),
        (
            &["agent", "--ecs.task", "--remote-write.url=ftp://x", meta],
            "--remote-write.url ftp://x",
        ),
    ];
    for (args, expected) in cases {
        let output = run(args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // Boolean flags with a default of true can be turned off on the command line.
    let help = text(
        &run(&[
            "agent",
            "--storage.fsync=false",
            "--ecs.task-metrics",
            "false",
            "--help",
        ])
        .stdout,
    );
    assert!(help.contains("--storage.fsync"), "{help}");
}

#[test]
fn bad_flag_values_are_clear_errors() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["exporter", "--ecs.metadata-uri", "https://169.254.170.2/v4"],
            "only http:// is supported",
        ),
        (
            &[
                "exporter",
                "--ecs.metadata-uri",
                "http://x",
                "--ecs.timeout",
                "soon",
            ],
            "invalid duration",
        ),
        (
            &[
                "exporter",
                "--ecs.metadata-uri",
                "http://x",
                "--ecs.scope",
                "cluster",
            ],
            "invalid value 'cluster'",
        ),
        (
            &[
                "exporter",
                "--ecs.metadata-uri",
                "http://x",
                "--web.listen-address",
                "nowhere:port",
            ],
            "listening on nowhere:port",
        ),
    ];
    for (args, expected) in cases {
        let output = run(args);
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn boolean_environment_variables_accept_the_usual_spellings() {
    for (value, accepted) in [
        ("true", true),
        ("1", true),
        ("yes", true),
        ("false", true),
        ("0", true),
        ("maybe", false),
    ] {
        let mut child = Command::new(BINARY)
            .args([
                "exporter",
                "--web.listen-address",
                "127.0.0.1:0",
                "--ecs.metadata-uri",
                "http://127.0.0.1:9/v4",
            ])
            .env_clear()
            .env("ECS_PROM_WEB_DISABLE_EXPORTER_METRICS", value)
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts");
        let mut first_line = String::new();
        BufReader::new(child.stderr.take().expect("stderr"))
            .read_line(&mut first_line)
            .expect("output");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            first_line.contains("listening"),
            accepted,
            "{value}: {first_line}"
        );
    }
}

#[test]
fn the_exporter_serves_and_stops_cleanly_on_sigterm() {
    let mut child = Command::new(BINARY)
        .args([
            "exporter",
            "--web.listen-address",
            "127.0.0.1:0",
            "--log.format",
            "json",
        ])
        .env_clear()
        .env(
            "ECS_CONTAINER_METADATA_URI_V4",
            "http://127.0.0.1:9/v4/unused",
        )
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    stderr.read_line(&mut line).expect("a log line");
    assert!(
        line.contains("\"address\":\"127.0.0.1:"),
        "first log line: {line}"
    );

    let stopped = Instant::now();
    test_support::sigterm(child.id());
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "did not stop within 5s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
}

#[test]
fn the_docs_document_every_flag_of_every_component() {
    let read = |name: &str| {
        let path = format!("{}/../../docs/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).expect("a component reference")
    };
    // Flags every server shares (--web.*) are explained in web.md, the logging flags every
    // component takes in the README.
    let shared = read("web.md");
    let readme = read("../README.md");
    let mut missing = Vec::new();
    for (component, doc) in [
        ("exporter", "exporter.md"),
        ("simulate", "demo.md"),
        ("demo-app", "demo.md"),
        ("demo", "demo.md"),
        ("discovery", "discovery.md"),
        ("health", "exporter.md"),
        ("agent", "agent.md"),
    ] {
        let reference = read(doc);
        let help = text(&run(&[component, "--help"]).stdout);
        let flags: Vec<&str> = help
            .split_whitespace()
            .filter(|word| word.starts_with("--") && word.len() > 2)
            .map(|word| word.trim_end_matches([',', '.', ';', ':', ')']))
            .collect();
        assert!(flags.len() >= 4, "{component}: {flags:?}");
        for flag in flags {
            let documented = |text: &str| text.contains(&format!("`{flag}"));
            let common = flag.starts_with("--log.") || flag == "--help" || flag == "--version";
            let elsewhere = (flag.starts_with("--web.") && documented(&shared))
                || (common && documented(&readme));
            if !documented(&reference) && !elsewhere {
                missing.push(format!("docs/{doc}: {component} {flag}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "undocumented flags:\n{}",
        missing.join("\n")
    );
}

/// A loopback HTTP server that answers every connection with `response`, after `delay`.
fn answering(response: &'static str, delay: Duration) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    let address = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                std::thread::sleep(delay);
                let _ = stream.write_all(response.as_bytes());
            });
        }
    });
    format!("http://{address}")
}

#[test]
fn health_exits_0_only_on_a_2xx_answer_in_time() {
    let ok = answering(
        "HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n",
        Duration::ZERO,
    );
    let output = run(&["health", "--url", &format!("{ok}/-/healthy")]);
    assert!(output.status.success(), "{}", text(&output.stderr));

    let failing = answering(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot yet\r\n",
        Duration::ZERO,
    );
    let output = run(&["health", "--url", &format!("{failing}/-/ready")]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("unhealthy") && stderr.contains("503"),
        "{stderr}"
    );

    let slow = answering(
        "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        Duration::from_secs(10),
    );
    let started = Instant::now();
    let output = run(&["health", "--url", &slow, "--timeout", "500ms"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        text(&output.stderr).contains("within"),
        "{}",
        text(&output.stderr)
    );

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        listener.local_addr().expect("address")
    };
    let output = run(&["health", "--url", &format!("http://{closed}/-/healthy")]);
    assert_eq!(output.status.code(), Some(1));

    let output = run(&["health", "--url", "ftp://example.com/"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("only http://"),
        "{}",
        text(&output.stderr)
    );
}

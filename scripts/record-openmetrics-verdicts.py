#!/usr/bin/env python3
"""Record a real Prometheus' verdict on every OpenMetrics parser conformance case.

Usage: scripts/record-openmetrics-verdicts.py [--prometheus /usr/bin/prometheus]
           [--out fixtures/openmetrics-parsers/prometheus-2.42-verdicts.json]

Serves each case of fixtures/openmetrics-parsers/<case>/metrics on loopback at /<case> with
`Content-Type: application/openmetrics-text; version=1.0.0`, starts Prometheus with one target
per case (a scrape every 2 s, in a temporary directory), waits until every target has been
scraped twice, and writes, per case, whether the scrape succeeded (`health` "up") and
Prometheus' `lastError`. Takes about a minute. Standard library only.
"""
import argparse
import http.server
import json
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
CASES = ROOT / "fixtures" / "openmetrics-parsers"
CONTENT_TYPE = "application/openmetrics-text; version=1.0.0"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(cases, content_type):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = cases.get(self.path.lstrip("/"))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def prometheus_version(binary):
    out = subprocess.run([binary, "--version"], capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0].strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", default="/usr/bin/prometheus")
    parser.add_argument(
        "--out", default=str(CASES / "prometheus-2.42-verdicts.json")
    )
    parser.add_argument("--cases", default=str(CASES), help="folder of <case>/metrics files")
    parser.add_argument("--content-type", default=CONTENT_TYPE)
    args = parser.parse_args()

    cases = {
        d.name: (d / "metrics").read_bytes()
        for d in sorted(pathlib.Path(args.cases).iterdir())
        if (d / "metrics").is_file()
    }
    server = serve(cases, args.content_type)
    target = f"127.0.0.1:{server.server_address[1]}"
    web_port = free_port()

    with tempfile.TemporaryDirectory() as tmp:
        groups = [
            {"targets": [target], "labels": {"__metrics_path__": f"/{name}", "case": name}}
            for name in cases
        ]
        config = {
            "global": {"scrape_interval": "2s", "scrape_timeout": "1s"},
            "scrape_configs": [{"job_name": "conformance", "static_configs": groups}],
        }
        # JSON is YAML.
        (pathlib.Path(tmp) / "prometheus.yml").write_text(json.dumps(config))
        proc = subprocess.Popen(
            [
                args.prometheus,
                f"--config.file={tmp}/prometheus.yml",
                f"--storage.tsdb.path={tmp}/data",
                f"--web.listen-address=127.0.0.1:{web_port}",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            verdicts = collect(web_port, len(cases))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    server.shutdown()

    document = {
        "prometheus": prometheus_version(args.prometheus),
        "content_type": args.content_type,
        "cases": {name: verdicts[name] for name in sorted(verdicts)},
    }
    pathlib.Path(args.out).write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    accepted = sum(v["accepted"] for v in verdicts.values())
    print(f"{len(verdicts)} cases: {accepted} accepted, {len(verdicts) - accepted} rejected -> {args.out}")


def collect(web_port, expected):
    """Polls /api/v1/targets until every target has been scraped twice with the same verdict."""
    url = f"http://127.0.0.1:{web_port}/api/v1/targets?state=active"
    first = {}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        time.sleep(1)
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                targets = json.load(response)["data"]["activeTargets"]
        except OSError:
            continue
        seen = {}
        for t in targets:
            if t["health"] == "unknown":
                continue
            seen[t["labels"]["case"]] = (t["lastScrape"], t["health"] == "up", t["lastError"])
        if len(seen) < expected:
            continue
        if not first:
            first = seen
            continue
        # Done when every target has a newer scrape than in the first complete round.
        if all(seen[c][0] != first[c][0] for c in seen):
            for c in seen:
                # Only the verdict must be stable: 2.42 builds some error texts from its
                # reused read buffer, so their wording can differ between scrapes.
                if seen[c][1] != first[c][1]:
                    sys.exit(f"{c}: verdict changed between scrapes: {first[c]} vs {seen[c]}")
            return {c: {"accepted": v[1], "error": v[2]} for c, v in seen.items()}
    sys.exit("timed out waiting for Prometheus to scrape every case twice")


if __name__ == "__main__":
    main()

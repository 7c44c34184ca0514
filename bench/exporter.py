#!/usr/bin/env python3
"""Benchmark: CPU time per scrape and resident memory of `ecs-prom exporter`, side by side with
node_exporter (Debian's prometheus-node-exporter) run with every collector disabled, which is
the floor of a Go exporter: its HTTP server, Go runtime and self-metrics, and nothing else.

Each exporter is scraped N times over one keep-alive connection, one scrape at a time, like
Prometheus does. CPU time comes from /proc/<pid>/stat (utime + stime), resident memory from
/proc/<pid>/status (VmRSS) after the last scrape. ecs-prom reads a captured 3-container task
from scripts/serve-fixtures.py on every scrape (two HTTP requests and two JSON documents);
node_exporter reads nothing.

Usage: bench/exporter.py [--scrapes 10000]      (needs: cargo, prometheus-node-exporter)
"""
import argparse
import http.client
import os
import pathlib
import socket
import subprocess
import sys
import time

from processes import cpu_seconds, free_port, wait_for

ROOT = pathlib.Path(__file__).resolve().parent.parent


def rss_mib(pid):
    """(resident, anonymous resident) MiB: VmRSS and RssAnon of /proc/<pid>/status. The rest of
    VmRSS is file-backed: the executable's and libraries' pages, shared and reclaimable."""
    fields = dict(line.split(":", 1) for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    kib = lambda key: int(fields.get(key, "0 kB").split()[0]) / 1024
    return kib("VmRSS"), kib("RssAnon")


# The request headers Prometheus 2.x sends with every scrape.
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
              "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
    "User-Agent": "Prometheus/2.42.0",
}


def measure(name, pid, port, scrapes, headers):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    sizes = set()

    def scrape():
        connection.request("GET", "/metrics", headers=headers)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"{name}: HTTP {response.status}: {body[:200]!r}")
        sizes.add(len(body))

    for _ in range(100):  # warm up
        scrape()
    (user_before, system_before), wall_before = cpu_seconds(pid), time.monotonic()
    for _ in range(scrapes):
        scrape()
    (user, system), wall = cpu_seconds(pid), time.monotonic() - wall_before
    user, system = user - user_before, system - system_before
    return {
        "name": name,
        "cpu_us": (user + system) / scrapes * 1e6,
        "user_us": user / scrapes * 1e6,
        "system_us": system / scrapes * 1e6,
        "rss": rss_mib(pid)[0],
        "anon": rss_mib(pid)[1],
        "wall_ms": wall / scrapes * 1e3,
        "bytes": max(sizes),
    }


def run(binary, fixture, scrapes):
    """Measures both exporters for one fixture; returns [(request style, [ours, floor])]."""
    node_exporter = "/usr/bin/prometheus-node-exporter"
    processes = []
    try:
        fixture_port, ecs_port, node_port = free_port(), free_port(), free_port()
        processes.append(subprocess.Popen(
            [sys.executable, ROOT / "scripts" / "serve-fixtures.py", "--port", str(fixture_port), "--fixture", fixture],
            stdout=subprocess.DEVNULL))
        wait_for(fixture_port)
        ecs = subprocess.Popen(
            [binary, "exporter", "--web.listen-address", f"127.0.0.1:{ecs_port}",
             "--ecs.metadata-uri", f"http://127.0.0.1:{fixture_port}/v4/{fixture}", "--log.level", "warn"])
        processes.append(ecs)
        node = subprocess.Popen(
            [node_exporter, "--collector.disable-defaults", f"--web.listen-address=127.0.0.1:{node_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(node)
        wait_for(ecs_port)
        wait_for(node_port)
        runs = []
        for style, headers in (("plain GET", {}), ("Prometheus' scrape headers (gzip accepted)", PROMETHEUS_HEADERS)):
            runs.append((style, [
                measure("ecs-prom exporter", ecs.pid, ecs_port, scrapes, headers),
                measure("node_exporter, no collectors (Go floor)", node.pid, node_port, scrapes, headers),
            ]))
        return runs
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scrapes", type=int, default=10_000)
    parser.add_argument("--fixture", action="append", help="3-container fixtures to serve (default: fargate and ec2-bridge)")
    args = parser.parse_args()
    if not os.path.exists("/usr/bin/prometheus-node-exporter"):
        raise SystemExit("install Debian's prometheus-node-exporter first")

    subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "--bin", "ecs-prom"], cwd=ROOT, check=True)
    binary = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "ecs-prom"

    print(f"{args.scrapes} scrapes per row, one at a time over keep-alive. Resident memory is read after each")
    print(f"row's scrapes (the second row of a fixture after {2 * args.scrapes}). Goals: CPU under 0.33x the Go floor,")
    print("memory under 4 MiB.\n")
    print("| fixture | requests | exporter | CPU per scrape (user + system) | resident memory | wall time per scrape | response size | ecs-prom / floor |")
    print("|---|---|---|---|---|---|---|---|")
    for fixture in args.fixture or ["fargate", "ec2-bridge"]:
        for style, (ours, floor) in run(binary, fixture, args.scrapes):
            for row in (ours, floor):
                ratio = (f"CPU {ours['cpu_us'] / floor['cpu_us']:.2f}x, memory {ours['rss'] / floor['rss']:.2f}x"
                         if row is ours else "")
                print(f"| {fixture} | {style} | {row['name']} | {row['cpu_us']:.0f} µs ({row['user_us']:.0f} + "
                      f"{row['system_us']:.0f}) | {row['rss']:.1f} MiB ({row['anon']:.1f} anonymous) | {row['wall_ms']:.2f} ms | {row['bytes']} B | {ratio} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark: what the demo app's instrumentation costs. Two `ecs-prom demo-app` processes run
side by side, one counting and timing every request (the default) and one with
--instrumentation.disable, both with the load generator off. wrk loads each in turn, rounds
interleaved so that drift in the machine hits both alike; the table shows the median round.

Per row: requests per second and p99 latency as wrk measured them, and the application's CPU
time per request (user + system from /proc/<pid>/stat), which is the cost itself. Where
`taskset` exists and there are two or more CPUs, the apps run on CPU 0 and wrk on CPU 1, so
that they do not compete for a core; without pinning the spread between rounds is larger than
the cost being measured.

Usage: bench/demo-app.py [--duration 10] [--rounds 3] [--connections 32]   (needs: cargo, wrk)
"""
import argparse
import os
import pathlib
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

from processes import cpu_seconds, free_port, wait_for

ROOT = pathlib.Path(__file__).resolve().parent.parent
PATHS = ["/health", "/api/data"]


def to_ms(text):
    """wrk's latency figures: 512.00us, 1.23ms, 2.00s."""
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def pinned(cpu):
    """The command prefix that runs a program on one CPU, or nothing where that is not possible."""
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        return ["taskset", "-c", str(cpu)]
    return []


def run_wrk(url, duration, connections):
    """(requests per second, p99 latency in ms, requests completed) of one wrk run."""
    out = subprocess.run(
        [*pinned(1), "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url],
        check=True, capture_output=True, text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    done = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"{url}: {errors.group(1)} failed requests:\n{out}")
    return rps, p99, done


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install wrk")

    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "ecs-prom"], cwd=ROOT, check=True)
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / "release" / "ecs-prom"

    variants = {"on": [], "off": ["--instrumentation.disable"]}
    apps = {}
    try:
        for name, extra in variants.items():
            port = free_port()
            process = subprocess.Popen(
                [*pinned(0), binary, "demo-app", "--web.listen-address", f"127.0.0.1:{port}", "--load.rps", "0",
                 "--log.level", "warn", *extra],
                stdout=subprocess.DEVNULL,
            )
            apps[name] = (port, process)
        for port, _ in apps.values():
            wait_for(port)

        results = {(path, name): [] for path in PATHS for name in variants}
        for round_number in range(args.rounds):
            for path in PATHS:
                for name, (port, process) in apps.items():
                    before = sum(cpu_seconds(process.pid))
                    rps, p99, done = run_wrk(f"http://127.0.0.1:{port}{path}", args.duration, args.connections)
                    cpu_us = (sum(cpu_seconds(process.pid)) - before) / done * 1e6
                    results[(path, name)].append((rps, p99, cpu_us))
                    print(f"round {round_number + 1}: {path} instrumentation {name}: "
                          f"{rps:.0f} req/s, p99 {p99:.2f} ms, {cpu_us:.1f} µs CPU/request", file=sys.stderr)
    finally:
        for _, process in apps.values():
            process.terminate()
            process.wait(timeout=10)

    print("| path | instrumentation | requests/s | p99 latency | app CPU per request | on compared with off, per round |")
    print("|---|---|---|---|---|---|")
    for path in PATHS:
        on, off = results[(path, "on")], results[(path, "off")]
        # Each round runs both variants back to back; comparing within a round cancels the
        # machine's drift between rounds.
        change = lambda i: statistics.median(100 * (a[i] / b[i] - 1) for a, b in zip(on, off))
        spread = lambda i: (min(100 * (a[i] / b[i] - 1) for a, b in zip(on, off)),
                            max(100 * (a[i] / b[i] - 1) for a, b in zip(on, off)))
        for name, rows in (("on", on), ("off", off)):
            rps, p99, cpu_us = (statistics.median(row[i] for row in rows) for i in range(3))
            compared = ""
            if name == "on":
                low, high = spread(2)
                compared = (f"CPU/request {change(2):+.1f}% (rounds {low:+.1f}% to {high:+.1f}%), "
                            f"throughput {change(0):+.1f}%, p99 {change(1):+.1f}%")
            print(f"| {path} | {name} | {rps:,.0f} | {p99:.2f} ms | {cpu_us:.1f} µs | {compared} |")
    placement = "apps on CPU 0, wrk on CPU 1" if pinned(0) else "not pinned"
    print(f"\n{args.rounds} rounds of {args.duration} s per row, wrk -t1 -c{args.connections}, {placement}; "
          "figures are medians over the rounds; the comparison is the median of each round's on/off ratio.")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark: one ECS task's metrics pipeline, `ecs-prom agent --ecs.task` alone against the two
processes it replaces, `ecs-prom exporter` with vmagent beside it, side by side in one run.

The task: an application with about 100 series of Prometheus text (counters, gauges, a
histogram; values change on every scrape), served on loopback by this script, and a task
metadata endpoint serving a real Fargate capture (fixtures/ecs-metadata) in which one running
container carries the docker label PROMETHEUS_EXPORTER_PORT=<the app's port>. Both sides read
identical copies of that endpoint (under /v4/agent and /v4/exporter, so that each side's reads
are counted) and scrape the same app, every 15 s by default.

- A: `ecs-prom agent --ecs.task`: finds the app in the metadata, scrapes it, collects the task's
  ECS metrics in-process and remote-writes both to its own VictoriaMetrics.
- B: `ecs-prom exporter` serving the task's ECS metrics, and vmagent scraping the exporter and
  the app and remote-writing to another VictoriaMetrics.

The measured window is a whole number of scrape cycles that starts half an interval after the
first scrape each side delivered (startup and the first scrape are left out, and the window's
edges fall between scrapes). CPU time per process is read at both ends: user + system from
/proc/<pid>/stat (10 ms ticks), and the time on CPU in nanoseconds summed over the process's
threads from /proc/<pid>/task/*/schedstat, which is what the per-cycle figures use (the ticks
are too coarse for a process that works a millisecond every 15 s). Resident memory (VmRSS,
RssAnon) is read at the window's end. The scrapes in the window are counted from the `up`
samples each receiver holds with timestamps in the window; each receiver is also asked which
series of the app's and of the ECS metrics it holds.

Usage: bench/agent_sidecar.py [--duration 600] [--scrape-interval 15] [--ecs-prom PATH]
(needs: apt-get install -y victoria-metrics; cargo)
"""
import argparse
import http.server
import json
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from agent import find_ecs_prom, get, stop
from processes import cpu_seconds, free_port, wait_for

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "ecs-metadata"
METADATA, STATS = "ecs_exporter-fargate_task_metadata.json", "ecs_exporter-fargate_task_stats.json"
APP_JOB, ECS_JOB = "ecs-task", "ecs-exporter"  # the agent's job names for the two, used for vmagent too
FLUSH_SECONDS = 10  # the agent sends at least every 5 s (batch_send_deadline), vmagent every second
AUTOMATIC = ("up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
             "scrape_series_added", "scrape_timeout_seconds")


class App:
    """About 100 series of an HTTP service's metrics; every scrape moves them on."""

    PATHS = ("/", "/api/items", "/api/orders", "/health")
    BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

    def __init__(self):
        self.lock = threading.Lock()
        self.random = random.Random(42)
        self.requests = {(m, p, c): 0 for m in ("GET", "POST") for p in self.PATHS for c in ("200", "404", "500")}
        self.buckets = {p: [0] * (len(self.BUCKETS) + 1) for p in self.PATHS}
        self.sums = {p: 0.0 for p in self.PATHS}
        self.jobs = {q: 0 for q in ("email", "billing", "export", "index")}
        self.errors = {k: 0 for k in ("timeout", "refused", "invalid")}
        self.scrapes = 0

    def render(self):
        with self.lock:
            self.scrapes += 1
            r = self.random
            for key in self.requests:
                self.requests[key] += r.randrange(0, 50 if key[2] == "200" else 3)
            for path in self.PATHS:
                for _ in range(r.randrange(10, 40)):
                    seconds = r.expovariate(20)
                    self.sums[path] += seconds
                    slot = next((i for i, bound in enumerate(self.BUCKETS) if seconds <= bound), len(self.BUCKETS))
                    self.buckets[path][slot] += 1
            for queue in self.jobs:
                self.jobs[queue] += r.randrange(0, 20)
            for kind in self.errors:
                self.errors[kind] += r.randrange(0, 2)
            out = ["# HELP app_http_requests_total Requests answered.", "# TYPE app_http_requests_total counter"]
            out += [f'app_http_requests_total{{method="{m}",path="{p}",code="{c}"}} {v}'
                    for (m, p, c), v in self.requests.items()]
            out += ["# HELP app_http_request_duration_seconds Time to answer a request.",
                    "# TYPE app_http_request_duration_seconds histogram"]
            for path in self.PATHS:
                cumulative = 0
                for bound, count in zip(self.BUCKETS + ("+Inf",), self.buckets[path]):
                    cumulative += count
                    out.append(f'app_http_request_duration_seconds_bucket{{path="{path}",le="{bound}"}} {cumulative}')
                out.append(f'app_http_request_duration_seconds_sum{{path="{path}"}} {self.sums[path]:.6f}')
                out.append(f'app_http_request_duration_seconds_count{{path="{path}"}} {cumulative}')
            out += ["# HELP app_jobs_processed_total Background jobs done.", "# TYPE app_jobs_processed_total counter"]
            out += [f'app_jobs_processed_total{{queue="{q}"}} {v}' for q, v in self.jobs.items()]
            out += ["# HELP app_upstream_errors_total Failed calls to upstreams.", "# TYPE app_upstream_errors_total counter"]
            out += [f'app_upstream_errors_total{{kind="{k}"}} {v}' for k, v in self.errors.items()]
            out += ["# HELP app_queue_depth Jobs waiting.", "# TYPE app_queue_depth gauge"]
            out += [f'app_queue_depth{{queue="{q}"}} {r.randrange(0, 100)}' for q in self.jobs]
            out += ["# HELP app_cache_entries Entries held.", "# TYPE app_cache_entries gauge"]
            out += [f'app_cache_entries{{cache="{c}"}} {r.randrange(1000, 5000)}' for c in ("items", "orders", "users", "sessions")]
            out += ["# HELP app_worker_busy Whether a worker is busy.", "# TYPE app_worker_busy gauge"]
            out += [f'app_worker_busy{{worker="{w}"}} {r.randrange(0, 2)}' for w in range(8)]
            out += ["# HELP app_requests_in_flight Requests being answered.", "# TYPE app_requests_in_flight gauge",
                    f"app_requests_in_flight {r.randrange(0, 20)}"]
            return ("\n".join(out) + "\n").encode()


def serve(routes, app):
    """A loopback HTTP server for the metadata endpoint and the app; counts requests per path."""
    counts = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # headers and body in one write (see scripts/serve-fixtures.py)
        disable_nagle_algorithm = True

        def do_GET(self):
            path = self.path.split("?", 1)[0].rstrip("/")
            counts[path] = counts.get(path, 0) + 1
            if path == "/metrics":
                body, kind = app.render(), "text/plain; version=0.0.4"
            else:
                body, kind = routes.get(path), "application/json"
            status = 200 if body is not None else 404
            body = body if body is not None else b'{"error":"not found"}'
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, counts


def metadata_routes(app_port):
    """The Fargate capture with the app's docker label on its first running container, served
    twice (one copy per side)."""
    metadata = json.loads((FIXTURES / METADATA).read_text())
    stats = (FIXTURES / STATS).read_bytes()
    container = next(c for c in metadata["Containers"] if c.get("KnownStatus") == "RUNNING" and c["Name"] != "ecs-exporter")
    container.setdefault("Labels", {})["PROMETHEUS_EXPORTER_PORT"] = str(app_port)
    if any(n.get("NetworkMode") != "awsvpc" for n in container.get("Networks", [])):
        raise SystemExit(f"{METADATA}: expected an awsvpc task")
    body = json.dumps(metadata).encode()
    routes = {}
    for side in ("agent", "exporter"):
        routes[f"/v4/{side}/task"] = body
        routes[f"/v4/{side}/task/stats"] = stats
    return routes, container["Name"]


def on_cpu_ns(pid):
    """{thread id: (nanoseconds on CPU, times run)} from /proc/<pid>/task/*/schedstat."""
    times = {}
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "schedstat").read_text().split()
            times[task.name] = (int(fields[0]), int(fields[2]))
        except (OSError, IndexError, ValueError):
            pass  # the thread ended while we looked
    return times


def memory_mib(pid):
    """(VmRSS, RssAnon) MiB from /proc/<pid>/status."""
    fields = dict(line.split(":", 1) for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return tuple(int(fields.get(key, "0 kB").split()[0]) / 1024 for key in ("VmRSS", "RssAnon"))


def machine_busy():
    """(busy, total) jiffies of every CPU from /proc/stat."""
    values = [int(v) for v in pathlib.Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class Reading:
    """A process's CPU counters at one moment."""

    def __init__(self, pid):
        self.at = time.time()
        self.user, self.system = cpu_seconds(pid)
        self.threads = on_cpu_ns(pid)


def window_cpu(before, after):
    """CPU used between two readings: (user s, system s, on-CPU s from schedstat, times a thread
    was put on a CPU, threads ended)."""
    ended = set(before.threads) - set(after.threads)
    on_cpu = sum(ns - before.threads.get(tid, (0, 0))[0] for tid, (ns, _) in after.threads.items()) / 1e9
    runs = sum(n - before.threads.get(tid, (0, 0))[1] for tid, (_, n) in after.threads.items())
    return after.user - before.user, after.system - before.system, on_cpu, runs, len(ended)


def export(vm_port, match, start, end):
    """Every series matching `match` with its samples in [start, end], from /api/v1/export."""
    text = get(vm_port, "/api/v1/export", {"match[]": match, "start": f"{start:.3f}", "end": f"{end:.3f}"})
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def first_scrape(vm_port, job, deadline):
    """The timestamp (s) of the first `up` sample of a job the receiver holds."""
    while time.time() < deadline:
        series = export(vm_port, f'up{{job="{job}"}}', 0, time.time() + 60)
        stamps = [t for s in series for t in s["timestamps"]]
        if stamps:
            return min(stamps) / 1000
        time.sleep(1)
    raise SystemExit(f"no scrape of job {job} arrived at the receiver on port {vm_port}")


def delivered(vm_port, start, end):
    """What a receiver holds per job: series (automatic ones apart), scrapes and failed scrapes in
    (start, end], and the names of the app's and ECS series over the whole run."""
    result = {}
    for job in (APP_JOB, ECS_JOB):
        everything = export(vm_port, f'{{job="{job}"}}', 0, end + 3600)
        names = [s["metric"]["__name__"] for s in everything]
        own = [s for s in everything if s["metric"]["__name__"] not in AUTOMATIC]
        ups = [v for s in everything if s["metric"]["__name__"] == "up"
               for t, v in zip(s["timestamps"], s["values"]) if start < t / 1000 <= end]
        result[job] = {
            "series": len(own),
            "families": sorted({n for n in names if n not in AUTOMATIC}),
            "automatic": sorted({n for n in names if n in AUTOMATIC}),
            "scrapes": len(ups),
            "failed": sum(1 for v in ups if v == 0),
            "labels": sorted({k for s in own for k in s["metric"]} - {"__name__"}),
        }
    return result


def count_series(text):
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def vmagent_config(interval, app_port, exporter_port):
    return (f"global: {{scrape_interval: {interval:g}s, scrape_timeout: {min(interval, 10):g}s}}\n"
            "scrape_configs:\n"
            f"- job_name: {APP_JOB}\n  static_configs: [{{targets: ['127.0.0.1:{app_port}']}}]\n"
            f"- job_name: {ECS_JOB}\n  static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]\n")


def start(processes, name, command, work):
    log = open(work / f"{name}.log", "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    processes.append(process)
    return process


def notable_log_lines(path):
    lines = path.read_text(errors="replace").splitlines()
    return [line for line in lines if any(word in line.lower() for word in ("level=warn", "level=error", '"warn', '"error', "panic"))]


def run(binary, interval, duration, work, fsync):
    processes = []
    servers = []
    try:
        app = App()
        app_server, _ = serve({}, app)
        servers.append(app_server)
        app_port = app_server.server_address[1]
        routes, app_container = metadata_routes(app_port)
        metadata_server, metadata_counts = serve(routes, app)
        servers.append(metadata_server)
        metadata_port = metadata_server.server_address[1]
        app_series = count_series(App().render().decode())

        vm_a, vm_b, agent_port, exporter_port, vmagent_port = (free_port() for _ in range(5))
        for name, port in (("vm-a", vm_a), ("vm-b", vm_b)):
            start(processes, name, ["victoria-metrics", f"-httpListenAddr=127.0.0.1:{port}",
                                    f"-storageDataPath={work / name}", "-loggerLevel=ERROR"], work)
        wait_for(vm_a)
        wait_for(vm_b)

        timeout = f"{min(interval, 10):g}s"
        started = time.time()
        agent = start(processes, "agent", [
            str(binary), "agent", "--ecs.task", "--ecs.metadata-url", f"http://127.0.0.1:{metadata_port}/v4/agent",
            "--remote-write.url", f"http://127.0.0.1:{vm_a}/api/v1/write", "--scrape.interval", f"{interval:g}s",
            "--scrape.timeout", timeout, "--storage.path", str(work / "agent-queue"),
            # As the Fargate sidecar template runs it (its volume dies with the task).
            "--storage.fsync", "true" if fsync else "false",
            "--web.listen-address", f"127.0.0.1:{agent_port}"], work)
        exporter = start(processes, "exporter", [
            str(binary), "exporter", "--ecs.metadata-uri", f"http://127.0.0.1:{metadata_port}/v4/exporter",
            "--web.listen-address", f"127.0.0.1:{exporter_port}"], work)
        wait_for(exporter_port)
        (work / "vmagent.yml").write_text(vmagent_config(interval, app_port, exporter_port))
        vmagent = start(processes, "vmagent", [
            "vmagent", f"-httpListenAddr=127.0.0.1:{vmagent_port}", f"-promscrape.config={work / 'vmagent.yml'}",
            f"-remoteWrite.url=http://127.0.0.1:{vm_b}/api/v1/write",
            f"-remoteWrite.tmpDataPath={work / 'vmagent-queue'}", "-loggerLevel=WARN"], work)
        wait_for(agent_port)
        wait_for(vmagent_port)
        exporter_series = count_series(get(exporter_port, "/metrics"))

        # Each side's window: a whole number of intervals from half an interval after a scrape.
        deadline = time.time() + 2 * interval + 60
        phase = {"A": first_scrape(vm_a, APP_JOB, deadline), "B": first_scrape(vm_b, ECS_JOB, deadline)}
        cycles = max(1, round(duration / interval))
        windows = {}
        for side, first in phase.items():
            t0 = first + interval / 2
            while t0 < time.time() + 0.5:
                t0 += interval
            windows[side] = (t0, t0 + cycles * interval)
        members = {"A": {"agent": agent}, "B": {"exporter": exporter, "vmagent": vmagent}}
        events = sorted([(t0, "start", side) for side, (t0, _) in windows.items()]
                        + [(t1, "end", side) for side, (_, t1) in windows.items()])
        readings, memory, startup = {}, {}, {}
        machine = {}
        for at, kind, side in events:
            time.sleep(max(0.0, at - time.time()))
            for name, process in members[side].items():
                if process.poll() is not None:
                    raise SystemExit(f"{name} exited with {process.returncode}:\n"
                                     f"{(work / f'{name}.log').read_text()[-2000:]}")
                readings[(name, kind)] = Reading(process.pid)
                if kind == "start":
                    startup[name] = sum(ns for ns, _ in readings[(name, kind)].threads.values()) / 1e9
                else:
                    memory[name] = memory_mib(process.pid)
            machine[(side, kind)] = machine_busy()
        metadata_at_end = dict(metadata_counts)
        time.sleep(FLUSH_SECONDS)

        rows = {}
        for name in ("agent", "exporter", "vmagent"):
            user, system, on_cpu, runs, ended = window_cpu(readings[(name, "start")], readings[(name, "end")])
            rows[name] = {"user": user, "system": system, "on_cpu": on_cpu, "runs": runs, "ended": ended,
                          "rss": memory[name][0], "anon": memory[name][1], "startup": startup[name],
                          "threads": len(readings[(name, "end")].threads)}
        receivers = {"A": delivered(vm_a, *windows["A"]), "B": delivered(vm_b, *windows["B"])}
        busy = {}
        for side in ("A", "B"):
            (b0, t0), (b1, t1) = machine[(side, "start")], machine[(side, "end")]
            busy[side] = (b1 - b0) / (t1 - t0) if t1 > t0 else float("nan")
        logs = {name: notable_log_lines(work / f"{name}.log") for name in ("agent", "exporter", "vmagent")}
        return {
            "rows": rows, "receivers": receivers, "cycles": cycles, "windows": windows, "busy": busy,
            "logs": logs, "app_series": app_series, "exporter_series": exporter_series,
            "app_container": app_container, "metadata_requests": metadata_at_end,
            "run_seconds": time.time() - started,
        }
    finally:
        stop(processes[::-1])
        for server in servers:
            server.shutdown()
            server.server_close()


def us(seconds):
    return f"{seconds * 1e6:,.0f} µs"


def report(result, interval, duration, version):
    rows, receivers = result["rows"], result["receivers"]
    agent, exporter, vmagent = rows["agent"], rows["exporter"], rows["vmagent"]
    scrapes_a = receivers["A"][APP_JOB]["scrapes"]
    scrapes_b = receivers["B"][ECS_JOB]["scrapes"]
    window = result["windows"]["A"][1] - result["windows"]["A"][0]
    print(f"One awsvpc task ({METADATA}, docker label PROMETHEUS_EXPORTER_PORT on container "
          f"`{result['app_container']}`), an app of {result['app_series']} series, scraped every {interval:g} s. "
          f"Window: {result['cycles']} cycles ({window:g} s) per side after the first scrape. {version}.")
    print(f"Machine busy during the window (every process, 2 cores = 200%): A {result['busy']['A']:.0%}, "
          f"B {result['busy']['B']:.0%}.\n")

    def cpu_cell(row):
        return f"{row['on_cpu'] * 1e3:.1f} ms ({row['user'] + row['system']:.2f} s in ticks: {row['user']:.2f} + {row['system']:.2f})"

    def per(row, count):
        return us(row["on_cpu"] / count) if count else "n/a"

    total = {k: exporter[k] + vmagent[k] for k in ("on_cpu", "runs", "user", "system", "rss", "anon")}

    def runs(row, count):
        return f"{row['runs'] / count:,.0f}" if count else "n/a"
    print("| side | process | CPU in the window (schedstat; /proc/<pid>/stat user + system) | scrape cycles | "
          "CPU per cycle | times on a CPU per cycle | resident at end (VmRSS) | anonymous (RssAnon) | "
          "on CPU before the window (startup, first scrape) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| A | ecs-prom agent --ecs.task | {cpu_cell(agent)} | {scrapes_a} | {per(agent, scrapes_a)} | {runs(agent, scrapes_a)} | "
          f"{agent['rss']:.1f} MiB | {agent['anon']:.1f} MiB | {agent['startup'] * 1e3:.1f} ms |")
    print(f"| B | ecs-prom exporter | {cpu_cell(exporter)} | {scrapes_b} | {per(exporter, scrapes_b)} | {runs(exporter, scrapes_b)} | "
          f"{exporter['rss']:.1f} MiB | {exporter['anon']:.1f} MiB | {exporter['startup'] * 1e3:.1f} ms |")
    print(f"| B | vmagent | {cpu_cell(vmagent)} | {receivers['B'][APP_JOB]['scrapes']} | {per(vmagent, scrapes_b)} | {runs(vmagent, scrapes_b)} | "
          f"{vmagent['rss']:.1f} MiB | {vmagent['anon']:.1f} MiB | {vmagent['startup'] * 1e3:.1f} ms |")
    print(f"| B | exporter + vmagent | {cpu_cell(total)} | {scrapes_b} | {per(total, scrapes_b)} | {runs(total, scrapes_b)} | "
          f"{total['rss']:.1f} MiB | {total['anon']:.1f} MiB |  |")
    print()

    print("| side | receiver holds: app series (of " f"{result['app_series']}) | ECS series (exporter serves "
          f"{result['exporter_series']}) | app scrapes in window (failed) | ECS scrapes in window (failed) | "
          "automatic series per scrape |")
    print("|---|---|---|---|---|---|")
    for side in ("A", "B"):
        app, ecs = receivers[side][APP_JOB], receivers[side][ECS_JOB]
        print(f"| {side} | {app['series']} | {ecs['series']} | {app['scrapes']} ({app['failed']}) | "
              f"{ecs['scrapes']} ({ecs['failed']}) | {len(app['automatic'])} |")
    print()

    limit = 1.5 * exporter["on_cpu"] / scrapes_b if scrapes_b else float("nan")
    per_cycle = agent["on_cpu"] / scrapes_a if scrapes_a else float("nan")
    met = lambda ok: "met" if ok else "not met"
    print(f"- Agent alone under 10 MiB resident: **{met(agent['rss'] < 10)}**: {agent['rss']:.1f} MiB VmRSS "
          f"({agent['anon']:.1f} MiB anonymous); exporter + vmagent {total['rss']:.1f} MiB.")
    print(f"- Agent CPU per cycle under the exporter's CPU per scrape plus 50%: **{met(per_cycle < limit)}**: "
          f"{us(per_cycle)} against {us(limit)} (1.5 × {us(exporter['on_cpu'] / scrapes_b)}); "
          f"exporter + vmagent {us(total['on_cpu'] / scrapes_b)} per cycle "
          f"(agent / two-process total {per_cycle / (total['on_cpu'] / scrapes_b):.2f}x).")
    print()
    only_a = sorted(set(receivers["A"][ECS_JOB]["families"]) - set(receivers["B"][ECS_JOB]["families"]))
    only_b = sorted(set(receivers["B"][ECS_JOB]["families"]) - set(receivers["A"][ECS_JOB]["families"]))
    if only_a or only_b:
        print(f"- ECS families only A delivered: {', '.join(only_a) or 'none'}; only B: {', '.join(only_b) or 'none'}.")
    for side in ("A", "B"):
        print(f"- Labels on {side}'s app series: {', '.join(receivers[side][APP_JOB]['labels'])}.")
    metadata = result["metadata_requests"]
    for side, prefix, count in (("A", "/v4/agent", scrapes_a), ("B", "/v4/exporter", scrapes_b)):
        reads = {path[len(prefix):] or "/": n for path, n in metadata.items() if path.startswith(prefix)}
        print(f"- Metadata reads by {side} over the whole run: {reads or 'none'} ({count} cycles in the window).")
    other = {p: n for p, n in metadata.items() if not p.startswith(("/v4/agent", "/v4/exporter"))}
    if other:
        print(f"- Requests to unknown paths: {other}.")
    for name in ("agent", "exporter", "vmagent"):
        row = rows[name]
        note = f", {row['ended']} thread(s) ended during the window (their time is in the ticks only)" if row["ended"] else ""
        print(f"- {name}: {row['threads']} thread(s) at the end{note}; {len(result['logs'][name])} warning/error log line(s)"
              + "".join(f"\n  - `{line[:300]}`" for line in result["logs"][name][:5]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds measured per side (default 600)")
    parser.add_argument("--scrape-interval", type=float, default=15, help="seconds (default 15; shorter for a quick check)")
    parser.add_argument("--ecs-prom", type=pathlib.Path, help="ecs-prom binary to use instead of building one")
    parser.add_argument("--fsync", action="store_true",
                        help="run the agent with --storage.fsync=true (default: false, as the Fargate sidecar template)")
    args = parser.parse_args()
    for tool in ("victoria-metrics", "vmagent"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install -y victoria-metrics")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that `finally` stops every process

    binary, help_text = find_ecs_prom(args.ecs_prom)
    if binary is None:
        raise SystemExit(f"ecs-prom agent: {help_text}")
    package = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "victoria-metrics"],
                             capture_output=True, text=True).stdout
    version = (subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
               + f", vmagent and VictoriaMetrics {package}")
    with tempfile.TemporaryDirectory(prefix="ecs-prom-bench-sidecar-") as tmp:
        result = run(binary, args.scrape_interval, args.duration, pathlib.Path(tmp), args.fsync)
    report(result, args.scrape_interval, args.duration, version)


if __name__ == "__main__":
    main()

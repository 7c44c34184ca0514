#!/usr/bin/env python3
"""Benchmark: CPU time, peak memory and samples delivered of `ecs-prom agent`, side by side with
vmagent and Prometheus in agent mode, on the same scrape-and-remote-write workload.

Workload (default): one Debian prometheus-node-exporter with its default collectors (about 500
series) on a free loopback port, listed under 40 job names (40 scrape configs, same target),
scraped every second for 60 s, remote-written to a local VictoriaMetrics (/api/v1/write).
--sidecar: one job of the same target every 15 s for 2 minutes, the size of an ECS sidecar.

Each agent runs in turn, against its own fresh VictoriaMetrics, with the same scrape
configuration. CPU time is user + system from /proc/<pid>/stat from the agent's start to the
end of the run; peak memory is VmHWM from /proc/<pid>/status at the end of the run (the
kernel's high-water mark of the resident set). After the run the agent keeps running for a
flush period, then VictoriaMetrics is asked how many samples it holds with timestamps in the
run: `sum(count_over_time({__name__!=""}[window]))` at the end of the run, which counts every
stored sample once. The samples scraped are what the agent itself wrote about its scrapes:
the sum of its `scrape_samples_post_metric_relabeling` (samples kept from each scrape) plus its
automatic series (`up`, `scrape_*`: 5 per scrape for Prometheus, 6 for vmagent) for every
scrape, so "every sample delivered" is delivered == scraped and scrapes == expected.

Usage: bench/agent.py [--duration 60] [--interval 1] [--jobs 40] [--sidecar] [--ecs-prom PATH]
(needs: apt-get install -y prometheus-node-exporter victoria-metrics prometheus; cargo)
"""
import argparse
import json
import math
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

from processes import cpu_seconds, free_port, wait_for

ROOT = pathlib.Path(__file__).resolve().parent.parent
FLUSH_SECONDS = 10  # Prometheus sends a batch at least every 5 s, vmagent every second


def status_mib(pid, key):
    """A memory field of /proc/<pid>/status (VmRSS, VmHWM) in MiB."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def get(port, path, params=None):
    url = f"http://127.0.0.1:{port}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read().decode()


def query(port, expression, at):
    """One instant query to VictoriaMetrics; the value of its single result (0 when none)."""
    answer = json.loads(get(port, "/api/v1/query", {"query": expression, "time": f"{at:.3f}", "nocache": "1"}))
    if answer["status"] != "success":
        raise SystemExit(f"VictoriaMetrics refused {expression}: {answer}")
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def metric(port, name_prefix):
    """Sum of a metric family from a /metrics page (None when absent or unreachable)."""
    try:
        text = get(port, "/metrics")
    except OSError:
        return None
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith(name_prefix) and line[len(name_prefix)] in " {"]
    return sum(values) if values else None


def stop(processes):
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def scrape_config(target, jobs, interval):
    lines = [f"global: {{scrape_interval: {interval}s, scrape_timeout: {interval}s}}", "scrape_configs:"]
    for job in range(jobs):
        lines += [f"- job_name: node-{job:02d}", f"  static_configs: [{{targets: ['{target}']}}]"]
    return "\n".join(lines) + "\n"


class Contender:
    """How to start one agent and read its own count of samples scraped."""

    def __init__(self, name, version, command, own_count=None):
        self.name, self.version, self.command, self.own_count = name, version, command, own_count


def vmagent(work, scrape_file, write_url, port):
    return (["vmagent", f"-httpListenAddr=127.0.0.1:{port}", f"-promscrape.config={scrape_file}",
              f"-remoteWrite.url={write_url}", f"-remoteWrite.tmpDataPath={work / 'vmagent-queue'}",
              "-loggerLevel=ERROR"],
            # every row it took in, the automatic series included, before remote-write relabeling
            lambda: metric(port, "vmagent_remotewrite_global_rows_pushed_before_relabel_total"))


def prometheus(work, config_file, port):
    return (["prometheus", "--enable-feature=agent", f"--config.file={config_file}",
             f"--storage.agent.path={work / 'prometheus-agent'}", f"--web.listen-address=127.0.0.1:{port}",
             "--log.level=warn"],
            lambda: metric(port, "prometheus_agent_samples_appended_total"))


def ecs_prom(binary, work, config_file, port):
    command = [str(binary), "agent", "--config.file", str(config_file), "--storage.path", str(work / "ecs-prom-agent"),
               "--web.listen-address", f"127.0.0.1:{port}", "--log.level=warn"]
    # every sample queued for the remote: scraped, the automatic series, stale markers (none here)
    return command, lambda: metric(port, "ecs_prom_agent_remote_samples_appended_total")


def run_one(name, make_command, target, jobs, interval, duration):
    """Runs one agent against a fresh VictoriaMetrics; returns its row."""
    processes = []
    with tempfile.TemporaryDirectory(prefix="ecs-prom-bench-agent-") as tmp:
        work = pathlib.Path(tmp)
        try:
            vm_port, agent_port = free_port(), free_port()
            processes.append(subprocess.Popen(
                ["victoria-metrics", f"-httpListenAddr=127.0.0.1:{vm_port}", f"-storageDataPath={work / 'vm'}",
                 "-loggerLevel=ERROR"], stdout=subprocess.DEVNULL))
            wait_for(vm_port)
            write_url = f"http://127.0.0.1:{vm_port}/api/v1/write"
            scrape_file = work / "scrape.yml"
            scrape_file.write_text(scrape_config(target, jobs, interval))
            config_file = work / "agent.yml"  # the same scrapes, with a remote_write block
            config_file.write_text(scrape_config(target, jobs, interval) + f"remote_write:\n- url: {write_url}\n")
            command, own_count = make_command(work, scrape_file, config_file, write_url, agent_port)

            start = time.time()
            agent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=open(work / "agent.log", "w"))
            processes.append(agent)
            time.sleep(duration)
            end = time.time()
            if agent.poll() is not None:
                raise SystemExit(f"{name} exited with {agent.returncode}:\n{(work / 'agent.log').read_text()[-2000:]}")
            user, system = cpu_seconds(agent.pid)
            peak, resident = status_mib(agent.pid, "VmHWM"), status_mib(agent.pid, "VmRSS")
            own = own_count() if own_count else None
            time.sleep(FLUSH_SECONDS)

            window = f"[{math.ceil(end - start) + 60}s]"  # reaches back before the start: VictoriaMetrics is fresh
            delivered = query(vm_port, f'sum(count_over_time({{__name__!=""}}{window}))', end)
            scrapes = query(vm_port, f"sum(count_over_time(up{window}))", end)
            kept = query(vm_port, f"sum(sum_over_time(scrape_samples_post_metric_relabeling{window}))", end)
            automatic = json.loads(get(vm_port, "/api/v1/label/__name__/values"))["data"]
            automatic = [n for n in automatic if n == "up" or n.startswith("scrape_")]
            return {
                "name": name, "user": user, "system": system, "peak": peak, "resident": resident,
                "scrapes": int(scrapes), "scraped": int(kept + len(automatic) * scrapes),
                "delivered": int(delivered), "own": own, "automatic": len(automatic),
            }
        finally:
            stop(processes[::-1])


def versions():
    def first_line(command):
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=30)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return ""

    def package(name):  # Debian's VictoriaMetrics build prints an empty -version
        return subprocess.run(["dpkg-query", "-W", "-f", "${Version}", name], capture_output=True, text=True).stdout

    return {
        "vmagent": f"vmagent {first_line(['vmagent', '-version']) or package('victoria-metrics')}",
        "victoria-metrics": f"VictoriaMetrics {first_line(['victoria-metrics', '-version']) or package('victoria-metrics')}",
        "prometheus": first_line(["prometheus", "--version"]),
        "node_exporter": first_line(["prometheus-node-exporter", "--version"]),
    }


def find_ecs_prom(path):
    """The ecs-prom binary and its `agent --help`, or (None, why not)."""
    if path is None:
        build = subprocess.run(["cargo", "build", "--release", "--locked", "--quiet", "-p", "ecs-prom"], cwd=ROOT)
        if build.returncode != 0:
            return None, "build failed"
        path = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release" / "ecs-prom"
    help_run = subprocess.run([str(path), "agent", "--help"], capture_output=True, text=True)
    if help_run.returncode != 0:
        return None, "not built"
    return pathlib.Path(path), help_run.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, help="seconds of scraping per agent (default 60; 120 with --sidecar)")
    parser.add_argument("--interval", type=float, help="scrape interval in seconds (default 1; 15 with --sidecar)")
    parser.add_argument("--jobs", type=int, help="job names listing the same target (default 40; 1 with --sidecar)")
    parser.add_argument("--sidecar", action="store_true", help="one target every 15 s for 2 minutes")
    parser.add_argument("--ecs-prom", type=pathlib.Path, help="ecs-prom binary to use instead of building one")
    args = parser.parse_args()
    defaults = (120, 15, 1) if args.sidecar else (60, 1, 40)
    duration, interval, jobs = (value if value is not None else default
                                for value, default in zip((args.duration, args.interval, args.jobs), defaults))
    interval = int(interval) if float(interval).is_integer() else interval
    for tool in ("prometheus-node-exporter", "victoria-metrics", "vmagent", "prometheus"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found: apt-get install -y prometheus-node-exporter victoria-metrics prometheus")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # so that `finally` stops every process

    binary, help_text = find_ecs_prom(args.ecs_prom)
    version = versions()
    if binary:
        version["ecs-prom"] = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()

    contenders = [
        ("vmagent", lambda work, scrape, config, url, port: vmagent(work, scrape, url, port)),
        ("Prometheus agent mode", lambda work, scrape, config, url, port: prometheus(work, config, port)),
        ("ecs-prom agent", (lambda work, scrape, config, url, port: ecs_prom(binary, work, config, port))
         if binary else None),
    ]
    node_port = free_port()
    node = subprocess.Popen(["prometheus-node-exporter", f"--web.listen-address=127.0.0.1:{node_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        wait_for(node_port)
        series = sum(1 for line in get(node_port, "/metrics").splitlines() if line and not line.startswith("#"))
        for name, make_command in contenders:
            if make_command is None:
                rows.append({"name": name, "missing": help_text})
                continue
            node_before = sum(cpu_seconds(node.pid))
            row = run_one(name, make_command, f"127.0.0.1:{node_port}", jobs, interval, duration)
            row["node_cpu"] = sum(cpu_seconds(node.pid)) - node_before
            rows.append(row)
    finally:
        stop([node])

    workload = "sidecar" if args.sidecar else "many jobs"
    expected = int(jobs * duration / interval)
    print(f"Workload ({workload}): node_exporter with its default collectors ({series} series) under {jobs} job "
          f"name(s), scraped every {interval} s for {duration:g} s, remote-written to a fresh VictoriaMetrics per agent.")
    print(f"About {expected} scrapes expected per agent. {', '.join(version.values())}.\n")
    print("| workload | agent | CPU (user + system) | peak resident (VmHWM) | resident at end | scrapes | "
          "samples scraped (as the agent reports them) | samples delivered | delivered / scraped | agent's own count | CPU per 1,000 samples | against vmagent |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    base = next((row for row in rows if row["name"] == "vmagent" and "missing" not in row), None)
    for row in rows:
        if "missing" in row:
            print(f"| {workload} | {row['name']} | {row['missing']} |  |  |  |  |  |  |  |  |  |")
            continue
        cpu = row["user"] + row["system"]
        ratio = ""
        if base and row is not base:
            base_cpu = base["user"] + base["system"]
            ratio = (f"CPU {cpu / base_cpu:.2f}x ({cpu / row['scraped'] / (base_cpu / base['scraped']):.2f}x per sample), "
                     f"memory {row['peak'] / base['peak']:.2f}x")
        own = f"{row['own']:,.0f}" if row["own"] is not None else "n/a"
        per_thousand = f"{cpu / row['scraped'] * 1e6:.1f} ms" if row["scraped"] else "n/a"
        share = f"{row['delivered'] / row['scraped']:.4f}" if row["scraped"] else "n/a"
        print(f"| {workload} | {row['name']} | {cpu:.2f} s ({row['user']:.2f} + {row['system']:.2f}) | "
              f"{row['peak']:.1f} MiB | {row['resident']:.1f} MiB | {row['scrapes']:,} | {row['scraped']:,} | "
              f"{row['delivered']:,} | {share} | {own} | {per_thousand} | {ratio} |")
    print()
    for row in rows:
        if "missing" not in row:
            print(f"- {row['name']}: {row['automatic']} automatic series per scrape; node_exporter used "
                  f"{row['node_cpu']:.2f} CPU-s while it ran.")


if __name__ == "__main__":
    main()

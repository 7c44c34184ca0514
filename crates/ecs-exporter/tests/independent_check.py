#!/usr/bin/env python3
"""Independent check of the exporter's golden snapshots.

Recomputes every series the exporter should produce for each fixture, straight from the
fixture JSON and the rules documented in the README, and compares the set of series and
every value with the snapshot. Then compares the ecs_exporter fixtures' snapshots with
ecs_exporter v0.4's own golden output, allowing only the deliberate, documented fixes.

This is a second implementation on purpose: it shares no code with the Rust exporter.

Usage: independent_check.py FIXTURES_DIR SNAPSHOTS_DIR
"""
import calendar
import json
import math
import pathlib
import re
import sys

MIB = 1048576
CASES = {
    "ecs_exporter-ec2": ("ecs_exporter-ec2_task_metadata.json", "ecs_exporter-ec2_task_stats.json", "task"),
    "ecs_exporter-fargate": ("ecs_exporter-fargate_task_metadata.json", "ecs_exporter-fargate_task_stats.json", "task"),
    "otel-ec2-bridge": ("otel-task_metadata.json", "otel-task_stats.json", "task"),
    "otel-fargate-exited": ("otel-task_metadata2.json", "otel-task_stats2.json", "task"),
    "aws-docs-ec2-awsvpc": ("aws-docs-ec2-awsvpc-task_metadata.json", "aws-docs-ec2-awsvpc-task_stats.json", "task"),
    "windows-fargate": ("ecs-prom-windows_task_metadata.json", "integrations-core-ecs_fargate-stats_windows.json", "task"),
    "managed-instances": ("otel-instance_tasks_metadata.json", "otel-instance_tasks_stats.json", "instance"),
}
NET = [("rx_bytes", "receive_bytes"), ("rx_packets", "receive_packets"), ("rx_dropped", "receive_packets_dropped"),
       ("rx_errors", "receive_errors"), ("tx_bytes", "transmit_bytes"), ("tx_packets", "transmit_packets"),
       ("tx_dropped", "transmit_packets_dropped"), ("tx_errors", "transmit_errors")]


def epoch(text):
    """RFC 3339 'YYYY-MM-DDTHH:MM:SS(.frac)Z' -> seconds; None for Go's zero time."""
    if not isinstance(text, str) or not text.endswith("Z"):
        return None
    main, _, frac = text[:-1].partition(".")
    date, time = main.split("T")
    y, mo, d = (int(x) for x in date.split("-"))
    h, mi, s = (int(x) for x in time.split(":"))
    if y < 1971:
        return None
    nanos = int((frac or "0")[:9].ljust(9, "0"))
    return calendar.timegm((y, mo, d, h, mi, s)) + nanos / 1e9


def expected_series(tasks, stats, scope):
    out = {}

    def put(name, labels, value):
        if value is None:
            return
        key = (name, tuple(sorted(labels.items())))
        assert key not in out, f"duplicate series {key}"
        out[key] = float(value)

    for task in tasks:
        base = {"task_arn": task["TaskARN"]} if scope == "instance" else {}
        put("ecs_task_metadata_info", {
            "cluster": task.get("Cluster", ""), "task_arn": task.get("TaskARN", ""), "family": task.get("Family", ""),
            "revision": task.get("Revision", ""), "desired_status": task.get("DesiredStatus", ""),
            "known_status": task.get("KnownStatus", ""), "availability_zone": task.get("AvailabilityZone", ""),
            "launch_type": task.get("LaunchType", ""), "service": task.get("ServiceName", "")}, 1)
        limits = task.get("Limits") or {}
        if limits.get("CPU"):
            put("ecs_task_cpu_limit_vcpus", base, limits["CPU"])
        if limits.get("Memory"):
            put("ecs_task_memory_limit_bytes", base, limits["Memory"] * MIB)
        storage = task.get("EphemeralStorageMetrics")
        if storage:
            put("ecs_task_ephemeral_storage_used_bytes", base, storage["Utilized"] * MIB)
            put("ecs_task_ephemeral_storage_allocated_bytes", base, storage["Reserved"] * MIB)
        put("ecs_task_image_pull_start_timestamp_seconds", base, epoch(task.get("PullStartedAt")))
        put("ecs_task_image_pull_stop_timestamp_seconds", base, epoch(task.get("PullStoppedAt")))
        clock = task.get("ClockDrift")
        if clock:
            put("ecs_task_clock_synchronized", base, 1 if clock["ClockSynchronizationStatus"] == "SYNCHRONIZED" else 0)
            put("ecs_task_clock_error_bound_seconds", base, clock["ClockErrorBound"] / 1000)  # documented in ms

        normal = [c for c in task["Containers"] if c.get("Type", "NORMAL") == "NORMAL"]
        for c in normal:
            lab = dict(base, container_name=c["Name"])
            put("ecs_container_info", dict(lab, container_id=c["DockerId"], image=c["Image"], image_id=c["ImageID"],
                                           known_status=c["KnownStatus"], desired_status=c["DesiredStatus"]), 1)
            climits = c.get("Limits") or {}
            if climits.get("CPU", 0) > 2:
                put("ecs_container_cpu_limit_vcpus", lab, climits["CPU"] / 1024)
            mem = climits.get("Memory") or limits.get("Memory")
            if mem:
                put("ecs_container_memory_limit_bytes", lab, mem * MIB)
            put("ecs_container_exit_code", lab, c.get("ExitCode"))
            put("ecs_container_start_time_seconds", lab, epoch(c.get("StartedAt")))
            put("ecs_container_restarts_total", lab, c.get("RestartCount"))
            if "Health" in c:
                for state in ("HEALTHY", "UNHEALTHY", "UNKNOWN"):
                    put("ecs_container_health_status", dict(lab, status=state), 1 if c["Health"]["status"] == state else 0)

        running = [(c, stats[c["DockerId"]]) for c in normal
                   if c["KnownStatus"] != "STOPPED" and stats.get(c["DockerId"])]
        for c, s in running:
            lab = dict(base, container_name=c["Name"])
            mem = s["memory_stats"]
            inner = mem.get("stats", {})
            is_windows = "privateworkingset" in mem
            unit = 1e7 if is_windows else 1e9
            cpu = s["cpu_stats"]["cpu_usage"]
            put("ecs_container_cpu_usage_seconds_total", lab, cpu["total_usage"] / unit)
            put("ecs_container_cpu_user_seconds_total", lab, cpu["usage_in_usermode"] / unit)
            put("ecs_container_cpu_system_seconds_total", lab, cpu["usage_in_kernelmode"] / unit)
            put("ecs_container_memory_usage_bytes", lab, mem["usage"])
            put("ecs_container_memory_max_usage_bytes", lab, mem.get("max_usage"))
            if is_windows:
                working_set = utilized = mem["privateworkingset"]
            elif "cache" in inner:  # cgroup v1
                put("ecs_container_memory_page_cache_size_bytes", lab, inner["cache"])
                working_set = max(mem["usage"] - inner["total_inactive_file"], 0)
                utilized = mem["usage"] - inner["cache"] if inner["cache"] < mem["usage"] else mem["usage"]
            else:  # cgroup v2
                put("ecs_container_memory_page_cache_size_bytes", lab, inner["file"])
                inactive = inner.get("inactive_file")
                working_set = mem["usage"] if inactive is None else max(mem["usage"] - inactive, 0)
                utilized = mem["usage"] - inactive if inactive is not None and inactive < mem["usage"] else mem["usage"]
            put("ecs_container_memory_working_set_bytes", lab, working_set)
            put("ecs_container_memory_utilized_bytes", lab, utilized)
            entries = (s.get("blkio_stats") or {}).get("io_service_bytes_recursive")
            if isinstance(entries, list):
                put("ecs_container_block_io_read_bytes_total", lab, sum(e["value"] for e in entries if e["op"].lower() == "read"))
                put("ecs_container_block_io_write_bytes_total", lab, sum(e["value"] for e in entries if e["op"].lower() == "write"))
            else:
                put("ecs_container_block_io_read_bytes_total", lab, s["storage_stats"]["read_size_bytes"])
                put("ecs_container_block_io_write_bytes_total", lab, s["storage_stats"]["write_size_bytes"])
            put("ecs_container_pids", lab, (s.get("pids_stats") or {}).get("current"))

        modes = [c["Networks"][0]["NetworkMode"] for c in task["Containers"] if c.get("Networks")]
        if modes and modes[0] in ("awsvpc", "host"):
            # One copy per task: the most recently read sample of each interface.
            newest = {}
            for c, s in running:
                for iface, counters in (s.get("networks") or {}).items():
                    if iface not in newest or s["read"] > newest[iface][0]:
                        newest[iface] = (s["read"], counters)
            for iface, (_, counters) in newest.items():
                for key, suffix in NET:
                    put(f"ecs_network_{suffix}_total", dict(base, interface=iface), counters[key])
        else:
            for c, s in running:
                for iface, counters in (s.get("networks") or {}).items():
                    for key, suffix in NET:
                        put(f"ecs_network_{suffix}_total", dict(base, container_name=c["Name"], interface=iface), counters[key])
    return out


LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def parse_text(text):
    series = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        assert m, f"unparsable line: {line}"
        labels = {k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\") for k, v in LABEL.findall(m.group(2) or "")}
        series[(m.group(1), tuple(sorted(labels.items())))] = float(m.group(3))
    return series


def close(a, b, name):
    if "timestamp" in name or "time_seconds" in name:
        return abs(a - b) <= 1e-6  # sub-microsecond float rounding of nanosecond timestamps
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


def main():
    fixtures, snapshots = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    problems = []
    for case, (meta_file, stats_file, scope) in CASES.items():
        meta = json.loads((fixtures / meta_file).read_text())
        tasks = meta if isinstance(meta, list) else [meta]
        raw = json.loads((fixtures / stats_file).read_text())
        stats = {}
        for part in raw if isinstance(raw, list) else [raw]:
            stats.update(part)
        want = expected_series(tasks, stats, scope)
        got = parse_text((snapshots / f"{case}.prom").read_text())
        for key in sorted(set(want) - set(got)):
            problems.append(f"{case}: missing {key}")
        for key in sorted(set(got) - set(want)):
            problems.append(f"{case}: unexpected {key}")
        for key in sorted(set(want) & set(got)):
            if not close(want[key], got[key], key[0]):
                problems.append(f"{case}: {key} is {got[key]!r}, expected {want[key]!r}")

    matched = 0
    for case in ("ecs_exporter-ec2", "ecs_exporter-fargate"):
        ours = parse_text((snapshots / f"{case}.prom").read_text())
        theirs = parse_text((fixtures / "expected" / f"{case}_metrics.prom").read_text())
        for (name, labels), value in theirs.items():
            if name == "ecs_container_memory_page_cache_size_bytes" and case.endswith("ec2"):
                # Deliberate fix: ecs_exporter reports 0 on cgroup v2; ecs-prom reports `file`.
                ok = (name, labels) in ours and ours[(name, labels)] > 0
            elif name.startswith("ecs_network_") and any(dict(k[1]).get("container_name") for k in ours if k[0] == name):
                # Deliberate fix: in bridge mode ecs_exporter keeps one container's eth0;
                # ecs-prom keeps every container's, so theirs must be one of ours.
                ok = any(k[0] == name and dict(k[1])["interface"] == dict(labels)["interface"] and close(v, value, name)
                         for k, v in ours.items())
            else:
                # Same name, a superset of the labels, the same value.
                ok = any(k[0] == name and set(labels) <= set(k[1]) and close(v, value, name) for k, v in ours.items())
            matched += ok
            if not ok:
                problems.append(f"{case}: ecs_exporter series {name}{dict(labels)} = {value!r} has no equal in ecs-prom")

    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"checked {len(CASES)} snapshots; {matched} ecs_exporter v0.4 series matched")


if __name__ == "__main__":
    main()

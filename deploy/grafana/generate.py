#!/usr/bin/env python3
"""Writes the Grafana dashboards in dashboards/ from the panel lists below.

    python3 deploy/grafana/generate.py          # rewrite the JSON files
    python3 deploy/grafana/generate.py --check  # exit 1 if a file differs from its source here

Every dashboard takes its Prometheus data source from the variable `datasource`, so it
imports into any Grafana, Amazon Managed Grafana included. Expressions use raw series only
(no recording rules), so the dashboards work on any Prometheus or AMP workspace that scrapes
ecs-prom, with or without the rule files loaded.
"""

import json
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# The ECS overview's selector: every series of the chosen cluster, service and task.
TASKS = 'cluster=~"$cluster", service=~"$service", task_id=~"$task"'
DEMO = 'job="demo-app", cluster=~"$cluster", service=~"$service"'


def per_second(series):
    return f"rate({series}[$__rate_interval])"


def panel(title, targets, unit="short", kind="timeseries", description=""):
    """A panel; `targets` is a list of (expression, legend)."""
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}}
        if kind == "timeseries" else {"reduceOptions": {"calcs": ["lastNotNull"]}},
        "targets": [
            {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend,
             "refId": chr(ord("A") + i)}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def datasource_variable():
    return {"name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0}


def query_variable(name, label, query):
    return {"name": name, "label": label, "type": "query", "datasource": DATASOURCE,
            "query": {"query": query, "refId": name}, "definition": query,
            "includeAll": True, "allValue": ".*", "multi": True, "refresh": 2,
            "current": {"text": "All", "value": "$__all"}, "sort": 1, "hide": 0}


def dashboard(uid, title, description, variables, panels):
    """Lays the panels out two to a row, 12 columns wide and 8 high (stats: 6 wide, 4 high)."""
    x = y = 0
    row_height = 0
    laid_out = []
    for i, p in enumerate(panels):
        width, height = (6, 4) if p["type"] == "stat" else (12, 8)
        if x + width > 24:
            x, y, row_height = 0, y + row_height, 0
        laid_out.append({"id": i + 1, "gridPos": {"x": x, "y": y, "w": width, "h": height}, **p})
        x += width
        row_height = max(row_height, height)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["ecs-prom", "ecs"],
        "editable": True,
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [datasource_variable(), *variables]},
        "annotations": {"list": []},
        "panels": laid_out,
    }


def ecs_overview():
    cpu = f"rate(ecs_container_cpu_usage_seconds_total{{{TASKS}}}[$__rate_interval])"
    return dashboard(
        "ecs-prom-overview", "ECS tasks (ecs-prom)",
        "CPU, memory, network, block I/O, restarts and ephemeral storage of ECS tasks, "
        "from the ecs-prom exporter sidecar.",
        [
            query_variable("cluster", "Cluster",
                           "label_values(ecs_container_cpu_usage_seconds_total, cluster)"),
            query_variable("service", "Service",
                           'label_values(ecs_container_cpu_usage_seconds_total{cluster=~"$cluster"}, service)'),
            query_variable("task", "Task",
                           'label_values(ecs_container_cpu_usage_seconds_total{cluster=~"$cluster", service=~"$service"}, task_id)'),
        ],
        [
            panel("Tasks", [(f"count(count by (task_id) (ecs_task_metadata_info{{{TASKS}}}))", "tasks")],
                  kind="stat"),
            panel("Running containers",
                  [(f'count(ecs_container_info{{{TASKS}, known_status="RUNNING"}})', "containers")],
                  kind="stat"),
            panel("CPU used", [(f"sum by (task_id) ({cpu})", "{{task_id}}")], unit="none",
                  description="vCPUs (CPU-seconds per second) used by all of the task's containers."),
            panel("CPU of the limit", [(
                f"sum by (task_id) ({cpu}) / on (task_id) "
                f"(sum by (task_id) (ecs_task_cpu_limit_vcpus{{{TASKS}}}) "
                f"or sum by (task_id) (ecs_container_cpu_limit_vcpus{{{TASKS}}}))",
                "{{task_id}}")], unit="percentunit",
                  description="Of the task's CPU limit, or of its containers' limits where the task has none (EC2)."),
            panel("CPU by container", [(f"sum by (task_id, container_name) ({cpu})",
                                        "{{task_id}} {{container_name}}")], unit="none"),
            panel("Memory working set by container", [(
                f"sum by (task_id, container_name) (ecs_container_memory_working_set_bytes{{{TASKS}}})",
                "{{task_id}} {{container_name}}")], unit="bytes",
                  description="What the kernel cannot reclaim: what the memory limit is enforced on."),
            panel("Memory of the limit", [
                (f"sum by (task_id) (ecs_container_memory_working_set_bytes{{{TASKS}}}) / on (task_id) "
                 f"sum by (task_id) (ecs_task_memory_limit_bytes{{{TASKS}}})", "{{task_id}} working set"),
                (f"sum by (task_id) (ecs_container_memory_utilized_bytes{{{TASKS}}}) / on (task_id) "
                 f"sum by (task_id) (ecs_task_memory_limit_bytes{{{TASKS}}})",
                 "{{task_id}} utilized (Container Insights)"),
            ], unit="percentunit"),
            panel("Network", [
                (f"sum by (task_id) (rate(ecs_network_receive_bytes_total{{{TASKS}}}[$__rate_interval]))",
                 "{{task_id}} received"),
                (f"sum by (task_id) (rate(ecs_network_transmit_bytes_total{{{TASKS}}}[$__rate_interval]))",
                 "{{task_id}} sent"),
            ], unit="Bps"),
            panel("Block I/O", [
                (f"sum by (task_id) (rate(ecs_container_block_io_read_bytes_total{{{TASKS}}}[$__rate_interval]))",
                 "{{task_id}} read"),
                (f"sum by (task_id) (rate(ecs_container_block_io_write_bytes_total{{{TASKS}}}[$__rate_interval]))",
                 "{{task_id}} written"),
            ], unit="Bps"),
            panel("Container restarts (1h)", [(
                f"sum by (task_id, container_name) (increase(ecs_container_restarts_total{{{TASKS}}}[1h]))",
                "{{task_id}} {{container_name}}")], unit="short",
                  description="Restarts by the ECS agent under a container restart policy."),
            panel("Ephemeral storage used (Fargate)", [(
                f"sum by (task_id) (ecs_task_ephemeral_storage_used_bytes{{{TASKS}}}) / on (task_id) "
                f"sum by (task_id) (ecs_task_ephemeral_storage_allocated_bytes{{{TASKS}}})",
                "{{task_id}}")], unit="percentunit"),
        ],
    )


def demo_app():
    requests = f"rate(http_requests_total{{{DEMO}}}[$__rate_interval])"
    buckets = f"rate(request_duration_milliseconds_bucket{{{DEMO}}}[$__rate_interval])"
    return dashboard(
        "ecs-prom-demo-app", "Demo app: requests, errors, latency (ecs-prom)",
        "The demo app's request rate, error ratio and latency, as the seeds chart them.",
        [
            query_variable("cluster", "Cluster", 'label_values(http_requests_total{job="demo-app"}, cluster)'),
            query_variable("service", "Service",
                           'label_values(http_requests_total{job="demo-app", cluster=~"$cluster"}, service)'),
        ],
        [
            panel("Requests per second", [(f"sum({requests})", "requests/s")], unit="reqps", kind="stat"),
            panel("Error ratio", [(f'sum({requests.replace(DEMO, DEMO + ", status=~" + chr(34) + "5.." + chr(34))}) / sum({requests})',
                                   "5xx")], unit="percentunit", kind="stat"),
            panel("Requests by path", [(f"sum by (path) ({requests})", "{{path}}")], unit="reqps"),
            panel("Requests by status", [(f"sum by (status) ({requests})", "{{status}}")], unit="reqps"),
            panel("Latency quantiles", [
                (f"histogram_quantile({q}, sum by (le) ({buckets}))", f"p{round(q * 100)}")
                for q in (0.5, 0.95, 0.99)
            ], unit="ms"),
            panel("Served within 500 ms (objective 95%)", [(
                f'sum(rate(request_duration_milliseconds_bucket{{{DEMO}, le=~"500(\\\\.0)?"}}[$__rate_interval])) / '
                f"sum(rate(request_duration_milliseconds_count{{{DEMO}}}[$__rate_interval]))",
                "within 500 ms")], unit="percentunit"),
            panel("p95 latency by path", [(
                f"histogram_quantile(0.95, sum by (path, le) ({buckets}))", "{{path}}")], unit="ms"),
        ],
    )


def self_monitoring():
    return dashboard(
        "ecs-prom-self", "ecs-prom itself",
        "Is the monitoring working: exporter sidecars, their metadata reads, ecs-prom discovery, "
        "and ecs-prom agents (sidecars and the cluster agent).",
        [],
        [
            panel("Exporters up", [('sum(up{job="ecs-exporter"})', "up"),
                                   ('count(up{job="ecs-exporter"})', "scraped")], kind="stat"),
            panel("Discovery targets", [("sum(ecs_prom_discovery_targets)", "targets")], kind="stat"),
            panel("Exporter metadata reads failing", [(
                "count by (collector) (ecs_exporter_collector_success == 0) or "
                "sum by (collector) (0 * ecs_exporter_collector_success)", "{{collector}}")],
                  description="Exporters whose last request to the task metadata endpoint failed, per collector."),
            panel("Exporter metadata read time (max)", [(
                "max by (collector) (ecs_exporter_collector_duration_seconds)", "{{collector}}")], unit="s"),
            panel("Exporter resident memory", [(
                'process_resident_memory_bytes{job="ecs-exporter"}', "{{instance}}")], unit="bytes"),
            panel("Discovery targets per source", [(
                "sum by (source, name) (ecs_prom_discovery_targets)", "{{source}} {{name}}")]),
            panel("Discovery sources up", [(
                "min by (source, name) (ecs_prom_discovery_source_up)", "{{source}} {{name}}")]),
            panel("Since discovery's last good refresh", [(
                "time() - max by (instance) (ecs_prom_discovery_last_success_timestamp_seconds)",
                "{{instance}}")], unit="s"),
            panel("Discovery refresh duration", [(
                "max by (instance) (ecs_prom_discovery_refresh_duration_seconds)", "{{instance}}")], unit="s"),
            panel("AWS requests by operation and outcome", [(
                "sum by (operation, outcome) (rate(ecs_prom_discovery_aws_requests_total[$__rate_interval]))",
                "{{operation}} {{outcome}}")], unit="reqps"),
            panel("AWS throttling", [(
                'sum by (operation) (rate(ecs_prom_discovery_aws_requests_total{outcome="throttled"}[$__rate_interval]))',
                "{{operation}}")], unit="reqps"),
            # The agents' self-metrics as they send them, each scraping itself: their `job` is
            # "ecs-prom-agent", and `scrape_job` names the job a series is about.
            panel("Agents", [("count(ecs_prom_agent_build_info)", "agents")], kind="stat"),
            panel("Agent targets down", [('sum(ecs_prom_agent_targets{health="down"})', "down")],
                  kind="stat"),
            panel("Agent scrape failures by job", [(
                "sum by (scrape_job) ("
                + per_second('ecs_prom_agent_scrapes_total{result="failure"}') + ")",
                "{{scrape_job}}")], unit="cps",
                  description="Failed scrapes per second, by the job scraped (a target down, a timeout, "
                              "a malformed body, a sample or label limit)."),
            panel("Agent remote-write lag (max)", [(
                "max by (cluster, service) (ecs_prom_agent_remote_lag_seconds)", "{{service}}")], unit="s",
                  description="Newest sample queued minus newest sample the receiver accepted, of the "
                              "agents of each service. Samples unsent after an hour are given up."),
            panel("Agent queue on disk", [(
                "sum by (cluster, service) (ecs_prom_agent_queue_bytes)", "{{service}}")], unit="bytes",
                  description="What the agents of each service hold on disk for their receivers, "
                              "bounded by --storage.max-bytes per agent."),
            panel("Agent samples dropped by reason", [(
                "sum by (reason) (" + per_second("ecs_prom_agent_remote_samples_dropped_total") + ")",
                "{{reason}}")], unit="cps",
                  description="Samples given up per second: too_old (unsent after an hour), rejected "
                              "(a 4xx), queue_full (the disk bound), corrupt (a damaged record)."),
            panel("Agent remote-write requests by result", [(
                "sum by (result) (" + per_second("ecs_prom_agent_remote_requests_total") + ")",
                "{{result}}")], unit="reqps",
                  description="success: a 2xx; failure: any other answer, or none (failures are retried "
                              "unless a 4xx other than 429)."),
            panel("Agent samples scraped, sent and retried", [
                ("sum(" + per_second("ecs_prom_agent_samples_scraped_total") + ")", "scraped"),
                ("sum(" + per_second("ecs_prom_agent_remote_samples_sent_total") + ")", "sent"),
                ("sum(" + per_second("ecs_prom_agent_remote_samples_retried_total") + ")", "retried"),
            ], unit="cps"),
            panel("Agent resident memory", [(
                'process_resident_memory_bytes{job="ecs-prom-agent"}', "{{service}} {{task_id}}")],
                  unit="bytes"),
        ],
    )


DASHBOARDS = {
    "ecs-overview.json": ecs_overview,
    "demo-app.json": demo_app,
    "ecs-prom.json": self_monitoring,
}


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, build in DASHBOARDS.items():
        path = HERE / "dashboards" / name
        text = json.dumps(build(), indent=2) + "\n"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date (run {pathlib.Path(__file__).name}): {', '.join(stale)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""AWS API calls per refresh of `ecs-prom discovery` for a large ECS cluster, next to what the
re-describing peers need, and the refresh time.

Builds 1,000 running tasks in 20 services with 50 task definitions in a local moto_server
(with boto3), runs `ecs-prom discovery --ecs.cluster bench` against it, reads its
`ecs_prom_discovery_aws_requests_total` after the first (cold) refresh and after three more
(warm) refreshes, and prints a table.

    python3 bench/discovery.py [--binary target/release/ecs-prom] [--tasks 1000]

Needs moto_server and boto3 on PATH (./scripts/test installs them into a virtualenv:
`export PATH=~/.cache/ecs-prom/venv/bin:$PATH`). Talks only to 127.0.0.1.
"""
import argparse
import json
import math
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request

import boto3


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"nothing listens on {port}")


def build_cluster(url, tasks, services, definitions):
    args = dict(endpoint_url=url, region_name="us-east-1",
                aws_access_key_id="testing", aws_secret_access_key="testing")
    request = urllib.request.Request(
        url + "/moto-api/state-manager/set-transition", method="POST",
        data=json.dumps({"model_name": "ecs::task",
                         "transition": {"progression": "manual", "times": 1000000}}).encode())
    urllib.request.urlopen(request).read()
    ec2 = boto3.client("ec2", **args)
    ecs = boto3.client("ecs", **args)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/17")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="t", Description="t", VpcId=vpc)["GroupId"]
    ecs.create_cluster(clusterName="bench")
    for d in range(definitions):
        ecs.register_task_definition(
            family=f"app-{d}", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
            cpu="256", memory="512",
            containerDefinitions=[{"name": "app", "image": "app", "memory": 256,
                                   "dockerLabels": {"PROMETHEUS_EXPORTER_PORT": "8080"}}])
    network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}
    started = 0
    while started < tasks:
        batch = min(10, tasks - started)
        ecs.run_task(cluster="bench", taskDefinition=f"app-{started // 10 % definitions}",
                     count=batch, launchType="FARGATE", networkConfiguration=network,
                     group=f"service:svc-{started // 10 % services}")
        started += batch


def scrape(port):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    calls, values = {}, {}
    for line in text.splitlines():
        m = re.match(r'ecs_prom_discovery_aws_requests_total\{service="(\w+)",operation="(\w+)",outcome="(\w+)"\} (\S+)', line)
        if m:
            calls[m.group(2)] = calls.get(m.group(2), 0) + float(m.group(4))
            continue
        m = re.match(r"(ecs_prom_discovery_\w+)(\{[^}]*\})? (\S+)", line)
        if m:
            values[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return calls, values


def wait_refreshes(port, n, seconds=300):
    deadline = time.time() + seconds
    while time.time() < deadline:
        calls, values = scrape(port)
        if values.get("ecs_prom_discovery_refreshes_total", 0) >= n:
            return calls, values
        time.sleep(0.05)
    sys.exit(f"fewer than {n} refreshes after {seconds}s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="target/release/ecs-prom")
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--definitions", type=int, default=50)
    parser.add_argument("--warm-refreshes", type=int, default=3)
    options = parser.parse_args()

    moto_port = free_port()
    moto = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(moto_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    discovery = None
    try:
        wait_port(moto_port)
        url = f"http://127.0.0.1:{moto_port}"
        t0 = time.time()
        build_cluster(url, options.tasks, options.services, options.definitions)
        print(f"# built {options.tasks} tasks, {options.services} services, "
              f"{options.definitions} task definitions in moto in {time.time() - t0:.0f}s")
        port = free_port()
        env = dict(os.environ, AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="testing",
                   AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
                   AWS_EC2_METADATA_DISABLED="true")
        discovery = subprocess.Popen(
            [options.binary, "discovery", "--ecs.cluster", "bench", "--refresh.interval", "2s",
             "--web.listen-address", f"127.0.0.1:{port}", "--log.level", "warn"],
            env=env)
        wait_port(port)
        cold_calls, cold = wait_refreshes(port, 1)
        warm_calls, warm = wait_refreshes(port, 1 + options.warm_refreshes)
        per_warm = {op: (warm_calls.get(op, 0) - cold_calls.get(op, 0)) / options.warm_refreshes
                    for op in set(warm_calls) | set(cold_calls)}
        targets = warm.get('ecs_prom_discovery_targets{source="ecs",name="bench"}', 0)
        cold_duration = cold["ecs_prom_discovery_refresh_duration_seconds"]
        warm_duration = warm["ecs_prom_discovery_refresh_duration_seconds"]
    finally:
        if discovery:
            discovery.terminate()
            discovery.wait()
        moto.terminate()
        moto.wait()

    n, defs, svcs = options.tasks, options.definitions, options.services
    pages = math.ceil(n / 100)
    ops = ["ListTasks", "DescribeTasks", "DescribeTaskDefinition", "DescribeServices"]
    # What the domain notes establish about the peers: they re-describe every task every
    # refresh. Whether they cache task definitions or describe services varies, so this is a
    # lower bound.
    peer = {"ListTasks": pages, "DescribeTasks": pages}
    print(f"\n{n} tasks ({targets:.0f} targets), {svcs} services, {defs} task definitions; "
          f"AWS API calls per refresh\n")
    print("| | " + " | ".join(ops) + " | total | refresh time |")
    print("|---|" + "---|" * (len(ops) + 2))

    def row(name, calls, duration):
        total = sum(calls.get(op, 0) for op in ops)
        cells = " | ".join(f"{calls.get(op, 0):g}" for op in ops)
        print(f"| {name} | {cells} | {total:g} | {duration} |")

    row("ecs-prom, cold (measured, moto)", cold_calls, f"{cold_duration:.2f} s")
    row("ecs-prom, warm (measured, moto)", per_warm, f"{warm_duration:.3f} s")
    row("ecs-prom, warm on AWS (ListTasks pages of 100)", {"ListTasks": pages}, "")
    row("re-describing peer, every refresh (formula, at least)", peer, "")
    print("\nmoto answers ListTasks in one page, so measured ListTasks is 1 per refresh where AWS "
          f"needs {pages} pages of 100. The peers (Prometheus' ECS SD, ecsobserver, the CloudWatch "
          "agent, prometheus-ecs-discovery; domain notes section 3) list and re-describe every "
          "task every refresh: at least ListTasks pages + DescribeTasks batches of 100, plus "
          "their task definition and service look-ups. The cold refresh is paced by "
          "--ecs.requests-per-second (default 10).")


if __name__ == "__main__":
    main()

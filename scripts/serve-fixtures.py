#!/usr/bin/env python3
"""Serve a captured ECS task-metadata fixture as a local Task Metadata Endpoint v4.

Usage: scripts/serve-fixtures.py [--port 8912] [--fixture fargate]

Serves /task and /task/stats (and /tasks, /tasks/stats for the instance fixture) from
fixtures/ecs-metadata/ under http://127.0.0.1:PORT/v4/<fixture>. Standard library only.
"""
import argparse
import http.server
import pathlib

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "ecs-metadata"

# fixture name -> (metadata file, stats file, scope)
SETS = {
    "fargate": ("ecs_exporter-fargate_task_metadata.json", "ecs_exporter-fargate_task_stats.json", "task"),
    "ec2-bridge": ("ecs_exporter-ec2_task_metadata.json", "ecs_exporter-ec2_task_stats.json", "task"),
    "ec2-bridge-v1": ("otel-task_metadata.json", "otel-task_stats.json", "task"),
    "fargate-exited": ("otel-task_metadata2.json", "otel-task_stats2.json", "task"),
    "ec2-awsvpc": ("aws-docs-ec2-awsvpc-task_metadata.json", "aws-docs-ec2-awsvpc-task_stats.json", "task"),
    "windows": ("ecs-prom-windows_task_metadata.json", "integrations-core-ecs_fargate-stats_windows.json", "task"),
    "managed-instances": ("otel-instance_tasks_metadata.json", "otel-instance_tasks_stats.json", "instance"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8912)
    parser.add_argument("--fixture", choices=sorted(SETS), default="fargate")
    args = parser.parse_args()
    metadata, stats, scope = SETS[args.fixture]
    prefix = f"/v4/{args.fixture}"
    suffix = "s" if scope == "instance" else ""
    routes = {
        f"{prefix}/task{suffix}": (FIXTURES / metadata).read_bytes(),
        f"{prefix}/task{suffix}/stats": (FIXTURES / stats).read_bytes(),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Send headers and body in one write, as the ECS agent does: separate small writes
        # meet Nagle's algorithm and the client's delayed ACK, which add 40 ms per response.
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def do_GET(self):
            body = routes.get(self.path.rstrip("/"))
            status = 200 if body is not None else 404
            body = body if body is not None else b'{"error":"not found"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"ECS_CONTAINER_METADATA_URI_V4=http://127.0.0.1:{args.port}{prefix}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()

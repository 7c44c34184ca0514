"""deploy/ checked with the real tools, as ./scripts/test runs it:

    ECS_PROM_BINARY=target/debug/ecs-prom python3 -m unittest discover -s deploy/tests -v

- promtool: every Prometheus configuration, the rule files, and their unit tests, which must
  cover every alert both firing and not firing;
- every PromQL expression of the rules and the dashboards parses and returns data from a real
  Prometheus fed by `ecs-prom demo --prometheus --discovery` (the exceptions are listed below,
  each with its reason);
- the dashboards are what deploy/grafana/generate.py writes;
- cfn-lint passes every CloudFormation template with no errors and no warnings, and every
  container running the ecs-prom image uses only flags, values and variables the binary's own
  parser accepts.

Needs prometheus and promtool (Debian's prometheus package), moto_server, cfn-lint and PyYAML
(the virtualenv ./scripts/test makes) and the ecs-prom binary.
"""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
BINARY = os.environ.get("ECS_PROM_BINARY", str(ROOT / "target" / "debug" / "ecs-prom"))

# Expressions that return nothing from the demo, and why; each returns data on AWS.
NO_DATA_IN_THE_DEMO = {
    'process_resident_memory_bytes{job="ecs-exporter"}':
        "the demo's exporters run inside the demo's process and leave out process_*; "
        "an exporter sidecar exports them",
    'sum by (operation) (rate(ecs_prom_discovery_aws_requests_total{outcome="throttled"}[1m]))':
        "moto_server never throttles; AWS does, and then the series appears",
}


def promtool(*args):
    return subprocess.run(["promtool", *args], capture_output=True, text=True, check=False)


def rule_files():
    return sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))


def rules():
    """Every rule of every rule file."""
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            yield from group["rules"]


def with_bool(expression):
    """The expression with `bool` after its last top-level comparison, so it returns its
    series (as 0 or 1) whether or not the threshold is crossed."""
    depth = 0
    quote = None
    last = None
    i = 0
    while i < len(expression):
        c = expression[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and expression[i:i + 2] in ("==", "!=", ">=", "<="):
            last = i + 2
            i += 1
        elif depth == 0 and c in "<>":
            last = i + 1
        i += 1
    if last is None:
        raise ValueError(f"no comparison in {expression!r}")
    return f"{expression[:last]} bool{expression[last:]}"


def dashboard_expressions():
    """(dashboard, panel title, expression) for every panel target, and every variable's query
    as a selector, with the Grafana variables given values that select everything."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for variable in board["templating"]["list"]:
            if variable["type"] != "query":
                continue
            query = variable["query"]["query"]
            inner = query.removeprefix("label_values(").removesuffix(")")
            selector, label = inner.rsplit(",", 1)
            found.append((path.name, f"variable {variable['name']}",
                          f"count by ({label.strip()}) ({selector})"))
        for panel in board["panels"]:
            for target in panel["targets"]:
                found.append((path.name, panel["title"], target["expr"]))
    return [
        (board, title, expression.replace("$__rate_interval", "1m")
         .replace('"$cluster"', '".*"').replace('"$service"', '".*"').replace('"$task"', '".*"'))
        for board, title, expression in found
    ]


class PromtoolTest(unittest.TestCase):
    def test_every_configuration_passes_promtool_check_config(self):
        configs = sorted(PROMETHEUS_DIR.glob("prometheus-*.yml"))
        self.assertGreaterEqual(len(configs), 3)
        for config in configs:
            with self.subTest(config=config.name):
                checked = promtool("check", "config", str(config))
                self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)

    def test_the_rules_pass_promtool_check_rules(self):
        checked = promtool("check", "rules", *map(str, rule_files()))
        self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)

    def test_the_rule_unit_tests_pass(self):
        tests = sorted((PROMETHEUS_DIR / "tests").glob("*.test.yml"))
        self.assertTrue(tests)
        tested = promtool("test", "rules", *map(str, tests))
        self.assertEqual(tested.returncode, 0, tested.stdout + tested.stderr)

    def test_every_alert_is_tested_firing_and_not_firing(self):
        firing, quiet = set(), set()
        for path in (PROMETHEUS_DIR / "tests").glob("*.test.yml"):
            for test in yaml.safe_load(path.read_text())["tests"]:
                for case in test.get("alert_rule_test", []):
                    (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
        alerts = {rule["alert"] for rule in rules() if "alert" in rule}
        self.assertGreaterEqual(len(alerts), 10)
        self.assertEqual(alerts - firing, set(), "never tested firing")
        self.assertEqual(alerts - quiet, set(), "never tested not firing")


class CloudFormationTest(unittest.TestCase):
    def test_cfn_lint_passes_every_template_with_no_errors_and_no_warnings(self):
        templates = sorted((ROOT / "deploy" / "cloudformation").glob("*.yml"))
        self.assertGreaterEqual(len(templates), 4)
        # Informational findings (I...) are not failures; errors and warnings are.
        linted = subprocess.run(["cfn-lint", "--format", "parseable", *map(str, templates)],
                                capture_output=True, text=True, check=False)
        findings = [line for line in linted.stdout.splitlines() if ":E" in line or ":W" in line]
        self.assertEqual(findings, [], linted.stdout + linted.stderr)
        self.assertIn(linted.returncode, (0, 8), linted.stdout + linted.stderr)


def ecs_prom_containers():
    """(template, container name, argument lists) for every container of the templates that
    runs the ecs-prom image: its command, and its health check's command after the binary.
    Template values are resolved to something the parser can judge: a parameter's default, a
    `!Sub` with each variable replaced by `x`, any other reference by `x`."""
    from cfnlint.decode import decode

    def resolve(value, parameters):
        if isinstance(value, str):
            return value
        if "Ref" in value:
            return str(parameters.get(value["Ref"], {}).get("Default", "x"))
        if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
            return re.sub(r"\$\{[^}]*\}", "x", value["Fn::Sub"])
        return "x"

    found = []
    for path in sorted((ROOT / "deploy" / "cloudformation").glob("*.yml")):
        template, problems = decode(str(path))
        assert not problems, problems
        parameters = template.get("Parameters", {})
        for resource in template["Resources"].values():
            if resource["Type"] != "AWS::ECS::TaskDefinition":
                continue
            for container in resource["Properties"]["ContainerDefinitions"]:
                if container["Image"] != {"Ref": "Image"}:
                    continue
                commands = [[resolve(v, parameters) for v in container["Command"]]]
                health = container.get("HealthCheck", {}).get("Command", [])
                if health:
                    assert health[:2] == ["CMD", "/usr/local/bin/ecs-prom"], health
                    commands.append(health[2:])
                environment = [e["Name"] for e in container.get("Environment", [])]
                found.append((path.name, container["Name"], commands, environment))
    return found


class TaskDefinitionsTest(unittest.TestCase):
    def test_ecs_prom_containers_use_only_what_the_binary_accepts(self):
        containers = ecs_prom_containers()
        self.assertGreaterEqual(len(containers), 4)
        for template, name, commands, environment in containers:
            for command in commands:
                with self.subTest(template=template, container=name, command=command):
                    # The parser rejects unknown flags and bad values before it reaches the
                    # final --help, which then stops it before anything runs.
                    parsed = subprocess.run([BINARY, *command, "--help"], capture_output=True,
                                            text=True, check=False, env={})
                    self.assertEqual(parsed.returncode, 0, parsed.stderr)
            subcommand_help = subprocess.run([BINARY, commands[0][0], "--help"], capture_output=True,
                                             text=True, check=False, env={}).stdout
            for variable in environment:
                with self.subTest(template=template, container=name, variable=variable):
                    self.assertTrue(variable.startswith("AWS_") or f"[env: {variable}=" in subcommand_help,
                                    f"{variable} is not a variable of ecs-prom {commands[0][0]}")

    def test_the_parser_check_catches_an_unknown_flag(self):
        parsed = subprocess.run([BINARY, "discovery", "--cloudmap.namespaces", "x", "--help"],
                                capture_output=True, text=True, check=False, env={})
        self.assertNotEqual(parsed.returncode, 0)


class ScriptsTest(unittest.TestCase):
    def test_the_scripts_parse_and_deploy_every_template(self):
        for script in ("deploy.sh", "destroy.sh"):
            checked = subprocess.run(["bash", "-n", str(ROOT / "deploy" / script)],
                                     capture_output=True, text=True, check=False)
            self.assertEqual(checked.returncode, 0, checked.stderr)
        deploy = (ROOT / "deploy" / "deploy.sh").read_text()
        destroy = (ROOT / "deploy" / "destroy.sh").read_text()
        deployed = re.findall(r"^(?:  )?deploy ([a-z-]+) (\S+\.yml)", deploy, re.MULTILINE)
        templates = sorted(p.name for p in (ROOT / "deploy" / "cloudformation").glob("*.yml"))
        self.assertEqual([template for _, template in deployed], templates, "in file order")
        destroyed = re.search(r"^for stack in ([a-z -]+); do$", destroy, re.MULTILINE).group(1).split()
        # Every stack deploy.sh may create, deleted in the reverse of deploy.sh's order.
        self.assertEqual(destroyed, [stack for stack, _ in reversed(deployed)])

    def test_no_account_id_or_region_is_written_into_deploy(self):
        region = re.compile(r"\b(?:us|eu|ap|sa|ca|me|af|il|mx)-(?:gov-)?[a-z]+-\d\b")
        account = re.compile(r"(?<![\d.])\d{12}(?![\d.])")
        for path in sorted((ROOT / "deploy").rglob("*")):
            if path.is_file() and "tests" not in path.relative_to(ROOT / "deploy").parts:
                text = path.read_text()
                with self.subTest(file=str(path.relative_to(ROOT))):
                    self.assertIsNone(region.search(text))
                    self.assertIsNone(account.search(text))


class DashboardsTest(unittest.TestCase):
    def test_the_dashboards_are_generated_from_generate_py(self):
        checked = subprocess.run([sys.executable, str(ROOT / "deploy/grafana/generate.py"), "--check"],
                                 capture_output=True, text=True, check=False)
        self.assertEqual(checked.returncode, 0, checked.stderr)

    def test_every_dashboard_takes_its_data_source_from_a_variable(self):
        for path in sorted(DASHBOARDS.glob("*.json")):
            board = json.loads(path.read_text())
            names = [v["name"] for v in board["templating"]["list"]]
            self.assertIn("datasource", names, path.name)
            for panel in board["panels"]:
                self.assertEqual(panel["datasource"]["uid"], "${datasource}", f"{path.name}: {panel['title']}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DemoPrometheusTest(unittest.TestCase):
    """One `ecs-prom demo --prometheus --discovery` for every expression: its Prometheus loads
    the rule files of deploy/prometheus/rules/ and scrapes the tasks, the exporters and
    discovery."""

    @classmethod
    def setUpClass(cls):
        address = f"127.0.0.1:{free_port()}"
        cls.url = f"http://{address}"
        cls.demo = subprocess.Popen(
            [BINARY, "demo", "--prometheus", "--discovery", "--prometheus.listen-address", address,
             "--prometheus.scrape-interval", "1s", "--duration", "10m", "--summary.format", "lines",
             "--summary.interval", "1m", "--log.level", "warn"],
            stdout=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{cls.url}/-/ready", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline or cls.demo.poll() is not None:
                    cls.tearDownClass()
                    raise RuntimeError("the demo's Prometheus did not become ready")
                time.sleep(0.5)

    @classmethod
    def tearDownClass(cls):
        if cls.demo.poll() is None:
            cls.demo.terminate()
            try:
                cls.demo.wait(timeout=30)
            except subprocess.TimeoutExpired:
                cls.demo.kill()

    def query(self, expression):
        """The series the instant query returns; fails the test if Prometheus rejects it."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                return json.load(answer)["data"]["result"]
        except urllib.error.HTTPError as error:
            self.fail(f"{expression}: HTTP {error.code}: {error.read().decode()}")

    def assert_returns_data(self, expressions):
        """Each of (what, expression) returns data within 90 s of the demo's start, unless it
        is a listed exception, which must then return nothing (else the list is stale)."""
        deadline = time.monotonic() + 90
        waiting = dict(expressions)
        while waiting and time.monotonic() < deadline:
            for what, expression in list(waiting.items()):
                if expression not in NO_DATA_IN_THE_DEMO and self.query(expression):
                    del waiting[what]
            if all(expression in NO_DATA_IN_THE_DEMO for expression in waiting.values()):
                break
            time.sleep(2)
        for what, expression in waiting.items():
            with self.subTest(what=what):
                if expression in NO_DATA_IN_THE_DEMO:
                    self.assertEqual(self.query(expression), [], f"{expression} now returns data")
                else:
                    self.fail(f"{what}: no data for {expression}")

    def test_every_recording_rule_returns_data(self):
        records = [(rule["record"], rule["record"]) for rule in rules() if "record" in rule]
        self.assertGreaterEqual(len(records), 15)
        self.assert_returns_data(records)

    def test_every_alert_expression_returns_data(self):
        alerts = [(rule["alert"], with_bool(rule["expr"].strip())) for rule in rules() if "alert" in rule]
        self.assert_returns_data(alerts)

    def test_every_dashboard_expression_returns_data(self):
        expressions = dashboard_expressions()
        self.assertGreaterEqual(len(expressions), 30)
        self.assert_returns_data([(f"{board}: {title}: {expr}", expr) for board, title, expr in expressions])


class WithBoolTest(unittest.TestCase):
    def test_bool_goes_after_the_last_top_level_comparison(self):
        self.assertEqual(with_bool('up{job=~"a|b"} == 0'), 'up{job=~"a|b"} == bool 0')
        self.assertEqual(with_bool("time() - x > 900"), "time() - x > bool 900")
        self.assertEqual(with_bool("min by (a) (x) == 0"), "min by (a) (x) == bool 0")
        self.assertEqual(with_bool('increase(x{le="<1"}[15m]) > 0'), 'increase(x{le="<1"}[15m]) > bool 0')
        self.assertEqual(with_bool("r < 0.95"), "r < bool 0.95")


if __name__ == "__main__":
    unittest.main()

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
  parser accepts and does not run as root; a volume prepared by an init container is mounted
  only after it succeeded, and (as root only) the preparation lets discovery write and
  Prometheus read, and each agent write its queue and read its configuration; an agent's queue
  and configuration are on its volumes; the cluster agent leaves the tasks that carry their own
  agent sidecar to it;
- the AMP alert manager definition passes `amtool check-config`, routes every alert to the
  stack's SNS topic, and its templates render with `amtool template render`.

Needs prometheus and promtool (Debian's prometheus package), amtool (Debian's
prometheus-alertmanager package), moto_server, cfn-lint and PyYAML (the virtualenv
./scripts/test makes) and the ecs-prom binary.
"""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import tempfile
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

# Series of what one mode of the demo does not run, by a part of the expressions that read
# them, and why: those expressions return nothing from that mode (checked, so that an entry goes
# once the demo runs it), and data on AWS.
NOT_RUN_WITH_DISCOVERY = {
    "ecs_prom_agent_": "with --discovery the demo runs no ecs-prom agent; on AWS every agent sends "
                       "its own (--agent runs them)",
    'job="ecs-prom-agent"': "with --discovery the demo's Prometheus scrapes no agent; on AWS every "
                            "agent scrapes itself and the cluster agent scrapes the sidecars",
}
NOT_RUN_WITH_AGENTS = {
    "ecs_prom_discovery_": "with --agent the agents find their tasks themselves and no ecs-prom "
                           "discovery runs (--discovery runs it)",
    'job="ecs-prom-discovery"': "with --agent no ecs-prom discovery runs",
}


def no_data_in_the_demo(expression, not_run):
    """Whether `expression` is expected to return nothing from a demo that does not run
    `not_run`."""
    return expression in NO_DATA_IN_THE_DEMO or any(part in expression for part in not_run)


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


def cloudformation_templates():
    """(path, template) for every CloudFormation template, as cfn-lint reads it."""
    from cfnlint.decode import decode

    for path in sorted((ROOT / "deploy" / "cloudformation").glob("*.yml")):
        template, problems = decode(str(path))
        assert not problems, problems
        yield path, template


def task_containers(template):
    """Every container definition of every task definition of `template`."""
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::ECS::TaskDefinition":
            yield from resource["Properties"]["ContainerDefinitions"]


def resolve(value, parameters):
    """A template value as a string: a parameter's default for a `!Ref`, a `!Sub` with each
    variable replaced by `x`, `x` for anything else."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return str(parameters.get(value["Ref"], {}).get("Default", "x"))
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return re.sub(r"\$\{[^}]*\}", "x", value["Fn::Sub"])
    return "x"


def runs_as_root(container, parameters):
    """Whether a container definition runs as root; without `User` the image's own user runs,
    which for the ecs-prom image is non-root (the Dockerfile test checks that)."""
    if "User" not in container:
        return False
    user = resolve(container["User"], parameters).split(":")[0]
    return user in ("0", "root")


def ecs_prom_containers():
    """(template, container name, argument lists) for every container of the templates that
    runs the ecs-prom image: its command, and its health check's command after the binary.
    Template values are resolved to something the parser can judge: a parameter's default, a
    `!Sub` with each variable replaced by `x`, any other reference by `x`."""
    found = []
    for path, template in cloudformation_templates():
        parameters = template.get("Parameters", {})
        for container in task_containers(template):
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


class ContainerUsersTest(unittest.TestCase):
    def test_no_ecs_prom_container_runs_as_root(self):
        """Every container of the ecs-prom image runs as long as its task (essential or, like
        the exporter sidecar, not), so none may run as root."""
        checked = 0
        for path, template in cloudformation_templates():
            parameters = template.get("Parameters", {})
            for container in task_containers(template):
                if container["Image"] != {"Ref": "Image"}:
                    continue
                checked += 1
                with self.subTest(template=path.name, container=container["Name"]):
                    self.assertFalse(runs_as_root(container, parameters), container.get("User"))
        self.assertGreaterEqual(checked, 4)

    def test_the_root_check_knows_root_when_it_sees_it(self):
        for user in ("0", "root", "0:0", "root:root", "0:65532"):
            self.assertTrue(runs_as_root({"User": user}, {}), user)
        self.assertTrue(runs_as_root({"User": {"Ref": "U"}}, {"U": {"Default": "0"}}))
        for container in ({}, {"User": "65532:65532"}, {"User": "65534"}, {"User": "10:0"}):
            self.assertFalse(runs_as_root(container, {}), container)

    def test_the_image_runs_as_a_non_root_user(self):
        users = re.findall(r"^USER\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
        self.assertTrue(users, "the Dockerfile sets no USER")
        self.assertNotIn(users[-1].split(":")[0], ("0", "root"))

    def test_containers_sharing_a_prepared_volume_wait_for_its_preparation(self):
        """A volume a short-lived container prepares (as root, the only container that may) is
        mounted by the others only once that container has exited successfully."""
        prepared = 0
        for path, template in cloudformation_templates():
            parameters = template.get("Parameters", {})
            containers = list(task_containers(template))
            for init in containers:
                if init.get("Essential", True):
                    continue
                volumes = {m["SourceVolume"] for m in init.get("MountPoints", [])}
                if not volumes or not runs_as_root(init, parameters):
                    continue
                prepared += 1
                for other in containers:
                    if other is init or not volumes & {m["SourceVolume"] for m in other.get("MountPoints", [])}:
                        continue
                    with self.subTest(template=path.name, container=other["Name"]):
                        self.assertIn({"ContainerName": init["Name"], "Condition": "SUCCESS"},
                                      other.get("DependsOn", []))
        self.assertGreaterEqual(prepared, 1)

    @unittest.skipUnless(hasattr(os, "geteuid") and os.geteuid() == 0,
                         "changing owners and switching users needs root, as on Fargate")
    def test_the_prepared_volume_lets_discovery_write_and_prometheus_read(self):
        """The init container's own command run on a directory made as Fargate makes the volume
        (root, 0755); then files written as discovery's user, read as Prometheus' user."""
        _, template = next((p, t) for p, t in cloudformation_templates() if p.name == "6-prometheus.yml")
        containers = {c["Name"]: c for c in task_containers(template)}
        init = containers["config-volume-init"]
        self.assertEqual(init["EntryPoint"], ["/bin/sh", "-c"])
        mount = init["MountPoints"][0]["ContainerPath"]

        def ids(container):
            uid, gid = container["User"].split(":")
            return int(uid), int(gid)

        def run_as(container, script):
            uid, gid = ids(containers[container])
            ran = subprocess.run(["/bin/sh", "-c", script], user=uid, group=gid, extra_groups=[],
                                 capture_output=True, text=True, check=False)
            self.assertEqual(ran.returncode, 0, ran.stderr)
            return ran.stdout.split()

        with tempfile.TemporaryDirectory() as scratch:
            os.chmod(scratch, 0o755)
            volume = os.path.join(scratch, "config")
            os.mkdir(volume, 0o755)
            prepared = subprocess.run(["/bin/sh", "-c", init["Command"][0].replace(mount, volume)],
                                      capture_output=True, text=True, check=False)
            self.assertEqual(prepared.returncode, 0, prepared.stderr)
            # What discovery does: a temporary file in the directory with the file's mode (here
            # through the umask), renamed over the target.
            written = run_as("ecs-prom-discovery", f"""set -e
cd '{volume}'
for file in targets-0644:0133 config-0640:0137 config-0600:0177; do
  (umask "${{file#*:}}" && echo x > ".${{file%:*}}.tmp")
  mv ".${{file%:*}}.tmp" "${{file%:*}}"
  stat -c %g "${{file%:*}}"
done
""")
            prometheus_gid = ids(containers["prometheus"])[1]
            self.assertEqual(written, [str(prometheus_gid)] * 3, "files take the volume's group")
            readable = run_as("prometheus", f"""cd '{volume}'
for file in *; do
  if cat "$file" >/dev/null 2>&1; then echo "$file=read"; else echo "$file=denied"; fi
done
""")
            self.assertEqual(readable, ["config-0600=denied", "config-0640=read", "targets-0644=read"])


def alertmanager_definition():
    """The AMP workspace's alert manager definition from 2-monitoring.yml, as the template
    writes it (a `!Sub` text), with a topic ARN and a region in place of its variables."""
    _, template = next((p, t) for p, t in cloudformation_templates() if p.name == "2-monitoring.yml")
    text = template["Resources"]["Workspace"]["Properties"]["AlertManagerDefinition"]["Fn::Sub"]
    variables = set(re.findall(r"\$\{([^}]*)\}", text))
    assert variables == {"AlertTopic", "AWS::Region"}, variables
    return (text.replace("${AlertTopic}", TOPIC_ARN).replace("${AWS::Region}", "us-east-1"), template)


TOPIC_ARN = "arn:aws:sns:us-east-1:000000000000:ecsprom-monitoring-AlertTopic-0"


def amtool(*args):
    try:
        return subprocess.run(["amtool", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise AssertionError("amtool is missing: install Debian's prometheus-alertmanager package") from None


class AlertManagerTest(unittest.TestCase):
    def setUp(self):
        text, self.template = alertmanager_definition()
        definition = yaml.safe_load(text)
        # AMP's format: the Alertmanager configuration as text under one key.
        self.assertEqual(set(definition), {"alertmanager_config"})
        self.config_text = definition["alertmanager_config"]
        self.config = yaml.safe_load(self.config_text)
        scratch = tempfile.TemporaryDirectory()
        self.addCleanup(scratch.cleanup)
        self.scratch = pathlib.Path(scratch.name)
        self.config_file = self.scratch / "alertmanager.yml"
        self.config_file.write_text(self.config_text)

    def test_the_configuration_passes_amtool_check_config(self):
        checked = amtool("check-config", str(self.config_file))
        self.assertEqual(checked.returncode, 0, checked.stdout + checked.stderr)

    def test_every_alert_goes_to_the_stacks_topic_with_sigv4_in_the_stacks_region(self):
        receivers = {r["name"]: r for r in self.config["receivers"]}
        alerts = [rule for rule in rules() if "alert" in rule]
        self.assertGreaterEqual(len(alerts), 10)
        for rule in alerts:
            labels = [f"alertname={rule['alert']}", *(f"{k}={v}" for k, v in rule.get("labels", {}).items())]
            routed = amtool("config", "routes", "test", "--config.file", str(self.config_file), *labels)
            self.assertEqual(routed.returncode, 0, routed.stdout + routed.stderr)
            names = routed.stdout.split()
            with self.subTest(alert=rule["alert"]):
                self.assertTrue(names)
                for name in names:
                    sns = receivers[name].get("sns_configs", [])
                    self.assertTrue(sns, f"{name} sends nothing to SNS")
                    for config in sns:
                        self.assertEqual(config["topic_arn"], TOPIC_ARN)
                        self.assertEqual(config["sigv4"], {"region": "us-east-1"})
                        self.assertTrue(config.get("send_resolved"))

    def render(self, text, data):
        (self.scratch / "none.tmpl").write_text("")
        (self.scratch / "data.json").write_text(json.dumps(data))
        rendered = amtool("template", "render", "--template.glob", str(self.scratch / "none.tmpl"),
                          "--template.data", str(self.scratch / "data.json"), "--template.text", text)
        self.assertEqual(rendered.returncode, 0, rendered.stderr)
        return rendered.stdout

    def test_the_message_templates_render_every_alert_and_fit_sns(self):
        rule = next(r for r in rules() if r.get("alert") == "EcsContainerMemoryNearLimit")
        labels = {"alertname": rule["alert"], **rule["labels"], "service": "demo-app", "task_id": "t1"}
        alert = {"status": "firing", "labels": labels, "startsAt": "2026-01-02T03:04:05Z",
                 "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "1",
                 "annotations": {"summary": "the summary", "description": "the description"}}
        other = {**alert, "status": "resolved", "labels": {**labels, "alertname": "X", "severity": "critical"}}
        sns = self.config["receivers"][0]["sns_configs"][0]
        firing = {"receiver": "sns", "status": "firing", "alerts": [alert],
                  "groupLabels": {"alertname": rule["alert"]}, "commonLabels": labels,
                  "commonAnnotations": {}, "externalURL": "http://alertmanager"}
        subject = self.render(sns["subject"], firing)
        self.assertEqual(subject, f"[FIRING:1] {rule['alert']}")
        message = self.render(sns["message"], firing)
        for expected in ("FIRING EcsContainerMemoryNearLimit (warning) since 2026-01-02 03:04:05 UTC",
                         "the summary", "the description", "service=demo-app", "task_id=t1"):
            self.assertIn(expected, message)
        self.assertEqual(self.render(sns["attributes"]["severity"], firing), "warning")

        mixed = {**firing, "status": "resolved", "alerts": [other],
                 "commonLabels": {"service": "demo-app"}}
        subject = self.render(sns["subject"], mixed)
        self.assertEqual(subject, f"[RESOLVED] {rule['alert']}")
        # SNS: a subject is at most 100 printable ASCII characters; no empty attribute value.
        longest = max((r["alert"] for r in rules() if "alert" in r), key=len)
        subject = self.render(sns["subject"], {**firing, "groupLabels": {"alertname": longest}})
        self.assertLessEqual(len(subject), 100)
        self.assertRegex(subject, r"^[ -~]+$")
        self.assertEqual(self.render(sns["attributes"]["severity"], mixed), "mixed")

    def test_only_this_workspace_may_publish_to_the_topic(self):
        resources = self.template["Resources"]
        self.assertEqual(resources["AlertTopic"]["Type"], "AWS::SNS::Topic")
        policy = resources["AlertTopicPolicy"]["Properties"]
        self.assertEqual(policy["Topics"], [{"Ref": "AlertTopic"}])
        [statement] = policy["PolicyDocument"]["Statement"]
        self.assertEqual(statement["Principal"], {"Service": "aps.amazonaws.com"})
        self.assertEqual(sorted(statement["Action"]), ["sns:GetTopicAttributes", "sns:Publish"])
        self.assertEqual(statement["Resource"], {"Ref": "AlertTopic"})
        self.assertEqual(statement["Condition"], {
            "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["Workspace", "Arn"]}},
            "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        })

    def test_the_email_subscription_exists_only_with_an_address(self):
        parameter = self.template["Parameters"]["AlertEmail"]
        self.assertEqual(parameter["Default"], "")
        pattern = re.compile(parameter["AllowedPattern"])
        for good in ("", "ops@example.com", "a.b+alerts@sub.example.org"):
            self.assertTrue(pattern.fullmatch(good), good)
        for bad in ("ops", "ops@", "@example.com", "a b@example.com"):
            self.assertFalse(pattern.fullmatch(bad), bad)
        subscription = self.template["Resources"]["AlertEmailSubscription"]
        self.assertEqual(subscription["Condition"], "WithAlertEmail")
        self.assertEqual(subscription["Properties"]["Protocol"], "email")
        self.assertEqual(subscription["Properties"]["Endpoint"], {"Ref": "AlertEmail"})
        self.assertEqual(self.template["Conditions"]["WithAlertEmail"],
                         {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlertEmail"}, ""]}]})


def agent_containers():
    """(template name, {container name: definition}, the agent container) for every task
    definition with an `ecs-prom agent` container."""
    for path, template in cloudformation_templates():
        for resource in template["Resources"].values():
            if resource["Type"] != "AWS::ECS::TaskDefinition":
                continue
            containers = {c["Name"]: c for c in resource["Properties"]["ContainerDefinitions"]}
            for container in containers.values():
                if container["Image"] == {"Ref": "Image"} and container["Command"][0] == "agent":
                    yield path.name, containers, container


def agent_setting(container, flag, variable):
    """What the agent container sets with `flag` (on its command line) or `variable`."""
    command = container["Command"]
    if flag in command:
        return command[command.index(flag) + 1]
    return next((e["Value"] for e in container.get("Environment", []) if e["Name"] == variable), None)


def mount_of(container, path):
    """The mount point of `container` that holds `path`, if any."""
    for mount in container.get("MountPoints", []):
        if path == mount["ContainerPath"] or path.startswith(mount["ContainerPath"].rstrip("/") + "/"):
            return mount
    return None


class AgentTemplatesTest(unittest.TestCase):
    def test_every_agent_queues_on_a_writable_volume_and_reads_its_configuration_from_one(self):
        found = 0
        for template, _, agent in agent_containers():
            found += 1
            with self.subTest(template=template):
                storage = agent_setting(agent, "--storage.path", "ECS_PROM_AGENT_STORAGE_PATH")
                self.assertIsNotNone(storage, "the queue would be in the image's read-only file system")
                mount = mount_of(agent, storage)
                self.assertIsNotNone(mount, f"{storage} is on no volume")
                self.assertFalse(mount.get("ReadOnly", False))
                self.assertTrue(agent.get("ReadonlyRootFilesystem"))
                config = agent_setting(agent, "--config.file", "ECS_PROM_AGENT_CONFIG_FILE")
                if "--ecs.task" in agent["Command"]:
                    self.assertIsNone(config, "the sidecar needs no configuration file")
                else:
                    self.assertIsNotNone(config)
                    self.assertIsNotNone(mount_of(agent, config), f"{config} is on no volume")
        self.assertGreaterEqual(found, 2)

    def test_the_cluster_agent_leaves_tasks_with_an_agent_sidecar_to_them(self):
        """The sidecar's task definition carries the tag the cluster agent's configuration drops
        in its `ecs` job and keeps in the job that watches the sidecars, and its service passes
        the tag on to the tasks."""
        templates = dict(cloudformation_templates())
        sidecar = next(t for p, t in templates.items() if p.name == "5-demo-app-agent.yml")
        resources = sidecar["Resources"]
        [tag] = resources["TaskDefinition"]["Properties"]["Tags"]
        self.assertEqual(resources["Service"]["Properties"]["PropagateTags"], "TASK_DEFINITION")
        containers = {c["Name"]: c for c in task_containers(sidecar)}
        self.assertIn("--ecs.task", containers["ecs-prom-agent"]["Command"])
        self.assertEqual(containers["ecs-prom-agent"]["DockerLabels"]["PROMETHEUS_EXPORTER_JOB_NAME"],
                         "ecs-prom-agent")
        meta = "__meta_ecs_task_tag_" + re.sub(r"[^A-Za-z0-9_]", "_", tag["Key"])

        cluster = next(t for p, t in templates.items() if p.name == "8-cluster-agent.yml")
        text = cluster["Resources"]["AgentConfig"]["Properties"]["Value"]["Fn::Sub"]
        config = yaml.safe_load(re.sub(r"\$\{[^}]*\}", "x", text))
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        [drop] = jobs["ecs"]["relabel_configs"]
        self.assertEqual((drop["source_labels"], drop["regex"], drop["action"]), ([meta], tag["Value"], "drop"))
        [keep] = jobs["ecs-prom-agent-sidecars"]["relabel_configs"]
        self.assertEqual(keep["action"], "keep")
        self.assertEqual(keep["source_labels"], [meta, "__meta_ecs_docker_label_PROMETHEUS_EXPORTER_JOB_NAME"])
        self.assertEqual(keep["regex"], f"{tag['Value']};ecs-prom-agent")
        for job in jobs.values():
            self.assertEqual(job["ecs_sd_configs"], [{"region": "x", "clusters": ["x"], "refresh_interval": "30s"}])
        self.assertEqual(config["remote_write"][0]["sigv4"], {"region": "x"})

    @unittest.skipUnless(hasattr(os, "geteuid") and os.geteuid() == 0,
                         "changing owners and switching users needs root, as on Fargate")
    def test_the_prepared_volumes_let_each_agent_queue_and_read_its_configuration(self):
        """Each init container's own command, with its secrets set, run on directories made as
        Fargate makes volumes (root, 0755); then, as the agent's user, a segment written into
        the queue and the configuration read."""
        checked = 0
        for template, containers, agent in agent_containers():
            [init] = [containers[d["ContainerName"]] for d in agent["DependsOn"] if d["Condition"] == "SUCCESS"]
            self.assertEqual(init["EntryPoint"], ["/bin/sh", "-c"])
            uid, gid = (int(n) for n in agent["User"].split(":"))
            with self.subTest(template=template), tempfile.TemporaryDirectory() as scratch:
                os.chmod(scratch, 0o755)
                command = init["Command"][0]
                places = {}
                for mount in init["MountPoints"]:
                    places[mount["ContainerPath"]] = os.path.join(scratch, mount["SourceVolume"])
                    os.mkdir(places[mount["ContainerPath"]], 0o755)
                    command = command.replace(mount["ContainerPath"], places[mount["ContainerPath"]])
                secrets = {s["Name"]: "global:\n  scrape_interval: 30s\n" for s in init.get("Secrets", [])}
                prepared = subprocess.run(["/bin/sh", "-c", command], env={"PATH": os.environ["PATH"], **secrets},
                                          capture_output=True, text=True, check=False)
                self.assertEqual(prepared.returncode, 0, prepared.stderr)

                def local(path):
                    mount = mount_of(agent, path)
                    return places[mount["ContainerPath"]] + path[len(mount["ContainerPath"]):]

                queue = local(agent_setting(agent, "--storage.path", "ECS_PROM_AGENT_STORAGE_PATH"))
                script = f"set -e; mkdir -p '{queue}/queues/amp'; echo x > '{queue}/queues/amp/00000001'"
                config = agent_setting(agent, "--config.file", "ECS_PROM_AGENT_CONFIG_FILE")
                if config:
                    script += f"; cat '{local(config)}'"
                ran = subprocess.run(["/bin/sh", "-c", script], user=uid, group=gid, extra_groups=[],
                                     capture_output=True, text=True, check=False)
                self.assertEqual(ran.returncode, 0, ran.stderr)
                self.assertEqual(ran.stdout, "".join(f"{v}\n" for v in secrets.values()))
                checked += 1
        self.assertGreaterEqual(checked, 2)


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


class DemoPrometheus:
    """One `ecs-prom demo --prometheus` in a mode (`MODE`) for every expression: its Prometheus
    loads the rule files of deploy/prometheus/rules/; what the mode does not run is
    `NOT_RUN`."""

    MODE = ()
    NOT_RUN = {}

    @classmethod
    def setUpClass(cls):
        address = f"127.0.0.1:{free_port()}"
        cls.url = f"http://{address}"
        cls.demo = subprocess.Popen(
            [BINARY, "demo", "--prometheus", *cls.MODE, "--prometheus.listen-address", address,
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
        is a listed exception, which must then return nothing (else the lists are stale)."""
        deadline = time.monotonic() + 90
        waiting = dict(expressions)
        while waiting and time.monotonic() < deadline:
            for what, expression in list(waiting.items()):
                if not no_data_in_the_demo(expression, self.NOT_RUN) and self.query(expression):
                    del waiting[what]
            if all(no_data_in_the_demo(expression, self.NOT_RUN) for expression in waiting.values()):
                break
            time.sleep(2)
        for what, expression in waiting.items():
            with self.subTest(what=what):
                if no_data_in_the_demo(expression, self.NOT_RUN):
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


class DemoWithDiscoveryTest(DemoPrometheus, unittest.TestCase):
    """Prometheus scrapes the tasks, the exporters and discovery (targets through Cloud Map)."""

    MODE = ("--discovery",)
    NOT_RUN = NOT_RUN_WITH_DISCOVERY


class DemoWithAgentsTest(DemoPrometheus, unittest.TestCase):
    """An agent sidecar per task remote-writes the apps' and the ECS metrics; Prometheus
    scrapes the agents."""

    MODE = ("--agent",)
    NOT_RUN = NOT_RUN_WITH_AGENTS


class WithBoolTest(unittest.TestCase):
    def test_bool_goes_after_the_last_top_level_comparison(self):
        self.assertEqual(with_bool('up{job=~"a|b"} == 0'), 'up{job=~"a|b"} == bool 0')
        self.assertEqual(with_bool("time() - x > 900"), "time() - x > bool 900")
        self.assertEqual(with_bool("min by (a) (x) == 0"), "min by (a) (x) == bool 0")
        self.assertEqual(with_bool('increase(x{le="<1"}[15m]) > 0'), 'increase(x{le="<1"}[15m]) > bool 0')
        self.assertEqual(with_bool("r < 0.95"), "r < bool 0.95")


if __name__ == "__main__":
    unittest.main()

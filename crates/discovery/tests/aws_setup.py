#!/usr/bin/env python3
"""Creates the AWS resources the discovery tests discover, in the moto_server at $MOTO_URL,
through boto3 (an implementation independent of ecs-prom's own client), and prints as JSON
what the tests need to know to state the exact targets they expect.

    aws_setup.py cluster          Cloud Map namespaces, an ECS cluster with awsvpc, host-mode
                                  and unlabelled tasks, and the SSM parameters
    aws_setup.py loopback P1 P2   one Cloud Map service whose two instances are 127.0.0.1:P1
                                  and 127.0.0.1:P2 (servers a test runs), nothing else
    aws_setup.py many N           one Cloud Map service with N health-checked instances
    aws_setup.py run-web          one more task of the cluster's web service
    aws_setup.py stop ARN         stops that task
    aws_setup.py put NAME FILE    sets the SSM parameter NAME to the content of FILE
    aws_setup.py put-secure NAME FILE   the same as a SecureString
"""
import json
import os
import sys
import urllib.request

import boto3

URL = os.environ["MOTO_URL"]
ARGS = dict(endpoint_url=URL, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing")


def moto_api(path, body):
    request = urllib.request.Request(URL + path, data=json.dumps(body).encode(), method="POST")
    urllib.request.urlopen(request).read()


def reset():
    urllib.request.urlopen(urllib.request.Request(URL + "/moto-api/reset", method="POST")).read()
    # By default moto moves a task one status further each time it is described; real tasks
    # stay RUNNING.
    moto_api("/moto-api/state-manager/set-transition",
             {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}})


def cloud_map_service(sd, namespace_id, name, tags, instances, health=False, unhealthy=()):
    extra = {"HealthCheckCustomConfig": {"FailureThreshold": 1}} if health else {}
    service = sd.create_service(Name=name, NamespaceId=namespace_id,
                                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
                                **extra)["Service"]
    for instance_id, attributes in instances.items():
        sd.register_instance(ServiceId=service["Id"], InstanceId=instance_id, Attributes=attributes)
    for instance_id in unhealthy:
        sd.update_instance_custom_health_status(ServiceId=service["Id"], InstanceId=instance_id,
                                                Status="UNHEALTHY")
    return service


def cluster():
    ec2 = boto3.client("ec2", **ARGS)
    ecs = boto3.client("ecs", **ARGS)
    sd = boto3.client("servicediscovery", **ARGS)
    ssm = boto3.client("ssm", **ARGS)

    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24",
                               AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="tasks", Description="tasks", VpcId=vpc)["GroupId"]

    # Cloud Map: two namespaces of different types in the parameter, one that is not.
    sd.create_private_dns_namespace(Name="ecs-services", Vpc=vpc)
    sd.create_http_namespace(Name="apps")
    sd.create_http_namespace(Name="not-listed")
    ids = {n["Name"]: n["Id"] for n in sd.list_namespaces()["Namespaces"]}
    cloud_map_service(
        sd, ids["ecs-services"], "web",
        {"METRICS_PATH": "/app/metrics", "METRICS_PORT": "3000",
         "ECS_METRICS_PATH": "/metrics", "ECS_METRICS_PORT": "9779"},
        {f"web-task-{i}": {"AWS_INSTANCE_IPV4": f"10.0.1.{10 + i}", "AWS_INSTANCE_PORT": "3000",
                           "ECS_CLUSTER_NAME": "prod", "ECS_SERVICE_NAME": "web",
                           "ECS_TASK_DEFINITION_FAMILY": "web", "AVAILABILITY_ZONE": "us-east-1a"}
         for i in range(3)},
        health=True, unhealthy=["web-task-2"])
    cloud_map_service(
        sd, ids["apps"], "api", {},
        {"api-task-0": {"AWS_INSTANCE_IPV4": "10.0.1.20", "AWS_INSTANCE_PORT": "8080"}})
    cloud_map_service(
        sd, ids["not-listed"], "hidden", {},
        {"hidden-0": {"AWS_INSTANCE_IPV4": "10.0.1.30", "AWS_INSTANCE_PORT": "8080"}})
    ssm.put_parameter(Name="ECS-ServiceDiscovery-Namespaces", Type="String", Value="ecs-services, apps")
    ssm.put_parameter(Name="ECS-Prometheus-Configuration", Type="String",
                      Value="global:\n  scrape_interval: 15s\n")

    # ECS: awsvpc tasks of a labelled service, a host-mode daemon on a container instance,
    # and a task with no labels.
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(
        family="web", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="256", memory="512",
        containerDefinitions=[{
            "name": "app", "image": "shop:1.2", "memory": 256,
            "portMappings": [{"containerPort": 3000}],
            "dockerLabels": {"PROMETHEUS_EXPORTER_PORT": "3000",
                             "PROMETHEUS_EXPORTER_PATH": "/app/metrics",
                             "PROMETHEUS_EXPORTER_JOB_NAME": "shop"}}])
    ecs.register_task_definition(
        family="node", networkMode="host",
        containerDefinitions=[{
            "name": "node-exporter", "image": "prom/node-exporter", "memory": 128,
            "dockerLabels": {"ECS_PROMETHEUS_EXPORTER_PORT": "9100"}}])
    ecs.register_task_definition(
        family="plain", networkMode="awsvpc",
        containerDefinitions=[{"name": "worker", "image": "worker", "memory": 128}])
    network = {"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}}
    web = ecs.run_task(cluster="prod", taskDefinition="web", count=2, launchType="FARGATE",
                       group="service:web", networkConfiguration=network,
                       tags=[{"key": "team", "value": "shop"}])["tasks"]
    ecs.run_task(cluster="prod", taskDefinition="plain", count=1, launchType="FARGATE",
                 networkConfiguration=network)

    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                 InstanceType="t3.micro", SubnetId=subnet)["Instances"][0]
    ecs.register_container_instance(
        cluster="prod",
        instanceIdentityDocument=json.dumps({"instanceId": instance["InstanceId"],
                                             "region": "us-east-1",
                                             "availabilityZone": "us-east-1a"}))
    node = ecs.run_task(cluster="prod", taskDefinition="node", count=1, launchType="EC2",
                        group="service:node")["tasks"]

    described = ecs.describe_tasks(cluster="prod", tasks=[t["taskArn"] for t in web + node])["tasks"]

    def eni_address(task):
        for attachment in task.get("attachments", []):
            for detail in attachment.get("details", []):
                if detail["name"] == "privateIPv4Address":
                    return detail["value"]
        return None

    print(json.dumps({
        "web_tasks": [{"arn": t["taskArn"], "address": eni_address(t)}
                      for t in described if t["group"] == "service:web"],
        "node_tasks": [{"arn": t["taskArn"], "container_instance": t["containerInstanceArn"]}
                       for t in described if t["group"] == "service:node"],
        "instance_address": instance["PrivateIpAddress"],
    }))


def loopback(port_1, port_2):
    sd = boto3.client("servicediscovery", **ARGS)
    ssm = boto3.client("ssm", **ARGS)
    sd.create_http_namespace(Name="demo")
    namespace = sd.list_namespaces()["Namespaces"][0]["Id"]
    cloud_map_service(
        sd, namespace, "demo-app", {"METRICS_PATH": "/metrics"},
        {f"demo-{i}": {"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": str(port),
                       "ECS_CLUSTER_NAME": "local", "ECS_SERVICE_NAME": "demo-app"}
         for i, port in enumerate([port_1, port_2])})
    ssm.put_parameter(Name="ECS-ServiceDiscovery-Namespaces", Type="String", Value="demo")
    print(json.dumps({"namespace": namespace}))


def many(count):
    sd = boto3.client("servicediscovery", **ARGS)
    sd.create_http_namespace(Name="many")
    namespace = sd.list_namespaces()["Namespaces"][0]["Id"]
    cloud_map_service(
        sd, namespace, "wide", {"METRICS_PORT": "8080"},
        {f"i-{i}": {"AWS_INSTANCE_IPV4": f"10.1.{i // 250}.{i % 250}"} for i in range(count)},
        health=True)
    print("{}")


def run_web():
    ecs = boto3.client("ecs", **ARGS)
    ec2 = boto3.client("ec2", **ARGS)
    subnet = ec2.describe_subnets(Filters=[{"Name": "cidr-block", "Values": ["10.0.1.0/24"]}])["Subnets"][0]
    group = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["tasks"]}])["SecurityGroups"][0]
    network = {"awsvpcConfiguration": {"subnets": [subnet["SubnetId"]], "securityGroups": [group["GroupId"]]}}
    task = ecs.run_task(cluster="prod", taskDefinition="web", count=1, launchType="FARGATE",
                        group="service:web", networkConfiguration=network)["tasks"][0]
    print(json.dumps({"arn": task["taskArn"]}))


def stop(arn):
    boto3.client("ecs", **ARGS).stop_task(cluster="prod", task=arn)
    print("{}")


def put(name, path, kind="String"):
    with open(path) as f:
        boto3.client("ssm", **ARGS).put_parameter(Name=name, Type=kind, Value=f.read(), Overwrite=True)
    print("{}")


if __name__ == "__main__":
    if sys.argv[1] == "cluster":
        reset()
        cluster()
    elif sys.argv[1] == "loopback":
        reset()
        loopback(int(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1] == "many":
        reset()
        many(int(sys.argv[2]))
    elif sys.argv[1] == "run-web":
        run_web()
    elif sys.argv[1] == "stop":
        stop(sys.argv[2])
    elif sys.argv[1] == "put":
        put(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "put-secure":
        put(sys.argv[2], sys.argv[3], kind="SecureString")
    else:
        sys.exit(f"unknown scenario {sys.argv[1]}")

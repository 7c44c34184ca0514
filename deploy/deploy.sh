#!/usr/bin/env bash
# Deploys ecs-prom's stacks in order: network and cluster, AMP (and optionally Managed
# Grafana), IAM, Cloud Map, then the demo app with its exporter sidecar and one collector
# (Prometheus with the discovery sidecar, or the ADOT collector), or, with --collector agent,
# the demo app with the ecs-prom agent sidecar and the cluster agent. Re-running updates them.
#
#   deploy/deploy.sh --prefix ecsprom --region <region> --image <registry>/ecs-prom:<tag> \
#     [--collector prometheus|adot|agent] [--ec2-instances N] [--grafana] [--alert-email ADDRESS]
#
# AMP sends the alerts to an SNS topic; --alert-email subscribes an address to it (AWS mails
# a confirmation link first). Left out on a re-run, the address given before stays.
# Needs the AWS CLI v2 with credentials allowed to create these resources. Nothing about the
# account or region is written into any file: both come from the CLI's credentials and --region.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

prefix="" region="" image="" collector=prometheus ec2_instances=0 grafana=false alert_email=""
usage() { sed -n '2,13p' "$here/deploy.sh" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
  case "$1" in
    --prefix) prefix="${2:?}"; shift 2 ;;
    --region) region="${2:?}"; shift 2 ;;
    --image) image="${2:?}"; shift 2 ;;
    --collector) collector="${2:?}"; shift 2 ;;
    --ec2-instances) ec2_instances="${2:?}"; shift 2 ;;
    --grafana) grafana=true; shift ;;
    --alert-email) alert_email="${2:?}"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done
[[ -n "$prefix" && -n "$region" && -n "$image" ]] || usage
[[ "$prefix" =~ ^[a-z][a-z0-9-]{0,30}$ ]] || { echo "--prefix: lower-case letters, digits and -, up to 31" >&2; exit 2; }
[[ "$collector" =~ ^(prometheus|adot|agent)$ ]] || { echo "--collector: prometheus, adot or agent" >&2; exit 2; }

aws() { command aws --region "$region" "$@"; }

# deploy STACK TEMPLATE [Key=Value ...]
deploy() {
  local stack="$prefix-$1" template="cloudformation/$2"; shift 2
  echo "== $stack ($template)"
  aws cloudformation deploy --stack-name "$stack" --template-file "$template" \
    --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
    --parameter-overrides "$@"
}

# output STACK KEY
output() {
  aws cloudformation describe-stacks --stack-name "$prefix-$1" \
    --query "Stacks[0].Outputs[?OutputKey=='$2'].OutputValue" --output text
}

deploy network 1-network-cluster.yml "Ec2Instances=$ec2_instances"
monitoring=("CreateGrafana=$grafana")
[[ -n "$alert_email" ]] && monitoring+=("AlertEmail=$alert_email")
deploy monitoring 2-monitoring.yml "${monitoring[@]}"
cluster=$(output network ClusterName)
subnets=$(output network PrivateSubnets)
security_group=$(output network TaskSecurityGroup)
workspace_id=$(output monitoring WorkspaceId)
remote_write_url=$(output monitoring RemoteWriteUrl)

# The recording and alert rules, evaluated by AMP itself.
for rules in prometheus/rules/*.yml; do
  namespace=$(basename "$rules" .yml | tr . -)
  if aws amp describe-rule-groups-namespace --workspace-id "$workspace_id" --name "$namespace" >/dev/null 2>&1; then
    aws amp put-rule-groups-namespace --workspace-id "$workspace_id" --name "$namespace" --data "fileb://$rules" >/dev/null
  else
    aws amp create-rule-groups-namespace --workspace-id "$workspace_id" --name "$namespace" --data "fileb://$rules" >/dev/null
  fi
  echo "== AMP rule groups namespace $namespace from $rules"
done

deploy iam 3-iam.yml "Prefix=$prefix" "ClusterName=$cluster" "WorkspaceArn=$(output monitoring WorkspaceArn)"
deploy cloudmap 4-cloudmap.yml "Prefix=$prefix" "VpcId=$(output network VpcId)"
execution_role=$(output iam TaskExecutionRoleArn)
common=("Prefix=$prefix" "Image=$image" "ClusterName=$cluster" "PrivateSubnets=$subnets"
        "TaskSecurityGroup=$security_group" "TaskExecutionRoleArn=$execution_role")
# The agent sidecar sends its task's metrics itself; the other collectors scrape the
# exporter sidecar's tasks, which register in Cloud Map.
if [[ "$collector" == agent ]]; then
  deploy demo-app-agent 5-demo-app-agent.yml "${common[@]}" \
    "AgentSidecarTaskRoleArn=$(output iam AgentSidecarTaskRoleArn)" "RemoteWriteUrl=$remote_write_url"
else
  deploy demo-app 5-demo-app.yml "${common[@]}" "DemoAppServiceArn=$(output cloudmap DemoAppServiceArn)"
fi
if [[ "$collector" == prometheus ]]; then
  deploy prometheus 6-prometheus.yml "${common[@]}" \
    "PrometheusTaskRoleArn=$(output iam PrometheusTaskRoleArn)" "RemoteWriteUrl=$remote_write_url"
elif [[ "$collector" == adot ]]; then
  deploy adot 7-adot.yml "${common[@]}" \
    "AdotTaskRoleArn=$(output iam AdotTaskRoleArn)" "RemoteWriteUrl=$remote_write_url"
else
  deploy cluster-agent 8-cluster-agent.yml "${common[@]}" \
    "ClusterAgentTaskRoleArn=$(output iam ClusterAgentTaskRoleArn)" "RemoteWriteUrl=$remote_write_url"
fi

echo
echo "AMP query endpoint: $(output monitoring QueryUrl)"
echo "Alerts go to the SNS topic $(output monitoring AlertTopicArn)"
[[ -n "$alert_email" ]] && echo "  and to $alert_email once the link in AWS's confirmation e-mail is followed"
[[ "$grafana" == true ]] && echo "Grafana: $(output monitoring GrafanaUrl) (import deploy/grafana/dashboards/*.json)"
echo "Tear down with: deploy/destroy.sh --prefix $prefix --region $region"

#!/usr/bin/env bash
# Removes every stack deploy.sh created, in reverse order, waiting for each.
#
#   deploy/destroy.sh --prefix ecsprom --region <region>
set -euo pipefail

prefix="" region=""
while (($#)); do
  case "$1" in
    --prefix) prefix="${2:?}"; shift 2 ;;
    --region) region="${2:?}"; shift 2 ;;
    *) echo "usage: $0 --prefix NAME --region REGION" >&2; exit 2 ;;
  esac
done
[[ -n "$prefix" && -n "$region" ]] || { echo "usage: $0 --prefix NAME --region REGION" >&2; exit 2; }

for stack in cluster-agent adot prometheus demo-app demo-app-agent cloudmap iam monitoring network; do
  name="$prefix-$stack"
  if aws --region "$region" cloudformation describe-stacks --stack-name "$name" >/dev/null 2>&1; then
    echo "== deleting $name"
    aws --region "$region" cloudformation delete-stack --stack-name "$name"
    aws --region "$region" cloudformation wait stack-delete-complete --stack-name "$name"
  fi
done
# The log groups go with their stacks; the AMP workspace takes its rule namespaces with it.
echo "done"

#!/usr/bin/env bash
# Build the image, load it into the kind cluster, install the chart in the test namespaces and
# run the e2e suite (`#[ignore]`d tests, KUBECONFIG only). Run hack/kind-up.sh first.
set -eu
cd "$(dirname "$0")/.."

CLUSTER=${KIND_CLUSTER:-backup-ns}
export KUBECONFIG=${KUBECONFIG:-$PWD/target/kind/kubeconfig}
HELM=${BACKUP_NS_HELM:-$(bash hack/install-helm.sh | tail -n 1)}
TAG=e2e-$(git rev-parse --short HEAD)
IMAGE=ghcr.io/backup-ns/backup-ns

docker build -t "$IMAGE:$TAG" .
kind load docker-image --name "$CLUSTER" "$IMAGE:$TAG"

# One namespace release per test namespace, one backup target each: CronJob backup-ns-<name>,
# the names tests/it/e2e_flows.rs expects by default (E2E_PG_CRONJOB, E2E_MYSQL_CRONJOB,
# E2E_VOLUME_CRONJOB; E2E_PVC=data, retain daily_weekly_monthly, timeZone Etc/UTC). The
# PostgreSQL target also gets the weekly verify CronJob (backup-ns-db-verify, E2E_PG_VERIFY_CRONJOB).
release() { # namespace, then the one backups entry as YAML lines
  ns=$1
  shift
  printf 'timeZone: Etc/UTC\nbackups:\n' >"$values"
  printf '  %s\n' "$@" >>"$values"
  "$HELM" upgrade --install backup-ns charts/backup-ns -n "$ns" --wait \
    --set image.tag="$TAG" --set rbac.adhoc=true --set rbac.restore=true -f "$values"
}
values=$(mktemp)
trap 'rm -f "$values"' EXIT
release backup-ns-postgres '- name: db' '  pvc: data' '  db: postgres' \
  '  execResource: deployment/postgres' '  container: postgres' \
  '  retain: daily_weekly_monthly' '  schedule: "0 2 * * *"' '  verify: {enabled: true}'
release backup-ns-mysql '- name: db' '  pvc: data' '  db: mysql' \
  '  execResource: deployment/mysql' '  container: mysql' \
  '  retain: daily_weekly_monthly' '  schedule: "0 2 * * *"'
release backup-ns-volume '- name: volume' '  pvc: data' '  db: skip' \
  '  retain: daily_weekly_monthly' '  schedule: "0 2 * * *"'
kubectl create namespace backup-ns-system --dry-run=client -o yaml | kubectl apply -f -
"$HELM" upgrade --install backup-ns-pruner charts/backup-ns -n backup-ns-system --wait \
  --set image.tag="$TAG" --set pruner.enabled=true

cargo test --locked --test it e2e -- --ignored --test-threads=1

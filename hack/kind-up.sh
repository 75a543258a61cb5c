#!/usr/bin/env bash
# Dev cluster for backup-ns (needs docker, kind, kubectl, git):
# kind cluster -> external-snapshotter CRDs + snapshot-controller -> csi-driver-host-path with a
# default VolumeSnapshotClass csi-hostpath-snapclass -> the node lock directory -> the test
# namespaces backup-ns-postgres and backup-ns-mysql with seeded rows and backup-ns-volume (PVC data
# with a file) -- what tests/it/e2e*.rs expect.
set -eu
cd "$(dirname "$0")/.."

CLUSTER=${KIND_CLUSTER:-backup-ns}
# kind's release notes: "You must use the @sha256 digest to guarantee an image built for this
# release". kind-config.yaml pins the same digest (the v1.33.1 image pre-built for
# kind v0.29.0); KIND_NODE_IMAGE overrides both. Other kind releases: take the digest from their notes.
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-kindest/node:v1.33.1@sha256:050072256b9a903bd914c0b2866828150cb229cea0efe5892e2b644d5dd3b34f}
SNAPSHOTTER_VERSION=v8.2.0
HOSTPATH_VERSION=v1.15.0
export KUBECONFIG=${KUBECONFIG:-$PWD/target/kind/kubeconfig}
mkdir -p "$(dirname "$KUBECONFIG")"

if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --config kind-config.yaml --image "$KIND_NODE_IMAGE" \
    --kubeconfig "$KUBECONFIG" --wait 120s
fi

echo "== external-snapshotter $SNAPSHOTTER_VERSION"
kubectl apply -k "github.com/kubernetes-csi/external-snapshotter/client/config/crd?ref=$SNAPSHOTTER_VERSION"
kubectl -n kube-system apply -k "github.com/kubernetes-csi/external-snapshotter/deploy/kubernetes/snapshot-controller?ref=$SNAPSHOTTER_VERSION"
kubectl -n kube-system rollout status deploy/snapshot-controller --timeout=180s

echo "== csi-driver-host-path $HOSTPATH_VERSION"
src=target/kind/csi-driver-host-path
if [ ! -d "$src" ]; then
  git clone --depth 1 --branch "$HOSTPATH_VERSION" https://github.com/kubernetes-csi/csi-driver-host-path.git "$src"
fi
"$src/deploy/kubernetes-latest/deploy.sh"
kubectl delete volumesnapshotclass csi-hostpath-snapclass --ignore-not-found
kubectl apply -f hack/kind/snapshot-class.yaml
# kind's own default StorageClass must not compete with csi-hostpath-sc.
kubectl annotate storageclass standard storageclass.kubernetes.io/is-default-class=false --overwrite || true

echo "== node lock directory (writable by the chart's non-root uid)"
for node in $(kind get nodes --name "$CLUSTER"); do
  docker exec "$node" install -d -m 1777 /tmp/backup-ns-locks
done

echo "== test namespaces"
kubectl apply -f hack/kind/postgres.yaml -f hack/kind/mysql.yaml -f hack/kind/volume.yaml
kubectl -n backup-ns-postgres rollout status deploy/postgres --timeout=300s
kubectl -n backup-ns-mysql rollout status deploy/mysql --timeout=300s
kubectl -n backup-ns-volume rollout status deploy/files --timeout=300s

echo "== seed rows"
kubectl -n backup-ns-postgres exec deploy/postgres -c postgres -- sh -c \
  'psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -c "CREATE TABLE IF NOT EXISTS seed (id int PRIMARY KEY, name text); INSERT INTO seed VALUES (1, '\''one'\''), (2, '\''two'\''), (3, '\''three'\'') ON CONFLICT DO NOTHING;"'
kubectl -n backup-ns-mysql exec deploy/mysql -c mysql -- sh -c \
  'mysql -uroot -p"$MYSQL_ROOT_PASSWORD" "$MYSQL_DATABASE" -e "CREATE TABLE IF NOT EXISTS seed (id int PRIMARY KEY, name text); INSERT IGNORE INTO seed VALUES (1, '\''one'\''), (2, '\''two'\''), (3, '\''three'\'');"'

echo "kind cluster $CLUSTER is ready: export KUBECONFIG=$KUBECONFIG"

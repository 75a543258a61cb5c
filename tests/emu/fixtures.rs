//! Builders for the objects tests seed with `Emu::create`: valid, minimal, in the shape a cluster
//! returns them (status included), so each test states only what matters to it.

use serde_json::{json, Value};

/// `[("app", "db")]` → `{"app": "db"}`.
pub fn labels(pairs: &[(&str, &str)]) -> Value {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// `[("tier", "In", &["db"])]` → `[{"key": "tier", "operator": "In", "values": ["db"]}]`.
fn expressions(exprs: &[(&str, &str, &[&str])]) -> Value {
    exprs
        .iter()
        .map(
            |(key, operator, values)| json!({ "key": key, "operator": operator, "values": values }),
        )
        .collect()
}

pub fn namespace(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": name },
        "status": { "phase": "Active" },
    })
}

/// A 1Gi RWO PVC of storage class `emu-csi`; a bound one has a volume `pvc-<name>` and capacity.
pub fn pvc(ns: &str, name: &str, bound: bool) -> Value {
    let mut pvc = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": { "namespace": ns, "name": name },
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": { "requests": { "storage": "1Gi" } },
            "storageClassName": "emu-csi",
            "volumeMode": "Filesystem",
        },
        "status": { "phase": "Pending" },
    });
    if bound {
        pvc["spec"]["volumeName"] = json!(format!("pvc-{name}"));
        pvc["status"] = json!({
            "phase": "Bound",
            "accessModes": ["ReadWriteOnce"],
            "capacity": { "storage": "1Gi" },
        });
    }
    pvc
}

fn workload(
    kind: &str,
    ns: &str,
    name: &str,
    match_labels: &[(&str, &str)],
    match_expressions: &[(&str, &str, &[&str])],
) -> Value {
    let mut selector = json!({ "matchLabels": labels(match_labels) });
    if !match_expressions.is_empty() {
        selector["matchExpressions"] = expressions(match_expressions);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": { "namespace": ns, "name": name },
        "spec": {
            "replicas": 1,
            "selector": selector,
            "template": {
                "metadata": { "labels": labels(match_labels) },
                "spec": { "containers": [{ "name": "main", "image": "emu" }] },
            },
        },
        "status": { "replicas": 1, "readyReplicas": 1 },
    })
}

/// A Deployment whose selector is `match_labels` plus `match_expressions`
/// (`(key, "In" | "NotIn" | "Exists" | "DoesNotExist", values)`).
pub fn deployment(
    ns: &str,
    name: &str,
    match_labels: &[(&str, &str)],
    match_expressions: &[(&str, &str, &[&str])],
) -> Value {
    workload("Deployment", ns, name, match_labels, match_expressions)
}

/// A StatefulSet, like [`deployment`] (plus `serviceName`).
pub fn statefulset(
    ns: &str,
    name: &str,
    match_labels: &[(&str, &str)],
    match_expressions: &[(&str, &str, &[&str])],
) -> Value {
    let mut sts = workload("StatefulSet", ns, name, match_labels, match_expressions);
    sts["spec"]["serviceName"] = json!(name);
    sts
}

/// A ReplicaSet, like [`deployment`].
pub fn replicaset(ns: &str, name: &str, match_labels: &[(&str, &str)]) -> Value {
    workload("ReplicaSet", ns, name, match_labels, &[])
}

/// A DaemonSet, like [`deployment`] (no replicas).
pub fn daemonset(ns: &str, name: &str, match_labels: &[(&str, &str)]) -> Value {
    let mut ds = workload("DaemonSet", ns, name, match_labels, &[]);
    let spec = ds["spec"].as_object_mut().expect("spec");
    spec.remove("replicas");
    ds["status"] = json!({ "numberReady": 1, "desiredNumberScheduled": 1 });
    ds
}

/// A Job whose selector is `match_labels` (as the Job controller sets `controller-uid`).
pub fn job(ns: &str, name: &str, match_labels: &[(&str, &str)]) -> Value {
    let mut job = workload("Job", ns, name, match_labels, &[]);
    job["apiVersion"] = json!("batch/v1");
    let spec = job["spec"].as_object_mut().expect("spec");
    spec.remove("replicas");
    job["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    job["status"] = json!({ "active": 1 });
    job
}

/// A ReplicationController with the selector map `selector`.
pub fn replicationcontroller(ns: &str, name: &str, selector: &[(&str, &str)]) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ReplicationController",
        "metadata": { "namespace": ns, "name": name },
        "spec": {
            "replicas": 1,
            "selector": labels(selector),
            "template": {
                "metadata": { "labels": labels(selector) },
                "spec": { "containers": [{ "name": "main", "image": "emu" }] },
            },
        },
        "status": { "replicas": 1, "readyReplicas": 1 },
    })
}

/// A ClusterIP Service with the selector map `selector`.
pub fn service(ns: &str, name: &str, selector: &[(&str, &str)]) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "namespace": ns, "name": name },
        "spec": {
            "selector": labels(selector),
            "ports": [{ "port": 5432, "protocol": "TCP" }],
            "type": "ClusterIP",
        },
        "status": { "loadBalancer": {} },
    })
}

/// A pod with `containers` as `(name, env)`, where env values are literal (`value:`).
/// `phase` is `Running`, `Pending`, …; `ready` sets the Ready condition; `deleting` sets
/// `metadata.deletionTimestamp` (a terminating pod).
pub fn pod(
    ns: &str,
    name: &str,
    labels_: &[(&str, &str)],
    containers: &[(&str, &[(&str, &str)])],
    phase: &str,
    ready: bool,
    deleting: bool,
) -> Value {
    let containers: Vec<Value> = containers
        .iter()
        .map(|(c, env)| {
            let env: Vec<Value> = env
                .iter()
                .map(|(k, v)| json!({ "name": k, "value": v }))
                .collect();
            json!({ "name": c, "image": "emu", "env": env })
        })
        .collect();
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| json!({ "name": c["name"], "ready": ready, "restartCount": 0, "image": "emu", "imageID": "" }))
        .collect();
    let mut pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "namespace": ns, "name": name, "labels": labels(labels_) },
        "spec": { "containers": containers, "nodeName": "emu-node" },
        "status": {
            "phase": phase,
            "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }],
            "containerStatuses": statuses,
        },
    });
    if deleting {
        pod["metadata"]["deletionTimestamp"] = json!(super::store::now_rfc3339());
        pod["metadata"]["deletionGracePeriodSeconds"] = json!(30);
    }
    pod
}

/// A VolumeSnapshotClass (`deletion_policy` is `Delete` or `Retain`); `default` adds the
/// is-default-class annotation.
pub fn volume_snapshot_class(
    name: &str,
    driver: &str,
    deletion_policy: &str,
    default: bool,
) -> Value {
    let mut class = json!({
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotClass",
        "metadata": { "name": name },
        "driver": driver,
        "deletionPolicy": deletion_policy,
    });
    if default {
        class["metadata"]["annotations"] =
            json!({ "snapshot.storage.kubernetes.io/is-default-class": "true" });
    }
    class
}

/// A VolumeSnapshot of `pvc` without status (the controller will reconcile it) and with
/// `labels`. Seed a ready one by adding `status` to the returned value.
pub fn volume_snapshot(ns: &str, name: &str, pvc: &str, labels_: &[(&str, &str)]) -> Value {
    json!({
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": { "namespace": ns, "name": name, "labels": labels(labels_) },
        "spec": { "source": { "persistentVolumeClaimName": pvc } },
    })
}

/// A StorageClass of the emulated provisioner; `binding_mode` is `Immediate` or
/// `WaitForFirstConsumer`; `default` adds the is-default-class annotation.
pub fn storage_class(name: &str, binding_mode: &str, default: bool) -> Value {
    let mut class = json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": { "name": name },
        "provisioner": "emu.csi.k8s.io",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": binding_mode,
    });
    if default {
        class["metadata"]["annotations"] =
            json!({ "storageclass.kubernetes.io/is-default-class": "true" });
    }
    class
}

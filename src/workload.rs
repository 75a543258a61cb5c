//! Finding the pod to exec into from `[TYPE/]NAME`, the forms `kubectl exec` takes (the
//! original passed the value to it): a pod by name; a Deployment, StatefulSet, ReplicaSet,
//! DaemonSet or Job through its label selector; a ReplicationController or Service through its
//! selector map.
//!
//! A workload's pods are found by its selector, `matchLabels` *and* `matchExpressions` (the
//! original ignored the expressions). Of those, only a Running, Ready, non-terminating pod that
//! has the container qualifies; the choice is deterministic (lowest name, so a StatefulSet's
//! ordinal 0) so two runs exec into the same pod.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, ReplicationController, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams};
use serde::de::DeserializeOwned;

use crate::settings::{ExecKind, ExecResource};
use crate::{Error, Result};

/// Turns a `LabelSelector` into the query syntax of `labelSelector=`. An empty selector would
/// match every pod in the namespace, which is never what a workload means: that is an error.
pub fn selector_query(sel: &LabelSelector) -> Result<String, String> {
    let mut parts = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        parts.push(format!("{k}={v}"));
    }
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => parts.push(format!("{} in ({})", e.key, values.join(","))),
            "NotIn" => parts.push(format!("{} notin ({})", e.key, values.join(","))),
            "Exists" => parts.push(e.key.clone()),
            "DoesNotExist" => parts.push(format!("!{}", e.key)),
            op => return Err(format!("unsupported selector operator {op:?}")),
        }
    }
    if parts.is_empty() {
        return Err("the selector is empty".into());
    }
    Ok(parts.join(","))
}

/// Why a pod does not qualify, or `None` if it does.
pub fn unfit_reason(pod: &Pod, container: &str) -> Option<String> {
    if pod.metadata.deletion_timestamp.is_some() {
        return Some("is terminating".into());
    }
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Unknown");
    if phase != "Running" {
        return Some(format!("is {phase}, not Running"));
    }
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    if !ready {
        return Some("is not Ready".into());
    }
    let has_container = pod
        .spec
        .as_ref()
        .is_some_and(|s| s.containers.iter().any(|c| c.name == container));
    if !has_container {
        let names: Vec<_> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter().map(|c| c.name.as_str()))
            .collect();
        return Some(format!(
            "has no container {container:?} (containers: {})",
            names.join(", ")
        ));
    }
    None
}

/// Picks the pod to exec into: the lowest-named pod that qualifies.
pub fn pick<'a>(pods: &'a [Pod], container: &str) -> Result<&'a Pod, String> {
    let mut sorted: Vec<&Pod> = pods.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut reasons = Vec::new();
    for pod in sorted {
        match unfit_reason(pod, container) {
            None => return Ok(pod),
            Some(r) => reasons.push(format!(
                "pod {} {r}",
                pod.metadata.name.as_deref().unwrap_or("?")
            )),
        }
    }
    if reasons.is_empty() {
        Err("no pods match its selector".into())
    } else {
        Err(format!(
            "no Running, Ready pod with the container: {}",
            reasons.join("; ")
        ))
    }
}

/// A selector map (ReplicationController, Service) as a `LabelSelector`.
fn from_map(map: Option<BTreeMap<String, String>>) -> Option<LabelSelector> {
    map.map(|m| LabelSelector {
        match_labels: Some(m),
        match_expressions: None,
    })
}

/// The label selector of a workload's pods, from its `spec.selector`.
pub fn workload_selector(kind: ExecKind, object: serde_json::Value) -> Option<LabelSelector> {
    fn spec<K: DeserializeOwned>(object: serde_json::Value) -> Option<K> {
        serde_json::from_value(object).ok()
    }
    match kind {
        ExecKind::Pod => None,
        ExecKind::Deployment => spec::<Deployment>(object)?.spec.map(|s| s.selector),
        ExecKind::StatefulSet => spec::<StatefulSet>(object)?.spec.map(|s| s.selector),
        ExecKind::ReplicaSet => spec::<ReplicaSet>(object)?.spec.map(|s| s.selector),
        ExecKind::DaemonSet => spec::<DaemonSet>(object)?.spec.map(|s| s.selector),
        ExecKind::Job => spec::<Job>(object)?.spec?.selector,
        ExecKind::ReplicationController => {
            from_map(spec::<ReplicationController>(object)?.spec?.selector)
        }
        ExecKind::Service => from_map(spec::<Service>(object)?.spec?.selector),
    }
}

/// GETs the workload as JSON (`None`: not found).
async fn get_workload(
    client: &kube::Client,
    namespace: &str,
    resource: &ExecResource,
) -> Result<Option<serde_json::Value>> {
    async fn get<K>(
        client: &kube::Client,
        namespace: &str,
        name: &str,
    ) -> kube::Result<Option<serde_json::Value>>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(client.clone(), namespace);
        Ok(api
            .get_opt(name)
            .await?
            .and_then(|o| serde_json::to_value(o).ok()))
    }
    let name = resource.name.as_str();
    let got = match resource.kind {
        ExecKind::Pod => get::<Pod>(client, namespace, name).await,
        ExecKind::Deployment => get::<Deployment>(client, namespace, name).await,
        ExecKind::StatefulSet => get::<StatefulSet>(client, namespace, name).await,
        ExecKind::ReplicaSet => get::<ReplicaSet>(client, namespace, name).await,
        ExecKind::DaemonSet => get::<DaemonSet>(client, namespace, name).await,
        ExecKind::Job => get::<Job>(client, namespace, name).await,
        ExecKind::ReplicationController => {
            get::<ReplicationController>(client, namespace, name).await
        }
        ExecKind::Service => get::<Service>(client, namespace, name).await,
    };
    got.map_err(|e| Error::kube(format!("get {resource} in {namespace}"), e))
}

/// Resolves the exec resource to a ready pod in `namespace` (the whole object: the snapshot
/// commands read its image, user and mounts without asking again).
pub async fn resolve_pod(
    client: &kube::Client,
    namespace: &str,
    resource: &ExecResource,
    container: &str,
) -> Result<Pod> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let not_found =
        |what: String| Error::Precondition(format!("{resource} in namespace {namespace}: {what}"));
    if resource.kind == ExecKind::Pod {
        let name = &resource.name;
        let pod = pods
            .get_opt(name)
            .await
            .map_err(|e| Error::kube(format!("get pod {namespace}/{name}"), e))?
            .ok_or_else(|| not_found("not found".into()))?;
        return match unfit_reason(&pod, container) {
            None => Ok(pod),
            Some(r) => Err(not_found(format!("pod {r}"))),
        };
    }
    let object = get_workload(client, namespace, resource)
        .await?
        .ok_or_else(|| not_found("not found".into()))?;
    let selector = workload_selector(resource.kind, object)
        .ok_or_else(|| not_found("has no spec.selector".into()))?;
    let query = selector_query(&selector)
        .map_err(|e| not_found(format!("cannot use its selector: {e}")))?;
    let list = pods
        .list(&ListParams::default().labels(&query))
        .await
        .map_err(|e| Error::kube(format!("list pods of {resource} ({query})"), e))?;
    let pod = pick(&list.items, container).map_err(not_found)?;
    Ok(pod.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, phase: &str, ready: bool, containers: &[&str], deleting: bool) -> Pod {
        let mut v = json!({
            "metadata": {"name": name},
            "spec": {"containers": containers.iter().map(|c| json!({"name": c})).collect::<Vec<_>>()},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
        });
        if deleting {
            v["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn selector_with_labels_and_expressions() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "db"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "NotIn", "values": ["x"]},
                {"key": "role", "operator": "Exists"}
            ]
        }))
        .unwrap();
        assert_eq!(
            selector_query(&sel).unwrap(),
            "app=db,tier in (a,b),!canary,zone notin (x),role"
        );
        assert!(selector_query(&LabelSelector::default()).is_err());
    }

    #[test]
    fn picks_the_lowest_named_ready_pod_with_the_container() {
        let pods = vec![
            pod("db-2", "Running", true, &["postgres"], false),
            pod("db-0", "Running", true, &["postgres"], true),
            pod("db-1", "Running", true, &["postgres", "metrics"], false),
        ];
        assert_eq!(
            pick(&pods, "postgres").unwrap().metadata.name.as_deref(),
            Some("db-1")
        );
    }

    #[test]
    fn explains_why_nothing_qualifies() {
        let pods = vec![
            pod("a", "Pending", false, &["postgres"], false),
            pod("b", "Running", false, &["postgres"], false),
            pod("c", "Running", true, &["sidecar"], false),
        ];
        let e = pick(&pods, "postgres").unwrap_err();
        assert!(e.contains("pod a is Pending"), "{e}");
        assert!(e.contains("pod b is not Ready"), "{e}");
        assert!(e.contains("pod c has no container \"postgres\""), "{e}");
        assert_eq!(
            pick(&[], "postgres").unwrap_err(),
            "no pods match its selector"
        );
    }

    #[test]
    fn every_kind_yields_its_selector() {
        let labels = json!({"matchLabels": {"app": "db"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]});
        let template = json!({"metadata": {"labels": {"app": "db", "tier": "a"}}, "spec": {"containers": [{"name": "c"}]}});
        for (kind, object) in [
            (
                ExecKind::Deployment,
                json!({"spec": {"selector": labels, "template": template}}),
            ),
            (
                ExecKind::StatefulSet,
                json!({"spec": {"selector": labels, "template": template, "serviceName": "x"}}),
            ),
            (
                ExecKind::ReplicaSet,
                json!({"spec": {"selector": labels, "template": template}}),
            ),
            (
                ExecKind::DaemonSet,
                json!({"spec": {"selector": labels, "template": template}}),
            ),
            (
                ExecKind::Job,
                json!({"spec": {"selector": labels, "template": template}}),
            ),
        ] {
            let sel = workload_selector(kind, object).unwrap_or_else(|| panic!("{kind:?}"));
            assert_eq!(
                selector_query(&sel).unwrap(),
                "app=db,tier in (a)",
                "{kind:?}"
            );
        }
        for (kind, object) in [
            (
                ExecKind::ReplicationController,
                json!({"spec": {"selector": {"app": "db"}}}),
            ),
            (
                ExecKind::Service,
                json!({"spec": {"selector": {"app": "db"}}}),
            ),
        ] {
            let sel = workload_selector(kind, object).unwrap_or_else(|| panic!("{kind:?}"));
            assert_eq!(selector_query(&sel).unwrap(), "app=db", "{kind:?}");
        }
        // A Service without a selector (its endpoints are managed by hand) has no pods to pick.
        assert!(workload_selector(ExecKind::Service, json!({"spec": {"ports": []}})).is_none());
    }
}

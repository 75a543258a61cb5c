//! Gathering: one paged LIST per resource, whatever the number of namespaces and PVCs.
//!
//! The original asked the API server once per namespace, once per PVC and once per class; at
//! 10,000 snapshots that is thousands of requests before anything is decided. Here a command
//! reads everything it needs with one LIST (`limit` 500, following `continue`), cluster-wide
//! or in one namespace, and hands each object to a callback that keeps only what the command
//! needs, so at most one page of full objects is held at a time.

use std::fmt::Debug;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::api::{Api, ListParams};
use kube::Resource;
use serde::de::DeserializeOwned;

use crate::retention::SnapshotRecord;
use crate::snapshot::{VolumeSnapshot, VolumeSnapshotContent};
use crate::{labels, Error, Result};

use super::api::Requests;

/// Objects per LIST page.
pub const PAGE: u32 = 500;

/// Where to look: one namespace or all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Namespace(String),
}

impl Scope {
    pub fn from_option(namespace: Option<String>) -> Scope {
        namespace.map_or(Scope::All, Scope::Namespace)
    }

    fn api<K>(&self, client: &kube::Client) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        match self {
            Scope::All => Api::all(client.clone()),
            Scope::Namespace(ns) => Api::namespaced(client.clone(), ns),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::All => f.write_str("all namespaces"),
            Scope::Namespace(ns) => write!(f, "namespace {ns}"),
        }
    }
}

/// Pages through one LIST of `api` with `selector`, calling `each` for every object. Returns
/// the number of pages read. `what` names the LIST in errors.
pub async fn each<K>(
    requests: &Requests,
    api: &Api<K>,
    selector: Option<&str>,
    what: &str,
    mut each: impl FnMut(K),
) -> Result<usize>
where
    K: Clone + DeserializeOwned + Debug,
{
    let mut params = ListParams::default().limit(PAGE);
    if let Some(s) = selector {
        params = params.labels(s);
    }
    let mut pages = 0;
    loop {
        let page = requests
            .call(what, || api.list(&params))
            .await
            .map_err(|e| Error::kube(what, e))?;
        pages += 1;
        let next = page.metadata.continue_.filter(|c| !c.is_empty());
        page.items.into_iter().for_each(&mut each);
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(pages),
        }
    }
}

/// Every VolumeSnapshot in `scope` matching `selector`, one paged LIST.
pub async fn snapshots(
    requests: &Requests,
    scope: &Scope,
    selector: &str,
    each_snapshot: impl FnMut(VolumeSnapshot),
) -> Result<usize> {
    let api = scope.api::<VolumeSnapshot>(&requests.client);
    let what = format!("list volumesnapshots ({selector}) in {scope}");
    each(requests, &api, Some(selector), &what, each_snapshot).await
}

/// Every PersistentVolumeClaim in `scope`, one paged LIST (no selector: claims carry no
/// backup-ns label; `status` reads the record of the last attempt from their annotations).
pub async fn pvcs(
    requests: &Requests,
    scope: &Scope,
    each_pvc: impl FnMut(PersistentVolumeClaim),
) -> Result<usize> {
    let api = scope.api::<PersistentVolumeClaim>(&requests.client);
    let what = format!("list persistentvolumeclaims in {scope}");
    each(requests, &api, None, &what, each_pvc).await
}

/// The planners' view of every snapshot with a `backup-ns.sh/retain` label in `scope` (a
/// snapshot without one is kept forever, so it is not even read), read at `now`, and the pages
/// read.
pub async fn retained(
    requests: &Requests,
    scope: &Scope,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<SnapshotRecord>, usize)> {
    let mut records = Vec::new();
    let pages = snapshots(requests, scope, labels::RETAIN, |vs| {
        records.push(SnapshotRecord::from_snapshot(&vs, now));
    })
    .await?;
    Ok((records, pages))
}

/// The start shared by `retain` and `mark-and-delete`: a paced client without kube's retry
/// layer and the one paged LIST of retained snapshots. Errors are logged here; the caller exits
/// with the returned status.
pub async fn start(
    qps: f64,
    namespace: Option<String>,
) -> std::result::Result<(Requests, Scope, Vec<SnapshotRecord>), crate::ExitStatus> {
    let (client, _) = super::client(false).await.map_err(|e| {
        tracing::error!("{e:#}");
        crate::ExitStatus::Failure
    })?;
    let requests = Requests::new(client, qps);
    let scope = Scope::from_option(namespace);
    let (records, pages) = retained(&requests, &scope, chrono::Utc::now())
        .await
        .map_err(|e| super::report_error(&e))?;
    tracing::info!(
        "{} snapshots with a retain label in {scope} ({pages} LIST pages)",
        records.len()
    );
    Ok((requests, scope, records))
}

/// Every VolumeSnapshotContent (cluster-scoped), one paged LIST.
pub async fn contents(
    requests: &Requests,
    each_content: impl FnMut(VolumeSnapshotContent),
) -> Result<usize> {
    let api: Api<VolumeSnapshotContent> = Api::all(requests.client.clone());
    each(
        requests,
        &api,
        None,
        "list volumesnapshotcontents",
        each_content,
    )
    .await
}

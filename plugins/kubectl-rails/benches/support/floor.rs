//! The floor: the cluster's own time for a release, seen by raw watches. It starts at the first
//! write to one of the app's ConfigMaps, Jobs or Deployments (whichever tool made it) and ends
//! when the release's pods, told apart by their image, are all Ready. Whatever a tool takes
//! beyond that is its overhead: its start, its reads and checks before the first write, and its
//! noticing that the pods are Ready.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{ListParams, WatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

/// Gives up on a floor after this long (a deploy that failed).
const LIMIT: Duration = Duration::from_secs(900);

/// A floor being watched; armed before the deploy starts.
pub struct Floor(tokio::task::JoinHandle<Option<Duration>>);

/// Arms the watches in `ns` (they are established when this returns), then waits in the
/// background for the first write and for `pods` Ready pods of `instance` running `image`.
pub fn arm(
    runtime: &tokio::runtime::Runtime,
    client: &Client,
    ns: &str,
    instance: &str,
    image: &str,
    pods: usize,
) -> Floor {
    let writes = runtime.block_on(async {
        futures::stream::select_all([
            writes::<ConfigMap>(client, ns).await,
            writes::<Job>(client, ns).await,
            writes::<Deployment>(client, ns).await,
        ])
    });
    let (client, ns, image) = (client.clone(), ns.to_string(), image.to_string());
    // The release's processes, not its migration pod (Ready while it runs, on kwok nodes).
    let selector =
        format!("app.kubernetes.io/instance={instance},app.kubernetes.io/component!=migrate");
    Floor(runtime.spawn(async move {
        tokio::time::timeout(LIMIT, async move {
            let mut writes = writes;
            writes.next().await?;
            let first = Instant::now();
            ready_pods(&client, &ns, &selector, &image, pods).await;
            Some(first.elapsed())
        })
        .await
        .ok()
        .flatten()
    }))
}

impl Floor {
    /// The floor, once the deploy has ended; `None` when it never finished.
    pub fn wait(self, runtime: &tokio::runtime::Runtime) -> Option<Duration> {
        runtime.block_on(self.0).unwrap()
    }
}

/// A stream that yields once per write to any `K` in `ns` after this call: a watch from the
/// resource version of a fresh list.
async fn writes<K>(client: &Client, ns: &str) -> futures::stream::BoxStream<'static, ()>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
    K::DynamicType: Default,
{
    let api = Api::<K>::namespaced(client.clone(), ns);
    let version = api
        .list_metadata(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap_or_default();
    let stream = api.watch(&WatchParams::default(), &version).await.unwrap();
    stream.map(|_| ()).boxed()
}

/// Returns once `want` pods matching `selector` run `image`, are Ready and not terminating.
async fn ready_pods(client: &Client, ns: &str, selector: &str, image: &str, want: usize) {
    let mut pods = watcher(
        Api::<Pod>::namespaced(client.clone(), ns),
        watcher::Config::default().labels(selector),
    )
    .applied_objects()
    .boxed();
    let mut ready = BTreeSet::new();
    while let Some(Ok(p)) = pods.next().await {
        let name = p.metadata.name.clone().unwrap_or_default();
        let is_ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let ours = p.spec.as_ref().is_some_and(|s| {
            s.containers
                .iter()
                .any(|c| c.image.as_deref() == Some(image))
        });
        if is_ready && ours && p.metadata.deletion_timestamp.is_none() {
            ready.insert(name);
        } else {
            ready.remove(&name);
        }
        if ready.len() >= want {
            return;
        }
    }
}

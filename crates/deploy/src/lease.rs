//! One deploy of an app at a time: a `coordination.k8s.io` Lease held for the whole deploy and
//! renewed while it runs. A crashed deploy's lease expires on its own.
//!
//! The lease is ours only while its `holderIdentity` is: renewal writes only over a lease we
//! still hold (a replace conditional on the resourceVersion just read), a deploy checks before
//! each write that it still holds it, and release deletes only our own lease (a delete
//! conditional on its uid and resourceVersion). A deploy that was stopped long enough for its
//! lease to expire and be taken stops before writing anything more.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{DeleteParams, PostParams, Preconditions};
use kubectl_rails_kube::api_err;

use crate::DeployError;

const DURATION_SECS: i32 = 30;
const RENEW_EVERY: Duration = Duration::from_secs(10);

/// Who holds the lease: `user@host`, and a random id for this run, so that two deploys by the
/// same person on the same machine are told apart.
pub fn holder_identity(user_at_host: &str) -> String {
    static RUN: OnceLock<String> = OnceLock::new();
    let run = RUN.get_or_init(|| {
        let mut bytes = [0u8; 4];
        // Without OS randomness, the process id and the time still tell runs apart.
        if getrandom::fill(&mut bytes).is_err() {
            let t = Timestamp::now().as_nanosecond() as u32 ^ std::process::id();
            bytes = t.to_be_bytes();
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    });
    format!("{user_at_host} (run {run})")
}

/// This machine's name, on every OS, for the lease holder and the release record.
pub fn host_name() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

/// What the renewal last learned.
#[derive(Debug, Default)]
struct Held {
    /// The holder that took the lease from us, once it did.
    lost_to: Option<String>,
}

/// A held lease; dropping it without [`DeployLease::release`] leaves it to expire.
pub struct DeployLease {
    api: Api<Lease>,
    name: String,
    app: String,
    holder: String,
    held: Arc<Mutex<Held>>,
    renewal: tokio::task::JoinHandle<()>,
}

fn lease_name(app: &str) -> String {
    format!("{app}-deploy")
}

fn spec(holder: &str, acquired: Option<MicroTime>) -> LeaseSpec {
    let now = MicroTime(Timestamp::now());
    LeaseSpec {
        holder_identity: Some(holder.to_string()),
        lease_duration_seconds: Some(DURATION_SECS),
        acquire_time: Some(acquired.unwrap_or_else(|| now.clone())),
        renew_time: Some(now),
        ..LeaseSpec::default()
    }
}

fn holder_of(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref()
}

fn expired(lease: &Lease) -> bool {
    let Some(s) = &lease.spec else { return true };
    let Some(renewed) = &s.renew_time else {
        return true;
    };
    let duration =
        SignedDuration::from_secs(i64::from(s.lease_duration_seconds.unwrap_or(DURATION_SECS)));
    renewed
        .0
        .checked_add(duration)
        .is_ok_and(|until| until < Timestamp::now())
}

/// Takes the app's deploy lease, or says who holds it.
pub async fn acquire(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    holder: &str,
) -> Result<DeployLease, DeployError> {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let name = lease_name(app);
    let locked = |lease: &Lease| DeployError::Locked {
        app: app.to_string(),
        holder: holder_of(lease).unwrap_or("unknown").to_string(),
        since: lease
            .spec
            .as_ref()
            .and_then(|s| s.acquire_time.as_ref())
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
    };
    // Usually nobody holds it: create first, and read only when it exists.
    let fresh = Lease {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(spec(holder, None)),
    };
    let result = match api.create(&PostParams::default(), &fresh).await {
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let existing = api
                .get(&name)
                .await
                .map_err(api_err(format!("read the deploy lease of `{app}`")))?;
            if !expired(&existing) {
                return Err(locked(&existing));
            }
            // Replacing with the resourceVersion we read makes a race with another taker a 409.
            let mut lease = existing;
            lease.spec = Some(spec(holder, None));
            api.replace(&name, &PostParams::default(), &lease).await
        }
        other => other,
    };
    match result {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let lease = api
                .get(&name)
                .await
                .map_err(api_err(format!("read the deploy lease of `{app}`")))?;
            return Err(locked(&lease));
        }
        Err(e) => return Err(api_err(format!("take the deploy lease of `{app}`"))(e).into()),
    }
    let held = Arc::new(Mutex::new(Held::default()));
    let renewal = {
        let (api, name, holder, held) =
            (api.clone(), name.clone(), holder.to_string(), held.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                match renew(&api, &name, &holder).await {
                    Renewal::Renewed | Renewal::TryAgain => {}
                    Renewal::Lost(to) => {
                        held.lock().unwrap_or_else(|p| p.into_inner()).lost_to = Some(to);
                        return;
                    }
                }
            }
        })
    };
    Ok(DeployLease {
        api,
        name,
        app: app.to_string(),
        holder: holder.to_string(),
        held,
        renewal,
    })
}

enum Renewal {
    Renewed,
    /// A read or write failed for a reason that may pass (a 409 from a race, a network blip).
    TryAgain,
    /// Someone else holds it now, or it is gone.
    Lost(String),
}

fn taker(lease: Option<&Lease>) -> String {
    match lease.and_then(holder_of) {
        Some(h) => h.to_string(),
        None => "nobody (the lease was deleted)".into(),
    }
}

/// Renews the lease only while it is still ours, and only over the version just read.
async fn renew(api: &Api<Lease>, name: &str, holder: &str) -> Renewal {
    let Ok(current) = api.get_opt(name).await else {
        return Renewal::TryAgain;
    };
    match current {
        Some(mut lease) if holder_of(&lease) == Some(holder) => {
            let acquired = lease.spec.as_ref().and_then(|s| s.acquire_time.clone());
            lease.spec = Some(spec(holder, acquired));
            match api.replace(name, &PostParams::default(), &lease).await {
                Ok(_) => Renewal::Renewed,
                Err(_) => Renewal::TryAgain,
            }
        }
        other => Renewal::Lost(taker(other.as_ref())),
    }
}

impl DeployLease {
    /// Fails when the lease is no longer ours: called before each write of the deploy.
    pub async fn ensure_held(&self) -> Result<(), DeployError> {
        let lost = |to: String| DeployError::LeaseLost {
            app: self.app.clone(),
            holder: to,
        };
        if let Some(to) = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .lost_to
            .clone()
        {
            return Err(lost(to));
        }
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(api_err(format!("read the deploy lease of `{}`", self.app)))?;
        match current {
            Some(lease) if holder_of(&lease) == Some(self.holder.as_str()) => Ok(()),
            other => Err(lost(taker(other.as_ref()))),
        }
    }

    /// Gives the lease back so the next deploy need not wait for it to expire: only if it is
    /// still ours.
    pub async fn release(self) {
        self.renewal.abort();
        delete_if_ours(&self.api, &self.name, &self.holder).await;
    }
}

/// Deletes the lease if `holder` holds it, conditional on the uid and resourceVersion read: a
/// lease another deploy took in between is left alone.
async fn delete_if_ours(api: &Api<Lease>, name: &str, holder: &str) {
    if let Ok(Some(lease)) = api.get_opt(name).await
        && holder_of(&lease) == Some(holder)
    {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: lease.metadata.uid.clone(),
                resource_version: lease.metadata.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        let _ = api.delete(name, &params).await;
    }
}

/// Gives back a lease this holder took, after the deploy that held it was interrupted.
pub async fn release_if_held(client: &kube::Client, namespace: &str, app: &str, holder: &str) {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    delete_if_ours(&api, &lease_name(app), holder).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_names_user_host_and_run() {
        let a = holder_identity("alice@laptop");
        assert!(a.starts_with("alice@laptop (run "), "{a}");
        assert_eq!(a.len(), "alice@laptop (run 0123abcd)".len(), "{a}");
        assert_eq!(a, holder_identity("alice@laptop"), "one id per run");
        assert!(!host_name().is_empty());
    }
}

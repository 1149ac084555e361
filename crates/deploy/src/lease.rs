//! One deploy of an app at a time: a `coordination.k8s.io` Lease held for the whole deploy and
//! renewed while it runs. A crashed deploy's lease expires on its own.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use kubectl_rails_kube::api_err;

use crate::DeployError;

const DURATION_SECS: i32 = 30;
const RENEW_EVERY: Duration = Duration::from_secs(10);

/// A held lease; dropping it without [`DeployLease::release`] leaves it to expire.
pub struct DeployLease {
    api: Api<Lease>,
    name: String,
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
        holder: lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_else(|| "unknown".into()),
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
    let renewal = {
        let (api, name, holder) = (api.clone(), name.clone(), holder.to_string());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                if let Ok(mut lease) = api.get(&name).await {
                    let acquired = lease.spec.as_ref().and_then(|s| s.acquire_time.clone());
                    lease.spec = Some(spec(&holder, acquired));
                    let _ = api.replace(&name, &PostParams::default(), &lease).await;
                }
            }
        })
    };
    Ok(DeployLease { api, name, renewal })
}

impl DeployLease {
    /// Gives the lease back so the next deploy need not wait for it to expire.
    pub async fn release(self) {
        self.renewal.abort();
        let _ = self.api.delete(&self.name, &DeleteParams::default()).await;
    }
}

/// Gives back a lease this holder took, after the deploy that held it was interrupted.
pub async fn release_if_held(client: &kube::Client, namespace: &str, app: &str, holder: &str) {
    let api: Api<Lease> = Api::namespaced(client.clone(), namespace);
    let name = lease_name(app);
    if let Ok(Some(lease)) = api.get_opt(&name).await
        && lease.spec.and_then(|s| s.holder_identity).as_deref() == Some(holder)
    {
        let _ = api.delete(&name, &DeleteParams::default()).await;
    }
}

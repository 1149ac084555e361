//! The app's HTTPRoute as its Gateway sees it ([`verdict`]): deploy waits for `Accepted` and
//! `ResolvedRefs` after the rollout, and says why when the Gateway refuses.

use std::time::Duration;

use kube::api::DynamicObject;
use kube::{Api, Client};
pub use kubectl_rails_core::gateway::{Verdict, verdict};
use kubectl_rails_core::model::GatewayRef;
use kubectl_rails_kube::{api_err, api_resource};
use serde::Serialize;
use tokio::time::Instant;

use crate::{DeployError, Reporter};

/// How long after the route was applied its Gateway's controller may stay silent before the
/// deploy stops waiting and warns: a controller that reports at all does so within a second or
/// two, and one that never does (HAProxy Ingress v0.16) must not hold every deploy.
pub const REPORT_GRACE: Duration = Duration::from_secs(10);

/// Where the route ended, for the deploy's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteOutcome {
    pub name: String,
    /// `namespace/name`.
    pub gateway: String,
    /// `accepted`, or `not-reported` when the Gateway's controller said nothing in time.
    pub state: &'static str,
}

/// Waits until the Gateway accepts the app's route, from the moment it was applied
/// (`applied`): a refusal ends the deploy; silence past [`REPORT_GRACE`] (or the deadline) is
/// a warning.
pub(crate) async fn wait_accepted(
    client: &Client,
    ns: &str,
    name: &str,
    gateway: &GatewayRef,
    applied: Instant,
    deadline: Instant,
    reporter: &dyn Reporter,
) -> Result<RouteOutcome, DeployError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), ns, &api_resource("HTTPRoute")?);
    let shown = gateway.display(ns);
    loop {
        let route = api.get(name).await.map_err(api_err(format!(
            "read HTTPRoute `{name}` in namespace `{ns}`"
        )))?;
        let value = serde_json::to_value(&route).unwrap_or_default();
        let why = match verdict(&value, gateway, ns) {
            Verdict::Accepted => {
                return Ok(RouteOutcome {
                    name: name.to_string(),
                    gateway: shown,
                    state: "accepted",
                });
            }
            Verdict::Refused {
                condition,
                reason,
                message,
            } => {
                return Err(DeployError::RouteRefused {
                    route: name.to_string(),
                    gateway: shown,
                    condition,
                    reason,
                    message,
                    revision: None,
                });
            }
            Verdict::Pending(why) => why,
        };
        let now = Instant::now();
        if now >= applied + REPORT_GRACE || now >= deadline {
            reporter.warn(&format!(
                "the Gateway `{shown}` did not report on HTTPRoute `{name}` within {}s ({why}): requests may not reach the app yet; `kubectl rails doctor` checks the Gateway (some controllers, such as HAProxy Ingress v0.16, never write route status)",
                REPORT_GRACE.as_secs()
            ));
            return Ok(RouteOutcome {
                name: name.to_string(),
                gateway: shown,
                state: "not-reported",
            });
        }
        reporter.progress(&format!("route: {why}"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

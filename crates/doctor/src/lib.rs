//! Is this cluster ready for this app? Each check is a function that asks the cluster one
//! question and returns a [`Finding`]: what it found, how bad it is ([`Severity`]), and the
//! command that fixes it. `kubectl rails doctor` prints them; `deploy`'s preflight asks the same
//! questions through the facts below ([`app_secret`], [`pull_secret`], [`ingress_classes`]) and
//! words the answers as its own errors and warnings.
//!
//! It only reads: it never changes the cluster (its one request that is not a read is a
//! SelfSubjectAccessReview, a question about the caller's own permissions), never prompts and
//! never prints. A finding never holds a secret value: it names keys and registry hosts only.

mod builder;
mod cluster;
mod gateway;
mod ingress;
mod network;
mod secrets;
mod storage;

use kube::Client;
use kubectl_rails_core::AppSpec;
use kubectl_rails_kube::KubeError;
use serde::Serialize;

pub use cluster::{dns, kubectl_version, nodes, rbac, server_version};
pub use gateway::{gateway, gateways};
pub use ingress::{
    ClassChoice, IngressClassInfo, cert_manager, choose_class, controller, ingress_class,
    ingress_classes,
};
pub use network::{enforcing_plugin, network_policy};
pub use secrets::{
    AppSecret, PullSecret, app_secret, app_secret_check, pull_secret, pull_secret_check,
};
pub use storage::storage;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// ✓: ready.
    Ok,
    /// ✗: the app will not work until the fix is made.
    Fail,
    /// –: the check could not be made (a permission, no address yet, no DNS answer).
    NotChecked,
}

/// One check's answer, as data: `-o json` prints it as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was checked (`IngressClass`, `pull secret`, `DNS shop.example.com`).
    pub check: String,
    #[serde(rename = "outcome")]
    pub severity: Severity,
    /// What was found.
    pub detail: String,
    /// The command or change that fixes a failed check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(check: &str, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            severity: Severity::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fail(check: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            severity: Severity::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn not_checked(check: &str, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            severity: Severity::NotChecked,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A read that failed: not checked when it was forbidden (`forbidden` says what could not
    /// be read), a failure otherwise.
    fn unread(check: &str, error: &KubeError, forbidden: impl Into<String>) -> Self {
        if error.is_forbidden() {
            return Self::not_checked(check, forbidden);
        }
        Self::fail(check, cause(error), "check the cluster")
    }
}

/// The server's own words for a failed request, without our "failed to read ..." around them.
fn cause(error: &KubeError) -> String {
    match error {
        KubeError::Api { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

fn forbidden(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 403)
}

/// Every check, in the order `doctor` shows them.
pub async fn check_all(client: &Client, ns: &str, spec: &AppSpec) -> Vec<Finding> {
    let mut findings = vec![server_version(client).await, nodes(client).await];
    if spec.gateway().is_some() {
        findings.extend(gateway(client, ns, spec).await);
    } else {
        let (class_finding, class) = ingress_class(client, spec).await;
        findings.push(class_finding);
        if let Some(class) = class {
            findings.push(controller(client, &class).await);
        }
    }
    findings.extend(cert_manager(client, ns, spec).await);
    findings.extend(pull_secret_check(client, ns, spec).await);
    findings.extend(app_secret_check(client, ns, spec).await);
    findings.extend(storage(client, ns, spec).await);
    findings.extend(network_policy(client, spec).await);
    findings.extend(dns(client, ns, spec).await);
    findings.extend(builder::cluster_builder(client, ns, spec).await);
    findings.push(rbac(client, ns, &spec.own_secret_names()).await);
    findings
}

//! Least privilege: exactly the namespaced permissions that deploy, exec, logs, scale and
//! secrets use, as one table. `kubectl rails rbac` renders it as a Role; `doctor` checks it with
//! SelfSubjectAccessReviews.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// One permission: verbs on a resource of an API group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    pub group: &'static str,
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
    /// Which command needs it.
    pub used_by: &'static str,
    /// Only on the app's own objects of that kind (`resourceNames`): the Secrets.
    pub named: bool,
}

impl Permission {
    /// `deployments.apps`, or `pods/exec` for the core group, as kubectl writes it.
    pub fn resource_name(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_string()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

const RW: &[&str] = &["get", "list", "watch", "create", "patch", "delete"];
const READ: &[&str] = &["get", "list", "watch"];

/// Everything the plugin does in an app's namespace.
pub const PERMISSIONS: &[Permission] = &[
    Permission {
        group: "apps",
        resource: "deployments",
        verbs: RW,
        used_by: "deploy",
        named: false,
    },
    Permission {
        group: "apps",
        resource: "deployments/scale",
        verbs: &["patch"],
        used_by: "scale",
        named: false,
    },
    Permission {
        group: "",
        resource: "services",
        verbs: RW,
        used_by: "deploy",
        named: false,
    },
    Permission {
        group: "",
        resource: "configmaps",
        verbs: RW,
        used_by: "deploy",
        named: false,
    },
    Permission {
        group: "",
        resource: "persistentvolumeclaims",
        verbs: RW,
        used_by: "deploy",
        named: false,
    },
    Permission {
        group: "batch",
        resource: "jobs",
        verbs: RW,
        used_by: "deploy",
        named: false,
    },
    Permission {
        group: "batch",
        resource: "cronjobs",
        verbs: RW,
        used_by: "deploy, cron",
        named: false,
    },
    Permission {
        group: "apps",
        resource: "statefulsets",
        verbs: RW,
        used_by: "deploy (accessories)",
        named: false,
    },
    Permission {
        group: "networking.k8s.io",
        resource: "ingresses",
        verbs: RW,
        used_by: "deploy, maintenance",
        named: false,
    },
    // Only an app behind a Gateway (`ingress.gateway`) uses it; a Role may name it whether or
    // not the cluster serves the Gateway API.
    Permission {
        group: "gateway.networking.k8s.io",
        resource: "httproutes",
        verbs: RW,
        used_by: "deploy, maintenance, status (with `ingress.gateway`)",
        named: false,
    },
    Permission {
        group: "networking.k8s.io",
        resource: "networkpolicies",
        verbs: RW,
        used_by: "deploy",
        named: false,
    },
    Permission {
        group: "policy",
        resource: "poddisruptionbudgets",
        verbs: RW,
        used_by: "deploy",
        named: false,
    },
    Permission {
        group: "autoscaling",
        resource: "horizontalpodautoscalers",
        verbs: RW,
        used_by: "deploy, autoscale",
        named: false,
    },
    Permission {
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["get", "create", "update", "delete"],
        used_by: "deploy",
        named: false,
    },
    // A Role cannot name what does not exist yet, so `create` is for any Secret; reading and
    // changing one only for the app's own: its Secret, its pull secret, its accessories'.
    Permission {
        group: "",
        resource: "secrets",
        verbs: &["create"],
        used_by: "deploy, secrets, accessory",
        named: false,
    },
    Permission {
        group: "",
        resource: "secrets",
        verbs: &["get", "patch", "update", "delete"],
        used_by: "deploy, secrets, destroy --include-secrets",
        named: true,
    },
    Permission {
        group: "",
        resource: "pods",
        verbs: &["get", "list", "watch", "create", "delete"],
        used_by: "deploy, run",
        named: false,
    },
    Permission {
        group: "",
        resource: "pods/log",
        verbs: &["get"],
        used_by: "deploy, logs",
        named: false,
    },
    // Exec over WebSockets opens with a GET; over SPDY with a POST.
    Permission {
        group: "",
        resource: "pods/exec",
        verbs: &["get", "create"],
        used_by: "exec, console, run",
        named: false,
    },
    Permission {
        group: "",
        resource: "events",
        verbs: READ,
        used_by: "deploy, status",
        named: false,
    },
];

fn labels(app: &str) -> BTreeMap<String, String> {
    [
        ("app.kubernetes.io/name", app),
        ("app.kubernetes.io/instance", app),
        ("app.kubernetes.io/component", "deployer"),
        ("app.kubernetes.io/managed-by", "kubectl-rails"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A ServiceAccount, a Role with [`PERMISSIONS`] (minus `without`, for tests of denial), and the
/// RoleBinding between them, for a CI deployer of `app` in `namespace`; the named permissions
/// reach only `secret_names` (the app's own Secrets, [`crate::AppSpec::own_secret_names`]).
pub fn deployer(
    app: &str,
    namespace: &str,
    secret_names: &[String],
    without: &[(&str, &str)],
) -> (ServiceAccount, Role, RoleBinding) {
    let name = format!("{app}-deployer");
    let meta = || ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(namespace.to_string()),
        labels: Some(labels(app)),
        ..ObjectMeta::default()
    };
    let rules = PERMISSIONS
        .iter()
        .filter_map(|p| {
            let verbs: Vec<String> = p
                .verbs
                .iter()
                .filter(|v| {
                    !without
                        .iter()
                        .any(|(wv, wr)| wv == *v && *wr == p.resource_name())
                })
                .map(|v| v.to_string())
                .collect();
            (!verbs.is_empty()).then(|| PolicyRule {
                api_groups: Some(vec![p.group.to_string()]),
                resources: Some(vec![p.resource.to_string()]),
                resource_names: p.named.then(|| secret_names.to_vec()),
                verbs,
                ..PolicyRule::default()
            })
        })
        .collect();
    let sa = ServiceAccount {
        metadata: meta(),
        ..ServiceAccount::default()
    };
    let role = Role {
        metadata: meta(),
        rules: Some(rules),
    };
    let binding = bind(meta(), &name, &name, namespace);
    (sa, role, binding)
}

/// A RoleBinding (`metadata`) of the Role `role` to the ServiceAccount `account` of `namespace`.
fn bind(metadata: ObjectMeta, role: &str, account: &str, namespace: &str) -> RoleBinding {
    RoleBinding {
        metadata,
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: role.into(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: account.into(),
            namespace: Some(namespace.to_string()),
            ..Subject::default()
        }]),
    }
}

/// The `cluster` builder's rights in a namespace for builds other than the app's: its BuildKit
/// pod made, followed, exec'd into and removed, by the deployer of `app` in `namespace`.
pub fn builder(app: &str, namespace: &str, builds: &str) -> (Role, RoleBinding) {
    let name = format!("{app}-builder");
    let meta = || ObjectMeta {
        name: Some(name.clone()),
        namespace: Some(builds.to_string()),
        labels: Some(labels(app)),
        ..ObjectMeta::default()
    };
    // The deployer's own rights on pods and their exec, in the builds namespace.
    let rules = PERMISSIONS
        .iter()
        .filter(|p| p.group.is_empty() && matches!(p.resource, "pods" | "pods/exec"))
        .map(|p| PolicyRule {
            api_groups: Some(vec![p.group.to_string()]),
            resources: Some(vec![p.resource.to_string()]),
            verbs: p.verbs.iter().map(|v| v.to_string()).collect(),
            ..PolicyRule::default()
        })
        .collect();
    let role = Role {
        metadata: meta(),
        rules: Some(rules),
    };
    let binding = bind(meta(), &name, &format!("{app}-deployer"), namespace);
    (role, binding)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_may_run_its_pod_in_the_builds_namespace_only() {
        let (role, binding) = builder("shop", "shop-prod", "builds");
        assert_eq!(role.metadata.namespace.as_deref(), Some("builds"));
        let rules = role.rules.unwrap();
        let resources: Vec<_> = rules
            .iter()
            .flat_map(|r| r.resources.clone().unwrap())
            .collect();
        assert_eq!(resources, ["pods", "pods/exec"]);
        let subject = &binding.subjects.unwrap()[0];
        assert_eq!(
            (subject.name.as_str(), subject.namespace.as_deref()),
            ("shop-deployer", Some("shop-prod"))
        );
    }

    #[test]
    fn without_removes_one_verb() {
        let (_, role, _) = deployer("shop", "shop", &[], &[("create", "deployments.apps")]);
        let rules = role.rules.unwrap();
        let deployments = rules
            .iter()
            .find(|r| r.resources.as_deref() == Some(&["deployments".to_string()][..]))
            .unwrap();
        assert!(!deployments.verbs.contains(&"create".to_string()));
        assert!(deployments.verbs.contains(&"patch".to_string()));
        assert_eq!(rules.len(), PERMISSIONS.len());
    }

    #[test]
    fn secrets_are_read_and_changed_only_by_name() {
        let names = vec!["shop-secrets".to_string(), "shop-registry".to_string()];
        let (_, role, _) = deployer("shop", "shop", &names, &[]);
        let secrets: Vec<_> = role
            .rules
            .unwrap()
            .into_iter()
            .filter(|r| r.resources.as_deref() == Some(&["secrets".to_string()][..]))
            .collect();
        assert_eq!(secrets.len(), 2);
        assert_eq!(secrets[0].verbs, ["create"]);
        assert_eq!(secrets[0].resource_names, None);
        assert_eq!(secrets[1].verbs, ["get", "patch", "update", "delete"]);
        assert_eq!(secrets[1].resource_names.as_deref(), Some(&names[..]));
    }

    #[test]
    fn names_as_kubectl_writes_them() {
        assert_eq!(PERMISSIONS[0].resource_name(), "deployments.apps");
        assert_eq!(
            PERMISSIONS
                .iter()
                .find(|p| p.resource == "pods/exec")
                .unwrap()
                .resource_name(),
            "pods/exec"
        );
    }
}

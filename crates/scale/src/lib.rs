//! `scale` and `autoscale`: change replica counts in the cluster and in `config/kubernetes.yml`,
//! so that the next deploy does not undo them.
//!
//! It never rewrites the spec file whole: edits are targeted text edits, so the user's comments
//! and layout stay. It never prints.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client};
use kubectl_rails_core::model::Autoscale;
use kubectl_rails_core::render::{self, RenderInputs};
use kubectl_rails_core::validate::autoscale_problem;
use kubectl_rails_core::{AppSpec, file};
use kubectl_rails_kube::{Applier, KubeError, api_err};

#[derive(Debug, thiserror::Error)]
pub enum ScaleError {
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error("`{given}` is not `PROCESS=REPLICAS` or a number")]
    Syntax { given: String },
    #[error("replicas must be 0 or more, not {replicas} (`{given}`)")]
    Negative { given: String, replicas: i64 },
    #[error("process `{process}` does not exist (the app has {known})")]
    UnknownProcess { process: String, known: String },
    #[error("invalid autoscaling: {0}")]
    Autoscale(String),
    #[error("`{process}` is not deployed in namespace `{namespace}`")]
    NotDeployed { process: String, namespace: String },
    #[error("cannot update `{path}`: the spec does not have `{key}` where kubectl-rails writes it")]
    SpecLayout { path: String, key: String },
    #[error(transparent)]
    SpecFile(#[from] file::SpecFileError),
    #[error(
        "refusing {replicas} `web` replicas: the app keeps its data on volume `{volume}`, which is ReadWriteOnce, so every replica would share one node and its disk (with SQLite, one file)"
    )]
    SingleNode { volume: String, replicas: i32 },
}

impl ScaleError {
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Kube(e) => e.hint(),
            Self::Syntax { .. } => {
                Some("for example `kubectl rails scale web=3 jobs=2`, or `scale 3` for web".into())
            }
            Self::Negative { .. } => Some("use 0 to stop a process".into()),
            Self::UnknownProcess { .. } => Some("use one of the listed processes".into()),
            Self::NotDeployed { .. } => Some("deploy it first with `kubectl rails deploy`".into()),
            Self::SpecLayout { .. } => Some("edit the spec by hand, then deploy".into()),
            Self::SingleNode { .. } => Some(
                "scale out with a ReadWriteMany StorageClass (`volume: {access_mode: ReadWriteMany, storage_class: NAME}` in the spec), or move files to object storage and drop the volume; `--force` scales anyway".into(),
            ),
            Self::Autoscale(_) | Self::SpecFile(_) => None,
        }
    }
}

/// More than one web replica of an app whose data lives on a ReadWriteOnce volume adds no
/// capacity (they all share its one node) and, with SQLite, more writers of one file.
pub fn check_single_node(spec: &AppSpec, web_replicas: i32) -> Result<(), ScaleError> {
    match spec.single_node_volume() {
        Some(v) if web_replicas > 1 => Err(ScaleError::SingleNode {
            volume: v.name.clone(),
            replicas: web_replicas,
        }),
        _ => Ok(()),
    }
}

/// Parses `web=3 jobs=2`, or a bare `3` for web.
pub fn parse_targets(args: &[String], spec: &AppSpec) -> Result<Vec<(String, i32)>, ScaleError> {
    let mut out = Vec::new();
    for given in args {
        let (process, count) = match given.split_once('=') {
            Some((p, c)) => (p.trim().to_string(), c.trim()),
            None => ("web".to_string(), given.trim()),
        };
        let n: i64 = count.parse().map_err(|_| ScaleError::Syntax {
            given: given.clone(),
        })?;
        if n < 0 {
            return Err(ScaleError::Negative {
                given: given.clone(),
                replicas: n,
            });
        }
        if spec.replicas_of(&process).is_none() {
            return Err(ScaleError::UnknownProcess {
                process,
                known: spec.process_names().join(", "),
            });
        }
        let n = i32::try_from(n).map_err(|_| ScaleError::Syntax {
            given: given.clone(),
        })?;
        out.push((process, n));
    }
    if out.is_empty() {
        return Err(ScaleError::Syntax {
            given: String::new(),
        });
    }
    Ok(out)
}

fn process_path(process: &str) -> Vec<&str> {
    if process == "web" {
        vec!["web"]
    } else {
        vec!["workers", process]
    }
}

/// The spec text with new replica counts.
pub fn spec_with_replicas(text: &str, targets: &[(String, i32)]) -> Result<String, ScaleError> {
    let mut text = text.to_string();
    for (process, n) in targets {
        let parent = process_path(process);
        text =
            file::edit::set_child(&text, &parent, "replicas", &n.to_string()).ok_or_else(|| {
                ScaleError::SpecLayout {
                    path: parent.join("."),
                    key: "replicas".into(),
                }
            })?;
    }
    Ok(text)
}

/// The spec text with an autoscaler set (`Some`) or removed (`None`).
pub fn spec_with_autoscale(
    text: &str,
    process: &str,
    autoscale: Option<Autoscale>,
) -> Result<String, ScaleError> {
    let parent = process_path(process);
    let mut path = parent.clone();
    path.push("autoscale");
    match autoscale {
        Some(a) => file::edit::set_child(
            text,
            &parent,
            "autoscale",
            &format!("{{min: {}, max: {}, cpu: {}}}", a.min, a.max, a.cpu),
        )
        .ok_or_else(|| ScaleError::SpecLayout {
            path: parent.join("."),
            key: "autoscale".into(),
        }),
        None => Ok(file::edit::remove(text, &path).unwrap_or_else(|| text.to_string())),
    }
}

/// Checks an autoscaler's bounds.
pub fn check_autoscale(a: Autoscale) -> Result<(), ScaleError> {
    match autoscale_problem(a) {
        Some(p) => Err(ScaleError::Autoscale(p)),
        None => Ok(()),
    }
}

/// Sets the replicas of each process in the cluster; returns the processes an autoscaler
/// manages (their count will be changed back by it).
pub async fn scale(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    targets: &[(String, i32)],
) -> Result<Vec<String>, ScaleError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns);
    let mut managed = Vec::new();
    for (process, n) in targets {
        let name = spec.deployment_name(process);
        let patch = serde_json::json!({ "spec": { "replicas": n } });
        match deployments
            .patch_scale(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {
                return Err(ScaleError::NotDeployed {
                    process: process.clone(),
                    namespace: ns.into(),
                });
            }
            Err(e) => return Err(api_err(format!("scale Deployment `{name}`"))(e).into()),
        }
        if hpas
            .get_opt(&name)
            .await
            .map_err(api_err(format!("read autoscaler `{name}`")))?
            .is_some()
        {
            managed.push(process.clone());
        }
    }
    Ok(managed)
}

/// Applies the autoscaler the spec renders for `process`, or deletes it.
pub async fn apply_autoscaler(
    client: &Client,
    ns: &str,
    spec: &AppSpec,
    process: &str,
) -> Result<bool, ScaleError> {
    let name = spec.deployment_name(process);
    let release = render::render(spec, &RenderInputs::default());
    match release
        .objects
        .iter()
        .find(|o| o.kind == "HorizontalPodAutoscaler" && o.name == name)
    {
        Some(hpa) => {
            Applier::new(client.clone(), ns, false)
                .apply(&hpa.value)
                .await?;
            Ok(true)
        }
        None => {
            let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), ns);
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
                Err(e) => Err(api_err(format!("delete autoscaler `{name}`"))(e).into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AppSpec {
        file::parse(
            "name: shop\nimage: {repository: shop, tag: '1'}\nweb: {port: 3000, replicas: 1}\nworkers:\n  jobs:\n    command: [bin/jobs]\n",
            std::path::Path::new("x"),
        )
        .unwrap()
        .spec
    }

    #[test]
    fn targets() {
        let s = spec();
        assert_eq!(
            parse_targets(&["3".into()], &s).unwrap(),
            [("web".to_string(), 3)]
        );
        assert_eq!(
            parse_targets(&["web=2".into(), "jobs=0".into()], &s).unwrap(),
            [("web".to_string(), 2), ("jobs".to_string(), 0)]
        );
        assert!(matches!(
            parse_targets(&["web=-1".into()], &s),
            Err(ScaleError::Negative { replicas: -1, .. })
        ));
        let e = parse_targets(&["sidekiq=2".into()], &s).unwrap_err();
        assert_eq!(
            e.to_string(),
            "process `sidekiq` does not exist (the app has web, jobs)"
        );
        assert!(matches!(
            parse_targets(&["web=lots".into()], &s),
            Err(ScaleError::Syntax { .. })
        ));
    }

    #[test]
    fn spec_edits_add_missing_replicas() {
        let text = "name: shop\nweb:\n  port: 3000\n  replicas: 1\nworkers:\n  jobs:\n    command: [bin/jobs]\n";
        let t = spec_with_replicas(text, &[("web".into(), 3), ("jobs".into(), 2)]).unwrap();
        assert_eq!(
            t,
            "name: shop\nweb:\n  port: 3000\n  replicas: 3\nworkers:\n  jobs:\n    command: [bin/jobs]\n    replicas: 2\n"
        );
    }

    #[test]
    fn autoscale_bounds() {
        assert!(
            check_autoscale(Autoscale {
                min: 2,
                max: 10,
                cpu: 70
            })
            .is_ok()
        );
        let e = check_autoscale(Autoscale {
            min: 5,
            max: 2,
            cpu: 70,
        })
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid autoscaling: `min` (5) is greater than `max` (2)"
        );
    }
}

//! Review apps: one namespace per pull request, marked as a review app of one app, with the
//! app's Secret copied in (the spec's `review.override` keys filled per review app) and its pull
//! secret beside it; listing them, their expiry, and removing them.
//!
//! It never deploys and never prints: the binary deploys into the namespace this crate
//! prepares, and says what happened.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::{SignedDuration, Timestamp, Unit};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use kubectl_rails_core::AppSpec;
use kubectl_rails_core::model::ReviewSpec;
use kubectl_rails_kube::{KubeError, api_err};
use kubectl_rails_secrets::{AppSecrets, SecretsError};
use serde::Serialize;

/// The label naming the app a namespace is a review app of.
pub const REVIEW_OF: &str = "kubectl-rails.dev/review-of";
/// The label holding the review app's name.
pub const REVIEW_NAME: &str = "kubectl-rails.dev/review";
/// The annotation holding when `prune` may remove it (RFC 3339).
pub const EXPIRES_AT: &str = "kubectl-rails.dev/expires-at";
/// The annotation holding its URL.
pub const URL: &str = "kubectl-rails.dev/url";
/// The annotation, set only when the plugin creates the namespace, naming the app and the base
/// namespace it was made from (`shop/shop-staging`): the review app's identity. A namespace
/// without it, or with another app's, is never written to or deleted.
pub const OWNER: &str = "kubectl-rails.dev/review-owner";
/// The annotation set once the review app's first deploy (its `db:prepare` and seed) succeeded.
pub const PREPARED: &str = "kubectl-rails.dev/review-prepared";

/// A review app's identity: its app and the namespace of the app it copies.
pub fn owner(app: &str, base_namespace: &str) -> String {
    format!("{app}/{base_namespace}")
}

fn annotation<'a>(ns: &'a Namespace, key: &str) -> Option<&'a str> {
    ns.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// How long `down` waits for the namespace to be gone.
const DELETE_WAIT: Duration = Duration::from_secs(180);

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("pull secret `{name}` is missing in namespace `{namespace}`")]
    MissingPullSecret { name: String, namespace: String },
    #[error(
        "Secret `{name}` is missing in namespace `{namespace}`: a review app copies the app's secrets from there; nothing was written"
    )]
    MissingBaseSecret { name: String, namespace: String },
    #[error(
        "`review.override` of {key} uses `{{{placeholder}}}`, which Secret `{secret}` in namespace `{namespace}` lacks; nothing was written"
    )]
    MissingOverrideKey {
        key: String,
        placeholder: String,
        secret: String,
        namespace: String,
    },
    #[error("no review app in namespace `{namespace}`")]
    NotFound { namespace: String },
    #[error("namespace `{namespace}` is not a review app of `{app}`; nothing was deleted")]
    NotOurs { namespace: String, app: String },
    #[error(
        "namespace `{namespace}` exists and is not a review app `kubectl rails` made for `{owner}`; nothing was written"
    )]
    Taken { namespace: String, owner: String },
    #[error("namespace `{namespace}` is still being deleted after {} s", DELETE_WAIT.as_secs())]
    StillDeleting { namespace: String },
}

impl ReviewError {
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Kube(e) => e.hint(),
            Self::Secrets(e) => e.hint(),
            Self::MissingPullSecret { .. } => {
                Some("write it with `kubectl rails secrets registry`; review apps copy it".into())
            }
            Self::MissingBaseSecret { .. } => Some(
                "check `-n` (the app's own namespace), or set the app's secrets there first with `kubectl rails secrets import`".into(),
            ),
            Self::MissingOverrideKey { placeholder, .. } => Some(format!(
                "set {placeholder} with `kubectl rails secrets set {placeholder}`, or change the override"
            )),
            Self::NotFound { .. } => Some("`kubectl rails review list` shows them".into()),
            Self::NotOurs { .. } => None,
            Self::Taken { .. } => Some(
                "pick another review app name (or `review.namespace` pattern): a review app only ever uses a namespace it created".into(),
            ),
            Self::StillDeleting { namespace } => Some(format!(
                "`kubectl get namespace {namespace} -o yaml` shows what holds it"
            )),
        }
    }
}

/// The namespace of review app `name`.
pub fn namespace_of(review: &ReviewSpec, spec: &AppSpec, name: &str) -> String {
    ReviewSpec::fill(&review.namespace, &spec.name, name)
}

/// Namespaces the app's destinations deploy to (`namespace:` of the base spec and of each
/// `config/kubernetes.<dest>.yml` beside `spec_path`): a review app must never land in one.
pub fn destination_namespaces(spec: &AppSpec, spec_path: &Path) -> Vec<String> {
    let mut out: Vec<String> = spec.namespace.iter().cloned().collect();
    let dir = spec_path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let stem = spec_path
        .file_stem()
        .map(|s| format!("{}.", s.to_string_lossy()))
        .unwrap_or_default();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(dest) = file
            .strip_prefix(&stem)
            .and_then(|r| r.strip_suffix(".yml").or_else(|| r.strip_suffix(".yaml")))
        else {
            continue;
        };
        if let Ok(loaded) = kubectl_rails_core::file::load_destination(spec_path, dest)
            && let Some(ns) = loaded.spec.namespace
        {
            out.push(ns);
        }
    }
    out
}

/// `{name}`, `{db_name}` and `{KEY}` (a value of the base Secret) filled into a template, in
/// one pass: a value that holds `{OTHER}` is copied as it is, never filled in turn. A `{KEY}` the
/// base Secret lacks is an error (`Err(KEY)`); braces around anything but a key are text.
pub fn fill_override(
    template: &str,
    name: &str,
    base: &BTreeMap<String, String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let key = after
            .find('}')
            .map(|close| &after[..close])
            .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        let Some(key) = key else {
            out.push('{');
            rest = after;
            continue;
        };
        match key {
            "name" => out.push_str(name),
            "db_name" => out.push_str(&name.replace('-', "_")),
            key => out.push_str(base.get(key).ok_or_else(|| key.to_string())?),
        }
        rest = &after[key.len() + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// When a review app made `now` with `ttl` expires, to the second; `None` for an overflow.
pub fn expiry(now: Timestamp, ttl: Duration) -> Option<String> {
    let secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    let at = now.checked_add(SignedDuration::from_secs(secs)).ok()?;
    Some(at.round(Unit::Second).unwrap_or(at).to_string())
}

/// What `ensure_namespace` found: whether the namespace is new, and whether the review app's
/// first deploy already succeeded in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReviewNamespace {
    pub created: bool,
    pub prepared: bool,
}

/// Creates the review app's namespace (enforcing `restricted`, marked with its owner), or
/// updates the URL and expiry of one it created before. Any other namespace of that name is
/// refused before a single write: review apps never adopt a namespace.
pub async fn ensure_namespace(
    client: &Client,
    app: &str,
    base_namespace: &str,
    name: &str,
    namespace: &str,
    url: &str,
    expires_at: Option<&str>,
) -> Result<ReviewNamespace, ReviewError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let existing = api
        .get_opt(namespace)
        .await
        .map_err(api_err(format!("read namespace `{namespace}`")))?;
    let owner = owner(app, base_namespace);
    if let Some(ns) = &existing
        && annotation(ns, OWNER) != Some(owner.as_str())
    {
        return Err(ReviewError::Taken {
            namespace: namespace.to_string(),
            owner,
        });
    }
    let mut annotations = BTreeMap::from([(URL.to_string(), url.to_string())]);
    if let Some(e) = expires_at {
        annotations.insert(EXPIRES_AT.into(), e.to_string());
    }
    match &existing {
        None => {
            annotations.insert(OWNER.into(), owner);
            let object = Namespace {
                metadata: ObjectMeta {
                    name: Some(namespace.to_string()),
                    labels: Some(BTreeMap::from([
                        (
                            "pod-security.kubernetes.io/enforce".to_string(),
                            "restricted".to_string(),
                        ),
                        (REVIEW_OF.to_string(), app.to_string()),
                        (REVIEW_NAME.to_string(), name.to_string()),
                    ])),
                    annotations: Some(annotations),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            };
            api.create(&PostParams::default(), &object)
                .await
                .map_err(api_err(format!("create namespace `{namespace}`")))?;
            Ok(ReviewNamespace {
                created: true,
                prepared: false,
            })
        }
        Some(ns) => {
            // Ours: only its URL and expiry change; a second `up` without `--ttl` clears it.
            let expiry = match expires_at {
                Some(e) => serde_json::Value::String(e.to_string()),
                None => serde_json::Value::Null,
            };
            let patch = serde_json::json!({"metadata": {
                "annotations": {URL: url, EXPIRES_AT: expiry},
                "resourceVersion": ns.metadata.resource_version,
            }});
            api.patch(namespace, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(api_err(format!("update namespace `{namespace}`")))?;
            Ok(ReviewNamespace {
                created: false,
                prepared: annotation(ns, PREPARED) == Some("true"),
            })
        }
    }
}

/// Marks the review app's first deploy (its `db:prepare` and seed) as done, so that a later
/// `up` migrates instead; until then every `up` prepares, a failed first one included.
pub async fn mark_prepared(client: &Client, namespace: &str) -> Result<(), ReviewError> {
    let patch = serde_json::json!({"metadata": {"annotations": {PREPARED: "true"}}});
    Api::<Namespace>::all(client.clone())
        .patch(namespace, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(api_err(format!("update namespace `{namespace}`")))?;
    Ok(())
}

/// The base Secret's values of the spec's secret keys, and the review app's values: the same
/// with each `review.override` filled for `name`. A base namespace without the app Secret is an
/// error, and so is an override that names a key it lacks: a review app never gets a
/// template's text as a value.
pub async fn secret_values(
    client: &Client,
    base_namespace: &str,
    spec: &AppSpec,
    review: &ReviewSpec,
    name: &str,
) -> Result<BTreeMap<String, String>, ReviewError> {
    let missing = || ReviewError::MissingBaseSecret {
        name: spec.secret_name(),
        namespace: base_namespace.to_string(),
    };
    if spec.secrets.is_empty() && review.overrides.is_empty() {
        return Ok(BTreeMap::new());
    }
    let base: BTreeMap<String, String> = AppSecrets::new(client, base_namespace, &spec.name)
        .get()
        .await?
        .ok_or_else(missing)?
        .data
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| spec.secrets.contains(k))
        .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    let mut values = base.clone();
    for (key, template) in &review.overrides {
        let value = fill_override(template, name, &base).map_err(|placeholder| {
            ReviewError::MissingOverrideKey {
                key: key.clone(),
                placeholder,
                secret: spec.secret_name(),
                namespace: base_namespace.to_string(),
            }
        })?;
        values.insert(key.clone(), value);
    }
    Ok(values)
}

/// Copies a Secret (the pull secret) from the app's namespace into the review app's.
pub async fn copy_secret(
    client: &Client,
    from: &str,
    to: &str,
    name: &str,
) -> Result<(), ReviewError> {
    let source = Api::<Secret>::namespaced(client.clone(), from)
        .get_opt(name)
        .await
        .map_err(api_err(format!(
            "read Secret `{name}` in namespace `{from}`"
        )))?
        .ok_or_else(|| ReviewError::MissingPullSecret {
            name: name.to_string(),
            namespace: from.to_string(),
        })?;
    let copy = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: source.metadata.labels.clone(),
            ..ObjectMeta::default()
        },
        type_: source.type_.clone(),
        data: source.data.clone(),
        ..Secret::default()
    };
    let mut params = PatchParams::apply("kubectl-rails");
    params.force = true;
    Api::<Secret>::namespaced(client.clone(), to)
        .patch(name, &params, &Patch::Apply(&copy))
        .await
        .map_err(api_err(format!(
            "copy Secret `{name}` into namespace `{to}`"
        )))?;
    Ok(())
}

/// Starts deleting a review app's namespace (everything in it, Secrets and volumes too) after
/// checking that it is the one `ensure_namespace` made for this app and base namespace; the
/// delete is conditional on the namespace read (its uid and resourceVersion), so nothing that
/// changed in between is deleted.
pub async fn delete(
    client: &Client,
    app: &str,
    base_namespace: &str,
    namespace: &str,
) -> Result<(), ReviewError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let found = api
        .get_opt(namespace)
        .await
        .map_err(api_err(format!("read namespace `{namespace}`")))?
        .ok_or_else(|| ReviewError::NotFound {
            namespace: namespace.to_string(),
        })?;
    if annotation(&found, OWNER) != Some(owner(app, base_namespace).as_str()) {
        return Err(ReviewError::NotOurs {
            namespace: namespace.to_string(),
            app: owner(app, base_namespace),
        });
    }
    let mut params = DeleteParams::foreground();
    params.preconditions = Some(kube::api::Preconditions {
        uid: found.metadata.uid.clone(),
        resource_version: found.metadata.resource_version.clone(),
    });
    api.delete(namespace, &params)
        .await
        .map_err(api_err(format!("delete namespace `{namespace}`")))?;
    Ok(())
}

/// Waits until a deleted namespace is gone.
pub async fn wait_gone(client: &Client, namespace: &str) -> Result<(), ReviewError> {
    let api: Api<Namespace> = Api::all(client.clone());
    let deadline = tokio::time::Instant::now() + DELETE_WAIT;
    loop {
        let found = api
            .get_opt(namespace)
            .await
            .map_err(api_err(format!("read namespace `{namespace}`")))?;
        match found {
            None => return Ok(()),
            Some(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Some(_) => {
                return Err(ReviewError::StillDeleting {
                    namespace: namespace.to_string(),
                });
            }
        }
    }
}

/// One review app as `review list` shows it; `-o json` prints it as is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewApp {
    pub name: Option<String>,
    pub namespace: String,
    /// Since its namespace was made, as kubectl prints ages (`42s`, `5m`, `3h`, `2d`).
    pub age: Option<String>,
    /// The web container's image.
    pub image: Option<String>,
    pub url: Option<String>,
    pub expires_at: Option<String>,
}

impl ReviewApp {
    /// Whether its `--ttl` has passed at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.expires_at
            .as_deref()
            .and_then(|e| e.parse::<Timestamp>().ok())
            .is_some_and(|e| e <= now)
    }
}

/// An age in kubectl's short form.
pub fn age(seconds: i64) -> String {
    match seconds.max(0) {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// The review apps of `spec`'s app, oldest namespace name first as the server lists them.
pub async fn list(
    client: &Client,
    spec: &AppSpec,
    base_namespace: &str,
    now: Timestamp,
) -> Result<Vec<ReviewApp>, ReviewError> {
    // The label narrows the list; the owner annotation decides: another team's app of the same
    // name (another base namespace) is not ours.
    let owner = owner(&spec.name, base_namespace);
    let namespaces = Api::<Namespace>::all(client.clone())
        .list(&ListParams::default().labels(&format!("{REVIEW_OF}={}", spec.name)))
        .await
        .map_err(api_err("list the review apps' namespaces"))?
        .items
        .into_iter()
        .filter(|ns| annotation(ns, OWNER) == Some(owner.as_str()));
    let mut apps = Vec::new();
    for ns in namespaces {
        let namespace = ns.metadata.name.clone().unwrap_or_default();
        // A review app whose deploy has not finished has no web Deployment yet.
        let image = Api::<Deployment>::namespaced(client.clone(), &namespace)
            .get_opt(&spec.deployment_name("web"))
            .await
            .ok()
            .flatten()
            .and_then(|d| d.spec?.template.spec?.containers.first()?.image.clone());
        let annotation = |key: &str| ns.metadata.annotations.as_ref()?.get(key).cloned();
        apps.push(ReviewApp {
            name: ns
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(REVIEW_NAME))
                .cloned(),
            age: ns
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| age(now.duration_since(t.0).as_secs())),
            image,
            url: annotation(URL),
            expires_at: annotation(EXPIRES_AT),
            namespace,
        });
    }
    Ok(apps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_fill_the_name_and_base_values() {
        let base = BTreeMap::from([(
            "DATABASE_URL".to_string(),
            "postgres://u:p@db/shop".to_string(),
        )]);
        let cases: &[(&str, Result<&str, &str>)] = &[
            (
                "{DATABASE_URL}_{db_name}",
                Ok("postgres://u:p@db/shop_pr_7"),
            ),
            ("redis://cache/{name}", Ok("redis://cache/pr-7")),
            ("{UNKNOWN}", Err("UNKNOWN")),
            ("{\"json\": 1} {name}", Ok("{\"json\": 1} pr-7")),
            ("{} {", Ok("{} {")),
        ];
        for (template, want) in cases {
            let want = want.map(str::to_string).map_err(str::to_string);
            assert_eq!(fill_override(template, "pr-7", &base), want, "{template}");
        }
    }

    /// A value is filled in once: a secret that holds `{OTHER}` never gets another secret put
    /// into it.
    #[test]
    fn overrides_are_filled_in_one_pass() {
        let base = BTreeMap::from([
            ("A".to_string(), "x{B}y{name}".to_string()),
            ("B".to_string(), "Secret-B-Value".to_string()),
        ]);
        assert_eq!(
            fill_override("{A}-{name}", "pr-1", &base),
            Ok("x{B}y{name}-pr-1".to_string())
        );
    }

    #[test]
    fn ages_read_as_kubectl_prints_them() {
        let cases = [
            (-3, "0s"),
            (59, "59s"),
            (119, "119s"),
            (120, "2m"),
            (7200, "2h"),
            (172_800, "2d"),
        ];
        for (seconds, want) in cases {
            assert_eq!(age(seconds), want, "{seconds}");
        }
    }

    #[test]
    fn expiry_is_to_the_second_and_expired_compares_with_now() {
        let now: Timestamp = "2026-11-28T10:00:00.600Z".parse().unwrap();
        let at = expiry(now, Duration::from_secs(3600)).unwrap();
        assert_eq!(at, "2026-11-28T11:00:01Z");
        let app = ReviewApp {
            name: Some("pr-1".into()),
            namespace: "shop-pr-1".into(),
            age: None,
            image: None,
            url: None,
            expires_at: Some(at),
        };
        assert!(!app.expired(now));
        assert!(app.expired("2026-11-28T11:00:01Z".parse().unwrap()));
        assert!(
            !ReviewApp {
                expires_at: None,
                ..app
            }
            .expired(now)
        );
    }
}

//! Release history, kept in the cluster as one ConfigMap per release. A record holds the spec as
//! deployed (names of secret keys only, never values), so a rollback restores image and config
//! together.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kubectl_rails_core::render::labels;
use kubectl_rails_kube::{KubeError, api_err};
use serde::{Deserialize, Serialize};

/// Label that carries the revision number on a release record.
pub const REVISION_LABEL: &str = "kubectl-rails.dev/revision";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseStatus {
    Deployed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    pub revision: u32,
    pub status: ReleaseStatus,
    /// `repository:tag`, as deployed.
    pub image: String,
    /// The digest the tag named then (`sha256:...`), when the deploy pinned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Digest of the spec and config as deployed.
    pub config_hash: String,
    /// RFC 3339.
    pub time: String,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_sha: Option<String>,
    /// What happened, for failed releases and rollbacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What happened to it after (or while) it deployed: maintenance turned on and off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// The spec file text as deployed.
    pub spec: String,
}

fn record_name(app: &str, revision: u32) -> String {
    format!("{app}-release-v{revision}")
}

fn selector(app: &str) -> String {
    format!("{}={app},{}=release", labels::INSTANCE, labels::COMPONENT)
}

/// Every recorded release of `app`, oldest first.
pub async fn list(
    client: &kube::Client,
    namespace: &str,
    app: &str,
) -> Result<Vec<ReleaseRecord>, KubeError> {
    Ok(history(client, namespace, app).await?.records)
}

/// The release history, and the highest revision any record takes, readable or not.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub records: Vec<ReleaseRecord>,
    /// A record that does not parse still takes its revision: the next one is above it.
    pub highest_taken: u32,
}

/// Every recorded release of `app`, oldest first, with the highest revision taken.
pub async fn history(
    client: &kube::Client,
    namespace: &str,
    app: &str,
) -> Result<History, KubeError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().labels(&selector(app)))
        .await
        .map_err(api_err(format!(
            "list the releases of `{app}` in namespace `{namespace}`"
        )))?;
    Ok(read_history(app, &list.items))
}

/// The history from a listing of the app's ConfigMaps that holds its release records among
/// others (`instance=<app>`): a deploy lists them once for the history, the maintenance switch
/// and pruning.
pub fn history_in(app: &str, items: &[ConfigMap]) -> History {
    let records: Vec<ConfigMap> = items
        .iter()
        .filter(|cm| labels::component_of(&cm.metadata) == "release")
        .cloned()
        .collect();
    read_history(app, &records)
}

fn read_history(app: &str, items: &[ConfigMap]) -> History {
    let mut records: Vec<ReleaseRecord> = items
        .iter()
        .filter_map(|cm| cm.data.as_ref()?.get("release.json"))
        .filter_map(|json| serde_json::from_str(json).ok())
        .collect();
    records.sort_by_key(|r| r.revision);
    let prefix = format!("{app}-release-v");
    let highest_taken = items
        .iter()
        .filter_map(|cm| {
            let label = cm
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(REVISION_LABEL))
                .map(String::as_str);
            let name = cm
                .metadata
                .name
                .as_deref()
                .and_then(|n| n.strip_prefix(&prefix));
            label.or(name)?.parse::<u32>().ok()
        })
        .chain(records.iter().map(|r| r.revision))
        .max()
        .unwrap_or(0);
    History {
        records,
        highest_taken,
    }
}

/// Writes a new record and trims the history to the newest `keep` records and the current one.
pub async fn record(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    keep: u32,
    rec: &ReleaseRecord,
) -> Result<(), KubeError> {
    record_over(client, namespace, app, keep, rec, None).await
}

/// As [`record`], with the records already read under the deploy lease (which keeps other
/// deploys from recording meanwhile), so the history is not listed again to trim it.
pub async fn record_over(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    keep: u32,
    rec: &ReleaseRecord,
    earlier: Option<&[ReleaseRecord]>,
) -> Result<(), KubeError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(record_name(app, rec.revision)),
            labels: Some(BTreeMap::from([
                (labels::NAME.to_string(), app.to_string()),
                (labels::INSTANCE.to_string(), app.to_string()),
                (labels::COMPONENT.to_string(), "release".to_string()),
                (labels::MANAGED_BY.to_string(), labels::MANAGER.to_string()),
                (REVISION_LABEL.to_string(), rec.revision.to_string()),
            ])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(
            "release.json".to_string(),
            serde_json::to_string_pretty(rec).expect("records always serialize"),
        )])),
        ..ConfigMap::default()
    };
    api.create(&PostParams::default(), &cm)
        .await
        .map_err(api_err(format!(
            "record release v{} of `{app}`",
            rec.revision
        )))?;
    let all = match earlier {
        Some(earlier) => {
            let mut all: Vec<ReleaseRecord> = earlier
                .iter()
                .filter(|r| r.revision != rec.revision)
                .cloned()
                .collect();
            all.push(rec.clone());
            all.sort_by_key(|r| r.revision);
            all
        }
        None => list(client, namespace, app).await?,
    };
    for revision in beyond_the_limit(&all, keep) {
        let _ = api
            .delete(&record_name(app, revision), &DeleteParams::default())
            .await;
    }
    Ok(())
}

/// Adds an event (maintenance turned on or off) to the current release's record; with no
/// release recorded yet there is nothing to add it to.
pub async fn add_event(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    event: &str,
) -> Result<Option<u32>, KubeError> {
    amend(client, namespace, app, None, |rec| {
        rec.events.push(event.to_string())
    })
    .await
}

/// Changes the record of `revision` (the current release when `None`) and writes it back;
/// `None` when there is no such record.
pub async fn amend(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    revision: Option<u32>,
    change: impl Fn(&mut ReleaseRecord),
) -> Result<Option<u32>, KubeError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    // A deploy recording meanwhile changes the record's resourceVersion: read it again.
    for _ in 0..3 {
        let history = list(client, namespace, app).await?;
        let found = match revision {
            Some(r) => history.iter().find(|h| h.revision == r),
            None => current(&history),
        };
        let Some(found) = found else {
            return Ok(None);
        };
        let name = record_name(app, found.revision);
        let Some(cm) = api
            .get_opt(&name)
            .await
            .map_err(api_err(format!("read release record `{name}`")))?
        else {
            continue;
        };
        let mut rec = found.clone();
        change(&mut rec);
        // A merge patch (the deployer Role's `patch`) that holds only if nothing wrote since.
        let patch = serde_json::json!({
            "metadata": {"resourceVersion": cm.metadata.resource_version},
            "data": {"release.json": serde_json::to_string_pretty(&rec).expect("records always serialize")},
        });
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(Some(rec.revision)),
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(api_err(format!("update release record `{name}`"))(e)),
        }
    }
    Ok(None)
}

/// Revisions older than the newest `keep`, except the current release, which a rollback of a
/// run of failed releases needs.
pub fn beyond_the_limit(history: &[ReleaseRecord], keep: u32) -> Vec<u32> {
    let current = current(history).map(|r| r.revision);
    let keep = (keep as usize).max(1);
    history
        .iter()
        .rev()
        .skip(keep)
        .map(|r| r.revision)
        .filter(|r| Some(*r) != current)
        .collect()
}

/// The revision the next record gets.
pub fn next_revision(history: &History) -> u32 {
    history
        .records
        .iter()
        .map(|r| r.revision)
        .max()
        .unwrap_or(0)
        .max(history.highest_taken)
        + 1
}

/// The images of the releases that served, newest first, as their pods named them (pinned to
/// the digest the deploy resolved, when it did): the asset server keeps their assets. A failed
/// release is left out (its image may not even pull); its pods, if any served, ran beside the
/// release before, whose assets stay.
pub fn earlier_images(history: &[ReleaseRecord]) -> Vec<String> {
    history
        .iter()
        .rev()
        .filter(|r| r.status == ReleaseStatus::Deployed)
        .map(|r| {
            let mut image = kubectl_rails_core::model::ImageSpec::parse(&r.image);
            if r.digest.is_some() {
                image.digest = r.digest.clone();
            }
            image.reference()
        })
        .collect()
}

/// The release serving now: the newest one that deployed.
pub fn current(history: &[ReleaseRecord]) -> Option<&ReleaseRecord> {
    history
        .iter()
        .rev()
        .find(|r| r.status == ReleaseStatus::Deployed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(revision: u32, status: ReleaseStatus) -> ReleaseRecord {
        ReleaseRecord {
            revision,
            status,
            image: format!("shop:{revision}"),
            digest: None,
            config_hash: String::new(),
            time: String::new(),
            user: "dev".into(),
            git_sha: None,
            note: None,
            events: Vec::new(),
            spec: String::new(),
        }
    }

    /// The images as the release's pods named them: a deploy that pinned the digest ran
    /// `repo@digest`, and the asset server must name the same (or a redeploy would roll it).
    #[test]
    fn earlier_images_are_the_served_ones_newest_first_pinned_as_deployed() {
        let mut pinned = rec(3, ReleaseStatus::Deployed);
        pinned.image = "127.0.0.1:5000/shop:3".into();
        pinned.digest = Some("sha256:abc".into());
        let history = [
            rec(1, ReleaseStatus::Deployed),
            rec(2, ReleaseStatus::Failed),
            pinned,
        ];
        assert_eq!(
            earlier_images(&history),
            ["127.0.0.1:5000/shop@sha256:abc", "shop:1"]
        );
    }

    #[test]
    fn the_history_keeps_the_newest_and_the_current() {
        let mut h: Vec<ReleaseRecord> = (1..=12).map(|r| rec(r, ReleaseStatus::Deployed)).collect();
        let mut doomed = beyond_the_limit(&h, 10);
        doomed.sort();
        assert_eq!(doomed, [1, 2]);
        // v3 serves; v4..v14 failed: v3 stays although it is older than the newest ten.
        h = (1..=14)
            .map(|r| {
                rec(
                    r,
                    if r <= 3 {
                        ReleaseStatus::Deployed
                    } else {
                        ReleaseStatus::Failed
                    },
                )
            })
            .collect();
        let mut doomed = beyond_the_limit(&h, 10);
        doomed.sort();
        // v5..v14 are the newest ten; v4 goes, v3 stays.
        assert_eq!(doomed, [1, 2, 4]);
        assert!(beyond_the_limit(&h[..5], 10).is_empty());
    }

    #[test]
    fn current_skips_failed_releases() {
        let h = [
            rec(1, ReleaseStatus::Deployed),
            rec(2, ReleaseStatus::Deployed),
            rec(3, ReleaseStatus::Failed),
        ];
        assert_eq!(current(&h).unwrap().revision, 2);
    }

    /// A record that does not parse still takes its revision (#27 L9): a new one is above it,
    /// never a number a record already has.
    #[test]
    fn the_next_revision_is_above_every_record_readable_or_not() {
        let record = |revision: u32, json: &str, labelled: bool| ConfigMap {
            metadata: ObjectMeta {
                name: Some(record_name("shop", revision)),
                labels: labelled
                    .then(|| BTreeMap::from([(REVISION_LABEL.into(), revision.to_string())])),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([("release.json".into(), json.into())])),
            ..ConfigMap::default()
        };
        let good = serde_json::to_string(&rec(1, ReleaseStatus::Deployed)).unwrap();
        let cases: &[(&[ConfigMap], usize, u32)] = &[
            (&[], 0, 1),
            (&[record(1, &good, true)], 1, 2),
            (&[record(1, &good, true), record(2, "{broken", true)], 1, 3),
            (
                &[record(1, &good, true), record(7, "not json", false)],
                1,
                8,
            ),
        ];
        for (items, readable, next) in cases {
            let history = read_history("shop", items);
            assert_eq!(history.records.len(), *readable);
            assert_eq!(next_revision(&history), *next, "{items:?}");
        }
    }
}

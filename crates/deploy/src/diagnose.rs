//! Diagnosis: which pod states are hopeless, and what a Rails developer should do about them.
//! Pure functions over pod status, events and log lines.

use k8s_openapi::api::core::v1::Pod;

/// A pod that will not become Ready without someone changing something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    pub pod: String,
    pub container: String,
    /// The Kubernetes reason: `ImagePullBackOff`, `CrashLoopBackOff`, `Unschedulable`, ...
    pub reason: String,
    pub message: String,
}

/// Waiting reasons that never fix themselves.
const HOPELESS_WAITING: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// Why the registry would not give an image, from the kubelet's pull error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullFailure {
    /// The registry refused the credentials, or got none (401, 403).
    Refused,
    /// The repository or tag does not exist.
    NotFound,
    /// Anything else (a timeout, a reset connection): the kubelet's retries may fix it.
    Other,
}

impl PullFailure {
    pub fn of(message: &str) -> Self {
        let m = message.to_ascii_lowercase();
        if m.contains("401")
            || m.contains("403")
            || m.contains("unauthorized")
            || m.contains("denied")
            || m.contains("forbidden")
        {
            Self::Refused
        } else if m.contains("not found")
            || m.contains("manifest unknown")
            || m.contains("name unknown")
        {
            Self::NotFound
        } else {
            Self::Other
        }
    }
}

impl PodProblem {
    /// How long the problem may fix itself before the pod is hopeless; `None` when it cannot.
    /// The scheduler may still place a pod (a volume binds, a node comes back), and a pull that
    /// failed for no reason the registry gave is retried by the kubelet. `pull_checked`: the
    /// registry gave this image to this machine with the pull secret's credentials moments ago.
    pub fn patience(&self, pull_checked: bool) -> Option<std::time::Duration> {
        use crate::patience::{PULL_AUTH_RETRY, PULL_CHECKED_RETRIES, PULL_RETRIES};
        match (self.reason.as_str(), PullFailure::of(&self.message)) {
            ("Unschedulable", _) => Some(crate::patience::grace_for(&self.message)),
            ("ErrImagePull" | "ImagePullBackOff", PullFailure::Other) => Some(PULL_RETRIES),
            // A kubelet asked for the first pod of a new namespace may pull before it has read
            // the pull secret (its Secret cache gets a second to fill, and a busy API server can
            // take longer), and get a 401 once: its retries decide. Longer when the credentials
            // are known to be good.
            ("ErrImagePull" | "ImagePullBackOff", PullFailure::Refused) if pull_checked => {
                Some(PULL_CHECKED_RETRIES)
            }
            ("ErrImagePull" | "ImagePullBackOff", PullFailure::Refused) => Some(PULL_AUTH_RETRY),
            _ => None,
        }
    }

    /// What the pod is waiting for while it has patience: for the message that says so.
    pub fn waiting_for(&self, pull_checked: bool) -> &'static str {
        if self.reason == "Unschedulable" {
            "cannot be scheduled yet"
        } else if pull_checked && PullFailure::of(&self.message) == PullFailure::Refused {
            "was refused its image, which the registry gave this machine with the same pull secret; the kubelet reads a new namespace's pull secret late and retries"
        } else {
            "cannot pull its image yet; the kubelet retries"
        }
    }
}

/// The first hopeless state of a pod, if any.
pub fn pod_problem(pod: &Pod) -> Option<PodProblem> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let status = pod.status.as_ref()?;
    for cs in status.container_statuses.iter().flatten() {
        if let Some(waiting) = cs.state.as_ref().and_then(|s| s.waiting.as_ref())
            && let Some(reason) = waiting
                .reason
                .as_deref()
                .filter(|r| HOPELESS_WAITING.contains(r))
        {
            return Some(PodProblem {
                pod: name,
                container: cs.name.clone(),
                reason: reason.to_string(),
                message: waiting.message.clone().unwrap_or_default(),
            });
        }
    }
    for c in status.conditions.iter().flatten() {
        if c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
        {
            return Some(PodProblem {
                pod: name,
                container: String::new(),
                reason: "Unschedulable".into(),
                message: c.message.clone().unwrap_or_default(),
            });
        }
    }
    None
}

/// The last `keep` lines of a log, with Ruby backtraces cut to their first frames: a crash's
/// own message comes before hundreds of `from ...` lines, and is the line worth reading.
pub fn log_excerpt(log: &str, keep: usize) -> Vec<String> {
    const FRAMES: usize = 2;
    let mut out: Vec<String> = Vec::new();
    let mut run = 0usize;
    let flush = |out: &mut Vec<String>, run: usize| {
        if run > FRAMES {
            out.push(format!("\t... {} more frames", run - FRAMES));
        }
    };
    for line in log.lines() {
        if line.trim_start().starts_with("from ") {
            run += 1;
            if run <= FRAMES {
                out.push(line.to_string());
            }
            continue;
        }
        flush(&mut out, run);
        run = 0;
        out.push(line.to_string());
    }
    flush(&mut out, run);
    let skip = out.len().saturating_sub(keep);
    out.split_off(skip)
}

/// A Rails-aware hint for a failure, from its reason, the pod's events and its last log lines.
pub fn rails_hint(reason: &str, message: &str, events: &[String], logs: &str) -> Option<String> {
    let all = format!("{message}\n{}\n{logs}", events.join("\n"));
    let has = |needle: &str| all.contains(needle);
    if has("PendingMigrationError") || has("Migrations are pending") {
        return Some("migrations are pending: run `kubectl rails deploy --migrate=only`, or check the migration Job's logs".into());
    }
    if has("secret_key_base") {
        return Some(
            "Rails has no secret_key_base: set `RAILS_MASTER_KEY` (from config/master.key) or `SECRET_KEY_BASE` with `kubectl rails secrets set`"
                .into(),
        );
    }
    if has("MessageEncryptor::InvalidMessage")
        || has("Missing encryption key")
        || has("key must be 16 bytes")
    {
        return Some(
            "the credentials cannot be decrypted: `RAILS_MASTER_KEY` must match config/master.key"
                .into(),
        );
    }
    if has("statuscode: 403") || has("status code: 403") || has("Blocked host") {
        return Some(
            "the health probe got a 403 from host authorization: add `config.host_authorization = { exclude: ->(r) { r.path == \"/up\" } }` to config/environments/production.rb"
                .into(),
        );
    }
    if has("bind: permission denied") || has("Permission denied - bind(2)") {
        return Some("the server cannot bind a port below 1024 as a non-root user: set `HTTP_PORT: \"8080\"` in `env` and `web.port: 8080`".into());
    }
    match reason {
        "CreateContainerConfigError" if message.contains("couldn't find key") => {
            let key = message.split("couldn't find key ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("KEY");
            Some(format!("the app Secret lacks `{key}`: set it with `kubectl rails secrets set {key}`"))
        }
        "CreateContainerConfigError" if message.contains("not found") => {
            Some("a Secret or ConfigMap the pod needs is missing: set the app's secrets with `kubectl rails secrets set`".into())
        }
        "ImagePullBackOff" | "ErrImagePull" if PullFailure::of(message) == PullFailure::Refused => Some(
            "the registry refused the pull: the pull secret is missing or its credentials are wrong; write it with `kubectl rails secrets registry`".into(),
        ),
        "ImagePullBackOff" | "ErrImagePull" if PullFailure::of(message) == PullFailure::NotFound => Some(
            "the registry has no such image: check the repository and tag (`--image`, `--tag`) and that the build was pushed".into(),
        ),
        "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" => {
            Some("the image cannot be pulled: check the repository and tag (`--image`, `--tag`), that the build was pushed, and that the nodes reach the registry".into())
        }
        "CrashLoopBackOff" => {
            Some("the container keeps exiting: read its logs with `kubectl rails logs`; the last lines are above".into())
        }
        "Unschedulable" if message.contains("unbound immediate PersistentVolumeClaims") => Some(
            "the app's volume claim is not bound: the cluster needs a default StorageClass (a volume provisioner) or a PersistentVolume that matches the claim; `kubectl get pvc` shows it".into(),
        ),
        "Unschedulable" => Some(
            "no node can take the pod: lower `resources` in the spec, or add nodes; `kubectl describe pod` shows the scheduler's reasons".into(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod_waiting(reason: &str, message: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "shop-web-1"},
            "status": {"containerStatuses": [{
                "name": "web", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": reason, "message": message}}
            }]}
        }))
        .unwrap()
    }

    #[test]
    fn image_pull_backoff_is_hopeless() {
        let p = pod_problem(&pod_waiting("ImagePullBackOff", "Back-off pulling image")).unwrap();
        assert_eq!(p.reason, "ImagePullBackOff");
        assert_eq!(p.container, "web");
    }

    #[test]
    fn pull_failures_by_what_the_registry_said() {
        let cases = [
            (
                "failed to pull and unpack image \"r/blog:1\": failed to resolve reference: pulling from host r failed with status code [manifests 1]: 401 Unauthorized",
                PullFailure::Refused,
                Some(crate::patience::PULL_AUTH_RETRY),
                "kubectl rails secrets registry",
            ),
            (
                "rpc error: code = NotFound desc = failed to pull and unpack image \"r/blog:9\": r/blog:9: not found",
                PullFailure::NotFound,
                None,
                "no such image",
            ),
            (
                "failed to do request: Head \"https://r/v2/blog/manifests/1\": dial tcp 10.0.0.1:443: i/o timeout",
                PullFailure::Other,
                Some(crate::patience::PULL_RETRIES),
                "nodes reach the registry",
            ),
        ];
        for (message, kind, patience, hint) in cases {
            assert_eq!(PullFailure::of(message), kind, "{message}");
            let p = pod_problem(&pod_waiting("ErrImagePull", message)).unwrap();
            assert_eq!(p.patience(false), patience, "{message}");
            let h = rails_hint("ErrImagePull", message, &[], "").unwrap();
            assert!(h.contains(hint), "{message}: {h}");
        }
    }

    #[test]
    fn a_refused_pull_waits_longer_when_the_registry_took_the_same_credentials_from_here() {
        let refused = "failed to pull and unpack image \"r/blog@sha256:1\": pulling from host r failed with status code [manifests sha256:1]: 401 Unauthorized";
        let timeout = "dial tcp 10.0.0.1:443: i/o timeout";
        let cases = [
            (
                refused,
                false,
                Some(crate::patience::PULL_AUTH_RETRY),
                "cannot pull",
            ),
            (
                refused,
                true,
                Some(crate::patience::PULL_CHECKED_RETRIES),
                "same pull secret",
            ),
            (
                timeout,
                true,
                Some(crate::patience::PULL_RETRIES),
                "cannot pull",
            ),
            ("r/blog:9: not found", true, None, "cannot pull"),
        ];
        for (message, checked, patience, says) in cases {
            let p = pod_problem(&pod_waiting("ImagePullBackOff", message)).unwrap();
            assert_eq!(p.patience(checked), patience, "{message} {checked}");
            assert!(p.waiting_for(checked).contains(says), "{message} {checked}");
        }
        assert!(crate::patience::PULL_CHECKED_RETRIES > crate::patience::PULL_AUTH_RETRY);
    }

    #[test]
    fn a_ruby_crash_keeps_its_message_and_first_frames() {
        let mut log = String::from("I, [2026-11-27] INFO -- : Booting\n");
        log.push_str("/usr/lib/ruby/vendor_ruby/active_support/message_encryptor.rb:203:in `rescue in _decrypt': ActiveSupport::MessageEncryptor::InvalidMessage (ActiveSupport::MessageEncryptor::InvalidMessage)\n");
        for i in 0..60 {
            log.push_str(&format!("\tfrom /usr/lib/ruby/frame{i}.rb:1:in `x'\n"));
        }
        log.push_str(
            "/usr/lib/ruby/3.1.0/openssl/cipher.rb:1:in `final': OpenSSL::Cipher::CipherError\n",
        );
        for i in 0..40 {
            log.push_str(&format!("\tfrom /usr/lib/ruby/cause{i}.rb:1:in `y'\n"));
        }
        let excerpt = log_excerpt(&log, 20);
        assert_eq!(
            excerpt,
            [
                "I, [2026-11-27] INFO -- : Booting",
                "/usr/lib/ruby/vendor_ruby/active_support/message_encryptor.rb:203:in `rescue in _decrypt': ActiveSupport::MessageEncryptor::InvalidMessage (ActiveSupport::MessageEncryptor::InvalidMessage)",
                "\tfrom /usr/lib/ruby/frame0.rb:1:in `x'",
                "\tfrom /usr/lib/ruby/frame1.rb:1:in `x'",
                "\t... 58 more frames",
                "/usr/lib/ruby/3.1.0/openssl/cipher.rb:1:in `final': OpenSSL::Cipher::CipherError",
                "\tfrom /usr/lib/ruby/cause0.rb:1:in `y'",
                "\tfrom /usr/lib/ruby/cause1.rb:1:in `y'",
                "\t... 38 more frames",
            ]
        );
        assert_eq!(log_excerpt("a\nb\nc\n", 2), ["b", "c"]);
    }

    #[test]
    fn container_creating_is_not() {
        assert_eq!(pod_problem(&pod_waiting("ContainerCreating", "")), None);
    }

    #[test]
    fn missing_secret_key_names_the_key() {
        let hint = rails_hint(
            "CreateContainerConfigError",
            "couldn't find key SECRET_KEY_BASE in Secret shop/shop-secrets",
            &[],
            "",
        );
        assert!(
            hint.unwrap()
                .contains("kubectl rails secrets set SECRET_KEY_BASE")
        );
    }

    #[test]
    fn an_unbound_volume_claim_is_named() {
        let hint = rails_hint(
            "Unschedulable",
            "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
            &[],
            "",
        );
        assert!(hint.unwrap().contains("StorageClass"));
        let cpu = rails_hint(
            "Unschedulable",
            "0/3 nodes are available: 3 Insufficient cpu.",
            &[],
            "",
        );
        assert!(cpu.unwrap().contains("lower `resources`"));
    }

    #[test]
    fn rails_log_hints() {
        let pending = rails_hint(
            "CrashLoopBackOff",
            "",
            &[],
            "ActiveRecord::PendingMigrationError: Migrations are pending",
        );
        assert!(pending.unwrap().contains("--migrate=only"));
        // The kubelet counts 200-399 as success: a `force_ssl` redirect never fails a probe, so
        // no hint is built for one (it would be dead code that blames the probe for the app).
        assert_eq!(
            rails_hint(
                "",
                "",
                &["Readiness probe failed: HTTP probe failed with statuscode: 301".into()],
                ""
            ),
            None
        );
        let hosts = rails_hint(
            "",
            "",
            &["Readiness probe failed: HTTP probe failed with statuscode: 403".into()],
            "",
        );
        assert!(hosts.unwrap().contains("host_authorization"));
    }
}

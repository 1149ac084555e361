//! Validation of an [`AppSpec`]: every rule names the field it checks, so the spec-file loader
//! can point at its line and column.

use crate::model::AppSpec;

/// One broken rule, at a dotted field path such as `workers.jobs.replicas`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: Vec<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl Violation {
    fn new(path: &[&str], message: impl Into<String>) -> Self {
        Self {
            path: path.iter().map(|s| s.to_string()).collect(),
            message: message.into(),
            hint: None,
        }
    }

    fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// The longest app name we accept: object names add suffixes such as `-migrate-1a2b3c4d`.
pub const MAX_APP_NAME: usize = 40;

/// The suffix of an accessory's headless Service, which governs its StatefulSet's pods.
pub const ACCESSORY_PODS_SUFFIX: &str = "-pods";

fn check_rollout(r: &crate::model::RolloutSpec) -> Vec<Violation> {
    let mut out = Vec::new();
    if let Some(bake) = &r.bake
        && let Err(e) = crate::duration::parse(bake)
    {
        out.push(Violation::new(&["rollout", "bake"], e).hint("write it as `90s`, `5m` or `1h`"));
    }
    if let Some(rate) = r.max_error_rate
        && !(0.0..=100.0).contains(&rate)
    {
        out.push(
            Violation::new(
                &["rollout", "max_error_rate"],
                format!("{rate} is not a percent between 0 and 100"),
            )
            .hint("`5` fails a release when more than 5% of its requests answer 5xx"),
        );
    }
    if let Some(percent) = r.canary
        && !(1..=99).contains(&percent)
    {
        out.push(
            Violation::new(
                &["rollout", "canary"],
                format!("{percent} is not a percent between 1 and 99"),
            )
            .hint("`20` sends about a fifth of the requests to the new release"),
        );
    }
    out
}

/// What an accessory's objects would collide with, if anything. Its Service, StatefulSet and
/// password Secret are all named `<app>-<name>`, and its pods are selected by the component
/// `accessory-<name>`: any of the app's own objects of that name (the web Service, the app
/// Secret) would be overwritten by one deploy and taken back by the next.
fn accessory_collision(spec: &AppSpec, name: &str) -> Option<String> {
    let app = &spec.name;
    let object = spec.accessory_name(name);
    let exact = [
        ("web", "the web process's Deployment and Service"),
        ("secrets", "the app's Secret"),
        ("env", "the app's plain env ConfigMap"),
        ("deploy", "the deploy lease"),
        ("deployer", "the deployer Role"),
        (
            "maintenance",
            "the maintenance page's Deployment and Service",
        ),
        ("assets", "the asset server's Deployment and Service"),
    ];
    for (taken, what) in exact {
        if name == taken {
            return Some(format!("`{object}` is {what}"));
        }
    }
    if spec.workers.contains_key(name) {
        return Some(format!("`{object}` is the {name} process's Deployment"));
    }
    if spec.volume.as_ref().is_some_and(|v| v.name == name) {
        return Some(format!("`{object}` is the app's volume claim"));
    }
    if spec
        .registry
        .as_ref()
        .is_some_and(|r| r.pull_secret == object)
    {
        return Some(format!("`{object}` is the pull secret"));
    }
    let families = [
        ("env-", "the app's plain env ConfigMaps"),
        ("cron-", "the app's CronJobs"),
        ("migrate-", "the app's migration Jobs"),
        ("tls-", "the app's TLS Secrets"),
        ("release-v", "the app's release records"),
    ];
    for (prefix, what) in families {
        if name.starts_with(prefix) {
            return Some(format!("`{app}-{prefix}*` names {what}"));
        }
    }
    if let Some(other) = name.strip_suffix(ACCESSORY_PODS_SUFFIX)
        && spec.accessories.contains_key(other)
    {
        return Some(format!(
            "`{object}` is the Service that governs accessory `{other}`'s pods"
        ));
    }
    let component = format!("accessory-{name}");
    if spec.workers.contains_key(&component) {
        return Some(format!(
            "the pods of process `{component}` carry the label that selects accessory `{name}`"
        ));
    }
    None
}

/// Checks an app name; the error carries a valid suggestion when one can be derived.
pub fn check_app_name(name: &str) -> Result<(), NameError> {
    check_label(name, MAX_APP_NAME, true)
}

/// Checks a namespace name (a DNS-1123 label).
pub fn check_namespace(name: &str) -> Result<(), NameError> {
    check_label(name, 63, false)
}

/// A name that Kubernetes would reject, with what to use instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    pub reason: String,
    pub suggestion: Option<String>,
}

fn check_label(name: &str, max: usize, must_start_with_letter: bool) -> Result<(), NameError> {
    let reason = if name.is_empty() {
        Some("it is empty".to_string())
    } else if name.len() > max {
        Some(format!(
            "it is {} characters long, at most {max} are allowed",
            name.len()
        ))
    } else if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        Some("only lowercase letters, digits and `-` are allowed".to_string())
    } else if must_start_with_letter && !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("it must start with a lowercase letter".to_string())
    } else if name.starts_with('-') || name.ends_with('-') {
        Some("it must start and end with a letter or digit".to_string())
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(NameError {
            reason,
            suggestion: suggest_label(name, max).filter(|s| s != name),
        }),
    }
}

/// Derives a DNS label from a free-form name: `Image_Storage` becomes `image-storage`.
pub fn suggest_label(name: &str, max: usize) -> Option<String> {
    let mut out = String::new();
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let trimmed: String = out
        .trim_start_matches(|c: char| !c.is_ascii_lowercase())
        .chars()
        .take(max)
        .collect();
    let trimmed = trimmed.trim_end_matches('-').to_string();
    (!trimmed.is_empty()).then_some(trimmed)
}

/// A review app's name from a branch name: a DNS label of at most `max` characters that keeps
/// every letter and digit in order (`123-login` stays, `feature/Login` becomes `feature-login`).
/// A longer one is cut and ends with a hash of the whole name, so that two long names that
/// share a start do not become one.
pub fn review_label(raw: &str, max: usize) -> Option<String> {
    let mut out = String::new();
    for c in raw.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        return None;
    }
    if out.len() <= max {
        return Some(out.to_string());
    }
    use sha2::{Digest, Sha256};
    let hash: String = Sha256::digest(raw.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let head = out[..max.saturating_sub(hash.len() + 1)].trim_end_matches('-');
    Some(format!("{head}-{hash}"))
}

/// Whether `key` can be an environment variable name.
pub fn is_env_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A memory quantity in bytes (`512Mi`, `1G`, `2048`); 0 when it is not one.
pub fn quantity_bytes(value: &str) -> u64 {
    let digits_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(digits_end);
    let Ok(n) = number.parse::<f64>() else {
        return 0;
    };
    let unit: f64 = match suffix {
        "" => 1.0,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return 0,
    };
    (n * unit) as u64
}

fn is_quantity(value: &str) -> bool {
    let digits_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(digits_end);
    !number.is_empty()
        && number.parse::<f64>().is_ok()
        && ["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"].contains(&suffix)
}

/// Whether `host` is a valid ingress host (a wildcard `*.` prefix is allowed).
pub fn is_host(host: &str) -> bool {
    let host = host.strip_prefix("*.").unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// With `ingress.gateway`, the route is an HTTPRoute: the keys that only an Ingress (or
/// ingress-nginx) understands have no meaning there, and TLS is the Gateway listener's.
fn check_gateway(ingress: &crate::model::IngressSpec) -> Vec<Violation> {
    let mut out = Vec::new();
    let text = ingress.gateway.as_deref().unwrap_or_default();
    match ingress.gateway_ref() {
        Some(g) if g.namespace.as_deref().is_none_or(is_dns_label) && is_dns_subdomain(&g.name) => {}
        _ => out.push(
            Violation::new(
                &["ingress", "gateway"],
                format!("`{text}` does not name a Gateway"),
            )
            .hint("write `namespace/name`, such as `gateway-system/public`, or `name` for a Gateway in the app's namespace"),
        ),
    }
    let ingress_only: [(&str, bool, &str); 5] = [
        (
            "class",
            ingress.class.is_some(),
            "an HTTPRoute has no IngressClass: the Gateway's class decides",
        ),
        (
            "tls",
            ingress.tls,
            "TLS is the Gateway listener's: give the Gateway an HTTPS listener with the certificate (cert-manager's Gateway support makes it)",
        ),
        (
            "issuer",
            ingress.issuer.is_some(),
            "TLS is the Gateway listener's: annotate the Gateway for cert-manager instead",
        ),
        (
            "www_redirect",
            ingress.www_redirect,
            "the redirect is an ingress-nginx annotation: add a redirect HTTPRoute of your own",
        ),
        (
            "body_size",
            ingress.body_size.is_some(),
            "the body size is an ingress-nginx annotation: the Gateway's implementation sets its own limit",
        ),
    ];
    for (key, set, why) in ingress_only {
        if set {
            out.push(
                Violation::new(
                    &["ingress", key],
                    format!("`ingress.{key}` does not apply with `ingress.gateway`"),
                )
                .hint(why),
            );
        }
    }
    out
}

/// A DNS label (RFC 1123), as namespace names are.
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A DNS subdomain (RFC 1123), as most object names are.
fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

fn check_assets(a: &crate::model::AssetsSpec, workdir: Option<&str>) -> Vec<Violation> {
    let mut out = Vec::new();
    if !a.path.starts_with('/')
        || a.path.trim_end_matches('/').is_empty()
        || a.path.contains(char::is_whitespace)
    {
        out.push(
            Violation::new(
                &["assets", "path"],
                format!(
                    "invalid asset path `{}`: the URL path the assets are under",
                    a.path
                ),
            )
            .hint("use the app's `config.assets.prefix`, `/assets` by default"),
        );
    }
    if a.dir.trim().is_empty() || a.dir.split('/').any(|p| p == "..") {
        out.push(
            Violation::new(&["assets", "dir"], format!("invalid asset folder `{}`", a.dir))
                .hint("use the folder the image holds the assets in: `public/assets`, or an absolute path"),
        );
    } else if !a.dir.starts_with('/') && workdir.is_none() {
        out.push(
            Violation::new(
                &["assets", "dir"],
                format!("`{}` is relative to the image's working directory, which the spec does not say", a.dir),
            )
            .hint("set `workdir:` to the image's WORKDIR (`/rails`), or give an absolute `assets.dir`"),
        );
    }
    out
}

/// Every rule the spec breaks, in file order.
pub fn validate(spec: &AppSpec) -> Vec<Violation> {
    let mut out = Vec::new();
    if let Some(r) = &spec.rollout {
        out.extend(check_rollout(r));
    }
    if let Some(a) = &spec.assets {
        out.extend(check_assets(a, spec.workdir.as_deref()));
    }
    if let Err(e) = check_app_name(&spec.name) {
        let mut v = Violation::new(
            &["name"],
            format!("invalid app name `{}`: {}", spec.name, e.reason),
        );
        if let Some(s) = e.suggestion {
            v = v.hint(format!("use `{s}`"));
        }
        out.push(v);
    }
    if let Some(ns) = &spec.namespace
        && let Err(e) = check_namespace(ns)
    {
        let mut v = Violation::new(
            &["namespace"],
            format!("invalid namespace `{ns}`: {}", e.reason),
        );
        if let Some(s) = e.suggestion {
            v = v.hint(format!("use `{s}`"));
        }
        out.push(v);
    }
    let repo = &spec.image.repository;
    if repo.is_empty()
        || repo.contains(char::is_whitespace)
        || repo.chars().any(|c| c.is_ascii_uppercase())
    {
        out.push(
            Violation::new(
                &["image", "repository"],
                format!("invalid image repository `{repo}`"),
            )
            .hint("use a lowercase reference such as `ghcr.io/acme/shop`"),
        );
    }
    if let Some(registry) = &spec.registry
        && check_label(&registry.pull_secret, 63, false).is_err()
    {
        out.push(Violation::new(
            &["registry", "pull_secret"],
            format!("invalid Secret name `{}`", registry.pull_secret),
        ));
    }
    out.extend(check_process(
        &["web"],
        spec.web.replicas,
        &spec.web.resources,
    ));
    if let Some(a) = spec.web.autoscale {
        out.extend(check_autoscale(&["web", "autoscale"], a));
    }
    if spec.web.port == 0 {
        out.push(Violation::new(
            &["web", "port"],
            "port 0 is not a valid container port",
        ));
    }
    if !spec.web.health_path.starts_with('/') && spec.web.health_path != crate::model::TCP_PROBE {
        out.push(
            Violation::new(
                &["web", "health_path"],
                format!(
                    "health path `{}` must start with `/` (or be `tcp` for a TCP check on the port)",
                    spec.web.health_path
                ),
            )
            .hint("Rails 7.1 and later serve `/up`"),
        );
    }
    for (name, worker) in &spec.workers {
        let at = ["workers", name.as_str()];
        if name == "web" {
            out.push(Violation::new(
                &at,
                "`web` is the web process; give the worker another name",
            ));
        } else if name == crate::render::MAINTENANCE {
            out.push(Violation::new(
                &at,
                "`maintenance` is the maintenance page's Deployment (`kubectl rails maintenance on`); give the worker another name",
            ));
        } else if name == crate::render::ASSETS {
            out.push(Violation::new(
                &at,
                "`assets` is the asset server's Deployment (`assets:` in the spec); give the worker another name",
            ));
        } else if let Err(e) = check_label(name, 63usize.saturating_sub(spec.name.len() + 1), true)
        {
            out.push(Violation::new(
                &at,
                format!("invalid process name `{name}`: {}", e.reason),
            ));
        }
        if worker.command.is_empty() {
            out.push(Violation::new(
                &["workers", name, "command"],
                "a worker needs a command, such as `bin/jobs`",
            ));
        }
        out.extend(check_process(&at, worker.replicas, &worker.resources));
        if let Some(a) = worker.autoscale {
            out.extend(check_autoscale(&["workers", name, "autoscale"], a));
        }
    }
    if let Some(ingress) = &spec.ingress {
        if ingress.hosts.is_empty() {
            out.push(Violation::new(
                &["ingress", "hosts"],
                "an ingress needs at least one host",
            ));
        }
        for host in &ingress.hosts {
            if !is_host(host) {
                out.push(Violation::new(
                    &["ingress", "hosts"],
                    format!("`{host}` is not a valid host name"),
                ));
            }
        }
        if let Some(size) = &ingress.body_size {
            let digits = size.trim_end_matches(['k', 'K', 'm', 'M', 'g', 'G']);
            if digits.is_empty()
                || !digits.chars().all(|c| c.is_ascii_digit())
                || size.len() - digits.len() > 1
            {
                out.push(
                    Violation::new(
                        &["ingress", "body_size"],
                        format!("`{size}` is not a size such as `25m`"),
                    )
                    .hint("a number with an optional k, m or g"),
                );
            }
        }
        if ingress.timeout == Some(0) {
            out.push(Violation::new(
                &["ingress", "timeout"],
                "the timeout must be at least 1 second",
            ));
        }
        if ingress.issuer.is_some() && !ingress.tls {
            out.push(
                Violation::new(&["ingress", "issuer"], "an issuer is set but `tls` is off")
                    .hint("set `tls: true`, or remove `issuer`"),
            );
        }
        if ingress.gateway.is_some() {
            out.extend(check_gateway(ingress));
        }
    }
    for key in spec.env.keys() {
        if !is_env_key(key) {
            out.push(Violation::new(
                &["env", key],
                format!("`{key}` is not a valid environment variable name"),
            ));
        }
        if spec.secrets.contains(key) {
            out.push(
                Violation::new(
                    &["env", key],
                    format!("`{key}` is both plain env and a secret"),
                )
                .hint("keep it under `secrets` only"),
            );
        }
    }
    for (key, path) in spec.secrets.files() {
        if !path.starts_with('/') || path.ends_with('/') {
            out.push(Violation::new(
                &["secrets", key, "file"],
                format!(
                    "`{path}` is not an absolute file path such as `/rails/config/{}.json`",
                    key.to_ascii_lowercase()
                ),
            ));
        }
        if !spec.secrets.contains(key) {
            out.push(Violation::new(
                &["secrets", key],
                "a file secret must be one of the keys",
            ));
        }
    }
    for key in spec.secrets.iter() {
        if !is_env_key(key) {
            out.push(Violation::new(
                &["secrets"],
                format!("`{key}` is not a valid environment variable name"),
            ));
        }
    }
    out.extend(check_placement(&["placement"], &spec.placement));
    out.extend(check_placement(&["web", "placement"], &spec.web.placement));
    for (name, worker) in &spec.workers {
        out.extend(check_placement(
            &["workers", name, "placement"],
            &worker.placement,
        ));
    }
    for (name, cron) in &spec.cron {
        let at = ["cron", name.as_str()];
        if check_label(name, 52usize.saturating_sub(spec.name.len() + 6), true).is_err() {
            out.push(Violation::new(
                &at,
                format!("invalid cron entry name `{name}`: a short lowercase name such as `nightly-report`"),
            ));
        }
        if cron.schedule.split_whitespace().count() != 5 {
            out.push(
                Violation::new(
                    &["cron", name, "schedule"],
                    format!("`{}` is not a five-field cron schedule", cron.schedule),
                )
                .hint("minute hour day-of-month month day-of-week, such as `30 4 * * *`"),
            );
        }
        if cron.command.is_empty() {
            out.push(Violation::new(
                &["cron", name, "command"],
                "a cron entry needs a command, such as `[bin/rails, runner, Report.daily]`",
            ));
        }
    }
    for (name, accessory) in &spec.accessories {
        // `<app>-<name>-pods` (the headless Service of its pods) is a DNS label too.
        let room = 63usize.saturating_sub(spec.name.len() + 1 + ACCESSORY_PODS_SUFFIX.len());
        if check_label(name, room, true).is_err() {
            out.push(Violation::new(
                &["accessories", name],
                format!("invalid accessory name `{name}`"),
            ));
        }
        if let Some(taken) = accessory_collision(spec, name) {
            out.push(
                Violation::new(
                    &["accessories", name],
                    format!(
                        "accessory `{name}` would share names with the app's own objects: {taken}"
                    ),
                )
                .hint(format!(
                    "rename the accessory under `accessories:` (or pass another `--name` to `accessory add`), such as `{name}-db`"
                )),
            );
        }
        if !is_quantity(&accessory.size) {
            out.push(Violation::new(
                &["accessories", name, "size"],
                format!("`{}` is not a size such as `10Gi`", accessory.size),
            ));
        }
    }
    for (name, command) in &spec.aliases {
        if check_label(name, 63, true).is_err() || command.trim().is_empty() {
            out.push(Violation::new(
                &["aliases", name],
                format!(
                    "invalid alias `{name}`: a lowercase name for a `kubectl rails` command line"
                ),
            ));
        }
    }
    if let Some(review) = &spec.review {
        let sample_host = crate::model::ReviewSpec::fill(&review.host, &spec.name, "pr-1");
        if !review.host.contains("{name}") || !is_host(&sample_host) {
            out.push(
                Violation::new(
                    &["review", "host"],
                    format!("`{}` is not a host pattern with `{{name}}`", review.host),
                )
                .hint("for example `{name}.review.example.com`"),
            );
        }
        let sample_ns = crate::model::ReviewSpec::fill(&review.namespace, &spec.name, "pr-1");
        if !review.namespace.contains("{name}") || check_namespace(&sample_ns).is_err() {
            out.push(
                Violation::new(
                    &["review", "namespace"],
                    format!(
                        "`{}` is not a namespace pattern with `{{name}}`",
                        review.namespace
                    ),
                )
                .hint("for example `{app}-{name}`"),
            );
        }
        if review.prepare.is_empty() {
            out.push(Violation::new(
                &["review", "prepare"],
                "the first deploy of a review app needs a command, such as `[bin/rails, db:prepare]`",
            ));
        }
        for key in review.overrides.keys() {
            if !is_env_key(key) {
                out.push(Violation::new(
                    &["review", "override", key],
                    format!("`{key}` is not a valid environment variable name"),
                ));
            }
        }
    }
    if spec.migrate.command.is_empty() {
        out.push(
            Violation::new(&["migrate", "command"], "the migration command is empty")
                .hint("use `[bin/rails, db:migrate]`"),
        );
    }
    if let Some(volume) = &spec.volume {
        if check_label(
            &volume.name,
            63usize.saturating_sub(spec.name.len() + 1),
            true,
        )
        .is_err()
        {
            out.push(Violation::new(
                &["volume", "name"],
                format!("invalid volume name `{}`", volume.name),
            ));
        }
        if !volume.mount_path.starts_with('/') {
            out.push(Violation::new(
                &["volume", "mount_path"],
                format!("mount path `{}` must be absolute", volume.mount_path),
            ));
        }
        if !is_quantity(&volume.size) {
            out.push(Violation::new(
                &["volume", "size"],
                format!("`{}` is not a size such as `10Gi`", volume.size),
            ));
        }
    }
    out
}

/// Whether `key` is a Kubernetes label key: an optional DNS prefix and `/`, then a name of at
/// most 63 characters of letters, digits, `-`, `_` and `.` that starts and ends alphanumeric.
pub fn is_label_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    prefix.is_none_or(is_host) && is_label_value(name) && !name.is_empty()
}

/// Whether `value` is a Kubernetes label value (empty is allowed).
pub fn is_label_value(value: &str) -> bool {
    value.is_empty()
        || (value.len() <= 63
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && value.starts_with(|c: char| c.is_ascii_alphanumeric())
            && value.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

fn check_placement(at: &[&str], placement: &crate::model::Placement) -> Vec<Violation> {
    let mut out = Vec::new();
    let under = |last: &str| {
        let mut p: Vec<String> = at.iter().map(|s| s.to_string()).collect();
        p.push(last.to_string());
        p
    };
    for (key, value) in &placement.node_selector {
        if !is_label_key(key) || !is_label_value(value) {
            out.push(Violation {
                path: under("node_selector"),
                message: format!("`{key}: {value}` is not a node label such as `pool: rails`"),
                hint: None,
            });
        }
    }
    for t in &placement.tolerations {
        let effect_ok = t
            .effect
            .as_deref()
            .is_none_or(|e| crate::model::TAINT_EFFECTS.contains(&e));
        if !is_label_key(&t.key) || !effect_ok {
            out.push(Violation {
                path: under("tolerations"),
                message: format!("invalid toleration of `{}`", t.key),
                hint: Some(format!(
                    "a taint key such as `dedicated`, an optional `value`, and an `effect` of {}",
                    crate::model::TAINT_EFFECTS.join(", ")
                )),
            });
        }
    }
    out
}

/// The bounds of an autoscaler: 1 <= min <= max, and a CPU target of 1 to 1000 percent.
pub fn autoscale_problem(a: crate::model::Autoscale) -> Option<String> {
    if a.min < 1 {
        Some(format!("`min` must be 1 or more, not {}", a.min))
    } else if a.min > a.max {
        Some(format!(
            "`min` ({}) is greater than `max` ({})",
            a.min, a.max
        ))
    } else if !(1..=1000).contains(&a.cpu) {
        Some(format!(
            "`cpu` must be a percentage from 1 to 1000, not {}",
            a.cpu
        ))
    } else {
        None
    }
}

fn check_autoscale(at: &[&str], a: crate::model::Autoscale) -> Vec<Violation> {
    autoscale_problem(a)
        .map(|m| Violation::new(at, m))
        .into_iter()
        .collect()
}

fn check_process(
    at: &[&str],
    replicas: i32,
    resources: &crate::model::Resources,
) -> Vec<Violation> {
    let mut out = Vec::new();
    fn with<'a>(at: &[&'a str], last: &'a str) -> Vec<&'a str> {
        let mut p = at.to_vec();
        p.push(last);
        p
    }
    if replicas < 0 {
        out.push(
            Violation::new(
                &with(at, "replicas"),
                format!("replicas must be 0 or more, not {replicas}"),
            )
            .hint("use 0 to stop the process"),
        );
    }
    for (field, value) in [("cpu", &resources.cpu), ("memory", &resources.memory)]
        .into_iter()
        .chain(resources.memory_limit.as_ref().map(|m| ("memory_limit", m)))
    {
        if !is_quantity(value) {
            let mut p = with(at, "resources");
            p.push(field);
            out.push(Violation::new(
                &p,
                format!("`{value}` is not a Kubernetes quantity such as `250m` or `512Mi`"),
            ));
        }
    }
    out
}

/// Things worth saying that do not stop a deploy.
pub fn warnings(spec: &AppSpec) -> Vec<String> {
    let mut out = Vec::new();
    if spec.image.tag.is_none() {
        out.push(format!(
            "image `{}` has no tag: deploy tags it with the app's git commit (the full SHA, as Kamal tags its builds), or pass `--tag`",
            spec.image.repository
        ));
    }
    if spec.starts_as_root() {
        out.push(
            "`uid: 0`: the pods start as root for the image's start (its entrypoint, or the app's boot code) to drop to its user; they pass the baseline Pod Security Standard, not restricted (a namespace the plugin creates enforces baseline)".into(),
        );
    }
    if let Some(volume) = spec.single_node_volume()
        && spec.web.replicas > 1
    {
        out.push(format!(
            "volume `{}` is ReadWriteOnce, so all {} web replicas share one node; to scale out, name a ReadWriteMany `storage_class` in `volume` or keep files in object storage",
            volume.name, spec.web.replicas
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_storage_suggests_kebab_case() {
        let err = check_app_name("Image_Storage").unwrap_err();
        assert_eq!(err.suggestion.as_deref(), Some("image-storage"));
        assert!(err.reason.contains("lowercase"), "{}", err.reason);
    }

    #[test]
    fn names_must_start_with_a_letter_and_fit() {
        assert!(check_app_name("shop").is_ok());
        assert!(check_app_name("9shop").is_err());
        assert!(check_app_name(&"a".repeat(41)).is_err());
        assert!(check_app_name("shop-").is_err());
        assert_eq!(suggest_label("--My App!!", 40).as_deref(), Some("my-app"));
    }

    #[test]
    fn env_keys() {
        assert!(is_env_key("DATABASE_URL"));
        assert!(is_env_key("_X1"));
        assert!(!is_env_key("1X"));
        assert!(!is_env_key("MY-KEY"));
        assert!(!is_env_key(""));
    }

    /// An accessory's Service, StatefulSet and password Secret are all `<app>-<name>`: a name
    /// that is already one of the app's own objects (or a prefix of a family of them) is refused.
    #[test]
    fn accessories_never_take_the_name_of_the_apps_own_objects() {
        let base = "name: shop\nimage: {repository: ghcr.io/acme/shop}\nweb: {port: 3000, replicas: 1}\nworkers: {jobs: {command: [bin/jobs], replicas: 1}, accessory-cache: {command: [bin/x], replicas: 1}}\nregistry: {server: ghcr.io, pull_secret: shop-registry}\nvolume: {name: storage, mount_path: /rails/storage, size: 1Gi}\n";
        let cases: &[(&str, Option<&str>)] = &[
            ("db", None),
            ("redis", None),
            (
                "web",
                Some("`shop-web` is the web process's Deployment and Service"),
            ),
            ("jobs", Some("`shop-jobs` is the jobs process's Deployment")),
            ("secrets", Some("`shop-secrets` is the app's Secret")),
            ("env", Some("`shop-env` is the app's plain env ConfigMap")),
            (
                "env-1a2b3c4d",
                Some("`shop-env-*` names the app's plain env ConfigMaps"),
            ),
            ("deploy", Some("`shop-deploy` is the deploy lease")),
            ("deployer", Some("`shop-deployer` is the deployer Role")),
            (
                "maintenance",
                Some("`shop-maintenance` is the maintenance page's Deployment and Service"),
            ),
            ("storage", Some("`shop-storage` is the app's volume claim")),
            ("registry", Some("`shop-registry` is the pull secret")),
            (
                "cron-nightly",
                Some("`shop-cron-*` names the app's CronJobs"),
            ),
            (
                "migrate-1a2b3c4d",
                Some("`shop-migrate-*` names the app's migration Jobs"),
            ),
            (
                "tls-shop-example-com",
                Some("`shop-tls-*` names the app's TLS Secrets"),
            ),
            (
                "release-v3",
                Some("`shop-release-v*` names the app's release records"),
            ),
            (
                "cache",
                Some(
                    "the pods of process `accessory-cache` carry the label that selects accessory `cache`",
                ),
            ),
        ];
        // Beside an accessory `pg`, whose pods' headless Service is `shop-pg-pods`.
        let cases = cases.iter().copied().chain([(
            "pg-pods",
            Some("`shop-pg-pods` is the Service that governs accessory `pg`'s pods"),
        )]);
        for (name, expected) in cases {
            let text = format!(
                "{base}accessories: {{pg: {{kind: postgres, image: postgres:16, size: 1Gi}}, {name}: {{kind: redis, image: redis:7, size: 1Gi}}}}\n"
            );
            let spec: AppSpec = serde_saphyr::from_str(&text).unwrap();
            let found: Vec<_> = validate(&spec)
                .into_iter()
                .filter(|v| v.path.first().map(String::as_str) == Some("accessories"))
                .filter(|v| v.path.get(1).map(String::as_str) != Some("pg"))
                .collect();
            match expected {
                None => assert!(found.is_empty(), "{name}: {found:?}"),
                Some(why) => {
                    assert_eq!(found.len(), 1, "{name}: {found:?}");
                    assert_eq!(found[0].path, ["accessories", name], "{name}");
                    assert!(
                        found[0].message.contains(why),
                        "{name}: {}",
                        found[0].message
                    );
                    assert!(found[0].hint.is_some(), "{name}");
                }
            }
        }
    }

    #[test]
    fn workers_never_take_the_web_maintenance_or_assets_name() {
        for (name, why) in [
            ("web", "`web` is the web process"),
            (
                "maintenance",
                "`maintenance` is the maintenance page's Deployment",
            ),
            ("assets", "`assets` is the asset server's Deployment"),
        ] {
            let text = format!(
                "name: shop\nimage: {{repository: ghcr.io/acme/shop}}\nweb: {{port: 3000, replicas: 1}}\nworkers: {{{name}: {{command: [bin/jobs], replicas: 1}}}}\n"
            );
            let spec: AppSpec = serde_saphyr::from_str(&text).unwrap();
            let found: Vec<_> = validate(&spec)
                .into_iter()
                .filter(|v| v.path == ["workers", name])
                .collect();
            assert_eq!(found.len(), 1, "{name}: {found:?}");
            assert!(
                found[0].message.contains(why),
                "{name}: {}",
                found[0].message
            );
        }
    }

    #[test]
    fn a_gateway_is_named_well_and_the_ingress_only_keys_are_refused_beside_it() {
        let base =
            "name: shop\nimage: {repository: ghcr.io/acme/shop}\nweb: {port: 3000, replicas: 1}\n";
        let cases: &[(&str, &[(&str, &str)])] = &[
            (
                "{hosts: [shop.example.com], gateway: gateway-system/public}",
                &[],
            ),
            (
                "{hosts: [shop.example.com], gateway: public, timeout: 60}",
                &[],
            ),
            (
                "{hosts: [shop.example.com], gateway: a/b/c}",
                &[("gateway", "`a/b/c` does not name a Gateway")],
            ),
            (
                "{hosts: [shop.example.com], gateway: /public}",
                &[("gateway", "`/public` does not name a Gateway")],
            ),
            (
                "{hosts: [shop.example.com], gateway: Gateways/Public}",
                &[("gateway", "does not name a Gateway")],
            ),
            (
                "{hosts: [shop.example.com], gateway: gw/public, tls: true, issuer: le, class: nginx}",
                &[
                    (
                        "class",
                        "`ingress.class` does not apply with `ingress.gateway`",
                    ),
                    ("tls", "`ingress.tls` does not apply"),
                    ("issuer", "`ingress.issuer` does not apply"),
                ],
            ),
            (
                "{hosts: [shop.example.com], gateway: gw/public, www_redirect: true, body_size: 25m}",
                &[
                    ("www_redirect", "does not apply"),
                    ("body_size", "does not apply"),
                ],
            ),
        ];
        for (ingress, expected) in cases {
            let spec: AppSpec =
                serde_saphyr::from_str(&format!("{base}ingress: {ingress}\n")).unwrap();
            let found: Vec<_> = validate(&spec)
                .into_iter()
                .filter(|v| v.path.first().map(String::as_str) == Some("ingress"))
                .collect();
            assert_eq!(found.len(), expected.len(), "{ingress}: {found:?}");
            for (v, (key, why)) in found.iter().zip(expected.iter()) {
                assert_eq!(v.path, ["ingress", key], "{ingress}");
                assert!(v.message.contains(why), "{ingress}: {}", v.message);
                assert!(v.hint.is_some(), "{ingress}");
            }
        }
    }

    #[test]
    fn the_asset_server_needs_a_url_path_and_a_folder_it_can_find() {
        let base =
            "name: shop\nimage: {repository: ghcr.io/acme/shop}\nweb: {port: 3000, replicas: 1}\n";
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("workdir: /rails\nassets: {}\n", None),
            ("assets: {dir: /rails/public/assets}\n", None),
            ("workdir: /rails\nassets: {path: /packs/, keep: 0}\n", None),
            (
                "workdir: /rails\nassets: {path: assets}\n",
                Some(("path", "invalid asset path `assets`")),
            ),
            (
                "workdir: /rails\nassets: {path: /}\n",
                Some(("path", "invalid asset path `/`")),
            ),
            (
                "workdir: /rails\nassets: {dir: ../secrets}\n",
                Some(("dir", "invalid asset folder")),
            ),
            ("assets: {}\n", Some(("dir", "which the spec does not say"))),
        ];
        for (extra, expected) in cases {
            let spec: AppSpec = serde_saphyr::from_str(&format!("{base}{extra}")).unwrap();
            let found: Vec<_> = validate(&spec)
                .into_iter()
                .filter(|v| v.path.first().map(String::as_str) == Some("assets"))
                .collect();
            match expected {
                None => assert!(found.is_empty(), "{extra}: {found:?}"),
                Some((key, why)) => {
                    assert_eq!(found.len(), 1, "{extra}: {found:?}");
                    assert_eq!(found[0].path, ["assets", key], "{extra}");
                    assert!(
                        found[0].message.contains(why),
                        "{extra}: {}",
                        found[0].message
                    );
                }
            }
        }
    }

    #[test]
    fn rollout_bake_and_error_rate_are_checked() {
        let base =
            "name: shop\nimage: {repository: ghcr.io/acme/shop}\nweb: {port: 3000, replicas: 1}\n";
        let cases: &[(&str, Option<&str>)] = &[
            (
                "rollout: {bake: 90s, max_error_rate: 2.5, max_restarts: 1}",
                None,
            ),
            ("rollout: {bake: soon}", Some("`soon` is not a duration")),
            (
                "rollout: {max_error_rate: 150}",
                Some("150 is not a percent"),
            ),
            ("rollout: {canary: 20}", None),
            (
                "rollout: {canary: 0}",
                Some("0 is not a percent between 1 and 99"),
            ),
            (
                "rollout: {canary: 100}",
                Some("100 is not a percent between 1 and 99"),
            ),
        ];
        for (extra, expected) in cases {
            let spec: AppSpec = serde_saphyr::from_str(&format!("{base}{extra}\n")).unwrap();
            let found: Vec<_> = validate(&spec)
                .into_iter()
                .filter(|v| v.path.first().map(String::as_str) == Some("rollout"))
                .collect();
            match expected {
                None => assert!(found.is_empty(), "{extra}: {found:?}"),
                Some(why) => assert!(
                    found.len() == 1 && found[0].message.contains(why),
                    "{extra}: {found:?}"
                ),
            }
        }
    }

    #[test]
    fn quantities() {
        for ok in ["250m", "1", "0.5", "512Mi", "1Gi"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Mi", "12 Mi", "lots", "1.2.3"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }

    /// Review app names keep their digits and never collide by cutting (#27 L7).
    #[test]
    fn review_labels_keep_digits_and_tell_long_names_apart() {
        let cases = [
            ("123-login", Some("123-login")),
            ("456-login", Some("456-login")),
            ("feature/Login", Some("feature-login")),
            ("--x--", Some("x")),
            ("///", None),
        ];
        for (raw, want) in cases {
            assert_eq!(review_label(raw, 30).as_deref(), want, "{raw}");
        }
        let a = review_label("feature/a-very-long-branch-name-for-login-one", 30).unwrap();
        let b = review_label("feature/a-very-long-branch-name-for-login-two", 30).unwrap();
        assert_ne!(a, b);
        assert!(a.len() <= 30 && b.len() <= 30, "{a} {b}");
    }
}

//! The table `init` ends with: what the folder told, what was decided and why, what to do next.
//! Every row is made from the spec and the sources the resolver kept, so no sentence can
//! disagree with what was written.

use std::collections::BTreeMap;

use kubectl_rails_core::AppSpec;
use kubectl_rails_core::detect::Detection;
use kubectl_rails_core::model::TCP_PROBE;

use super::Mode;

pub(super) fn table(
    d: &Detection,
    spec: &AppSpec,
    sources: &BTreeMap<&'static str, String>,
    mode: Mode,
) -> String {
    let from = |field: &str| {
        sources
            .get(field)
            .filter(|s| !s.is_empty())
            .map(|s| format!(" ({s})"))
            .unwrap_or_default()
    };
    let mut rows: Vec<(&str, String)> = Vec::new();
    let mut row = |what: &'static str, value: String| rows.push((what, value));
    row(
        "Rails",
        match (&d.rails_version, d.lockfile) {
            (Some(v), _) => v.clone(),
            (None, true) => "version not in Gemfile.lock".into(),
            (None, false) => "version unknown: no Gemfile.lock".into(),
        },
    );
    let health = if spec.web.health_path == TCP_PROBE {
        "a TCP check on the port".to_string()
    } else {
        format!("health check `{}`", spec.web.health_path)
    };
    row(
        "web",
        format!(
            "port {}{}, {} replica{}, {health}{}",
            spec.web.port,
            from("port"),
            spec.web.replicas,
            if spec.web.replicas == 1 { "" } else { "s" },
            from("health"),
        ),
    );
    row(
        "starts",
        match &spec.web.command {
            Some(c) => format!("`{}`{}", c.join(" "), from("web")),
            None => format!("the image's own command{}", from("web")),
        },
    );
    let workers: Vec<String> = spec
        .workers
        .iter()
        .map(|(name, w)| format!("{name} (`{}`)", w.command.join(" ")))
        .collect();
    row(
        "processes",
        if workers.is_empty() {
            "web only".to_string()
        } else {
            format!("web, {}", workers.join(", "))
        },
    );
    let db = match d.database {
        Some(db) => {
            let how = if spec.secrets.iter().any(|k| k == "DATABASE_URL") {
                ", its URL is a secret"
            } else {
                ""
            };
            match db {
                kubectl_rails_core::detect::Database::Sqlite => {
                    format!("SQLite{}, on the app's volume", from("database"))
                }
                other => format!(
                    "{}{}, outside the cluster{how}",
                    other.label(),
                    from("database")
                ),
            }
        }
        None if d.gems.mongoid => {
            "MongoDB (Mongoid, config/mongoid.yml), outside the cluster".to_string()
        }
        None => "none found (config/database.yml, the Gemfile)".to_string(),
    };
    row("database", db);
    if !d.gems.services.is_empty() {
        row(
            "services",
            d.gems
                .services
                .iter()
                .map(|(gem, what, key)| format!("{what} ({gem}, at {key})"))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    row(
        "volume",
        match &spec.volume {
            Some(v) => format!(
                "`{}` at {} ({}, {}){}",
                v.name,
                v.mount_path,
                v.size,
                v.access_mode.as_str(),
                from("volume")
            ),
            None => "none".into(),
        },
    );
    row(
        "image",
        format!(
            "{}{}",
            spec.image.reference(),
            if spec.image.tag.is_none() {
                " (deploy tags it with the git commit)"
            } else {
                ""
            }
        ),
    );
    row(
        "build",
        match &spec.build {
            Some(b) => format!(
                "from `{}`{}: `deploy` builds the committed tree when the registry lacks the tag (`kubectl rails build` alone)",
                b.dockerfile,
                b.target
                    .as_ref()
                    .map(|t| format!(" (stage `{t}`)"))
                    .unwrap_or_default()
            ),
            None => "none: the image is built elsewhere".into(),
        },
    );
    row(
        "registry",
        match &spec.registry {
            Some(r) => format!("{} with pull secret `{}`", r.server, r.pull_secret),
            None => "public: no pull secret".into(),
        },
    );
    row(
        "runs as",
        match (spec.uid, spec.gid) {
            (Some(0), _) => format!(
                "root at start, then the image's own user: its start drops to it{}",
                from("user")
            ),
            (Some(u), Some(g)) => format!("uid {u}, gid {g}"),
            (Some(u), None) => format!("uid {u}"),
            _ => "the image's own user".into(),
        },
    );
    row(
        "filesystem",
        match spec.writable_paths() {
            Ok(paths) => format!(
                "read-only root; writable: {}{}{}",
                paths.join(", "),
                from("writable"),
                if spec.migrate.read_only_root {
                    ""
                } else {
                    "; the migration writes db/schema.rb and keeps a writable root"
                }
            ),
            Err(why) => format!("writable root: {why}"),
        },
    );
    row(
        "network",
        if spec.network_policy {
            "NetworkPolicies: web takes its port, other pods nothing; enforced only where the cluster's network plugin enforces them (`kubectl rails doctor` says)".to_string()
        } else {
            "no NetworkPolicy (`network_policy: false`)".to_string()
        },
    );
    row(
        "ingress",
        match &spec.ingress {
            Some(i) if i.gateway.is_some() => format!(
                "{} through an HTTPRoute attached to Gateway `{}` (TLS through the Gateway's listener, if it has an HTTPS one)",
                i.hosts.join(", "),
                i.gateway.as_deref().unwrap_or_default()
            ),
            Some(i) => format!(
                "{}{}",
                i.hosts.join(", "),
                if i.tls {
                    format!(" (TLS{})", from("tls"))
                } else {
                    " (plain HTTP)".to_string()
                }
            ),
            None => "none".into(),
        },
    );
    row(
        "assets",
        match &spec.assets {
            Some(a) => format!(
                "`{}-assets` pods serve {} from this release's image and the last {}, so a page of either release finds its assets during a rollout{}",
                spec.name,
                a.path,
                a.keep,
                from("assets")
            ),
            None => "served by web (or a CDN): none kept across releases".into(),
        },
    );
    let required: Vec<&str> = spec.secrets.required().map(String::as_str).collect();
    let optional: Vec<&str> = spec.secrets.optional().map(String::as_str).collect();
    row(
        "secrets",
        match (required.is_empty(), optional.is_empty()) {
            (true, true) => "none".into(),
            (false, true) => format!("{} (names only)", required.join(", ")),
            (true, false) => format!("optional: {} (names only)", optional.join(", ")),
            (false, false) => format!(
                "{}; optional: {} (names only)",
                required.join(", "),
                optional.join(", ")
            ),
        },
    );
    let next = match mode {
        Mode::FirstDeploy => "next: the deploy goes on".to_string(),
        Mode::Full => {
            let mut steps = vec![];
            // `secrets import` reads `.env`, the master key and `.kamal/secrets`: suggest it only
            // when one of them is here.
            let importable = d.env_file.as_ref().is_some_and(|(f, _)| f == ".env")
                || !d.credential_keys.is_empty()
                || !d.kamal_secret_keys.is_empty();
            if !spec.secrets.is_empty() {
                steps.push(if importable {
                    "`kubectl rails secrets import` (or `secrets set KEY`)"
                } else {
                    "`kubectl rails secrets set KEY` for each secret"
                });
            }
            if spec.registry.is_some() {
                steps.push("`kubectl rails secrets registry`");
            }
            steps.push("`kubectl rails deploy`");
            format!(
                "next: {} (a deploy at a terminal asks for what is missing)",
                steps.join(", then ")
            )
        }
    };
    let mut out = String::new();
    for (what, value) in rows {
        out.push_str(&format!("  {what:<10} {value}\n"));
    }
    out.push_str(&next);
    out
}

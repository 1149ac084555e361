//! The table `init` ends with: what the folder told, what was decided and why, what to do next.

use kubectl_rails_core::AppSpec;
use kubectl_rails_core::detect::{Database, Detection};

use super::Mode;

pub(super) fn table(d: &Detection, spec: &AppSpec, mode: Mode) -> String {
    let mut rows: Vec<(&str, String)> = Vec::new();
    let mut row = |what: &'static str, value: String| rows.push((what, value));
    row(
        "Rails",
        d.rails_version
            .clone()
            .unwrap_or_else(|| "version not locked in Gemfile.lock".into()),
    );
    row(
        "web",
        format!(
            "port {}, {} replica{}, health check `{}`",
            spec.web.port,
            spec.web.replicas,
            if spec.web.replicas == 1 { "" } else { "s" },
            spec.web.health_path
        ),
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
    row(
        "database",
        match d.database {
            Some(Database::Postgres) => "PostgreSQL, outside the cluster (its URL is a secret)",
            Some(Database::Mysql) => "MySQL, outside the cluster (its URL is a secret)",
            Some(Database::Sqlite) => "SQLite, on the app's volume",
            None => "none found in the Gemfile",
        }
        .to_string(),
    );
    row(
        "volume",
        match &spec.volume {
            Some(v) => format!(
                "`{}` at {} ({}, {})",
                v.name,
                v.mount_path,
                v.size,
                v.access_mode.as_str()
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
        "registry",
        match &spec.registry {
            Some(r) => format!("{} with pull secret `{}`", r.server, r.pull_secret),
            None => "public: no pull secret".into(),
        },
    );
    row(
        "runs as",
        match (spec.uid, spec.gid) {
            (Some(u), Some(g)) => format!("uid {u}, gid {g}"),
            (Some(u), None) => format!("uid {u}"),
            _ => "the image's own user".into(),
        },
    );
    row(
        "ingress",
        match &spec.ingress {
            Some(i) => format!(
                "{}{}",
                i.hosts.join(", "),
                if i.tls { " (TLS)" } else { "" }
            ),
            None => "none".into(),
        },
    );
    row(
        "secrets",
        if spec.secrets.is_empty() {
            "none".into()
        } else {
            format!("{} (names only)", spec.secrets.join(", "))
        },
    );
    let next = match mode {
        Mode::FirstDeploy => "next: the deploy goes on".to_string(),
        Mode::Full => {
            let mut steps = vec![];
            if !spec.secrets.is_empty() {
                steps.push("`kubectl rails secrets import` (or `secrets set KEY`)");
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

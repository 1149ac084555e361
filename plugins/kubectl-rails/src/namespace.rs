//! The namespace a deploy (or a first secret) goes into: created when missing, after asking (or
//! with `--yes`), enforcing the restricted Pod Security Standard. `deploy`, `secrets` and
//! `accessory` all create it, so it lives below the commands and imports none of them.

use kubectl_rails_kube::{create_app_namespace, namespace_exists};

use crate::context::Context;
use crate::exit;

/// Whether the namespace exists; assumed when we may not ask (a namespaced deployer).
pub(crate) async fn exists(ctx: &Context<'_>) -> anyhow::Result<bool> {
    let target = ctx.target().await?;
    let ns = &target.namespace;
    match namespace_exists(&target.conn.client, ns).await? {
        Some(exists) => Ok(exists),
        None => {
            ctx.printer.debug(&format!(
                "cannot read namespace `{ns}` (forbidden); assuming it exists"
            ));
            Ok(true)
        }
    }
}

/// Creates the namespace when it is missing, after asking (or with `--yes`).
pub(crate) async fn ensure(ctx: &Context<'_>, dry_run: bool) -> anyhow::Result<()> {
    if exists(ctx).await? {
        return Ok(());
    }
    let (settings, target) = (ctx.settings, ctx.target().await?);
    let ns = &target.namespace;
    if dry_run {
        return Err(exit::failure(
            format!("namespace `{ns}` does not exist, so the server cannot dry-run objects in it"),
            Some("a real deploy creates it (after asking, or with `--yes`)".into()),
        ));
    }
    let create = settings.global.yes
        || (settings.prompter.interactive
            && settings.prompter.yes_no(
                &format!("Namespace `{ns}` does not exist. Create it?"),
                true,
            )?);
    if !settings.prompter.interactive && !create {
        return Err(exit::usage(
            format!(
                "namespace `{ns}` does not exist, and nobody is at a terminal to confirm creating it"
            ),
            Some("pass `--yes`".into()),
        ));
    }
    if !create {
        return Err(exit::failure(
            format!("namespace `{ns}` does not exist"),
            Some("create it, or pick another with `-n`".into()),
        ));
    }
    // An image that starts as root (and drops to its user itself) passes `baseline` only.
    let level = match ctx.spec() {
        Ok(spec) if spec.starts_as_root() => "baseline",
        _ => "restricted",
    };
    create_app_namespace(&target.conn.client, ns, level).await?;
    ctx.printer.step(&format!(
        "created namespace `{ns}` (enforcing the {level} Pod Security Standard)"
    ));
    Ok(())
}

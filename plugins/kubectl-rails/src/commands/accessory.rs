//! `kubectl rails accessory add postgres|redis`: a database or cache in the cluster beside the
//! app, for a Kamal accessory that has no managed service to move to. The spec gains the
//! accessory; its password is made once and kept in a Secret of its own; from the next deploy
//! (which starts it before migrating) the app's `DATABASE_URL` or `REDIS_URL` points at it. The
//! app Secret is not written: pods running meanwhile keep the URL they have.

use kubectl_rails_core::file::{self, edit};
use kubectl_rails_core::model::AccessoryKind;
use kubectl_rails_secrets::AppSecrets;

use crate::cli::{AccessoryArgs, AccessoryCommand};
use crate::context::Context;
use crate::exit;
use crate::namespace;
use crate::overlay::{Edited, OverlayEdit};
use crate::settings::Settings;

pub(crate) async fn run(command: &AccessoryCommand, ctx: &Context<'_>) -> anyhow::Result<()> {
    ctx.settings.output(&[])?;
    let AccessoryCommand::Add(args) = command;
    add(args, ctx).await
}

async fn add(args: &AccessoryArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let kind = match args.kind.as_str() {
        "postgres" | "postgresql" => AccessoryKind::Postgres,
        "redis" => AccessoryKind::Redis,
        other => {
            return Err(exit::usage(
                format!("`{other}` is not an accessory kubectl-rails runs"),
                Some("use `postgres` or `redis`; anything else is best a managed service whose URL is a secret".into()),
            ));
        }
    };
    let name = args.name.clone().unwrap_or_else(|| match kind {
        AccessoryKind::Postgres => "postgres".into(),
        AccessoryKind::Redis => "redis".into(),
    });
    let _lock = crate::overlay::lock_spec(settings, printer)?;
    let spec = ctx.spec()?;
    if spec.accessories.contains_key(&name) {
        return Err(exit::usage(
            format!("the spec already has accessory `{name}`"),
            Some("pass `--name` for another one".into()),
        ));
    }
    let image = args
        .image
        .clone()
        .unwrap_or_else(|| kind.default_image().to_string());
    let entry = format!(
        "{{kind: {}, image: {}, size: {}}}",
        serde_json::to_string(&kind)?.trim_matches('"'),
        serde_json::to_string(&image)?,
        args.size
    );
    let url_key = kind.url_key();
    // The edited spec must be valid before anything is written anywhere.
    let (written, edited) = match OverlayEdit::open(settings)? {
        Some(mut overlay) => {
            overlay.set(&["accessories", &name], &entry)?;
            let edited = overlay.merged()?;
            (Edited::Overlay(overlay), edited)
        }
        None => {
            let mut text = fs_err::read_to_string(&settings.spec_path)?;
            text = edit::set_in_map(&text, "accessories", &name, &entry)
                .ok_or_else(|| layout(settings))?;
            let edited = file::parse(&text, &settings.spec_path)?.spec;
            let path = settings.spec_path.clone();
            (Edited::Base { path, text }, edited)
        }
    };

    // The edit adds an accessory; the namespace stays the spec's as read.
    let target = ctx.target().await?;
    namespace::ensure(ctx, false).await?;
    let store = AppSecrets::new(&target.conn.client, &target.namespace, &edited.name);
    let existing = store.get().await?.and_then(|s| s.data).unwrap_or_default();
    let other_url = existing.contains_key(url_key)
        || spec.secrets.iter().any(|k| k == url_key)
        || spec.env.contains_key(url_key);
    if edited.accessory_urls().get(url_key).map(|(n, _)| *n) == Some(name.as_str())
        && other_url
        && !settings.prompter.confirm(
            &format!(
                "The app has a {url_key} already. Point it at the new {name} from the next deploy"
            ),
            settings.global.yes,
        )?
    {
        return Err(exit::failure(
            format!("kept {url_key}; nothing was changed"),
            Some("pass `--yes` to point it at the accessory".into()),
        ));
    }
    let secret_name = edited.accessory_name(&name);
    let password = store.accessory_password(&secret_name).await?;
    printer.mask_secret(url_key, password.as_bytes());
    written.write(printer)?;
    printer.step(&format!(
        "added accessory `{name}` ({image}, {} volume) to `{}`; its password is in Secret `{secret_name}`",
        args.size,
        written.path().display(),
    ));
    printer.info(&format!(
        "next: `kubectl rails deploy` starts it before the migration, and the pods it rolls out read {url_key} pointing at it"
    ));
    Ok(())
}

fn layout(settings: &Settings) -> anyhow::Error {
    exit::failure(
        format!(
            "cannot edit `{}`: it is not laid out as `kubectl rails init` writes it",
            settings.spec_path.display()
        ),
        Some("add the accessory by hand".into()),
    )
}

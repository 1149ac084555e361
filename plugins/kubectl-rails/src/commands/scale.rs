//! `kubectl rails scale` and `autoscale`: the cluster first, then the spec file, so that a
//! refused change leaves the file as it was and the next deploy does not undo an accepted one.

use kubectl_rails_core::file;
use kubectl_rails_core::model::Autoscale;
use kubectl_rails_scale::{self as scaling, ScaleError};

use crate::cli::{AutoscaleArgs, ScaleArgs};
use crate::context::Context;
use crate::exit;
use crate::overlay::{Edited, OverlayEdit, process_keys};
use crate::settings::Settings;

/// Usage mistakes are exit 2; the rest keep their own code.
fn usage_or(e: ScaleError) -> anyhow::Error {
    match e {
        ScaleError::Syntax { .. }
        | ScaleError::Negative { .. }
        | ScaleError::UnknownProcess { .. }
        | ScaleError::Autoscale(_) => exit::usage(e.to_string(), e.hint()),
        other => other.into(),
    }
}

fn read_spec_text(settings: &Settings) -> anyhow::Result<String> {
    Ok(
        fs_err::read_to_string(&settings.spec_path).map_err(|_| file::SpecFileError::Missing {
            path: settings.spec_path.clone(),
        })?,
    )
}

pub(crate) async fn scale(args: &ScaleArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    settings.output(&[])?;
    let _lock = crate::overlay::lock_spec(settings, printer)?;
    let spec = ctx.spec()?;
    let targets = scaling::parse_targets(&args.targets, spec).map_err(usage_or)?;
    if !args.force {
        for (_, n) in targets.iter().filter(|(p, _)| p == "web") {
            scaling::check_single_node(spec, *n)?;
        }
    }
    let edited = match OverlayEdit::open(settings)? {
        Some(mut overlay) => {
            for (process, n) in &targets {
                overlay.set(&process_keys(process, "replicas"), &n.to_string())?;
            }
            overlay.merged()?;
            Edited::Overlay(overlay)
        }
        None => {
            let text = read_spec_text(settings)?;
            let new_text = scaling::spec_with_replicas(&text, &targets)?;
            file::parse(&new_text, &settings.spec_path)?;
            Edited::Base {
                path: settings.spec_path.clone(),
                text: new_text,
            }
        }
    };
    let target = ctx.target().await?;
    let managed = scaling::scale(&target.conn.client, &target.namespace, spec, &targets).await?;
    for (process, n) in &targets {
        printer.step(&format!("scaled `{process}` to {n}"));
    }
    for process in managed {
        printer.warn(&format!(
            "an autoscaler manages `{process}`: it will move the count back within its bounds (change them with `kubectl rails autoscale {process}`)"
        ));
    }
    edited.write(printer)?;
    printer.info(&format!(
        "updated `{}`, so the next deploy keeps these counts",
        edited.path().display()
    ));
    Ok(())
}

pub(crate) async fn autoscale(args: &AutoscaleArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    settings.output(&[])?;
    let _lock = crate::overlay::lock_spec(settings, printer)?;
    let spec = ctx.spec()?;
    if spec.replicas_of(&args.process).is_none() {
        return Err(usage_or(ScaleError::UnknownProcess {
            process: args.process.clone(),
            known: spec.process_names().join(", "),
        }));
    }
    let wanted = match args.max {
        Some(max) if !args.off => {
            let a = Autoscale {
                min: args.min,
                max,
                cpu: args.cpu,
            };
            scaling::check_autoscale(a).map_err(usage_or)?;
            if args.process == "web" && !args.force {
                scaling::check_single_node(spec, max)?;
            }
            Some(a)
        }
        _ => None,
    };
    let (edited, new_spec) = match OverlayEdit::open(settings)? {
        Some(mut overlay) => {
            let keys = process_keys(&args.process, "autoscale");
            match wanted {
                Some(a) => overlay.set(
                    &keys,
                    &format!("{{min: {}, max: {}, cpu: {}}}", a.min, a.max, a.cpu),
                )?,
                None => {
                    overlay.remove(&keys)?;
                    // The base's autoscaler shows through unless the overlay turns it off.
                    if overlay.merged()?.autoscale_of(&args.process).is_some() {
                        overlay.set(&keys, "null")?;
                    }
                }
            }
            let new_spec = overlay.merged()?;
            (Edited::Overlay(overlay), new_spec)
        }
        None => {
            let text = read_spec_text(settings)?;
            let new_text = scaling::spec_with_autoscale(&text, &args.process, wanted)?;
            let new_spec = file::parse(&new_text, &settings.spec_path)?.spec;
            let path = settings.spec_path.clone();
            (
                Edited::Base {
                    path,
                    text: new_text,
                },
                new_spec,
            )
        }
    };
    let target = ctx.target().await?;
    let changed = scaling::apply_autoscaler(
        &target.conn.client,
        &target.namespace,
        &new_spec,
        &args.process,
    )
    .await?;
    match wanted {
        Some(a) => printer.step(&format!(
            "`{}` autoscales from {} to {} replicas at {}% CPU (HorizontalPodAutoscaler `{}`)",
            args.process,
            a.min,
            a.max,
            a.cpu,
            spec.deployment_name(&args.process)
        )),
        None if changed => printer.step(&format!(
            "removed the autoscaler of `{}`; the next deploy sets its replicas from the spec",
            args.process
        )),
        None => printer.info(&format!("`{}` had no autoscaler", args.process)),
    }
    edited.write(printer)?;
    printer.info(&format!("updated `{}`", edited.path().display()));
    Ok(())
}

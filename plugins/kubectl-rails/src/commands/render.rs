//! `kubectl rails render`: print the app's objects, or write them to a folder.

use kubectl_rails_core::AppSpec;
use kubectl_rails_core::file::write_atomic;
use kubectl_rails_core::render::{self, Release, RenderInputs};

use crate::cli::{OutputFormat, RenderArgs};
use crate::context::Context;

pub(crate) fn run(args: &RenderArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    let printer = ctx.printer;
    let format = ctx
        .settings
        .output(&[OutputFormat::Yaml, OutputFormat::Json])?
        .unwrap_or(OutputFormat::Yaml);
    let mut spec = ctx.spec_and_warn()?.clone();
    spec.namespace = Some(ctx.namespace()?);
    // The image deploy would run: `--image`, `--tag`, else the app folder's git commit for an
    // untagged image.
    if let Some(image) = &args.image {
        spec.image = kubectl_rails_core::ImageSpec::parse(image);
    }
    if let Some(tag) = &args.tag {
        spec.image.tag = Some(tag.clone());
    }
    if spec.image.tag.is_none() {
        spec.image.tag = crate::image::git_commit(&ctx.settings.global.app_dir);
    }
    let release = render::render(&spec, &RenderInputs::default());
    match &args.out_dir {
        Some(dir) => {
            for (i, object) in release.objects.iter().enumerate() {
                let (ext, text) = match format {
                    OutputFormat::Json => (
                        "json",
                        format!("{}\n", serde_json::to_string_pretty(&object.value)?),
                    ),
                    _ => ("yaml", to_yaml(&object.value)),
                };
                let path = dir.join(format!(
                    "{:02}-{}-{}.{ext}",
                    i + 1,
                    object.kind.to_lowercase(),
                    object.name
                ));
                write_atomic(&path, &text)?;
            }
            printer.step(&format!(
                "wrote {} objects to `{}`",
                release.objects.len(),
                dir.display()
            ));
            printer.note(&secret_note(&spec));
        }
        None => printer.out(&print(&spec, &release, format)?)?,
    }
    Ok(())
}

/// The Secret is referenced by name, never rendered: its values live only in the cluster.
fn secret_note(spec: &AppSpec) -> String {
    if spec.secrets.is_empty() {
        "the app names no secret keys".into()
    } else {
        let required: Vec<&str> = spec.secrets.required().map(String::as_str).collect();
        let optional: Vec<&str> = spec.secrets.optional().map(String::as_str).collect();
        let may = if optional.is_empty() {
            String::new()
        } else {
            format!("; it may hold {} (optional)", optional.join(", "))
        };
        format!(
            "Secret `{}` is referenced, not rendered; it must hold {}{may}. Set values with `kubectl rails secrets set KEY`",
            spec.secret_name(),
            if required.is_empty() {
                "nothing".to_string()
            } else {
                required.join(", ")
            }
        )
    }
}

/// The release as one YAML stream or one JSON `v1` `List`.
pub(crate) fn print(
    spec: &AppSpec,
    release: &Release,
    format: OutputFormat,
) -> anyhow::Result<String> {
    Ok(match format {
        OutputFormat::Json => format!("{}\n", serde_json::to_string_pretty(&release.to_list())?),
        _ => {
            let mut out = format!(
                "# Rendered by kubectl-rails for app `{}`.\n# {}\n",
                spec.name,
                secret_note(spec)
            );
            for object in &release.objects {
                out.push_str("---\n");
                out.push_str(&to_yaml(&object.value));
            }
            out
        }
    })
}

pub(crate) fn to_yaml(value: &serde_json::Value) -> String {
    let mut text = serde_saphyr::to_string(value).expect("JSON values always serialize to YAML");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

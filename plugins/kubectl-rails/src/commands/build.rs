//! `kubectl rails build`, and the build step of `deploy`: the image from the app folder (the
//! committed tree of HEAD, as Kamal builds it, or `--context DIR` as it is), built by the builder
//! at hand and pushed with the registry credentials the plugin holds.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kubectl_rails_build::{self as build, BuildError, Job, Private};
use kubectl_rails_core::AppSpec;
use kubectl_rails_registry::{ImageRef, RegistryError};

use crate::cli::{BuildArgs, BuildHow};
use crate::context::Context;
use crate::exit;
use crate::image::resolve_image;
use crate::pin;
use crate::printer::Printer;
use crate::settings::Target;

pub(crate) async fn run(args: &BuildArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    let settings = ctx.settings;
    settings.output(&[])?;
    let mut spec = ctx.spec()?.clone();
    resolve_image(
        &mut spec,
        args.image.as_deref(),
        args.tag.as_deref(),
        true,
        &settings.global.app_dir,
    )?;
    // The cluster's pull secret holds the registry's credentials when there is a cluster; the
    // Docker config otherwise.
    let target = ctx.target().await.ok();
    build_and_push(
        &spec,
        &args.how,
        target,
        &settings.global.app_dir,
        ctx.printer,
    )
    .await
}

/// Whether `deploy` builds: `--build` always, `--skip-build` never, otherwise when the registry
/// says it does not have the tag (a redeploy or a rollback of a built commit does not build
/// again; a registry this machine cannot ask is left alone).
pub(crate) async fn needed(target: &Target, spec: &AppSpec, printer: &Printer) -> bool {
    let Some(tag) = &spec.image.tag else {
        return true;
    };
    let image = ImageRef::new(&spec.image.repository, tag);
    let login = pin::registry_login(target, spec).await;
    match kubectl_rails_registry::digest(&image, login.as_ref(), Duration::from_secs(10)).await {
        Ok(_) => {
            printer.step(&format!(
                "`{}` is in the registry already: not building it again (`--build` does)",
                spec.image.tagged()
            ));
            false
        }
        Err(RegistryError::NotFound { .. }) => true,
        // A registry only the cluster reaches (or that wants other credentials): the image is
        // likely built elsewhere, and a push from here would fail anyway.
        Err(e) => {
            printer.note(&format!(
                "could not ask the registry whether it has `{}` ({e}): not building it (`--build` builds and pushes anyway)",
                spec.image.tagged()
            ));
            false
        }
    }
}

/// Builds the spec's image and pushes it; a failure changes nothing and says the step.
pub(crate) async fn build_and_push(
    spec: &AppSpec,
    how: &BuildHow,
    target: Option<&Target>,
    app_dir: &Path,
    printer: &Printer,
) -> anyhow::Result<()> {
    let Some(recipe) = &spec.build else {
        return Err(exit::usage(
            "the spec has no `build:` section: its image is built elsewhere",
            Some("add `build: {dockerfile: Dockerfile}` to the spec (`kubectl rails init` writes it when it reads a Dockerfile), or deploy with `--skip-build`".into()),
        ));
    };
    let wanted = how.builder.as_deref().or(recipe.builder.as_deref());
    let builder = match wanted {
        Some("cluster") => None,
        _ => match build::choose(wanted) {
            Ok(builder) => Some(builder),
            // No builder here: the cluster builds, as the order says (`build.builder`).
            Err(BuildError::NoBuilder) if target.is_some() => {
                printer.note("no image builder on PATH (docker buildx, podman, buildah, nerdctl): building in the cluster with BuildKit");
                None
            }
            Err(e) => return Err(exit::failure(e.to_string(), Some(no_builder_hint(&e)))),
        },
    };
    // The committed tree, as Kamal builds it; `--context` builds a folder as it is.
    let (tree, root, what): (Option<build::TempDir>, PathBuf, String) = match &how.build_context {
        Some(dir) => (
            None,
            app_dir.join(dir),
            format!("the folder `{}` as it is", dir.display()),
        ),
        None => match build::committed_tree(app_dir) {
            Ok((tree, dirty)) => {
                if dirty {
                    printer.warn("the app folder has uncommitted changes, which the build leaves out: it builds the committed tree of HEAD (`--build-context .` builds the folder as it is)");
                }
                let root = tree.path().to_path_buf();
                (Some(tree), root, "the committed tree of HEAD".to_string())
            }
            Err(e) => {
                printer.note(&format!(
                    "building the app folder as it is: {e} (not a git repository?)"
                ));
                (
                    None,
                    app_dir.to_path_buf(),
                    "the app folder as it is".to_string(),
                )
            }
        },
    };
    let private = Private::new()?;
    let secret_files = private
        .secret_files(&recipe.secrets, |k| std::env::var(k).ok())
        .map_err(|e| {
            exit::usage(
                e.to_string(),
                Some("export it before building: build secrets come from the environment, as Kamal's do".into()),
            )
        })?;
    for name in &recipe.secrets {
        if let Ok(value) = std::env::var(name) {
            printer.mask_secret(name, value.as_bytes());
        }
    }
    let Some(builder) = builder else {
        let Some(target) = target else {
            return Err(exit::failure(
                "the cluster builder needs a cluster, and none is reachable",
                Some("check `kubectl config current-context`, or build on this machine with `--builder buildah` (or docker, podman, nerdctl)".into()),
            ));
        };
        let result = in_cluster(spec, recipe, how, target, &root, &what, printer).await;
        drop(tree);
        return finish(result, &spec.image.tagged(), printer);
    };
    let mut env = Vec::new();
    if let Some(server) = spec.image.registry_host() {
        let login = match target {
            Some(t) => pin::registry_login(t, spec).await,
            None => None,
        };
        let own = docker_config_text();
        let login = login.map(|l| (l.username, l.password)).or_else(|| {
            let path = kubectl_rails_secrets::docker::config_path(
                std::env::var_os("DOCKER_CONFIG").map(PathBuf::from),
                std::env::var_os("HOME").map(PathBuf::from),
            )?;
            kubectl_rails_secrets::docker::lookup(&path, server)
                .ok()
                .map(|c| (c.username, c.password))
        });
        if let Some((username, password)) = login {
            printer.mask_secret("registry password", password.as_bytes());
            env = private.registry_login(own.as_deref(), server, &username, &password)?;
        }
    }
    let job = Job {
        image: spec.image.tagged(),
        context: root.join(&recipe.context),
        dockerfile: root.join(&recipe.dockerfile),
        secret_files,
    };
    let lines = build::commands(builder, recipe, &job);
    printer.step(&format!(
        "building `{}` with {} from {what}",
        job.image,
        builder.name()
    ));
    let result = tokio::task::block_in_place(|| {
        build::run(&lines, &env, &recipe.secrets, &mut |line| {
            printer.info(&format!("  │ {line}"));
        })
    });
    drop(tree);
    finish(result, &job.image, printer)
}

/// What a build's end says: the time, or the failing step with the last lines of its log.
fn finish(
    result: Result<Duration, BuildError>,
    image: &str,
    printer: &Printer,
) -> anyhow::Result<()> {
    match result {
        Ok(took) => {
            printer.step(&format!(
                "built and pushed `{image}` in {:.0}s",
                took.as_secs_f64()
            ));
            Ok(())
        }
        Err(BuildError::Failed {
            builder,
            step,
            tail,
        }) => {
            printer.info("last lines of the build:");
            for l in &tail {
                printer.info(&format!("  | {l}"));
            }
            Err(exit::failure(
                format!(
                    "the image build failed{}: nothing was changed in the cluster",
                    step.map(|s| format!(" at `{s}`")).unwrap_or_default()
                ),
                Some(format!(
                    "{builder} said why above; fix the Dockerfile (or the app) and deploy again"
                )),
            ))
        }
        Err(BuildError::Cluster { what, fix }) => Err(exit::failure(
            format!("the cluster builder cannot build: {what}; nothing was changed in the cluster"),
            Some(fix),
        )),
        Err(e) => Err(exit::failure(e.to_string(), None)),
    }
}

/// The build in a BuildKit pod of the cluster, fed over the API.
async fn in_cluster(
    spec: &AppSpec,
    recipe: &kubectl_rails_core::model::BuildSpec,
    how: &BuildHow,
    target: &Target,
    root: &Path,
    what: &str,
    printer: &Printer,
) -> Result<Duration, BuildError> {
    let cluster = recipe.cluster.clone().unwrap_or_default();
    let builder_image = kubectl_rails_buildkit::builder_image(
        how.builder_image.as_deref().or(cluster.image.as_deref()),
        &cluster,
    )?;
    let mut secrets = Vec::new();
    for name in &recipe.secrets {
        let value = std::env::var(name).map_err(|_| BuildError::MissingSecret(name.clone()))?;
        secrets.push((name.clone(), value.into_bytes()));
    }
    let login = pin::registry_login(target, spec).await;
    let docker_config = match (spec.image.registry_host(), &login) {
        (Some(server), Some(login)) => {
            printer.mask_secret("registry password", login.password.as_bytes());
            Some(build::docker_config(
                docker_config_text().as_deref(),
                server,
                &login.username,
                &login.password,
            ))
        }
        _ => docker_config_text(),
    };
    let request = kubectl_rails_buildkit::Request {
        app: spec.name.clone(),
        namespace: cluster
            .namespace
            .clone()
            .unwrap_or_else(|| target.namespace.clone()),
        builder_image,
        image: spec.image.tagged(),
        cache: kubectl_rails_buildkit::cache_ref(recipe, &spec.image.repository),
        root: root.to_path_buf(),
        recipe: recipe.clone(),
        placement: spec.placement.clone(),
        pull_secret: spec.registry.as_ref().map(|r| r.pull_secret.clone()),
        registry_host: spec.image.registry_host().map(str::to_string),
        docker_config,
        secrets,
    };
    printer.step(&format!(
        "building `{}` in the cluster ({} BuildKit in namespace `{}`) from {what}",
        request.image,
        if cluster.privileged {
            "privileged"
        } else {
            "rootless"
        },
        request.namespace
    ));
    if request
        .registry_host
        .as_deref()
        .is_some_and(kubectl_rails_buildkit::on_node_loopback)
    {
        printer.note("the registry is on the nodes' loopback: the BuildKit pod uses the node's network to reach it");
    }
    kubectl_rails_buildkit::build(&target.conn.client, &request, &mut |line| {
        printer.info(&format!("  │ {line}"));
    })
    .await
}

fn no_builder_hint(e: &BuildError) -> String {
    match e {
        BuildError::UnknownBuilder(_) => "set `build.builder` or `--builder` to one of them".into(),
        _ => "install one (Debian: `apt-get install buildah`), or build elsewhere and deploy with `--skip-build`".into(),
    }
}

/// The user's own Docker config, whose other registries' credentials the build keeps.
fn docker_config_text() -> Option<String> {
    let path = kubectl_rails_secrets::docker::config_path(
        std::env::var_os("DOCKER_CONFIG").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )?;
    std::fs::read_to_string(path).ok()
}

//! `secrets registry`: credentials for the image's registry, from flags, stdin, a prompt or the
//! Docker config (all before the cluster is contacted), written as the pods' pull secret.

use std::io::Read;
use std::path::Path;

use kubectl_rails_core::AppSpec;
use kubectl_rails_secrets::{AppSecrets, docker};

use crate::context::Context;
use crate::exit;

/// Registry credentials from flags, stdin, a prompt or the Docker config: all before the
/// cluster is contacted, so a bad source writes nothing.
pub(super) fn registry_credentials(
    ctx: &Context<'_>,
    spec: &AppSpec,
    server: Option<&str>,
    username: Option<&str>,
    password_stdin: bool,
    docker_config: Option<&Path>,
) -> anyhow::Result<docker::Credentials> {
    let (settings, printer) = (ctx.settings, ctx.printer);
    let image_host = spec.image.registry_host().map(docker::normalize_server);
    let server = server
        .map(str::to_string)
        .or_else(|| spec.registry.as_ref().map(|r| r.server.clone()))
        .or_else(|| image_host.clone())
        .ok_or_else(|| {
            exit::usage(
                "which registry? the image names none",
                Some("pass `--server`, such as `--server ghcr.io`".into()),
            )
        })?;
    let server = docker::normalize_server(&server);
    let wanted_image_host = image_host.unwrap_or_else(|| docker::DOCKER_HUB.to_string());
    if wanted_image_host != server {
        printer.warn(&format!(
            "registry `{server}` is not the host of the image `{}` (`{wanted_image_host}`): pods will not use these credentials for it",
            spec.image.reference()
        ));
    }
    let creds = match (username, password_stdin) {
        (Some(user), true) => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\n', '\r']).to_string();
            if password.is_empty() {
                return Err(exit::usage("the password read from stdin is empty", Some("pipe the token in: `echo \"$TOKEN\" | kubectl rails secrets registry --username USER --password-stdin`".into())));
            }
            docker::Credentials {
                server: server.clone(),
                username: user.to_string(),
                password,
            }
        }
        (None, true) => return Err(exit::usage("`--password-stdin` needs `--username`", None)),
        (Some(user), false) => {
            if !settings.prompter.interactive {
                return Err(exit::usage(
                    "no password, and nobody is at a terminal to type it",
                    Some("pass `--password-stdin`".into()),
                ));
            }
            let password = settings
                .prompter
                .password(&format!("Password or token for {user}@{server}"))?;
            docker::Credentials {
                server: server.clone(),
                username: user.to_string(),
                password,
            }
        }
        (None, false) => {
            let path = docker_config
                .map(Path::to_path_buf)
                .or_else(|| {
                    docker::config_path(
                        std::env::var_os("DOCKER_CONFIG").map(Into::into),
                        std::env::home_dir(),
                    )
                })
                .ok_or_else(|| {
                    exit::usage(
                        "no Docker config to read",
                        Some("pass `--docker-config` or `--username`".into()),
                    )
                })?;
            printer.step(&format!(
                "reading credentials for `{server}` from `{}`",
                path.display()
            ));
            docker::lookup(&path, &server)?
        }
    };
    Ok(creds)
}

/// Writes the pull secret the spec names (else `<app>-registry`) with `creds`.
pub(crate) async fn write_registry(
    ctx: &Context<'_>,
    spec: &AppSpec,
    store: &AppSecrets,
    creds: &docker::Credentials,
) -> anyhow::Result<()> {
    let (printer, target) = (ctx.printer, ctx.target().await?);
    let config = docker::dockerconfigjson(creds);
    printer.mask_docker_config(&config);
    let server = &creds.server;
    let name = spec
        .registry
        .as_ref()
        .map(|r| r.pull_secret.clone())
        .unwrap_or_else(|| format!("{}-registry", spec.name));
    store.write_pull_secret(&name, config).await?;
    printer.step(&format!(
        "wrote pull secret `{name}` for `{server}` (user `{}`) in namespace `{}`",
        creds.username, target.namespace
    ));
    if spec.registry.is_none() {
        printer.note(&format!(
            "the spec has no `registry:`; add `registry: {{server: {server}, pull_secret: {name}}}` so pods pull with it"
        ));
    }
    Ok(())
}

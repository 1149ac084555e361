//! The questions `init` asks only when the folder cannot answer them: the image's user and
//! whether its registry needs a login.

use kubectl_rails_core::ImageSpec;
use kubectl_rails_core::detect::ImageUser;
use kubectl_rails_core::propose::Proposal;

use super::Mode;
use crate::cli::InitArgs;
use crate::printer::Printer;
use crate::prompt::Prompter;

/// The uid and gid the pods run as: flags, else the Dockerfile, else a question. Never a guess:
/// a kubelet refuses a named user it cannot verify, and a wrong number breaks file permissions.
pub(super) fn image_user(
    args: &InitArgs,
    proposal: &Proposal,
    prompter: &Prompter,
    printer: &Printer,
    missing: &mut super::Missing,
) -> anyhow::Result<(Option<i64>, Option<i64>)> {
    if let Some(at) = &proposal.starts_as_root {
        match args.uid {
            // `--uid` would start the entrypoint without the root it needs to chown and drop.
            Some(uid) => printer.warn(&format!(
                "`--uid {uid}`: the image starts as root and drops to its user at {at}; as uid {uid} that entrypoint cannot chown or switch users, and the pod may not start"
            )),
            None => return Ok((Some(0), args.gid)),
        }
    }
    let (found_uid, found_gid) = match proposal.user {
        Some(ImageUser::Numeric { uid, gid }) => (Some(uid), gid),
        _ => (None, None),
    };
    let id_check = |s: &str| match s.parse::<i64>() {
        Ok(n) if n > 0 => Ok(()),
        _ => Err(format!("`{s}` is not a user id above 0")),
    };
    let uid = match args.uid.or(found_uid) {
        Some(uid) => uid,
        None => {
            let why = match &proposal.user {
                Some(ImageUser::Root) => {
                    "the Dockerfile sets no non-root `USER`, so the image runs as root, which pods here may not".to_string()
                }
                Some(ImageUser::Unknown(why)) => why.clone(),
                _ => "no Dockerfile says which user the image runs as".to_string(),
            };
            if !prompter.interactive {
                missing.add(
                    "--uid",
                    format!(
                        "the user id the image runs as ({why}; the number `id -u` prints in the image)"
                    ),
                );
                let gid = args.gid.or(found_gid);
                if gid.is_none() && proposal.volume.is_some() {
                    missing.add(
                        "--gid",
                        "the group id of the image's user, so that the volume is writable (the number `id -g` prints in the image)".into(),
                    );
                }
                return Ok((None, gid));
            }
            prompter
                .text(
                    &format!("User id the image runs as ({why})"),
                    None,
                    "--uid",
                    id_check,
                )?
                .parse()?
        }
    };
    let gid = match args.gid.or(found_gid) {
        Some(gid) => Some(gid),
        // The group owns the volume (`fsGroup`): needed only when there is one.
        None if proposal.volume.is_some() => {
            if !prompter.interactive {
                missing.add(
                    "--gid",
                    "the group id of the image's user, so that the volume is writable (the number `id -g` prints in the image)".into(),
                );
                return Ok((Some(uid), None));
            }
            Some(
                prompter
                    .text(
                        "Group id of the image's user (it will own the volume)",
                        Some(&uid.to_string()),
                        "--gid",
                        id_check,
                    )?
                    .parse()?,
            )
        }
        None => None,
    };
    Ok((Some(uid), gid))
}

/// Whether pulling the image needs a pull secret: the flags, else whether Kamal or the Docker
/// config logs in to its registry, else a question (no by default: a registry host alone does
/// not make an image private).
pub(super) fn private_registry(
    args: &InitArgs,
    proposal: &Proposal,
    image: &ImageSpec,
    prompter: &Prompter,
    printer: &Printer,
    mode: Mode,
) -> anyhow::Result<Registry> {
    if args.private || args.public {
        return Ok(Registry {
            private: args.private,
            username: None,
        });
    }
    let host = image.registry_host().unwrap_or("docker.io");
    let known = |private| Registry {
        private,
        username: None,
    };
    if proposal.kamal_logs_in_to(image) {
        printer.note(&format!(
            "Kamal logs in to `{host}`: the pods pull with a pull secret (`kubectl rails secrets registry` writes it)"
        ));
        return Ok(known(true));
    }
    if docker_config_names(host) {
        printer.note(&format!(
            "your Docker config logs in to `{host}`: the pods pull with a pull secret (`kubectl rails secrets registry` copies it)"
        ));
        return Ok(known(true));
    }
    if !prompter.interactive {
        printer.note(&format!(
            "no login to `{host}` found: the image is pulled without credentials (pass `--private` if it needs them)"
        ));
        return Ok(known(false));
    }
    match mode {
        // One question serves both: a user name means a private registry, and the deploy asks
        // its password next.
        Mode::FirstDeploy => {
            let username = prompter.optional_text(
                &format!(
                    "Registry user for `{host}` (Enter if `{}` is public)",
                    image.repository
                ),
                "--private",
            )?;
            Ok(Registry {
                private: username.is_some(),
                username,
            })
        }
        Mode::Full => Ok(known(prompter.yes_no(
            &format!(
                "Does pulling `{}` need credentials (a private registry)?",
                image.repository
            ),
            false,
        )?)),
    }
}

/// Whether the image needs a pull secret, and the user name given for it, if asked.
pub(crate) struct Registry {
    pub private: bool,
    pub username: Option<String>,
}

/// Whether the Docker config (`$DOCKER_CONFIG`, else `~/.docker`) has an entry for `host`.
fn docker_config_names(host: &str) -> bool {
    let path = kubectl_rails_secrets::docker::config_path(
        std::env::var_os("DOCKER_CONFIG").map(Into::into),
        std::env::home_dir(),
    );
    path.and_then(|p| std::fs::read_to_string(p).ok())
        .is_some_and(|text| kubectl_rails_secrets::docker::names_registry(&text, host))
}

/// How long `init` waits for the cluster to say how it routes requests: a laptop with no
/// cluster at hand must not wait on it.
const ROUTING_PROBE: std::time::Duration = std::time::Duration::from_secs(3);

/// What the cluster of the kubeconfig offers for routing, if it answers in time: its
/// IngressClasses' count and its Gateways (`namespace/name`).
fn cluster_routing(settings: &crate::settings::Settings) -> Option<(usize, Vec<String>)> {
    let args = settings.cluster_args();
    let probe = async move {
        let conn = kubectl_rails_kube::connect(&args).await.ok()?;
        let (classes, gateways) = tokio::join!(
            kubectl_rails_doctor::ingress_classes(&conn.client),
            kubectl_rails_doctor::gateways(&conn.client)
        );
        Some((classes.ok()?.len(), gateways.ok()?))
    };
    // `init` runs on the runtime's thread: the probe runs beside it, bounded.
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current()
            .block_on(async { tokio::time::timeout(ROUTING_PROBE, probe).await.ok()? })
    })
}

/// Which Gateways to offer: the cluster's, when it has no IngressClass (an Ingress would get no
/// address there).
pub(super) fn gateways_to_offer(ingress_classes: usize, gateways: Vec<String>) -> Vec<String> {
    if ingress_classes == 0 {
        gateways
    } else {
        vec![]
    }
}

/// At a terminal, when the cluster routes with Gateways and has no IngressClass: which Gateway
/// the hosts attach to, or an Ingress anyway.
pub(super) fn gateway(
    settings: &crate::settings::Settings,
    prompter: &Prompter,
    hosts: &[String],
) -> anyhow::Result<Option<String>> {
    let Some((classes, gateways)) = cluster_routing(settings) else {
        return Ok(None);
    };
    let offered = gateways_to_offer(classes, gateways);
    if offered.is_empty() {
        return Ok(None);
    }
    let mut items = offered.clone();
    items.push(
        "an Ingress (no IngressClass here yet: it gets no address until a controller is installed)"
            .into(),
    );
    let chosen = prompter.select(
        &format!(
            "The cluster routes with the Gateway API and has no IngressClass: how do requests reach {}?",
            hosts.join(", ")
        ),
        &items,
        "--gateway",
    )?;
    Ok(offered.get(chosen).cloned())
}

#[cfg(test)]
mod tests {
    use super::gateways_to_offer;

    #[test]
    fn gateways_are_offered_only_where_no_ingress_class_is() {
        let gws = || vec!["gw/public".to_string()];
        assert_eq!(gateways_to_offer(0, gws()), gws());
        assert!(gateways_to_offer(1, gws()).is_empty());
        assert!(gateways_to_offer(0, vec![]).is_empty());
    }
}

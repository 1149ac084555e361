//! `kubectl rails init`: read the app folder, ask for what it cannot tell, write the spec.

use kubectl_rails_spec::ImageSpec;
use kubectl_rails_spec::detect::{self, Detection, ImageUser};
use kubectl_rails_spec::file;
use kubectl_rails_spec::model::{Placement, Toleration};
use kubectl_rails_spec::propose::{self, Answers, Proposal};
use kubectl_rails_spec::validate::{self, check_app_name, check_namespace};

use crate::cli::InitArgs;
use crate::exit;
use crate::printer::Printer;
use crate::prompt::Prompter;
use crate::settings::Settings;

pub(crate) fn run(args: &InitArgs, settings: &Settings, printer: &Printer) -> anyhow::Result<()> {
    settings.output(&[])?;
    let InitOutcome { spec_text, notes } = build_spec(args, settings, printer)?;
    write_spec(settings, printer, &spec_text)?;
    for note in notes {
        printer.note(&note);
    }
    printer.info("next: set the secret values with `kubectl rails secrets set KEY`, then run `kubectl rails deploy`");
    Ok(())
}

struct InitOutcome {
    spec_text: String,
    notes: Vec<String>,
}

/// Checks flag values first, so that a bad flag is a usage error before any file is read.
fn check_flags(args: &InitArgs, settings: &Settings) -> anyhow::Result<()> {
    if let Some(name) = &args.name {
        name_ok(name).map_err(|e| exit::usage(format!("invalid `--name`: {e}"), None))?;
    }
    if let Some(ns) = &settings.global.namespace {
        check_namespace(ns).map_err(|e| {
            exit::usage(format!("invalid `--namespace` `{ns}`: {}", e.reason), None)
        })?;
    }
    if let Some(r) = args.replicas {
        replicas_ok(r).map_err(|e| exit::usage(format!("invalid `--replicas`: {e}"), None))?;
    }
    if let Some(image) = &args.image {
        image_ok(image).map_err(|e| exit::usage(format!("invalid `--image`: {e}"), None))?;
    }
    for host in &args.hosts {
        host_ok(host).map_err(|e| exit::usage(format!("invalid `--host`: {e}"), None))?;
    }
    if args.port == Some(0) {
        return Err(exit::usage("invalid `--port`: 0 is not a port", None));
    }
    for (flag, id) in [("--uid", args.uid), ("--gid", args.gid)] {
        if let Some(id) = id
            && id <= 0
        {
            return Err(exit::usage(
                format!("invalid `{flag}`: {id}; pods run as a non-root user, so use 1 or more"),
                None,
            ));
        }
    }
    placement(args)?;
    Ok(())
}

/// `--node-selector` and `--toleration` as the app-wide placement.
fn placement(args: &InitArgs) -> anyhow::Result<Placement> {
    let mut placement = Placement::default();
    for pair in &args.node_selectors {
        match pair.split_once('=') {
            Some((k, v)) if validate::is_label_key(k) && validate::is_label_value(v) => {
                placement.node_selector.insert(k.to_string(), v.to_string());
            }
            _ => {
                return Err(exit::usage(
                    format!("invalid `--node-selector`: `{pair}` is not a node label `KEY=VALUE`"),
                    Some("for example `--node-selector pool=rails`".into()),
                ));
            }
        }
    }
    for text in &args.tolerations {
        let t = Toleration::parse(text)
            .map_err(|e| exit::usage(format!("invalid `--toleration`: {e}"), None))?;
        if !validate::is_label_key(&t.key) {
            return Err(exit::usage(
                format!("invalid `--toleration`: `{}` is not a taint key", t.key),
                None,
            ));
        }
        placement.tolerations.push(t);
    }
    Ok(placement)
}

fn name_ok(name: &str) -> Result<(), String> {
    check_app_name(name).map_err(|e| match e.suggestion {
        Some(s) => format!("`{name}`: {}; use `{s}`", e.reason),
        None => format!("`{name}`: {}", e.reason),
    })
}

fn replicas_ok(r: i32) -> Result<(), String> {
    if r < 0 {
        Err(format!("{r} is negative; use 0 or more"))
    } else {
        Ok(())
    }
}

fn image_ok(image: &str) -> Result<(), String> {
    if image.is_empty()
        || image.contains(char::is_whitespace)
        || image.chars().any(|c| c.is_ascii_uppercase())
    {
        Err(format!(
            "`{image}` is not an image reference such as `ghcr.io/acme/shop:1.0`"
        ))
    } else {
        Ok(())
    }
}

fn host_ok(host: &str) -> Result<(), String> {
    if validate::is_host(host) {
        Ok(())
    } else {
        Err(format!(
            "`{host}` is not a valid host name such as `shop.example.com`"
        ))
    }
}

fn build_spec(
    args: &InitArgs,
    settings: &Settings,
    printer: &Printer,
) -> anyhow::Result<InitOutcome> {
    check_flags(args, settings)?;
    let dir = &settings.global.app_dir;
    let detection = detect::detect(dir, args.port.is_none())?;
    describe(&detection, printer);
    let proposal = propose::propose(&detection, args.port);
    let prompter = &settings.prompter;

    let name = match (&args.name, &proposal.name) {
        (Some(n), _) => n.clone(),
        (None, Some(found)) if !prompter.interactive => found.clone(),
        (None, found) => prompter.text("App name", found.as_deref(), "--name", name_ok)?,
    };
    let image = match (&args.image, &proposal.image) {
        (Some(i), _) => i.clone(),
        (None, Some(found)) => found.clone(),
        (None, None) => {
            prompter.text("Container image (repository:tag)", None, "--image", |s| {
                image_ok(s)
            })?
        }
    };
    let image = ImageSpec::parse(&image);
    let hosts = if !args.hosts.is_empty() {
        args.hosts.clone()
    } else if args.no_ingress || !proposal.hosts.is_empty() {
        if args.no_ingress {
            vec![]
        } else {
            proposal.hosts.clone()
        }
    } else if prompter.interactive {
        loop {
            let answer =
                prompter.optional_text("Public host name (empty for no ingress)", "--host")?;
            match answer {
                Some(h) => match host_ok(&h) {
                    Ok(()) => break vec![h],
                    Err(e) => printer.warn(&e),
                },
                None => break vec![],
            }
        }
    } else {
        printer.note("no host found: no ingress is rendered (pass `--host` to add one)");
        vec![]
    };
    let namespace = match &settings.global.namespace {
        Some(ns) => ns.clone(),
        None if prompter.interactive => {
            prompter.text("Namespace", Some(&name), "--namespace", |s| {
                check_namespace(s).map_err(|e| e.reason)
            })?
        }
        None => name.clone(),
    };
    let suggested = proposal.replicas.to_string();
    let replicas = match args.replicas {
        Some(r) => r,
        None if prompter.interactive => prompter
            .text("Web replicas", Some(&suggested), "--replicas", |s| {
                s.parse::<i32>()
                    .map_err(|_| format!("`{s}` is not a number"))
                    .and_then(replicas_ok)
            })?
            .parse()?,
        None => proposal.replicas,
    };
    let (uid, gid) = image_user(args, &proposal, prompter)?;
    let private_registry = private_registry(args, &proposal, &image, prompter, printer)?;
    let notes = proposal.notes.clone();
    let spec = proposal.into_spec(Answers {
        name,
        image,
        hosts,
        namespace: Some(namespace),
        replicas,
        placement: placement(args)?,
        uid,
        gid,
        private_registry,
    });
    if let Some(v) = validate::validate(&spec).into_iter().next() {
        return Err(exit::failure(
            format!("the detected spec is invalid: {}", v.message),
            v.hint,
        ));
    }
    for w in validate::warnings(&spec) {
        printer.warn(&w);
    }
    Ok(InitOutcome {
        spec_text: file::to_yaml(&spec),
        notes,
    })
}

/// The uid and gid the pods run as: flags, else the Dockerfile, else a question. Never a guess:
/// a kubelet refuses a named user it cannot verify, and a wrong number breaks file permissions.
fn image_user(
    args: &InitArgs,
    proposal: &Proposal,
    prompter: &Prompter,
) -> anyhow::Result<(Option<i64>, Option<i64>)> {
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
            let why = match proposal.user {
                Some(ImageUser::Root) => {
                    "the Dockerfile sets no non-root `USER`, so the image runs as root, which pods here may not"
                }
                Some(ImageUser::Unknown) => {
                    "the Dockerfile's `USER` is a name, and no `useradd --uid` line gives its number (a kubelet cannot check a name is not root)"
                }
                _ => "no Dockerfile says which user the image runs as",
            };
            if !prompter.interactive {
                return Err(exit::usage(
                    format!("the user id the image runs as is needed: {why}"),
                    Some("pass `--uid` with the number `id -u` prints in the image (Rails' own Dockerfiles use 1000)".into()),
                ));
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
                return Err(exit::usage(
                    "the group id of the image's user is needed, so that the volume is writable: the Dockerfile does not give it",
                    Some("pass `--gid` with the number `id -g` prints in the image".into()),
                ));
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
fn private_registry(
    args: &InitArgs,
    proposal: &Proposal,
    image: &ImageSpec,
    prompter: &Prompter,
    printer: &Printer,
) -> anyhow::Result<bool> {
    if args.private || args.public {
        return Ok(args.private);
    }
    let host = image.registry_host().unwrap_or("docker.io");
    if proposal.kamal_logs_in_to(image) {
        printer.note(&format!(
            "Kamal logs in to `{host}`: the pods pull with a pull secret (`kubectl rails secrets registry` writes it)"
        ));
        return Ok(true);
    }
    if docker_config_names(host) {
        printer.note(&format!(
            "your Docker config logs in to `{host}`: the pods pull with a pull secret (`kubectl rails secrets registry` copies it)"
        ));
        return Ok(true);
    }
    let private = prompter.yes_no(
        &format!(
            "Does pulling `{}` need credentials (a private registry)?",
            image.repository
        ),
        false,
    )?;
    if !private && !prompter.interactive {
        printer.note(&format!(
            "no login to `{host}` found: the image is pulled without credentials (pass `--private` if it needs them)"
        ));
    }
    Ok(private)
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

fn describe(d: &Detection, printer: &Printer) {
    let mut found = Vec::new();
    if let Some(v) = &d.rails_version {
        found.push(format!("Rails {v}"));
    }
    if let Some(f) = &d.dockerfile {
        found.push(format!(
            "Dockerfile (port {})",
            f.expose.map_or("?".into(), |p| p.to_string())
        ));
    }
    if d.kamal.is_some() {
        found.push("Kamal config/deploy.yml".into());
    }
    if let Some((file, entries)) = &d.env_file {
        found.push(format!("{file} ({} keys)", entries.len()));
    }
    if !d.procfile.is_empty() {
        found.push("Procfile".into());
    }
    if d.master_key {
        found.push("config/master.key".into());
    }
    printer.step(&format!("found {}", found.join(", ")));
}

/// Shows what would change in an existing spec and asks before overwriting it.
fn write_spec(settings: &Settings, printer: &Printer, text: &str) -> anyhow::Result<()> {
    let path = &settings.spec_path;
    if let Ok(existing) = fs_err::read_to_string(path) {
        if existing == text {
            printer.info(&format!("`{}` is up to date", path.display()));
            return Ok(());
        }
        printer.info(&format!(
            "`{}` exists; the new spec would change it:",
            path.display()
        ));
        let diff = similar::TextDiff::from_lines(existing.as_str(), text);
        let mut shown = String::new();
        for change in diff.iter_all_changes() {
            let sign = match change.tag() {
                similar::ChangeTag::Delete => "-",
                similar::ChangeTag::Insert => "+",
                similar::ChangeTag::Equal => continue,
            };
            shown.push_str(&format!("{sign} {change}"));
        }
        printer.info(shown.trim_end());
        if !settings.prompter.confirm(
            &format!("Overwrite `{}`", path.display()),
            settings.global.yes,
        )? {
            return Err(exit::failure("kept the existing spec", None));
        }
    }
    file::write_atomic(path, text)?;
    printer.step(&format!("wrote `{}`", path.display()));
    Ok(())
}

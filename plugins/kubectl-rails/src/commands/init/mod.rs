//! `kubectl rails init`: read the app folder, ask for what it cannot tell, write the spec.

mod ask;
mod flags;
mod summary;

use kubectl_rails_core::ImageSpec;
use kubectl_rails_core::detect::{self, Detection};
use kubectl_rails_core::file;
use kubectl_rails_core::propose::{self, Answers};
use kubectl_rails_core::validate::{self, check_namespace};

use flags::{check_flags, host_ok, image_ok, name_ok, placement, replicas_ok};

use crate::cli::InitArgs;
use crate::context::Context;
use crate::exit;
use crate::printer::Printer;
use crate::settings::Settings;

pub(crate) use ask::Registry;

/// Which questions `init` asks at a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `kubectl rails init`: every answer, with the folder's findings as defaults.
    Full,
    /// The first `kubectl rails deploy`: only what the folder cannot tell; the rest takes the
    /// defaults `init` would propose, said in its table.
    FirstDeploy,
}

pub(crate) fn run(args: &InitArgs, ctx: &Context<'_>) -> anyhow::Result<()> {
    ctx.settings.output(&[])?;
    write_and_tell(args, ctx.settings, ctx.printer, Mode::Full)?;
    Ok(())
}

/// `init` for a deploy that finds no spec: returns the registry user given, if one was asked.
pub(crate) fn run_for_first_deploy(
    ctx: &Context<'_>,
    image: Option<String>,
    hosts: Vec<String>,
) -> anyhow::Result<Registry> {
    let args = InitArgs {
        name: None,
        image,
        hosts,
        no_ingress: false,
        gateway: None,
        replicas: None,
        port: None,
        node_selectors: vec![],
        tolerations: vec![],
        uid: None,
        gid: None,
        private: false,
        public: false,
        health_path: None,
        web_command: None,
        tls: false,
        no_tls: false,
        issuer: None,
        dockerfile: None,
        target: None,
    };
    write_and_tell(&args, ctx.settings, ctx.printer, Mode::FirstDeploy)
}

fn write_and_tell(
    args: &InitArgs,
    settings: &Settings,
    printer: &Printer,
    mode: Mode,
) -> anyhow::Result<Registry> {
    let InitOutcome {
        spec_text,
        notes,
        summary,
        registry,
        kamal_report,
        overlays,
    } = build_spec(args, settings, printer, mode)?;
    write_spec(settings, printer, &spec_text)?;
    for (destination, text, _) in &overlays {
        let (destination, text) = (destination.clone(), text.clone());
        let path = file::overlay_path(&settings.spec_path, &destination);
        if path.exists() {
            printer.note(&format!(
                "kept `{}`: Kamal's destination `{destination}` is already there",
                path.display()
            ));
            continue;
        }
        file::write_atomic(&path, &text)?;
        printer.step(&format!(
            "wrote `{}` for Kamal's destination `{destination}` (`kubectl rails -d {destination} deploy`)",
            path.display()
        ));
    }
    for note in notes {
        printer.note(&note);
    }
    if let Some(report) = kamal_report {
        printer.info(&format!(
            "Kamal's config/deploy.yml, key by key:\n{}",
            report.trim_end()
        ));
    }
    for (destination, _, report) in &overlays {
        printer.info(&format!(
            "Kamal's config/deploy.{destination}.yml, key by key (into config/kubernetes.{destination}.yml):\n{}",
            report.trim_end()
        ));
    }
    printer.info(&summary);
    Ok(registry)
}

struct InitOutcome {
    spec_text: String,
    notes: Vec<String>,
    /// What was found, what was decided, and what to do next.
    summary: String,
    registry: Registry,
    /// What became of every key of Kamal's `config/deploy.yml`, when there is one.
    kamal_report: Option<String>,
    /// Overlays of Kamal's destinations: (destination, text, what became of each key).
    overlays: Vec<(String, String, String)>,
}

fn build_spec(
    args: &InitArgs,
    settings: &Settings,
    printer: &Printer,
    mode: Mode,
) -> anyhow::Result<InitOutcome> {
    check_flags(args, settings)?;
    let dir = &settings.global.app_dir;
    let prompter = &settings.prompter;
    let full = mode == Mode::Full;
    // What nobody at a terminal can answer: all listed in one error at the end.
    let mut missing = Missing::default();
    let mut options = detect::DetectOptions {
        need_dockerfile: false,
        dockerfile: args.dockerfile.clone(),
        target: args.target.clone(),
    };
    let detection = match detect::detect(dir, &options) {
        Err(detect::DetectError::SeveralDockerfiles { candidates }) => {
            if prompter.interactive {
                let chosen = prompter.select(
                    "Which Dockerfile are production images built from?",
                    &candidates,
                    "--dockerfile",
                )?;
                options.dockerfile = Some(candidates[chosen].clone());
            } else {
                missing.add(
                    "--dockerfile",
                    format!(
                        "the Dockerfile production images are built from: {}",
                        candidates.join(", ")
                    ),
                );
                // Read the first, so that the error lists what the others questions would be
                // with it too.
                options.dockerfile = candidates.first().cloned();
            }
            detect::detect(dir, &options)?
        }
        other => other?,
    };
    describe(&detection, printer);
    let mut proposal = propose::propose(
        &detection,
        &propose::Given {
            port: args.port,
            health_path: args.health_path.clone(),
            web_command: args.web_command.clone(),
            tls: match (args.tls, args.no_tls) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            },
        },
    );
    for question in std::mem::take(&mut proposal.questions) {
        if prompter.interactive {
            let answer = prompter.text(&question.what, None, question.flag, |s| {
                if s.trim().is_empty() {
                    Err("a command is needed".to_string())
                } else {
                    Ok(())
                }
            })?;
            let c = kubectl_rails_core::detect::procfile::command_of(&answer);
            proposal.web_env.extend(c.env);
            proposal.web_command = Some(c.command);
        } else {
            missing.add(question.flag, question.what);
        }
    }

    // What nothing in the folder said, asked at a terminal with the default offered.
    if prompter.interactive && full {
        if proposal.guessed.contains(&"port") {
            let port = prompter.text(
                "Web port (nothing in the folder says; Rails listens on 3000)",
                Some(&proposal.port.to_string()),
                "--port",
                |s| match s.parse::<u16>() {
                    Ok(p) if p > 0 => Ok(()),
                    _ => Err(format!("`{s}` is not a port")),
                },
            )?;
            proposal.port = port.parse()?;
            proposal
                .env
                .insert("PORT".into(), proposal.port.to_string());
            proposal.sources.insert("port", "asked".into());
        }
        if proposal.guessed.contains(&"health") {
            let path = prompter.optional_text(
                "Health check path (no route of the app is one; Enter for a TCP check on the port)",
                "--health-path",
            )?;
            if let Some(path) = path {
                proposal.health_path = if path.starts_with('/') {
                    path
                } else {
                    format!("/{path}")
                };
                proposal.sources.insert("health", "asked".into());
            }
        }
    }
    let name = match (&args.name, &proposal.name) {
        (Some(n), _) => n.clone(),
        (None, Some(found)) if !prompter.interactive || !full => found.clone(),
        (None, found) => prompter.text("App name", found.as_deref(), "--name", name_ok)?,
    };
    let image = match (&args.image, &proposal.image) {
        (Some(i), _) => i.clone(),
        (None, Some(found)) => found.clone(),
        (None, None) if !prompter.interactive => {
            missing.add("--image", "the container image (repository:tag)".into());
            "missing".into()
        }
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
    } else if prompter.interactive && full {
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
    let gateway = match &args.gateway {
        Some(g) => Some(g.clone()),
        None if prompter.interactive && full && !hosts.is_empty() => {
            ask::gateway(settings, prompter, &hosts)?
        }
        None => None,
    };
    if args.gateway.is_some() && hosts.is_empty() {
        return Err(exit::failure(
            "`--gateway` routes the app's hosts, and none was given or found",
            Some("pass `--host NAME` too".into()),
        ));
    }
    if prompter.interactive
        && full
        && !hosts.is_empty()
        && gateway.is_none()
        && proposal.guessed.contains(&"tls")
    {
        proposal.tls = prompter.yes_no(
            &format!(
                "Serve {} over HTTPS (cert-manager issues the certificate)?",
                hosts.join(", ")
            ),
            false,
        )?;
        if proposal.tls {
            proposal.sources.insert("tls", "asked".into());
        }
    }
    let namespace = match &settings.global.namespace {
        Some(ns) => ns.clone(),
        None if prompter.interactive && full => {
            prompter.text("Namespace", Some(&name), "--namespace", |s| {
                check_namespace(s).map_err(|e| e.reason)
            })?
        }
        None => name.clone(),
    };
    let suggested = proposal.replicas.to_string();
    let replicas = match args.replicas {
        Some(r) => r,
        None if prompter.interactive && full => prompter
            .text("Web replicas", Some(&suggested), "--replicas", |s| {
                s.parse::<i32>()
                    .map_err(|_| format!("`{s}` is not a number"))
                    .and_then(replicas_ok)
            })?
            .parse()?,
        None => proposal.replicas,
    };
    let (uid, gid) = ask::image_user(args, &proposal, prompter, printer, &mut missing)?;
    missing.check()?;
    let registry = ask::private_registry(args, &proposal, &image, prompter, printer, mode)?;
    let notes = proposal.notes.clone();
    let sources = proposal.sources.clone();
    let mut spec = proposal.into_spec(Answers {
        name,
        image,
        hosts,
        namespace: Some(namespace),
        replicas,
        placement: placement(args)?,
        uid,
        gid,
        private_registry: registry.private,
        gateway,
    });
    // `--target` names the stage the image is built from, as it named the stage read.
    if let (Some(target), Some(build)) = (&args.target, spec.build.as_mut()) {
        build.target = Some(target.clone());
    }
    if let (Some(issuer), Some(ingress)) = (&args.issuer, spec.ingress.as_mut())
        && ingress.tls
    {
        ingress.issuer = Some(issuer.clone());
    }
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
        summary: summary::table(&detection, &spec, &sources, mode),
        registry,
        kamal_report: detection.kamal.as_ref().map(|k| {
            let behind_gateway = spec.gateway().is_some();
            let lines: Vec<_> = k
                .report
                .iter()
                .cloned()
                .map(|mut line| {
                    // Behind a Gateway the certificate is its listener's, not cert-manager's.
                    if behind_gateway && line.key == "proxy.ssl" {
                        line.fate = kubectl_rails_core::kamal::Fate::NotNeeded(
                            "TLS is the Gateway's HTTPS listener's (`ingress.gateway`)".into(),
                        );
                    }
                    line
                })
                .collect();
            kubectl_rails_core::kamal::report_text(&lines)
        }),
        overlays: detection
            .kamal_destinations
            .iter()
            .map(|(dest, text)| {
                propose::destination_overlay(&spec.name, dest, text)
                    .map(|overlay| {
                        let report = kubectl_rails_core::kamal::parse(text)
                            .map(|k| kubectl_rails_core::kamal::report_text(&k.report))
                            .unwrap_or_default();
                        (dest.clone(), overlay, report)
                    })
                    .map_err(|message| {
                        exit::failure(
                            format!("cannot read Kamal's `config/deploy.{dest}.yml`: {message}"),
                            Some("check its YAML".into()),
                        )
                    })
            })
            .collect::<anyhow::Result<_>>()?,
    })
}

/// Values nobody at a terminal could give, each with its flag.
#[derive(Default)]
pub(super) struct Missing(Vec<(&'static str, String)>);

impl Missing {
    pub(super) fn add(&mut self, flag: &'static str, what: String) {
        self.0.push((flag, what));
    }

    /// One error that lists every missing value and its flag, so that one more run is enough.
    pub(super) fn check(&self) -> anyhow::Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = self
            .0
            .iter()
            .map(|(flag, what)| format!("  `{flag}`: {what}"))
            .collect();
        let flags: Vec<&str> = self.0.iter().map(|(flag, _)| *flag).collect();
        Err(exit::usage(
            format!(
                "the app folder does not say everything a spec needs, and nobody is at a terminal to ask:\n{}",
                lines.join("\n")
            ),
            Some(format!(
                "pass {}",
                flags
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        ))
    }
}

fn describe(d: &Detection, printer: &Printer) {
    let mut found = Vec::new();
    if let Some(v) = &d.rails_version {
        found.push(format!("Rails {v}"));
    }
    if let Some(path) = &d.dockerfile_path {
        found.push(path.clone());
    }
    if d.kamal.is_some() {
        found.push("Kamal config/deploy.yml".into());
    }
    if let Some((file, entries)) = &d.env_file {
        found.push(format!("{file} ({} keys)", entries.len()));
    }
    if !d.procfile.is_empty() {
        found.push(d.procfile_name.clone());
    }
    found.extend(d.credential_keys.iter().cloned());
    if found.is_empty() {
        printer.step("found a Gemfile that requires rails, nothing else to read");
    } else {
        printer.step(&format!("found {}", found.join(", ")));
    }
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

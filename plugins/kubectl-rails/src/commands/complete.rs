//! `kubectl-rails __complete WORDS... CURRENT`: shell completion behind kubectl's plugin
//! completion (`kubectl_complete-rails`, kubectl 1.26+). It prints one candidate a line and a
//! last `:N` line, cobra's directive (4: no file completion, 2: no space after).
//!
//! It runs before clap, since the words may be half-typed flags. Cluster look-ups (namespaces,
//! revisions) are best effort and short: a slow cluster must not freeze a shell.

use std::time::Duration;

use clap::CommandFactory;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::ListParams;
use kubectl_rails_core::{AppSpec, file};
use kubectl_rails_kube::ClusterArgs;

use crate::cli::Cli;
use crate::printer::Printer;

const NO_FILE: u8 = 4;
const NO_SPACE: u8 = 2;
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Values of flags that appear among the words (`--kubeconfig`, `--context`, ...).
fn flag_value(words: &[String], names: &[&str]) -> Option<String> {
    words
        .iter()
        .position(|w| names.contains(&w.as_str()))
        .and_then(|i| words.get(i + 1))
        .cloned()
        .or_else(|| {
            words.iter().find_map(|w| {
                names
                    .iter()
                    .find_map(|n| w.strip_prefix(&format!("{n}=")).map(str::to_string))
            })
        })
}

fn spec(words: &[String]) -> Option<AppSpec> {
    let dir = flag_value(words, &["-C", "--app-dir"]).unwrap_or_else(|| ".".into());
    let path = flag_value(words, &["--file"])
        .map(Into::into)
        .unwrap_or_else(|| std::path::Path::new(&dir).join(kubectl_rails_core::SPEC_PATH));
    file::load(&path).ok().map(|l| l.spec)
}

fn cluster_args(words: &[String]) -> ClusterArgs {
    ClusterArgs {
        kubeconfig: flag_value(words, &["--kubeconfig"]).map(Into::into),
        context: flag_value(words, &["--context"]),
        cluster: flag_value(words, &["--cluster"]),
        user: flag_value(words, &["--user"]),
        server: flag_value(words, &["-s", "--server"]),
        token: flag_value(words, &["--token"]),
        impersonate: flag_value(words, &["--as"]),
        proxy_env: kubectl_rails_kube::proxy::ProxyEnv::from_env(),
        ..ClusterArgs::default()
    }
}

async fn namespaces(words: &[String]) -> Vec<String> {
    let lookup = async {
        let conn = kubectl_rails_kube::connect(&cluster_args(words))
            .await
            .ok()?;
        let list = Api::<Namespace>::all(conn.client)
            .list_metadata(&ListParams::default())
            .await
            .ok()?;
        Some(
            list.items
                .into_iter()
                .filter_map(|n| n.metadata.name)
                .collect(),
        )
    };
    tokio::time::timeout(LOOKUP_TIMEOUT, lookup)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

async fn revisions(words: &[String]) -> Vec<String> {
    let lookup = async {
        let spec = spec(words)?;
        let conn = kubectl_rails_kube::connect(&cluster_args(words))
            .await
            .ok()?;
        let ns = flag_value(words, &["-n", "--namespace"])
            .or(spec.namespace.clone())
            .or(conn.context_namespace.clone())
            .unwrap_or_else(|| "default".into());
        let history = kubectl_rails_deploy::release::list(&conn.client, &ns, &spec.name)
            .await
            .ok()?;
        Some(
            history
                .iter()
                .rev()
                .map(|r| r.revision.to_string())
                .collect(),
        )
    };
    tokio::time::timeout(LOOKUP_TIMEOUT, lookup)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// The candidates for the last word, and the directive.
pub(crate) async fn candidates(words: &[String]) -> (Vec<String>, u8) {
    let (current, before) = match words.split_last() {
        Some((c, b)) => (c.as_str(), b),
        None => ("", &[][..]),
    };
    let root = Cli::command();
    // Walk down the subcommands named so far, remembering positionals after the last one.
    let mut command = &root;
    let mut path: Vec<String> = Vec::new();
    let mut positionals = 0;
    let mut skip_value = false;
    for w in before {
        if skip_value {
            skip_value = false;
            continue;
        }
        if w.starts_with('-') {
            let takes_value = command
                .get_arguments()
                .chain(root.get_arguments())
                .find(|a| {
                    a.get_long().is_some_and(|l| w == &format!("--{l}"))
                        || a.get_short().is_some_and(|s| w == &format!("-{s}"))
                })
                .is_some_and(|a| a.get_action().takes_values());
            skip_value = takes_value && !w.contains('=');
            continue;
        }
        match command.find_subcommand(w) {
            Some(sub) => {
                command = sub;
                path.push(w.clone());
                positionals = 0;
            }
            None => positionals += 1,
        }
    }
    let keep = |items: Vec<String>| -> Vec<String> {
        items
            .into_iter()
            .filter(|i| i.starts_with(current))
            .collect()
    };
    let previous = before.last().map(String::as_str).unwrap_or("");

    // The value of a flag.
    match previous {
        "-n" | "--namespace" => return (keep(namespaces(words).await), NO_FILE),
        "-o" | "--output" => {
            return (
                keep(["yaml", "json", "wide", "name"].map(String::from).to_vec()),
                NO_FILE,
            );
        }
        "-p" | "--process" => {
            return (
                keep(spec(words).map(|s| s.process_names()).unwrap_or_default()),
                NO_FILE,
            );
        }
        "--context" => {
            let contexts = kube::config::Kubeconfig::read()
                .map(|k| k.contexts.into_iter().map(|c| c.name).collect())
                .unwrap_or_default();
            return (keep(contexts), NO_FILE);
        }
        _ => {}
    }
    if current.starts_with('-') {
        let flags: Vec<String> = command
            .get_arguments()
            .chain(root.get_arguments().filter(|a| a.is_global_set()))
            .filter(|a| !a.is_hide_set())
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect();
        return (keep(flags), NO_FILE);
    }
    let subcommands: Vec<String> = command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .map(|s| s.get_name().to_string())
        .collect();
    if !subcommands.is_empty() && positionals == 0 {
        return (keep(subcommands), NO_FILE);
    }
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    match path.as_slice() {
        ["scale"] => {
            let names = spec(words).map(|s| s.process_names()).unwrap_or_default();
            (
                keep(names.into_iter().map(|p| format!("{p}=")).collect()),
                NO_FILE | NO_SPACE,
            )
        }
        ["autoscale"] if positionals == 0 => (
            keep(spec(words).map(|s| s.process_names()).unwrap_or_default()),
            NO_FILE,
        ),
        ["rollback"] if positionals == 0 => (keep(revisions(words).await), NO_FILE),
        ["secrets", "unset" | "set"] => (
            keep(spec(words).map(|s| s.secrets.to_vec()).unwrap_or_default()),
            NO_FILE,
        ),
        _ => (vec![], NO_FILE),
    }
}

pub(crate) async fn run(words: &[String], printer: &Printer) -> anyhow::Result<()> {
    let (items, directive) = candidates(words).await;
    let mut out = String::new();
    for i in items {
        out.push_str(&i);
        out.push('\n');
    }
    out.push_str(&format!(":{directive}"));
    printer.out(&out)?;
    Ok(())
}

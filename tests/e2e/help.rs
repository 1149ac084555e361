//! The plugin as kubectl shows it.

use crate::support::{rails, root};

#[test]
fn help_through_kubectl_says_kubectl_rails_and_lists_working_commands() {
    let run = rails(&root(), None, &["--help"]).success();
    assert!(
        run.stdout
            .contains("Usage: kubectl rails [OPTIONS] <COMMAND>"),
        "{}",
        run.stdout
    );
    insta::assert_snapshot!("help", run.stdout);
}

#[test]
fn version_prints_the_crate_version() {
    let run = rails(&root(), None, &["--version"]).success();
    assert_eq!(
        run.stdout.trim(),
        format!("kubectl rails {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let run = rails(&root(), None, &["deploy-everything"]).code(2);
    run.stderr_has("unrecognized subcommand");
}

/// `init` reaches no cluster: its help leaves kubectl's cluster flags out; `deploy` keeps them.
#[test]
fn init_help_leaves_out_the_cluster_flags() {
    let init = rails(&root(), None, &["init", "--help"]).success();
    for flag in ["--kubeconfig", "--context", "--token"] {
        assert!(
            !init.stdout.contains(flag),
            "init --help shows {flag}:\n{}",
            init.stdout
        );
    }
    init.stdout_has("--namespace");
    let deploy = rails(&root(), None, &["deploy", "--help"]).success();
    for flag in ["--kubeconfig", "--context", "--token"] {
        deploy.stdout_has(flag);
    }
}

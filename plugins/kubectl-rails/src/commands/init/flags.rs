//! `init`'s flags, checked before any file is read: a bad flag is a usage error (exit 2). The
//! same checks judge the answers typed at a terminal.

use kubectl_rails_core::model::{Placement, Toleration};
use kubectl_rails_core::validate::{self, check_app_name, check_namespace};

use crate::cli::InitArgs;
use crate::exit;
use crate::settings::Settings;

/// Checks flag values first, so that a bad flag is a usage error before any file is read.
pub(super) fn check_flags(args: &InitArgs, settings: &Settings) -> anyhow::Result<()> {
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
pub(super) fn placement(args: &InitArgs) -> anyhow::Result<Placement> {
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

pub(super) fn name_ok(name: &str) -> Result<(), String> {
    check_app_name(name).map_err(|e| match e.suggestion {
        Some(s) => format!("`{name}`: {}; use `{s}`", e.reason),
        None => format!("`{name}`: {}", e.reason),
    })
}

pub(super) fn replicas_ok(r: i32) -> Result<(), String> {
    if r < 0 {
        Err(format!("{r} is negative; use 0 or more"))
    } else {
        Ok(())
    }
}

pub(super) fn image_ok(image: &str) -> Result<(), String> {
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

pub(super) fn host_ok(host: &str) -> Result<(), String> {
    if validate::is_host(host) {
        Ok(())
    } else {
        Err(format!(
            "`{host}` is not a valid host name such as `shop.example.com`"
        ))
    }
}

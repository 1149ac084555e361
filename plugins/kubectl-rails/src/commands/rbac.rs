//! `kubectl rails rbac`: a ServiceAccount, Role and RoleBinding that allow exactly what deploy,
//! exec, logs, scale and secrets do in the app's namespace. An admin applies it; CI deploys with
//! the ServiceAccount's token.

use kubectl_rails_core::rbac;

use crate::cli::OutputFormat;
use crate::commands::render::to_yaml;
use crate::context::Context;

pub(crate) fn run(ctx: &Context<'_>) -> anyhow::Result<()> {
    let format = ctx
        .settings
        .output(&[OutputFormat::Yaml, OutputFormat::Json])?
        .unwrap_or(OutputFormat::Yaml);
    let spec = ctx.spec()?;
    let ns = ctx.namespace()?;
    let (sa, role, binding) = rbac::deployer(&spec.name, &ns, &spec.own_secret_names(), &[]);
    let mut items = vec![
        serde_json::to_value(&sa)?,
        serde_json::to_value(&role)?,
        serde_json::to_value(&binding)?,
    ];
    // The cluster builder's namespace for builds, when it is not the app's.
    let builds = spec
        .build
        .as_ref()
        .and_then(|b| b.cluster.as_ref())
        .and_then(|c| c.namespace.clone())
        .filter(|b| *b != ns);
    if let Some(builds) = &builds {
        let (role, binding) = rbac::builder(&spec.name, &ns, builds);
        items.push(serde_json::to_value(&role)?);
        items.push(serde_json::to_value(&binding)?);
    }
    let text = match format {
        OutputFormat::Json => serde_json::to_string_pretty(
            &serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items}),
        )?,
        _ => {
            let mut out = format!(
                "# What kubectl-rails needs in namespace `{ns}`, and nothing more. Apply as an admin:\n#   kubectl rails rbac -n {ns} | kubectl apply -f -\n# then deploy with a token of the ServiceAccount:\n#   kubectl create token {}-deployer -n {ns}\n",
                spec.name
            );
            if let Some(builds) = &builds {
                out.push_str(&format!(
                    "# The cluster builder's BuildKit pod runs in namespace `{builds}` (build.cluster.namespace): the last two objects let the deployer run it there.\n"
                ));
            }
            for item in &items {
                out.push_str("---\n");
                out.push_str(&to_yaml(item));
            }
            out
        }
    };
    ctx.printer.out(&text)?;
    Ok(())
}

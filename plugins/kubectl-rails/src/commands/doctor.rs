//! `kubectl rails doctor`: is this cluster ready for this app? A checklist, each line ✓ or ✗ with
//! the command that fixes a ✗, or – when it could not be checked. The checks are the doctor
//! crate's; this prints them. Exits 1 when any line is ✗.

use kubectl_rails_doctor::{Finding, Severity, check_all};

use crate::cli::OutputFormat;
use crate::context::Context;
use crate::exit;

/// The checklist as text, one line a finding and its fix below a ✗.
fn checklist(findings: &[Finding]) -> String {
    let mut text = String::new();
    for f in findings {
        let mark = match f.severity {
            Severity::Ok => "✓",
            Severity::Fail => "✗",
            Severity::NotChecked => "–",
        };
        text.push_str(&format!("{mark} {}: {}\n", f.check, f.detail));
        if let Some(fix) = &f.fix {
            text.push_str(&format!("    fix: {fix}\n"));
        }
    }
    text
}

pub(crate) async fn run(ctx: &Context<'_>) -> anyhow::Result<()> {
    let printer = ctx.printer;
    let format = ctx
        .settings
        .output(&[OutputFormat::Json, OutputFormat::Yaml])?;
    let spec = ctx.spec()?;
    let target = ctx.target_any_version().await?;
    let ns = &target.namespace;
    let findings = check_all(&target.conn.client, ns, spec).await;
    match format {
        Some(OutputFormat::Json) => printer.out(&serde_json::to_string_pretty(&findings)?)?,
        Some(OutputFormat::Yaml) => printer.out(&serde_saphyr::to_string(&findings)?)?,
        _ => printer.out(&format!(
            "Checking `{}` in namespace `{ns}` on context `{}`\n\n{}",
            spec.name,
            target.conn.context,
            checklist(&findings)
        ))?,
    }
    let failed = findings
        .iter()
        .filter(|f| f.severity == Severity::Fail)
        .count();
    if failed > 0 {
        return Err(exit::failure(
            format!("{failed} of {} checks failed", findings.len()),
            Some("run the `fix:` commands above, then `kubectl rails doctor` again".into()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use kubectl_rails_doctor::Finding;

    #[test]
    fn a_failed_check_shows_its_fix_below_it() {
        let text = super::checklist(&[
            Finding::ok("nodes Ready", "3/3 Ready"),
            Finding::fail(
                "pull secret",
                "`shop-registry` does not exist",
                "kubectl rails secrets registry --server ghcr.io",
            ),
            Finding::not_checked(
                "DNS shop.example.com",
                "not checked: the Ingress has no address yet",
            ),
        ]);
        assert_eq!(
            text,
            "✓ nodes Ready: 3/3 Ready\n\
             ✗ pull secret: `shop-registry` does not exist\n    fix: kubectl rails secrets registry --server ghcr.io\n\
             – DNS shop.example.com: not checked: the Ingress has no address yet\n"
        );
    }
}

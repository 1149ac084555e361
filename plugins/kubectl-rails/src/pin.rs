//! One digest per release: the tag is resolved to the digest it names now, from the registry,
//! with the pull secret's credentials (anonymous for a public image). Pods then run those bits
//! until the next deploy, however often the tag is pushed again, and a rollback brings them back.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kubectl_rails_core::AppSpec;
use kubectl_rails_registry::{ImageRef, Login, RegistryError};
use kubectl_rails_secrets::docker::{self, Source};

use crate::exit;
use crate::printer::Printer;
use crate::settings::Target;

/// How long the registry may take to answer.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(10);

/// The pull secret's credentials for the image's registry, when the spec names one and it can
/// be read.
pub(crate) async fn registry_login(target: &Target, spec: &AppSpec) -> Option<Login> {
    let registry = spec.registry.as_ref()?;
    let secret = Api::<Secret>::namespaced(target.conn.client.clone(), &target.namespace)
        .get_opt(&registry.pull_secret)
        .await
        .ok()??;
    let config = secret.data?.remove(".dockerconfigjson")?;
    let text = String::from_utf8(config.0).ok()?;
    match docker::parse_config(&text, &registry.server).ok()? {
        Source::Plain(c) => Some(Login {
            username: c.username,
            password: c.password,
        }),
        Source::Helper { .. } => None,
    }
}

/// Sets the spec's image digest from the registry, unless `--no-pin` or the image is pinned
/// already. A registry this machine cannot reach leaves the deploy by tag, said; a tag the
/// registry does not have stops it before anything changes. True when the registry named the
/// digest with the pull secret's credentials: they are good, whatever a kubelet says first.
pub(crate) async fn pin(
    target: &Target,
    spec: &mut AppSpec,
    no_pin: bool,
    printer: &Printer,
) -> anyhow::Result<bool> {
    if spec.image.digest.is_some() {
        return Ok(false);
    }
    let Some(tag) = spec.image.tag.clone() else {
        return Ok(false);
    };
    if no_pin {
        printer.note(&format!(
            "deploying `{}` by tag (`--no-pin`): pods started later run whatever the tag names then",
            spec.image.tagged()
        ));
        return Ok(false);
    }
    let image = ImageRef::new(&spec.image.repository, &tag);
    let login = registry_login(target, spec).await;
    if let Some(l) = &login {
        printer.mask_secret("registry password", l.password.as_bytes());
    }
    match kubectl_rails_registry::digest(&image, login.as_ref(), REGISTRY_TIMEOUT).await {
        Ok(digest) => {
            printer.step(&format!(
                "`{}` is {digest}: this release runs that digest, whatever the tag names later",
                spec.image.tagged()
            ));
            spec.image.digest = Some(digest);
            Ok(login.is_some())
        }
        Err(RegistryError::NotFound { reference }) => Err(exit::failure(
            format!("the registry has no `{reference}`: nothing was changed"),
            Some("push the image first, check `--image`/`--tag`, or pass `--no-pin` to deploy by tag anyway".into()),
        )),
        Err(e) => {
            printer.warn(&format!(
                "could not learn the digest of `{}` ({e}): deploying by tag, so pods started later run whatever the tag names then; `--no-pin` says so on purpose",
                spec.image.tagged()
            ));
            Ok(false)
        }
    }
}

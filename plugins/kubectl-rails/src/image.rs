//! Which image a deploy runs: `--image` and `--tag` over the spec, an untagged image tagged with
//! the app folder's git commit (as Kamal tags its builds), and who and what commit deploys it.

use kubectl_rails_core::{AppSpec, ImageSpec};
use kubectl_rails_deploy::{Commit, lease};

use crate::exit;

/// How the image's tag was chosen, for the deploy's first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TagSource {
    /// The spec, `--image` or `--tag`.
    Given,
    /// The app folder's git commit, as Kamal tags the images it builds.
    GitCommit,
}

/// Applies `--image` and `--tag`, tags an untagged image with the app folder's git commit (the
/// full SHA, Kamal's convention), and refuses what cannot be rolled back.
pub(crate) fn resolve_image(
    spec: &mut AppSpec,
    image: Option<&str>,
    tag: Option<&str>,
    allow_latest: bool,
    app_dir: &std::path::Path,
) -> anyhow::Result<TagSource> {
    if let Some(image) = image {
        spec.image = ImageSpec::parse(image);
    }
    if let Some(tag) = tag {
        spec.image.tag = Some(tag.to_string());
        // A digest belongs to the tag it was resolved from.
        spec.image.digest = None;
    }
    let mut source = TagSource::Given;
    if spec.image.tag.is_none()
        && let Some(sha) = git_commit(app_dir)
    {
        spec.image.tag = Some(sha);
        source = TagSource::GitCommit;
    }
    match spec.image.tag.as_deref() {
        None => Err(exit::usage(
            format!("image `{}` has no tag, and `{}` is not in a git repository whose commit could name it", spec.image.repository, app_dir.display()),
            Some("pass `--tag` (for example the git SHA the image was built from), or set `image.tag` in the spec".into()),
        )),
        Some("latest") if !allow_latest => Err(exit::usage(
            format!("refusing to deploy `{}`", spec.image.reference()),
            Some("`latest` moves: pods started later may run other code, and a rollback cannot bring the old image back; pass an immutable `--tag`, or `--allow-latest`".into()),
        )),
        Some(_) => Ok(source),
    }
}

/// The full SHA of the app folder's `HEAD`, when it is in a git repository.
pub(crate) fn git_commit(dir: &std::path::Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--verify", "--quiet", "HEAD"])
        .output()
        .ok()?;
    let sha = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && sha.len() == 40).then_some(sha)
}

/// `git rev-parse` of the app folder, with `-dirty` when it has uncommitted changes.
pub(crate) fn git_sha(dir: &std::path::Path) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let sha = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dirty = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    Some(if dirty { format!("{sha}-dirty") } else { sha })
}

/// [`git_sha`], asked on a blocking thread while the deploy goes on.
pub(crate) fn commit_of(dir: &std::path::Path) -> Commit {
    let dir = dir.to_path_buf();
    let asking = tokio::task::spawn_blocking(move || git_sha(&dir));
    Commit::pending(async move { asking.await.ok().flatten() })
}

/// `user@host`: who deploys, for the release record and (with a run id) the lease.
pub(crate) fn holder(user: &str) -> String {
    format!("{user}@{}", lease::host_name())
}

//! Reading and writing `config/kubernetes.yml`: every error points at file:line:column, and
//! writes are atomic so that a failure never leaves a partial spec.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::model::AppSpec;
use crate::schema;
use crate::validate::{self, Violation};

/// What went wrong with a spec file, and where.
#[derive(Debug, thiserror::Error)]
pub enum SpecFileError {
    #[error("no spec at `{}`", path.display())]
    Missing { path: PathBuf },
    #[error("failed to read `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", path.display())]
    Invalid {
        path: PathBuf,
        line: u64,
        column: u64,
        message: String,
        hint: Option<String>,
    },
    #[error("destination `{destination}` has no overlay `{}`", path.display())]
    NoDestination { destination: String, path: PathBuf },
    #[error("cannot lock the folder of `{}` for an edit", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl SpecFileError {
    /// What to do about the error, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Self::Missing { .. } => {
                Some("run `kubectl rails init` in the app folder to create it".into())
            }
            Self::Invalid { hint, .. } => hint.clone(),
            Self::NoDestination { .. } => Some(
                "write it (keys laid over `config/kubernetes.yml`, such as `namespace`, `context`, `ingress`), or import Kamal's `config/deploy.<destination>.yml` with `kubectl rails init`".into(),
            ),
            Self::Lock { .. } => Some(
                "the file system of the app folder does not support locks (flock): edit the spec with one command at a time".into(),
            ),
            Self::Read { .. } | Self::Write { .. } => None,
        }
    }
}

/// A parsed, valid spec and the warnings it raised.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub spec: AppSpec,
    pub warnings: Vec<String>,
}

/// Reads and validates the spec at `path`.
pub fn load(path: &Path) -> Result<Loaded, SpecFileError> {
    let text = match fs_err::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SpecFileError::Missing {
                path: path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(SpecFileError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let text = String::from_utf8(text).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let (line, column) = line_col(&String::from_utf8_lossy(&e.into_bytes()[..offset]));
        SpecFileError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            message: "the file is not valid UTF-8".into(),
            hint: Some("save it as UTF-8".into()),
        }
    })?;
    parse(&text, path)
}

/// The overlay of a destination: `config/kubernetes.staging.yml` beside `config/kubernetes.yml`.
pub fn overlay_path(base: &Path, destination: &str) -> PathBuf {
    let stem = base
        .file_stem()
        .map_or_else(|| "kubernetes".into(), |s| s.to_string_lossy().into_owned());
    let ext = base
        .extension()
        .map_or_else(|| "yml".into(), |e| e.to_string_lossy().into_owned());
    base.with_file_name(format!("{stem}.{destination}.{ext}"))
}

/// Reads the base spec with a destination's overlay laid over it, as Kamal lays
/// `deploy.<destination>.yml` over `deploy.yml`: mappings merge, everything else (lists
/// included) is replaced by the overlay's value.
pub fn load_destination(base: &Path, destination: &str) -> Result<Loaded, SpecFileError> {
    let overlay = overlay_path(base, destination);
    let overlay_text = match fs_err::read_to_string(&overlay) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SpecFileError::NoDestination {
                destination: destination.to_string(),
                path: overlay,
            });
        }
        Err(source) => {
            return Err(SpecFileError::Read {
                path: overlay,
                source,
            });
        }
    };
    let base_text = match fs_err::read_to_string(base) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SpecFileError::Missing {
                path: base.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(SpecFileError::Read {
                path: base.to_path_buf(),
                source,
            });
        }
    };
    merge_destination(base, &base_text, &overlay, &overlay_text, destination)
}

/// [`load_destination`] of texts already read: `overlay_text` (of the file `overlay`) laid over
/// `base_text`. Edits of an overlay are checked with it before they are written.
pub fn merge_destination(
    base: &Path,
    base_text: &str,
    overlay: &Path,
    overlay_text: &str,
    destination: &str,
) -> Result<Loaded, SpecFileError> {
    let overlay = overlay.to_path_buf();
    let as_value = |text: &str, path: &Path| -> Result<serde_json::Value, SpecFileError> {
        let v: serde_json::Value =
            serde_saphyr::from_str(text).map_err(|e| from_yaml_error(&e, path))?;
        Ok(if v.is_null() {
            serde_json::json!({})
        } else {
            v
        })
    };
    let mut merged = as_value(base_text, base)?;
    let over = as_value(overlay_text, &overlay)?;
    if !over.is_object() {
        return Err(SpecFileError::Invalid {
            path: overlay,
            line: 1,
            column: 1,
            message: "a destination overlay must be a mapping of spec keys".into(),
            hint: None,
        });
    }
    // Each destination deploys to a namespace of its own: sharing the base's would share its
    // Secret, release history and lease, and each deploy's pruning would delete the other's.
    let own_namespace = match (over.get("namespace"), merged.get("name")) {
        (None, Some(serde_json::Value::String(app))) => Some(format!("{app}-{destination}")),
        _ => None,
    };
    lay_over(&mut merged, over);
    if let (Some(ns), Some(map)) = (&own_namespace, merged.as_object_mut()) {
        map.insert("namespace".into(), ns.clone().into());
    }
    // The merged spec is checked as one text, so that errors name keys as the user wrote them.
    let text = serde_saphyr::to_string(&merged).map_err(|e| SpecFileError::Invalid {
        path: overlay.clone(),
        line: 1,
        column: 1,
        message: e.to_string(),
        hint: None,
    })?;
    let mut loaded = parse(&text, &overlay).map_err(|e| match e {
        SpecFileError::Invalid { message, hint, .. } => SpecFileError::Invalid {
            path: overlay.clone(),
            line: 1,
            column: 1,
            message: format!(
                "{message} (in `{}` laid over `{}`)",
                overlay.display(),
                base.display()
            ),
            hint,
        },
        other => other,
    })?;
    if let Some(ns) = own_namespace {
        loaded.warnings.push(format!(
            "`{}` names no `namespace:`: destination `{destination}` deploys to namespace `{ns}` (set `namespace:` there to choose another)",
            overlay.display()
        ));
    }
    Ok(loaded)
}

/// Lays `over` on `base`: mappings merge key by key, any other value replaces.
pub fn lay_over(base: &mut serde_json::Value, over: serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) => lay_over(existing, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Parses and validates spec text; `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<Loaded, SpecFileError> {
    let spec: AppSpec = serde_saphyr::from_str(text).map_err(|e| from_yaml_error(&e, path))?;
    if let Some(v) = validate::validate(&spec).into_iter().next() {
        return Err(violation_error(text, path, v));
    }
    Ok(Loaded {
        warnings: validate::warnings(&spec),
        spec,
    })
}

fn from_yaml_error(e: &serde_saphyr::Error, path: &Path) -> SpecFileError {
    let e = e.without_snippet();
    let (line, column) = e
        .location()
        .map_or((1, 1), |l| (l.line().max(1), l.column().max(1)));
    let (message, hint) = match e {
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => {
            let closest = closest_key(field, expected);
            let hint = match closest {
                Some(c) => format!(
                    "did you mean `{c}`? valid keys here: {}",
                    expected.join(", ")
                ),
                None => format!("valid keys here: {}", expected.join(", ")),
            };
            (format!("unknown key `{field}`"), Some(hint))
        }
        serde_saphyr::Error::SerdeMissingField { field, .. } => (
            format!("missing key `{field}`"),
            Some("run `kubectl rails init` again to regenerate the spec".into()),
        ),
        other => (strip_location(&other.to_string()), None),
    };
    SpecFileError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        message,
        hint,
    }
}

/// The valid key a typo most likely meant: few edits (a swap counts as one), or a shared prefix.
fn closest_key<'a>(typed: &str, valid: &[&'a str]) -> Option<&'a str> {
    valid
        .iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(typed, c),
                -strsim::jaro_winkler(typed, c),
                *c,
            )
        })
        .filter(|(edits, jw, c)| *edits <= (c.len() / 3).max(1) || -*jw > 0.85)
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
        .map(|(_, _, c)| c)
}

/// serde-saphyr prefixes messages with `error: line N column M: `; we print our own location.
fn strip_location(message: &str) -> String {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let message = match message.find(": ") {
        Some(i) if message.starts_with("line ") => &message[i + 2..],
        _ => message,
    };
    message.lines().next().unwrap_or(message).trim().to_string()
}

fn violation_error(text: &str, path: &Path, v: Violation) -> SpecFileError {
    let keys: Vec<&str> = v.path.iter().map(String::as_str).collect();
    let (line, column) = locate(text, &keys).unwrap_or((1, 1));
    SpecFileError::Invalid {
        path: path.to_path_buf(),
        line,
        column,
        message: v.message,
        hint: v.hint,
    }
}

/// Finds the line and column of the value at `keys` in a block-style YAML mapping: the deepest
/// key found, so a violation always points as close to its field as the text allows.
pub fn locate(text: &str, keys: &[&str]) -> Option<(u64, u64)> {
    let mut found = None;
    let mut depth = 0;
    let mut parent_indent: isize = -1;
    for (n, line) in text.lines().enumerate() {
        if depth == keys.len() {
            break;
        }
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = (line.len() - trimmed.len()) as isize;
        if indent <= parent_indent && found.is_some() {
            break;
        }
        let key = trimmed.trim_start_matches("- ");
        let Some((name, value)) = key.split_once(':') else {
            continue;
        };
        if name.trim().trim_matches(['"', '\'']) == keys[depth] && indent > parent_indent {
            let value_offset = value.len() - value.trim_start().len();
            let col = if value.trim().is_empty() {
                indent as usize + 1
            } else {
                line.len() - value.len() + value_offset + 1
            };
            found = Some(((n + 1) as u64, col as u64));
            parent_indent = indent;
            depth += 1;
        }
    }
    found
}

fn line_col(prefix: &str) -> (u64, u64) {
    let line = prefix.matches('\n').count() as u64 + 1;
    let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u64 + 1;
    (line, column)
}

/// The spec as the file holds it: first the line that gives editors its schema
/// ([`schema::modeline`]), then a header that says what it is.
pub fn to_yaml(spec: &AppSpec) -> String {
    let mut body = serde_saphyr::to_string(spec).expect("an AppSpec always serializes");
    if !body.ends_with('\n') {
        body.push('\n');
    }
    format!(
        "{}\n\
         # kubectl-rails app spec: commit it with the app. It names secret keys, never values;\n\
         # set those with `kubectl rails secrets set KEY`. Keys: `kubectl rails explain [KEY]`.\n{body}",
        schema::modeline(false)
    )
}

/// Writes `contents` to `path` through a temp file in the same folder and a rename. The file
/// keeps its permissions (a new one gets those the umask gives), and a symlink stays one: the
/// file it points to is written.
pub fn write_atomic(path: &Path, contents: &str) -> Result<(), SpecFileError> {
    let err = |source| SpecFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs_err::canonicalize(path).map_err(err)?,
        _ => path.to_path_buf(),
    };
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    fs_err::create_dir_all(&dir).map_err(err)?;
    let permissions = match std::fs::metadata(&target) {
        Ok(m) => m.permissions(),
        // A new file: created empty first, so that it gets the mode any new file gets here.
        Err(_) => std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .and_then(|f| f.metadata())
            .map_err(err)?
            .permissions(),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(err)?;
    tmp.write_all(contents.as_bytes()).map_err(err)?;
    tmp.as_file().set_permissions(permissions).map_err(err)?;
    tmp.as_file().sync_all().map_err(err)?;
    tmp.persist(&target).map_err(|e| err(e.error))?;
    Ok(())
}

/// Held while a command reads, edits and writes the spec or an overlay, so that two edits at
/// once (two terminals, a script running several) take turns instead of the last one undoing
/// the other's change. It is an advisory lock (`flock`) on the spec's folder, so no lock file is
/// left in the app; it ends when dropped, or when the process ends however it ends.
#[derive(Debug)]
pub struct EditLock {
    _folder: std::fs::File,
}

impl EditLock {
    fn folder(spec: &Path) -> Result<std::fs::File, SpecFileError> {
        let dir = spec
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::File::open(dir).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => SpecFileError::Missing {
                path: spec.to_path_buf(),
            },
            _ => SpecFileError::Read {
                path: dir.to_path_buf(),
                source,
            },
        })
    }

    fn lock_error(spec: &Path, source: std::io::Error) -> SpecFileError {
        SpecFileError::Lock {
            path: spec.to_path_buf(),
            source,
        }
    }

    /// Takes the lock if no other edit holds it; `None` when one does.
    pub fn try_take(spec: &Path) -> Result<Option<Self>, SpecFileError> {
        let folder = Self::folder(spec)?;
        match folder.try_lock() {
            Ok(()) => Ok(Some(Self { _folder: folder })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(Self::lock_error(spec, e)),
        }
    }

    /// Waits until the other edit ends, then takes the lock.
    pub fn take(spec: &Path) -> Result<Self, SpecFileError> {
        let folder = Self::folder(spec)?;
        folder.lock().map_err(|e| Self::lock_error(spec, e))?;
        Ok(Self { _folder: folder })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: shop\nimage:\n  repository: ghcr.io/acme/shop\n  tag: v1\nweb:\n  port: 3000\n  replicas: 2\n";

    fn err(text: &str) -> (u64, u64, String, Option<String>) {
        match parse(text, Path::new("config/kubernetes.yml")).unwrap_err() {
            SpecFileError::Invalid {
                line,
                column,
                message,
                hint,
                ..
            } => (line, column, message, hint),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn good_spec_round_trips() {
        let loaded = parse(GOOD, Path::new("x")).unwrap();
        assert!(loaded.warnings.is_empty());
        let again = parse(&to_yaml(&loaded.spec), Path::new("x")).unwrap();
        assert_eq!(again.spec, loaded.spec);
    }

    /// Editors find the schema from the first line; YAML reads it as a comment.
    #[test]
    fn the_spec_starts_with_the_line_that_names_its_schema() {
        let text = to_yaml(&parse(GOOD, Path::new("x")).unwrap().spec);
        let first = text.lines().next().unwrap();
        assert_eq!(first, crate::schema::modeline(false));
        assert!(
            first.starts_with("# yaml-language-server: $schema=https://"),
            "{first}"
        );
        assert!(text.contains("`kubectl rails explain [KEY]`"), "{text}");
        assert!(!text.contains("help init"), "{text}");
    }

    #[test]
    fn unknown_key_names_the_closest_valid_key() {
        let (line, column, message, hint) = err(&GOOD.replace("  replicas", "  replica"));
        assert_eq!((line, column), (7, 3));
        assert_eq!(message, "unknown key `replica`");
        assert!(hint.unwrap().starts_with("did you mean `replicas`?"));
    }

    /// Found by the `spec_file` fuzz target: an app name longer than 62 characters made the
    /// worker and volume name checks subtract past zero.
    #[test]
    fn regression_overlong_name_with_workers_and_volume() {
        let long = "s".repeat(130);
        let text = format!(
            "name: {long}\nimage: {{repository: ghcr.io/acme/shop}}\nweb: {{port: 3000, replicas: 2}}\nworkers:\n  jobs: {{command: [bin/jobs]}}\nvolume: {{name: storage, mount_path: /rails/storage}}\n"
        );
        let (line, column, message, _) = err(&text);
        assert_eq!((line, column), (1, 7));
        assert!(message.contains("at most 40 are allowed"), "{message}");
    }

    #[test]
    fn typos_find_their_key() {
        let keys = [
            "name",
            "namespace",
            "image",
            "web",
            "workers",
            "replicas",
            "health_path",
        ];
        assert_eq!(closest_key("wbe", &keys), Some("web"));
        assert_eq!(closest_key("replica", &keys), Some("replicas"));
        assert_eq!(closest_key("healthpath", &keys), Some("health_path"));
        assert_eq!(closest_key("nmae", &keys), Some("name"));
        assert_eq!(closest_key("zzzzzz", &keys), None);
    }

    #[test]
    fn negative_replicas_point_at_the_value() {
        let (line, column, message, _) = err(&GOOD.replace("replicas: 2", "replicas: -1"));
        assert_eq!((line, column), (7, 13));
        assert_eq!(message, "replicas must be 0 or more, not -1");
    }

    #[test]
    fn malformed_yaml_has_a_location() {
        let (line, _, message, _) = err("name: shop\nimage: [\n");
        assert_eq!(line, 2);
        assert!(!message.is_empty());
    }

    #[test]
    fn locate_walks_nested_keys() {
        let text = "name: a\nworkers:\n  jobs:\n    command: [bin/jobs]\n    replicas: -3\n";
        assert_eq!(
            locate(text, &["workers", "jobs", "replicas"]),
            Some((5, 15))
        );
        assert_eq!(locate(text, &["name"]), Some((1, 7)));
    }

    #[test]
    fn an_overlay_merges_maps_and_replaces_lists() {
        let mut base: serde_json::Value = serde_saphyr::from_str(
            "name: shop\nweb: {port: 3000, replicas: 2}\ningress: {hosts: [shop.example.com], tls: true}\nsecrets: [A, B]\n",
        )
        .unwrap();
        let over: serde_json::Value = serde_saphyr::from_str(
            "namespace: shop-staging\nweb: {replicas: 1}\ningress: {hosts: [staging.shop.example.com]}\nsecrets: [A]\n",
        )
        .unwrap();
        lay_over(&mut base, over);
        assert_eq!(
            base,
            serde_json::json!({
                "name": "shop", "namespace": "shop-staging",
                "web": {"port": 3000, "replicas": 1},
                "ingress": {"hosts": ["staging.shop.example.com"], "tls": true},
                "secrets": ["A"],
            })
        );
        assert_eq!(
            overlay_path(Path::new("config/kubernetes.yml"), "staging"),
            Path::new("config/kubernetes.staging.yml")
        );
    }

    /// Each destination deploys to a namespace of its own: an overlay without `namespace:` gets
    /// `<app>-<dest>`, never the base spec's.
    #[test]
    fn a_destination_without_a_namespace_gets_its_own() {
        let base = "name: shop\nnamespace: shop\nimage: {repository: ghcr.io/acme/shop}\nweb: {port: 3000, replicas: 1}\n";
        for (overlay, namespace, warned) in [
            ("web: {replicas: 2}\n", "shop-production", true),
            ("context: production\n", "shop-production", true),
            ("", "shop-production", true),
            ("namespace: shop\n", "shop", false),
            ("namespace: elsewhere\n", "elsewhere", false),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let spec_path = dir.path().join("kubernetes.yml");
            std::fs::write(&spec_path, base).unwrap();
            std::fs::write(dir.path().join("kubernetes.production.yml"), overlay).unwrap();
            let loaded = load_destination(&spec_path, "production").unwrap();
            assert_eq!(
                loaded.spec.namespace.as_deref(),
                Some(namespace),
                "overlay {overlay:?}"
            );
            let said = loaded
                .warnings
                .iter()
                .any(|w| w.contains("names no `namespace:`"));
            assert_eq!(said, warned, "overlay {overlay:?}: {:?}", loaded.warnings);
        }
    }

    #[test]
    fn missing_file_is_its_own_error() {
        let e = load(Path::new("/nonexistent/kubernetes.yml")).unwrap_err();
        assert!(matches!(e, SpecFileError::Missing { .. }));
        assert!(e.hint().unwrap().contains("kubectl rails init"));
    }

    /// A write keeps the file's mode and a symlink, and a new file gets the mode any new file
    /// gets there (#27 L4).
    #[cfg(unix)]
    #[test]
    fn a_write_keeps_the_mode_and_the_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        for wanted in [0o644, 0o640, 0o664] {
            let path = dir.path().join("kubernetes.yml");
            std::fs::write(&path, "old").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(wanted)).unwrap();
            write_atomic(&path, "new").unwrap();
            assert_eq!(mode(&path), wanted);
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        }
        let real = dir.path().join("real.yml");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.yml");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, "new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        let reference = dir.path().join("reference");
        std::fs::File::create(&reference).unwrap();
        let fresh = dir.path().join("sub/fresh.yml");
        write_atomic(&fresh, "new").unwrap();
        assert_eq!(mode(&fresh), mode(&reference), "the mode a new file gets");
    }
}

/// Targeted edits of a spec file's text, so that `scale` and `autoscale` keep the user's
/// comments and layout. Each returns `None` when the path is not where a block-style spec
/// would have it; the caller then says so instead of guessing.
pub mod edit {
    use super::locate;

    fn indent_of(line: &str) -> usize {
        line.len() - line.trim_start().len()
    }

    /// Replaces the one-line value at `keys`, keeping a trailing comment.
    pub fn replace_value(text: &str, keys: &[&str], value: &str) -> Option<String> {
        let (line_no, col) = locate(text, keys)?;
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let line = lines.get_mut(line_no as usize - 1)?;
        let start = col as usize - 1;
        let rest = line.get(start..)?.to_string();
        if rest.trim().is_empty() || !line.trim_start().starts_with(keys.last()?) {
            return None;
        }
        let comment = rest
            .find(" #")
            .map(|i| rest[i..].to_string())
            .unwrap_or_default();
        line.replace_range(start.., &format!("{value}{comment}"));
        Some(lines.join("\n") + "\n")
    }

    /// Sets `key: value` inside the mapping at `parent`: replaced when present, else added as
    /// its last entry.
    pub fn set_child(text: &str, parent: &[&str], key: &str, value: &str) -> Option<String> {
        let mut path = parent.to_vec();
        path.push(key);
        if let Some(done) = replace_value(text, &path, value) {
            return Some(done);
        }
        let (parent_line, _) = locate(text, parent)?;
        let lines: Vec<&str> = text.lines().collect();
        let parent_indent = indent_of(lines[parent_line as usize - 1]);
        let mut last = parent_line as usize - 1;
        let mut child_indent = None;
        for (i, l) in lines.iter().enumerate().skip(parent_line as usize) {
            if l.trim().is_empty() || l.trim_start().starts_with('#') {
                continue;
            }
            if indent_of(l) <= parent_indent {
                break;
            }
            child_indent.get_or_insert(indent_of(l));
            last = i;
        }
        let indent = " ".repeat(child_indent.unwrap_or(parent_indent + 2));
        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        out.insert(last + 1, format!("{indent}{key}: {value}"));
        Some(out.join("\n") + "\n")
    }

    /// Removes the entry at `keys` and its block.
    pub fn remove(text: &str, keys: &[&str]) -> Option<String> {
        let (line_no, _) = locate(text, keys)?;
        let lines: Vec<&str> = text.lines().collect();
        let start = line_no as usize - 1;
        if !lines[start].trim_start().starts_with(keys.last()?) {
            return None;
        }
        let indent = indent_of(lines[start]);
        let end = lines
            .iter()
            .enumerate()
            .skip(start + 1)
            .find(|(_, l)| !l.trim().is_empty() && indent_of(l) <= indent)
            .map_or(lines.len(), |(i, _)| i);
        let out: Vec<&str> = lines[..start]
            .iter()
            .chain(lines[end..].iter())
            .copied()
            .collect();
        Some(out.join("\n") + "\n")
    }

    /// Appends `item` to the block sequence at top-level `key` (`secrets:` then `- KEY` lines),
    /// adding the sequence at the end of the file when it is missing. `None` when the key holds
    /// something else (a flow sequence, say).
    pub fn add_list_item(text: &str, key: &str, item: &str) -> Option<String> {
        let lines: Vec<&str> = text.lines().collect();
        let Some(start) = lines.iter().position(|l| *l == format!("{key}:")) else {
            if lines.iter().any(|l| l.starts_with(&format!("{key}:"))) {
                return None;
            }
            let mut out = text.trim_end_matches('\n').to_string();
            out.push_str(&format!("\n{key}:\n- {item}\n"));
            return Some(out);
        };
        let mut last = start;
        let mut prefix = "- ".to_string();
        for (i, l) in lines.iter().enumerate().skip(start + 1) {
            let t = l.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            if !t.starts_with("- ") {
                break;
            }
            prefix = format!("{}- ", &l[..l.len() - t.len()]);
            last = i;
        }
        let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        out.insert(last + 1, format!("{prefix}{item}"));
        Some(out.join("\n") + "\n")
    }

    /// Removes the line `- item` from the block sequence at top-level `key`; a sequence left
    /// empty goes too. `None` when no such line is there.
    pub fn remove_list_item(text: &str, key: &str, item: &str) -> Option<String> {
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.iter().position(|l| *l == format!("{key}:"))?;
        let mut at = None;
        let mut items = 0;
        for (i, l) in lines.iter().enumerate().skip(start + 1) {
            let t = l.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let Some(value) = t.strip_prefix("- ") else {
                break;
            };
            items += 1;
            if value.split(" #").next()?.trim().trim_matches(['"', '\'']) == item {
                at = Some(i);
            }
        }
        let at = at?;
        let out: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != at && !(items == 1 && *i == start))
            .map(|(_, l)| *l)
            .collect();
        Some(out.join("\n") + "\n")
    }

    /// Whether top-level `key` holds a block mapping (`key:` then indented `name: ...` lines).
    fn is_block_map(text: &str, key: &str) -> bool {
        let mut lines = text.lines().skip_while(|l| *l != format!("{key}:")).skip(1);
        lines
            .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .is_some_and(|l| indent_of(l) > 0 && !l.trim_start().starts_with("- "))
    }

    /// Adds a required key to `secrets`, in whichever form it has: a list of names, or the map
    /// that marks optional keys (`KEY: {}`).
    pub fn add_secret(text: &str, key: &str) -> Option<String> {
        if is_block_map(text, "secrets") {
            set_in_map(text, "secrets", key, "{}")
        } else {
            add_list_item(text, "secrets", key)
        }
    }

    /// Removes a key from `secrets`, in whichever form it has.
    pub fn remove_secret(text: &str, key: &str) -> Option<String> {
        if is_block_map(text, "secrets") {
            remove(text, &["secrets", key])
        } else {
            remove_list_item(text, "secrets", key)
        }
    }

    /// Sets `key: value` in the top-level mapping `parent`, adding the mapping at the end of the
    /// file when it is missing.
    pub fn set_in_map(text: &str, parent: &str, key: &str, value: &str) -> Option<String> {
        if text.lines().any(|l| l == format!("{parent}:")) {
            return set_child(text, &[parent], key, value);
        }
        if text.lines().any(|l| l.starts_with(&format!("{parent}:"))) {
            return None;
        }
        let mut out = text.trim_end_matches('\n').to_string();
        out.push_str(&format!("\n{parent}:\n  {key}: {value}\n"));
        Some(out)
    }

    /// How [`set_value`] or [`remove_value`] changed a file's text.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Made {
        /// Only the lines of the edited key changed; comments and layout are kept.
        InPlace,
        /// The text was written anew from its data: somewhere on the path it is not in the block
        /// style `init` writes (a flow mapping such as `web: {replicas: 2}`), so its comments
        /// and layout are gone.
        Rewritten,
    }

    fn as_value(text: &str) -> Option<serde_json::Value> {
        let v: serde_json::Value = serde_saphyr::from_str(text).ok()?;
        Some(if v.is_null() {
            serde_json::json!({})
        } else {
            v
        })
    }

    /// `keys: value` in block style, the missing mappings on the way added.
    fn set_block(text: &str, keys: &[&str], value: &str) -> Option<String> {
        let (key, parent) = keys.split_last()?;
        if let Some(done) = replace_value(text, keys, value) {
            return Some(done);
        }
        if parent.is_empty() {
            if text.lines().any(|l| l.starts_with(&format!("{key}:"))) {
                return None;
            }
            let mut out = text.trim_end_matches('\n').to_string();
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!(
                "{key}:{}{value}\n",
                if value.is_empty() { "" } else { " " }
            ));
            return Some(out);
        }
        let has_parent = locate(text, parent).is_some_and(|(line, _)| {
            text.lines().nth(line as usize - 1).is_some_and(|l| {
                l.trim_start()
                    .trim_start_matches("- ")
                    .starts_with(&format!("{}:", parent[parent.len() - 1]))
            })
        });
        let text = if has_parent {
            text.to_string()
        } else {
            set_block(text, parent, "")?
        };
        let done = set_child(&text, parent, key, value)?;
        Some(done.replace(&format!("{key}: \n"), &format!("{key}:\n")))
    }

    /// Sets the value at `keys` (YAML text: a scalar, or a flow mapping or sequence) in a YAML
    /// mapping, adding what is missing on the way. The lines of the key are edited when that
    /// gives exactly the data wanted; otherwise the text is written anew from its data. `None`
    /// when the text is not YAML or something on the way is not a mapping.
    pub fn set_value(text: &str, keys: &[&str], value: &str) -> Option<(String, Made)> {
        let mut wanted = as_value(text)?;
        let new: serde_json::Value = serde_saphyr::from_str(value).ok()?;
        let (last, parents) = keys.split_last()?;
        let mut at = &mut wanted;
        for k in parents {
            let map = at.as_object_mut()?;
            at = map
                .entry(k.to_string())
                .or_insert_with(|| serde_json::json!({}));
            if at.is_null() {
                *at = serde_json::json!({});
            }
        }
        at.as_object_mut()?.insert(last.to_string(), new);
        finish(text, set_block(text, keys, value), wanted)
    }

    /// Removes the entry at `keys`, if there is one, as [`set_value`] sets one; a mapping it
    /// leaves empty goes too (in an overlay, an empty entry would replace the base's).
    pub fn remove_value(text: &str, keys: &[&str]) -> Option<(String, Made)> {
        let mut wanted = as_value(text)?;
        let mut at = &wanted;
        for k in keys {
            match at.get(*k) {
                Some(next) => at = next,
                None => return Some((text.to_string(), Made::InPlace)),
            }
        }
        // The shortest prefix of `keys` whose entry holds nothing but the removed one.
        let mut cut = keys.len();
        while cut > 1 {
            let parent = keys[..cut - 1]
                .iter()
                .try_fold(&wanted, |v, k| v.get(*k))
                .and_then(serde_json::Value::as_object);
            if parent.is_some_and(|m| m.len() == 1) {
                cut -= 1;
            } else {
                break;
            }
        }
        let (last, parents) = keys[..cut].split_last()?;
        let mut at = &mut wanted;
        for k in parents {
            at = at.get_mut(*k)?;
        }
        at.as_object_mut()?.remove(*last);
        finish(text, remove(text, &keys[..cut]), wanted)
    }

    fn finish(
        text: &str,
        edited: Option<String>,
        wanted: serde_json::Value,
    ) -> Option<(String, Made)> {
        if let Some(edited) = edited
            && as_value(&edited).as_ref() == Some(&wanted)
        {
            return Some((edited, Made::InPlace));
        }
        // The comments at the top stay: they are about the whole file, and the first may be the
        // line that gives editors the schema (`# yaml-language-server: $schema=...`).
        let head: String = text
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let out = serde_saphyr::to_string(&wanted).ok()?;
        Some((head + &out, Made::Rewritten))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn values_are_set_and_removed_in_place_or_by_rewriting() {
            /// The text, the keys, the value to set (`None`: remove), the text and how it was made.
            type Case<'a> = (&'a str, &'a [&'a str], Option<&'a str>, &'a str, Made);
            let cases: &[Case] = &[
                // Block style: only the key's lines change, comments stay.
                (
                    "# prod\nweb:\n  replicas: 2 # two\n",
                    &["web", "replicas"],
                    Some("3"),
                    "# prod\nweb:\n  replicas: 3 # two\n",
                    Made::InPlace,
                ),
                (
                    "namespace: p\n",
                    &["web", "replicas"],
                    Some("3"),
                    "namespace: p\nweb:\n  replicas: 3\n",
                    Made::InPlace,
                ),
                (
                    "",
                    &["workers", "jobs", "replicas"],
                    Some("2"),
                    "workers:\n  jobs:\n    replicas: 2\n",
                    Made::InPlace,
                ),
                (
                    "workers:\n  mail:\n    replicas: 1\n",
                    &["workers", "jobs", "replicas"],
                    Some("2"),
                    "workers:\n  mail:\n    replicas: 1\n  jobs:\n    replicas: 2\n",
                    Made::InPlace,
                ),
                (
                    "cron:\n  nightly:\n    suspend: true\n",
                    &["cron", "nightly", "suspend"],
                    None,
                    "\n",
                    Made::InPlace,
                ),
                (
                    "namespace: p\ncron:\n  nightly:\n    suspend: true\n  daily:\n    suspend: true\n",
                    &["cron", "nightly", "suspend"],
                    None,
                    "namespace: p\ncron:\n  daily:\n    suspend: true\n",
                    Made::InPlace,
                ),
                (
                    "env:\n  A: \"1\"\n",
                    &["env", "B"],
                    None,
                    "env:\n  A: \"1\"\n",
                    Made::InPlace,
                ),
                // A flow mapping on the way: written anew.
                (
                    "web: {replicas: 2}\n",
                    &["web", "replicas"],
                    Some("3"),
                    "web:\n  replicas: 3\n",
                    Made::Rewritten,
                ),
                (
                    "web: {replicas: 2, autoscale: {min: 1, max: 2, cpu: 50}}\n",
                    &["web", "autoscale"],
                    None,
                    "web:\n  replicas: 2\n",
                    Made::Rewritten,
                ),
            ];
            for (text, keys, value, want, made) in cases {
                let got = match value {
                    Some(v) => set_value(text, keys, v),
                    None => remove_value(text, keys),
                };
                assert_eq!(
                    got,
                    Some((want.to_string(), *made)),
                    "{text:?} {keys:?} {value:?}"
                );
            }
            assert_eq!(set_value("web: [1]\n", &["web", "replicas"], "3"), None);
        }

        /// A file written anew from its data keeps its first comments: the schema line above all.
        #[test]
        fn a_rewrite_keeps_the_comments_at_the_top() {
            let text = "# yaml-language-server: $schema=x\n# about\nweb: {replicas: 2}\n";
            let (out, made) = set_value(text, &["web", "replicas"], "3").unwrap();
            assert_eq!(made, Made::Rewritten);
            assert_eq!(
                out,
                "# yaml-language-server: $schema=x\n# about\nweb:\n  replicas: 3\n"
            );
            let text = "# yaml-language-server: $schema=x\nweb: {replicas: 2, port: 3000}\n";
            let (out, made) = remove_value(text, &["web", "replicas"]).unwrap();
            assert_eq!(made, Made::Rewritten);
            assert_eq!(
                out,
                "# yaml-language-server: $schema=x\nweb:\n  port: 3000\n"
            );
        }

        #[test]
        fn list_items_come_and_go() {
            let text = "name: a\nsecrets:\n- A\n- B # b\nmigrate:\n  command: [x]\n";
            let added = add_list_item(text, "secrets", "C").unwrap();
            assert_eq!(
                added,
                "name: a\nsecrets:\n- A\n- B # b\n- C\nmigrate:\n  command: [x]\n"
            );
            assert_eq!(remove_list_item(&added, "secrets", "C").unwrap(), text);
            let only_a = remove_list_item(text, "secrets", "B").unwrap();
            assert_eq!(
                remove_list_item(&only_a, "secrets", "A").unwrap(),
                "name: a\nmigrate:\n  command: [x]\n",
                "an emptied list goes"
            );
            assert_eq!(remove_list_item(text, "secrets", "Z"), None);
            assert_eq!(
                add_list_item("name: a\n", "secrets", "K").unwrap(),
                "name: a\nsecrets:\n- K\n"
            );
            assert_eq!(add_list_item("secrets: [A]\n", "secrets", "K"), None);
        }

        #[test]
        fn secrets_in_either_form() {
            let map =
                "name: a\nsecrets:\n  A: {}\n  B:\n    optional: true\nmigrate:\n  command: [x]\n";
            let added = add_secret(map, "C").unwrap();
            assert_eq!(
                added,
                "name: a\nsecrets:\n  A: {}\n  B:\n    optional: true\n  C: {}\nmigrate:\n  command: [x]\n"
            );
            assert_eq!(remove_secret(&added, "C").unwrap(), map);
            assert_eq!(
                remove_secret(map, "B").unwrap(),
                "name: a\nsecrets:\n  A: {}\nmigrate:\n  command: [x]\n"
            );
            let list = "name: a\nsecrets:\n- A\n";
            assert_eq!(
                add_secret(list, "C").unwrap(),
                "name: a\nsecrets:\n- A\n- C\n"
            );
        }

        #[test]
        fn a_map_entry_is_set_or_its_map_added() {
            assert_eq!(
                set_in_map("name: a\nenv:\n  A: \"1\"\n", "env", "B", "\"2\"").unwrap(),
                "name: a\nenv:\n  A: \"1\"\n  B: \"2\"\n"
            );
            assert_eq!(
                set_in_map("name: a\n", "env", "B", "\"2\"").unwrap(),
                "name: a\nenv:\n  B: \"2\"\n"
            );
        }

        const SPEC: &str = "name: shop # the app\nweb:\n  port: 3000\n  replicas: 2 # two\nworkers:\n  jobs:\n    command: [bin/jobs]\n    replicas: 1\nenv:\n  A: b\n";

        #[test]
        fn replace_keeps_comments() {
            let t = replace_value(SPEC, &["web", "replicas"], "5").unwrap();
            assert!(t.contains("  replicas: 5 # two\n"), "{t}");
            let t = replace_value(SPEC, &["workers", "jobs", "replicas"], "3").unwrap();
            assert!(t.contains("    replicas: 3\nenv:"), "{t}");
        }

        #[test]
        fn set_child_adds_and_remove_takes_away() {
            let t = set_child(SPEC, &["web"], "autoscale", "{min: 2, max: 10, cpu: 70}").unwrap();
            assert!(
                t.contains(
                    "  replicas: 2 # two\n  autoscale: {min: 2, max: 10, cpu: 70}\nworkers:"
                ),
                "{t}"
            );
            let again = set_child(&t, &["web"], "autoscale", "{min: 3, max: 9, cpu: 50}").unwrap();
            assert!(
                again.contains("  autoscale: {min: 3, max: 9, cpu: 50}\n"),
                "{again}"
            );
            assert_eq!(remove(&again, &["web", "autoscale"]).unwrap(), SPEC);
            let no_workers = remove(SPEC, &["workers"]).unwrap();
            assert_eq!(
                no_workers,
                "name: shop # the app\nweb:\n  port: 3000\n  replicas: 2 # two\nenv:\n  A: b\n"
            );
        }

        #[test]
        fn missing_paths_are_none() {
            assert_eq!(replace_value(SPEC, &["web", "nope"], "1"), None);
            assert_eq!(remove(SPEC, &["ingress"]), None);
        }
    }
}

//! CarrierWave uploaders that keep files on the local disk: where they write (`store_dir`
//! under CarrierWave's root, `public/` by default). Nothing else in the app names that folder,
//! and what a pod writes there is lost on restart unless a volume keeps it.

/// A folder an uploader writes files to, relative to the app folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadDir {
    /// `public/uploads`.
    pub path: String,
    /// Where it was read: `app/uploaders/avatar_uploader.rb:7`.
    pub at: String,
}

/// The storage a `storage :x` / `config.storage = :x` line names.
fn storage_of(line: &str) -> Option<String> {
    let rest = line
        .trim()
        .strip_prefix("config.storage")
        .or_else(|| line.trim().strip_prefix("storage"))?;
    let rest = rest.trim_start().trim_start_matches('=').trim_start();
    let name = rest
        .strip_prefix(':')
        .or_else(|| rest.strip_prefix("\"").or_else(|| rest.strip_prefix('\'')))?;
    let name: String = name
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The folders of `uploaders` (file name and text) that store on the local disk. `initializer`
/// is `config/initializers/carrierwave.rb`, whose `config.storage` is every uploader's default
/// and whose `config.root` moves the folders (then nothing is said: the root is Ruby).
pub fn carrierwave_dirs(
    uploaders: &[(String, String)],
    initializer: Option<&str>,
) -> Vec<UploadDir> {
    let code = |text: &str| -> Vec<(usize, String)> {
        text.lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.split(" #").next().unwrap_or(l).trim().to_string()))
            .filter(|(_, l)| !l.starts_with('#') && !l.is_empty())
            .collect()
    };
    let init = initializer.map(code).unwrap_or_default();
    if init.iter().any(|(_, l)| l.starts_with("config.root")) {
        return Vec::new();
    }
    let default_storage = init
        .iter()
        .find_map(|(_, l)| storage_of(l))
        .unwrap_or_else(|| "file".into());
    let mut found = Vec::new();
    for (file, text) in uploaders {
        let lines = code(text);
        if !lines
            .iter()
            .any(|(_, l)| l.contains("CarrierWave::Uploader::Base"))
        {
            continue;
        }
        let storage = lines
            .iter()
            .find_map(|(_, l)| l.starts_with("storage").then(|| storage_of(l)).flatten())
            .unwrap_or_else(|| default_storage.clone());
        if storage != "file" {
            continue;
        }
        let def = lines.iter().position(|(_, l)| l == "def store_dir");
        let (line, dir) = match def {
            // The first string the method returns, up to its first interpolation.
            Some(i) => {
                let Some((n, literal)) = lines[i + 1..]
                    .iter()
                    .take_while(|(_, l)| l != "end")
                    .find_map(|(n, l)| first_string(l).map(|s| (*n, s)))
                else {
                    continue;
                };
                let fixed = literal
                    .trim_start_matches("#{Rails.root}/")
                    .split("#{")
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .to_string();
                (n, fixed)
            }
            // CarrierWave's own default.
            None => (1, "uploads".to_string()),
        };
        if dir.is_empty() || dir.contains("..") {
            continue;
        }
        let path = if dir.starts_with('/') || dir.starts_with("public/") {
            dir.trim_start_matches('/').to_string()
        } else {
            format!("public/{dir}")
        };
        // One folder per app is enough to say: uploaders usually share the root.
        let top = path.split('/').take(2).collect::<Vec<_>>().join("/");
        if !found.iter().any(|u: &UploadDir| u.path == top) {
            found.push(UploadDir {
                path: top,
                at: format!("{file}:{line}"),
            });
        }
    }
    found
}

fn first_string(line: &str) -> Option<String> {
    let start = line.find(['"', '\''])?;
    let quote = line[start..].chars().next()?;
    let rest = &line[start + 1..];
    let end = rest.find(quote)?;
    Some(rest[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uploader(body: &str) -> Vec<(String, String)> {
        vec![(
            "app/uploaders/avatar_uploader.rb".into(),
            format!("class AvatarUploader < CarrierWave::Uploader::Base\n{body}end\n"),
        )]
    }

    #[test]
    fn local_uploaders_name_their_folder_and_remote_ones_nothing() {
        // The uploader's body, the initializer, and the folder found with where.
        type Case<'a> = (&'a str, Option<&'a str>, Option<(&'a str, &'a str)>);
        let cases: &[Case] = &[
            (
                "  storage :file\n  def store_dir\n    \"uploads/#{model.class.to_s.underscore}/#{mounted_as}/#{model.id}\"\n  end\n",
                None,
                Some(("public/uploads", "app/uploaders/avatar_uploader.rb:4")),
            ),
            // No store_dir: CarrierWave's default, under public/.
            (
                "  storage :file\n",
                None,
                Some(("public/uploads", "app/uploaders/avatar_uploader.rb:1")),
            ),
            // No storage line: the initializer's default decides.
            (
                "",
                Some("CarrierWave.configure do |config|\n  config.storage = :fog\nend\n"),
                None,
            ),
            (
                "",
                Some("CarrierWave.configure do |config|\n  config.storage :file\nend\n"),
                Some(("public/uploads", "app/uploaders/avatar_uploader.rb:1")),
            ),
            (
                "  storage :fog\n  def store_dir\n    'uploads'\n  end\n",
                None,
                None,
            ),
            (
                "  def store_dir\n    \"#{Rails.root}/public/system/#{model.id}\"\n  end\n",
                None,
                Some(("public/system", "app/uploaders/avatar_uploader.rb:3")),
            ),
            (
                "  def store_dir\n    'files/avatars'\n  end\n",
                None,
                Some(("public/files", "app/uploaders/avatar_uploader.rb:3")),
            ),
            // The root is Ruby: nothing is guessed.
            (
                "",
                Some(
                    "CarrierWave.configure do |config|\n  config.root = ENV['UPLOADS_ROOT']\nend\n",
                ),
                None,
            ),
        ];
        for (body, init, expected) in cases {
            let got = carrierwave_dirs(&uploader(body), *init);
            let want: Vec<UploadDir> = expected
                .iter()
                .map(|(p, at)| UploadDir {
                    path: p.to_string(),
                    at: at.to_string(),
                })
                .collect();
            assert_eq!(got, want, "{body} / {init:?}");
        }
        // Not an uploader at all.
        let other = vec![(
            "app/uploaders/notes.rb".to_string(),
            "module Notes\nend\n".to_string(),
        )];
        assert!(carrierwave_dirs(&other, None).is_empty());
    }
}

//! The Dockerfile as Docker reads it: parsed by `parse-dockerfile` (stages, heredocs, line
//! continuations), the final stage (or a `--target`) resolved through its `FROM <stage>` chain so
//! that it inherits USER, WORKDIR, ENV, ENTRYPOINT, CMD, EXPOSE and VOLUME, with ARG defaults
//! substituted (`USER ${APP_USER}`, `useradd --uid ${APP_UID}`).

use std::collections::BTreeMap;

use parse_dockerfile::{Command, Instruction, JsonOrStringArray};

/// Facts of the image the Dockerfile builds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dockerfile {
    /// The image at the root of the final stage's chain (`ruby:3.3-slim`).
    pub base: String,
    pub expose: Option<u16>,
    /// `USER`, ARGs substituted.
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub env: BTreeMap<String, String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub volumes: Vec<String>,
    /// Users the chain creates (`useradd`/`adduser` with a numeric uid): name -> (uid, gid).
    pub created_users: BTreeMap<String, (i64, Option<i64>)>,
    /// Groups the chain creates with a numeric gid (`groupadd --gid N name`): name -> gid.
    pub created_groups: BTreeMap<String, i64>,
    /// The chain's `RUN` commands, ARGs substituted.
    pub runs: Vec<String>,
    /// A `RUN` of any stage precompiles the assets (`rails assets:precompile`): Rails' own
    /// Dockerfile does it in a build stage and copies `/rails` into the final one.
    pub precompiles_assets: bool,
}

/// The user a container runs as, as far as the Dockerfile tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageUser {
    /// `USER` is root, or missing on an official base image that runs as root.
    Root,
    /// A numeric uid (from `USER 1000` or the line that created the named user), and the gid
    /// when known.
    Numeric { uid: i64, gid: Option<i64> },
    /// A user whose number no line of the Dockerfile gives (made in a base image, or no USER
    /// on a base image that may set one): why.
    Unknown(String),
}

/// Official images that run as root unless a USER says otherwise.
const ROOT_BASES: &[&str] = &[
    "ruby",
    "debian",
    "ubuntu",
    "alpine",
    "node",
    "phusion/passenger",
    "fedora",
    "centos",
    "rockylinux",
    "almalinux",
    "amazonlinux",
    "busybox",
    "scratch",
];

impl Dockerfile {
    /// Rails 8 images run Thruster in front of Puma.
    pub fn runs_thruster(&self) -> bool {
        self.start_command()
            .iter()
            .any(|a| a.ends_with("thrust") || a.ends_with("thruster"))
    }

    /// What the container runs: ENTRYPOINT followed by CMD.
    pub fn start_command(&self) -> Vec<String> {
        self.entrypoint
            .iter()
            .flatten()
            .chain(self.cmd.iter().flatten())
            .cloned()
            .collect()
    }

    /// The numeric user, when known.
    pub fn uid(&self) -> Option<i64> {
        match self.image_user() {
            ImageUser::Numeric { uid, .. } => Some(uid),
            _ => None,
        }
    }

    /// Who the image runs as: a kubelet refuses `runAsNonRoot` for a named user unless the pod
    /// gives the number, and a wrong number breaks file permissions, so a name is resolved only
    /// through the line that created it, never guessed.
    pub fn image_user(&self) -> ImageUser {
        let Some(user) = self.user.as_deref() else {
            let repo = self.base.split([':', '@']).next().unwrap_or("");
            let repo = repo.strip_prefix("docker.io/").unwrap_or(repo);
            let repo = repo.strip_prefix("library/").unwrap_or(repo);
            return if ROOT_BASES.contains(&repo) {
                ImageUser::Root
            } else {
                ImageUser::Unknown(format!(
                    "the Dockerfile sets no `USER`, so the base image `{}` decides it",
                    self.base
                ))
            };
        };
        let (name, group) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user, None),
        };
        let gid_of = |group: Option<&str>, fallback: Option<i64>| match group {
            Some(g) => g
                .parse::<i64>()
                .ok()
                .or_else(|| self.created_groups.get(g).copied()),
            None => fallback,
        };
        if let Ok(uid) = name.parse::<i64>() {
            return match uid {
                0 => ImageUser::Root,
                uid => ImageUser::Numeric {
                    uid,
                    gid: gid_of(group, None),
                },
            };
        }
        if name == "root" {
            return ImageUser::Root;
        }
        match self.created_users.get(name) {
            Some(&(uid, gid)) => ImageUser::Numeric {
                uid,
                gid: gid_of(group, gid).or(gid),
            },
            None => ImageUser::Unknown(format!(
                "the Dockerfile's `USER {name}` is a name, and no `useradd --uid` line gives its number (a kubelet cannot check a name is not root)"
            )),
        }
    }
}

/// Substitutes `$X`, `${X}` and `${X:-d}` from `args`; unknown names are left as they are.
fn substitute(text: &str, args: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, default, used) = if let Some(body) = after.strip_prefix('{') {
            match body.find('}') {
                Some(end) => {
                    let inner = &body[..end];
                    let (n, d) = match inner.split_once(":-") {
                        Some((n, d)) => (n, Some(d)),
                        None => (inner, None),
                    };
                    (n.to_string(), d.map(str::to_string), end + 2)
                }
                None => (String::new(), None, 0),
            }
        } else {
            let n: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let len = n.len();
            (n, None, len)
        };
        match args
            .get(&name)
            .filter(|v| !v.is_empty())
            .or(default.as_ref())
        {
            Some(v) if !name.is_empty() => out.push_str(v),
            _ => out.push_str(&rest[i..i + 1 + used]),
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}

/// `K=V K2="V 2"` or the old `K V` form of ENV and ARG.
fn pairs(text: &str) -> Vec<(String, Option<String>)> {
    let words = crate::kamal::shell_words(text);
    if words.len() >= 2 && !words[0].contains('=') {
        return vec![(words[0].clone(), Some(words[1..].join(" ")))];
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), Some(v.to_string())),
            None => (w, None),
        })
        .collect()
}

fn command_words(c: &Command<'_>) -> Vec<String> {
    match c {
        Command::Exec(words) => words.value.iter().map(|w| w.value.to_string()).collect(),
        Command::Shell(text) => vec!["/bin/sh".into(), "-c".into(), text.value.trim().to_string()],
        _ => vec![],
    }
}

/// Parses a Dockerfile and resolves `target` (or the last stage). `None` when Docker could not
/// read it either.
pub fn parse(text: &str, target: Option<&str>) -> Result<Dockerfile, String> {
    let file = parse_dockerfile::parse(text).map_err(|e| e.to_string())?;
    let mut globals = BTreeMap::new();
    for arg in file.global_args() {
        for (k, v) in pairs(&arg.arguments.value) {
            globals.insert(k, v.unwrap_or_default());
        }
    }
    let stages: Vec<_> = file.stages().collect();
    let names: Vec<Option<String>> = stages
        .iter()
        .map(|s| {
            s.from
                .as_
                .as_ref()
                .map(|(_, n)| n.value.to_ascii_lowercase())
        })
        .collect();
    let final_index = match target {
        Some(t) => names
            .iter()
            .position(|n| n.as_deref() == Some(&t.to_ascii_lowercase()))
            .ok_or_else(|| format!("no stage is named `{t}`"))?,
        None => stages.len().checked_sub(1).ok_or("no FROM line")?,
    };
    // The chain from the root stage to the final one.
    let mut chain = vec![final_index];
    loop {
        let from = substitute(
            &stages[*chain.last().unwrap_or(&0)].from.image.value,
            &globals,
        )
        .to_ascii_lowercase();
        match names
            .iter()
            .position(|n| n.as_deref() == Some(from.as_str()))
        {
            Some(parent) if !chain.contains(&parent) => chain.push(parent),
            _ => break,
        }
    }
    chain.reverse();
    let mut out = Dockerfile {
        base: substitute(&stages[chain[0]].from.image.value, &globals),
        precompiles_assets: text
            .lines()
            .map(str::trim_start)
            .filter(|l| !l.starts_with('#'))
            .any(|l| l.contains("assets:precompile")),
        ..Dockerfile::default()
    };
    for index in chain {
        // A stage sees the global ARGs it declares again, its own ARGs, and the ENV so far.
        let mut args: BTreeMap<String, String> = out.env.clone();
        for instruction in stages[index].instructions {
            match instruction {
                Instruction::Arg(a) => {
                    for (k, v) in pairs(&a.arguments.value) {
                        let v = v
                            .map(|v| substitute(&v, &args))
                            .or_else(|| globals.get(&k).cloned())
                            .unwrap_or_default();
                        args.insert(k, v);
                    }
                }
                Instruction::Env(e) => {
                    for (k, v) in pairs(&e.arguments.value) {
                        let v = substitute(&v.unwrap_or_default(), &args);
                        args.insert(k.clone(), v.clone());
                        out.env.insert(k, v);
                    }
                }
                Instruction::User(u) => {
                    out.user = Some(substitute(u.arguments.value.trim(), &args))
                }
                Instruction::Workdir(w) => {
                    let dir = substitute(w.arguments.value.trim(), &args);
                    out.workdir = Some(match (&out.workdir, dir.starts_with('/')) {
                        (Some(base), false) => format!("{}/{dir}", base.trim_end_matches('/')),
                        _ => dir,
                    });
                }
                Instruction::Expose(e) => {
                    out.expose = e
                        .arguments
                        .first()
                        .and_then(|p| substitute(&p.value, &args).split('/').next()?.parse().ok())
                }
                Instruction::Volume(v) => {
                    let paths: Vec<String> = match &v.arguments {
                        JsonOrStringArray::Json(words) => {
                            words.value.iter().map(|w| w.value.to_string()).collect()
                        }
                        JsonOrStringArray::String(words) => {
                            words.iter().map(|w| w.value.to_string()).collect()
                        }
                    };
                    out.volumes
                        .extend(paths.iter().map(|p| substitute(p, &args)));
                }
                Instruction::Entrypoint(e) => {
                    out.entrypoint = Some(command_words(&e.arguments));
                    // Docker resets an inherited CMD when a stage sets ENTRYPOINT.
                    out.cmd = None;
                }
                Instruction::Cmd(c) => out.cmd = Some(command_words(&c.arguments)),
                Instruction::Run(r) => {
                    let mut text = match &r.arguments {
                        Command::Exec(words) => words
                            .value
                            .iter()
                            .map(|w| w.value.to_string())
                            .collect::<Vec<_>>()
                            .join(" "),
                        Command::Shell(text) => text.value.to_string(),
                        _ => String::new(),
                    };
                    for doc in &r.here_docs {
                        text.push('\n');
                        text.push_str(&doc.value);
                    }
                    let text = substitute(&text.replace("\\\n", " "), &args);
                    record_accounts(&text, &mut out);
                    out.runs.push(text);
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// `useradd`/`adduser`/`groupadd` commands in a `RUN` line, with their numeric ids.
fn record_accounts(run: &str, out: &mut Dockerfile) {
    for command in run.split(['&', ';', '|', '\n']) {
        let words: Vec<&str> = command.split_whitespace().collect();
        let Some(tool) = words.first().copied() else {
            continue;
        };
        let value_of = |long: &str, short: &str| {
            words.iter().enumerate().find_map(|(i, w)| {
                if let Some(v) = w.strip_prefix(&format!("{long}=")) {
                    Some(v.to_string())
                } else if *w == long || *w == short {
                    words.get(i + 1).map(|v| v.to_string())
                } else {
                    None
                }
            })
        };
        // The account name: the last word that is neither an option nor an option's value.
        let takes_value = [
            "--uid",
            "-u",
            "--gid",
            "-g",
            "--shell",
            "-s",
            "--home",
            "--home-dir",
            "-d",
            "-G",
            "--groups",
            "-c",
            "--comment",
            "--gecos",
            "-k",
            "--skel",
            "-K",
            "--key",
            "-h",
            "-e",
            "--expiredate",
            "-f",
            "--inactive",
            "--ingroup",
            "-p",
            "--password",
        ];
        let mut name = None;
        let mut skip = false;
        for w in &words[1..] {
            if skip {
                skip = false;
                continue;
            }
            if w.starts_with('-') {
                skip = takes_value.contains(w);
                continue;
            }
            name = Some(w.to_string());
        }
        let Some(name) = name else { continue };
        match tool {
            "useradd" | "adduser" => {
                let Some(uid) = value_of("--uid", "-u").and_then(|v| v.parse().ok()) else {
                    continue;
                };
                let group = value_of("--gid", "-g").or_else(|| {
                    // BusyBox `adduser -G group` names the primary group.
                    (tool == "adduser")
                        .then(|| value_of("--ingroup", "-G"))
                        .flatten()
                });
                let gid = group.and_then(|g| {
                    g.parse::<i64>()
                        .ok()
                        .or_else(|| out.created_groups.get(&g).copied())
                });
                out.created_users.insert(name, (uid, gid));
            }
            "groupadd" | "addgroup" => {
                if let Some(gid) = value_of("--gid", "-g").and_then(|v| v.parse().ok()) {
                    out.created_groups.insert(name, gid);
                }
            }
            _ => {}
        }
    }
}

/// Inlines `INCLUDE path` lines (the dockerfile-x frontend's, which real apps use to share
/// stages between Dockerfiles) with the text `read` gives for the path, a few levels deep.
pub fn inline_includes(text: &str, read: &dyn Fn(&str) -> Option<String>) -> String {
    fn go(text: &str, read: &dyn Fn(&str) -> Option<String>, depth: u8) -> String {
        text.lines()
            .map(|line| {
                let mut words = line.split_whitespace();
                match (words.next(), words.next()) {
                    (Some(word), Some(path))
                        if word.eq_ignore_ascii_case("INCLUDE") && depth < 5 =>
                    {
                        read(path.trim_matches(['"', '\''])).map_or_else(
                            || line.to_string(),
                            |included| go(&included, read, depth + 1),
                        )
                    }
                    _ => line.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
    go(text, read, 0)
}

/// Where an image that starts as root drops to its user: the line of a start script (or the
/// start command) that runs `su-exec`, `gosu`, `setpriv`, `s6-setuidgid`, `chpst -u` or
/// `runuser`, or s6-overlay's `/init`. `scripts` are the files the start command runs.
pub fn privilege_drop(start: &[String], scripts: &[(String, String)]) -> Option<String> {
    const TOOLS: &[&str] = &[
        "su-exec",
        "gosu",
        "setpriv",
        "s6-setuidgid",
        "chpst",
        "runuser",
    ];
    let drops = |line: &str| {
        line.split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .any(|w| TOOLS.contains(&w.rsplit('/').next().unwrap_or(w)))
    };
    if start.first().is_some_and(|w| w == "/init") {
        return Some("s6-overlay's `/init`, the start command (it runs as root and starts each service as its user)".into());
    }
    if drops(&start.join(" ")) {
        return Some(format!("the start command `{}`", start.join(" ")));
    }
    scripts.iter().find_map(|(file, text)| {
        text.lines().enumerate().find_map(|(i, line)| {
            let code = line.trim();
            (!code.starts_with('#') && drops(code)).then(|| format!("{file}:{} (`{code}`)", i + 1))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_are_inlined() {
        let read = |path: &str| match path {
            "docker/base.dockerfile" => Some("FROM ruby:3.3 AS base\nUSER 1000".to_string()),
            "docker/runtime.dockerfile" => Some("FROM base\nEXPOSE 3214".to_string()),
            _ => None,
        };
        let text = "# syntax = devthefuture/dockerfile-x\nINCLUDE docker/base.dockerfile\nINCLUDE docker/runtime.dockerfile\n";
        let d = parse(&inline_includes(text, &read), None).unwrap();
        assert_eq!((d.expose, d.uid()), (Some(3214), Some(1000)));
    }

    #[test]
    fn entrypoints_that_drop_privileges() {
        let script = |text: &str| vec![("bin/docker-entrypoint".to_string(), text.to_string())];
        let start = vec![
            "/rails/bin/docker-entrypoint".to_string(),
            "bin/rails".into(),
            "server".into(),
        ];
        let cases = [
            (
                "#!/bin/sh\nchown -R app /data\nexec su-exec app \"$@\"\n",
                Some("bin/docker-entrypoint:3"),
            ),
            (
                "#!/bin/sh\nexec gosu rails \"$@\"\n",
                Some("bin/docker-entrypoint:2"),
            ),
            (
                "#!/bin/sh\nexec setpriv --reuid=rails --regid=rails --init-groups -- \"$@\"\n",
                Some("bin/docker-entrypoint:2"),
            ),
            ("#!/bin/sh\n# gosu is not used\nexec \"$@\"\n", None),
        ];
        for (text, at) in cases {
            let got = privilege_drop(&start, &script(text));
            assert_eq!(
                got.as_deref().map(|g| g.split(' ').next().unwrap_or("")),
                at,
                "{text}"
            );
        }
        assert!(privilege_drop(&["/init".to_string()], &[]).is_some());
    }

    fn parsed(text: &str) -> Dockerfile {
        parse(text, None).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn assets_precompiled_in_a_build_stage_count() {
        let cases = [
            // Rails' own: precompiled in `build`, copied into the final stage.
            (
                "FROM ruby AS build\nRUN SECRET_KEY_BASE_DUMMY=1 ./bin/rails assets:precompile\nFROM ruby\nCOPY --from=build /rails /rails\n",
                true,
            ),
            (
                "FROM ruby\nRUN bundle install && \\\n    bin/rails assets:precompile\n",
                true,
            ),
            (
                "FROM ruby\n# RUN bin/rails assets:precompile\nRUN bundle install\n",
                false,
            ),
        ];
        for (text, precompiles) in cases {
            assert_eq!(parsed(text).precompiles_assets, precompiles, "{text}");
        }
    }

    #[test]
    fn the_final_stage_wins_and_inherits_its_parents() {
        let d = parsed(
            "FROM ruby AS build\nEXPOSE 9999\nUSER root\nFROM ruby AS base\nWORKDIR /rails\nENV RAILS_ENV=production\nUSER 1000:1000\nFROM base\nEXPOSE 80\nCMD [\"./bin/thrust\", \"./bin/rails\", \"server\"]\n",
        );
        assert_eq!(d.expose, Some(80));
        assert_eq!(d.uid(), Some(1000));
        assert_eq!(d.workdir.as_deref(), Some("/rails"));
        assert_eq!(d.env["RAILS_ENV"], "production");
        assert!(d.runs_thruster());
        let d = parsed("FROM ruby\nEXPOSE 3000/tcp\nCMD ./bin/rails server\n");
        assert_eq!(d.expose, Some(3000));
        assert!(!d.runs_thruster());
        assert_eq!(d.cmd.unwrap(), ["/bin/sh", "-c", "./bin/rails server"]);
        // ENTRYPOINT in a child resets the parent's CMD, as Docker does.
        let d = parsed("FROM ruby AS base\nCMD [\"x\"]\nFROM base\nENTRYPOINT [\"/init\"]\n");
        assert_eq!(d.start_command(), ["/init"]);
        // A --target chooses the stage.
        let d = parse(
            "FROM ruby AS app\nEXPOSE 1\nFROM app AS other\nEXPOSE 2\n",
            Some("app"),
        )
        .unwrap();
        assert_eq!(d.expose, Some(1));
    }

    #[test]
    fn the_image_user_comes_from_user_or_the_line_that_created_it() {
        use ImageUser::*;
        let numeric = |uid, gid| Numeric { uid, gid };
        let cases = [
            ("FROM ruby\nUSER 1000:1000", numeric(1000, Some(1000))),
            ("FROM ruby\nUSER 1001", numeric(1001, None)),
            ("FROM ruby", Root),
            ("FROM ruby:3.3-alpine\nUSER root", Root),
            ("FROM ruby\nUSER 0", Root),
            (
                "FROM ruby\nRUN groupadd --system --gid 1000 rails && useradd rails --uid 1000 --gid 1000 --create-home\nUSER rails:rails",
                numeric(1000, Some(1000)),
            ),
            (
                "FROM ruby\nRUN useradd --create-home -u 1001 -g 1001 app\nUSER app",
                numeric(1001, Some(1001)),
            ),
            (
                "FROM ruby:alpine\nRUN addgroup -g 2000 -S web && adduser -S -D -u 2001 -G web web\nUSER web:web",
                numeric(2001, Some(2000)),
            ),
            (
                "FROM ruby\nRUN useradd --uid=1500 deploy\nUSER deploy",
                numeric(1500, None),
            ),
            // USER set in a parent stage, the uid from an ARG default.
            (
                "ARG APP_UID=1500\nFROM ruby:3.3 AS base\nARG APP_UID\nRUN groupadd --gid ${APP_UID} shop && useradd --uid ${APP_UID} --gid shop shop\nUSER shop\nFROM base\nCMD [\"bin/rails\", \"server\"]",
                numeric(1500, Some(1500)),
            ),
            // A stage ARG with its own default, used in USER.
            ("FROM ruby\nARG UID=1234\nUSER ${UID}", numeric(1234, None)),
            // Continuation lines and a heredoc RUN.
            (
                "FROM ruby\nRUN <<EOF\nset -e\nuseradd --uid 4242 app\nEOF\nUSER app",
                numeric(4242, None),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parsed(text).image_user(), expected, "{text}");
        }
        let unknown = [
            "FROM ruby\nRUN useradd rails --create-home --shell /bin/bash\nUSER rails:rails",
            // The final stage only: a build stage's user does not count.
            "FROM ruby AS build\nRUN useradd -u 5 x\nFROM ruby\nUSER x",
            // No USER on a base image we do not know: it may set one.
            "FROM ghcr.io/acme/rails-base:1\nCMD [\"bin/rails\", \"server\"]",
        ];
        for text in unknown {
            assert!(matches!(parsed(text).image_user(), Unknown(_)), "{text}");
        }
    }

    #[test]
    fn volumes_entrypoint_and_args() {
        let d = parsed(
            "ARG DIR=/data\nFROM ruby\nARG DIR\nVOLUME [\"${DIR}\", \"/rails/storage\"]\nENTRYPOINT [\"/rails/bin/docker-entrypoint\"]\nCMD [\"./bin/rails\", \"server\"]\n",
        );
        assert_eq!(d.volumes, ["/data", "/rails/storage"]);
        assert_eq!(
            d.start_command(),
            ["/rails/bin/docker-entrypoint", "./bin/rails", "server"]
        );
    }
}

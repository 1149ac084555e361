//! Procfile lines (and start scripts) as a process manager runs them: `name: command`, where the
//! command is a shell line. Leading `KEY=value` words are the process's env; anything else a
//! shell would interpret (`$VAR`, `${PORT:-3000}`, `&&`, `|`, redirections) runs through
//! `sh -c`; plain words are run as they are.

use std::collections::BTreeMap;

/// One `name: command` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcfileLine {
    pub line: usize,
    /// The name as written (`app_server`).
    pub name: String,
    pub command: String,
}

/// The `name: command` lines of a Procfile; comments and blank lines skipped.
pub fn parse(text: &str) -> Vec<ProcfileLine> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with('#'))
        .filter_map(|(i, l)| {
            let (name, cmd) = l.split_once(':')?;
            let (name, cmd) = (name.trim(), cmd.trim());
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
            (valid && !cmd.is_empty()).then(|| ProcfileLine {
                line: i + 1,
                name: name.to_string(),
                command: cmd.to_string(),
            })
        })
        .collect()
}

/// A command as the container runs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessCommand {
    /// `KEY=value` words before the command.
    pub env: BTreeMap<String, String>,
    /// The words to run: the command's own, or `sh -c <line>` when it needs a shell.
    pub command: Vec<String>,
}

/// Whether a shell would do more with `text` than split it into words.
pub fn needs_shell(text: &str) -> bool {
    text.contains(['$', '|', '&', ';', '<', '>', '`', '*', '(', ')', '~', '\\'])
}

/// Splits a Procfile command into its env and the words to run.
pub fn command_of(text: &str) -> ProcessCommand {
    let mut env = BTreeMap::new();
    let mut rest = text.trim();
    loop {
        let (word, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        match word.split_once('=') {
            Some((key, value))
                if crate::validate::is_env_key(key)
                    && !needs_shell(value)
                    && !value.contains(['"', '\''])
                    && !after.trim().is_empty() =>
            {
                env.insert(key.to_string(), value.to_string());
                rest = after.trim_start();
            }
            _ => break,
        }
    }
    let command = if needs_shell(rest) {
        vec!["sh".into(), "-c".into(), rest.to_string()]
    } else {
        crate::kamal::shell_words(rest)
    };
    ProcessCommand { env, command }
}

/// The words of a command once `bundle exec`, `sh -c` and env prefixes are set aside.
fn program_words(text: &str) -> Vec<String> {
    let words = crate::kamal::shell_words(text);
    let mut w: &[String] = &words;
    while let Some(first) = w.first() {
        if first.contains('=') && !first.starts_with('-') {
            w = &w[1..];
        } else if first == "bundle" && w.get(1).is_some_and(|s| s == "exec") {
            w = &w[2..];
        } else if first == "exec" || first == "env" {
            w = &w[1..];
        } else {
            break;
        }
    }
    w.to_vec()
}

fn base_name(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// The web server a command starts, if it starts one.
pub fn server_of(text: &str) -> Option<&'static str> {
    let words = program_words(text);
    let first = words.first().map(|w| base_name(w))?;
    let second = words.get(1).map(String::as_str);
    Some(match (first, second) {
        ("puma" | "pumactl", _) => "puma",
        ("rails", Some("server" | "s")) => "rails server",
        ("unicorn" | "unicorn_rails", _) => "unicorn",
        ("passenger", Some("start")) => "passenger",
        ("thrust" | "thruster", _) => "thruster",
        ("falcon", _) => "falcon",
        ("iodine", _) => "iodine",
        ("rackup", _) => "rackup",
        _ => return None,
    })
}

/// A service that a Procfile runs beside the app for development, which in a cluster is an
/// accessory the app reaches by URL, never a process on its localhost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Helper {
    Redis,
    Memcached,
}

pub fn helper_of(text: &str) -> Option<Helper> {
    let words = program_words(text);
    match words.first().map(|w| base_name(w))? {
        "redis-server" => Some(Helper::Redis),
        "memcached" => Some(Helper::Memcached),
        _ => None,
    }
}

/// Whether a command runs a whole Procfile itself (foreman, overmind, hivemind).
pub fn runs_a_procfile(text: &str) -> bool {
    text.split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == ',')
        .any(|w| matches!(base_name(w), "foreman" | "overmind" | "hivemind"))
}

/// The port a server command names, and the env key it defaults from: `-p 4000`, `--port 4000`,
/// `-b tcp://0.0.0.0:4000`, `-p ${PORT:-3000}`, `-p $PORT`.
pub fn port_of(text: &str) -> Option<(Option<u16>, Option<String>)> {
    let words = crate::kamal::shell_words(text);
    let value = words.iter().enumerate().find_map(|(i, w)| {
        for flag in ["-p", "--port", "-b", "--bind", "--listen"] {
            if w == flag {
                return words.get(i + 1).cloned();
            }
            if let Some(v) = w.strip_prefix(&format!("{flag}=")) {
                return Some(v.to_string());
            }
        }
        None
    })?;
    let value = value
        .rsplit(':')
        .next()
        .unwrap_or(&value)
        .trim_end_matches('}')
        .to_string();
    // `${PORT:-3000}` has been split at its `:`; `-3000` is the default.
    if let Some(d) = value.strip_prefix('-') {
        let key = text
            .split("${")
            .nth(1)
            .and_then(|r| r.split(':').next())
            .map(str::to_string);
        return Some((d.parse().ok(), key));
    }
    if let Some(key) = value.strip_prefix('$') {
        let key = key.trim_start_matches('{').to_string();
        return Some((None, Some(key)));
    }
    Some((value.parse().ok(), None))
}

/// A Procfile name as a process name: lowercase, `_` and `.` as `-` (`app_server` ->
/// `app-server`).
pub fn process_name(name: &str) -> Option<String> {
    crate::validate::suggest_label(name, 40)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn commands_as_a_process_manager_runs_them() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: &[Case] = &[
            (
                "bundle exec puma -C config/puma.rb",
                &[],
                &["bundle", "exec", "puma", "-C", "config/puma.rb"],
            ),
            (
                "FORK_PER_JOB=false INTERVAL=0.1 bundle exec resque-pool",
                &[("FORK_PER_JOB", "false"), ("INTERVAL", "0.1")],
                &["bundle", "exec", "resque-pool"],
            ),
            (
                "bundle exec rails s -p ${PORT:-3000}",
                &[],
                &["sh", "-c", "bundle exec rails s -p ${PORT:-3000}"],
            ),
            (
                "bin/rails db:migrate && bin/rails runner 'Setup.run'",
                &[],
                &[
                    "sh",
                    "-c",
                    "bin/rails db:migrate && bin/rails runner 'Setup.run'",
                ],
            ),
            (
                "QUEUE=* bundle exec rake resque:work",
                &[],
                &["sh", "-c", "QUEUE=* bundle exec rake resque:work"],
            ),
            (
                "RAILS_MAX_THREADS=5 bin/jobs",
                &[("RAILS_MAX_THREADS", "5")],
                &["bin/jobs"],
            ),
            (
                "bin/rails runner \"Job.run\"",
                &[],
                &["bin/rails", "runner", "Job.run"],
            ),
        ];
        for (text, env, command) in cases {
            let got = command_of(text);
            let env: BTreeMap<String, String> = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            assert_eq!(
                got,
                ProcessCommand {
                    env,
                    command: words(command)
                },
                "{text}"
            );
        }
    }

    #[test]
    fn servers_helpers_ports_and_names() {
        let servers = [
            ("bundle exec puma -C config/puma.rb", Some("puma")),
            ("bin/rails server -p 4000", Some("rails server")),
            ("bundle exec rails s", Some("rails server")),
            (
                "PORT=3000 ./bin/thrust ./bin/rails server",
                Some("thruster"),
            ),
            ("bundle exec unicorn -c config/unicorn.rb", Some("unicorn")),
            ("passenger start", Some("passenger")),
            ("bundle exec sidekiq", None),
            ("bin/jobs", None),
        ];
        for (text, expected) in servers {
            assert_eq!(server_of(text), expected, "{text}");
        }
        assert_eq!(
            helper_of("redis-server config/redis.conf"),
            Some(Helper::Redis)
        );
        assert_eq!(helper_of("memcached -p 11211"), Some(Helper::Memcached));
        assert_eq!(helper_of("bundle exec sidekiq"), None);
        let ports = [
            ("bin/rails server -p 4000", Some((Some(4000), None))),
            ("bundle exec puma --port=5000", Some((Some(5000), None))),
            (
                "bundle exec puma -b tcp://0.0.0.0:9292",
                Some((Some(9292), None)),
            ),
            (
                "bundle exec rails s -p ${PORT:-3000}",
                Some((Some(3000), Some("PORT".to_string()))),
            ),
            (
                "bundle exec rails s -p $PORT",
                Some((None, Some("PORT".to_string()))),
            ),
            ("bundle exec puma -C config/puma.rb", None),
        ];
        for (text, expected) in ports {
            assert_eq!(port_of(text), expected, "{text}");
        }
        assert_eq!(process_name("app_server").as_deref(), Some("app-server"));
        assert_eq!(process_name("Worker").as_deref(), Some("worker"));
        assert!(runs_a_procfile("bundle exec foreman start -f Procfile"));
        assert!(runs_a_procfile("[\"overmind\", \"start\"]"));
        assert!(!runs_a_procfile("bin/rails server"));
        let lines =
            parse("# dev\nweb: bin/rails s\napp_server: bin/rails server -p 4000\n\nnot a line\n");
        assert_eq!(
            lines
                .iter()
                .map(|l| (l.line, l.name.as_str()))
                .collect::<Vec<_>>(),
            [(2, "web"), (3, "app_server")]
        );
    }
}

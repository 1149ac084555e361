//! `.kamal/secrets`: plain values, references to variables, and shell commands. Commands run
//! only when the caller has the user's consent, and then as Kamal runs them: the whole file in
//! one shell, in order, so that a line can use what an earlier line set (Kamal 2's
//! `SECRETS=$(kamal secrets fetch ...)` then `KEY=$(kamal secrets extract KEY ${SECRETS})`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::SecretsError;
use kubectl_rails_core::validate::is_env_key;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KamalValue {
    Plain(String),
    /// `$VAR` or `${VAR}`: the value of a variable in the environment.
    Reference(String),
    /// Anything a shell must evaluate, such as `$(cat config/master.key)`.
    Command(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KamalLine {
    pub key: String,
    pub value: KamalValue,
    /// Its number in `file`.
    pub line: usize,
    /// The file it is in: `.kamal/secrets-common`, `.kamal/secrets.production`.
    pub file: String,
}

fn reference(value: &str) -> Option<&str> {
    let name = value
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .or_else(|| value.strip_prefix('$'))?;
    is_env_key(name).then_some(name)
}

/// Parses `.kamal/secrets`; a line that is not `KEY=...` is an error with its number.
pub fn parse(text: &str) -> Result<Vec<KamalLine>, SecretsError> {
    parse_file(text, ".kamal/secrets")
}

/// Parses one secrets file, named `file` in errors and in the lines.
pub fn parse_file(text: &str, file: &str) -> Result<Vec<KamalLine>, SecretsError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| SecretsError::BadLine {
            file: file.into(),
            line: i + 1,
            reason,
        };
        // A bad line is named by its number, and by its key only once the key is a valid name:
        // its text may be a pasted secret (`postgres://user:password@host/db?sslmode=require`,
        // a base64 token ending in `=`), as in the `.env` parser.
        let (key, value) = line.split_once('=').ok_or_else(|| {
            bad("expected `KEY=value` (the line's text is not shown: it may be secret)".into())
        })?;
        let key = key.trim().trim_start_matches("export ").trim();
        if !is_env_key(key) {
            return Err(bad("the text before `=` is not a valid environment variable name (letters, digits and `_`, not starting with a digit)".into()));
        }
        let value = value.trim();
        let unquoted = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value);
        let single_quoted = value.starts_with('\'');
        let value = if single_quoted || !unquoted.contains(['$', '`']) {
            KamalValue::Plain(unquoted.to_string())
        } else if let Some(name) = reference(unquoted) {
            KamalValue::Reference(name.to_string())
        } else {
            KamalValue::Command(unquoted.to_string())
        };
        out.push(KamalLine {
            key: key.to_string(),
            value,
            line: i + 1,
            file: file.to_string(),
        });
    }
    Ok(out)
}

/// Single-quotes `text` for sh.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// The shell script that evaluates every line in order and prints the `wanted` values, each
/// ended by a NUL byte. Plain values are quoted; references and commands keep their `$`.
pub fn script(lines: &[KamalLine], wanted: &[String]) -> String {
    let mut out = String::from("set -e\n");
    for line in lines {
        let rhs = match &line.value {
            KamalValue::Plain(v) => quoted(v),
            KamalValue::Reference(var) => format!("\"${{{var}}}\""),
            KamalValue::Command(c) => format!("\"{c}\""),
        };
        out.push_str(&format!("{}={rhs}\n", line.key));
    }
    for key in wanted {
        out.push_str(&format!("printf '%s\\0' \"${{{key}}}\"\n"));
    }
    out
}

/// Runs [`script`] in one `sh` in `dir`, stopping it after `timeout`. A failure carries the
/// shell's stderr (what the failing tool said), never the values.
pub fn evaluate(
    dir: &Path,
    lines: &[KamalLine],
    wanted: &[String],
    timeout: Duration,
) -> Result<BTreeMap<String, String>, SecretsError> {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(script(lines, wanted))
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().map_err(|e| SecretsError::KamalCommands {
        reason: format!("cannot start `sh`: {e}"),
        stderr: String::new(),
    })?;
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    // The readers report through channels and are never joined: a process the commands started
    // outside their process group (`setsid`, a password manager's agent) may hold a pipe open
    // long after the shell is gone. stdout is read only up to the values' NUL bytes.
    let values = wanted.len();
    let (out_tx, out_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut byte = [0u8; 4096];
        while let Some(o) = out.as_mut() {
            match o.read(&mut byte) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&byte[..n]),
            }
            if buf.iter().filter(|b| **b == 0).count() >= values {
                break;
            }
        }
        let _ = out_tx.send(buf);
    });
    let (err_tx, err_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut buf);
        }
        let _ = err_tx.send(buf);
    });
    let started = Instant::now();
    let deadline = started + timeout;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            kill_tree(&mut child);
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // What the readers have by the deadline (a moment more for the shell's last writes).
    let until = deadline.max(Instant::now() + Duration::from_millis(200));
    let left = || until.saturating_duration_since(Instant::now());
    let stdout = out_rx.recv_timeout(left());
    let stderr = if status.as_ref().is_some_and(|s| s.success()) && stdout.is_ok() {
        String::new()
    } else {
        String::from_utf8_lossy(&err_rx.recv_timeout(left()).unwrap_or_default())
            .trim()
            .to_string()
    };
    match (status, stdout) {
        (None, _) => Err(SecretsError::KamalCommands {
            reason: format!("they did not finish within {}s", timeout.as_secs()),
            stderr,
        }),
        (Some(s), _) if !s.success() => Err(SecretsError::KamalCommands {
            reason: match s.code() {
                Some(c) => format!("a command failed (exit {c})"),
                None => "a command was killed".into(),
            },
            stderr,
        }),
        (Some(_), Err(_)) => Err(SecretsError::KamalCommands {
            reason: format!(
                "a process they started still held their output after {}s",
                timeout.as_secs()
            ),
            stderr,
        }),
        (Some(_), Ok(stdout)) => {
            let values: Vec<String> = stdout
                .split(|b| *b == 0)
                .map(|v| {
                    String::from_utf8_lossy(v)
                        .trim_end_matches('\n')
                        .to_string()
                })
                .collect();
            Ok(wanted.iter().cloned().zip(values).collect())
        }
    }
}

/// Stops the shell and everything it started (a password manager's CLI waiting on a prompt).
fn kill_tree(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shell_in_order_as_kamal_does() {
        let lines = parse(
            "SECRETS=$(printf '%s' 'A=a-1;B=b 2')\nA=$(printf '%s' \"${SECRETS%%;*}\")\nPLAIN='it''s'\nB=${SECRETS#*B=}\nC=plain text\n",
        )
        .unwrap();
        let wanted: Vec<String> = ["A", "B", "C"].map(String::from).to_vec();
        let values = evaluate(Path::new("."), &lines, &wanted, Duration::from_secs(10)).unwrap();
        assert_eq!(values["A"], "A=a-1");
        assert_eq!(values["B"], "b 2");
        assert_eq!(values["C"], "plain text");
    }

    #[test]
    fn a_failure_shows_stderr_and_a_hang_is_stopped() {
        let lines = parse("A=$(echo 'vault locked' >&2; exit 7)\nB=later\n").unwrap();
        let e = evaluate(
            Path::new("."),
            &lines,
            &["B".into()],
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(e.to_string().contains("exit 7"), "{e}");
        assert!(e.to_string().contains("vault locked"), "{e}");
        let lines = parse("A=$(sleep 30)\n").unwrap();
        let started = Instant::now();
        let e = evaluate(
            Path::new("."),
            &lines,
            &["A".into()],
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(e.to_string().contains("within 1s"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    /// A process the commands start outside their process group (`setsid`) and that holds
    /// their output does not keep the plugin past `--timeout`, on a hang or on success (#27 L5).
    #[cfg(unix)]
    #[test]
    fn an_escaped_process_holding_the_output_does_not_outlast_the_timeout() {
        let cases = [
            // Hangs: the substitution waits for the escaped sleep, which holds stderr too.
            ("A=$(sh -c 'setsid sleep 20 &'; echo x)\n", Err("within 1s")),
            // Succeeds: the escaped sleep holds stdout and stderr after the shell is done.
            (
                "A=x\nB=$(setsid sleep 20 >/dev/null </dev/null & echo y)\n",
                Ok("x"),
            ),
        ];
        for (text, want) in cases {
            let lines = parse(text).unwrap();
            let started = Instant::now();
            let got = evaluate(
                Path::new("."),
                &lines,
                &["A".into()],
                Duration::from_secs(1),
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{text}: {:?}",
                started.elapsed()
            );
            match (got, want) {
                (Ok(values), Ok(a)) => assert_eq!(values["A"], a, "{text}"),
                (Err(e), Err(said)) => assert!(e.to_string().contains(said), "{text}: {e}"),
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
    }

    #[test]
    fn kinds_of_values() {
        let lines = parse(
            "# c\nA=plain\nB=$KAMAL_REGISTRY_PASSWORD\nC=${OTHER}\nD=$(cat config/master.key)\nE='$NOT_EXPANDED'\nF=\"quoted\"\n",
        )
        .unwrap();
        let values: Vec<_> = lines
            .iter()
            .map(|l| (l.key.as_str(), l.value.clone()))
            .collect();
        assert_eq!(
            values,
            [
                ("A", KamalValue::Plain("plain".into())),
                ("B", KamalValue::Reference("KAMAL_REGISTRY_PASSWORD".into())),
                ("C", KamalValue::Reference("OTHER".into())),
                ("D", KamalValue::Command("$(cat config/master.key)".into())),
                ("E", KamalValue::Plain("$NOT_EXPANDED".into())),
                ("F", KamalValue::Plain("quoted".into())),
            ]
        );
    }

    #[test]
    fn bad_line_has_its_number() {
        let e = parse("A=1\nnope\n").unwrap_err();
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    /// A bad line may be a pasted secret: no 8 characters of it appear in the error.
    #[test]
    fn a_bad_line_never_shows_any_of_its_text() {
        for line in [
            "postgres://u:Pa55w0rd-Secret@db.internal/app",
            "postgres://u:Pa55w0rd-Secret@db.internal/app?sslmode=require",
            "c2Vj+cmV0/LVBhNTV3MHJkLVNlY3JldA==",
            "export Pa55w0rd-Secret=1",
            "MY-Pa55w0rd-Secret=x",
        ] {
            let err = parse(&format!("A=1\n{line}\n")).unwrap_err().to_string();
            assert!(err.starts_with("`.kamal/secrets` line 2: "), "{err}");
            for start in 0..line.len().saturating_sub(8) {
                let slice = &line[start..start + 8];
                assert!(
                    !err.contains(slice),
                    "`{slice}` of the line shows in: {err}"
                );
            }
        }
    }
}

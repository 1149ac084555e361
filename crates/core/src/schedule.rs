//! `config/schedule.rb` of the whenever gem: its `every` blocks become cron entries. Only the
//! common forms are read (`every :hour`, `every :day, at: '4:30 am'`, `every 1.day, at: ...`,
//! `every 10.minutes`, `every :monday`, cron strings; `runner`, `rake`, `command`); any other line
//! is reported, never guessed.

/// One job of the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// A name for the CronJob, from the command.
    pub name: String,
    /// Five-field cron syntax.
    pub schedule: String,
    pub command: Vec<String>,
}

/// What the schedule holds: the jobs read, and the lines that were not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    pub jobs: Vec<Job>,
    /// `line N: text` of each line that could not be read.
    pub skipped: Vec<String>,
}

/// The `at:` of an `every` line, as (hour, minute): `'4:30 am'`, `'12pm'`, `'16:00'`.
fn at_time(text: &str) -> Option<(u32, u32)> {
    let t = text.trim().to_ascii_lowercase().replace(' ', "");
    let (t, pm) = if let Some(t) = t.strip_suffix("pm") {
        (t.to_string(), Some(true))
    } else if let Some(t) = t.strip_suffix("am") {
        (t.to_string(), Some(false))
    } else {
        (t, None)
    };
    let (h, m) = match t.split_once(':') {
        Some((h, m)) => (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?),
        None => (t.parse::<u32>().ok()?, 0),
    };
    let h = match (pm, h) {
        (Some(true), 12) => 12,
        (Some(true), h) => h + 12,
        (Some(false), 12) => 0,
        (_, h) => h,
    };
    (h < 24 && m < 60).then_some((h, m))
}

/// The cron expression of an `every` argument, with its optional `at:`.
fn cron_of(every: &str, at: Option<(u32, u32)>) -> Option<String> {
    let (h, m) = at.unwrap_or((0, 0));
    let every = every.trim();
    if let Some(quoted) = every
        .strip_prefix(['\'', '"'])
        .and_then(|e| e.strip_suffix(['\'', '"']))
    {
        return (quoted.split_whitespace().count() == 5).then(|| quoted.to_string());
    }
    let day_of_week = |d: &str| match d {
        ":sunday" => Some("0"),
        ":monday" => Some("1"),
        ":tuesday" => Some("2"),
        ":wednesday" => Some("3"),
        ":thursday" => Some("4"),
        ":friday" => Some("5"),
        ":saturday" => Some("6"),
        ":weekday" => Some("1-5"),
        ":weekend" => Some("0,6"),
        _ => None,
    };
    if let Some(d) = day_of_week(every) {
        return Some(format!("{m} {h} * * {d}"));
    }
    match every {
        ":minute" => return Some("* * * * *".into()),
        ":hour" | ":hourly" => return Some(format!("{m} * * * *")),
        ":day" | ":daily" => return Some(format!("{m} {h} * * *")),
        ":week" | ":weekly" => return Some(format!("{m} {h} * * 0")),
        ":month" | ":monthly" => return Some(format!("{m} {h} 1 * *")),
        ":year" | ":yearly" | ":annually" => return Some(format!("{m} {h} 1 1 *")),
        _ => {}
    }
    let (n, unit) = every.split_once('.')?;
    let n: u32 = n.trim().parse().ok()?;
    match unit.trim() {
        "minute" | "minutes" if n > 0 && n < 60 => Some(format!("*/{n} * * * *")),
        "hour" | "hours" if n == 1 => Some(format!("{m} * * * *")),
        "hour" | "hours" if n > 1 && n < 24 => Some(format!("{m} */{n} * * *")),
        "day" | "days" if n == 1 => Some(format!("{m} {h} * * *")),
        "day" | "days" if n > 1 && n < 32 => Some(format!("{m} {h} */{n} * *")),
        "week" | "weeks" if n == 1 => Some(format!("{m} {h} * * 0")),
        "month" | "months" if n == 1 => Some(format!("{m} {h} 1 * *")),
        _ => None,
    }
}

/// The command of a job line: `runner "X"`, `rake "t"`, `command "sh"`.
fn command_of(line: &str) -> Option<(Vec<String>, String)> {
    let (verb, rest) = line.trim().split_once(char::is_whitespace)?;
    let arg = rest
        .trim()
        .strip_prefix(['\'', '"'])?
        .strip_suffix(['\'', '"'])?
        .to_string();
    let command = match verb {
        "runner" => vec!["bin/rails".into(), "runner".into(), arg.clone()],
        "rake" => vec!["bin/rails".into(), arg.clone()],
        "command" => vec!["sh".into(), "-c".into(), arg.clone()],
        _ => return None,
    };
    Some((command, arg))
}

/// A DNS label from a command: `Report.send_daily` becomes `report-send-daily`.
fn name_of(arg: &str) -> String {
    let mut out = String::new();
    for c in arg.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let out: String = out.trim_matches('-').chars().take(40).collect();
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() { "job".into() } else { out }
}

/// Reads the `every` blocks of a whenever schedule.
pub fn parse(text: &str) -> Schedule {
    let mut out = Schedule::default();
    let mut current: Option<Option<String>> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.split(" #").next().unwrap_or(raw).trim();
        if line.is_empty()
            || line.starts_with('#')
            || line.starts_with("set ")
            || line.starts_with("env ")
            || line.starts_with("job_type ")
        {
            continue;
        }
        if let Some(rest) = line.strip_prefix("every ") {
            let rest = rest.trim_end_matches("do").trim().trim_end_matches(',');
            let (every, at) = match rest.split_once(", at:") {
                Some((e, a)) => (e, at_time(a.trim().trim_matches(['\'', '"']))),
                None => (rest, None),
            };
            let cron = cron_of(every, at);
            if cron.is_none() {
                out.skipped.push(format!("line {n}: {line}"));
            }
            current = Some(cron);
            continue;
        }
        if line == "end" {
            current = None;
            continue;
        }
        match (&current, command_of(line)) {
            (Some(Some(schedule)), Some((command, arg))) => {
                let mut name = name_of(&arg);
                if out.jobs.iter().any(|j| j.name == name) {
                    name = format!("{name}-{}", out.jobs.len() + 1);
                }
                out.jobs.push(Job {
                    name,
                    schedule: schedule.clone(),
                    command,
                });
            }
            // The block's `every` was already reported.
            (Some(None), _) => {}
            _ => out.skipped.push(format!("line {n}: {line}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whenever_blocks_become_cron_entries() {
        let s = parse(
            "# Learn more: http://github.com/javan/whenever\nset :output, \"log/cron.log\"\n\nevery 1.day, at: '4:30 am' do\n  runner \"Report.send_daily\"\nend\n\nevery :hour do\n  rake \"cache:sweep\"\nend\n\nevery 10.minutes do\n  command \"echo hi\"\nend\n\nevery '0 3 * * 1' do\n  runner \"Cleanup.run\"\nend\n\nevery :sunday, at: '12pm' do\n  runner \"Digest.weekly\"\nend\n\nevery :reboot do\n  runner \"Boot.up\"\nend\n",
        );
        let got: Vec<(&str, &str, Vec<&str>)> = s
            .jobs
            .iter()
            .map(|j| {
                (
                    j.name.as_str(),
                    j.schedule.as_str(),
                    j.command.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "report-send-daily",
                    "30 4 * * *",
                    vec!["bin/rails", "runner", "Report.send_daily"]
                ),
                ("cache-sweep", "0 * * * *", vec!["bin/rails", "cache:sweep"]),
                ("echo-hi", "*/10 * * * *", vec!["sh", "-c", "echo hi"]),
                (
                    "cleanup-run",
                    "0 3 * * 1",
                    vec!["bin/rails", "runner", "Cleanup.run"]
                ),
                (
                    "digest-weekly",
                    "0 12 * * 0",
                    vec!["bin/rails", "runner", "Digest.weekly"]
                ),
            ]
        );
        assert_eq!(s.skipped, ["line 24: every :reboot do"]);
    }

    #[test]
    fn times_of_day() {
        for (text, want) in [
            ("4:30 am", (4, 30)),
            ("12pm", (12, 0)),
            ("12:15am", (0, 15)),
            ("16:00", (16, 0)),
            ("11 pm", (23, 0)),
        ] {
            assert_eq!(at_time(text), Some(want), "{text}");
        }
        assert_eq!(at_time("25:00"), None);
    }
}

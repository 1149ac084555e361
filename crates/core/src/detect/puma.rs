//! `config/puma.rb`: the port (or bind address) Puma listens on, with its `ENV.fetch` default,
//! whether it binds loopback only, and what runs inside Puma (Solid Queue's plugin, Sidekiq
//! embedded).

/// Facts from `config/puma.rb`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Puma {
    /// The port and the line it is on.
    pub port: Option<(u16, usize)>,
    /// The env key that overrides the port (`PORT`).
    pub port_env: Option<String>,
    /// Puma binds a loopback address unless an env key says otherwise: (key, line).
    pub loopback_bind: Option<(Option<String>, usize)>,
    /// `Sidekiq.configure_embed`: Sidekiq runs inside Puma.
    pub sidekiq_embedded: bool,
    /// `plugin :solid_queue`: Solid Queue runs inside Puma (often only when an env key is set).
    pub solid_queue_plugin: bool,
    /// `workers` defaults to the machine's core count (`Concurrent.physical_processor_count`).
    pub workers_per_core: bool,
}

/// The first quoted string after `key` in `text`: `ENV.fetch("PORT"` -> `PORT`.
fn quoted_after<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let rest = &text[text.find(key)? + key.len()..];
    let rest = rest.trim_start_matches(['(', '[', ' ']);
    let q = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    rest[1..].split(q).next()
}

/// The first number on a line.
fn first_number(text: &str) -> Option<u16> {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())?
        .parse()
        .ok()
}

/// The number a line ends with, or its `ENV.fetch` default.
fn number_in(text: &str) -> Option<u16> {
    let digits: Vec<&str> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    digits.last()?.parse().ok()
}

pub fn parse(text: &str) -> Puma {
    let mut out = Puma::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('#') {
            continue;
        }
        let n = i + 1;
        if line.starts_with("port ") || line.starts_with("port(") {
            out.port_env = quoted_after(line, "ENV.fetch")
                .or_else(|| quoted_after(line, "ENV["))
                .map(str::to_string);
            // The first argument: `port ENV.fetch("PORT", 3000), "0.0.0.0"` listens on 3000.
            out.port = first_number(line).map(|p| (p, n));
        }
        if line.starts_with("bind ") || line.starts_with("bind(") {
            // `bind "tcp://#{ENV.fetch("BIND_ADDRESS", "127.0.0.1")}:#{ENV.fetch("PORT", 3000)}"`
            let mut host_env = None;
            let host = match line.find("tcp://").map(|i| &line[i + 6..]) {
                Some(rest) if rest.starts_with("#{") => {
                    host_env = quoted_after(rest, "ENV.fetch")
                        .or_else(|| quoted_after(rest, "ENV["))
                        .map(str::to_string);
                    let first = rest.split('}').next().unwrap_or("");
                    first
                        .rsplit(['"', '\''])
                        .find(|s| s.contains('.') || *s == "localhost")
                        .unwrap_or("")
                        .to_string()
                }
                Some(rest) => rest.split(':').next().unwrap_or("").to_string(),
                None => String::new(),
            };
            if host.starts_with("127.") || host == "localhost" || host == "::1" {
                out.loopback_bind = Some((host_env, n));
            }
            if let Some(port_part) = line.rsplit_once(':').map(|(_, p)| p) {
                if let Some(p) = number_in(port_part) {
                    out.port = Some((p, n));
                }
                if port_part.contains("ENV") {
                    out.port_env = quoted_after(port_part, "ENV.fetch")
                        .or_else(|| quoted_after(port_part, "ENV["))
                        .map(str::to_string);
                }
            }
        }
        if line.contains("processor_count")
            && (line.starts_with("workers") || line.contains("WEB_CONCURRENCY"))
        {
            out.workers_per_core = true;
        }
        if line.contains("Sidekiq.configure_embed") {
            out.sidekiq_embedded = true;
        }
        if line.starts_with("plugin :solid_queue") || line.starts_with("plugin(:solid_queue") {
            out.solid_queue_plugin = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_binds_and_what_runs_inside() {
        let p = parse(
            "threads 3, 3\nport ENV.fetch(\"PORT\", 3000)\nplugin :solid_queue if ENV[\"SOLID_QUEUE_IN_PUMA\"]\n",
        );
        assert_eq!(p.port, Some((3000, 2)));
        assert_eq!(p.port_env.as_deref(), Some("PORT"));
        assert!(p.solid_queue_plugin);
        assert_eq!(
            parse("port ENV.fetch(\"PORT\") { 4000 }\n").port,
            Some((4000, 1))
        );
        let p = parse(
            "bind \"tcp://#{ENV.fetch(\"BIND_ADDRESS\", \"127.0.0.1\")}:#{ENV.fetch(\"PORT\", 5000)}\"\n",
        );
        assert_eq!(p.loopback_bind, Some((Some("BIND_ADDRESS".into()), 1)));
        assert_eq!(p.port, Some((5000, 1)));
        let p = parse("bind 'tcp://0.0.0.0:9292'\n");
        assert_eq!((p.port, p.loopback_bind), (Some((9292, 1)), None));
        assert_eq!(
            parse("bind 'tcp://127.0.0.1:3000'\n").loopback_bind,
            Some((None, 1))
        );
        assert!(parse("Sidekiq.configure_embed do |config|\nend\n").sidekiq_embedded);
        assert!(
            parse(
                "workers ENV.fetch(\"WEB_CONCURRENCY\") { Concurrent.physical_processor_count }\n"
            )
            .workers_per_core
        );
        assert!(parse("worker_count = ENV.fetch(\"WEB_CONCURRENCY\") { Concurrent.processor_count }\nworkers worker_count\n").workers_per_core);
        assert!(!parse("workers ENV.fetch(\"WEB_CONCURRENCY\") { 2 }\n").workers_per_core);
        assert_eq!(parse("# port 4000\n").port, None);
        assert_eq!(
            parse("port ENV.fetch(\"PORT\", 3000), \"0.0.0.0\"\n").port,
            Some((3000, 1))
        );
    }
}

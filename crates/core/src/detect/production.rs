//! `config/environments/production.rb` (and `config/application.rb`): what the app does in
//! production that the cluster must match. Lines that are comments do not count.

/// Facts from the production environment file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Production {
    /// `config.force_ssl = true`: every plain-HTTP request is redirected to HTTPS.
    pub force_ssl: bool,
    /// The app logs to STDOUT only when `RAILS_LOG_TO_STDOUT` is set (Rails 5 to 7.0).
    pub log_to_stdout_env: bool,
    /// The app serves `public/` only when `RAILS_SERVE_STATIC_FILES` is set (Rails 5 to 7.0).
    pub serve_static_env: bool,
    /// `config.active_storage.service`: the service name, and the env key it is read from.
    pub active_storage_service: Option<String>,
    /// good_job runs inside the web process (`execution_mode = :async`).
    pub good_job_async: bool,
    /// A logger writes to STDOUT (`Logger.new(STDOUT)`, `logger($stdout)`); otherwise Rails
    /// writes `log/production.log`.
    pub logs_to_stdout: bool,
    /// `config.active_record.dump_schema_after_migration = false`: `db:migrate` leaves
    /// `db/schema.rb` alone (Rails dumps it otherwise).
    pub schema_dump_off: bool,
    /// `config.asset_host` (or `action_controller.asset_host`) is set: a CDN serves the assets.
    pub asset_host: bool,
    /// `config.assets.prefix`: the URL path of the assets, when not `/assets`.
    pub assets_prefix: Option<String>,
}

/// The code of a Ruby line, without its comment.
fn code(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with('#') {
        return "";
    }
    match t.find(" #") {
        Some(i) if !t[..i].contains(['"', '\'']) => &t[..i],
        _ => t,
    }
}

/// Whether a Ruby boolean expression is true with its env keys unset: `true`,
/// `ENV["DISABLE_SSL"].blank?`, `!(ENV["FORCE_SSL"] == "false")`,
/// `cast(ENV.fetch("RAILS_FORCE_SSL", true))`, `ENV.fetch("X", "true") == "true"`.
fn true_when_env_unset(value: &str) -> bool {
    let v = value.replace('\'', "\"");
    v == "true"
        || v.ends_with(".blank?")
        || (v.starts_with('!') && v.contains("==\"false\""))
        || ((v.contains(",true)") || v.contains(",\"true\")") || v.contains("{true}"))
            && (!v.contains("==") || v.ends_with("==\"true\"")))
}

/// Reads the production environment file (and any other config file given after it).
pub fn parse(texts: &[&str]) -> Production {
    let mut out = Production::default();
    for text in texts {
        for line in text.lines().map(code) {
            let compact: String = line.split_whitespace().collect();
            if let Some(value) = compact.strip_prefix("config.force_ssl=") {
                out.force_ssl = true_when_env_unset(value);
            }
            if line.contains("RAILS_LOG_TO_STDOUT") {
                out.log_to_stdout_env = true;
            }
            if line.contains("STDOUT") || line.contains("$stdout") {
                out.logs_to_stdout = true;
            }
            if compact.contains("dump_schema_after_migration=false") {
                out.schema_dump_off = true;
            }
            if compact.contains("config.asset_host=")
                || compact.contains("action_controller.asset_host=")
            {
                out.asset_host = true;
            }
            if let Some(value) = compact
                .split_once("config.assets.prefix=")
                .map(|(_, v)| v.trim_matches(['"', '\'']))
                && value.starts_with('/')
            {
                out.assets_prefix = Some(value.to_string());
            }
            if line.contains("RAILS_SERVE_STATIC_FILES") {
                out.serve_static_env = true;
            }
            if compact.contains("good_job.execution_mode=:async")
                || compact.contains("execution_mode=:async")
            {
                out.good_job_async = true;
            }
            if let Some(value) = compact.strip_prefix("config.active_storage.service=") {
                let value = value.trim_end_matches(".to_sym");
                let name = if let Some(sym) = value.strip_prefix(':') {
                    Some(sym.to_string())
                } else if value.starts_with("ENV") {
                    // `ENV.fetch("ACTIVE_STORAGE_SERVICE", "local")`: the default.
                    value
                        .split([',', '{'])
                        .nth(1)
                        .map(|d| d.trim_matches(|c: char| "\"':}) ".contains(c)).to_string())
                } else {
                    Some(value.trim_matches(['"', '\'']).to_string())
                };
                out.active_storage_service = name.filter(|n| !n.is_empty());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_production_rb_says() {
        type Holds = fn(&Production) -> bool;
        let cases: &[(&str, Holds)] = &[
            ("  config.force_ssl = true\n", |p| p.force_ssl),
            ("  # config.force_ssl = true\n", |p| !p.force_ssl),
            ("  config.force_ssl = false\n", |p| !p.force_ssl),
            ("  config.force_ssl  = ENV[\"DISABLE_SSL\"].blank?\n", |p| {
                p.force_ssl
            }),
            (
                "  config.force_ssl = !(ENV[\"FORCE_SSL\"] == \"false\")\n",
                |p| p.force_ssl,
            ),
            (
                "  config.force_ssl = ActiveModel::Type::Boolean.new.cast(ENV.fetch(\"RAILS_FORCE_SSL\", true))\n",
                |p| p.force_ssl,
            ),
            ("  config.force_ssl = ENV['FORCE_SSL'] == 'true'\n", |p| {
                !p.force_ssl
            }),
            (
                "  config.force_ssl = ENV['FORCE_SSL'].present? && ENV['FORCE_SSL'] != 'false'\n",
                |p| !p.force_ssl,
            ),
            (
                "  if ENV[\"RAILS_LOG_TO_STDOUT\"].present?\n    logger = ActiveSupport::Logger.new(STDOUT)\n  end\n",
                |p| p.log_to_stdout_env,
            ),
            (
                "  config.logger = ActiveSupport::TaggedLogging.logger(STDOUT)\n",
                |p| !p.log_to_stdout_env,
            ),
            (
                "  config.public_file_server.enabled = ENV[\"RAILS_SERVE_STATIC_FILES\"].present?\n",
                |p| p.serve_static_env,
            ),
            ("  config.active_storage.service = :local\n", |p| {
                p.active_storage_service.as_deref() == Some("local")
            }),
            (
                "  config.active_storage.service = ENV.fetch(\"ACTIVE_STORAGE_SERVICE\", \"local\").to_sym\n",
                |p| p.active_storage_service.as_deref() == Some("local"),
            ),
            ("  config.active_storage.service = :amazon\n", |p| {
                p.active_storage_service.as_deref() == Some("amazon")
            }),
            ("  config.good_job.execution_mode = :async\n", |p| {
                p.good_job_async
            }),
            // Where the log goes: STDOUT, or log/production.log (a folder the app writes).
            (
                "  config.logger = ActiveSupport::TaggedLogging.logger(STDOUT)\n",
                |p| p.logs_to_stdout,
            ),
            ("  config.logger = Logger.new($stdout)\n", |p| {
                p.logs_to_stdout
            }),
            ("  # config.logger = Logger.new(STDOUT)\n", |p| {
                !p.logs_to_stdout
            }),
            ("  config.log_level = :info\n", |p| !p.logs_to_stdout),
            // Whether db:migrate writes db/schema.rb.
            (
                "  config.active_record.dump_schema_after_migration = false\n",
                |p| p.schema_dump_off,
            ),
            (
                "  config.active_record.dump_schema_after_migration = true\n",
                |p| !p.schema_dump_off,
            ),
            // A CDN serves the assets, and where they are.
            ("  config.asset_host = \"https://cdn.example.com\"\n", |p| {
                p.asset_host
            }),
            (
                "  config.action_controller.asset_host = ENV[\"ASSET_HOST\"]\n",
                |p| p.asset_host,
            ),
            (
                "  # config.asset_host = \"http://assets.example.com\"\n",
                |p| !p.asset_host,
            ),
            ("  config.assets.prefix = \"/packs\"\n", |p| {
                p.assets_prefix.as_deref() == Some("/packs")
            }),
            (
                "Rails.application.config.assets.prefix = '/static'\n",
                |p| p.assets_prefix.as_deref() == Some("/static"),
            ),
            ("  config.assets.compile = false\n", |p| {
                p.assets_prefix.is_none()
            }),
        ];
        for (text, holds) in cases {
            assert!(holds(&parse(&[text])), "{text}");
        }
    }
}

//! `config/database.yml`'s production entry, evaluated as Rails does (ERB first, then YAML with
//! its `<<: *default` merges): the adapter, the databases (Rails 8 has `primary`, `cache`,
//! `queue`, `cable`), and the env keys it reads, with or without a default.

use std::collections::BTreeMap;

use serde_json::Value;

use super::erb;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    Postgres,
    Mysql,
    Sqlite,
}

impl Database {
    pub fn from_adapter(adapter: &str) -> Option<Self> {
        Some(match adapter {
            "postgresql" | "postgres" | "postgis" => Self::Postgres,
            "mysql2" | "trilogy" | "mysql" => Self::Mysql,
            "sqlite3" | "sqlite" => Self::Sqlite,
            _ => return None,
        })
    }

    /// The database a driver gem talks to (`pg`, `mysql2`, `trilogy`, `sqlite3`).
    pub fn from_driver(gem: &str) -> Option<Self> {
        match gem {
            "pg" => Some(Self::Postgres),
            other => Self::from_adapter(other),
        }
    }

    /// The adapter from a `postgres://` style URL.
    pub fn from_url(url: &str) -> Option<Self> {
        let scheme = url.split("://").next()?;
        Self::from_adapter(scheme)
    }

    pub fn label(&self) -> &'static str {
        match self {
            Self::Postgres => "PostgreSQL",
            Self::Mysql => "MySQL",
            Self::Sqlite => "SQLite",
        }
    }
}

/// What the production entry says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductionDatabase {
    /// The primary database's adapter.
    pub adapter: Option<Database>,
    /// Where the adapter came from (`config/database.yml`, or `ENV.fetch("DATABASE_ADAPTER",
    /// "sqlite") in config/database.yml`).
    pub adapter_from: String,
    /// Database names when there are several (`primary`, `cache`, `queue`, `cable`).
    pub names: Vec<String>,
    /// Databases whose schema is loaded from a schema file rather than migrated
    /// (Solid Cache/Queue/Cable's `migrations_paths: db/queue_migrate`).
    pub schema_loaded: Vec<String>,
    /// SQLite files (`storage/production.sqlite3`).
    pub sqlite_files: Vec<String>,
    /// Env keys read without a default: the app needs them.
    pub required_env: Vec<String>,
    /// Env keys read with a default: (key, default).
    pub optional_env: Vec<(String, String)>,
}

/// Keys of `text`'s `production:` section that it reads from `ENV`, with the sections it
/// merges (`<<: *default`).
pub(crate) fn production_env_keys(text: &str) -> Vec<String> {
    let section_of = |line: &str| line.split(':').next().unwrap_or("").to_string();
    // Top-level anchors (`default: &default`) and the sections production merges.
    let mut anchors = BTreeMap::new();
    let mut current = String::new();
    let mut merged = vec!["production".to_string()];
    for line in text.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() && !line.starts_with('#') {
            current = section_of(line);
            if let Some(anchor) = line.split('&').nth(1) {
                anchors.insert(anchor.trim().to_string(), current.clone());
            }
        } else if current == "production"
            && let Some(alias) = line.trim().strip_prefix("<<: *")
            && let Some(section) = anchors.get(alias.trim())
        {
            merged.push(section.clone());
        }
    }
    let mut in_production = false;
    let mut keys = Vec::new();
    for line in text.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() && !line.starts_with('#') {
            in_production = merged.contains(&section_of(line));
            continue;
        }
        if !in_production {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("ENV") {
            rest = &rest[i + 3..];
            let after = rest
                .trim_start_matches(".fetch")
                .trim_start_matches(['[', '(']);
            if let Some(quote) = after.chars().next().filter(|c| *c == '"' || *c == '\'')
                && let Some(key) = after[1..].split(quote).next()
                && crate::validate::is_env_key(key)
                && !keys.iter().any(|k| k == key)
            {
                keys.push(key.to_string());
            }
        }
    }
    keys
}

/// `config/mongoid.yml`'s production entry: the env keys it reads, required first (a URI read
/// with fallbacks `ENV["A"] || ENV["B"]` needs one of them: the first is taken as required).
pub fn mongoid_env(text: &str) -> (Vec<String>, Vec<String>) {
    let keys = production_env_keys(text);
    let defaults: BTreeMap<String, String> = erb::evaluate(text, &BTreeMap::new())
        .map(|e| e.defaults.into_iter().collect())
        .unwrap_or_default();
    let (mut required, mut optional): (Vec<String>, Vec<String>) =
        keys.into_iter().partition(|k| !defaults.contains_key(k));
    if required.len() > 1 {
        // `ENV["MONGODB_URI"] || ENV["MONGO_URL"]`: any one of them will do.
        optional.extend(required.drain(1..));
    }
    (required, optional)
}

/// Reads `database.yml`. Never fails: what cannot be read is simply not known.
pub fn parse(text: &str) -> ProductionDatabase {
    let mut out = ProductionDatabase::default();
    let evaluated = erb::evaluate(text, &BTreeMap::new()).ok();
    let defaults: BTreeMap<String, String> = evaluated
        .as_ref()
        .map(|e| e.defaults.iter().cloned().collect())
        .unwrap_or_default();
    for key in production_env_keys(text) {
        match defaults.get(&key) {
            Some(d) => out.optional_env.push((key, d.clone())),
            None => out.required_env.push(key),
        }
    }
    let Some(root) = evaluated.and_then(|e| serde_saphyr::from_str::<Value>(&e.text).ok()) else {
        return out;
    };
    let Some(production) = root.get("production") else {
        return out;
    };
    // Several databases: every value is a mapping with an adapter or a database.
    let entries: Vec<(String, &Value)> = match production.as_object() {
        Some(m)
            if !m.is_empty() && m.values().all(|v| v.is_object()) && !m.contains_key("adapter") =>
        {
            // The primary database first: the maps here are sorted by name.
            let mut entries: Vec<(String, &Value)> =
                m.iter().map(|(k, v)| (k.clone(), v)).collect();
            entries.sort_by_key(|(k, _)| k != "primary");
            entries
        }
        _ => vec![("primary".to_string(), production)],
    };
    if entries.len() > 1 {
        out.names = entries.iter().map(|(n, _)| n.clone()).collect();
    }
    for (i, (name, entry)) in entries.iter().enumerate() {
        let adapter = entry
            .get("adapter")
            .and_then(Value::as_str)
            .and_then(Database::from_adapter)
            .or_else(|| {
                entry
                    .get("url")
                    .and_then(Value::as_str)
                    .and_then(Database::from_url)
            });
        if i == 0 {
            out.adapter = adapter;
            let raw_adapter = text
                .lines()
                .find(|l| l.trim_start().starts_with("adapter:") && l.contains("ENV"));
            out.adapter_from = match raw_adapter {
                Some(l) => format!("`{}` in config/database.yml", l.trim()),
                None => "config/database.yml".into(),
            };
        }
        if let Some(paths) = entry.get("migrations_paths").and_then(Value::as_str)
            && paths != "db/migrate"
        {
            out.schema_loaded.push(name.clone());
        }
        if adapter == Some(Database::Sqlite)
            && let Some(file) = entry.get("database").and_then(Value::as_str)
            && file != ":memory:"
        {
            out.sqlite_files.push(file.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAILS8: &str = "default: &default\n  adapter: sqlite3\n  pool: <%= ENV.fetch(\"RAILS_MAX_THREADS\") { 5 } %>\n  timeout: 5000\n\nproduction:\n  primary:\n    <<: *default\n    database: storage/production.sqlite3\n  cache:\n    <<: *default\n    database: storage/production_cache.sqlite3\n    migrations_paths: db/cache_migrate\n  queue:\n    <<: *default\n    database: storage/production_queue.sqlite3\n    migrations_paths: db/queue_migrate\n";

    #[test]
    fn driver_gems_name_their_database() {
        let cases = [
            ("pg", Some(Database::Postgres)),
            ("mysql2", Some(Database::Mysql)),
            ("trilogy", Some(Database::Mysql)),
            ("sqlite3", Some(Database::Sqlite)),
            ("redis", None),
        ];
        for (gem, db) in cases {
            assert_eq!(Database::from_driver(gem), db, "{gem}");
        }
    }

    #[test]
    fn the_production_entry_decides() {
        let d = parse(RAILS8);
        assert_eq!(d.adapter, Some(Database::Sqlite));
        assert_eq!(d.names, ["primary", "cache", "queue"]);
        assert_eq!(d.schema_loaded, ["cache", "queue"]);
        assert_eq!(d.sqlite_files.len(), 3);

        let cases = [
            (
                "default: &default\n  adapter: postgresql\n  password: <%= ENV[\"DEV_PW\"] %>\nproduction:\n  <<: *default\n  url: <%= ENV['DATABASE_URL'] %>\n  password: <%= ENV.fetch(\"SHOP_DATABASE_PASSWORD\") { nil } %>\n  pool: <%= ENV.fetch(\"DB_POOL\", 5) %>\n",
                Some(Database::Postgres),
                vec!["DEV_PW", "DATABASE_URL"],
                vec!["SHOP_DATABASE_PASSWORD", "DB_POOL"],
            ),
            // The adapter from an ENV default: the default decides, not the Gemfile.
            (
                "default: &default\n  adapter: <%= ENV.fetch(\"DATABASE_ADAPTER\", \"sqlite3\") %>\nproduction:\n  <<: *default\n  database: storage/production.sqlite3\n",
                Some(Database::Sqlite),
                vec![],
                vec!["DATABASE_ADAPTER"],
            ),
            (
                "production:\n  adapter: trilogy\n  host: <%= ENV[\"DB_HOST\"] %>\n",
                Some(Database::Mysql),
                vec!["DB_HOST"],
                vec![],
            ),
            (
                "production:\n  url: <%= ENV.fetch('DATABASE_URL', 'postgres://localhost/app') %>\n",
                Some(Database::Postgres),
                vec![],
                vec!["DATABASE_URL"],
            ),
        ];
        for (text, adapter, required, optional) in cases {
            let d = parse(text);
            assert_eq!(d.adapter, adapter, "{text}");
            assert_eq!(d.required_env, required, "{text}");
            assert_eq!(
                d.optional_env
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
                optional,
                "{text}"
            );
        }
    }
}

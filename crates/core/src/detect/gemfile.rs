//! The Gemfile and its lock: the Rails version, the job backend, the ORM, the database driver
//! and the gems that need Redis.

/// Gem names a Gemfile requires.
pub fn gem_names(gemfile: &str) -> Vec<String> {
    gemfile
        .lines()
        .filter_map(|l| l.trim().strip_prefix("gem "))
        .filter_map(|rest| {
            let rest = rest.trim_start();
            let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
            rest[1..].split(quote).next().map(str::to_string)
        })
        .collect()
}

/// The locked version of a gem: `    rails (8.0.2)` under `specs:`.
pub fn lock_version(lock: &str, gem: &str) -> Option<String> {
    let prefix = format!("    {gem} (");
    lock.lines()
        .find(|l| l.starts_with(&prefix) && !l.starts_with("     "))
        .and_then(|l| l[prefix.len()..].split(')').next())
        .map(str::to_string)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobBackend {
    SolidQueue,
    Sidekiq,
    GoodJob,
    Resque,
    DelayedJob,
}

impl JobBackend {
    /// The worker's name and the command its gem documents.
    pub fn worker(&self) -> (&'static str, &'static [&'static str]) {
        match self {
            Self::SolidQueue => ("jobs", &["bin/jobs"]),
            Self::Sidekiq => ("sidekiq", &["bundle", "exec", "sidekiq"]),
            Self::GoodJob => ("good-job", &["bundle", "exec", "good_job", "start"]),
            Self::Resque => (
                "resque",
                &["sh", "-c", "QUEUE=* exec bundle exec rake resque:work"],
            ),
            Self::DelayedJob => ("delayed-job", &["bundle", "exec", "rake", "jobs:work"]),
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Self::SolidQueue => "Solid Queue",
            Self::Sidekiq => "Sidekiq",
            Self::GoodJob => "good_job",
            Self::Resque => "Resque",
            Self::DelayedJob => "Delayed Job",
        }
    }
}

/// What the gems say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gems {
    pub rails: bool,
    pub rails_version: Option<String>,
    pub job_backend: Option<JobBackend>,
    /// The driver gems, in Gemfile order (`pg`, `mysql2`, `trilogy`, `sqlite3`).
    pub drivers: Vec<String>,
    /// Mongoid instead of Active Record.
    pub mongoid: bool,
    /// Gems that need a Redis server: the first one found.
    pub redis_gem: Option<String>,
    pub thruster: bool,
    /// The asset pipeline's gem: `propshaft` or `sprockets-rails` (or `sprockets`).
    pub asset_pipeline: Option<String>,
    /// Services beside the database the gems need: (gem, what it is, the env key of its URL).
    pub services: Vec<(String, &'static str, &'static str)>,
}

/// Gems that talk to a service of their own, and the env key their URL is conventionally in.
const SERVICE_GEMS: &[(&str, &str, &str)] = &[
    (
        "searchkick",
        "Elasticsearch or OpenSearch",
        "ELASTICSEARCH_URL",
    ),
    ("elasticsearch", "Elasticsearch", "ELASTICSEARCH_URL"),
    ("elasticsearch-model", "Elasticsearch", "ELASTICSEARCH_URL"),
    ("opensearch-ruby", "OpenSearch", "OPENSEARCH_URL"),
    ("dalli", "Memcached", "MEMCACHE_SERVERS"),
    ("thinking-sphinx", "Sphinx", "SPHINX_HOST"),
    ("clickhouse-activerecord", "ClickHouse", "CLICKHOUSE_URL"),
    ("meilisearch-rails", "Meilisearch", "MEILISEARCH_URL"),
];

pub fn read(gemfile: &str, lock: &str) -> Gems {
    let names = gem_names(gemfile);
    let has = |gem: &str| names.iter().any(|g| g == gem) || lock_version(lock, gem).is_some();
    Gems {
        rails: has("rails") || has("railties"),
        rails_version: lock_version(lock, "rails"),
        job_backend: [
            ("sidekiq", JobBackend::Sidekiq),
            ("solid_queue", JobBackend::SolidQueue),
            ("good_job", JobBackend::GoodJob),
            ("resque", JobBackend::Resque),
            ("delayed_job_active_record", JobBackend::DelayedJob),
            ("delayed_job", JobBackend::DelayedJob),
        ]
        .into_iter()
        .find(|(gem, _)| has(gem))
        .map(|(_, b)| b),
        drivers: names
            .iter()
            .filter(|g| ["pg", "mysql2", "trilogy", "sqlite3"].contains(&g.as_str()))
            .cloned()
            .collect(),
        mongoid: has("mongoid"),
        redis_gem: [
            "sidekiq",
            "resque",
            "redis",
            "kredis",
            "redis-rails",
            "hiredis",
        ]
        .into_iter()
        .find(|g| has(g))
        .map(str::to_string),
        thruster: has("thruster"),
        asset_pipeline: ["propshaft", "sprockets-rails", "sprockets"]
            .into_iter()
            .find(|g| has(g))
            .map(str::to_string),
        services: SERVICE_GEMS
            .iter()
            .filter(|(gem, _, _)| names.iter().any(|g| g == gem))
            .map(|(gem, what, key)| (gem.to_string(), *what, *key))
            .fold(Vec::new(), |mut out, s| {
                if !out.iter().any(|(_, w, _): &(String, &str, &str)| *w == s.1) {
                    out.push(s);
                }
                out
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemfile_and_lock() {
        let gems = gem_names(
            "source 'https://rubygems.org'\ngem \"rails\", \"~> 8.0\"\n  gem 'pg'\n# gem 'x'\n",
        );
        assert_eq!(gems, ["rails", "pg"]);
        let lock =
            "GEM\n  specs:\n    rails (8.0.2)\n      actioncable (= 8.0.2)\n    sidekiq (7.3.0)\n";
        assert_eq!(lock_version(lock, "rails").as_deref(), Some("8.0.2"));
        assert_eq!(lock_version(lock, "actioncable"), None);
    }

    #[test]
    fn backends_drivers_and_redis() {
        let cases: &[(&str, Option<JobBackend>, Option<&str>)] = &[
            (
                "gem 'rails'\ngem 'sidekiq'\n",
                Some(JobBackend::Sidekiq),
                Some("sidekiq"),
            ),
            (
                "gem 'rails'\ngem 'resque'\ngem 'resque-pool'\n",
                Some(JobBackend::Resque),
                Some("resque"),
            ),
            (
                "gem 'rails'\ngem 'good_job'\n",
                Some(JobBackend::GoodJob),
                None,
            ),
            (
                "gem 'rails'\ngem 'delayed_job_active_record'\n",
                Some(JobBackend::DelayedJob),
                None,
            ),
            (
                "gem 'rails'\ngem 'solid_queue'\ngem 'redis'\n",
                Some(JobBackend::SolidQueue),
                Some("redis"),
            ),
            ("gem 'rails'\n", None, None),
        ];
        for (gemfile, backend, redis) in cases {
            let g = read(gemfile, "");
            assert_eq!(g.job_backend, *backend, "{gemfile}");
            assert_eq!(g.redis_gem.as_deref(), *redis, "{gemfile}");
        }
        let g = read(
            "gem 'rails'\ngem 'sqlite3'\ngem 'trilogy'\ngem 'mongoid'\n",
            "",
        );
        assert_eq!(g.drivers, ["sqlite3", "trilogy"]);
        assert!(g.mongoid);
    }
}

//! The health path, from the app's routes (`config/routes.rb` and the files it draws from
//! `config/routes/*.rb`) and Rack middleware that answers one: `rails/health#show` gives its
//! own path; else a route that is plainly a health check; else `/` when `root` is routed.

/// Paths that are plainly health checks, best first.
const HEALTH_PATHS: &[&str] = &[
    "/up",
    "/health",
    "/healthz",
    "/health_check",
    "/healthcheck",
    "/ping",
    "/internal/ping",
    "/_health",
    "/status",
];

/// What the routes say about health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Health {
    /// A path and the file (and line) that routes it.
    Path { path: String, at: String },
    /// No health route, but `root` is routed (its file and line).
    Root { at: String },
    /// Neither.
    #[default]
    None,
}

/// A Ruby line without its comment (a `#` outside quotes).
fn ruby_code(line: &str) -> &str {
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') => return &line[..i],
            _ => {}
        }
    }
    line
}

/// The quoted strings on a line.
fn quoted(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find(['"', '\'']) {
        let q = rest[start..].chars().next().unwrap_or('"');
        let after = &rest[start + 1..];
        let Some(end) = after.find(q) else { break };
        out.push(after[..end].to_string());
        rest = &after[end + 1..];
    }
    out
}

fn as_path(s: &str) -> String {
    let s = s.split(['(', '.']).next().unwrap_or(s);
    if s.starts_with('/') {
        s.to_string()
    } else {
        format!("/{s}")
    }
}

/// Reads routes files (name, text), in the order given, and middleware files.
pub fn health(routes: &[(String, String)], middleware: &[(String, String)]) -> Health {
    let mut best: Option<(usize, String, String)> = None;
    let mut root = None;
    for (file, text) in routes {
        for (i, line) in text.lines().enumerate() {
            let code = ruby_code(line);
            let at = format!("{file}:{}", i + 1);
            if code.contains("rails/health#show")
                && let Some(path) = quoted(code).into_iter().find(|q| !q.contains('#'))
            {
                return Health::Path {
                    path: as_path(&path),
                    at,
                };
            }
            let trimmed = code.trim_start();
            if trimmed.starts_with("root ") || trimmed.starts_with("root(") {
                root.get_or_insert(at.clone());
            }
            let is_route = ["get ", "get(", "match ", "match("]
                .iter()
                .any(|v| trimmed.starts_with(v));
            if !is_route {
                continue;
            }
            for q in quoted(code) {
                let path = as_path(&q);
                if let Some(rank) = HEALTH_PATHS.iter().position(|h| *h == path)
                    && best.as_ref().is_none_or(|(r, _, _)| rank < *r)
                {
                    best = Some((rank, path, at.clone()));
                }
            }
        }
    }
    // A Rack middleware that compares the request path with a health path.
    for (file, text) in middleware {
        if !(text.contains("PATH_INFO") || text.contains(".path")) {
            continue;
        }
        for (i, line) in text.lines().enumerate() {
            for q in quoted(line) {
                if let Some(rank) = HEALTH_PATHS.iter().position(|h| *h == q)
                    && best.as_ref().is_none_or(|(r, _, _)| rank < *r)
                {
                    best = Some((rank, q.clone(), format!("{file}:{}", i + 1)));
                }
            }
        }
    }
    match (best, root) {
        (Some((_, path, at)), _) => Health::Path { path, at },
        (None, Some(at)) => Health::Root { at },
        (None, None) => Health::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str, at: &str) -> Health {
        Health::Path {
            path: p.into(),
            at: at.into(),
        }
    }

    #[test]
    fn the_health_path_comes_from_the_routes() {
        let r = |text: &str| vec![("config/routes.rb".to_string(), text.to_string())];
        let cases = [
            (
                r(
                    "Rails.application.routes.draw do\n  get \"up\" => \"rails/health#show\", as: :rails_health_check\nend\n",
                ),
                path("/up", "config/routes.rb:2"),
            ),
            (
                r(
                    "Rails.application.routes.draw do\n  get '/healthz', to: 'rails/health#show'\nend\n",
                ),
                path("/healthz", "config/routes.rb:2"),
            ),
            (
                r(
                    "Rails.application.routes.draw do\n  root 'home#index'\n  get '/health', to: 'health#show'\nend\n",
                ),
                path("/health", "config/routes.rb:3"),
            ),
            (
                r(
                    "Rails.application.routes.draw do\n  root to: 'home#index'\n  get '/pricing', to: 'pages#pricing'\nend\n",
                ),
                Health::Root {
                    at: "config/routes.rb:2".into(),
                },
            ),
            (
                r(
                    "Rails.application.routes.draw do\n  resources :posts\n  # get \"up\" => \"rails/health#show\"\nend\n",
                ),
                Health::None,
            ),
        ];
        for (routes, expected) in cases {
            assert_eq!(health(&routes, &[]), expected, "{routes:?}");
        }
        // Routes drawn from config/routes/*.rb.
        let drawn = vec![
            (
                "config/routes.rb".to_string(),
                "Rails.application.routes.draw do\n  draw :api\n  root 'home#index'\nend\n"
                    .to_string(),
            ),
            (
                "config/routes/api.rb".to_string(),
                "namespace :api do\nend\nget '/ping', to: 'ping#show'\n".to_string(),
            ),
        ];
        assert_eq!(health(&drawn, &[]), path("/ping", "config/routes/api.rb:3"));
        // A Rack middleware answering /health.
        let middleware = vec![(
            "lib/health_check.rb".to_string(),
            "class HealthCheck\n  def call(env)\n    return [200, {}, ['ok']] if env['PATH_INFO'] == '/health'\n    @app.call(env)\n  end\nend\n".to_string(),
        )];
        assert_eq!(
            health(&r("Rails.application.routes.draw do\nend\n"), &middleware),
            path("/health", "lib/health_check.rb:3")
        );
    }
}

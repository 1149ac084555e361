//! The digest an image tag names now, asked of its registry over the OCI distribution API
//! (`HEAD /v2/<repository>/manifests/<tag>`), with Basic credentials or the Bearer token a
//! registry's challenge asks for. A deploy renders that digest, so every pod of a release runs
//! the same bits even when the tag is pushed again.
//!
//! Trust: the system's roots, or the file `SSL_CERT_FILE` names (a private registry's CA).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};

/// The manifest kinds a tag may name: a multi-platform index, or one image's manifest.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Docker Hub's API host, for images named without a registry or as `docker.io/...`.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach registry `{host}`: {reason}")]
    Unreachable { host: String, reason: String },
    #[error("`{reference}` is not in the registry (404): no such tag")]
    NotFound { reference: String },
    #[error("registry `{host}` refused to name the digest of `{reference}` ({status})")]
    Refused {
        host: String,
        reference: String,
        status: StatusCode,
    },
    #[error("registry `{host}` answered {status} for `{reference}`")]
    Unexpected {
        host: String,
        reference: String,
        status: StatusCode,
    },
    #[error("registry `{host}` sent no usable digest for `{reference}`")]
    NoDigest { host: String, reference: String },
}

/// Where an image lives, as the registry API names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The API host: `ghcr.io`, `127.0.0.1:5000`, `registry-1.docker.io` for Docker Hub.
    pub host: String,
    /// The repository inside it: `acme/shop`, `library/ruby` for Docker Hub's official images.
    pub repository: String,
    pub tag: String,
}

impl ImageRef {
    /// From an image's repository as written (`ghcr.io/acme/shop`, `ruby`) and its tag.
    pub fn new(repository: &str, tag: &str) -> Self {
        let (host, path) = match repository.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => ("docker.io".to_string(), repository.to_string()),
        };
        let hub = ["docker.io", "index.docker.io", DOCKER_HUB_API].contains(&host.as_str());
        Self {
            host: if hub { DOCKER_HUB_API.into() } else { host },
            repository: if hub && !path.contains('/') {
                format!("library/{path}")
            } else {
                path
            },
            tag: tag.to_string(),
        }
    }

    fn reference(&self) -> String {
        format!("{}/{}:{}", self.host, self.repository, self.tag)
    }
}

/// A username and password for the registry. `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Login {
    fn basic(&self) -> String {
        format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", self.username, self.password))
        )
    }
}

/// A `WWW-Authenticate: Bearer realm="...",service="...",scope="..."` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub service: Option<String>,
    pub scope: Option<String>,
}

/// Reads a Bearer challenge; `None` for Basic or anything else.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let rest = header.trim().strip_prefix("Bearer ")?;
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    // `key="value"` pairs; a quoted value may hold commas (`repository:a/b:pull,push`).
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let after = after.trim_start();
        let (value, tail) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            match after.find(',') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            }
        };
        match key.trim() {
            "realm" => realm = Some(value.to_string()),
            "service" => service = Some(value.to_string()),
            "scope" => scope = Some(value.to_string()),
            _ => {}
        }
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge {
        realm: realm?,
        service,
        scope,
    })
}

/// Whether a string is a digest a container runtime accepts: `sha256:` and 64 hex digits.
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

struct Asker {
    client: Client<Https, Empty<Bytes>>,
    timeout: Duration,
    host: String,
}

struct Answer {
    status: StatusCode,
    challenge: Option<String>,
    digest: Option<String>,
    body: Bytes,
}

impl Asker {
    fn new(host: &str, timeout: Duration) -> Result<Self, RegistryError> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| RegistryError::Unreachable {
                host: host.to_string(),
                reason: format!("no trusted certificates: {e}"),
            })?
            .https_only()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            host: host.to_string(),
        })
    }

    async fn ask(
        &self,
        method: Method,
        url: &str,
        auth: Option<&str>,
    ) -> Result<Answer, RegistryError> {
        let unreachable = |reason: String| RegistryError::Unreachable {
            host: self.host.clone(),
            reason,
        };
        let mut request = Request::builder()
            .method(method)
            .uri(url)
            .header(ACCEPT, MANIFEST_TYPES);
        if let Some(auth) = auth {
            request = request.header(AUTHORIZATION, auth);
        }
        let request = request
            .body(Empty::new())
            .map_err(|e| unreachable(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| unreachable(describe(&e)))?;
            let status = response.status();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            let challenge = header(WWW_AUTHENTICATE.as_str());
            let digest = header("docker-content-digest");
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .to_bytes();
            Ok(Answer {
                status,
                challenge,
                digest,
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| unreachable(format!("no answer within {:?}", self.timeout)))?
    }

    /// The Bearer token a challenge's realm gives for these credentials (or none).
    async fn token(
        &self,
        challenge: &Challenge,
        login: Option<&Login>,
    ) -> Result<Option<String>, RegistryError> {
        let mut url = challenge.realm.clone();
        let mut params = Vec::new();
        if let Some(service) = &challenge.service {
            params.push(format!("service={}", encode(service)));
        }
        if let Some(scope) = &challenge.scope {
            params.push(format!("scope={}", encode(scope)));
        }
        if !params.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&params.join("&"));
        }
        let basic = login.map(Login::basic);
        let answer = self.ask(Method::GET, &url, basic.as_deref()).await?;
        if !answer.status.is_success() {
            return Ok(None);
        }
        let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        Ok(json["token"]
            .as_str()
            .or_else(|| json["access_token"].as_str())
            .map(|t| format!("Bearer {t}")))
    }
}

/// A connection error with its causes (`tcp connect error: Connection refused`).
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// The digest `image`'s tag names now (`sha256:...`), asked with `login` when given.
pub async fn digest(
    image: &ImageRef,
    login: Option<&Login>,
    timeout: Duration,
) -> Result<String, RegistryError> {
    let asker = Asker::new(&image.host, timeout)?;
    let url = format!(
        "https://{}/v2/{}/manifests/{}",
        image.host, image.repository, image.tag
    );
    let basic = login.map(Login::basic);
    let mut answer = asker.ask(Method::HEAD, &url, basic.as_deref()).await?;
    let mut auth = basic;
    if answer.status == StatusCode::UNAUTHORIZED
        && let Some(challenge) = answer.challenge.as_deref().and_then(parse_challenge)
        && let Some(token) = asker.token(&challenge, login).await?
    {
        answer = asker.ask(Method::HEAD, &url, Some(&token)).await?;
        auth = Some(token);
    }
    let reference = image.reference();
    match answer.status {
        s if s.is_success() => {}
        StatusCode::NOT_FOUND => return Err(RegistryError::NotFound { reference }),
        s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
            return Err(RegistryError::Refused {
                host: image.host.clone(),
                reference,
                status: s,
            });
        }
        s => {
            return Err(RegistryError::Unexpected {
                host: image.host.clone(),
                reference,
                status: s,
            });
        }
    }
    if let Some(d) = answer.digest.filter(|d| is_digest(d)) {
        return Ok(d);
    }
    // A registry that does not say the digest on HEAD: the manifest's own bytes name it.
    let answer = asker.ask(Method::GET, &url, auth.as_deref()).await?;
    if answer.status.is_success() && !answer.body.is_empty() {
        let sum = Sha256::digest(&answer.body);
        let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
        return Ok(format!("sha256:{hex}"));
    }
    Err(RegistryError::NoDigest {
        host: image.host.clone(),
        reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_as_the_registry_api_names_them() {
        let cases = [
            ("ghcr.io/acme/shop", "ghcr.io", "acme/shop"),
            ("127.0.0.1:5000/blog", "127.0.0.1:5000", "blog"),
            ("localhost/blog", "localhost", "blog"),
            ("ruby", DOCKER_HUB_API, "library/ruby"),
            ("docker.io/ruby", DOCKER_HUB_API, "library/ruby"),
            ("acme/shop", DOCKER_HUB_API, "acme/shop"),
            ("index.docker.io/acme/shop", DOCKER_HUB_API, "acme/shop"),
        ];
        for (written, host, repository) in cases {
            let r = ImageRef::new(written, "1.0");
            assert_eq!(
                (r.host.as_str(), r.repository.as_str()),
                (host, repository),
                "{written}"
            );
        }
    }

    #[test]
    fn bearer_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/shop:pull""#,
        )
        .unwrap();
        assert_eq!(c.realm, "https://ghcr.io/token");
        assert_eq!(c.service.as_deref(), Some("ghcr.io"));
        assert_eq!(c.scope.as_deref(), Some("repository:acme/shop:pull"));
        let commas = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token", scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(commas.scope.as_deref(), Some("repository:a/b:pull,push"));
        assert_eq!(commas.service, None);
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), None);
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None, "no realm");
    }

    #[test]
    fn digests_and_query_values() {
        assert!(is_digest(&format!("sha256:{}", "a".repeat(64))));
        assert!(!is_digest("sha256:abc"));
        assert!(!is_digest(&format!("md5:{}", "a".repeat(64))));
        assert_eq!(encode("repository:a/b:pull"), "repository%3Aa%2Fb%3Apull");
    }

    #[test]
    fn a_login_never_shows_its_password() {
        let login = Login {
            username: "me".into(),
            password: "hunter2-secret".into(),
        };
        assert!(!format!("{login:?}").contains("hunter2"));
    }
}

//! The app spec: what `config/kubernetes.yml` holds. It names secret keys, never their values.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where `init` writes the spec, relative to the app folder.
pub const SPEC_PATH: &str = "config/kubernetes.yml";

/// `web.health_path: tcp`: the app routes no health check, so the probes open a TCP connection
/// to the port instead of asking a path.
pub const TCP_PROBE: &str = "tcp";

/// The default migration command of a Rails app.
pub const DEFAULT_MIGRATE: &[&str] = &["bin/rails", "db:migrate"];

/// One Rails app as kubectl-rails deploys it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// App name: a DNS label, used as the prefix of every object name.
    pub name: String,
    /// Namespace to deploy into; `-n` overrides it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The image every process runs.
    pub image: ImageSpec,
    /// The numeric user the image runs as (`USER 1000:1000` in the Rails Dockerfile, or the
    /// `useradd --uid` of a named user). `None`: the image's own numeric `USER`, unchanged.
    /// `0`: the image starts as root and its entrypoint drops to its user itself (`chown`, then
    /// `su-exec`/`gosu`/`setpriv`); its pods pass the `baseline` Pod Security Standard only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<i64>,
    /// The numeric group, which also owns mounted volumes (`fsGroup`) so the app can write them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<i64>,
    /// Private registry the image is pulled from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistrySpec>,
    /// The web process: the Rails server behind the Service and the Ingress.
    pub web: WebSpec,
    /// Background processes (Solid Queue `bin/jobs`, Sidekiq, ...), keyed by process name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub workers: BTreeMap<String, WorkerSpec>,
    /// How the web process is reached from outside the cluster; none: only inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,
    /// Plain environment, rendered to a ConfigMap.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Names of the keys of the app Secret; values live only in the cluster.
    #[serde(default, skip_serializing_if = "SecretKeys::none")]
    pub secrets: SecretKeys,
    /// The migration a deploy runs in a Job before any pod changes.
    #[serde(default)]
    pub migrate: MigrateSpec,
    /// A persistent volume, for example Active Storage's disk service at `/rails/storage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeSpec>,
    /// Where every pod of the app runs, unless its process says otherwise.
    #[serde(default, skip_serializing_if = "Placement::is_empty")]
    pub placement: Placement,
    /// How many release records to keep (the current one always stays), as Helm does.
    #[serde(
        default = "default_history_limit",
        skip_serializing_if = "is_default_history_limit"
    )]
    #[schemars(extend("default" = DEFAULT_HISTORY_LIMIT))]
    pub history_limit: u32,
    /// Scheduled commands, keyed by name: each a CronJob cloned from the web pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cron: BTreeMap<String, CronSpec>,
    /// Short names for `kubectl rails` command lines (`dbc: dbconsole --reuse`), run as
    /// `kubectl rails dbc`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aliases: BTreeMap<String, String>,
    /// Services run in the cluster beside the app (`kubectl rails accessory add`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub accessories: BTreeMap<String, AccessorySpec>,
    /// Where the deploy hooks are (`pre-deploy`, `post-deploy`); by default
    /// `config/kubernetes/hooks`, else Kamal's `.kamal/hooks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks_path: Option<String>,
    /// The kubeconfig context this spec (usually a destination's overlay) must be deployed
    /// with: any other context is refused before anything changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The API server URL this spec must be deployed to, whatever the context is called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Review apps: one namespace per pull request (`kubectl rails review up pr-123`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewSpec>,
    /// The image's working directory (its Dockerfile's `WORKDIR`, `/rails` in Rails's own),
    /// where the app writes `tmp/`: knowing it is what allows a read-only root filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir: Option<String>,
    /// Every container's root filesystem is read-only, with an emptyDir at each path the app
    /// writes (`tmp/`, `/tmp`, `writable`), where those are known; `false` turns it off.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    #[schemars(extend("default" = true))]
    pub read_only_root: bool,
    /// Folders the app writes besides `tmp/` and `/tmp` (`log` when it logs to files), relative
    /// to `workdir` or absolute: each gets an emptyDir under a read-only root.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writable: Vec<String>,
    /// How `deploy` and `build` build the image from the app folder; `None`: it is built
    /// elsewhere and only deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildSpec>,
    /// A NetworkPolicy per process: web takes traffic on its port only, other pods none, an
    /// accessory only from the app's pods; `false` renders none.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    #[schemars(extend("default" = true))]
    pub network_policy: bool,
    /// What `deploy` does once a new release is Ready: watch it for a while and roll it back
    /// when it fails (`deploy --bake` and its flags override it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutSpec>,
    /// Fingerprinted assets served by their own pods, from this release's image and the last
    /// releases' images: a page of either release finds its CSS and JS during a rollout, in
    /// both directions. None: web serves its own assets (or a CDN does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assets: Option<AssetsSpec>,
}

/// The asset server: `<app>-assets` pods hold the assets of the current image and of the
/// last releases' images, and the Ingress sends the asset path to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssetsSpec {
    /// The URL path of the fingerprinted assets (`config.assets.prefix`).
    #[serde(
        default = "default_assets_path",
        skip_serializing_if = "is_default_assets_path"
    )]
    #[schemars(extend("default" = DEFAULT_ASSETS_PATH))]
    pub path: String,
    /// Where the image holds them: relative to `workdir`, or absolute (Kamal's `asset_path`).
    #[serde(
        default = "default_assets_dir",
        skip_serializing_if = "is_default_assets_dir"
    )]
    #[schemars(extend("default" = DEFAULT_ASSETS_DIR))]
    pub dir: String,
    /// How many earlier releases' assets are served beside the current ones, so a browser tab
    /// open across that many deploys still finds its assets.
    #[serde(
        default = "default_assets_keep",
        skip_serializing_if = "is_default_assets_keep"
    )]
    #[schemars(extend("default" = DEFAULT_ASSETS_KEEP))]
    pub keep: u32,
}

pub const DEFAULT_ASSETS_PATH: &str = "/assets";
pub const DEFAULT_ASSETS_DIR: &str = "public/assets";
pub const DEFAULT_ASSETS_KEEP: u32 = 2;

fn default_assets_path() -> String {
    DEFAULT_ASSETS_PATH.into()
}
fn is_default_assets_path(p: &str) -> bool {
    p == DEFAULT_ASSETS_PATH
}
fn default_assets_dir() -> String {
    DEFAULT_ASSETS_DIR.into()
}
fn is_default_assets_dir(d: &str) -> bool {
    d == DEFAULT_ASSETS_DIR
}
fn default_assets_keep() -> u32 {
    DEFAULT_ASSETS_KEEP
}
fn is_default_assets_keep(n: &u32) -> bool {
    *n == DEFAULT_ASSETS_KEEP
}

impl Default for AssetsSpec {
    fn default() -> Self {
        Self {
            path: default_assets_path(),
            dir: default_assets_dir(),
            keep: DEFAULT_ASSETS_KEEP,
        }
    }
}

/// The bake after a rollout: the new release watched before it is trusted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutSpec {
    /// How long to watch a new release once it is Ready (`90s`, `5m`): its 5xx responses (from
    /// the Rails request log), restarts and readiness; past a limit the release before is
    /// deployed again at once and the deploy exits 3. None: no bake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bake: Option<String>,
    /// The percent of requests answered 5xx (of at least 10) that fails the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 5.0))]
    pub max_error_rate: Option<f64>,
    /// The container restarts of the new pods (or times one stops being Ready) that fail the
    /// release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 0))]
    pub max_restarts: Option<u32>,
    /// Deploy every new release as a canary taking about this percent (1 to 99) of the
    /// requests beside the current one, until `kubectl rails canary promote` or `abort`. None:
    /// every deploy replaces the current release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<u8>,
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

/// How the image is built from the app folder (Kamal's `builder`, Docker's build flags).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// The Dockerfile, relative to the app folder.
    #[serde(default = "default_dockerfile")]
    pub dockerfile: String,
    /// The build context, relative to the app folder.
    #[serde(
        default = "default_context",
        skip_serializing_if = "is_default_context"
    )]
    #[schemars(extend("default" = "."))]
    pub context: String,
    /// The stage to build (`--target`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Build arguments (`--build-arg KEY=VALUE`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    /// Names of environment variables passed as build secrets (`RUN --mount=type=secret,id=NAME`);
    /// their values never reach the image's history or any output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Platforms to build for (`linux/amd64`); the builder's own when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// An image reference used as a registry build cache (`ghcr.io/acme/shop:buildcache`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// `docker`, `podman`, `buildah`, `nerdctl` or `cluster`; the first found on PATH when
    /// unset, else `cluster` (a BuildKit pod in the cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<String>,
    /// The `cluster` builder: a BuildKit pod in the cluster, fed the build context over the
    /// Kubernetes API, pushing from inside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterBuilderSpec>,
}

/// The BuildKit pod the `cluster` builder runs. It runs rootless (as uid 1000, in user
/// namespaces it makes itself), which needs seccomp and AppArmor `Unconfined`: its namespace
/// must allow Pod Security `privileged` either way.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterBuilderSpec {
    /// The BuildKit image, pinned to a version (`moby/buildkit:v0.26.3-rootless`, or
    /// `moby/buildkit:v0.26.3` with `privileged`); never `latest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = DEFAULT_BUILDKIT_ROOTLESS_IMAGE))]
    pub image: Option<String>,
    /// The namespace the builder pod runs in; the app's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Mirrors BuildKit pulls `docker.io` images through (`mirror.gcr.io`), as Docker's
    /// `registry-mirrors`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mirrors: Vec<String>,
    /// Run BuildKit as root in a privileged container instead of rootless: for nodes that
    /// refuse unprivileged user namespaces (the default image is then `moby/buildkit:v0.26.3`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
}

impl ClusterBuilderSpec {
    /// The pinned image used when the spec names none, for the mode it runs in.
    pub fn default_image(&self) -> &'static str {
        if self.privileged {
            DEFAULT_BUILDKIT_IMAGE
        } else {
            DEFAULT_BUILDKIT_ROOTLESS_IMAGE
        }
    }
}

/// The BuildKit image of a privileged `cluster` builder when the spec names none.
pub const DEFAULT_BUILDKIT_IMAGE: &str = "moby/buildkit:v0.26.3";
/// The BuildKit image of the (rootless) `cluster` builder when the spec names none: the same
/// release, with RootlessKit and a user of its own.
pub const DEFAULT_BUILDKIT_ROOTLESS_IMAGE: &str = "moby/buildkit:v0.26.3-rootless";

fn default_dockerfile() -> String {
    "Dockerfile".into()
}

fn default_context() -> String {
    ".".into()
}

fn is_default_context(c: &String) -> bool {
    c == "."
}

/// The app Secret's keys by name, each required unless marked optional (the app runs without
/// it, so a missing value never blocks a deploy). Written as a list of names
/// (`secrets: [A, B]`), or, when some are optional, as a map:
/// `secrets: {A: {}, B: {optional: true}}` (`secrets.<NAME>.optional`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretKeys {
    names: Vec<String>,
    optional: std::collections::BTreeSet<String>,
    /// Keys whose value is a file's content (a key, a JSON credential), mounted read-only at
    /// this path instead of set in the env: `secrets: {GCP_KEY: {file: /rails/config/gcp.json}}`.
    files: BTreeMap<String, String>,
}

impl SecretKeys {
    /// Whether there are no keys.
    pub fn none(&self) -> bool {
        self.names.is_empty()
    }

    /// Whether the app runs without `key`.
    pub fn is_optional(&self, key: &str) -> bool {
        self.optional.contains(key)
    }

    /// Adds `key` (once) and sets whether it is optional.
    pub fn add(&mut self, key: &str, optional: bool) {
        if !self.names.iter().any(|k| k == key) {
            self.names.push(key.to_string());
        }
        if optional {
            self.optional.insert(key.to_string());
        } else {
            self.optional.remove(key);
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.names.retain(|k| k != key);
        self.optional.remove(key);
        self.files.remove(key);
    }

    /// The keys mounted as files: (key, path in the container).
    pub fn files(&self) -> &BTreeMap<String, String> {
        &self.files
    }

    /// Mounts `key` as a file at `path` instead of an env var.
    pub fn set_file(&mut self, key: &str, path: &str) {
        self.files.insert(key.to_string(), path.to_string());
    }

    /// The optional keys, in order.
    pub fn optional(&self) -> impl Iterator<Item = &String> {
        self.names.iter().filter(|k| self.optional.contains(*k))
    }

    /// The required keys, in order.
    pub fn required(&self) -> impl Iterator<Item = &String> {
        self.names.iter().filter(|k| !self.optional.contains(*k))
    }
}

impl From<Vec<String>> for SecretKeys {
    fn from(names: Vec<String>) -> Self {
        Self {
            names,
            optional: Default::default(),
            files: Default::default(),
        }
    }
}

impl std::ops::Deref for SecretKeys {
    type Target = Vec<String>;
    fn deref(&self) -> &Vec<String> {
        &self.names
    }
}

impl std::ops::DerefMut for SecretKeys {
    fn deref_mut(&mut self) -> &mut Vec<String> {
        &mut self.names
    }
}

/// How a secret key is used.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SecretOptions {
    /// The app runs without it: a missing value never blocks a deploy.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    optional: bool,
    /// Mounted read-only at this path, instead of set in the env.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<String>,
}

impl Serialize for SecretKeys {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        if self.optional.is_empty() && self.files.is_empty() {
            return self.names.serialize(s);
        }
        let mut map = s.serialize_map(Some(self.names.len()))?;
        for k in &self.names {
            map.serialize_entry(
                k,
                &SecretOptions {
                    optional: self.optional.contains(k),
                    file: self.files.get(k).cloned(),
                },
            )?;
        }
        map.end()
    }
}

impl JsonSchema for SecretKeys {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "SecretKeys".into()
    }

    /// Either form `Deserialize` reads: a list of names, or a map of names to their options.
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let options = generator.subschema_for::<SecretOptions>();
        schemars::json_schema!({
            "description": "The app Secret's keys by name: a list (`[A, B]`), or a map of names to their options when some are optional or files (`{A: {}, B: {optional: true}}`).",
            "anyOf": [
                {"type": "array", "items": {"type": "string"}},
                {"type": "object", "additionalProperties": {"anyOf": [options, {"type": "null"}]}},
            ],
        })
    }
}

impl<'de> Deserialize<'de> for SecretKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(
            untagged,
            expecting = "a list of secret key names, or a map of names to `{optional: true}`"
        )]
        enum Form {
            List(Vec<String>),
            Map(BTreeMap<String, Option<SecretOptions>>),
        }
        Ok(match Form::deserialize(d)? {
            Form::List(names) => names.into(),
            Form::Map(map) => {
                let mut keys = SecretKeys::default();
                for (k, o) in map {
                    keys.add(&k, o.as_ref().is_some_and(|o| o.optional));
                    if let Some(path) = o.and_then(|o| o.file) {
                        keys.set_file(&k, &path);
                    }
                }
                keys
            }
        })
    }
}

/// How a review app is made from the app. Patterns may hold `{app}` and `{name}` (the review
/// app's name, such as `pr-123`); override values may also hold `{db_name}` (the name with `_`
/// for `-`) and `{KEY}`, the value of `KEY` in the base Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewSpec {
    /// The ingress host of a review app, such as `{name}.review.example.com`.
    pub host: String,
    /// Its namespace; `{app}-{name}` by default.
    #[serde(default = "default_review_namespace")]
    pub namespace: String,
    /// Secret keys set per review app, from a template (`DATABASE_URL: "{DATABASE_URL}_{db_name}"`).
    #[serde(
        default,
        rename = "override",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub overrides: BTreeMap<String, String>,
    /// What the first deploy of a review app runs instead of the migration.
    #[serde(default = "default_prepare")]
    pub prepare: Vec<String>,
    /// Run once after the first deploy, such as `[bin/rails, db:seed]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<Vec<String>>,
}

fn default_review_namespace() -> String {
    "{app}-{name}".into()
}

fn default_prepare() -> Vec<String> {
    vec!["bin/rails".into(), "db:prepare".into()]
}

impl ReviewSpec {
    /// A pattern with `{app}` and `{name}` filled in.
    pub fn fill(pattern: &str, app: &str, name: &str) -> String {
        pattern.replace("{app}", app).replace("{name}", name)
    }
}

/// A scheduled command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CronSpec {
    /// Five-field cron syntax, such as `30 4 * * *`.
    pub schedule: String,
    /// The command it runs, as a list of words (`[bin/rails, cleanup:run]`).
    pub command: Vec<String>,
    /// An IANA time zone, such as `Europe/Madrid`; the cluster's (usually UTC) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// No new runs while set (`kubectl rails cron suspend`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
}

/// A service run beside the app, in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessorySpec {
    /// What it is: `postgres` or `redis`.
    pub kind: AccessoryKind,
    /// The image it runs, such as `postgres:16`.
    pub image: String,
    /// The size of its data volume.
    #[serde(default = "default_accessory_size")]
    pub size: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
/// The kinds of accessory kubectl-rails knows how to run.
#[serde(rename_all = "lowercase")]
pub enum AccessoryKind {
    Postgres,
    Redis,
}

impl AccessoryKind {
    /// The image an accessory of this kind runs unless the spec says otherwise.
    pub fn default_image(&self) -> &'static str {
        match self {
            AccessoryKind::Postgres => "postgres:16",
            AccessoryKind::Redis => "redis:7",
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            AccessoryKind::Postgres => 5432,
            AccessoryKind::Redis => 6379,
        }
    }

    /// The env key the app reads to reach it.
    pub fn url_key(&self) -> &'static str {
        match self {
            AccessoryKind::Postgres => "DATABASE_URL",
            AccessoryKind::Redis => "REDIS_URL",
        }
    }

    /// The URL the app reaches it at: `app` is the database and user, `host` its Service.
    pub fn url(&self, app: &str, host: &str, password: &str) -> String {
        match self {
            AccessoryKind::Postgres => {
                format!("postgres://{app}:{password}@{host}:{}/{app}", self.port())
            }
            AccessoryKind::Redis => format!("redis://:{password}@{host}:{}/0", self.port()),
        }
    }
}

fn default_accessory_size() -> String {
    "10Gi".into()
}

/// Release records kept by default.
pub const DEFAULT_HISTORY_LIMIT: u32 = 10;

fn default_history_limit() -> u32 {
    DEFAULT_HISTORY_LIMIT
}

fn is_default_history_limit(n: &u32) -> bool {
    *n == DEFAULT_HISTORY_LIMIT
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
/// The image reference, split into its parts.
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// For example `ghcr.io/acme/shop`.
    pub repository: String,
    /// `None` means the image was given without a tag; deploy requires one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// The digest the tag named when the release was deployed (`sha256:...`): pods run exactly
    /// it, whatever the tag names later. Deploy sets it; a spec file rarely does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl ImageSpec {
    /// The reference a container uses: `repository@digest` when pinned, else `repository:tag`,
    /// or the bare repository without a tag.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => format!("{}@{digest}", self.repository),
            (None, Some(tag)) => format!("{}:{tag}", self.repository),
            (None, None) => self.repository.clone(),
        }
    }

    /// `repository:tag`, as people say it, pinned or not.
    pub fn tagged(&self) -> String {
        match &self.tag {
            Some(tag) => format!("{}:{tag}", self.repository),
            None => self.repository.clone(),
        }
    }

    /// As people read it: `repository:tag (0123456789ab)` when pinned, else the reference.
    pub fn shown(&self) -> String {
        match self.short_digest() {
            Some(short) => format!("{} ({short})", self.tagged()),
            None => self.reference(),
        }
    }

    /// The first 12 hex digits of the digest, as `docker images` shows an id.
    pub fn short_digest(&self) -> Option<&str> {
        self.digest
            .as_deref()
            .map(|d| d.strip_prefix("sha256:").unwrap_or(d))
            .map(|h| &h[..h.len().min(12)])
    }

    /// Splits `repo[:tag][@digest]`, keeping a registry port (`host:5000/app`) in the
    /// repository.
    pub fn parse(reference: &str) -> Self {
        let (reference, digest) = match reference.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (reference, None),
        };
        let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
        match reference[last_slash..].rfind(':') {
            Some(colon) => {
                let at = last_slash + colon;
                Self {
                    repository: reference[..at].to_string(),
                    tag: Some(reference[at + 1..].to_string()),
                    digest,
                }
            }
            None => Self {
                repository: reference.to_string(),
                tag: None,
                digest,
            },
        }
    }

    /// The registry host of the repository, when it names one (`ghcr.io/acme/app`).
    pub fn registry_host(&self) -> Option<&str> {
        let (first, rest) = self.repository.split_once('/')?;
        let looks_like_host = first.contains('.') || first.contains(':') || first == "localhost";
        (looks_like_host && !rest.is_empty()).then_some(first)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
/// A private registry and the pull secret for it (`kubectl rails secrets registry`).
#[serde(deny_unknown_fields)]
pub struct RegistrySpec {
    /// Registry host, for example `ghcr.io`.
    pub server: String,
    /// The `kubernetes.io/dockerconfigjson` Secret the pods pull with.
    pub pull_secret: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
/// The web process.
#[serde(deny_unknown_fields)]
pub struct WebSpec {
    /// Overrides the image's CMD; `None` keeps the image's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// The port the container listens on.
    pub port: u16,
    /// How many pods run it (`kubectl rails scale web=N` changes it).
    pub replicas: i32,
    /// A HorizontalPodAutoscaler owns the replica count when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<Autoscale>,
    /// The path the readiness and liveness probes ask (Rails's `/up`); `tcp`: the probes only
    /// open a TCP connection to the port, for an app that routes no health check.
    #[serde(default = "default_health_path")]
    pub health_path: String,
    /// CPU and memory of each web pod.
    #[serde(default = "Resources::web_default")]
    pub resources: Resources,
    /// Where web pods (and the migration and one-off pods cloned from them) run.
    #[serde(default, skip_serializing_if = "Placement::is_empty")]
    pub placement: Placement,
    /// Plain env of this process only, laid over the app's `env`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Seconds a stopping pod gets to finish its requests (Kamal's `drain_timeout`); 30 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_timeout: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
/// A background process, run by its own Deployment.
#[serde(deny_unknown_fields)]
pub struct WorkerSpec {
    /// The command it runs, as a list of words (`[bundle, exec, sidekiq]`).
    pub command: Vec<String>,
    /// How many pods run it (`kubectl rails scale NAME=N` changes it).
    #[serde(default = "one")]
    pub replicas: i32,
    /// A HorizontalPodAutoscaler owns the replica count when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscale: Option<Autoscale>,
    /// CPU and memory of each of its pods.
    #[serde(default = "Resources::worker_default")]
    pub resources: Resources,
    /// Where its pods run, laid over the app's `placement`.
    #[serde(default, skip_serializing_if = "Placement::is_empty")]
    pub placement: Placement,
    /// Plain env of this process only, laid over the app's `env`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// Which nodes a process runs on, as users of node pools say it: labels the node must carry and
/// taints the pods tolerate. A process's own placement overrides the app's: its node selector
/// is merged over the app's (its keys win), its tolerations replace the app's when it has any.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    /// Labels a node must carry for the pods to run on it (`kubernetes.io/arch: arm64`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints of the nodes the pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
}

impl Placement {
    pub fn is_empty(&self) -> bool {
        self.node_selector.is_empty() && self.tolerations.is_empty()
    }

    /// `self` with `over` laid on top (see [`Placement`]).
    pub fn overlaid(&self, over: &Placement) -> Placement {
        let mut node_selector = self.node_selector.clone();
        node_selector.extend(over.node_selector.clone());
        Placement {
            node_selector,
            tolerations: if over.tolerations.is_empty() {
                self.tolerations.clone()
            } else {
                over.tolerations.clone()
            },
        }
    }
}

/// A taint the pods tolerate: `key`, with `value` (operator `Equal`) or without (`Exists`), for
/// one `effect` or all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Toleration {
    /// The taint's key.
    pub key: String,
    /// The taint's value; none tolerates the key with any value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`; none means every effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
}

/// The taint effects Kubernetes knows.
pub const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

impl Toleration {
    /// Parses kubectl's taint syntax: `key`, `key=value`, `key:Effect` or `key=value:Effect`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (rest, effect) = match text.rsplit_once(':') {
            Some((rest, effect)) => (rest, Some(effect)),
            None => (text, None),
        };
        let (key, value) = match rest.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (rest, None),
        };
        if key.is_empty() {
            return Err(format!(
                "`{text}` is not a toleration such as `dedicated=rails:NoSchedule`"
            ));
        }
        if let Some(e) = effect
            && !TAINT_EFFECTS.contains(&e)
        {
            return Err(format!(
                "`{e}` is not a taint effect; use one of {}",
                TAINT_EFFECTS.join(", ")
            ));
        }
        Ok(Toleration {
            key: key.to_string(),
            value: value.map(str::to_string),
            effect: effect.map(str::to_string),
        })
    }
}

/// CPU-based autoscaling (`autoscaling/v2`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Autoscale {
    /// The fewest pods.
    pub min: i32,
    /// The most pods.
    pub max: i32,
    /// Target average CPU utilization, in percent of the CPU request.
    pub cpu: i32,
}

/// Container requests and limits, in Kubernetes quantities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU request, such as `250m`.
    pub cpu: String,
    /// Memory request, such as `512Mi`.
    pub memory: String,
    /// Memory limit; CPU is left unlimited so that Ruby is not throttled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<String>,
    /// Local disk the container may count on (its log, its writable folders); 256Mi when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<String>,
    /// Local disk past which the kubelet evicts the pod; when unset, what its writable folders
    /// may hold plus 512Mi for its log (2Gi under a writable root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage_limit: Option<String>,
}

impl Resources {
    pub fn web_default() -> Self {
        Self {
            cpu: "250m".into(),
            memory: "512Mi".into(),
            memory_limit: Some("1Gi".into()),
            ephemeral_storage: None,
            ephemeral_storage_limit: None,
        }
    }

    pub fn worker_default() -> Self {
        Self {
            cpu: "100m".into(),
            memory: "384Mi".into(),
            memory_limit: Some("768Mi".into()),
            ephemeral_storage: None,
            ephemeral_storage_limit: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
/// How requests reach the web process: an Ingress, or an HTTPRoute of the Gateway API.
#[serde(deny_unknown_fields)]
pub struct IngressSpec {
    /// The host names it answers, such as `shop.example.com`.
    pub hosts: Vec<String>,
    /// The Gateway (`namespace/name`, or `name` in the app's namespace) that the app's
    /// HTTPRoute attaches to: set, `render` gives an HTTPRoute instead of an Ingress, and TLS is
    /// the Gateway listener's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// The IngressClass; `None` uses the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// TLS through cert-manager.
    #[serde(default)]
    pub tls: bool,
    /// The cert-manager issuer that signs the certificates when `tls` is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `ClusterIssuer` (the default) or a namespaced `Issuer`.
    #[serde(default, skip_serializing_if = "IssuerKind::is_cluster")]
    #[schemars(extend("default" = "ClusterIssuer"))]
    pub issuer_kind: IssuerKind,
    /// Redirect `www.HOST` to `HOST` (ingress-nginx).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub www_redirect: bool,
    /// Largest request body, such as `25m` (ingress-nginx `proxy-body-size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_size: Option<String>,
    /// Seconds to wait for the app's response (ingress-nginx read/send timeouts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
}

/// Which kind of cert-manager issuer signs the certificates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum IssuerKind {
    #[default]
    ClusterIssuer,
    Issuer,
}

/// A Gateway named by `ingress.gateway`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayRef {
    /// `None`: the app's namespace.
    pub namespace: Option<String>,
    pub name: String,
}

impl IngressSpec {
    /// The Gateway the route attaches to, when `gateway` is set and well formed.
    pub fn gateway_ref(&self) -> Option<GatewayRef> {
        let text = self.gateway.as_deref()?.trim();
        match text.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Some(GatewayRef {
                    namespace: Some(ns.to_string()),
                    name: name.to_string(),
                })
            }
            None if !text.is_empty() => Some(GatewayRef {
                namespace: None,
                name: text.to_string(),
            }),
            _ => None,
        }
    }
}

/// Whether a Gateway listener's `hostname` (none, exact or `*.example.com`) takes `host`. A
/// wildcard is a suffix match in the Gateway API (`*.example.com` takes `a.example.com` and
/// `a.b.example.com`, not `example.com`), unlike an Ingress's single label.
pub fn listener_takes(listener_host: Option<&str>, host: &str) -> bool {
    match listener_host {
        None => true,
        Some(l) => match l.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .and_then(|left| left.strip_suffix('.'))
                .is_some_and(|labels| !labels.is_empty()),
            None => l == host,
        },
    }
}

impl GatewayRef {
    /// `namespace/name`, with the app's namespace where the spec names none.
    pub fn display(&self, app_namespace: &str) -> String {
        format!(
            "{}/{}",
            self.namespace.as_deref().unwrap_or(app_namespace),
            self.name
        )
    }
}

impl IssuerKind {
    fn is_cluster(&self) -> bool {
        *self == IssuerKind::ClusterIssuer
    }

    /// The cert-manager annotation that names an issuer of this kind.
    pub fn annotation(&self) -> &'static str {
        match self {
            IssuerKind::ClusterIssuer => "cert-manager.io/cluster-issuer",
            IssuerKind::Issuer => "cert-manager.io/issuer",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
/// The migration Job.
#[serde(deny_unknown_fields)]
pub struct MigrateSpec {
    /// The command it runs, as a list of words.
    pub command: Vec<String>,
    /// `false` when the migration writes into the app's folder (`db/schema.rb`, which Rails
    /// dumps after `db:migrate` unless `dump_schema_after_migration` is off): its Job then keeps
    /// a writable root filesystem while the app's processes do not.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    #[schemars(extend("default" = true))]
    pub read_only_root: bool,
}

impl Default for MigrateSpec {
    fn default() -> Self {
        Self {
            command: DEFAULT_MIGRATE.iter().map(|s| s.to_string()).collect(),
            read_only_root: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
/// A PersistentVolumeClaim the app mounts.
#[serde(deny_unknown_fields)]
pub struct VolumeSpec {
    /// Volume name, for example `storage`.
    pub name: String,
    /// Where the volume is mounted, for example `/rails/storage`.
    pub mount_path: String,
    /// The size of the claim, such as `5Gi`.
    #[serde(default = "default_volume_size")]
    pub size: String,
    /// `ReadWriteOnce` (the default, what block storage gives: one node at a time) or
    /// `ReadWriteMany` (a shared filesystem, which lets the app scale out).
    #[serde(default, skip_serializing_if = "AccessMode::is_read_write_once")]
    #[schemars(extend("default" = "ReadWriteOnce"))]
    pub access_mode: AccessMode,
    /// The StorageClass of the claim; the cluster's default when not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
}

/// How many nodes may mount a volume at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AccessMode {
    #[default]
    ReadWriteOnce,
    ReadWriteMany,
}

impl AccessMode {
    fn is_read_write_once(&self) -> bool {
        *self == AccessMode::ReadWriteOnce
    }

    /// The Kubernetes name of the mode.
    pub fn as_str(&self) -> &'static str {
        match self {
            AccessMode::ReadWriteOnce => "ReadWriteOnce",
            AccessMode::ReadWriteMany => "ReadWriteMany",
        }
    }
}

fn default_health_path() -> String {
    "/up".into()
}

fn default_volume_size() -> String {
    "1Gi".into()
}

fn one() -> i32 {
    1
}

impl AppSpec {
    /// Whether the pods start as root (`uid: 0`), for an entrypoint that drops privileges.
    pub fn starts_as_root(&self) -> bool {
        self.uid == Some(0)
    }

    /// The folders that get an emptyDir under a read-only root filesystem (`<workdir>/tmp`,
    /// `/tmp`, then [`AppSpec::writable`]), or why the root stays writable.
    pub fn writable_paths(&self) -> Result<Vec<String>, String> {
        if !self.read_only_root {
            return Err("the spec turns it off (`read_only_root: false`)".into());
        }
        if self.starts_as_root() {
            return Err(
                "the image starts as root and prepares its own folders before it drops to its user"
                    .into(),
            );
        }
        let Some(workdir) = self.workdir.as_deref().map(|w| w.trim_end_matches('/')) else {
            return Err("the image's working directory is not known (no Dockerfile was read): set `workdir:` in the spec to the image's WORKDIR".into());
        };
        let in_workdir = |p: &str| {
            if p.starts_with('/') {
                p.trim_end_matches('/').to_string()
            } else {
                format!("{workdir}/{}", p.trim_end_matches('/'))
            }
        };
        let mut paths = vec![in_workdir("tmp"), "/tmp".to_string()];
        for p in &self.writable {
            let p = in_workdir(p);
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
        // The app's volume is writable already.
        if let Some(v) = &self.volume {
            paths.retain(|p| p != v.mount_path.trim_end_matches('/'));
        }
        Ok(paths)
    }

    /// The Secret that holds the app's secret env values.
    pub fn secret_name(&self) -> String {
        format!("{}-secrets", self.name)
    }

    /// The secret keys the spec names that `data` (a Secret's data) lacks, in the spec's order.
    /// A key an accessory sets (its URL) is not read from the app Secret.
    pub fn missing_secrets<'a, V>(
        &'a self,
        data: &std::collections::BTreeMap<String, V>,
    ) -> Vec<&'a str> {
        self.secrets
            .iter()
            .filter(|k| !data.contains_key(*k) && !self.secrets.is_optional(k))
            .filter(|k| !self.accessory_urls().contains_key(k.as_str()))
            .map(String::as_str)
            .collect()
    }

    /// The env keys the accessories set (`DATABASE_URL`, `REDIS_URL`), each with the accessory
    /// that sets it: the first of its kind by name.
    pub fn accessory_urls(&self) -> BTreeMap<&'static str, (&str, &AccessorySpec)> {
        let mut out = BTreeMap::new();
        for (name, accessory) in &self.accessories {
            out.entry(accessory.kind.url_key())
                .or_insert((name.as_str(), accessory));
        }
        out
    }

    /// The ConfigMap that holds the plain env, named by its content (`shop-env-1a2b3c4d`): a
    /// deploy writes a new one beside the one the running pods read, so that a change goes live
    /// with the pods of the release that reads it (after its migration), never before.
    pub fn config_map_name(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for (k, v) in &self.env {
            h.update(k);
            h.update([0]);
            h.update(v);
            h.update([0]);
        }
        let short: String = h.finalize()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{}-env-{short}", self.name)
    }

    /// Whether ConfigMap `name` holds the app's plain env, of this release or an earlier one
    /// (`shop-env` before env ConfigMaps were named by content).
    pub fn is_env_config_map(&self, name: &str) -> bool {
        let env = format!("{}-env", self.name);
        name == env
            || name
                .strip_prefix(&env)
                .is_some_and(|rest| rest.starts_with('-'))
    }

    /// Process names in render order: `web` first, then workers by name.
    pub fn process_names(&self) -> Vec<String> {
        std::iter::once("web".to_string())
            .chain(self.workers.keys().cloned())
            .collect()
    }

    /// Replicas of a process, `None` when the app has no such process.
    pub fn replicas_of(&self, process: &str) -> Option<i32> {
        if process == "web" {
            Some(self.web.replicas)
        } else {
            self.workers.get(process).map(|w| w.replicas)
        }
    }

    /// Autoscaling of a process, when an autoscaler owns its replica count.
    pub fn autoscale_of(&self, process: &str) -> Option<Autoscale> {
        if process == "web" {
            self.web.autoscale
        } else {
            self.workers.get(process).and_then(|w| w.autoscale)
        }
    }

    /// Where a process's pods run: the app's placement with the process's laid over it. The
    /// migration Job and one-off pods run where web runs.
    pub fn placement_of(&self, process: &str) -> Placement {
        let own = if process == "web" {
            Some(&self.web.placement)
        } else {
            self.workers.get(process).map(|w| &w.placement)
        };
        match own {
            Some(own) => self.placement.overlaid(own),
            None => self.placement.clone(),
        }
    }

    /// The app's volume, when it is ReadWriteOnce: every pod that mounts it must share a node.
    pub fn single_node_volume(&self) -> Option<&VolumeSpec> {
        self.volume
            .as_ref()
            .filter(|v| v.access_mode == AccessMode::ReadWriteOnce)
    }

    /// Plain env of a process: the app's, with the process's own laid over it.
    pub fn env_of(&self, process: &str) -> BTreeMap<String, String> {
        let own = if process == "web" {
            Some(&self.web.env)
        } else {
            self.workers.get(process).map(|w| &w.env)
        };
        let mut env = self.env.clone();
        env.extend(
            own.into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        env
    }

    /// The Secrets the app owns: its own, its pull secret, its accessories' passwords.
    pub fn own_secret_names(&self) -> Vec<String> {
        let mut names = vec![self.secret_name()];
        names.extend(self.registry.as_ref().map(|r| r.pull_secret.clone()));
        names.extend(self.accessories.keys().map(|a| self.accessory_name(a)));
        names
    }

    /// The Secret that holds an accessory's password: `shop-postgres`.
    pub fn accessory_name(&self, accessory: &str) -> String {
        format!("{}-{accessory}", self.name)
    }

    /// The Gateway the app's HTTPRoute attaches to, when it routes through one
    /// (`ingress.gateway`) rather than an Ingress.
    pub fn gateway(&self) -> Option<GatewayRef> {
        self.ingress.as_ref()?.gateway_ref()
    }

    /// Object name of a process's Deployment.
    pub fn deployment_name(&self, process: &str) -> String {
        format!("{}-{process}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_reference_keeps_registry_port() {
        let image = ImageSpec::parse("registry.local:5000/shop");
        assert_eq!(image.repository, "registry.local:5000/shop");
        assert_eq!(image.tag, None);
        let image = ImageSpec::parse("registry.local:5000/shop:v2");
        assert_eq!(image.repository, "registry.local:5000/shop");
        assert_eq!(image.tag.as_deref(), Some("v2"));
        assert_eq!(image.registry_host(), Some("registry.local:5000"));
    }

    #[test]
    fn tolerations_parse_like_kubectl_taints() {
        let cases = [
            ("dedicated", ("dedicated", None, None)),
            ("dedicated=rails", ("dedicated", Some("rails"), None)),
            (
                "dedicated:NoSchedule",
                ("dedicated", None, Some("NoSchedule")),
            ),
            (
                "pool=web:NoExecute",
                ("pool", Some("web"), Some("NoExecute")),
            ),
        ];
        for (text, (key, value, effect)) in cases {
            let t = Toleration::parse(text).unwrap();
            assert_eq!(
                (t.key.as_str(), t.value.as_deref(), t.effect.as_deref()),
                (key, value, effect),
                "{text}"
            );
        }
        assert!(Toleration::parse("=x").is_err());
        assert!(
            Toleration::parse("k:Sometimes")
                .unwrap_err()
                .contains("NoSchedule")
        );
    }

    #[test]
    fn a_process_placement_lays_over_the_apps() {
        let app = Placement {
            node_selector: BTreeMap::from([
                ("pool".to_string(), "apps".to_string()),
                ("arch".to_string(), "amd64".to_string()),
            ]),
            tolerations: vec![Toleration::parse("pool=apps:NoSchedule").unwrap()],
        };
        let own = Placement {
            node_selector: BTreeMap::from([("pool".to_string(), "jobs".to_string())]),
            tolerations: vec![],
        };
        let merged = app.overlaid(&own);
        assert_eq!(
            merged.node_selector["pool"], "jobs",
            "the process's keys win"
        );
        assert_eq!(merged.node_selector["arch"], "amd64", "maps merge");
        assert_eq!(
            merged.tolerations, app.tolerations,
            "no own tolerations: the app's"
        );
        let own_tolerations = Placement {
            node_selector: BTreeMap::new(),
            tolerations: vec![Toleration::parse("gpu:NoSchedule").unwrap()],
        };
        assert_eq!(
            app.overlaid(&own_tolerations).tolerations,
            own_tolerations.tolerations,
            "lists replace"
        );
    }

    #[test]
    fn docker_hub_images_have_no_registry_host() {
        assert_eq!(ImageSpec::parse("acme/shop:1").registry_host(), None);
        assert_eq!(
            ImageSpec::parse("ghcr.io/acme/shop:1").registry_host(),
            Some("ghcr.io")
        );
    }
}

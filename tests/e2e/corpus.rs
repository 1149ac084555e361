//! The bad-input corpus: spec files, `.env`, Kamal configs, Docker configs, flags and
//! kubeconfigs that are wrong in one way each. One table, run by one loop: each row is an input
//! (what is written into a copy of a fixture app, and the command line), what stderr must say,
//! the exit code, and what must never show. Every case ends without a panic and without a write:
//! the app folder and the cluster are as they were.

use std::path::Path;

use Setup::{DerivedKubeconfigs, File, GoodSpec, Remove, Spec, SpecAndFile, Untouched};

use crate::support::{Run, TestNs, cluster, fixture, kubectl, rails_full};

const SPEC: &str = "config/kubernetes.yml";
/// A valid spec; its namespace must never come to exist.
const GOOD: &str = "name: shop\nimage:\n  repository: ghcr.io/acme/shop\n  tag: v1\nweb:\n  port: 3000\n  replicas: 2\nnamespace: corpus-never-created\n";
const INIT: &[&str] = &["init", "--no-input", "--image", "ghcr.io/acme/shop:1"];
/// `secrets import` into the corpus's own namespace (`{ns}`), which must stay empty.
const IMPORT: &[&str] = &[
    "secrets",
    "import",
    "--kubeconfig",
    "{cluster}",
    "-n",
    "{ns}",
];

/// What a case writes into its copy of the fixture before the command runs.
#[derive(Clone, Copy)]
enum Setup {
    Untouched,
    /// The good spec.
    GoodSpec,
    /// The good spec with `from` replaced by `to`.
    Spec(&'static str, &'static str),
    /// A file (relative to the app folder) with these bytes, and no spec.
    File(&'static str, &'static [u8]),
    /// The good spec, then a file.
    SpecAndFile(&'static str, &'static [u8]),
    /// The spec edited by `(from, to)`, then a file.
    SpecEditAndFile(&'static str, &'static str, &'static str, &'static [u8]),
    /// The good spec, and kubeconfigs made from the test cluster's: `bad-token.kubeconfig`
    /// with a token it refuses, `refused.kubeconfig` with a server nobody answers.
    DerivedKubeconfigs,
    Remove(&'static str),
}

/// The good spec naming secrets (so that `.kamal/secrets` has something to import), and a
/// `.kamal/secrets` of these bytes.
const fn kamal_secrets(file: &'static [u8]) -> Setup {
    Setup::SpecEditAndFile(
        "name: shop\n",
        "name: shop\nsecrets: [RAILS_MASTER_KEY, SHOP_DATABASE_PASSWORD]\n",
        ".kamal/secrets",
        file,
    )
}

/// A kubeconfig whose server nobody answers, with `$cluster` lines and `$user` lines.
macro_rules! kubeconfig {
    ($cluster:literal, $user:literal) => {
        concat!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n",
            $cluster,
            "users:\n- name: u\n  user:\n",
            $user,
            "contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n"
        )
        .as_bytes()
    };
}

/// One bad input and what must come of it.
struct Case {
    name: &'static str,
    /// The fixture app the case starts from.
    fixture: &'static str,
    setup: Setup,
    /// The command line after `kubectl rails`: `{cluster}` is the test cluster's kubeconfig,
    /// `{app}` the app folder, `{ns}` the corpus's namespace.
    args: &'static [&'static str],
    stdin: Option<&'static str>,
    /// Extra environment; values take the same placeholders as `args`.
    env: &'static [(&'static str, &'static str)],
    code: i32,
    /// What stderr must say.
    says: &'static [&'static str],
    /// What must never show on stdout or stderr (a secret the bad input held).
    never_shows: &'static [&'static str],
}

const fn case(
    name: &'static str,
    setup: Setup,
    args: &'static [&'static str],
    code: i32,
    says: &'static [&'static str],
) -> Case {
    Case {
        name,
        fixture: "rails71-sidekiq",
        setup,
        args,
        stdin: None,
        env: &[],
        code,
        says,
        never_shows: &[],
    }
}

impl Case {
    const fn on(self, fixture: &'static str) -> Self {
        Case { fixture, ..self }
    }

    const fn stdin(self, text: &'static str) -> Self {
        Case {
            stdin: Some(text),
            ..self
        }
    }

    const fn env(self, env: &'static [(&'static str, &'static str)]) -> Self {
        Case { env, ..self }
    }

    const fn never_shows(self, never_shows: &'static [&'static str]) -> Self {
        Case {
            never_shows,
            ..self
        }
    }
}

#[rustfmt::skip]
const CASES: &[Case] = &[
    // The spec file.
    case("malformed YAML", Spec("image:\n", "image: [unclosed\n"), &["render"], 1, &["config/kubernetes.yml:2:"]),
    case("unknown top-level key", Spec("web:", "wbe:"), &["render"], 1, &["unknown key `wbe`", "did you mean `web`?"]),
    case("unknown nested key", Spec("  port:", "  prot:"), &["render"], 1, &["config/kubernetes.yml:6:3: unknown key `prot`", "did you mean `port`?"]),
    case("missing required key", Spec("name: shop\n", ""), &["render"], 1, &["missing key `name`"]),
    case("negative replicas", Spec("replicas: 2", "replicas: -2"), &["render"], 1, &["config/kubernetes.yml:7:13: replicas must be 0 or more, not -2"]),
    case("replicas not a number", Spec("replicas: 2", "replicas: lots"), &["render"], 1, &["config/kubernetes.yml:7:13:"]),
    case("invalid app name", Spec("name: shop", "name: Image_Storage"), &["render"], 1, &["config/kubernetes.yml:1:7: invalid app name `Image_Storage`", "use `image-storage`"]),
    case("app name too long", Spec("name: shop", "name: a-name-that-is-far-too-long-for-a-rails-app-on-k8s"), &["render"], 1, &["at most 40 are allowed"]),
    case("invalid namespace", Spec("namespace: corpus-never-created", "namespace: Prod_NS"), &["render"], 1, &["invalid namespace `Prod_NS`"]),
    case("port 0", Spec("port: 3000", "port: 0"), &["render"], 1, &["port 0 is not a valid container port"]),
    case("port out of range", Spec("port: 3000", "port: 70000"), &["render"], 1, &["config/kubernetes.yml:6:9:"]),
    case("health path without slash", Spec("  replicas: 2\n", "  replicas: 2\n  health_path: up\n"), &["render"], 1, &["health path `up` must start with `/`"]),
    case("invalid env key", Spec("name: shop\n", "name: shop\nenv:\n  MY-KEY: x\n"), &["render"], 1, &["`MY-KEY` is not a valid environment variable name"]),
    case("key both env and secret", Spec("name: shop\n", "name: shop\nenv:\n  API_URL: x\nsecrets: [API_URL]\n"), &["render"], 1, &["`API_URL` is both plain env and a secret"]),
    case("invalid secret key", Spec("name: shop\n", "name: shop\nsecrets: [1BAD]\n"), &["render"], 1, &["`1BAD` is not a valid environment variable name"]),
    case("worker named web", Spec("name: shop\n", "name: shop\nworkers:\n  web:\n    command: [bin/jobs]\n"), &["render"], 1, &["`web` is the web process"]),
    case("accessory named web", Spec("name: shop\n", "name: shop\naccessories:\n  web: {kind: redis, image: 'redis:7', size: 1Gi}\n"), &["render"], 1, &["accessory `web` would share names with the app's own objects: `shop-web` is the web process's Deployment and Service"]),
    case("accessory add named like the app Secret", GoodSpec, &["accessory", "add", "redis", "--name", "secrets"], 1, &["`shop-secrets` is the app's Secret", "pass another `--name`"]),
    case("worker without command", Spec("name: shop\n", "name: shop\nworkers:\n  jobs:\n    command: []\n"), &["render"], 1, &["a worker needs a command"]),
    case("ingress without hosts", Spec("name: shop\n", "name: shop\ningress:\n  hosts: []\n"), &["render"], 1, &["an ingress needs at least one host"]),
    case("invalid ingress host", Spec("name: shop\n", "name: shop\ningress:\n  hosts: [Shop_Example.com]\n"), &["render"], 1, &["`Shop_Example.com` is not a valid host name"]),
    case("issuer without tls", Spec("name: shop\n", "name: shop\ningress:\n  hosts: [shop.example.com]\n  issuer: letsencrypt\n"), &["render"], 1, &["an issuer is set but `tls` is off"]),
    case("invalid body size", Spec("name: shop\n", "name: shop\ningress:\n  hosts: [shop.example.com]\n  body_size: lots\n"), &["render"], 1, &["`lots` is not a size such as `25m`"]),
    case("relative volume path", Spec("name: shop\n", "name: shop\nvolume:\n  name: storage\n  mount_path: rails/storage\n"), &["render"], 1, &["mount path `rails/storage` must be absolute"]),
    case("invalid cpu request", Spec("  replicas: 2\n", "  replicas: 2\n  resources: {cpu: fast, memory: 512Mi}\n"), &["render"], 1, &["`fast` is not a Kubernetes quantity"]),
    case("autoscale min above max", Spec("  replicas: 2\n", "  replicas: 2\n  autoscale: {min: 5, max: 2, cpu: 70}\n"), &["render"], 1, &["`min` (5) is greater than `max` (2)"]),
    case("empty spec", File(SPEC, b""), &["render"], 1, &["config/kubernetes.yml:1:1:"]),
    case("spec is a list", File(SPEC, b"- name: shop\n"), &["render"], 1, &["config/kubernetes.yml:1:"]),
    case("non-UTF-8 spec", File(SPEC, b"name: sh\xffop\n"), &["render"], 1, &["config/kubernetes.yml:1:9: the file is not valid UTF-8"]),
    case("missing spec", Untouched, &["render"], 1, &["no spec at", "kubectl rails init"]),
    case("spec is a folder", File("config/kubernetes.yml/keep", b""), &["render"], 1, &["failed to read"]),

    // `.env` files.
    case("unparsable .env line", File(".env", b"DATABASE_URL=postgres://x\nthis is not env\n"), INIT, 1, &[".env` line 2: expected `KEY=value`"]),
    case("invalid .env key", File(".env", b"MY-KEY=hunter2\n"), INIT, 1, &["line 1: the text before `=` is not a valid environment variable name"]),
    case("unclosed .env quote", File(".env", b"SECRET_KEY_BASE=\"abc\n"), INIT, 1, &["line 1: `SECRET_KEY_BASE`: the value opens a \" quote that is never closed"]),
    case("non-UTF-8 .env", File(".env", b"A=1\nB=\xff\xfe\n"), INIT, 1, &[".env` line 2: the line is not valid UTF-8"]),

    // Kamal's `config/deploy.yml`.
    case("malformed Kamal deploy.yml", File("config/deploy.yml", b"service: shop\nimage: [x\n"), INIT, 1, &["cannot parse Kamal config", "line 2"]),
    case("Kamal deploy.yml is a list", File("config/deploy.yml", b"- shop\n"), INIT, 1, &["the top level must be a mapping"]),

    // The app folder.
    case("missing Dockerfile", Remove("Dockerfile"), INIT, 2, &["`--uid`: the user id the image runs as (no Dockerfile says which user the image runs as", "pass `--uid`"]),
    case("not a Rails app", Untouched, &["init", "--no-input"], 1, &["is not a Rails app", "Gemfile"]).on("not-rails"),
    case("no image without a terminal names every missing flag at once", Untouched, &["init", "--no-input"], 2, &["`--image`: the container image", "`--uid`: the user id", "pass `--image`, `--uid`"]),
    case("unknown nested key", Spec("  replicas: 2", "  replica: 2"), &["render"], 1, &["config/kubernetes.yml:7:3: unknown key `replica`", "did you mean `replicas`?"]),

    // Flags.
    case("invalid --name", Untouched, &["init", "--no-input", "--image", "x/y:1", "--name", "Image_Storage"], 2, &["invalid `--name`", "use `image-storage`"]),
    case("--name too long", Untouched, &["init", "--no-input", "--image", "x/y:1", "--name", "a-name-that-is-far-too-long-for-a-rails-app-on-k8s"], 2, &["at most 40"]),
    case("negative --replicas", Untouched, &["init", "--no-input", "--image", "x/y:1", "--replicas", "-1"], 2, &["-1 is negative"]),
    case("invalid --host", Untouched, &["init", "--no-input", "--image", "x/y:1", "--host", "shop example"], 2, &["invalid `--host`"]),
    case("invalid --image", Untouched, &["init", "--no-input", "--image", "Shop Image"], 2, &["invalid `--image`"]),
    case("--port 0", Untouched, &["init", "--no-input", "--image", "x/y:1", "--port", "0"], 2, &["0 is not a port"]),
    case("unknown flag", Untouched, &["render", "--frobnicate"], 2, &["unexpected argument '--frobnicate'"]),
    case("unsupported -o", GoodSpec, &["render", "-o", "wide"], 2, &["does not support `-o wide`", "supported: yaml, json"]),
    case("bad --timeout", GoodSpec, &["deploy", "--timeout", "soon"], 2, &["`soon` is not a duration"]),
    case("--timeout past the end of time", GoodSpec, &["deploy", "--timeout", "18446744073709551615"], 2, &["`18446744073709551615` is longer than a year: a duration is at most `8760h`"]),
    case("--timeout that would wrap", GoodSpec, &["review", "up", "pr-1", "--timeout", "5124095576030432h"], 2, &["`5124095576030432h` is longer than a year"]),
    case("--timeout of migrate past the end of time", GoodSpec, &["migrate", "--timeout", "18446744073709551615s"], 2, &["is longer than a year"]),
    case("latest tag", GoodSpec, &["deploy", "--no-input", "--tag", "latest"], 2, &["`--allow-latest`"]),
    case("invalid -n", GoodSpec, &["render", "-n", "Bad_NS"], 2, &["invalid namespace `Bad_NS`"]),
    case("scale to -1", GoodSpec, &["scale", "web=-1"], 2, &["replicas must be 0 or more"]),
    case("scale unknown process", GoodSpec, &["scale", "sidekiq=2"], 2, &["process `sidekiq` does not exist (the app has web)"]),
    case("invalid secret key flag", GoodSpec, &["secrets", "set", "1BAD=x"], 2, &["`1BAD` is not a valid environment variable name"]),

    // Docker configs (`secrets registry`): refused before the cluster is touched.
    case("Docker config is not JSON", SpecAndFile("docker/config.json", b"{auths:"), &["secrets", "registry", "--server", "ghcr.io", "--docker-config", "{app}/docker/config.json"], 1, &["is invalid"]),
    case("missing Docker config", GoodSpec, &["secrets", "registry", "--server", "ghcr.io", "--docker-config", "{app}/nope/config.json"], 1, &["cannot read the Docker config"]),
    case("registry absent from Docker config", SpecAndFile("docker/config.json", b"{\"auths\":{\"quay.io\":{\"auth\":\"dTpw\"}}}"), &["secrets", "registry", "--server", "ghcr.io", "--docker-config", "{app}/docker/config.json"], 1, &["registry `ghcr.io` is not in the Docker config", "docker login ghcr.io"]),
    case("auth is not base64", SpecAndFile("docker/config.json", b"{\"auths\":{\"ghcr.io\":{\"auth\":\"%%%\"}}}"), &["secrets", "registry", "--server", "ghcr.io", "--docker-config", "{app}/docker/config.json"], 1, &["is not base64"]),
    case("empty password from stdin", GoodSpec, &["secrets", "registry", "--server", "ghcr.io", "--username", "me", "--password-stdin"], 2, &["the password read from stdin is empty"]).stdin("\n"),

    // Kubeconfigs.
    case("missing kubeconfig", GoodSpec, &["status", "--kubeconfig", "{app}/no-such-kubeconfig"], 1, &["failed to load the kubeconfig"]),
    case("malformed kubeconfig", SpecAndFile("bad.kubeconfig", b"clusters: [\n"), &["status", "--kubeconfig", "{app}/bad.kubeconfig"], 1, &["failed to load the kubeconfig"]),
    case("wrong context", GoodSpec, &["status", "--kubeconfig", "{cluster}", "--context", "production"], 1, &["context `production` is not in the kubeconfig"]),
    case("invalid token", DerivedKubeconfigs, &["status", "--kubeconfig", "{app}/bad-token.kubeconfig"], 1, &["Unauthorized"]),
    case("connection refused", DerivedKubeconfigs, &["status", "--kubeconfig", "{app}/refused.kubeconfig"], 1, &["cannot reach the cluster at `https://127.0.0.1:1/`", "hint: check that the cluster is running"]),

    // kubectl's connection flags.
    case("--request-timeout not a duration", GoodSpec, &["status", "--request-timeout", "soon"], 2, &["invalid argument \"soon\" for \"--request-timeout\""]),
    case("--request-timeout in days", GoodSpec, &["status", "--request-timeout", "5d"], 2, &["for \"--request-timeout\""]),
    case("--request-timeout negative", GoodSpec, &["status", "--request-timeout=-1s"], 2, &["for \"--request-timeout\""]),
    case("--request-timeout too big for a duration", GoodSpec, &["status", "--request-timeout", "99999999999999999999h"], 2, &["invalid argument \"99999999999999999999h\" for \"--request-timeout\": `99999999999999999999h` is longer than a year"]),
    case("--request-timeout past the end of time", GoodSpec, &["status", "--request-timeout", "18446744073709551615"], 2, &["is longer than a year"]),
    case("--server without a value", GoodSpec, &["status", "--server"], 2, &["a value is required for '--server <URL>'"]),
    case("--token without a value", GoodSpec, &["status", "--token"], 2, &["a value is required for '--token <TOKEN>'"]),
    case("--as without a value", GoodSpec, &["status", "--as"], 2, &["a value is required for '--as <USER>'"]),
    case("--as-group without --as", GoodSpec, &["status", "--kubeconfig", "{cluster}", "--as-group", "devs"], 1, &["requesting uid, groups or user-extra for kubectl-rails-admin without impersonating a user"]),
    case("--as-uid without --as", GoodSpec, &["status", "--kubeconfig", "{cluster}", "--as-uid", "42"], 1, &["without impersonating a user"]),
    case("--insecure-skip-tls-verify with a CA file", SpecAndFile("ca.crt", b"-----BEGIN CERTIFICATE-----\n"), &["status", "--kubeconfig", "{cluster}", "--insecure-skip-tls-verify", "--certificate-authority", "{app}/ca.crt"], 1, &["specifying a root certificates file with the insecure flag is not allowed"]),
    case("--certificate-authority missing", GoodSpec, &["status", "--kubeconfig", "{cluster}", "--certificate-authority", "{app}/nope.crt"], 1, &["unable to read certificate-authority", "nope.crt"]),
    case("--client-certificate without a key", SpecAndFile("c.crt", b"x"), &["status", "--kubeconfig", "{cluster}", "--client-certificate", "{app}/c.crt"], 1, &["client-key-data or client-key must be specified for kubectl-rails-admin"]),
    case("--client-key without a certificate", SpecAndFile("k.key", b"x"), &["status", "--kubeconfig", "{cluster}", "--client-key", "{app}/k.key"], 1, &["client-cert-data or client-cert must be specified"]),
    case("--client-certificate missing", GoodSpec, &["status", "--kubeconfig", "{cluster}", "--client-certificate", "{app}/no.crt", "--client-key", "{app}/no.key"], 1, &["unable to read client-cert", "no.crt"]),
    case("--client-certificate not PEM", SpecAndFile("bad.crt", b"not a certificate"), &["status", "--kubeconfig", "{cluster}", "--client-certificate", "{app}/bad.crt", "--client-key", "{app}/bad.crt"], 1, &["failed to create a client for `https://127.0.0.1:"]),
    case("--server with spaces", GoodSpec, &["status", "--kubeconfig", "{cluster}", "--server", "https://not a host"], 1, &["the server address `https://not a host` is invalid"]),
    case("--server nobody answers", GoodSpec, &["status", "--kubeconfig", "{cluster}", "--server", "https://127.0.0.1:1"], 1, &["cannot reach the cluster at `https://127.0.0.1:1/`"]),
    case("--server without a kubeconfig or token", GoodSpec, &["status", "--server", "https://127.0.0.1:1"], 1, &["failed to load the kubeconfig"]),
    case("--cluster unknown", GoodSpec, &["status", "--kubeconfig", "{cluster}", "--cluster", "nope"], 1, &["cluster \"nope\" does not exist"]),
    case("--user unknown", GoodSpec, &["status", "--kubeconfig", "{cluster}", "--user", "nope"], 1, &["auth info \"nope\" does not exist"]),
    case("--token refused", GoodSpec, &["status", "--kubeconfig", "{cluster}", "--token", "not-a-valid-token"], 1, &["Unauthorized"]),
    case("--tls-server-name wrong", GoodSpec, &["status", "--kubeconfig", "{cluster}", "--tls-server-name", "wrong.example"], 1, &["cannot reach the cluster"]),
    case("--as someone the admin may not be", GoodSpec, &["status", "--kubeconfig", "{cluster}", "--request-timeout", "0", "-n", "{ns}", "--as", "corpus-nobody"], 1, &["User \"corpus-nobody\" cannot"]),

    // Kubeconfigs that kubectl would refuse.
    case("kubeconfig without a current context", SpecAndFile("k.yaml", b"apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n"), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["the kubeconfig names no current context, and no `--server` was given"]),
    case("kubeconfig cluster without a server", SpecAndFile("k.yaml", b"apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {}\nusers: []\ncontexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n"), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["no server found for cluster"]),
    case("kubeconfig with client-cert and client-cert-data", SpecAndFile("k.yaml", kubeconfig!("", "    client-certificate: /etc/hosts\n    client-certificate-data: eA==\n    client-key: /etc/hosts\n")), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["client-cert-data and client-cert are both specified for u"]),
    case("kubeconfig tokenFile missing", SpecAndFile("k.yaml", kubeconfig!("", "    tokenFile: /nonexistent/token\n")), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["/nonexistent/token"]),
    case("exec credential plugin not found", SpecAndFile("k.yaml", kubeconfig!("", "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: no-such-credential-plugin\n      interactiveMode: Never\n")), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["unable to run auth exec"]),
    case("exec credential plugin fails", SpecAndFile("k.yaml", kubeconfig!("", "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: [-c, 'echo token expired >&2; exit 1']\n      interactiveMode: Never\n")), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["failed to create a client for `https://127.0.0.1:1/`"]),
    case("exec credential plugin prints no ExecCredential", SpecAndFile("k.yaml", kubeconfig!("", "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: echo\n      args: [not json]\n      interactiveMode: Never\n")), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["failed to create a client for `https://127.0.0.1:1/`"]),

    // Proxies.
    case("kubeconfig proxy-url of an unsupported scheme", SpecAndFile("k.yaml", kubeconfig!("    proxy-url: socks4://127.0.0.1:1080\n", "    token: x\n")), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["invalid proxy `socks4://127.0.0.1:1080` in the kubeconfig's `proxy-url`: unsupported scheme `socks4`"]),
    case("kubeconfig proxy-url without a scheme", SpecAndFile("k.yaml", kubeconfig!("    proxy-url: 127.0.0.1:3128\n", "    token: x\n")), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["invalid proxy `127.0.0.1:3128` in the kubeconfig's `proxy-url`"]),
    case("kubeconfig proxy-url nobody answers", SpecAndFile("k.yaml", kubeconfig!("    proxy-url: http://127.0.0.1:1\n", "    token: x\n")), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["through the proxy `http://127.0.0.1:1/`", "hint: check that the proxy is running"]),
    case("HTTPS_PROXY of an unsupported scheme", GoodSpec, &["status", "--kubeconfig", "{cluster}", "--server", "https://api.example.invalid:6443"], 1, &["invalid proxy `ftp://proxy.example:21` in HTTPS_PROXY: unsupported scheme `ftp`"]).env(&[("HTTPS_PROXY", "ftp://proxy.example:21")]),
    case("https_proxy nobody answers", GoodSpec, &["status", "--kubeconfig", "{cluster}", "--server", "https://api.example.invalid:6443"], 1, &["cannot reach the cluster at `https://api.example.invalid:6443/` through the proxy `http://127.0.0.1:1/`"]).env(&[("https_proxy", "http://127.0.0.1:1")]),
    case("HTTP_PROXY for a plain-http server", GoodSpec, &["status", "--kubeconfig", "{cluster}", "--server", "http://api.example.invalid"], 1, &["through the proxy `http://127.0.0.1:1/`"]).env(&[("HTTP_PROXY", "http://127.0.0.1:1")]),
    case("NO_PROXY sends a named server direct", GoodSpec, &["status", "--kubeconfig", "{cluster}", "--server", "https://api.example.invalid:6443"], 1, &["cannot reach the cluster at `https://api.example.invalid:6443/`"]).env(&[("HTTPS_PROXY", "http://127.0.0.1:1"), ("NO_PROXY", ".example.invalid")]),

    // `.env` lines that hold a secret are named by number only.
    case("pasted URL without a key in .env", File(".env", b"A=1\npostgres://user:Pa55w0rd-Corpus@Corpus-Host/db\n"), INIT, 1, &[".env` line 2: expected `KEY=value` (the line's text is not shown: it may be secret)"]).never_shows(&["Pa55w0rd-Corpus", "postgres://", "Corpus-Host"]),
    case("pasted URL with a query in .env", File(".env", b"postgres://user:Pa55w0rd-Corpus@h/db?sslmode=require\n"), INIT, 1, &[".env` line 1: the text before `=` is not a valid environment variable name"]).never_shows(&["Pa55w0rd-Corpus", "sslmode", "postgres"]),

    // `.kamal/secrets`.
    case("kamal secrets line without =", kamal_secrets(b"RAILS_MASTER_KEY=x\nnope\n"), IMPORT, 1, &["`.kamal/secrets` line 2: expected `KEY=value` (the line's text is not shown: it may be secret)"]).on("rails8-kamal").never_shows(&["nope"]),
    case("kamal secrets invalid key", kamal_secrets(b"MY-KEY=x\n"), IMPORT, 1, &["`.kamal/secrets` line 1: the text before `=` is not a valid environment variable name"]).on("rails8-kamal").never_shows(&["MY-KEY"]),
    case("pasted URL with a query in kamal secrets", kamal_secrets(b"RAILS_MASTER_KEY=x\npostgres://u:Pa55w0rd-Corpus@h/db?sslmode=require\n"), IMPORT, 1, &["`.kamal/secrets` line 2: the text before `=` is not a valid environment variable name"]).on("rails8-kamal").never_shows(&["Pa55w0rd-Corpus", "sslmode", "postgres"]),
    case("pasted base64 token in kamal secrets", kamal_secrets(b"c2Vj+cmV0/Corpus-Token==\n"), IMPORT, 1, &["`.kamal/secrets` line 1: the text before `=` is not a valid environment variable name"]).on("rails8-kamal").never_shows(&["Corpus-Token", "c2Vj"]),
    case("kamal secrets command without confirmation", kamal_secrets(b"SHOP_DATABASE_PASSWORD=$(cat config/master.key)\n"), &["secrets", "import", "--kubeconfig", "{cluster}", "-n", "{ns}", "--allow-commands"], 2, &["confirmation needed", "pass `--yes`"]).on("rails8-kamal"),
    case("kamal secrets command fails", kamal_secrets(b"SHOP_DATABASE_PASSWORD=$(echo vault locked >&2; exit 3)\n"), &["secrets", "import", "--kubeconfig", "{cluster}", "-n", "{ns}", "--allow-commands", "--yes"], 1, &["a command failed (exit 3)", "vault locked"]).on("rails8-kamal"),
    case("kamal secrets command hangs", kamal_secrets(b"SHOP_DATABASE_PASSWORD=$(sleep 30)\n"), &["secrets", "import", "--kubeconfig", "{cluster}", "-n", "{ns}", "--allow-commands", "--yes", "--timeout", "1s"], 1, &["did not finish within 1s"]).on("rails8-kamal"),
    case("kamal 2 fetch without kamal installed", kamal_secrets(b"SECRETS=$(kamal-not-installed secrets fetch --adapter 1password --from V/I SHOP_DATABASE_PASSWORD)\nSHOP_DATABASE_PASSWORD=$(kamal-not-installed secrets extract SHOP_DATABASE_PASSWORD ${SECRETS})\n"), &["secrets", "import", "--kubeconfig", "{cluster}", "-n", "{ns}", "--allow-commands", "--yes"], 1, &["a command failed (exit 127)", "kamal-not-installed"]).on("rails8-kamal"),
    case("kamal secrets bad --timeout", kamal_secrets(b"RAILS_MASTER_KEY=x\n"), &["secrets", "import", "--timeout", "soon"], 2, &["`soon` is not a duration"]).on("rails8-kamal"),
    case("kamal secrets skipped line named by key", kamal_secrets(b"RAILS_MASTER_KEY=Xy$9secret\nSHOP_DATABASE_PASSWORD=$(exit 9)\n"), &["secrets", "import", "--kubeconfig", "{cluster}", "-n", "{ns}", "--allow-commands"], 2, &["line 1: RAILS_MASTER_KEY, line 2: SHOP_DATABASE_PASSWORD"]).on("rails8-kamal").never_shows(&["Xy$9secret", "Xysecret", "9secret"]),
];

#[test]
fn corpus_of_bad_inputs() {
    assert!(CASES.len() >= 100, "the corpus holds {} cases", CASES.len());
    // `.kamal/secrets` cases import into a namespace of their own, which must stay empty.
    let corpus_ns = TestNs::new("corpus-kamal");
    let failed: Vec<&str> = CASES
        .iter()
        .filter(|case| std::panic::catch_unwind(|| run_case(case, &corpus_ns)).is_err())
        .map(|case| case.name)
        .collect();
    assert!(failed.is_empty(), "failed cases: {failed:?}");
    corpus_wrote_nothing(&corpus_ns);
}

/// Runs one case in a fresh copy of its fixture, and checks what came of it.
fn run_case(case: &Case, corpus_ns: &TestNs) {
    let app = fixture(case.fixture);
    let dir = app.path();
    set_up(dir, case.setup);
    let cluster = cluster().display().to_string();
    let app_dir = dir.display().to_string();
    let fill = |a: &str| {
        a.replace("{cluster}", &cluster)
            .replace("{app}", &app_dir)
            .replace("{ns}", &corpus_ns.name)
    };
    let args: Vec<String> = case.args.iter().map(|a| fill(a)).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, String)> = case.env.iter().map(|(k, v)| (*k, fill(v))).collect();
    let before = listing(dir);
    let run = rails_full(dir, None, &args, case.stdin, &env);
    check(case, &run);
    if case.code != 0 {
        assert_eq!(
            listing(dir),
            before,
            "{}: a file was written or changed",
            case.name
        );
    }
}

fn set_up(dir: &Path, setup: Setup) {
    let write = |path: &str, bytes: &[u8]| {
        std::fs::create_dir_all(dir.join(path).parent().unwrap()).unwrap();
        std::fs::write(dir.join(path), bytes).unwrap();
    };
    match setup {
        Untouched => {}
        GoodSpec => write(SPEC, GOOD.as_bytes()),
        Spec(from, to) => write(SPEC, GOOD.replacen(from, to, 1).as_bytes()),
        File(path, bytes) => write(path, bytes),
        SpecAndFile(path, bytes) => {
            write(SPEC, GOOD.as_bytes());
            write(path, bytes);
        }
        Setup::SpecEditAndFile(from, to, path, bytes) => {
            write(SPEC, GOOD.replacen(from, to, 1).as_bytes());
            write(path, bytes);
        }
        DerivedKubeconfigs => {
            write(SPEC, GOOD.as_bytes());
            let kubeconfig = std::fs::read_to_string(cluster()).unwrap();
            let with = |key: &str, line: &str| {
                kubeconfig
                    .lines()
                    .map(|l| {
                        if l.trim_start().starts_with(key) {
                            line
                        } else {
                            l
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            write(
                "bad-token.kubeconfig",
                with("token:", "    token: not-a-valid-token").as_bytes(),
            );
            write(
                "refused.kubeconfig",
                with("server:", "    server: https://127.0.0.1:1").as_bytes(),
            );
        }
        Remove(path) => std::fs::remove_file(dir.join(path)).unwrap(),
    }
}

fn check(case: &Case, run: &Run) {
    let name = case.name;
    assert_eq!(
        run.code, case.code,
        "{name}: exit code\nstderr:\n{}",
        run.stderr
    );
    for needle in case.says {
        assert!(
            run.stderr.contains(needle),
            "{name}: stderr lacks {needle:?}:\n{}",
            run.stderr
        );
    }
    assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
    for secret in case.never_shows {
        assert!(
            !run.stderr.contains(secret) && !run.stdout.contains(secret),
            "{name}: `{secret}` shows:\n{}",
            run.stderr
        );
    }
}

/// Every file below `dir` with its bytes, sorted.
fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn corpus_wrote_nothing(corpus_ns: &TestNs) {
    let ns = kubectl(
        cluster(),
        &[
            "get",
            "namespace",
            "corpus-never-created",
            "--ignore-not-found",
            "-o",
            "name",
        ],
    );
    assert_eq!(ns.stdout.trim(), "", "no namespace was created");
    let written = corpus_ns
        .kubectl(&["get", "secrets,configmaps,leases", "-o", "name"])
        .success()
        .stdout;
    let written: Vec<&str> = written
        .lines()
        .filter(|l| !l.contains("kube-root-ca.crt"))
        .collect();
    assert!(written.is_empty(), "nothing was written: {written:?}");
}

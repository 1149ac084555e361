//! The bad-input corpus: spec files, `.env`, Kamal configs, Docker configs, flags and
//! kubeconfigs that are wrong in one way each. Every case gets its specific message and exit
//! code, no panic, and no write: the app folder and the cluster are as they were.

use std::path::Path;

use crate::support::{cluster, fixture, rails_full};

const SPEC: &str = "config/kubernetes.yml";
/// A valid spec; its namespace must never come to exist.
const GOOD: &str = "name: shop\nimage:\n  repository: ghcr.io/acme/shop\n  tag: v1\nweb:\n  port: 3000\n  replicas: 2\nnamespace: corpus-never-created\n";

enum Setup {
    None,
    /// Writes the spec with `GOOD` edited by `(from, to)`.
    Spec(&'static str, &'static str),
    /// Writes a file (relative to the app folder) with these bytes.
    File(&'static str, &'static [u8]),
    /// Writes the good spec, then a file.
    SpecAndFile(&'static str, &'static [u8]),
    /// Writes the spec with `GOOD` edited by `(from, to)`, then a file.
    SpecEditAndFile(&'static str, &'static str, &'static str, &'static [u8]),
    Remove(&'static str),
}

struct Case {
    name: &'static str,
    fixture: &'static str,
    setup: Setup,
    /// `{cluster}` is the test cluster's kubeconfig, `{app}` the app folder.
    args: &'static [&'static str],
    stdin: Option<&'static str>,
    /// Extra environment; values take the same placeholders as `args`.
    env: &'static [(&'static str, &'static str)],
    code: i32,
    expect: &'static [&'static str],
    /// Text that must not show (a secret the bad input held).
    absent: &'static [&'static str],
}

const fn case(
    name: &'static str,
    setup: Setup,
    args: &'static [&'static str],
    code: i32,
    expect: &'static [&'static str],
) -> Case {
    Case {
        name,
        fixture: "rails71-sidekiq",
        setup,
        args,
        stdin: None,
        env: &[],
        code,
        expect,
        absent: &[],
    }
}

/// A spec that names secrets, so that `.kamal/secrets` has something to import.
const WITH_SECRETS: (&str, &str) = (
    "name: shop\n",
    "name: shop\nsecrets: [RAILS_MASTER_KEY, SHOP_DATABASE_PASSWORD]\n",
);

/// `secrets import` into the corpus's own namespace (`{ns}`), which must stay empty.
const IMPORT: &[&str] = &[
    "secrets",
    "import",
    "--kubeconfig",
    "{cluster}",
    "-n",
    "{ns}",
];

/// A kubeconfig whose server nobody answers, with `extra` cluster lines and `user` lines.
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

fn with_env(env: &'static [(&'static str, &'static str)], c: Case) -> Case {
    Case { env, ..c }
}

fn without(absent: &'static [&'static str], c: Case) -> Case {
    Case { absent, ..c }
}

fn kamal(
    name: &'static str,
    file: &'static [u8],
    args: &'static [&'static str],
    code: i32,
    expect: &'static [&'static str],
) -> Case {
    Case {
        fixture: "rails8-kamal",
        ..case(
            name,
            Setup::SpecEditAndFile(WITH_SECRETS.0, WITH_SECRETS.1, ".kamal/secrets", file),
            args,
            code,
            expect,
        )
    }
}

/// Cases added for kubectl's flags, proxies, kubeconfig identities and `.kamal/secrets`.
fn more_cases() -> Vec<Case> {
    let status = |extra: &'static [&'static str]| extra;
    vec![
        // kubectl's connection flags.
        case("--request-timeout not a duration", Setup::Spec("", ""), &["status", "--request-timeout", "soon"], 2, &["invalid argument \"soon\" for \"--request-timeout\""]),
        case("--request-timeout in days", Setup::Spec("", ""), &["status", "--request-timeout", "5d"], 2, &["for \"--request-timeout\""]),
        case("--request-timeout negative", Setup::Spec("", ""), &["status", "--request-timeout=-1s"], 2, &["for \"--request-timeout\""]),
        case("--server without a value", Setup::Spec("", ""), &["status", "--server"], 2, &["a value is required for '--server <URL>'"]),
        case("--token without a value", Setup::Spec("", ""), &["status", "--token"], 2, &["a value is required for '--token <TOKEN>'"]),
        case("--as without a value", Setup::Spec("", ""), &["status", "--as"], 2, &["a value is required for '--as <USER>'"]),
        case("--as-group without --as", Setup::Spec("", ""), status(&["status", "--kubeconfig", "{cluster}", "--as-group", "devs"]), 1, &["requesting uid, groups or user-extra for kubectl-rails-admin without impersonating a user"]),
        case("--as-uid without --as", Setup::Spec("", ""), &["status", "--kubeconfig", "{cluster}", "--as-uid", "42"], 1, &["without impersonating a user"]),
        case("--insecure-skip-tls-verify with a CA file", Setup::SpecAndFile("ca.crt", b"-----BEGIN CERTIFICATE-----\n"), &["status", "--kubeconfig", "{cluster}", "--insecure-skip-tls-verify", "--certificate-authority", "{app}/ca.crt"], 1, &["specifying a root certificates file with the insecure flag is not allowed"]),
        case("--certificate-authority missing", Setup::Spec("", ""), &["status", "--kubeconfig", "{cluster}", "--certificate-authority", "{app}/nope.crt"], 1, &["unable to read certificate-authority", "nope.crt"]),
        case("--client-certificate without a key", Setup::SpecAndFile("c.crt", b"x"), &["status", "--kubeconfig", "{cluster}", "--client-certificate", "{app}/c.crt"], 1, &["client-key-data or client-key must be specified for kubectl-rails-admin"]),
        case("--client-key without a certificate", Setup::SpecAndFile("k.key", b"x"), &["status", "--kubeconfig", "{cluster}", "--client-key", "{app}/k.key"], 1, &["client-cert-data or client-cert must be specified"]),
        case("--client-certificate missing", Setup::Spec("", ""), &["status", "--kubeconfig", "{cluster}", "--client-certificate", "{app}/no.crt", "--client-key", "{app}/no.key"], 1, &["unable to read client-cert", "no.crt"]),
        case("--client-certificate not PEM", Setup::SpecAndFile("bad.crt", b"not a certificate"), &["status", "--kubeconfig", "{cluster}", "--client-certificate", "{app}/bad.crt", "--client-key", "{app}/bad.crt"], 1, &["failed to create a client for `https://127.0.0.1:"]),
        case("--server with spaces", Setup::Spec("", ""), &["status", "--kubeconfig", "{cluster}", "--server", "https://not a host"], 1, &["the server address `https://not a host` is invalid"]),
        case("--server nobody answers", Setup::Spec("", ""), &["status", "--kubeconfig", "{cluster}", "--server", "https://127.0.0.1:1"], 1, &["cannot reach the cluster at `https://127.0.0.1:1/`"]),
        case("--server without a kubeconfig or token", Setup::Spec("", ""), &["status", "--server", "https://127.0.0.1:1"], 1, &["failed to load the kubeconfig"]),
        case("--cluster unknown", Setup::Spec("", ""), &["status", "--kubeconfig", "{cluster}", "--cluster", "nope"], 1, &["cluster \"nope\" does not exist"]),
        case("--user unknown", Setup::Spec("", ""), &["status", "--kubeconfig", "{cluster}", "--user", "nope"], 1, &["auth info \"nope\" does not exist"]),
        case("--token refused", Setup::Spec("", ""), &["status", "--kubeconfig", "{cluster}", "--token", "not-a-valid-token"], 1, &["Unauthorized"]),
        case("--tls-server-name wrong", Setup::Spec("", ""), &["status", "--kubeconfig", "{cluster}", "--tls-server-name", "wrong.example"], 1, &["cannot reach the cluster"]),
        case("--as someone the admin may not be", Setup::Spec("", ""), &["status", "--kubeconfig", "{cluster}", "--request-timeout", "0", "-n", "{ns}", "--as", "corpus-nobody"], 1, &["User \"corpus-nobody\" cannot"]),
        // Kubeconfigs.
        case("kubeconfig without a current context", Setup::SpecAndFile("k.yaml", b"apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n"), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["the kubeconfig names no current context, and no `--server` was given"]),
        case("kubeconfig cluster without a server", Setup::SpecAndFile("k.yaml", b"apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {}\nusers: []\ncontexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n"), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["no server found for cluster"]),
        case("kubeconfig with client-cert and client-cert-data", Setup::SpecAndFile("k.yaml", kubeconfig!("", "    client-certificate: /etc/hosts\n    client-certificate-data: eA==\n    client-key: /etc/hosts\n")), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["client-cert-data and client-cert are both specified for u"]),
        case("kubeconfig tokenFile missing", Setup::SpecAndFile("k.yaml", kubeconfig!("", "    tokenFile: /nonexistent/token\n")), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["/nonexistent/token"]),
        case("exec credential plugin not found", Setup::SpecAndFile("k.yaml", kubeconfig!("", "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: no-such-credential-plugin\n      interactiveMode: Never\n")), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["unable to run auth exec"]),
        case("exec credential plugin fails", Setup::SpecAndFile("k.yaml", kubeconfig!("", "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: [-c, 'echo token expired >&2; exit 1']\n      interactiveMode: Never\n")), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["failed to create a client for `https://127.0.0.1:1/`"]),
        case("exec credential plugin prints no ExecCredential", Setup::SpecAndFile("k.yaml", kubeconfig!("", "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: echo\n      args: [not json]\n      interactiveMode: Never\n")), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["failed to create a client for `https://127.0.0.1:1/`"]),
        // Proxies.
        case("kubeconfig proxy-url of an unsupported scheme", Setup::SpecAndFile("k.yaml", kubeconfig!("    proxy-url: socks4://127.0.0.1:1080\n", "    token: x\n")), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["invalid proxy `socks4://127.0.0.1:1080` in the kubeconfig's `proxy-url`: unsupported scheme `socks4`"]),
        case("kubeconfig proxy-url without a scheme", Setup::SpecAndFile("k.yaml", kubeconfig!("    proxy-url: 127.0.0.1:3128\n", "    token: x\n")), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["invalid proxy `127.0.0.1:3128` in the kubeconfig's `proxy-url`"]),
        case("kubeconfig proxy-url nobody answers", Setup::SpecAndFile("k.yaml", kubeconfig!("    proxy-url: http://127.0.0.1:1\n", "    token: x\n")), &["status", "--kubeconfig", "{app}/k.yaml"], 1, &["through the proxy `http://127.0.0.1:1/`", "hint: check that the proxy is running"]),
        with_env(&[("HTTPS_PROXY", "ftp://proxy.example:21")], case("HTTPS_PROXY of an unsupported scheme", Setup::Spec("", ""), &["status", "--kubeconfig", "{cluster}", "--server", "https://api.example.invalid:6443"], 1, &["invalid proxy `ftp://proxy.example:21` in HTTPS_PROXY: unsupported scheme `ftp`"])),
        with_env(&[("https_proxy", "http://127.0.0.1:1")], case("https_proxy nobody answers", Setup::Spec("", ""), &["status", "--kubeconfig", "{cluster}", "--server", "https://api.example.invalid:6443"], 1, &["cannot reach the cluster at `https://api.example.invalid:6443/` through the proxy `http://127.0.0.1:1/`"])),
        with_env(&[("HTTP_PROXY", "http://127.0.0.1:1")], case("HTTP_PROXY for a plain-http server", Setup::Spec("", ""), &["status", "--kubeconfig", "{cluster}", "--server", "http://api.example.invalid"], 1, &["through the proxy `http://127.0.0.1:1/`"])),
        with_env(&[("HTTPS_PROXY", "http://127.0.0.1:1"), ("NO_PROXY", ".example.invalid")], case("NO_PROXY sends a named server direct", Setup::Spec("", ""), &["status", "--kubeconfig", "{cluster}", "--server", "https://api.example.invalid:6443"], 1, &["cannot reach the cluster at `https://api.example.invalid:6443/`"])),
        // `.env` lines that hold a secret are named by number only.
        without(&["Pa55w0rd-Corpus", "postgres://", "Corpus-Host"], case("pasted URL without a key in .env", Setup::File(".env", b"A=1\npostgres://user:Pa55w0rd-Corpus@Corpus-Host/db\n"), INIT, 1, &[".env` line 2: expected `KEY=value` (the line's text is not shown: it may be secret)"])),
        without(&["Pa55w0rd-Corpus", "sslmode", "postgres"], case("pasted URL with a query in .env", Setup::File(".env", b"postgres://user:Pa55w0rd-Corpus@h/db?sslmode=require\n"), INIT, 1, &[".env` line 1: the text before `=` is not a valid environment variable name"])),
        // `.kamal/secrets`.
        kamal("kamal secrets line without =", b"RAILS_MASTER_KEY=x\nnope\n", IMPORT, 1, &["`.kamal/secrets` line 2: expected `KEY=value`"]),
        kamal("kamal secrets invalid key", b"MY-KEY=x\n", IMPORT, 1, &["`.kamal/secrets` line 1: `MY-KEY` is not a valid environment variable name"]),
        kamal("kamal secrets command without confirmation", b"SHOP_DATABASE_PASSWORD=$(cat config/master.key)\n", &["secrets", "import", "--kubeconfig", "{cluster}", "-n", "{ns}", "--allow-commands"], 2, &["confirmation needed", "pass `--yes`"]),
        kamal("kamal secrets command fails", b"SHOP_DATABASE_PASSWORD=$(echo vault locked >&2; exit 3)\n", &["secrets", "import", "--kubeconfig", "{cluster}", "-n", "{ns}", "--allow-commands", "--yes"], 1, &["a command failed (exit 3)", "vault locked"]),
        kamal("kamal secrets command hangs", b"SHOP_DATABASE_PASSWORD=$(sleep 30)\n", &["secrets", "import", "--kubeconfig", "{cluster}", "-n", "{ns}", "--allow-commands", "--yes", "--timeout", "1s"], 1, &["did not finish within 1s"]),
        kamal("kamal 2 fetch without kamal installed", b"SECRETS=$(kamal-not-installed secrets fetch --adapter 1password --from V/I SHOP_DATABASE_PASSWORD)\nSHOP_DATABASE_PASSWORD=$(kamal-not-installed secrets extract SHOP_DATABASE_PASSWORD ${SECRETS})\n", &["secrets", "import", "--kubeconfig", "{cluster}", "-n", "{ns}", "--allow-commands", "--yes"], 1, &["a command failed (exit 127)", "kamal-not-installed"]),
        kamal("kamal secrets bad --timeout", b"RAILS_MASTER_KEY=x\n", &["secrets", "import", "--timeout", "soon"], 2, &["`soon` is not a duration"]),
        without(&["Xy$9secret", "Xysecret", "9secret"], kamal("kamal secrets skipped line named by key", b"RAILS_MASTER_KEY=Xy$9secret\nSHOP_DATABASE_PASSWORD=$(exit 9)\n", &["secrets", "import", "--kubeconfig", "{cluster}", "-n", "{ns}", "--allow-commands"], 2, &["line 1: RAILS_MASTER_KEY, line 2: SHOP_DATABASE_PASSWORD"])),
    ]
}

const INIT: &[&str] = &["init", "--no-input", "--image", "ghcr.io/acme/shop:1"];

fn cases() -> Vec<Case> {
    let mut all = first_cases();
    all.extend(more_cases());
    all
}

fn first_cases() -> Vec<Case> {
    vec![
        // The spec file.
        case(
            "malformed YAML",
            Setup::Spec("image:\n", "image: [unclosed\n"),
            &["render"],
            1,
            &["config/kubernetes.yml:2:"],
        ),
        case(
            "unknown top-level key",
            Setup::Spec("web:", "wbe:"),
            &["render"],
            1,
            &["unknown key `wbe`", "did you mean `web`?"],
        ),
        case(
            "unknown nested key",
            Setup::Spec("  port:", "  prot:"),
            &["render"],
            1,
            &[
                "config/kubernetes.yml:6:3: unknown key `prot`",
                "did you mean `port`?",
            ],
        ),
        case(
            "missing required key",
            Setup::Spec("name: shop\n", ""),
            &["render"],
            1,
            &["missing key `name`"],
        ),
        case(
            "negative replicas",
            Setup::Spec("replicas: 2", "replicas: -2"),
            &["render"],
            1,
            &["config/kubernetes.yml:7:13: replicas must be 0 or more, not -2"],
        ),
        case(
            "replicas not a number",
            Setup::Spec("replicas: 2", "replicas: lots"),
            &["render"],
            1,
            &["config/kubernetes.yml:7:13:"],
        ),
        case(
            "invalid app name",
            Setup::Spec("name: shop", "name: Image_Storage"),
            &["render"],
            1,
            &[
                "config/kubernetes.yml:1:7: invalid app name `Image_Storage`",
                "use `image-storage`",
            ],
        ),
        case(
            "app name too long",
            Setup::Spec(
                "name: shop",
                "name: a-name-that-is-far-too-long-for-a-rails-app-on-k8s",
            ),
            &["render"],
            1,
            &["at most 40 are allowed"],
        ),
        case(
            "invalid namespace",
            Setup::Spec("namespace: corpus-never-created", "namespace: Prod_NS"),
            &["render"],
            1,
            &["invalid namespace `Prod_NS`"],
        ),
        case(
            "port 0",
            Setup::Spec("port: 3000", "port: 0"),
            &["render"],
            1,
            &["port 0 is not a valid container port"],
        ),
        case(
            "port out of range",
            Setup::Spec("port: 3000", "port: 70000"),
            &["render"],
            1,
            &["config/kubernetes.yml:6:9:"],
        ),
        case(
            "health path without slash",
            Setup::Spec("  replicas: 2\n", "  replicas: 2\n  health_path: up\n"),
            &["render"],
            1,
            &["health path `up` must start with `/`"],
        ),
        case(
            "invalid env key",
            Setup::Spec("name: shop\n", "name: shop\nenv:\n  MY-KEY: x\n"),
            &["render"],
            1,
            &["`MY-KEY` is not a valid environment variable name"],
        ),
        case(
            "key both env and secret",
            Setup::Spec(
                "name: shop\n",
                "name: shop\nenv:\n  API_URL: x\nsecrets: [API_URL]\n",
            ),
            &["render"],
            1,
            &["`API_URL` is both plain env and a secret"],
        ),
        case(
            "invalid secret key",
            Setup::Spec("name: shop\n", "name: shop\nsecrets: [1BAD]\n"),
            &["render"],
            1,
            &["`1BAD` is not a valid environment variable name"],
        ),
        case(
            "worker named web",
            Setup::Spec(
                "name: shop\n",
                "name: shop\nworkers:\n  web:\n    command: [bin/jobs]\n",
            ),
            &["render"],
            1,
            &["`web` is the web process"],
        ),
        case(
            "worker without command",
            Setup::Spec(
                "name: shop\n",
                "name: shop\nworkers:\n  jobs:\n    command: []\n",
            ),
            &["render"],
            1,
            &["a worker needs a command"],
        ),
        case(
            "ingress without hosts",
            Setup::Spec("name: shop\n", "name: shop\ningress:\n  hosts: []\n"),
            &["render"],
            1,
            &["an ingress needs at least one host"],
        ),
        case(
            "invalid ingress host",
            Setup::Spec(
                "name: shop\n",
                "name: shop\ningress:\n  hosts: [Shop_Example.com]\n",
            ),
            &["render"],
            1,
            &["`Shop_Example.com` is not a valid host name"],
        ),
        case(
            "issuer without tls",
            Setup::Spec(
                "name: shop\n",
                "name: shop\ningress:\n  hosts: [shop.example.com]\n  issuer: letsencrypt\n",
            ),
            &["render"],
            1,
            &["an issuer is set but `tls` is off"],
        ),
        case(
            "invalid body size",
            Setup::Spec(
                "name: shop\n",
                "name: shop\ningress:\n  hosts: [shop.example.com]\n  body_size: lots\n",
            ),
            &["render"],
            1,
            &["`lots` is not a size such as `25m`"],
        ),
        case(
            "relative volume path",
            Setup::Spec(
                "name: shop\n",
                "name: shop\nvolume:\n  name: storage\n  mount_path: rails/storage\n",
            ),
            &["render"],
            1,
            &["mount path `rails/storage` must be absolute"],
        ),
        case(
            "invalid cpu request",
            Setup::Spec(
                "  replicas: 2\n",
                "  replicas: 2\n  resources: {cpu: fast, memory: 512Mi}\n",
            ),
            &["render"],
            1,
            &["`fast` is not a Kubernetes quantity"],
        ),
        case(
            "autoscale min above max",
            Setup::Spec(
                "  replicas: 2\n",
                "  replicas: 2\n  autoscale: {min: 5, max: 2, cpu: 70}\n",
            ),
            &["render"],
            1,
            &["`min` (5) is greater than `max` (2)"],
        ),
        case(
            "empty spec",
            Setup::File(SPEC, b""),
            &["render"],
            1,
            &["config/kubernetes.yml:1:1:"],
        ),
        case(
            "spec is a list",
            Setup::File(SPEC, b"- name: shop\n"),
            &["render"],
            1,
            &["config/kubernetes.yml:1:"],
        ),
        case(
            "non-UTF-8 spec",
            Setup::File(SPEC, b"name: sh\xffop\n"),
            &["render"],
            1,
            &["config/kubernetes.yml:1:9: the file is not valid UTF-8"],
        ),
        case(
            "missing spec",
            Setup::None,
            &["render"],
            1,
            &["no spec at", "kubectl rails init"],
        ),
        case(
            "spec is a folder",
            Setup::File("config/kubernetes.yml/keep", b""),
            &["render"],
            1,
            &["failed to read"],
        ),
        // .env files.
        case(
            "unparsable .env line",
            Setup::File(".env", b"DATABASE_URL=postgres://x\nthis is not env\n"),
            INIT,
            1,
            &[".env` line 2: expected `KEY=value`"],
        ),
        case(
            "invalid .env key",
            Setup::File(".env", b"MY-KEY=hunter2\n"),
            INIT,
            1,
            &["line 1: the text before `=` is not a valid environment variable name"],
        ),
        case(
            "unclosed .env quote",
            Setup::File(".env", b"SECRET_KEY_BASE=\"abc\n"),
            INIT,
            1,
            &["line 1: `SECRET_KEY_BASE`: the value opens a \" quote that is never closed"],
        ),
        case(
            "non-UTF-8 .env",
            Setup::File(".env", b"A=1\nB=\xff\xfe\n"),
            INIT,
            1,
            &[".env` line 2: the line is not valid UTF-8"],
        ),
        // Kamal.
        case(
            "malformed Kamal deploy.yml",
            Setup::File("config/deploy.yml", b"service: shop\nimage: [x\n"),
            INIT,
            1,
            &["cannot parse Kamal config", "line 2"],
        ),
        case(
            "Kamal deploy.yml is a list",
            Setup::File("config/deploy.yml", b"- shop\n"),
            INIT,
            1,
            &["the top level must be a mapping"],
        ),
        // The app folder.
        case(
            "missing Dockerfile",
            Setup::Remove("Dockerfile"),
            INIT,
            1,
            &["no `Dockerfile` in", "pass `--port`"],
        ),
        Case {
            fixture: "not-rails",
            ..case(
                "not a Rails app",
                Setup::None,
                &["init", "--no-input"],
                1,
                &["is not a Rails app", "Gemfile"],
            )
        },
        case(
            "no image without a terminal names the flag",
            Setup::None,
            &["init", "--no-input"],
            2,
            &["Container image", "pass `--image`"],
        ),
        case(
            "unknown nested key",
            Setup::Spec("  replicas: 2", "  replica: 2"),
            &["render"],
            1,
            &[
                "config/kubernetes.yml:7:3: unknown key `replica`",
                "did you mean `replicas`?",
            ],
        ),
        // Flags.
        case(
            "invalid --name",
            Setup::None,
            &[
                "init",
                "--no-input",
                "--image",
                "x/y:1",
                "--name",
                "Image_Storage",
            ],
            2,
            &["invalid `--name`", "use `image-storage`"],
        ),
        case(
            "--name too long",
            Setup::None,
            &[
                "init",
                "--no-input",
                "--image",
                "x/y:1",
                "--name",
                "a-name-that-is-far-too-long-for-a-rails-app-on-k8s",
            ],
            2,
            &["at most 40"],
        ),
        case(
            "negative --replicas",
            Setup::None,
            &["init", "--no-input", "--image", "x/y:1", "--replicas", "-1"],
            2,
            &["-1 is negative"],
        ),
        case(
            "invalid --host",
            Setup::None,
            &[
                "init",
                "--no-input",
                "--image",
                "x/y:1",
                "--host",
                "shop example",
            ],
            2,
            &["invalid `--host`"],
        ),
        case(
            "invalid --image",
            Setup::None,
            &["init", "--no-input", "--image", "Shop Image"],
            2,
            &["invalid `--image`"],
        ),
        case(
            "--port 0",
            Setup::None,
            &["init", "--no-input", "--image", "x/y:1", "--port", "0"],
            2,
            &["0 is not a port"],
        ),
        case(
            "unknown flag",
            Setup::None,
            &["render", "--frobnicate"],
            2,
            &["unexpected argument '--frobnicate'"],
        ),
        case(
            "unsupported -o",
            Setup::Spec("", ""),
            &["render", "-o", "wide"],
            2,
            &["does not support `-o wide`", "supported: yaml, json"],
        ),
        case(
            "bad --timeout",
            Setup::Spec("", ""),
            &["deploy", "--timeout", "soon"],
            2,
            &["`soon` is not a duration"],
        ),
        case(
            "latest tag",
            Setup::Spec("", ""),
            &["deploy", "--no-input", "--tag", "latest"],
            2,
            &["`--allow-latest`"],
        ),
        case(
            "invalid -n",
            Setup::Spec("", ""),
            &["render", "-n", "Bad_NS"],
            2,
            &["invalid namespace `Bad_NS`"],
        ),
        case(
            "scale to -1",
            Setup::Spec("", ""),
            &["scale", "web=-1"],
            2,
            &["replicas must be 0 or more"],
        ),
        case(
            "scale unknown process",
            Setup::Spec("", ""),
            &["scale", "sidekiq=2"],
            2,
            &["process `sidekiq` does not exist (the app has web)"],
        ),
        case(
            "invalid secret key flag",
            Setup::Spec("", ""),
            &["secrets", "set", "1BAD=x"],
            2,
            &["`1BAD` is not a valid environment variable name"],
        ),
        // Docker configs (`secrets registry`): refused before the cluster is touched.
        case(
            "Docker config is not JSON",
            Setup::SpecAndFile("docker/config.json", b"{auths:"),
            &[
                "secrets",
                "registry",
                "--server",
                "ghcr.io",
                "--docker-config",
                "{app}/docker/config.json",
            ],
            1,
            &["is invalid"],
        ),
        case(
            "missing Docker config",
            Setup::Spec("", ""),
            &[
                "secrets",
                "registry",
                "--server",
                "ghcr.io",
                "--docker-config",
                "{app}/nope/config.json",
            ],
            1,
            &["cannot read the Docker config"],
        ),
        case(
            "registry absent from Docker config",
            Setup::SpecAndFile(
                "docker/config.json",
                br#"{"auths":{"quay.io":{"auth":"dTpw"}}}"#,
            ),
            &[
                "secrets",
                "registry",
                "--server",
                "ghcr.io",
                "--docker-config",
                "{app}/docker/config.json",
            ],
            1,
            &[
                "registry `ghcr.io` is not in the Docker config",
                "docker login ghcr.io",
            ],
        ),
        case(
            "auth is not base64",
            Setup::SpecAndFile(
                "docker/config.json",
                br#"{"auths":{"ghcr.io":{"auth":"%%%"}}}"#,
            ),
            &[
                "secrets",
                "registry",
                "--server",
                "ghcr.io",
                "--docker-config",
                "{app}/docker/config.json",
            ],
            1,
            &["is not base64"],
        ),
        Case {
            stdin: Some("\n"),
            ..case(
                "empty password from stdin",
                Setup::Spec("", ""),
                &[
                    "secrets",
                    "registry",
                    "--server",
                    "ghcr.io",
                    "--username",
                    "me",
                    "--password-stdin",
                ],
                2,
                &["the password read from stdin is empty"],
            )
        },
        // Kubeconfigs.
        case(
            "missing kubeconfig",
            Setup::Spec("", ""),
            &["status", "--kubeconfig", "{app}/no-such-kubeconfig"],
            1,
            &["failed to load the kubeconfig"],
        ),
        case(
            "malformed kubeconfig",
            Setup::SpecAndFile("bad.kubeconfig", b"clusters: [\n"),
            &["status", "--kubeconfig", "{app}/bad.kubeconfig"],
            1,
            &["failed to load the kubeconfig"],
        ),
        case(
            "wrong context",
            Setup::Spec("", ""),
            &[
                "status",
                "--kubeconfig",
                "{cluster}",
                "--context",
                "production",
            ],
            1,
            &["context `production` is not in the kubeconfig"],
        ),
        case(
            "invalid token",
            Setup::SpecAndFile("bad-token.kubeconfig", b""),
            &["status", "--kubeconfig", "{app}/bad-token.kubeconfig"],
            1,
            &["Unauthorized"],
        ),
        case(
            "connection refused",
            Setup::SpecAndFile("refused.kubeconfig", b""),
            &["status", "--kubeconfig", "{app}/refused.kubeconfig"],
            1,
            &[
                "cannot reach the cluster at `https://127.0.0.1:1/`",
                "hint: check that the cluster is running",
            ],
        ),
    ]
}

/// Kubeconfigs that need the real cluster's CA and address, derived from the test cluster's.
fn write_derived_kubeconfigs(app: &Path) {
    let text = std::fs::read_to_string(cluster()).unwrap();
    let bad_token = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("token:") {
                "    token: not-a-valid-token".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(app.join("bad-token.kubeconfig"), bad_token).unwrap();
    let refused = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("server:") {
                "    server: https://127.0.0.1:1".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(app.join("refused.kubeconfig"), refused).unwrap();
}

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

#[test]
fn corpus_of_bad_inputs() {
    let cases = cases();
    assert!(cases.len() >= 100, "the corpus holds {} cases", cases.len());
    // `.kamal/secrets` cases import into a namespace of their own, which must stay empty.
    let kamal_ns = crate::support::TestNs::new("corpus-kamal");
    let mut failed = Vec::new();
    for case in cases {
        let app = fixture(case.fixture);
        let dir = app.path();
        match case.setup {
            Setup::None => {}
            Setup::Spec(from, to) => {
                std::fs::write(dir.join(SPEC), GOOD.replacen(from, to, 1)).unwrap()
            }
            Setup::File(path, bytes) => {
                std::fs::create_dir_all(dir.join(path).parent().unwrap()).unwrap();
                std::fs::write(dir.join(path), bytes).unwrap();
            }
            Setup::SpecAndFile(path, bytes) => {
                std::fs::write(dir.join(SPEC), GOOD).unwrap();
                std::fs::create_dir_all(dir.join(path).parent().unwrap()).unwrap();
                std::fs::write(dir.join(path), bytes).unwrap();
                if path.ends_with(".kubeconfig") && bytes.is_empty() {
                    write_derived_kubeconfigs(dir);
                }
            }
            Setup::SpecEditAndFile(from, to, path, bytes) => {
                std::fs::write(dir.join(SPEC), GOOD.replacen(from, to, 1)).unwrap();
                std::fs::create_dir_all(dir.join(path).parent().unwrap()).unwrap();
                std::fs::write(dir.join(path), bytes).unwrap();
            }
            Setup::Remove(path) => std::fs::remove_file(dir.join(path)).unwrap(),
        }
        let cluster = cluster().display().to_string();
        let app_dir = dir.display().to_string();
        let fill = |a: &str| {
            a.replace("{cluster}", &cluster)
                .replace("{app}", &app_dir)
                .replace("{ns}", &kamal_ns.name)
        };
        let args: Vec<String> = case.args.iter().map(|a| fill(a)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, String)> = case.env.iter().map(|(k, v)| (*k, fill(v))).collect();
        let before = listing(dir);
        let run = rails_full(dir, None, &args, case.stdin, &env);
        let outcome = std::panic::catch_unwind(|| check_case(&case, &run, dir, before));
        if outcome.is_err() {
            failed.push(case.name);
        }
    }
    assert!(failed.is_empty(), "failed cases: {failed:?}");
    corpus_wrote_nothing(&kamal_ns);
}

fn check_case(case: &Case, run: &crate::support::Run, dir: &Path, before: Vec<(String, Vec<u8>)>) {
    {
        assert_eq!(
            run.code, case.code,
            "{}: exit code\nstderr:\n{}",
            case.name, run.stderr
        );
        for needle in case.expect {
            assert!(
                run.stderr.contains(needle),
                "{}: stderr lacks {needle:?}:\n{}",
                case.name,
                run.stderr
            );
        }
        assert!(
            !run.stderr.contains("panicked"),
            "{}: {}",
            case.name,
            run.stderr
        );
        for secret in case.absent {
            assert!(
                !run.stderr.contains(secret) && !run.stdout.contains(secret),
                "{}: `{secret}` shows:\n{}",
                case.name,
                run.stderr
            );
        }
        if case.code != 0 {
            assert_eq!(
                listing(dir),
                before,
                "{}: a file was written or changed",
                case.name
            );
        }
    }
}

fn corpus_wrote_nothing(kamal_ns: &crate::support::TestNs) {
    let ns = crate::support::kubectl(
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
    let written = kamal_ns
        .kubectl(&["get", "secrets,configmaps,leases", "-o", "name"])
        .success()
        .stdout;
    let written: Vec<&str> = written
        .lines()
        .filter(|l| !l.contains("kube-root-ca.crt"))
        .collect();
    assert!(written.is_empty(), "nothing was written: {written:?}");
}

//! Maintenance mode: a small server in the app's own image answers every request with 503, the
//! app's `public/503.html` (or a page with a message) and `Retry-After`, and the Ingress sends
//! the app's hosts to it. The app's pods keep running (jobs go on, `exec` works), nothing is
//! installed in the cluster, and any ingress controller follows an Ingress backend.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, PodSpec, PodTemplateSpec, Service,
    Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sha2::{Digest, Sha256};

use super::{CHECKSUM_ANNOTATION, Renderer, hex, string_map};
use crate::model::Resources;

/// The component (and name suffix) of the maintenance page's objects: `shop-maintenance`.
pub const MAINTENANCE: &str = "maintenance";

/// Annotation on the maintenance ConfigMap: when maintenance began (RFC 3339).
pub const SINCE_ANNOTATION: &str = "kubectl-rails.dev/maintenance-since";
/// Annotation on the maintenance ConfigMap: the message given to `maintenance on`, if any.
pub const MESSAGE_ANNOTATION: &str = "kubectl-rails.dev/maintenance-message";

/// The page's key in the ConfigMap, and its file in the pod.
pub const PAGE_KEY: &str = "503.html";
const SERVER_KEY: &str = "server.rb";
const MOUNT: &str = "/kubectl-rails-maintenance";
/// An unprivileged port: the server runs as the app's user.
const PORT: u16 = 8080;
/// What `Retry-After` says, in seconds.
pub const RETRY_AFTER_SECONDS: u32 = 300;

/// The server: Ruby's standard library only (every Rails image has Ruby), one thread per
/// connection, the same answer to every request. HEAD gets the headers alone.
const SERVER: &str = r#"require "socket"
page = File.binread(File.join(__dir__, "503.html"))
head = "HTTP/1.1 503 Service Unavailable\r\n" \
  "Content-Type: text/html; charset=utf-8\r\n" \
  "Retry-After: #{ENV.fetch("RETRY_AFTER", "300")}\r\n" \
  "Cache-Control: no-store\r\n" \
  "Content-Length: #{page.bytesize}\r\n" \
  "Connection: close\r\n\r\n"
server = TCPServer.new("0.0.0.0", Integer(ENV.fetch("PORT", "8080")))
$stdout.sync = true
puts "maintenance page on port #{server.addr[1]}"
loop do
  Thread.new(server.accept) do |client|
    request = client.gets.to_s
    while (line = client.gets) && !line.strip.empty?; end
    client.write(request.start_with?("HEAD ") ? head : head + page)
  rescue StandardError
    nil
  ensure
    client.close
  end
end
"#;

/// What maintenance shows, as `maintenance on` stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintenance {
    /// The HTML every request gets.
    pub page: String,
    /// When it began (RFC 3339).
    pub since: String,
    pub message: Option<String>,
}

/// The page for `maintenance on`: a message given on the command line wins over the app's
/// `public/503.html`; with neither, a plain page says the app is down for maintenance.
pub fn maintenance_page(app: &str, message: Option<&str>, app_page: Option<&str>) -> String {
    match (message, app_page) {
        (None, Some(page)) => page.to_string(),
        (message, _) => {
            let text = message.unwrap_or("We are doing some maintenance. Back soon.");
            format!(
                "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>{title} is down for maintenance</title>\n<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n</head>\n<body style=\"font-family: sans-serif; text-align: center; padding: 4em 1em;\">\n<h1>{title} is down for maintenance</h1>\n<p>{text}</p>\n</body>\n</html>\n",
                title = escape_html(app),
                text = escape_html(text)
            )
        }
    }
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl Renderer<'_> {
    fn maintenance_name(&self) -> String {
        self.spec.deployment_name(MAINTENANCE)
    }

    pub(super) fn maintenance_config_map(&self, m: &Maintenance) -> ConfigMap {
        let mut meta = self.meta(&self.maintenance_name(), MAINTENANCE);
        let mut annotations = BTreeMap::from([(SINCE_ANNOTATION.to_string(), m.since.clone())]);
        if let Some(message) = &m.message {
            annotations.insert(MESSAGE_ANNOTATION.into(), message.clone());
        }
        meta.annotations = Some(annotations);
        ConfigMap {
            metadata: meta,
            data: Some(string_map([(PAGE_KEY, &m.page), (SERVER_KEY, SERVER)])),
            ..ConfigMap::default()
        }
    }

    pub(super) fn maintenance_deployment(&self, m: &Maintenance) -> Deployment {
        let name = self.maintenance_name();
        // A new page rolls the pod: the file in a running pod would change only after the
        // kubelet's sync, a minute later.
        let mut h = Sha256::new();
        h.update(&m.page);
        h.update(SERVER);
        let checksum = hex(&h.finalize())[..16].to_string();
        let placement = self.spec.placement_of("web");
        let container = Container {
            name: MAINTENANCE.into(),
            image: Some(self.spec.image.reference()),
            image_pull_policy: Some("IfNotPresent".into()),
            // Not the image's entrypoint: it may migrate, wait for the database, or need root.
            command: Some(vec!["ruby".into(), format!("{MOUNT}/{SERVER_KEY}")]),
            env: Some(vec![
                k8s_openapi::api::core::v1::EnvVar {
                    name: "PORT".into(),
                    value: Some(PORT.to_string()),
                    ..Default::default()
                },
                k8s_openapi::api::core::v1::EnvVar {
                    name: "RETRY_AFTER".into(),
                    value: Some(RETRY_AFTER_SECONDS.to_string()),
                    ..Default::default()
                },
            ]),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: i32::from(PORT),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]),
            readiness_probe: Some(Self::port_probe(2, 3)),
            // A hung server is restarted; the port answers as long as Ruby accepts.
            liveness_probe: Some(Self::port_probe(20, 6)),
            // A page pod that a deploy replaces keeps answering until the ingress has moved on.
            lifecycle: Some(self.pre_stop_sleep()),
            resources: Some(Self::resources(
                &Resources {
                    cpu: "10m".into(),
                    memory: "64Mi".into(),
                    memory_limit: Some("128Mi".into()),
                    ephemeral_storage: Some("16Mi".into()),
                    ephemeral_storage_limit: Some("64Mi".into()),
                },
                "64Mi",
            )),
            security_context: Some(Self::side_container_security()),
            volume_mounts: Some(vec![VolumeMount {
                name: "page".into(),
                mount_path: MOUNT.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            }]),
            ..Container::default()
        };
        let mut pod = PodSpec {
            containers: vec![container],
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            image_pull_secrets: self.pull_secrets(),
            security_context: Some(self.side_pod_security()),
            volumes: Some(vec![Volume {
                name: "page".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: name.clone(),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            }]),
            termination_grace_period_seconds: Some(10),
            ..PodSpec::default()
        };
        // Where web may run, the page may run (a tainted node, a node pool).
        pod.tolerations = super::tolerations(&placement);
        pod.node_selector =
            (!placement.node_selector.is_empty()).then_some(placement.node_selector);
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(self.labels(MAINTENANCE)),
                annotations: Some(string_map([
                    (CHECKSUM_ANNOTATION, &checksum),
                    ("kubectl.kubernetes.io/default-container", MAINTENANCE),
                ])),
                ..ObjectMeta::default()
            }),
            spec: Some(pod),
        };
        Deployment {
            metadata: self.meta(&name, MAINTENANCE),
            spec: Some(DeploymentSpec {
                replicas: Some(1),
                selector: LabelSelector {
                    match_labels: Some(self.selector(MAINTENANCE)),
                    ..LabelSelector::default()
                },
                // The new page is ready before the old one goes: no gap in the 503s.
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(k8s_openapi::api::apps::v1::RollingUpdateDeployment {
                        max_unavailable: Some(IntOrString::Int(0)),
                        max_surge: Some(IntOrString::Int(1)),
                    }),
                }),
                template,
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    pub(super) fn maintenance_service(&self) -> Service {
        self.http_service(MAINTENANCE)
    }

    /// The page takes traffic on its port, as web does.
    pub(super) fn maintenance_policy(&self) -> Option<NetworkPolicy> {
        self.side_policy(MAINTENANCE, PORT)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::spec;
    use super::super::{RenderInputs, render, render_maintenance};
    use super::*;

    fn on() -> Maintenance {
        Maintenance {
            page: "<h1>Back soon</h1>\n".into(),
            since: "2026-12-05T07:00:00Z".into(),
            message: Some("Upgrading the database".into()),
        }
    }

    #[test]
    fn the_page_objects_run_the_apps_image_as_a_non_root_user() {
        let s = spec(
            "uid: 1000\ngid: 1000\nregistry: {server: ghcr.io, pull_secret: shop-registry}\nnetwork_policy: true\n",
        );
        let objects = render_maintenance(&s, &on(), None);
        let kinds: Vec<_> = objects.iter().map(|o| (o.kind, o.name.as_str())).collect();
        assert_eq!(
            kinds,
            [
                ("ConfigMap", "shop-maintenance"),
                ("NetworkPolicy", "shop-maintenance"),
                ("Deployment", "shop-maintenance"),
                ("Service", "shop-maintenance"),
            ]
        );
        let yaml: String = objects
            .iter()
            .map(|o| serde_saphyr::to_string(&o.value).unwrap())
            .collect::<Vec<_>>()
            .join("---\n");
        insta::assert_snapshot!("maintenance_objects", yaml);
    }

    #[test]
    fn a_root_image_runs_the_page_as_nobody() {
        let objects = render_maintenance(&spec("uid: 0\n"), &on(), None);
        let d = &objects
            .iter()
            .find(|o| o.kind == "Deployment")
            .unwrap()
            .value;
        let pod = &d["spec"]["template"]["spec"]["securityContext"];
        assert_eq!(pod["runAsUser"], 65534);
        assert_eq!(pod["runAsNonRoot"], true);
    }

    #[test]
    fn in_maintenance_the_ingress_sends_every_host_to_the_page_and_the_release_keeps_it() {
        let s = spec("ingress:\n  hosts: [shop.example.com, api.example.com]\n");
        let backends = |inputs: &RenderInputs| -> Vec<String> {
            let release = render(&s, inputs);
            let ingress = &release
                .objects
                .iter()
                .find(|o| o.kind == "Ingress")
                .unwrap()
                .value;
            ingress["spec"]["rules"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r["http"]["paths"].as_array().unwrap().iter())
                .map(|p| {
                    p["backend"]["service"]["name"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect()
        };
        assert_eq!(backends(&RenderInputs::default()), ["shop-web", "shop-web"]);
        let inputs = RenderInputs {
            maintenance: Some(on()),
            ..RenderInputs::default()
        };
        assert_eq!(backends(&inputs), ["shop-maintenance", "shop-maintenance"]);
        let release = render(&s, &inputs);
        assert!(
            release
                .objects
                .iter()
                .any(|o| o.kind == "Deployment" && o.name == "shop-maintenance")
        );
        // The web Deployment still runs: jobs go on, `exec` works.
        assert!(
            release
                .objects
                .iter()
                .any(|o| o.kind == "Deployment" && o.name == "shop-web")
        );
    }

    #[test]
    fn the_page_is_the_message_escaped_else_the_apps_503_else_a_plain_one() {
        let app = "<p>Our own page</p>";
        let cases: &[(Option<&str>, Option<&str>, &str)] = &[
            (None, Some(app), app),
            (
                Some("DB <upgrade> & more"),
                Some(app),
                "DB &lt;upgrade&gt; &amp; more",
            ),
            (None, None, "We are doing some maintenance. Back soon."),
        ];
        for (message, page, expected) in cases {
            let got = maintenance_page("shop", *message, *page);
            assert!(got.contains(expected), "{message:?} {page:?}: {got}");
        }
        assert!(!maintenance_page("shop", Some("x"), Some(app)).contains(app));
    }
}

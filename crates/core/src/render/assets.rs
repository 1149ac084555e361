//! The asset server: during a rollout a browser loads a page from one release, then asks for
//! `/assets/application-<digest>.css` of that release, which may land on a pod of the other.
//! `<app>-assets` pods gather the fingerprinted assets of the current image and of the last
//! releases' images (one init container per image copies its assets into an emptyDir, the
//! newest last so its manifest wins) and serve them with a small server in the app's own image;
//! the Ingress sends the asset path to them. Deploy rolls them before web, so when any web pod
//! of the new release serves a page, every asset pod already has its assets, and the old
//! release's too. No CDN, no shared volume, any node.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar,
    HTTPGetAction, PodSpec, PodTemplateSpec, Probe, Service, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sha2::{Digest, Sha256};

use super::{CHECKSUM_ANNOTATION, Renderer, hex, string_map};
use crate::model::{AssetsSpec, Resources};

/// The component (and name suffix) of the asset server's objects: `shop-assets`.
pub const ASSETS: &str = "assets";

const SERVER_KEY: &str = "server.rb";
const COPY_KEY: &str = "copy.rb";
const SCRIPTS: &str = "/kubectl-rails-assets";
/// Where the gathered assets are, in every container of the pod.
const ROOT: &str = "/srv/assets";
const PORT: u16 = 8080;
/// Room for the assets of every kept release.
const ROOT_SIZE: &str = "1Gi";
/// Two pods, whatever web runs: losing a node or a pod loses no asset, and a PDB keeps one.
const ASSET_REPLICAS: i32 = 2;

/// The server: Ruby's standard library only (every Rails image has Ruby), a thread per
/// connection. GET and HEAD of a file under the asset path, with a year of caching (the names
/// are fingerprinted) and the `.gz` beside it when the browser takes gzip; 404 for the rest.
const SERVER: &str = r##"require "socket"
root = File.realpath(ENV.fetch("ASSETS_ROOT"))
prefix = ENV.fetch("ASSETS_PATH").chomp("/") + "/"
types = {
  "css" => "text/css", "js" => "text/javascript", "mjs" => "text/javascript",
  "map" => "application/json", "json" => "application/json", "svg" => "image/svg+xml",
  "png" => "image/png", "jpg" => "image/jpeg", "jpeg" => "image/jpeg", "gif" => "image/gif",
  "webp" => "image/webp", "avif" => "image/avif", "ico" => "image/x-icon",
  "woff" => "font/woff", "woff2" => "font/woff2", "ttf" => "font/ttf", "otf" => "font/otf",
  "txt" => "text/plain", "html" => "text/html", "wasm" => "application/wasm"
}
answer = lambda do |client, status, headers, body, head|
  client.write("HTTP/1.1 #{status}\r\n" + headers.map { |k, v| "#{k}: #{v}\r\n" }.join +
    "Content-Length: #{body.bytesize}\r\nConnection: close\r\n\r\n")
  client.write(body) unless head
end
server = TCPServer.new("0.0.0.0", Integer(ENV.fetch("PORT", "8080")))
$stdout.sync = true
puts "assets of #{Dir.glob("**/*", base: root).count { |f| File.file?(File.join(root, f)) }} files on port #{server.addr[1]} at #{prefix}"
loop do
  Thread.new(server.accept) do |client|
    method, target = client.gets.to_s.split(" ")
    headers = {}
    while (line = client.gets) && !line.strip.empty?
      name, value = line.split(":", 2)
      headers[name.strip.downcase] = value.to_s.strip
    end
    path = target.to_s.split("?").first.to_s
    head = method == "HEAD"
    file = nil
    if %w[GET HEAD].include?(method) && path.start_with?(prefix) && !path.split("/").include?("..")
      candidate = File.join(root, path.delete_prefix(prefix))
      file = candidate if File.file?(candidate) && File.realpath(candidate).start_with?(root + "/")
    end
    if path == "/up" && %w[GET HEAD].include?(method)
      answer.call(client, "200 OK", { "Content-Type" => "text/plain", "Cache-Control" => "no-store" }, "OK\n", head)
    elsif file
      type = types.fetch(File.extname(file).delete_prefix(".").downcase, "application/octet-stream")
      out = { "Content-Type" => type, "Cache-Control" => "public, max-age=31536000, immutable", "Vary" => "Accept-Encoding" }
      if headers.fetch("accept-encoding", "").include?("gzip") && File.file?("#{file}.gz")
        file = "#{file}.gz"
        out["Content-Encoding"] = "gzip"
      end
      answer.call(client, "200 OK", out, File.binread(file), head)
    else
      answer.call(client, "404 Not Found", { "Content-Type" => "text/plain", "Cache-Control" => "no-store" }, "Not Found\n", head)
    end
  rescue StandardError
    nil
  ensure
    client.close
  end
end
"##;

/// Copies one image's assets into the shared folder; an image without them (a release from
/// before the app had any) copies nothing.
const COPY: &str = r##"require "fileutils"
from, to = ENV.fetch("ASSETS_DIR"), ENV.fetch("ASSETS_ROOT")
if Dir.exist?(from)
  FileUtils.cp_r(File.join(from, "."), to)
  puts "#{Dir.glob("**/*", base: from).size} files from #{ENV["IMAGE"]}"
else
  puts "no #{from} in #{ENV["IMAGE"]}"
end
"##;

impl Renderer<'_> {
    fn assets_name(&self) -> String {
        self.spec.deployment_name(ASSETS)
    }

    /// Where the image holds its assets.
    fn assets_dir(&self, assets: &AssetsSpec) -> String {
        if assets.dir.starts_with('/') {
            assets.dir.trim_end_matches('/').to_string()
        } else {
            // Validation refuses a relative folder without a workdir.
            let workdir = self.spec.workdir.as_deref().unwrap_or("/");
            format!(
                "{}/{}",
                workdir.trim_end_matches('/'),
                assets.dir.trim_end_matches('/')
            )
        }
    }

    /// The images whose assets are served, oldest first, this release's last.
    pub(super) fn asset_images(&self, assets: &AssetsSpec) -> Vec<String> {
        let current = self.spec.image.reference();
        let mut earlier: Vec<String> = Vec::new();
        for image in &self.inputs.earlier_images {
            if *image != current && !earlier.contains(image) && earlier.len() < assets.keep as usize
            {
                earlier.push(image.clone());
            }
        }
        earlier.reverse();
        earlier.push(current);
        earlier
    }

    pub(super) fn assets_config_map(&self) -> ConfigMap {
        ConfigMap {
            metadata: self.meta(&self.assets_name(), ASSETS),
            data: Some(string_map([(SERVER_KEY, SERVER), (COPY_KEY, COPY)])),
            ..ConfigMap::default()
        }
    }

    fn assets_mounts(&self, root_read_only: bool) -> Vec<VolumeMount> {
        vec![
            VolumeMount {
                name: "scripts".into(),
                mount_path: SCRIPTS.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "assets".into(),
                mount_path: ROOT.into(),
                read_only: Some(root_read_only),
                ..VolumeMount::default()
            },
        ]
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<EnvVar> {
        pairs
            .iter()
            .map(|(k, v)| EnvVar {
                name: (*k).into(),
                value: Some((*v).into()),
                ..EnvVar::default()
            })
            .collect()
    }

    pub(super) fn assets_deployment(&self, assets: &AssetsSpec) -> Deployment {
        let name = self.assets_name();
        let images = self.asset_images(assets);
        let dir = self.assets_dir(assets);
        // New images, a new path or new scripts roll the pods; nothing else does.
        let mut h = Sha256::new();
        for part in images.iter().map(String::as_str).chain([
            dir.as_str(),
            assets.path.as_str(),
            SERVER,
            COPY,
        ]) {
            h.update(part);
            h.update([0]);
        }
        let checksum = hex(&h.finalize())[..16].to_string();
        let small = |disk: &str| {
            Self::resources(
                &Resources {
                    cpu: "10m".into(),
                    memory: "64Mi".into(),
                    memory_limit: Some("128Mi".into()),
                    ephemeral_storage: Some("16Mi".into()),
                    ephemeral_storage_limit: Some(disk.into()),
                },
                disk,
            )
        };
        let copies = images
            .iter()
            .enumerate()
            .map(|(i, image)| Container {
                name: format!("copy-{i}"),
                image: Some(image.clone()),
                image_pull_policy: Some("IfNotPresent".into()),
                command: Some(vec!["ruby".into(), format!("{SCRIPTS}/{COPY_KEY}")]),
                env: Some(Self::env(&[
                    ("ASSETS_DIR", &dir),
                    ("ASSETS_ROOT", ROOT),
                    ("IMAGE", image),
                ])),
                resources: Some(small("64Mi")),
                security_context: Some(Self::side_container_security()),
                volume_mounts: Some(self.assets_mounts(false)),
                ..Container::default()
            })
            .collect();
        let server = Container {
            name: ASSETS.into(),
            image: Some(self.spec.image.reference()),
            image_pull_policy: Some("IfNotPresent".into()),
            // Not the image's entrypoint: it may migrate, wait for the database, or need root.
            command: Some(vec!["ruby".into(), format!("{SCRIPTS}/{SERVER_KEY}")]),
            env: Some(Self::env(&[
                ("PORT", &PORT.to_string()),
                ("ASSETS_ROOT", ROOT),
                ("ASSETS_PATH", &assets.path),
            ])),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: i32::from(PORT),
                protocol: Some("TCP".into()),
                ..ContainerPort::default()
            }]),
            // Ready once Ruby answers; restarted when even the port stops taking connections.
            readiness_probe: Some(Probe {
                http_get: Some(HTTPGetAction {
                    path: Some("/up".into()),
                    port: IntOrString::String("http".into()),
                    ..HTTPGetAction::default()
                }),
                period_seconds: Some(2),
                failure_threshold: Some(3),
                ..Probe::default()
            }),
            liveness_probe: Some(Self::port_probe(20, 6)),
            // An asset pod that a deploy replaces keeps answering until the ingress has moved on.
            lifecycle: Some(self.pre_stop_sleep()),
            // The gathered assets count against the pod's local disk.
            resources: Some(small("1536Mi")),
            security_context: Some(Self::side_container_security()),
            volume_mounts: Some(self.assets_mounts(true)),
            ..Container::default()
        };
        let placement = self.spec.placement_of("web");
        let pod = PodSpec {
            init_containers: Some(copies),
            containers: vec![server],
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            image_pull_secrets: self.pull_secrets(),
            security_context: Some(self.side_pod_security()),
            volumes: Some(vec![
                Volume {
                    name: "scripts".into(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: name.clone(),
                        ..ConfigMapVolumeSource::default()
                    }),
                    ..Volume::default()
                },
                Volume {
                    name: "assets".into(),
                    empty_dir: Some(EmptyDirVolumeSource {
                        size_limit: Some(Quantity(ROOT_SIZE.into())),
                        ..EmptyDirVolumeSource::default()
                    }),
                    ..Volume::default()
                },
            ]),
            tolerations: super::tolerations(&placement),
            node_selector: (!placement.node_selector.is_empty()).then_some(placement.node_selector),
            termination_grace_period_seconds: Some(10),
            ..PodSpec::default()
        };
        Deployment {
            metadata: self.meta(&name, ASSETS),
            spec: Some(DeploymentSpec {
                replicas: Some(ASSET_REPLICAS),
                selector: LabelSelector {
                    match_labels: Some(self.selector(ASSETS)),
                    ..LabelSelector::default()
                },
                // The new pods hold every kept release's assets before an old one goes.
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(k8s_openapi::api::apps::v1::RollingUpdateDeployment {
                        max_unavailable: Some(IntOrString::Int(0)),
                        max_surge: Some(IntOrString::Int(1)),
                    }),
                }),
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(self.labels(ASSETS)),
                        annotations: Some(string_map([
                            (CHECKSUM_ANNOTATION, &checksum),
                            ("kubectl.kubernetes.io/default-container", ASSETS),
                        ])),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(pod),
                },
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        }
    }

    pub(super) fn assets_service(&self) -> Service {
        self.http_service(ASSETS)
    }

    /// The asset pods take traffic on their port only.
    pub(super) fn assets_policy(&self) -> Option<NetworkPolicy> {
        self.side_policy(ASSETS, PORT)
    }

    /// The pod-template checksum of the asset pods (deploy waits for pods that carry it).
    pub(super) fn assets_checksum(&self, assets: &AssetsSpec) -> String {
        self.assets_deployment(assets)
            .spec
            .and_then(|s| s.template.metadata)
            .and_then(|m| m.annotations)
            .and_then(|a| a.get(CHECKSUM_ANNOTATION).cloned())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::spec;
    use super::super::{RenderInputs, Stage, render};

    fn inputs(earlier: &[&str]) -> RenderInputs {
        RenderInputs {
            earlier_images: earlier.iter().map(|s| s.to_string()).collect(),
            ..RenderInputs::default()
        }
    }

    fn copied_images(release: &super::super::Release) -> Vec<String> {
        let d = release
            .objects
            .iter()
            .find(|o| o.kind == "Deployment" && o.name == "shop-assets")
            .expect("an asset Deployment");
        d.value["spec"]["template"]["spec"]["initContainers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["image"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn the_asset_server_gathers_the_kept_releases_oldest_first_and_this_one_last() {
        let s = spec("workdir: /rails\nassets: {keep: 2}\n");
        // Newest first, as the history gives them; this release's image again (a rollback)
        // and a repeat are left out.
        let release = render(
            &s,
            &inputs(&[
                "ghcr.io/acme/shop:0.9",
                "ghcr.io/acme/shop:1.0",
                "ghcr.io/acme/shop:0.9",
                "ghcr.io/acme/shop:0.8",
                "ghcr.io/acme/shop:0.7",
            ]),
        );
        assert_eq!(
            copied_images(&release),
            [
                "ghcr.io/acme/shop:0.8",
                "ghcr.io/acme/shop:0.9",
                "ghcr.io/acme/shop:1.0"
            ]
        );
        let kinds: Vec<_> = release
            .objects
            .iter()
            .filter(|o| o.name == "shop-assets")
            .map(|o| (o.stage, o.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                (Stage::Config, "ConfigMap"),
                (Stage::Config, "NetworkPolicy"),
                (Stage::Assets, "Deployment"),
                (Stage::Assets, "Service"),
                (Stage::Assets, "PodDisruptionBudget"),
            ]
        );
        assert!(release.assets_checksum.is_some());
        // A first deploy has only its own.
        assert_eq!(
            copied_images(&render(&s, &inputs(&[]))),
            ["ghcr.io/acme/shop:1.0"]
        );
    }

    #[test]
    fn new_images_roll_the_asset_pods_and_other_changes_do_not() {
        let s = spec("workdir: /rails\nassets: {}\n");
        let one = render(&s, &inputs(&["ghcr.io/acme/shop:0.9"]));
        let env = spec("workdir: /rails\nassets: {}\nenv: {FOO: bar}\n");
        assert_eq!(
            one.assets_checksum,
            render(&env, &inputs(&["ghcr.io/acme/shop:0.9"])).assets_checksum
        );
        assert_ne!(
            one.assets_checksum,
            render(&s, &inputs(&["ghcr.io/acme/shop:0.8"])).assets_checksum
        );
    }

    #[test]
    fn the_ingress_sends_the_asset_path_to_the_asset_server_and_all_of_it_in_maintenance() {
        let s = spec(
            "workdir: /rails\nassets: {path: /packs/}\ningress: {hosts: [shop.example.com]}\n",
        );
        let release = render(&s, &inputs(&["ghcr.io/acme/shop:0.9"]));
        let ingress = super::super::test_support::object(&release, "Ingress");
        let paths = &ingress["spec"]["rules"][0]["http"]["paths"];
        assert_eq!(paths[0]["path"], "/packs");
        assert_eq!(paths[0]["backend"]["service"]["name"], "shop-assets");
        assert_eq!(paths[1]["path"], "/");
        assert_eq!(paths[1]["backend"]["service"]["name"], "shop-web");
        let on = RenderInputs {
            maintenance: Some(super::super::Maintenance {
                page: "<h1>Back soon</h1>".into(),
                since: "2026-12-06T00:00:00Z".into(),
                message: None,
            }),
            ..inputs(&[])
        };
        let release = render(&s, &on);
        let paths = &super::super::test_support::object(&release, "Ingress")["spec"]["rules"][0]["http"]
            ["paths"];
        assert_eq!(paths.as_array().unwrap().len(), 1);
        assert_eq!(paths[0]["backend"]["service"]["name"], "shop-maintenance");
    }

    #[test]
    fn without_assets_nothing_changes() {
        let release = render(
            &spec("workdir: /rails\n"),
            &inputs(&["ghcr.io/acme/shop:0.9"]),
        );
        assert!(release.objects.iter().all(|o| !o.name.ends_with("-assets")));
        assert!(release.assets_checksum.is_none());
    }

    #[test]
    fn the_asset_objects() {
        let s = spec(
            "workdir: /rails\nuid: 1000\ngid: 1000\nassets: {dir: /rails/public/assets}\nregistry: {server: ghcr.io, pull_secret: shop-registry}\n",
        );
        let release = render(&s, &inputs(&["ghcr.io/acme/shop:0.9"]));
        let yaml: String = release
            .objects
            .iter()
            .filter(|o| o.name == "shop-assets")
            .map(|o| serde_saphyr::to_string(&o.value).unwrap())
            .collect::<Vec<_>>()
            .join("---\n");
        insta::assert_snapshot!("asset_objects", yaml);
    }
}

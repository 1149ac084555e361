//! Images no node has seen, so that a first deploy really pulls. A new tag of an existing image
//! is not enough: containerd already holds its layers, and the kubelet's "pull" is one manifest
//! request (tens of milliseconds). So each image made here has layers of its own: the layer
//! blob of `blog:1.0.0` or `blog:2.0.0` with a second gzip member appended that holds zero
//! blocks, a count unique to the image. The files in the layer are the same (a tar
//! archive ends at its first two zero blocks), but both the blob's digest and the uncompressed
//! digest (the diff ID, which names the unpacked snapshot) are new: the node downloads, checks
//! and unpacks the whole layer, as a node that never ran the app would.
//!
//! The images are built in an OCI layout copied once from the registry (`skopeo copy`), then
//! pushed under their tag.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::node::RealNode;

/// One layer of an image: its blob and the digest of its uncompressed content.
#[derive(Clone)]
pub struct Layer {
    pub digest: String,
    pub size: u64,
    pub diff_id: String,
}

/// The OCI layout the images are made in.
pub struct Images {
    dir: PathBuf,
    /// Makes each layer's zero padding a count of its own.
    next: std::cell::Cell<u64>,
    /// The hash state after each source layer's uncompressed content: a padded layer's diff ID
    /// then only needs its zeros hashed on top.
    hashed: std::cell::RefCell<std::collections::HashMap<String, Sha256>>,
}

impl Images {
    /// Copies `blog:1.0.0` and `blog:2.0.0` from the registry into an OCI layout in `dir`.
    pub fn new(node: &RealNode, dir: &Path) -> Self {
        for version in ["1.0.0", "2.0.0"] {
            skopeo(
                node,
                &format!("docker://{}", node.image(version)),
                &format!("oci:{}:{version}", dir.display()),
            );
        }
        // Counts of their own for this run (a count an earlier run used could name a layer the
        // node kept): at most 16,000 blocks, 8 MiB of zeros, a few KiB compressed.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            % 1000;
        Self {
            dir: dir.to_path_buf(),
            next: std::cell::Cell::new(seed * 16),
            hashed: Default::default(),
        }
    }

    /// Pushes `REGISTRY/blog:TAG`: the image `version` (`1.0.0` or `2.0.0`) with a new app layer,
    /// and on `base` (a base layer made here before, as a release's next image shares its base)
    /// or on a new base layer. Returns the base layer it has.
    pub fn push_unpulled(
        &self,
        node: &RealNode,
        version: &str,
        base: Option<&Layer>,
        tag: &str,
    ) -> Layer {
        let manifest = self.manifest_of(version);
        let mut config = self.json_blob(manifest["config"]["digest"].as_str().unwrap());
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(
            layers.len(),
            2,
            "the blog images have a base and an app layer"
        );
        let base = match base {
            Some(b) => b.clone(),
            None => self.padded(layers[0]["digest"].as_str().unwrap()),
        };
        let app = self.padded(layers[1]["digest"].as_str().unwrap());
        config["rootfs"]["diff_ids"] = json!([base.diff_id, app.diff_id]);
        let config_text = serde_json::to_vec(&config).unwrap();
        let mut manifest = manifest.clone();
        manifest["config"]["digest"] = self.write_blob(&config_text).into();
        manifest["config"]["size"] = config_text.len().into();
        for (i, layer) in [&base, &app].into_iter().enumerate() {
            manifest["layers"][i]["digest"] = layer.digest.clone().into();
            manifest["layers"][i]["size"] = layer.size.into();
        }
        let manifest_text = serde_json::to_vec(&manifest).unwrap();
        let digest = self.write_blob(&manifest_text);
        let index_path = self.dir.join("index.json");
        let mut index: Value =
            serde_json::from_str(&std::fs::read_to_string(&index_path).unwrap()).unwrap();
        index["manifests"].as_array_mut().unwrap().push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": manifest_text.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
        std::fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
        skopeo(
            node,
            &format!("oci:{}:{tag}", self.dir.display()),
            &format!("docker://{}", node.image(tag)),
        );
        base
    }

    /// The manifest of the image tagged `tag` in the layout.
    fn manifest_of(&self, tag: &str) -> Value {
        let index: Value =
            serde_json::from_str(&std::fs::read_to_string(self.dir.join("index.json")).unwrap())
                .unwrap();
        let entry = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("no image `{tag}` in the layout"));
        self.json_blob(entry["digest"].as_str().unwrap())
    }

    fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap())
    }

    fn json_blob(&self, digest: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.blob_path(digest)).unwrap()).unwrap()
    }

    /// Writes a blob; its digest.
    fn write_blob(&self, bytes: &[u8]) -> String {
        let digest = format!("sha256:{:x}", Sha256::digest(bytes));
        std::fs::write(self.blob_path(&digest), bytes).unwrap();
        digest
    }

    /// The gzip layer `digest` with a gzip member of zero blocks appended, a count of its own.
    fn padded(&self, digest: &str) -> Layer {
        let blocks = self.next.get() + 1;
        self.next.set(blocks);
        let zeros = vec![0u8; 512 * blocks as usize];
        let path = self.blob_path(digest);
        // The diff ID: the whole uncompressed stream, the old content then the zeros.
        let mut hasher = self
            .hashed
            .borrow_mut()
            .entry(digest.to_string())
            .or_insert_with(|| uncompressed_hash(&path))
            .clone();
        hasher.update(&zeros);
        let diff_id = format!("sha256:{:x}", hasher.finalize());

        let mut blob = std::fs::read(&path).unwrap();
        blob.extend(gzip(&zeros));
        Layer {
            size: blob.len() as u64,
            digest: self.write_blob(&blob),
            diff_id,
        }
    }
}

/// The hash state after the uncompressed content of the gzip file at `path`.
fn uncompressed_hash(path: &Path) -> Sha256 {
    let mut unzip = Command::new("gzip")
        .arg("-dc")
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip is installed");
    let mut hasher = Sha256::new();
    let mut out = unzip.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    assert!(
        unzip.wait().unwrap().success(),
        "gzip -dc {} failed",
        path.display()
    );
    hasher
}

/// `bytes` as one gzip member.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .args(["-c", "-n"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip is installed");
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "gzip failed");
    out.stdout
}

/// `skopeo copy FROM TO` with the registry's credentials and CA on whichever side is the
/// registry.
fn skopeo(node: &RealNode, from: &str, to: &str) {
    let creds = format!(
        "{}:{}",
        node.get("REGISTRY_USER"),
        node.get("REGISTRY_PASSWORD")
    );
    let certs = node.get("REGISTRY_CERT_DIR");
    let mut args = vec!["copy", "--quiet"];
    if from.starts_with("docker://") {
        args.extend(["--src-creds", &creds, "--src-cert-dir", certs]);
    }
    if to.starts_with("docker://") {
        args.extend(["--dest-creds", &creds, "--dest-cert-dir", certs]);
    }
    args.extend([from, to]);
    let out = Command::new("skopeo")
        .args(&args)
        .output()
        .expect("skopeo is installed with the real node");
    assert!(
        out.status.success(),
        "skopeo copy {from} {to} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

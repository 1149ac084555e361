//! `config/storage.yml`: where Active Storage's production service keeps files. A `Disk`
//! service keeps them in a folder of the app, which then needs a volume.

/// `config/storage.yml`: the root folder of a `Disk` service, `<Rails.root>/storage` style.
pub fn disk_root(storage_yml: &str, service: &str) -> Option<String> {
    let evaluated = super::erb::evaluate(storage_yml, &Default::default()).ok()?;
    let root: serde_json::Value = serde_saphyr::from_str(&evaluated.text).ok()?;
    let entry = root.get(service)?;
    (entry.get("service")?.as_str()? == "Disk")
        .then(|| entry.get("root")?.as_str().map(str::to_string))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_disk_service_has_a_root() {
        let yml = "local:\n  service: Disk\n  root: <%= Rails.root.join(\"storage\") %>\n\namazon:\n  service: S3\n  bucket: x\n";
        assert_eq!(
            disk_root(yml, "local").as_deref(),
            Some("<Rails.root>/storage")
        );
        assert_eq!(disk_root(yml, "amazon"), None);
        assert_eq!(disk_root(yml, "missing"), None);
    }
}

//! Encrypted credentials and the keys that unlock them: `config/credentials.yml.enc` with
//! `config/master.key`, or per environment `config/credentials/<env>.yml.enc` with
//! `config/credentials/<env>.key`.

/// The credentials files and the key files among the app's files (paths relative to the app
/// folder), each sorted.
pub fn classify(files: &[String]) -> (Vec<String>, Vec<String>) {
    let mut credentials = Vec::new();
    let mut keys = Vec::new();
    for file in files {
        let in_folder = file.strip_prefix("config/credentials/");
        if file == "config/credentials.yml.enc"
            || in_folder.is_some_and(|n| n.ends_with(".yml.enc") && !n.contains('/'))
        {
            credentials.push(file.clone());
        } else if file == "config/master.key"
            || in_folder.is_some_and(|n| n.ends_with(".key") && !n.contains('/'))
        {
            keys.push(file.clone());
        }
    }
    credentials.sort();
    keys.sort();
    (credentials, keys)
}

/// The key production reads, when the folder has it: `config/credentials/production.key` for
/// per-environment credentials, else `config/master.key`.
pub fn production_key(keys: &[String]) -> Option<&String> {
    keys.iter()
        .find(|k| k.ends_with("/production.key"))
        .or_else(|| keys.iter().find(|k| k.as_str() == "config/master.key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_their_keys() {
        let files: Vec<String> = [
            "config/master.key",
            "config/credentials.yml.enc",
            "config/credentials/production.yml.enc",
            "config/credentials/production.key",
            "config/credentials/staging.yml.enc",
            "config/credentials/README.md",
            "config/database.yml",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (credentials, keys) = classify(&files);
        assert_eq!(
            credentials,
            [
                "config/credentials.yml.enc",
                "config/credentials/production.yml.enc",
                "config/credentials/staging.yml.enc"
            ]
        );
        assert_eq!(
            keys,
            ["config/credentials/production.key", "config/master.key"]
        );
        assert_eq!(
            production_key(&keys).map(String::as_str),
            Some("config/credentials/production.key")
        );
        let only_staging = vec!["config/credentials/staging.key".to_string()];
        assert_eq!(production_key(&only_staging), None);
        assert_eq!(
            production_key(&["config/master.key".to_string()]).map(String::as_str),
            Some("config/master.key")
        );
    }
}

//! Ruby that runs at boot and changes the process's user: an app that starts as root and drops
//! to its user from its own code (`Process::Sys.seteuid(2000)` in a file `config/puma.rb`
//! requires), which a pod started as that user from the beginning breaks (the `chown` before
//! it fails).

/// The calls that change the user or group of the running process.
const DROPS: &[&str] = &[
    "Process::Sys.seteuid",
    "Process::Sys.setuid",
    "Process::Sys.setreuid",
    "Process::Sys.setresuid",
    "Process::UID.change_privilege",
    "Process::UID.grant_privilege",
    "Process.euid =",
    "Process.uid =",
];

/// Where boot code drops privileges: `config/dotenv.rb:72 (`Process::Sys.seteuid(2000)`)`.
/// `files` are the Ruby files that run at boot (file name and text).
pub fn privilege_drop(files: &[(String, String)]) -> Option<String> {
    files.iter().find_map(|(file, text)| {
        text.lines().enumerate().find_map(|(i, line)| {
            let code = line.trim();
            (!code.starts_with('#') && DROPS.iter().any(|d| code.contains(d)))
                .then(|| format!("{file}:{} (`{code}`)", i + 1))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_code_that_changes_its_user_is_found_and_comments_are_not() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "if Process.uid.zero?\n  FileUtils.chown_R(2000, 2000, dir)\n  Process::Sys.setegid(2000)\n  Process::Sys.seteuid(2000)\nend\n",
                Some("config/dotenv.rb:4 (`Process::Sys.seteuid(2000)`)"),
            ),
            (
                "Process::UID.change_privilege(Etc.getpwnam('app').uid)\n",
                Some(
                    "config/dotenv.rb:1 (`Process::UID.change_privilege(Etc.getpwnam('app').uid)`)",
                ),
            ),
            ("# Process::Sys.seteuid(2000) once ran here\n", None),
            ("puts Process.uid\n", None),
        ];
        for (text, expected) in cases {
            let files = vec![("config/dotenv.rb".to_string(), text.to_string())];
            assert_eq!(privilege_drop(&files).as_deref(), *expected, "{text}");
        }
    }
}

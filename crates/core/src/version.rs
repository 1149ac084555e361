//! Kubernetes versions: the oldest the plugin supports, and what needs a newer one. The server's
//! version comes in from the caller; nothing here asks a server.

use std::fmt;

/// A server's `major.minor`, with the `gitVersion` it reported for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
    /// Such as `v1.33.13` or `v1.30.4-eks-a737599`.
    pub git_version: String,
}

/// The oldest Kubernetes the plugin supports: every API and field it uses is GA or on by
/// default there, except the preStop `sleep` action (see [`SLEEP_ACTION`]), which has a fallback.
pub const MIN_SUPPORTED: (u32, u32) = (1, 29);

/// The first minor version whose kubelet runs a preStop `sleep` action (PodLifecycleSleepAction,
/// on by default from 1.30).
pub const SLEEP_ACTION: (u32, u32) = (1, 30);

impl ServerVersion {
    /// From `/version`'s `major`, `minor` (`29+` on some providers) and `gitVersion`.
    pub fn parse(major: &str, minor: &str, git_version: &str) -> Option<Self> {
        let digits = |s: &str| -> Option<u32> {
            s.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .ok()
        };
        let from_git = || {
            let mut parts = git_version.trim_start_matches('v').split('.');
            Some((digits(parts.next()?)?, digits(parts.next()?)?))
        };
        let (major, minor) = match (digits(major), digits(minor)) {
            (Some(a), Some(b)) => (a, b),
            _ => from_git()?,
        };
        Some(Self {
            major,
            minor,
            git_version: git_version.to_string(),
        })
    }

    pub fn at_least(&self, (major, minor): (u32, u32)) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// Why this server is not supported, when it is not.
    pub fn unsupported(&self) -> Option<String> {
        (!self.at_least(MIN_SUPPORTED)).then(|| {
            format!(
                "the cluster runs Kubernetes {self}; kubectl-rails needs {}.{} or newer",
                MIN_SUPPORTED.0, MIN_SUPPORTED.1
            )
        })
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.git_version.is_empty() {
            write!(f, "v{}.{}", self.major, self.minor)
        } else {
            f.write_str(&self.git_version)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_providers_report_them() {
        let v = ServerVersion::parse("1", "29+", "v1.29.8-gke.1").unwrap();
        assert_eq!((v.major, v.minor), (1, 29));
        assert!(v.unsupported().is_none());
        assert!(!v.at_least(SLEEP_ACTION));
        let v = ServerVersion::parse("", "", "v1.28.15").unwrap();
        assert_eq!(
            v.unsupported().unwrap(),
            "the cluster runs Kubernetes v1.28.15; kubectl-rails needs 1.29 or newer"
        );
        assert!(
            ServerVersion::parse("1", "33", "v1.33.13")
                .unwrap()
                .at_least(SLEEP_ACTION)
        );
        assert_eq!(ServerVersion::parse("", "", "nonsense"), None);
    }
}

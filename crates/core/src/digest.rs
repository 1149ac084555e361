//! Keyed digests of secret values. A plain hash of a weak secret can be checked against guesses
//! by anyone who reads it (`secrets list`, a pod template's checksum); an HMAC keyed by a random
//! per-app key, kept inside the app Secret beside the values, cannot without that key.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use sha2::{Digest, Sha256};

/// The app Secret's data key holding the per-app digest key. It is not a valid environment
/// variable name, so it never collides with a key the app uses, and no pod is given it.
pub const DIGEST_KEY: &str = ".kubectl-rails-digest-key";

/// HMAC-SHA256 (RFC 2104).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// A digest of an app Secret's data: it changes when any value changes, and reveals none. It is
/// an HMAC keyed by the app's digest key (see [`DIGEST_KEY`]), so that a pod template's checksum
/// cannot be checked against guesses of a weak value by anyone who can read Deployments.
/// `None` when the Secret has no digest key yet (made by `kubectl create secret`): an HMAC with
/// an empty key is as guessable as a plain hash, so there is no digest until a deploy adds a key.
pub fn secret_digest(data: &BTreeMap<String, ByteString>) -> Option<String> {
    let key = data.get(DIGEST_KEY).filter(|k| !k.0.is_empty())?;
    let mut message = Vec::new();
    for (k, v) in data.iter().filter(|(k, _)| k.as_str() != DIGEST_KEY) {
        message.extend_from_slice(k.as_bytes());
        message.push(0);
        message.extend_from_slice(&v.0);
        message.push(0);
    }
    Some(short_hmac(&key.0, &message, 8))
}

/// The first `bytes` bytes of an HMAC, in hex.
pub fn short_hmac(key: &[u8], message: &[u8], bytes: usize) -> String {
    hmac_sha256(key, message)
        .iter()
        .take(bytes)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4231_test_vectors() {
        let hex = |b: [u8; 32]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(hmac_sha256(&[0x0b; 20], b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        assert_eq!(
            hex(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn no_digest_without_a_key() {
        let value = |v: &[u8]| ByteString(v.to_vec());
        let mut data = BTreeMap::from([("SECRET_KEY_BASE".to_string(), value(b"password1"))]);
        // Unkeyed, anyone could test guesses offline: HMAC("", "SECRET_KEY_BASE\0password1\0").
        let guessable = short_hmac(b"", b"SECRET_KEY_BASE\0password1\0", 8);
        let cases: &[(Option<&[u8]>, bool)] =
            &[(None, false), (Some(b""), false), (Some(b"k"), true)];
        for (key, digested) in cases {
            if let Some(key) = key {
                data.insert(DIGEST_KEY.into(), value(key));
            }
            let digest = secret_digest(&data);
            assert_eq!(digest.is_some(), *digested, "key {key:?}");
            assert_ne!(digest.as_deref(), Some(guessable.as_str()), "key {key:?}");
        }
    }
}

//! HMAC-SHA-256 under `SCHOOLSIGNAL_BSN_KEY`: a BSN is only ever stored this way.

use crate::contract::Bsn;
use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Clone)]
pub struct KeyedHasher {
    key: Vec<u8>,
}

impl KeyedHasher {
    pub fn new(key: &[u8]) -> Self {
        Self { key: key.to_vec() }
    }

    pub fn bsn(&self, bsn: &Bsn) -> String {
        self.hash(&[b"bsn:", bsn.digits().as_bytes()])
    }

    /// A fingerprint of a message body, to tell a redelivery from a conflicting reuse
    /// of its event id. Keyed, because the body holds personal data.
    pub fn body(&self, canonical_json: &[u8]) -> String {
        self.hash(&[b"body:", canonical_json])
    }

    fn hash(&self, parts: &[&[u8]]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        for part in parts {
            mac.update(part);
        }
        hex::encode(mac.finalize().into_bytes())
    }
}

impl std::fmt::Debug for KeyedHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedHasher(<key redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_key_and_never_contains_the_bsn() {
        let bsn = Bsn::parse("111222333").unwrap();
        let a = KeyedHasher::new(b"key-a").bsn(&bsn);
        let b = KeyedHasher::new(b"key-b").bsn(&bsn);
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(!a.contains("111222333"));
    }
}

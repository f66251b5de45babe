//! Personal data at rest, sealed field by field with AES-256-GCM, so that a stolen
//! database or backup names no child.
//!
//! A sealed value is text: `s1.<key id>.<base64url(nonce ‖ ciphertext)>`. The nonce
//! is random, 96 bits: a key may seal about 2^32 values before a collision becomes
//! a risk, some thousands of years of notices at national scale; rotation starts
//! the count again. AES-GCM rather than XChaCha20-Poly1305 because the processors
//! this runs on have AES instructions, which make a seal several times cheaper
//! (see the README's sealing benchmark). The associated
//! data names the value's table, column and row, so a ciphertext copied into another
//! row or column does not open. Values written before sealing existed are read as
//! they are until `schoolsignal keys rotate` seals them.

pub mod columns;

pub use columns::{Column, RowKey, SEALED};

use crate::config::{DataKey, DataKeysConfig};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// What every sealed value starts with: the format's version.
pub const PREFIX: &str = "s1.";

const NONCE_LEN: usize = 12;

/// Why a stored value did not open. The messages name no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("a value is sealed under data key `{0}`, which SCHOOLSIGNAL_DATA_KEYS does not list")]
    UnknownKey(String),
    #[error("a sealed value does not open: it was damaged, or copied from another row or column")]
    Damaged,
}

/// Where a value lives: its table, column and row. Bound to the ciphertext.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    pub column: Column,
    pub row: &'a str,
}

struct Key {
    id: String,
    cipher: Aes256Gcm,
    fingerprint: String,
}

/// The configured data keys: the first seals, any of them opens. No `Debug`.
pub struct Keyring {
    keys: Vec<Key>,
    /// `SCHOOLSIGNAL_UNSEALED_FOR_BENCHMARK` (development only): seal nothing.
    unsealed: bool,
}

impl Keyring {
    pub fn new(config: &DataKeysConfig) -> Self {
        let keys = config.keys.iter().map(Key::new).collect();
        Self {
            keys,
            unsealed: false,
        }
    }

    /// A keyring that stores values in the clear, for a benchmark to compare with;
    /// it still opens sealed ones. Production refuses the setting.
    pub fn unsealed(config: &DataKeysConfig) -> Self {
        Self {
            unsealed: true,
            ..Self::new(config)
        }
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Each key's id and fingerprint: an HMAC of a fixed label under the key, which
    /// tells two keys apart without revealing either.
    pub fn fingerprints(&self) -> impl Iterator<Item = (&str, &str)> {
        self.keys
            .iter()
            .map(|k| (k.id.as_str(), k.fingerprint.as_str()))
    }

    pub fn seal(&self, place: Place, plain: &str) -> String {
        if self.unsealed {
            return plain.to_string();
        }
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(place);
        let payload = Payload {
            msg: plain.as_bytes(),
            aad: &aad,
        };
        let sealed = key
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("AES-GCM seals any length we store");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}.{}", key.id, URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn seal_opt(&self, place: Place, plain: Option<&str>) -> Option<String> {
        plain.map(|p| self.seal(place, p))
    }

    /// The clear text of a stored value; a value from before sealing as it is.
    pub fn open(&self, place: Place, stored: &str) -> Result<String, SealError> {
        let Some((id, data)) = split(stored) else {
            return Ok(stored.to_string());
        };
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_string()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| SealError::Damaged)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Damaged);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let aad = associated_data(place);
        let payload = Payload {
            msg: sealed,
            aad: &aad,
        };
        let plain = key
            .cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| SealError::Damaged)?;
        String::from_utf8(plain).map_err(|_| SealError::Damaged)
    }

    pub fn open_opt(
        &self,
        place: Place,
        stored: Option<&str>,
    ) -> Result<Option<String>, SealError> {
        stored.map(|s| self.open(place, s)).transpose()
    }

    /// Whether `stored` is sealed under the sealing key already.
    pub fn is_current(&self, stored: &str) -> bool {
        key_id_of(stored) == Some(self.current_id())
    }
}

impl Key {
    fn new(config: &DataKey) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&config.secret)
            .expect("HMAC takes any key length");
        mac.update(b"schoolsignal data key fingerprint v1");
        Key {
            id: config.id.clone(),
            cipher: Aes256Gcm::new((&config.secret).into()),
            fingerprint: hex::encode(mac.finalize().into_bytes()),
        }
    }
}

/// The key id a stored value is sealed under; None for a value in the clear.
pub fn key_id_of(stored: &str) -> Option<&str> {
    split(stored).map(|(id, _)| id)
}

fn split(stored: &str) -> Option<(&str, &str)> {
    stored.strip_prefix(PREFIX)?.split_once('.')
}

fn associated_data(place: Place) -> Vec<u8> {
    let Column { table, name, .. } = place.column;
    format!("schoolsignal:{table}.{name}:{}", place.row).into_bytes()
}

/// Opening a sealed column is part of reading a row, so it fails like one.
impl From<SealError> for diesel::result::Error {
    fn from(e: SealError) -> Self {
        diesel::result::Error::DeserializationError(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::keys_from;

    const NAME: Column = columns::GIVEN_NAME;

    fn ring(spec: &str) -> Keyring {
        Keyring::new(&keys_from(spec).unwrap())
    }

    const A: &str = "a:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const B: &str = "b:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

    #[test]
    fn a_sealed_value_opens_in_its_own_place_only() {
        let keys = ring(A);
        let here = Place {
            column: NAME,
            row: "n1",
        };
        let sealed = keys.seal(here, "Sanne");
        assert!(sealed.starts_with("s1.a."), "{sealed}");
        assert!(!sealed.contains("Sanne"));
        assert_ne!(sealed, keys.seal(here, "Sanne"), "a fresh nonce each time");
        assert_eq!(keys.open(here, &sealed).unwrap(), "Sanne");
        let other_row = Place {
            column: NAME,
            row: "n2",
        };
        assert_eq!(keys.open(other_row, &sealed), Err(SealError::Damaged));
        let other_column = Place {
            column: columns::FAMILY_NAME,
            row: "n1",
        };
        assert_eq!(keys.open(other_column, &sealed), Err(SealError::Damaged));
        let mut tampered = sealed.clone();
        tampered.pop();
        assert_eq!(keys.open(here, &tampered), Err(SealError::Damaged));
    }

    #[test]
    fn any_listed_key_opens_and_the_first_seals() {
        let here = Place {
            column: NAME,
            row: "n1",
        };
        let old = ring(A).seal(here, "Daan");
        let both = ring(&format!("{B},{A}"));
        assert_eq!(both.open(here, &old).unwrap(), "Daan");
        assert!(!both.is_current(&old));
        assert!(both.is_current(&both.seal(here, "Daan")));
        assert_eq!(
            ring(B).open(here, &old),
            Err(SealError::UnknownKey("a".into()))
        );
    }

    #[test]
    fn clear_values_from_before_sealing_read_as_they_are() {
        let here = Place {
            column: NAME,
            row: "n1",
        };
        assert_eq!(ring(A).open(here, "Sanne").unwrap(), "Sanne");
        assert_eq!(key_id_of("Sanne"), None);
    }

    #[test]
    fn fingerprints_differ_per_key_and_reveal_nothing() {
        let (a, b) = (ring(A), ring(B));
        let fa = a.fingerprints().next().unwrap().1.to_string();
        assert_ne!(fa, b.fingerprints().next().unwrap().1);
        assert_eq!(fa.len(), 64);
    }
}

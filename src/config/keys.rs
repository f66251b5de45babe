//! The data keys section: the AEAD keys that seal personal data at rest
//! (`SCHOOLSIGNAL_DATA_KEYS`). The first key seals; every key listed opens.

use super::vars::{err, Reader};
use super::ConfigError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

const VAR: &str = "SCHOOLSIGNAL_DATA_KEYS";

/// The key used when none is configured: it is in the source, so it protects
/// nothing. Refused in production.
pub const DEV_DATA_KEYS: &str = "dev:c2Nob29sc2lnbmFsLWRldmVsb3BtZW50LWRhdGFrZXk=";

/// One data key: an id that is stored beside every value it seals, and 32 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey {
    pub id: String,
    pub secret: [u8; 32],
}

/// The configured keys, the sealing key first.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKeysConfig {
    pub keys: Vec<DataKey>,
}

impl std::fmt::Debug for DataKeysConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        write!(f, "DataKeysConfig({ids:?}, <secrets redacted>)")
    }
}

impl DataKeysConfig {
    pub(super) fn read(r: &Reader<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        parse(&r.set(VAR).unwrap_or_else(|| DEV_DATA_KEYS.into()))
    }

    /// Whether any listed key is the development key.
    pub fn has_development_key(&self) -> bool {
        let dev = parse(DEV_DATA_KEYS).expect("the development key parses");
        self.keys
            .iter()
            .any(|k| dev.keys.iter().any(|d| d.secret == k.secret))
    }
}

/// `id:base64,id:base64…`. Errors name the entry by position, never its text.
pub fn parse(value: &str) -> Result<DataKeysConfig, ConfigError> {
    let mut keys: Vec<DataKey> = Vec::new();
    for (n, entry) in value.split(',').map(str::trim).enumerate() {
        let key = entry_key(entry).map_err(|why| err(VAR, format!("key {}: {why}", n + 1)))?;
        if keys.iter().any(|k| k.id == key.id) {
            return Err(err(VAR, format!("key {}: its id is listed twice", n + 1)));
        }
        keys.push(key);
    }
    Ok(DataKeysConfig { keys })
}

fn entry_key(entry: &str) -> Result<DataKey, &'static str> {
    let (id, secret) = entry
        .split_once(':')
        .ok_or("must be ID:BASE64 (see `schoolsignal keys generate`)")?;
    if !is_key_id(id) {
        return Err("its id must be 1 to 32 letters, digits or '-'");
    }
    let secret = STANDARD
        .decode(secret.trim())
        .map_err(|_| "its secret is not base64")?;
    let secret = secret
        .try_into()
        .map_err(|_| "its secret must be exactly 32 bytes")?;
    Ok(DataKey {
        id: id.to_string(),
        secret,
    })
}

/// Key ids are stored in front of each sealed value and matched with LIKE, so they
/// hold no separator and no wildcard.
pub fn is_key_id(id: &str) -> bool {
    (1..=32).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        STANDARD.encode([byte; 32])
    }

    #[test]
    fn keys_parse_in_order_and_the_first_seals() {
        let parsed = parse(&format!("2026a:{},2025b:{}", key(1), key(2))).unwrap();
        let ids: Vec<&str> = parsed.keys.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids, ["2026a", "2025b"]);
        assert_eq!(parsed.keys[1].secret, [2; 32]);
        assert!(!parsed.has_development_key());
        assert!(parse(DEV_DATA_KEYS).unwrap().has_development_key());
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        let secret = key(7);
        for bad in [
            String::new(),
            format!("no-colon{secret}"),
            format!("bad.id:{secret}"),
            "a:not base64!".to_string(),
            format!("a:{}", STANDARD.encode([1; 16])),
            format!("a:{secret},a:{}", key(8)),
        ] {
            let e = parse(&bad).unwrap_err();
            assert_eq!(e.var, VAR);
            assert!(!e.to_string().contains(&secret), "{e}");
        }
    }
}

//! Reading what the service sealed, as an operator with the key would: the tests'
//! services run on the development data key.

use schoolsignal::config::{keys_from, DEV_DATA_KEYS};
use schoolsignal::sealing::{Column, Keyring};

/// The development keyring, which every test service uses unless told otherwise.
pub fn dev_keyring() -> Keyring {
    Keyring::new(&keys_from(DEV_DATA_KEYS).unwrap())
}

/// A stored value of `column` in row `row`, opened; it must be sealed (or NULL).
pub fn opened(column: Column, row: &str, stored: Option<String>) -> Option<String> {
    let stored = stored?;
    assert!(
        schoolsignal::sealing::key_id_of(&stored).is_some(),
        "{}.{} of {row} is stored in the clear",
        column.table,
        column.name
    );
    Some(dev_keyring().open(column.at(row), &stored).unwrap())
}

/// A data key of one's own, for services and commands run in production mode.
pub const PRODUCTION_DATA_KEYS: &str = "prod:cHJvZHVjdGlvbi1kYXRhLWtleS1mb3ItdGVzdHMtMDE=";

/// A coordinator at the portal's store, acting at `now` on the development key.
pub fn desk(email: &str, now: chrono::DateTime<chrono::Utc>) -> schoolsignal::notices::store::Desk {
    schoolsignal::notices::store::Desk {
        email: email.to_string(),
        now,
        keys: std::sync::Arc::new(dev_keyring()),
        erase_on_close: false,
    }
}

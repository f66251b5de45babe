//! Every sealed column, in one list: what `keys rotate` and `keys check` walk, and
//! the names bound into each value's associated data (so never rename one without
//! a migration that re-seals it).

/// The primary key a re-sealing update matches a row by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKey {
    /// A text key.
    Text(&'static str),
    /// A 64-bit integer key.
    BigInt(&'static str),
}

/// A sealed column: its table and name; `row`, SQL for the row's name in the
/// associated data (the same text the code binds when it seals); the key that
/// updates match; and which of its rows are sealed (SQL; all that are not NULL when
/// None).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub table: &'static str,
    pub name: &'static str,
    pub row: &'static str,
    pub key: RowKey,
    pub only: Option<&'static str>,
}

impl Column {
    pub fn at(self, row: &str) -> super::Place<'_> {
        super::Place { column: self, row }
    }
}

const fn notices(name: &'static str) -> Column {
    Column {
        table: "notices",
        name,
        row: "id",
        key: RowKey::Text("id"),
        only: None,
    }
}

pub const GIVEN_NAME: Column = notices("child_given_name");
pub const FAMILY_NAME: Column = notices("child_family_name");
pub const DATE_OF_BIRTH: Column = notices("child_date_of_birth");
pub const GROUP: Column = notices("child_group");
/// `yes` or `no`: whether the child was there during the incident.
pub const PRESENT: Column = notices("child_present");

pub const NOTE_BODY: Column = Column {
    table: "notice_notes",
    name: "body",
    row: "CAST(id AS TEXT)",
    key: RowKey::BigInt("id"),
    only: None,
};

pub const SIGNAL_DESCRIPTION: Column = Column {
    table: "school_signals",
    name: "description",
    row: "signal_id",
    key: RowKey::Text("signal_id"),
    only: None,
};

/// Only `school_signal.v1` messages carry personal data (the child's name, date of
/// birth and the description); outcomes and escalations name no one.
pub const OUTBOX_BODY: Column = Column {
    table: "outbox_messages",
    name: "body",
    row: "message_id",
    key: RowKey::Text("message_id"),
    only: Some("message_type = 'school_signal.v1'"),
};

pub const TOTP_SECRET: Column = Column {
    table: "staff_accounts",
    name: "totp_secret",
    row: "email",
    key: RowKey::Text("email"),
    only: None,
};

/// The registry's group label of a child at a school. Bound to the child (keyed
/// BSN) and the school: the row id is not known before an import inserts the row.
pub const ENROLLMENT_GROUP: Column = Column {
    table: "enrollments",
    name: "grp",
    row: "bsn_hash || ':' || school_brin",
    key: RowKey::BigInt("id"),
    only: Some("grp <> ''"),
};

/// The row name of an enrollment's group, as [`ENROLLMENT_GROUP`]'s `row` makes it.
pub fn enrollment_row(bsn_hash: &str, school_brin: &str) -> String {
    format!("{bsn_hash}:{school_brin}")
}

pub const SEALED: &[Column] = &[
    GIVEN_NAME,
    FAMILY_NAME,
    DATE_OF_BIRTH,
    GROUP,
    PRESENT,
    NOTE_BODY,
    SIGNAL_DESCRIPTION,
    OUTBOX_BODY,
    TOTP_SECRET,
    ENROLLMENT_GROUP,
];

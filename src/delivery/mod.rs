//! Email delivery: the lease queue of emails (`queue`, with its typed `kinds`), the
//! worker that sends them, how an email is composed from its `templates`, the
//! `transport` it leaves by, and the `.eml` files of development read back
//! (`eml_files`). It owns the `deliveries` table and imports nothing of the
//! notices: what it asks of them goes through [`queue::Notices`].

pub mod compose;
pub mod eml_files;
pub mod kinds;
pub mod queue;
pub mod sign_in;
pub mod templates;
pub mod transport;
pub mod worker;

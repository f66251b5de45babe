//! The consented registry: schools, enrollments, parental objections, and the keyed
//! hash under which every BSN is stored.

pub mod csv_import;
pub mod enrollments;
pub mod keyed_hash;
pub mod schools;
pub mod simulated;

pub use keyed_hash::KeyedHasher;

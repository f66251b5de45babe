//! Simulated schools, for a rehearsal of the whole chain before go-live: coordinator
//! and deputy addresses at [`DOMAIN`] never reach a mail server. The local part picks
//! what the send does, and everything else (notices, retries, the deputy fallback,
//! reminders, escalation) runs for real. `.invalid` is reserved (RFC 2606), so no
//! such address can ever belong to a real school.

/// The reserved domain of simulated addresses.
pub const DOMAIN: &str = "simulator.schoolsignal.invalid";

/// How many attempts to `temporary-failure@` get a 4xx reply before one succeeds.
pub const TEMPORARY_FAILURES: i32 = 2;

/// What sending to a simulated address does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `delivered@`: accepted at once.
    Delivered,
    /// `temporary-failure@`: a 4xx reply to the first [`TEMPORARY_FAILURES`]
    /// attempts, then accepted.
    TemporaryFailure,
    /// `permanent-failure@`: a 5xx reply about the recipient, every time.
    PermanentFailure,
}

/// The local parts that mean something at [`DOMAIN`].
pub const LOCAL_PARTS: [(&str, Behaviour); 3] = [
    ("delivered", Behaviour::Delivered),
    ("temporary-failure", Behaviour::TemporaryFailure),
    ("permanent-failure", Behaviour::PermanentFailure),
];

/// Whether `address` is at the simulator's domain (whatever its local part).
pub fn is_simulated(address: &str) -> bool {
    address
        .rsplit_once('@')
        .is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(DOMAIN))
}

/// What a send to `address` does: `None` when it is not a simulated address, or is
/// one with a local part that means nothing (the school import refuses those).
pub fn behaviour(address: &str) -> Option<Behaviour> {
    let (local, domain) = address.rsplit_once('@')?;
    if !domain.eq_ignore_ascii_case(DOMAIN) {
        return None;
    }
    LOCAL_PARTS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(local))
        .map(|(_, b)| *b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_part_picks_the_behaviour() {
        let at = |local: &str| format!("{local}@{DOMAIN}");
        assert_eq!(behaviour(&at("delivered")), Some(Behaviour::Delivered));
        assert_eq!(
            behaviour(&at("Temporary-Failure")),
            Some(Behaviour::TemporaryFailure)
        );
        assert_eq!(
            behaviour(&at("permanent-failure")),
            Some(Behaviour::PermanentFailure)
        );
        assert_eq!(behaviour(&at("other")), None);
        assert!(is_simulated(&at("other")));
        assert!(!is_simulated("delivered@school.nl"));
        assert_eq!(
            behaviour("delivered@simulator.schoolsignal.invalid.nl"),
            None
        );
    }
}

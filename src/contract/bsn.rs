//! The Dutch citizen service number (BSN), checked with the eleven test.

/// A BSN that passed the eleven test. Its `Debug` never shows the digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Bsn(String);

impl Bsn {
    /// Nine digits whose weighted sum (9,8,7,6,5,4,3,2,-1) is divisible by 11, and not
    /// all zeros: `000000000` passes the sum but is no one's number (contract section 1).
    pub fn parse(raw: &str) -> Option<Bsn> {
        let digits: Vec<i64> = raw
            .chars()
            .map(|c| c.to_digit(10).map(i64::from))
            .collect::<Option<_>>()?;
        if digits.len() != 9 || digits.iter().all(|d| *d == 0) {
            return None;
        }
        let weights = [9, 8, 7, 6, 5, 4, 3, 2, -1];
        let sum: i64 = digits.iter().zip(weights).map(|(d, w)| d * w).sum();
        (sum % 11 == 0).then(|| Bsn(raw.to_string()))
    }

    pub fn digits(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Bsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bsn(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eleven_test() {
        for ok in [
            "111222333",
            "725763863",
            "162275869",
            "192285142",
            "691682483",
        ] {
            assert!(Bsn::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "111222334",
            "11122233",
            "1112223333",
            "11122233a",
            "",
            "１１１222333",
            "000000000",
        ] {
            assert!(Bsn::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(
            format!("{:?}", Bsn::parse("111222333").unwrap()),
            "Bsn(<redacted>)"
        );
    }
}

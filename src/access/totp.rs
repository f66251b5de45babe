//! The second factor: TOTP (RFC 6238; SHA-1, 6 digits, 30 s), as every
//! authenticator app reads it. A code is accepted once, within one step either way.

use totp_rs::{Algorithm, Secret, TOTP};

const STEP: u64 = 30;

/// A new random secret (160 bits), base32 as apps expect it.
pub fn new_secret() -> String {
    match Secret::generate_secret().to_encoded() {
        Secret::Encoded(s) => s,
        Secret::Raw(_) => unreachable!("to_encoded gives the encoded form"),
    }
}

fn totp(secret: &str, account: &str) -> Option<TOTP> {
    let secret: String = secret.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = Secret::Encoded(secret).to_bytes().ok()?;
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP,
        bytes,
        Some("Schoolsignaal".to_string()),
        account.to_string(),
    )
    .ok()
}

/// The time step `code` belongs to, if it is valid now and newer than `last_step`.
pub fn verify(secret: &str, code: &str, unix_time: u64, last_step: u64) -> Option<u64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let totp = totp(secret, "-")?;
    let now = unix_time / STEP;
    [now.saturating_sub(1), now, now + 1]
        .into_iter()
        .filter(|step| *step > last_step)
        .find(|step| totp.generate(step * STEP) == code)
}

/// The current code, for tests.
pub fn current_code(secret: &str, unix_time: u64) -> Option<String> {
    Some(totp(secret, "-")?.generate(unix_time))
}

/// The `otpauth://totp/…` URL that hands an authenticator app the key.
pub fn url(secret: &str, account: &str) -> Option<String> {
    Some(totp(secret, account)?.get_url())
}

/// The enrolment QR code of [`url`], as an inline SVG (no image request, no script).
pub fn qr_svg(secret: &str, account: &str) -> Option<String> {
    let url = url(secret, account)?;
    let code = qrcode::QrCode::new(url.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_works_once_and_only_near_its_time() {
        let secret = new_secret();
        let t = 1_800_000_000;
        let code = current_code(&secret, t).unwrap();
        let step = verify(&secret, &code, t, 0).expect("the current code");
        assert_eq!(verify(&secret, &code, t, step), None, "not twice");
        assert_eq!(verify(&secret, &code, t + 10 * STEP, 0), None, "not later");
        assert_eq!(verify(&secret, "12345", t, 0), None);
        assert_eq!(verify(&secret, "abcdef", t, 0), None);
    }

    #[test]
    fn the_qr_code_is_svg() {
        let svg = qr_svg(&new_secret(), "zorg@example.org").unwrap();
        assert!(svg.contains("<svg") && !svg.contains("<script"));
    }
}

//! Who runs the service: the organisation every email and page names, so that a
//! coordinator can tell a real notice from phishing and knows whom to call. The
//! discretion check of the mail templates covers these values too (see
//! `delivery::templates`): a name such as "Veilig Thuis" would itself reveal the
//! matter.

use super::vars::{err, Reader};
use super::ConfigError;

/// The sending organisation, as the emails, page footers and public pages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgConfig {
    /// For example the municipality: "Gemeente Utrecht".
    pub name: String,
    /// Shown as written: "030 286 00 00".
    pub phone: String,
    pub email: String,
    /// `https://…` (`http://` only in development).
    pub url: String,
    /// `security.txt`'s `Contact:`: a `mailto:` or `https:` URI.
    pub security_contact: String,
}

/// The variables, for production's check that each is set.
pub const ORG_VARIABLES: [&str; 4] = [
    "SCHOOLSIGNAL_ORG_NAME",
    "SCHOOLSIGNAL_ORG_PHONE",
    "SCHOOLSIGNAL_ORG_EMAIL",
    "SCHOOLSIGNAL_ORG_URL",
];

impl OrgConfig {
    pub(super) fn read(r: &Reader<impl Fn(&str) -> Option<String>>) -> Result<Self, ConfigError> {
        let email = email(r)?;
        let security_contact = match r.set("SCHOOLSIGNAL_SECURITY_CONTACT") {
            None => format!("mailto:{email}"),
            Some(contact) => security_contact(contact.trim())?,
        };
        Ok(OrgConfig {
            name: name(r)?,
            phone: phone(r)?,
            email,
            url: url(r)?,
            security_contact,
        })
    }
}

/// Plain text on one line: it goes into headers of pages and mails.
fn name(r: &Reader<impl Fn(&str) -> Option<String>>) -> Result<String, ConfigError> {
    let name = r.text("SCHOOLSIGNAL_ORG_NAME").trim().to_string();
    let length = name.chars().count();
    if !(2..=80).contains(&length) || name.chars().any(char::is_control) {
        return Err(err(
            "SCHOOLSIGNAL_ORG_NAME",
            "must be 2 to 80 characters on one line",
        ));
    }
    Ok(name)
}

fn phone(r: &Reader<impl Fn(&str) -> Option<String>>) -> Result<String, ConfigError> {
    let phone = r.text("SCHOOLSIGNAL_ORG_PHONE").trim().to_string();
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let allowed = phone
        .chars()
        .all(|c| c.is_ascii_digit() || " +-()".contains(c));
    if !allowed || !(3..=15).contains(&digits) {
        return Err(err(
            "SCHOOLSIGNAL_ORG_PHONE",
            "must be a telephone number: digits, spaces, +, - and parentheses",
        ));
    }
    Ok(phone)
}

fn email(r: &Reader<impl Fn(&str) -> Option<String>>) -> Result<String, ConfigError> {
    let email = r.text("SCHOOLSIGNAL_ORG_EMAIL").trim().to_string();
    match email.parse::<lettre::Address>() {
        Ok(_) => Ok(email),
        Err(_) => Err(err(
            "SCHOOLSIGNAL_ORG_EMAIL",
            "must be a bare address: `zorg@gemeente.nl`",
        )),
    }
}

fn url(r: &Reader<impl Fn(&str) -> Option<String>>) -> Result<String, ConfigError> {
    let url = r.text("SCHOOLSIGNAL_ORG_URL").trim().to_string();
    match url::Url::parse(&url) {
        Ok(u) if ["http", "https"].contains(&u.scheme()) && u.host_str().is_some() => Ok(url),
        _ => Err(err("SCHOOLSIGNAL_ORG_URL", "must be an https:// address")),
    }
}

/// RFC 9116 wants a URI; a bare address is taken as `mailto:`.
fn security_contact(contact: &str) -> Result<String, ConfigError> {
    let bad = || {
        err(
            "SCHOOLSIGNAL_SECURITY_CONTACT",
            "must be an address, a mailto: URI or an https:// address",
        )
    };
    if contact.starts_with("https://") {
        return url::Url::parse(contact)
            .map(|_| contact.to_string())
            .map_err(|_| bad());
    }
    let address = contact.strip_prefix("mailto:").unwrap_or(contact);
    address
        .parse::<lettre::Address>()
        .map(|_| format!("mailto:{address}"))
        .map_err(|_| bad())
}

/// Production insists on a real address: an organisation's site is https.
pub(super) fn check_production(
    r: &Reader<impl Fn(&str) -> Option<String>>,
    org: &OrgConfig,
) -> Result<(), ConfigError> {
    if let Some(var) = ORG_VARIABLES.into_iter().find(|v| r.set(v).is_none()) {
        return Err(err(
            var,
            "must be set in production: every email and page names who sends it",
        ));
    }
    if !org.url.starts_with("https://") {
        return Err(err(
            "SCHOOLSIGNAL_ORG_URL",
            "must be an https:// address in production",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn read(pairs: &[(&str, &str)]) -> Result<OrgConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        OrgConfig::read(&Reader::new(|k| map.get(k).cloned()))
    }

    #[test]
    fn defaults_name_an_example_organisation() {
        let org = read(&[]).unwrap();
        assert_eq!(org.name, "Gemeente Voorbeeldstad");
        assert_eq!(
            org.security_contact,
            "mailto:schoolsignaal@voorbeeldstad.example"
        );
    }

    #[test]
    fn each_setting_is_checked_and_named() {
        for (var, bad) in [
            ("SCHOOLSIGNAL_ORG_NAME", "x"),
            ("SCHOOLSIGNAL_ORG_NAME", "Gemeente\nUtrecht"),
            ("SCHOOLSIGNAL_ORG_PHONE", "call us"),
            ("SCHOOLSIGNAL_ORG_PHONE", "12"),
            ("SCHOOLSIGNAL_ORG_EMAIL", "Zorg <zorg@utrecht.nl>"),
            ("SCHOOLSIGNAL_ORG_URL", "www.utrecht.nl"),
            ("SCHOOLSIGNAL_ORG_URL", "ftp://utrecht.nl"),
            ("SCHOOLSIGNAL_SECURITY_CONTACT", "call the desk"),
        ] {
            assert_eq!(read(&[(var, bad)]).unwrap_err().var, var, "{bad:?}");
        }
        let ok = read(&[
            ("SCHOOLSIGNAL_ORG_PHONE", "+31 (0)30 286 00 00"),
            ("SCHOOLSIGNAL_SECURITY_CONTACT", "security@utrecht.nl"),
        ])
        .unwrap();
        assert_eq!(ok.phone, "+31 (0)30 286 00 00");
        assert_eq!(ok.security_contact, "mailto:security@utrecht.nl");
        let web = read(&[(
            "SCHOOLSIGNAL_SECURITY_CONTACT",
            "https://utrecht.nl/security",
        )]);
        assert_eq!(web.unwrap().security_contact, "https://utrecht.nl/security");
    }
}

//! Reading the portal as a client does: links in emails, pages, form fields,
//! cookies, and the second factor's code.

use reqwest::header::{HeaderMap, SET_COOKIE};

/// The token of the first `{public}/n/{hex token}` link in an email's `text`.
pub fn link_token(text: &str, public: &str) -> String {
    let prefix = format!("{public}/n/");
    let start = text.find(&prefix).expect("a portal link in the email") + prefix.len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect()
}

/// The text of `page` between the first `start` and the `end` after it.
pub fn between(page: &str, start: &str, end: &str) -> String {
    let from = page
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in page"))
        + start.len();
    page[from..from + page[from..].find(end).unwrap()].to_string()
}

/// The value of the form field `name` (`name="…" value="…"`) on `page`.
pub fn field(page: &str, name: &str) -> String {
    between(page, &format!("name=\"{name}\" value=\""), "\"")
}

/// The cookie a response sets, as `name=value` for a `Cookie` header.
pub fn session_cookie(headers: &HeaderMap) -> String {
    let set = headers[SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

/// The TOTP code for `secret` at the real time (the phone's clock).
pub fn code_now(secret: &str) -> String {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    schoolsignal::access::totp::current_code(secret, unix).unwrap()
}

/// The key on an enrolment page, without the markup and spaces that group it.
pub fn enrolment_secret(page: &str) -> String {
    between(page, "<code class=\"secret\">", "</code>")
        .replace("<span>", "")
        .replace("</span>", "")
        .replace(' ', "")
}

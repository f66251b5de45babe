//! The `.eml` files the file transport writes in development (no `SMTP_URL`), read
//! back for a person trying the service: who each email is to, its subject and its
//! portal link, decoded (the link in the file is quoted-printable, so it cannot be
//! copied from the raw text). Nothing here logs: what it reads is personal data, and
//! only the person who asked sees it, on their own terminal.

use mail_parser::MessageParser;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One email read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmlSummary {
    /// The addresses in its `To` header, joined with ", ".
    pub to: String,
    /// The decoded subject ("" when it has none).
    pub subject: String,
    /// The portal link, `{public_url}/n/{token}`; None for an email without one (a
    /// note that a second factor was set up links to the home page only).
    pub link: Option<String>,
}

/// A file that could not be read back, and why, in words that quote nothing of its
/// contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmlError {
    pub file: PathBuf,
    pub why: String,
}

impl std::fmt::Display for EmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.why)
    }
}

/// Every `.eml` file in `dir`, newest first (by when it was written), each read back
/// or the reason it could not be. A folder that does not exist yet holds none: the
/// service makes it when it first starts.
pub fn read_folder(dir: &Path) -> std::io::Result<Vec<Result<EmlSummary, EmlError>>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files: Vec<(Option<SystemTime>, PathBuf)> = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if is_eml(&path) {
            let written = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            files.push((written, path));
        }
    }
    // Newest first; the name breaks a tie, so the order is the same every time.
    files.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    Ok(files
        .into_iter()
        .map(|(_, path)| read_file(&path))
        .collect())
}

/// A finished `.eml` file: not the hidden `.NAME.eml.part` a write in progress uses.
fn is_eml(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    !name.starts_with('.') && name.ends_with(".eml")
}

/// One file read back.
pub fn read_file(path: &Path) -> Result<EmlSummary, EmlError> {
    let error = |why: String| EmlError {
        file: path.to_path_buf(),
        why,
    };
    let raw = std::fs::read(path).map_err(|e| error(format!("cannot read it ({e})")))?;
    parse(&raw).map_err(|why| error(why.to_string()))
}

/// An email's recipients, subject and portal link. An email must at least have a
/// `To` header: anything less is not one the service wrote.
pub fn parse(raw: &[u8]) -> Result<EmlSummary, &'static str> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or("not an email (it cannot be parsed)")?;
    let to: Vec<&str> = message
        .to()
        .map(|a| a.iter().filter_map(|a| a.address()).collect())
        .unwrap_or_default();
    if to.is_empty() {
        return Err("not an email (no To address)");
    }
    let link = message
        .body_text(0)
        .and_then(|text| portal_link(&text))
        .or_else(|| message.body_html(0).and_then(|html| portal_link(&html)));
    Ok(EmlSummary {
        to: to.join(", "),
        subject: message.subject().unwrap_or_default().to_string(),
        link,
    })
}

/// The first link in `text` whose path ends in `/n/{token}`: the portal's link for
/// one notice (or one sign-in). Any base is taken, so a listing run with another
/// `SCHOOLSIGNAL_PUBLIC_URL` than the service still finds it.
pub fn portal_link(text: &str) -> Option<String> {
    text.match_indices("http").find_map(|(at, _)| {
        let candidate: String = text[at..]
            .chars()
            .take_while(|c| !c.is_whitespace() && !"<>\"'".contains(*c))
            .collect();
        let candidate = candidate.trim_end_matches(['.', ',', ';', ':', ')', '!', '?']);
        is_portal_link(candidate).then(|| candidate.to_string())
    })
}

/// An `http(s)` URL with no query or fragment whose last two path segments are `n`
/// and a token of letters, digits, `-` and `_`.
fn is_portal_link(candidate: &str) -> bool {
    let Ok(url) = url::Url::parse(candidate) else {
        return false;
    };
    let segments: Vec<&str> = url
        .path_segments()
        .map(Iterator::collect)
        .unwrap_or_default();
    matches!(url.scheme(), "http" | "https")
        && url.query().is_none()
        && url.fragment().is_none()
        && matches!(segments.as_slice(), [.., "n", token] if is_token(token))
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The listing, one email a line: recipient, subject and link in aligned columns
/// (`-` for an email without a link).
pub fn table(emails: &[EmlSummary]) -> String {
    let width = |f: fn(&EmlSummary) -> &str| {
        emails
            .iter()
            .map(|e| f(e).chars().count())
            .max()
            .unwrap_or(0)
    };
    let (to_width, subject_width) = (width(|e| &e.to), width(|e| &e.subject));
    let mut out = String::new();
    for e in emails {
        let link = e.link.as_deref().unwrap_or("-");
        let line = format!("{:to_width$}  {:subject_width$}  {link}", e.to, e.subject);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINK: &str = "http://localhost:8080/n/3f9a0c1d2e4b";

    /// A notice as lettre writes it: multipart, the text part quoted-printable with
    /// the link broken by a soft line break.
    fn notice(to: &str) -> String {
        format!(
            "From: Schoolsignaal <noreply@localhost>\r\nTo: \"Zorg\" <{to}>\r\n\
             Subject: =?utf-8?q?Vertrouwelijk_bericht_=E2=80=93_log_in?=\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n\
             --b\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n\r\n\
             Open de melding:=0A=0Ahttp://localhost:8080/n/3f9a=\r\n0c1d2e4b=0A\r\n\
             --b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
             <a href=3D\"{LINK}\">open</a>\r\n--b--\r\n"
        )
    }

    #[test]
    fn reads_recipient_subject_and_the_decoded_link() {
        let summary = parse(notice("zorg@school.example.nl").as_bytes()).unwrap();
        assert_eq!(summary.to, "zorg@school.example.nl");
        assert_eq!(summary.subject, "Vertrouwelijk bericht – log in");
        assert_eq!(summary.link.as_deref(), Some(LINK));
    }

    #[test]
    fn what_is_not_an_email_says_so() {
        assert_eq!(parse(b""), Err("not an email (it cannot be parsed)"));
        assert_eq!(
            parse(b"just some text\r\nwith lines\r\n"),
            Err("not an email (it cannot be parsed)")
        );
        assert_eq!(
            parse(b"Subject: hello\r\n\r\nno recipient\r\n"),
            Err("not an email (no To address)")
        );
    }

    #[test]
    fn only_a_portal_link_is_taken() {
        let link = |t: &str| portal_link(t);
        assert_eq!(link(&format!("see {LINK}.")).as_deref(), Some(LINK));
        assert_eq!(link(&format!("(<{LINK}>)")).as_deref(), Some(LINK));
        assert_eq!(
            link(&format!("home http://localhost:8080/ then {LINK}")).as_deref(),
            Some(LINK)
        );
        assert_eq!(link("http://localhost:8080/"), None);
        assert_eq!(link("http://localhost:8080/n/"), None);
        assert_eq!(link("http://localhost:8080/n/abc?x=1"), None);
        assert_eq!(link("ftp://localhost/n/abc"), None);
        assert_eq!(link("httpfoo"), None);
    }

    #[test]
    fn the_table_aligns_its_columns() {
        let e = |to: &str, subject: &str, link: Option<&str>| EmlSummary {
            to: to.into(),
            subject: subject.into(),
            link: link.map(str::to_string),
        };
        let out = table(&[
            e("a@x.nl", "Één", Some(LINK)),
            e("longer@x.nl", "Two words", None),
        ]);
        assert_eq!(
            out,
            format!("a@x.nl       Één        {LINK}\nlonger@x.nl  Two words  -\n")
        );
    }

    #[test]
    fn partial_and_other_files_are_left_out() {
        assert!(is_eml(Path::new("/o/abc@localhost.eml")));
        assert!(!is_eml(Path::new("/o/.abc@localhost.eml.part")));
        assert!(!is_eml(Path::new("/o/notes.txt")));
    }
}

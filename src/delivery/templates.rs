//! Mail templates: the discreet emails sent to a school's care coordinator.
//!
//! Every mail is rendered from three minijinja templates per kind and locale:
//! `<locale>/<kind>.subject.txt`, `<locale>/<kind>.txt` and `<locale>/<kind>.html`.
//! The built-in versions live in `templates-mail/` and are compiled into the
//! binary; an operator may replace any of them with a file of the same name in
//! an override folder.
//!
//! Discretion is the point of this module. The only data a template can see is
//! [`MailContext`], which has no field for anything about the child or the
//! matter. On top of that, [`Templates::load`] renders every template with a
//! sample context and refuses to start if the fixed text of a template contains
//! one of the [`REVEALING_WORDS`], or if an HTML template would load anything
//! from outside the mail (images, tracking pixels, style sheets, scripts), or if a
//! mail that must carry no URL (see [`Kind::carries_url`]) holds one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::kinds::Kind;
use crate::config::OrgConfig;
use crate::locale::{format_open_by, Locale};
use chrono::{DateTime, TimeZone, Utc};
use minijinja::{AutoEscape, Environment, Output, State, UndefinedBehavior, Value};

/// Words that must never appear in a subject, body or header of these mails,
/// lowercase. Matching is by substring on lowercased text, so it is
/// deliberately conservative (`"kind"` also catches `"kinderen"` and the
/// English `"kind regards"`).
///
/// Note: real school names may legitimately contain some of these (for
/// example "Kindcentrum De Regenboog"), so this list is checked against the
/// fixed text of the templates (rendered with a neutral sample context), not
/// against every real mail.
pub const REVEALING_WORDS: &[&str] = &[
    "police",
    "politie",
    "violence",
    "violent",
    "geweld",
    "abuse",
    "mishandeling",
    "misbruik",
    "domestic",
    "huiselijk",
    "incident",
    "veilig thuis",
    "handle with care",
    "encompass",
    "home visit",
    "huisbezoek",
    "child",
    "kind",
    "leerling",
    "pupil",
    "student",
    "victim",
    "slachtoffer",
    "neglect",
    "verwaarlozing",
    "aangifte",
    "trauma",
];

/// Things an HTML template may not contain (checked, lowercased, on the
/// sample rendering after removing the link): anything that makes a mail
/// client fetch something from outside the mail.
const EXTERNAL_RESOURCE_MARKERS: &[&str] = &[
    "<img",
    "<image",
    "<picture",
    "<svg",
    "<video",
    "<audio",
    "<source",
    "<track",
    "<iframe",
    "<frame",
    "<object",
    "<embed",
    "<script",
    "<link",
    "<form",
    "<base",
    "<meta http-equiv",
    "src=",
    "srcset=",
    "background=",
    "poster=",
    "url(",
    "@import",
    "http:",
    "https:",
    "\"//",
    "'//",
];

/// Everything a template may use. Deliberately holds nothing about the child
/// or the incident: there is no field to put such data in.
#[derive(Debug, Clone, Copy)]
pub struct MailContext<'a> {
    /// The school the message is for.
    pub school_name: &'a str,
    /// The care coordinator; templates fall back to a generic greeting when empty.
    pub recipient_name: &'a str,
    /// `{public_url}/n/{token}` or a sign-in link.
    pub link: &'a str,
    /// Rendered as local Europe/Amsterdam time, see [`format_open_by`].
    pub open_by: DateTime<Utc>,
    /// How long a sign-in link is valid (for [`Kind::SignIn`]).
    pub valid_minutes: u32,
}

impl<'a> MailContext<'a> {
    /// For an email about an account rather than a notice: it names no school.
    pub fn about_account(
        recipient_name: &'a str,
        link: &'a str,
        open_by: DateTime<Utc>,
        valid_minutes: u32,
    ) -> Self {
        MailContext {
            school_name: "",
            recipient_name,
            link,
            open_by,
            valid_minutes,
        }
    }
}

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line, trimmed, at most [`MAX_SUBJECT_CHARS`] characters.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The longest subject accepted, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;

/// What went wrong with a mail template. Every variant names the template
/// (`<locale>/<kind>.<part>`) or the file concerned; `origin` says whether
/// the built-in template or an override file was used.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("mail template {name} is missing")]
    Missing { name: String },
    #[error("mail template {name} ({origin}) has a syntax error: {message}")]
    Syntax {
        name: String,
        origin: String,
        message: String,
    },
    #[error("mail template {name} ({origin}) failed to render: {message}")]
    Render {
        name: String,
        origin: String,
        message: String,
    },
    #[error("mail template {name} ({origin}) produced an unusable subject: {reason}")]
    BadSubject {
        name: String,
        origin: String,
        reason: &'static str,
    },
    #[error(
        "mail template {name} ({origin}) contains the revealing word {word:?}; \
         these mails must not hint at what the message is about"
    )]
    Revealing {
        name: String,
        origin: String,
        word: &'static str,
    },
    #[error(
        "mail template {name} ({origin}) contains {marker:?}; HTML mails may not load \
         images, tracking pixels or any other external resource"
    )]
    ExternalResource {
        name: String,
        origin: String,
        marker: &'static str,
    },
    #[error(
        "mail template {name} ({origin}) contains {marker:?}; this mail must carry no \
         link or address of any site, so that its readers call instead"
    )]
    Url {
        name: String,
        origin: String,
        marker: &'static str,
    },
    #[error(
        "{var} contains the revealing word {word:?}; every email shows it, and must \
         not hint at what the message is about"
    )]
    RevealingSetting {
        var: &'static str,
        word: &'static str,
    },
    #[error(
        "mail template {name} ({origin}) does not show the organisation's name and \
         telephone number ({{{{ org_name }}}}, {{{{ org_phone }}}}): every email names \
         who sends it"
    )]
    NoSender { name: String, origin: String },
    #[error("cannot read mail template override {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error(
        "unknown file {path} in the mail template override folder; expected \
         <locale>/<kind>.subject.txt, <locale>/<kind>.txt or <locale>/<kind>.html \
         with locale nl or en and kind notice, reminder, withdrawal, signin, \
         factor_enrolled or factor_reset"
    )]
    UnknownOverride { path: PathBuf },
}

/// The three templates that make up one mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Subject,
    Text,
    Html,
}

impl Part {
    const ALL: [Part; 3] = [Part::Subject, Part::Text, Part::Html];

    fn suffix(self) -> &'static str {
        match self {
            Part::Subject => ".subject.txt",
            Part::Text => ".txt",
            Part::Html => ".html",
        }
    }

    /// Splits a file name like `notice.subject.txt` into kind and part.
    fn split_file_name(file_name: &str) -> Option<(Kind, Part)> {
        // Subject first: ".subject.txt" also ends in ".txt".
        Part::ALL.into_iter().find_map(|part| {
            let stem = file_name.strip_suffix(part.suffix())?;
            stem.parse::<Kind>().ok().map(|kind| (kind, part))
        })
    }
}

/// The template name, e.g. `nl/notice.html`. The extension drives
/// minijinja's auto-escaping: `.html` is HTML-escaped, `.txt` is not.
fn template_name(locale: Locale, kind: Kind, part: Part) -> String {
    format!("{}/{}{}", locale.as_str(), kind.as_str(), part.suffix())
}

macro_rules! builtin_templates {
    ($(($locale:literal, $kind:literal)),* $(,)?) => {
        &[$(
            (
                concat!($locale, "/", $kind, ".subject.txt"),
                include_str!(concat!("../../templates-mail/", $locale, "/", $kind, ".subject.txt")),
            ),
            (
                concat!($locale, "/", $kind, ".txt"),
                include_str!(concat!("../../templates-mail/", $locale, "/", $kind, ".txt")),
            ),
            (
                concat!($locale, "/", $kind, ".html"),
                include_str!(concat!("../../templates-mail/", $locale, "/", $kind, ".html")),
            ),
        )*]
    };
}

/// The built-in templates: (name, source).
const BUILTIN: &[(&str, &str)] = builtin_templates![
    ("nl", "notice"),
    ("nl", "reminder"),
    ("nl", "withdrawal"),
    ("nl", "signin"),
    ("nl", "factor_enrolled"),
    ("nl", "factor_reset"),
    ("en", "notice"),
    ("en", "reminder"),
    ("en", "withdrawal"),
    ("en", "signin"),
    ("en", "factor_enrolled"),
    ("en", "factor_reset"),
];

const BUILT_IN_ORIGIN: &str = "built-in";

/// The compiled mail templates.
pub struct Templates {
    env: Environment<'static>,
    /// Who sends: every email names the organisation and how to reach it.
    org: OrgConfig,
    /// Template name -> "built-in" or "override <path>".
    origins: BTreeMap<String, String>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// The templates compiled into the binary (include_str! of every file), with any
    /// file in `override_dir` (same layout, e.g. override_dir/nl/notice.txt) taking the
    /// place of the built-in one. Every template is compiled AND test-rendered with a
    /// sample context here, so a broken override fails at startup with a clear error.
    ///
    /// Also fails when a file in `override_dir` has an unknown name, when the
    /// fixed text of a template contains one of the [`REVEALING_WORDS`], or when
    /// an HTML template refers to an external resource.
    pub fn load(override_dir: Option<&Path>, org: &OrgConfig) -> Result<Templates, TemplateError> {
        if let Some((var, word)) = revealing_org_setting(org) {
            return Err(TemplateError::RevealingSetting { var, word });
        }
        let mut sources: BTreeMap<String, (String, String)> = BUILTIN
            .iter()
            .map(|(name, source)| {
                (
                    (*name).to_owned(),
                    ((*source).to_owned(), BUILT_IN_ORIGIN.to_owned()),
                )
            })
            .collect();
        if let Some(dir) = override_dir {
            for (name, path, source) in read_overrides(dir)? {
                sources.insert(name, (source, format!("override {}", path.display())));
            }
        }

        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(minijinja::default_auto_escape_callback);
        env.set_formatter(readable_html_formatter);
        let mut origins = BTreeMap::new();
        for (name, (source, origin)) in sources {
            if let Err(e) = env.add_template_owned(name.clone(), source) {
                return Err(TemplateError::Syntax {
                    name,
                    origin,
                    message: error_message(&e),
                });
            }
            origins.insert(name, origin);
        }
        let templates = Templates {
            env,
            origins,
            org: org.clone(),
        };
        templates.self_test()?;
        Ok(templates)
    }

    /// Renders one mail. Fails with [`TemplateError::BadSubject`] if the
    /// subject is empty, has a line break or is too long (for instance because
    /// a school name contains a newline).
    pub fn render(
        &self,
        kind: Kind,
        locale: Locale,
        ctx: &MailContext,
    ) -> Result<Rendered, TemplateError> {
        let values = context_values(locale, ctx, &self.org);
        let subject_name = template_name(locale, kind, Part::Subject);
        let subject = self.render_part(&subject_name, &values)?;
        let subject = check_subject(&subject).map_err(|reason| TemplateError::BadSubject {
            origin: self.origin(&subject_name),
            name: subject_name,
            reason,
        })?;
        let text = self.render_part(&template_name(locale, kind, Part::Text), &values)?;
        let html = self.render_part(&template_name(locale, kind, Part::Html), &values)?;
        Ok(Rendered {
            subject,
            text,
            html,
        })
    }

    fn origin(&self, name: &str) -> String {
        self.origins
            .get(name)
            .cloned()
            .unwrap_or_else(|| BUILT_IN_ORIGIN.to_owned())
    }

    fn render_part(&self, name: &str, values: &Value) -> Result<String, TemplateError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|_| TemplateError::Missing {
                name: name.to_owned(),
            })?;
        template.render(values).map_err(|e| TemplateError::Render {
            name: name.to_owned(),
            origin: self.origin(name),
            message: error_message(&e),
        })
    }

    /// Renders every template with a neutral sample context and checks the
    /// output for revealing words and external resources.
    fn self_test(&self) -> Result<(), TemplateError> {
        let sample = sample_context();
        for locale in Locale::ALL {
            let values = context_values(locale, &sample, &self.org);
            for kind in Kind::ALL {
                self.render(kind, locale, &sample)?;
                for part in Part::ALL {
                    let name = template_name(locale, kind, part);
                    let output = self.render_part(&name, &values)?;
                    let lower = output.to_lowercase();
                    if let Some(word) = REVEALING_WORDS.iter().find(|w| lower.contains(*w)) {
                        return Err(TemplateError::Revealing {
                            origin: self.origin(&name),
                            name,
                            word,
                        });
                    }
                    if !kind.carries_url() {
                        if let Some(marker) = url_in(&output, sample.link) {
                            return Err(TemplateError::Url {
                                origin: self.origin(&name),
                                name,
                                marker,
                            });
                        }
                    }
                    if part == Part::Html {
                        let links = [sample.link, self.org.url.as_str()];
                        if let Some(marker) = external_resource(&output, &links) {
                            return Err(TemplateError::ExternalResource {
                                origin: self.origin(&name),
                                name,
                                marker,
                            });
                        }
                    }
                    if part != Part::Subject && !self.names_sender(&output, part) {
                        return Err(TemplateError::NoSender {
                            origin: self.origin(&name),
                            name,
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

impl Templates {
    /// Whether a rendered body names the organisation and its telephone number.
    fn names_sender(&self, output: &str, part: Part) -> bool {
        let shown = |value: &str| {
            let mut escaped = String::new();
            escape_html(&mut escaped, value);
            output.contains(if part == Part::Html { &escaped } else { value })
        };
        shown(&self.org.name) && shown(&self.org.phone)
    }
}

/// The first setting of the organisation that holds a revealing word. Spaces and
/// punctuation are ignored too, so that `veiligthuis.nl` is caught as well as
/// "Veilig Thuis".
fn revealing_org_setting(org: &OrgConfig) -> Option<(&'static str, &'static str)> {
    let squeeze = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let settings = [
        ("SCHOOLSIGNAL_ORG_NAME", &org.name),
        ("SCHOOLSIGNAL_ORG_PHONE", &org.phone),
        ("SCHOOLSIGNAL_ORG_EMAIL", &org.email),
        ("SCHOOLSIGNAL_ORG_URL", &org.url),
    ];
    settings.into_iter().find_map(|(var, value)| {
        let (lower, squeezed) = (value.to_lowercase(), squeeze(value));
        REVEALING_WORDS
            .iter()
            .find(|w| lower.contains(*w) || squeezed.contains(&squeeze(w)))
            .map(|word| (var, *word))
    })
}

/// A neutral context used to test-render templates at startup. It contains
/// none of the [`REVEALING_WORDS`], so any hit comes from the template text.
fn sample_context() -> MailContext<'static> {
    MailContext {
        school_name: "Voorbeeldschool",
        recipient_name: "Sam Voorbeeld",
        link: "https://portal.example.invalid/n/SAMPLE-token_0123456789",
        open_by: Utc
            .with_ymd_and_hms(2026, 11, 30, 7, 30, 0)
            .single()
            .unwrap_or_default(),
        valid_minutes: 15,
    }
}

/// The template variables: `school_name`, `recipient_name`, `link`,
/// `open_by` (already formatted for the locale), `valid_minutes`, and the sender's
/// `org_name`, `org_phone`, `org_email` and `org_url`.
fn context_values(locale: Locale, ctx: &MailContext, org: &OrgConfig) -> Value {
    minijinja::context! {
        school_name => ctx.school_name,
        recipient_name => ctx.recipient_name,
        link => ctx.link,
        open_by => format_open_by(ctx.open_by, locale),
        valid_minutes => ctx.valid_minutes,
        org_name => &org.name,
        org_phone => &org.phone,
        org_email => &org.email,
        org_url => &org.url,
    }
}

/// Trims the subject and checks it is usable as a single header line.
fn check_subject(raw: &str) -> Result<String, &'static str> {
    let subject = raw.trim();
    if subject.is_empty() {
        return Err("it is empty");
    }
    if subject.contains(['\r', '\n']) {
        return Err("it contains a line break");
    }
    if subject.chars().any(char::is_control) {
        return Err("it contains a control character");
    }
    if subject.chars().count() > MAX_SUBJECT_CHARS {
        return Err("it is longer than 200 characters");
    }
    Ok(subject.to_owned())
}

/// Returns the first marker of an external resource in `html`, ignoring the
/// occurrences of the links the mail may carry (the sample link, the
/// organisation's site).
fn external_resource(html: &str, links: &[&str]) -> Option<&'static str> {
    let lower = links
        .iter()
        .fold(html.to_string(), |html, link| html.replace(link, ""))
        .to_lowercase();
    EXTERNAL_RESOURCE_MARKERS
        .iter()
        .copied()
        .find(|m| lower.contains(m))
}

/// What shows a URL in a mail that must carry none: the (sample) link itself, a
/// scheme, or a host. Lowercased, so `HTTPS:` is found too.
const URL_MARKERS: &[&str] = &["http", "://", "www.", "href", "mailto:"];

/// The first sign of a URL in `output`, with the link the mail was given counted
/// as one.
fn url_in(output: &str, link: &str) -> Option<&'static str> {
    if output.contains(link) {
        return Some("the link");
    }
    let lower = output.to_lowercase();
    URL_MARKERS.iter().copied().find(|m| lower.contains(m))
}

/// Like minijinja's default formatter, but HTML escaping leaves `/` alone so
/// links stay readable (`https://…`, not `https:&#x2f;&#x2f;…`); `&`, `<`,
/// `>`, `"` and `'` are still escaped, which is all HTML needs. The portal's
/// pages use it too.
pub fn readable_html_formatter(
    out: &mut Output,
    state: &State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    if state.auto_escape() == AutoEscape::Html && !value.is_safe() {
        let mut escaped = String::new();
        match value.as_str() {
            Some(s) => escape_html(&mut escaped, s),
            None => escape_html(&mut escaped, &value.to_string()),
        }
        out.write_str(&escaped).map_err(minijinja::Error::from)
    } else {
        minijinja::escape_formatter(out, state, value)
    }
}

fn escape_html(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
}

/// minijinja's message plus the chain of causes (e.g. "undefined value" with
/// the template name and line).
fn error_message(e: &minijinja::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let _ = write!(message, ": {cause}");
        source = cause.source();
    }
    message
}

/// Reads `dir/<locale>/<kind>.<part>`; anything else in `dir` is an error.
/// Returns (template name, path, source), sorted by path.
fn read_overrides(dir: &Path) -> Result<Vec<(String, PathBuf, String)>, TemplateError> {
    let mut found = Vec::new();
    for locale_dir in sorted_entries(dir)? {
        let locale = locale_dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| Locale::ALL.into_iter().find(|l| l.as_str() == n));
        let Some(locale) = locale.filter(|_| locale_dir.is_dir()) else {
            return Err(TemplateError::UnknownOverride { path: locale_dir });
        };
        for path in sorted_entries(&locale_dir)? {
            let kind_part = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(Part::split_file_name);
            let Some((kind, part)) = kind_part.filter(|_| path.is_file()) else {
                return Err(TemplateError::UnknownOverride { path });
            };
            let source = std::fs::read_to_string(&path).map_err(|e| TemplateError::Io {
                path: path.clone(),
                message: e.to_string(),
            })?;
            found.push((template_name(locale, kind, part), path, source));
        }
    }
    Ok(found)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, TemplateError> {
    let io_error = |e: std::io::Error| TemplateError::Io {
        path: dir.to_path_buf(),
        message: e.to_string(),
    };
    let mut paths = std::fs::read_dir(dir)
        .map_err(io_error)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_error)?;
    paths.sort();
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    const LINK: &str = "https://portal.example.nl/n/AbC123-xyz_789";

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ctx(school_name: &str) -> MailContext<'_> {
        MailContext {
            school_name,
            recipient_name: "Jamie de Vries",
            link: LINK,
            open_by: utc("2026-11-30T07:30:00Z"),
            valid_minutes: 15,
        }
    }

    fn org() -> OrgConfig {
        OrgConfig {
            name: "Gemeente Utrecht".into(),
            phone: "14 030".into(),
            email: "schoolsignaal@utrecht.nl".into(),
            url: "https://www.utrecht.nl".into(),
            security_contact: "mailto:security@utrecht.nl".into(),
        }
    }

    fn write(dir: &Path, rel: &str, content: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    #[test]
    fn builtin_set_is_exactly_the_36_known_names() {
        let builtin: BTreeSet<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        let expected: BTreeSet<String> = Locale::ALL
            .into_iter()
            .flat_map(|l| {
                Kind::ALL
                    .into_iter()
                    .flat_map(move |k| Part::ALL.into_iter().map(move |p| template_name(l, k, p)))
            })
            .collect();
        assert_eq!(BUILTIN.len(), 36);
        assert_eq!(
            builtin,
            expected.iter().map(String::as_str).collect::<BTreeSet<_>>()
        );
    }

    #[test]
    fn every_kind_and_locale_renders() {
        let t = Templates::load(None, &org()).unwrap();
        for locale in Locale::ALL {
            for kind in Kind::ALL {
                let r = t.render(kind, locale, &ctx("De Regenboog")).unwrap();
                assert!(!r.subject.is_empty());
                assert!(!r.subject.contains(['\n', '\r']), "{kind:?} {locale:?}");
                assert_eq!(r.subject, r.subject.trim());
                if kind.carries_url() {
                    assert!(r.text.contains(LINK), "text {kind:?} {locale:?}");
                    assert!(r.html.contains(LINK), "html {kind:?} {locale:?}");
                } else {
                    for out in [&r.subject, &r.text, &r.html] {
                        assert!(!out.contains(LINK), "{kind:?} {locale:?}");
                        assert!(!out.to_lowercase().contains("http"), "{kind:?}");
                    }
                }
                assert!(r
                    .html
                    .contains(&format!("<html lang=\"{}\"", locale.as_str())));
                assert!(!r.text.contains("{{") && !r.html.contains("{{"));
                assert!(r.text.contains("Jamie de Vries"));
            }
        }
    }

    #[test]
    fn notice_shows_open_by_and_signin_shows_validity() {
        let t = Templates::load(None, &org()).unwrap();
        let nl = t.render(Kind::Notice, Locale::Nl, &ctx("X")).unwrap();
        assert!(nl.text.contains("maandag 30 november 2026 om 08:30"));
        assert!(nl.html.contains("maandag 30 november 2026 om 08:30"));
        let en = t.render(Kind::Notice, Locale::En, &ctx("X")).unwrap();
        assert!(en.text.contains("Monday 30 November 2026 at 08:30"));

        let sign_in = t.render(Kind::SignIn, Locale::Nl, &ctx("X")).unwrap();
        assert!(sign_in.text.contains("15 minuten geldig"));
        let one = MailContext {
            valid_minutes: 1,
            ..ctx("X")
        };
        let sign_in = t.render(Kind::SignIn, Locale::En, &one).unwrap();
        assert!(sign_in.text.contains("valid for 1 minute and"));
    }

    #[test]
    fn empty_recipient_name_gets_a_generic_greeting() {
        let t = Templates::load(None, &org()).unwrap();
        let c = MailContext {
            recipient_name: "",
            ..ctx("X")
        };
        let nl = t.render(Kind::Notice, Locale::Nl, &c).unwrap();
        assert!(nl.text.starts_with("Beste collega,"));
        let en = t.render(Kind::Notice, Locale::En, &c).unwrap();
        assert!(en.text.starts_with("Dear colleague,"));
    }

    #[test]
    fn html_escapes_school_name_and_text_does_not() {
        let t = Templates::load(None, &org()).unwrap();
        let raw = r#"<b>De "Regenboog" & Co</b>"#;
        let escaped = "&lt;b&gt;De &quot;Regenboog&quot; &amp; Co&lt;/b&gt;";
        // The sign-in mail does not name the school; check it via the recipient.
        let school = MailContext {
            recipient_name: raw,
            ..ctx(raw)
        };
        for locale in Locale::ALL {
            for kind in Kind::ALL {
                let r = t.render(kind, locale, &school).unwrap();
                if matches!(kind, Kind::Notice | Kind::Reminder | Kind::Withdrawal) {
                    assert!(r.subject.contains(raw), "{kind:?} {locale:?}");
                }
                assert!(r.text.contains(raw), "{kind:?} {locale:?}");
                assert!(r.html.contains(escaped), "{kind:?} {locale:?}");
                assert!(!r.html.contains("<b>"), "{kind:?} {locale:?}");
                assert!(!r.html.contains(r#""Regenboog""#), "{kind:?} {locale:?}");
            }
        }
    }

    #[test]
    fn no_rendered_output_contains_a_revealing_word() {
        let t = Templates::load(None, &org()).unwrap();
        for locale in Locale::ALL {
            for kind in Kind::ALL {
                let r = t.render(kind, locale, &ctx("De Regenboog")).unwrap();
                for (part, out) in [
                    ("subject", &r.subject),
                    ("text", &r.text),
                    ("html", &r.html),
                ] {
                    let lower = out.to_lowercase();
                    for word in REVEALING_WORDS {
                        assert!(
                            !lower.contains(word),
                            "{locale:?}/{kind:?} {part} contains {word:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn revealing_words_are_lowercase_and_sample_context_is_clean() {
        for word in REVEALING_WORDS {
            assert_eq!(*word, word.to_lowercase());
        }
        let s = sample_context();
        let all = format!("{} {} {}", s.school_name, s.recipient_name, s.link).to_lowercase();
        for word in REVEALING_WORDS {
            assert!(!all.contains(word), "{word}");
        }
    }

    #[test]
    fn html_has_no_external_resources() {
        let t = Templates::load(None, &org()).unwrap();
        for locale in Locale::ALL {
            for kind in Kind::ALL {
                let r = t.render(kind, locale, &ctx("De Regenboog")).unwrap();
                assert_eq!(
                    external_resource(&r.html, &[LINK, &org().url]),
                    None,
                    "{kind:?} {locale:?}"
                );
                assert!(!r.html.to_lowercase().contains("<img"));
                assert!(!r.html.to_lowercase().contains("<style"));
            }
        }
    }

    #[test]
    fn subject_with_newline_from_data_is_rejected() {
        let t = Templates::load(None, &org()).unwrap();
        let err = t
            .render(Kind::Notice, Locale::Nl, &ctx("School\nBcc: x@example.org"))
            .unwrap_err();
        assert!(matches!(err, TemplateError::BadSubject { .. }), "{err}");
        assert!(err.to_string().contains("nl/notice.subject.txt"));
    }

    #[test]
    fn check_subject_rules() {
        assert_eq!(check_subject("  Hallo \n").unwrap(), "Hallo");
        assert!(check_subject("   \n").is_err());
        assert!(check_subject("a\nb").is_err());
        assert!(check_subject("a\rb").is_err());
        assert!(check_subject(&"x".repeat(200)).is_ok());
        assert!(check_subject(&"x".repeat(201)).is_err());
    }

    #[test]
    fn override_replaces_builtin() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "nl/notice.subject.txt",
            "Bericht klaar voor {{ school_name }}\n",
        );
        let t = Templates::load(Some(dir.path()), &org()).unwrap();
        let r = t
            .render(Kind::Notice, Locale::Nl, &ctx("De Regenboog"))
            .unwrap();
        assert_eq!(r.subject, "Bericht klaar voor De Regenboog");
        // Other templates are still the built-in ones.
        let en = t
            .render(Kind::Notice, Locale::En, &ctx("De Regenboog"))
            .unwrap();
        assert_eq!(en.subject, "Confidential message for De Regenboog");
    }

    #[test]
    fn override_html_is_still_escaped() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "en/notice.html",
            "<p>{{ school_name }} <a href=\"{{ link }}\">open</a> {{ org_name }}, {{ org_phone }}</p>",
        );
        let t = Templates::load(Some(dir.path()), &org()).unwrap();
        let r = t.render(Kind::Notice, Locale::En, &ctx("A & B")).unwrap();
        assert_eq!(
            r.html,
            format!("<p>A &amp; B <a href=\"{LINK}\">open</a> Gemeente Utrecht, 14 030</p>")
        );
    }

    #[test]
    fn every_email_names_the_sender_and_only_linking_ones_its_site() {
        let t = Templates::load(None, &org()).unwrap();
        for locale in Locale::ALL {
            for kind in Kind::ALL {
                let r = t.render(kind, locale, &ctx("De Regenboog")).unwrap();
                for body in [&r.text, &r.html] {
                    for shown in ["Gemeente Utrecht", "14 030", "schoolsignaal@utrecht.nl"] {
                        assert!(body.contains(shown), "{shown}: {kind:?} {locale:?}");
                    }
                    let site = body.contains("https://www.utrecht.nl");
                    assert_eq!(site, kind.carries_url(), "{kind:?} {locale:?}");
                }
            }
        }
    }

    #[test]
    fn an_override_without_the_sender_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "en/notice.txt",
            "Dear {{ recipient_name }},\n{{ link }}\n",
        );
        let err = Templates::load(Some(dir.path()), &org()).unwrap_err();
        assert!(matches!(err, TemplateError::NoSender { .. }), "{err}");
        assert!(err.to_string().contains("en/notice.txt"), "{err}");
    }

    /// The organisation is shown in every email, so the discretion rules cover it:
    /// "Veilig Thuis" would itself say what the message is about.
    #[test]
    fn a_revealing_organisation_is_refused() {
        let cases = [
            (
                "SCHOOLSIGNAL_ORG_NAME",
                OrgConfig {
                    name: "Veilig Thuis Utrecht".into(),
                    ..org()
                },
            ),
            (
                "SCHOOLSIGNAL_ORG_NAME",
                OrgConfig {
                    name: "Bureau Huiselijk Geweld".into(),
                    ..org()
                },
            ),
            (
                "SCHOOLSIGNAL_ORG_EMAIL",
                OrgConfig {
                    email: "info@veiligthuis.nl".into(),
                    ..org()
                },
            ),
            (
                "SCHOOLSIGNAL_ORG_URL",
                OrgConfig {
                    url: "https://www.veilig-thuis.nl".into(),
                    ..org()
                },
            ),
        ];
        for (var, org) in cases {
            let err = Templates::load(None, &org).unwrap_err();
            assert!(
                matches!(err, TemplateError::RevealingSetting { var: v, .. } if v == var),
                "{err}"
            );
            assert!(err.to_string().contains(var), "{err}");
        }
    }

    #[test]
    fn override_syntax_error_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "nl/notice.txt", "Beste {{ recipient_name ,\n");
        let err = Templates::load(Some(dir.path()), &org()).unwrap_err();
        assert!(matches!(err, TemplateError::Syntax { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("nl/notice.txt"), "{msg}");
        assert!(msg.contains("override"), "{msg}");
    }

    #[test]
    fn override_with_unknown_name_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "nl/notice.htm", "<p>hoi</p>");
        let err = Templates::load(Some(dir.path()), &org()).unwrap_err();
        assert!(
            matches!(err, TemplateError::UnknownOverride { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("notice.htm"));

        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "de/notice.txt", "Hallo");
        let err = Templates::load(Some(dir.path()), &org()).unwrap_err();
        assert!(
            matches!(err, TemplateError::UnknownOverride { .. }),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "notice.txt", "Hallo");
        let err = Templates::load(Some(dir.path()), &org()).unwrap_err();
        assert!(
            matches!(err, TemplateError::UnknownOverride { .. }),
            "{err}"
        );
    }

    #[test]
    fn override_with_undefined_variable_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "en/reminder.txt",
            "Dear {{ recipient_nmae }},\n{{ link }}\n",
        );
        let err = Templates::load(Some(dir.path()), &org()).unwrap_err();
        assert!(matches!(err, TemplateError::Render { .. }), "{err}");
        assert!(err.to_string().contains("en/reminder.txt"), "{err}");
    }

    #[test]
    fn override_with_revealing_word_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "nl/notice.subject.txt",
            "Melding huiselijk geweld voor {{ school_name }}",
        );
        let err = Templates::load(Some(dir.path()), &org()).unwrap_err();
        assert!(matches!(err, TemplateError::Revealing { .. }), "{err}");
        assert!(err.to_string().contains("nl/notice.subject.txt"));
    }

    #[test]
    fn override_with_tracking_pixel_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "nl/notice.html",
            "<p><a href=\"{{ link }}\">open</a><img src=\"https://t.example/p.gif\" alt=\"\"></p>",
        );
        let err = Templates::load(Some(dir.path()), &org()).unwrap_err();
        assert!(
            matches!(err, TemplateError::ExternalResource { .. }),
            "{err}"
        );
    }

    #[test]
    fn a_factor_notice_with_a_link_is_an_error() {
        for text in [
            "Beste {{ recipient_name }}, zie {{ link }}",
            "Beste {{ recipient_name }}, zie https://portal.example.nl/",
            "Beste {{ recipient_name }}, zie www.example.nl",
        ] {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), "nl/factor_enrolled.txt", text);
            let err = Templates::load(Some(dir.path()), &org()).unwrap_err();
            assert!(matches!(err, TemplateError::Url { .. }), "{err}");
            assert!(err.to_string().contains("nl/factor_enrolled.txt"));
        }
    }

    #[test]
    fn factor_notices_say_to_call_and_hold_no_url() {
        let t = Templates::load(None, &org()).unwrap();
        for (locale, call) in [(Locale::Nl, "Bel dan direct"), (Locale::En, "call the")] {
            for kind in [Kind::FactorEnrolled, Kind::FactorReset] {
                let r = t.render(kind, locale, &ctx("X")).unwrap();
                assert!(r.text.contains(call), "{kind:?} {locale:?}");
                assert!(r.text.contains("Jamie de Vries"));
                assert_eq!(url_in(&r.text, LINK), None);
                assert_eq!(url_in(&r.html, LINK), None);
            }
        }
    }

    #[test]
    fn override_with_bad_subject_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "en/signin.subject.txt", "Line one\nLine two\n");
        let err = Templates::load(Some(dir.path()), &org()).unwrap_err();
        assert!(matches!(err, TemplateError::BadSubject { .. }), "{err}");
    }

    #[test]
    fn missing_override_dir_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Templates::load(Some(&dir.path().join("nope")), &org()).unwrap_err();
        assert!(matches!(err, TemplateError::Io { .. }), "{err}");
    }

    #[test]
    fn kind_names() {
        let names: Vec<_> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "notice",
                "reminder",
                "withdrawal",
                "signin",
                "factor_enrolled",
                "factor_reset"
            ]
        );
    }
}

//! The portal's HTML, from templates compiled into the binary. Every value is
//! escaped; the only raw markup is the QR code's SVG, which the server makes. Every
//! page's footer names who runs the service ([`Site`]).

use super::i18n::{self, Locale};
use crate::config::OrgConfig;
use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use minijinja::{context, Environment};
use serde::Serialize;
use std::sync::OnceLock;

/// The templates, and the organisation every page names.
pub struct Pages {
    env: &'static Environment<'static>,
    site: minijinja::Value,
    security_contact: String,
}

/// Who runs the service, as the footer and the public pages show it.
#[derive(Debug, Clone, Serialize)]
pub struct Site {
    pub name: String,
    pub phone: String,
    /// `tel:` and the digits, so a phone can dial it.
    pub phone_uri: String,
    pub email: String,
    pub url: String,
    /// Days the child's data is kept after a notice is closed; 0: erased on closing.
    pub retention_days: u64,
    /// `security.txt`'s `Contact:`.
    pub security_contact: String,
}

impl Site {
    pub fn new(org: &OrgConfig, retention_days: u64) -> Self {
        // "+31 (0)30 …" is dialled without the (0).
        let dialled: String = org
            .phone
            .replace("(0)", "")
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        Site {
            name: org.name.clone(),
            phone: org.phone.clone(),
            phone_uri: format!("tel:{dialled}"),
            email: org.email.clone(),
            url: org.url.clone(),
            retention_days,
            security_contact: org.security_contact.clone(),
        }
    }
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("message.html", include_str!("templates/message.html")),
    ("link.html", include_str!("templates/link.html")),
    ("enrol.html", include_str!("templates/enrol.html")),
    ("code.html", include_str!("templates/code.html")),
    ("list.html", include_str!("templates/list.html")),
    ("notice.html", include_str!("templates/notice.html")),
    ("login.html", include_str!("templates/login.html")),
    ("operator.html", include_str!("templates/operator.html")),
    ("confirm.html", include_str!("templates/confirm.html")),
    (
        "nl/accessibility.html",
        include_str!("templates/nl/accessibility.html"),
    ),
    (
        "en/accessibility.html",
        include_str!("templates/en/accessibility.html"),
    ),
    ("nl/privacy.html", include_str!("templates/nl/privacy.html")),
    ("en/privacy.html", include_str!("templates/en/privacy.html")),
];

/// The compiled templates. They are part of the binary and a unit test renders each,
/// so failing here is a programming error.
fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_formatter(crate::delivery::templates::readable_html_formatter);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .expect("portal templates compile");
        }
        env
    })
}

impl Pages {
    pub fn new(site: Site) -> Self {
        Pages {
            env: environment(),
            site: minijinja::Value::from_serialize(&site),
            security_contact: site.security_contact,
        }
    }

    /// `security.txt`'s `Contact:`.
    pub fn security_contact(&self) -> &str {
        &self.security_contact
    }

    /// Renders a page in `locale`: its strings come from that locale's catalogue
    /// (`t.key`), `<html lang>` says which it is, and `site` is who runs the service.
    pub fn render(&self, name: &str, locale: Locale, ctx: minijinja::Value) -> String {
        let ctx = context! {
            lang => locale.as_str(),
            t => catalogue_value(locale),
            site => self.site.clone(),
            ..ctx
        };
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .unwrap_or_else(|e| {
                tracing::error!(template = name, error = %e.kind(), "portal page failed to render");
                "<!doctype html><html lang=\"nl\"><title>Fout</title><p>Er ging iets mis.</p></html>".into()
            })
    }

    /// A page with one message. Signed in, it leads back to the list and offers to
    /// sign out (`csrf` is the session's); otherwise it offers a new link.
    pub fn message(&self, locale: Locale, title: &str, text: &str, csrf: Option<&str>) -> String {
        let ctx = context! { title, text, signed_in => csrf.is_some(), csrf => csrf.unwrap_or("") };
        self.render("message.html", locale, ctx)
    }
}

/// The catalogue as a template value, made once per locale (a clone is cheap).
fn catalogue_value(locale: Locale) -> minijinja::Value {
    static VALUES: OnceLock<[minijinja::Value; 2]> = OnceLock::new();
    let values = VALUES
        .get_or_init(|| Locale::ALL.map(|l| minijinja::Value::from_serialize(i18n::catalogue(l))));
    values[usize::from(locale == Locale::En)].clone()
}

pub fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::super::notice_pages::Draft;
    use super::*;

    pub(crate) fn pages() -> Pages {
        let org = OrgConfig {
            name: "Gemeente Utrecht".into(),
            phone: "+31 (0)30 286 00 00".into(),
            email: "schoolsignaal@utrecht.nl".into(),
            url: "https://www.utrecht.nl".into(),
            security_contact: "mailto:security@utrecht.nl".into(),
        };
        Pages::new(Site::new(&org, 30))
    }

    #[test]
    fn every_page_renders() {
        let pages = pages();
        for locale in Locale::ALL {
            for (name, _) in TEMPLATES.iter().filter(|(n, _)| *n != "base.html") {
                let ctx = context! {
                    title => "t", text => "x", token => "ab", csrf => "c", signed_in => true,
                    qr => "<svg></svg>", secret => "S", error => "e", groups => Vec::<()>::new(),
                    id => "n", withdrawn => false, child_name => "c", date_of_birth => "d",
                    group => "g", visit_date => "v", due => "d", school => "s", status => "o",
                    acknowledged => (), closed => false, notes => Vec::<()>::new(),
                    sent => true, signals => Vec::<()>::new(), categories => [("a", "b")], outcomes => [("a", "b")],
                    lang => locale.as_str(), t => i18n::catalogue(locale),
                    from => "2026-11-02", to => "2026-11-29", bars => Vec::<()>::new(), line => "",
                    chart_w => 640.0, chart_h => 200.0, chart_left => 40.0, school_rows => Vec::<()>::new(),
                    schools_total => 0, csv => "/x", overdue => Vec::<()>::new(), overdue_total => 0,
                    failing => Vec::<()>::new(), failing_total => 0, waiting => Vec::<()>::new(),
                    waiting_total => 0, wide => true, present => "Ja", otpauth => "otpauth://x",
                    draft => Draft::default(), intro => "i", facts => [("a", "b")],
                    warning => context! { title => "w", lines => ["l"] }, fields => [("a", "b")],
                    action => "/a", confirm_label => "c",
                };
                let ctx = context! { site => pages.site.clone(), ..ctx };
                let html = pages.env.get_template(name).unwrap().render(ctx);
                assert!(html.is_ok(), "{name}: {html:?}");
                let html = html.unwrap();
                assert!(html.contains("Gemeente Utrecht"), "{name}: the footer");
                assert!(
                    html.contains("href=\"tel:+31302860000\""),
                    "{name}: the number to dial"
                );
                assert!(
                    html.contains(&format!("<html lang=\"{}\">", locale.as_str())),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn values_are_escaped() {
        let page = pages().message(Locale::Nl, "<script>x</script>", "a & b", None);
        assert!(page.contains("&lt;script&gt;x&lt;"), "{page}");
        assert!(!page.contains("<script>"));
        assert!(page.contains("lang=\"nl\""));
    }
}

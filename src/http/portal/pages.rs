//! The portal's HTML, from templates compiled into the binary. Every value is
//! escaped; the only raw markup is the QR code's SVG, which the server makes.

use super::i18n::{self, Locale};
use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use minijinja::{context, Environment};
use std::sync::OnceLock;

pub struct Pages {
    env: Environment<'static>,
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
];

impl Pages {
    /// The compiled templates. They are part of the binary and a unit test renders
    /// each, so failing here is a programming error.
    pub fn get() -> &'static Pages {
        static PAGES: OnceLock<Pages> = OnceLock::new();
        PAGES.get_or_init(|| {
            let mut env = Environment::new();
            env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
            for (name, source) in TEMPLATES {
                env.add_template(name, source)
                    .expect("portal templates compile");
            }
            Pages { env }
        })
    }

    /// Renders a page in `locale`: its strings come from that locale's catalogue
    /// (`t.key`), and `<html lang>` says which it is.
    pub fn render(&self, name: &str, locale: Locale, ctx: minijinja::Value) -> String {
        let ctx = context! { lang => locale.as_str(), t => catalogue_value(locale), ..ctx };
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .unwrap_or_else(|e| {
                tracing::error!(template = name, error = %e.kind(), "portal page failed to render");
                "<!doctype html><html lang=\"nl\"><title>Fout</title><p>Er ging iets mis.</p></html>".into()
            })
    }

    pub fn message(&self, locale: Locale, title: &str, text: &str) -> String {
        self.render(
            "message.html",
            locale,
            context! { title, text, signed_in => false },
        )
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
    use super::*;

    #[test]
    fn every_page_renders() {
        let pages = Pages::get();
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
                    waiting_total => 0, wide => true,
                };
                let html = pages.env.get_template(name).unwrap().render(ctx);
                assert!(html.is_ok(), "{name}: {html:?}");
                let html = html.unwrap();
                assert!(
                    html.contains(&format!("<html lang=\"{}\">", locale.as_str())),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn values_are_escaped() {
        let page = Pages::get().message(Locale::Nl, "<script>x</script>", "a & b");
        assert!(page.contains("&lt;script&gt;x&lt;"), "{page}");
        assert!(!page.contains("<script>"));
        assert!(page.contains("lang=\"nl\""));
    }
}

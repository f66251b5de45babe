//! The confirmation pages before the two steps that cannot be undone: a signal to
//! Veilig Thuis, and closing a notice. Each shows in full what will happen, carries
//! the form's values as hidden fields, and offers to go back without changing
//! anything. No JavaScript: the confirmation is a second POST.

use super::i18n::{self, Locale};
use super::notice_pages::{child_name, Draft};
use super::Portal;
use crate::notices::store::{self, CloseOutcome, NoticeView, SignalCategory, Urgency};
use minijinja::{context, Value};

/// The confirmation page for `draft`, or None when a field is not filled in right.
pub fn page(portal: &Portal, notice: &NoticeView, csrf: &str, draft: &Draft) -> Option<String> {
    let locale = notice.locale();
    let ctx = match draft.form {
        "signal" => signal(notice, draft, locale)?,
        "close" => close(notice, draft, locale, portal.erase_on_close)?,
        _ => return None,
    };
    let ctx = context! { csrf, signed_in => true, ..ctx };
    Some(portal.pages.render("confirm.html", locale, ctx))
}

/// What a signal will say, and to whom; when urgent, what to do now besides.
fn signal(notice: &NoticeView, draft: &Draft, locale: Locale) -> Option<Value> {
    let category: SignalCategory = draft.category.parse().ok()?;
    let urgency: Urgency = draft.urgency.parse().ok()?;
    let description = store::free_text(&draft.description)?;
    let t = |key: &str| i18n::t(locale, key);
    let urgency_label = t(&format!("urgency_{}", urgency.as_str()));
    let facts = [
        (t("confirm_to"), "Veilig Thuis".to_string()),
        (t("pupil"), child_name(notice, locale)),
        (
            t("category_label"),
            t(&format!("category_{category}")).into(),
        ),
        (t("urgency_label"), urgency_label.into()),
        (t("description"), description.clone()),
    ];
    let warning = (urgency == Urgency::Urgent).then(|| {
        context! { title => t("urgent_title"), lines => [t("urgent_call"), t("urgent_112")] }
    });
    let fields = [
        ("category", category.as_str().to_string()),
        ("urgency", urgency.as_str().to_string()),
        ("description", description),
    ];
    Some(context! {
        title => t("title_confirm_signal"),
        intro => t("confirm_signal_intro"),
        facts, warning, fields,
        action => format!("/notices/{}/signals", notice.id),
        confirm_label => t("signal_button"),
    })
}

/// What closing records; with nothing kept after closing, that it erases the data.
fn close(notice: &NoticeView, draft: &Draft, locale: Locale, erases: bool) -> Option<Value> {
    let outcome: CloseOutcome = draft.outcome.parse().ok()?;
    let t = |key: &str| i18n::t(locale, key);
    let facts = [
        (t("pupil"), child_name(notice, locale)),
        (
            t("outcome_label"),
            t(&format!("outcome_{}", outcome.as_str())).into(),
        ),
    ];
    let warning =
        erases.then(|| context! { title => t("erase_title"), lines => [t("erase_on_close")] });
    Some(context! {
        title => t("title_confirm_close"),
        intro => t("confirm_close_intro"),
        facts, warning,
        fields => [("outcome", outcome.as_str())],
        action => format!("/notices/{}/close", notice.id),
        confirm_label => t("close_confirm_button"),
    })
}

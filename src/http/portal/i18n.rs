//! The portal's words in Dutch and English. One template set reads them from the
//! catalogue of the page's locale: that of the school the link or notice is for, or
//! for a signed-in session that of the school its link was for; before any school is
//! known (`/login`, an unknown link), the browser's `Accept-Language` (English only
//! when preferred over Dutch), else Dutch. The schools' locales are read by
//! [`crate::access::locales`].

pub use crate::locale::Locale;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Key, Dutch, English.
const CATALOGUE: &[(&str, &str, &str)] = &[
    // Layout.
    ("brand", "Schoolsignaal", "Schoolsignaal"),
    ("skip", "Naar de inhoud", "Skip to content"),
    ("logout", "Uitloggen", "Sign out"),
    ("footer_by", "Schoolsignaal wordt beheerd door", "Schoolsignaal is run by"),
    (
        "footer_questions",
        "Vragen, of twijfelt u of een bericht echt is? Neem contact op:",
        "Questions, or unsure whether a message is genuine? Contact us:",
    ),
    ("accessibility_link", "Toegankelijkheid", "Accessibility"),
    ("privacy_link", "Privacyverklaring", "Privacy statement"),
    ("security_link", "Beveiligingsprobleem melden", "Report a security problem"),
    ("title_accessibility", "Toegankelijkheidsverklaring", "Accessibility statement"),
    ("title_privacy", "Privacyverklaring", "Privacy statement"),
    // The link.
    ("title_link", "Vertrouwelijk bericht", "Confidential message"),
    (
        "link_intro",
        "Er staat een vertrouwelijk bericht voor uw school klaar. Open het hieronder. U logt daarna in met de code uit uw authenticator-app.",
        "A confidential message for your school is waiting. Open it below. You then sign in with the code from your authenticator app.",
    ),
    ("open_button", "Bericht openen", "Open message"),
    // The second factor.
    ("title_code", "Inloggen", "Sign in"),
    (
        "code_intro",
        "Voer de code uit uw authenticator-app in.",
        "Enter the code from your authenticator app.",
    ),
    ("code_label", "Code (6 cijfers)", "Code (6 digits)"),
    ("code_button", "Inloggen", "Sign in"),
    ("title_enrol", "Tweede stap instellen", "Set up the second step"),
    (
        "enrol_intro",
        "Stel eenmalig een tweede stap in. Scan de QR-code met een authenticator-app (bijvoorbeeld Microsoft Authenticator of Google Authenticator), of voer de sleutel met de hand in.",
        "Set up a second step, once. Scan the QR code with an authenticator app (for example Microsoft Authenticator or Google Authenticator), or type in the key by hand.",
    ),
    (
        "enrol_on_phone",
        "Leest u dit op de telefoon waarop uw authenticator-app staat? Tik dan op de knop: de app neemt de sleutel over. Op een computer scant u de QR-code met uw telefoon.",
        "Reading this on the phone that has your authenticator app? Tap the button: the app takes the key over. On a computer, scan the QR code with your phone.",
    ),
    ("open_in_app", "Openen in authenticator-app", "Open in authenticator app"),
    ("qr_caption", "QR-code voor uw authenticator-app", "QR code for your authenticator app"),
    ("secret_label", "Sleutel", "Key"),
    ("enrol_code_label", "Code uit de app (6 cijfers)", "Code from the app (6 digits)"),
    ("enrol_button", "Bevestigen", "Confirm"),
    (
        "wrong_code",
        "Deze code klopt niet. Probeer het opnieuw met de code die nu in de app staat.",
        "This code is not right. Try again with the code the app shows now.",
    ),
    // A new link.
    ("title_login", "Nieuwe link aanvragen", "Request a new link"),
    (
        "login_intro",
        "Werkt uw link niet meer, of bent u hem kwijt? Vul het e-mailadres in waarop u berichten van ons ontvangt. U krijgt dan een nieuwe link.",
        "Does your link no longer work, or have you lost it? Enter the email address at which you receive our messages. You will get a new link.",
    ),
    (
        "login_sent",
        "Als dit adres bij ons bekend is, ontvangt u binnen een paar minuten een e-mail met een nieuwe link. De link werkt 15 minuten en één keer.",
        "If we know this address, you will receive an email with a new link within a few minutes. The link works for 15 minutes, once.",
    ),
    ("email_label", "E-mailadres", "Email address"),
    ("login_button", "Stuur mij een nieuwe link", "Send me a new link"),
    ("request_link", "Nieuwe link aanvragen", "Request a new link"),
    ("title_logged_out", "Uitgelogd", "Signed out"),
    (
        "logged_out",
        "U bent uitgelogd. U kunt dit venster sluiten.",
        "You are signed out. You can close this window.",
    ),
    // The list.
    ("title_list", "Berichten", "Messages"),
    ("none", "Geen.", "None."),
    ("state_open", "Open", "Open"),
    ("state_acknowledged", "Ontvangst bevestigd", "Acknowledged"),
    ("state_closed", "Afgesloten", "Closed"),
    ("state_withdrawn", "Ingetrokken", "Withdrawn"),
    ("withdrawn_label", "Ingetrokken bericht", "Withdrawn message"),
    ("data_removed", "(gegevens verwijderd)", "(data removed)"),
    ("removed", "(verwijderd)", "(removed)"),
    // A notice.
    ("title_notice", "Vertrouwelijk bericht", "Confidential message"),
    ("title_withdrawn", "Bericht ingetrokken", "Message withdrawn"),
    (
        "withdrawn_text",
        "Dit bericht is ingetrokken. U hoeft niets te doen.",
        "This message was withdrawn. You need not do anything.",
    ),
    ("pupil", "Leerling", "Pupil"),
    ("date_of_birth", "Geboortedatum", "Date of birth"),
    ("group", "Groep of klas", "Group or class"),
    ("present_label", "Aanwezig bij het incident", "Present during the incident"),
    ("present_yes", "Ja", "Yes"),
    ("present_no", "Nee", "No"),
    ("present_unknown", "Niet bekend", "Not known"),
    ("visit_date", "Datum van het politiebezoek", "Date of the police visit"),
    ("due", "Graag actie vóór", "Please act before"),
    ("school", "School", "School"),
    ("status", "Status", "Status"),
    ("guidance_title", "Wat wordt er van u verwacht?", "What is expected of you?"),
    (
        "guidance_today",
        "Zorg dat de leerling vandaag een veilige, rustige schooldag heeft. Vertel niemand anders over dit bericht dan wie het moet weten, en vraag niet door over wat er thuis is gebeurd.",
        "Make sure the pupil has a safe, calm school day today. Tell no one about this message who does not need to know, and do not question the pupil about what happened at home.",
    ),
    (
        "guidance_meldcode",
        "Volg daarna de stappen van de Meldcode huiselijk geweld en kindermishandeling:",
        "Then follow the steps of the reporting code for domestic violence and child abuse (Meldcode):",
    ),
    (
        "meldcode_1",
        "Stap 1: In kaart brengen van signalen. Leg uw observaties feitelijk vast.",
        "Step 1: Map the signs. Record what you observe, as facts.",
    ),
    (
        "meldcode_2",
        "Stap 2: Collegiale consultatie en zo nodig raadplegen van Veilig Thuis.",
        "Step 2: Consult a colleague and, if needed, Veilig Thuis.",
    ),
    (
        "meldcode_3",
        "Stap 3: Gesprek met de ouder (en indien mogelijk het kind).",
        "Step 3: Talk with the parent (and, if possible, the child).",
    ),
    ("meldcode_4", "Stap 4: Wegen van het geweld.", "Step 4: Weigh the violence."),
    (
        "meldcode_5",
        "Stap 5: Beslissen: hulp organiseren en/of melden. Een signaal meldt u hieronder aan Veilig Thuis.",
        "Step 5: Decide: organise help and/or report. You report a signal to Veilig Thuis below.",
    ),
    (
        "acknowledge_intro",
        "Bevestig dat u dit bericht hebt gelezen en dat de leerling vandaag steun krijgt.",
        "Confirm that you have read this message and that the pupil will get support today.",
    ),
    (
        "acknowledge_button",
        "Ontvangen — we bieden vandaag steun",
        "Received — we will offer support today",
    ),
    ("acknowledged_on", "Ontvangst bevestigd op", "Acknowledged on"),
    ("notes_title", "Aantekeningen", "Notes"),
    ("no_notes", "Nog geen aantekeningen.", "No notes yet."),
    ("note_label", "Nieuwe aantekening", "New note"),
    ("note_button", "Aantekening opslaan", "Save note"),
    ("signal_title", "Signaal melden aan Veilig Thuis", "Report a signal to Veilig Thuis"),
    ("signal_sent", "Verzonden aan Veilig Thuis", "Sent to Veilig Thuis"),
    ("signal_waiting", "Wacht op verzending", "Waiting to be sent"),
    ("signal_refresh", "(ververs de pagina straks)", "(refresh the page in a moment)"),
    ("category_label", "Soort signaal", "Kind of signal"),
    ("urgency_label", "Urgentie", "Urgency"),
    ("urgency_routine", "Regulier", "Routine"),
    ("urgency_urgent", "Spoed", "Urgent"),
    (
        "description_label",
        "Beschrijving (hoogstens 4.000 tekens)",
        "Description (at most 4,000 characters)",
    ),
    ("choose", "Kies…", "Choose…"),
    (
        "signal_intro",
        "U ziet op de volgende pagina wat er wordt verstuurd, en verstuurt het pas daar.",
        "The next page shows what will be sent; only there do you send it.",
    ),
    (
        "urgent_hint",
        "Acuut gevaar? Bel 112. Spoed? Bel ook Veilig Thuis: 0800-2000 (gratis, dag en nacht).",
        "Acute danger? Call 112. Urgent? Also call Veilig Thuis: 0800-2000 (free, day and night).",
    ),
    ("signal_check_button", "Signaal controleren", "Check the signal"),
    ("signal_button", "Ja, verstuur aan Veilig Thuis", "Yes, send to Veilig Thuis"),
    ("back_button", "Terug, er verandert niets", "Back, nothing changes"),
    ("title_confirm_signal", "Signaal controleren", "Check the signal"),
    (
        "confirm_signal_intro",
        "Dit gaat naar Veilig Thuis. Klopt het? Eenmaal verstuurd kunt u het niet terughalen.",
        "This goes to Veilig Thuis. Is it right? Once sent, it cannot be recalled.",
    ),
    ("confirm_to", "Aan", "To"),
    ("description", "Beschrijving", "Description"),
    ("urgent_title", "Spoed: doe dit nu", "Urgent: do this now"),
    (
        "urgent_call",
        "Bel Veilig Thuis: 0800-2000 (gratis, dag en nacht bereikbaar). Dit signaal vervangt dat telefoontje niet.",
        "Call Veilig Thuis: 0800-2000 (free, day and night). This signal does not replace that call.",
    ),
    (
        "urgent_112",
        "Is er acuut gevaar voor de leerling of voor anderen? Bel 112.",
        "Is the pupil or anyone else in acute danger? Call 112.",
    ),
    ("close_check_button", "Afsluiten controleren", "Check before closing"),
    ("close_confirm_button", "Ja, sluit af", "Yes, close it"),
    ("title_confirm_close", "Bericht afsluiten?", "Close this message?"),
    (
        "confirm_close_intro",
        "Na afsluiten kunt u geen aantekeningen meer toevoegen. Afsluiten kan niet ongedaan worden gemaakt.",
        "Once it is closed, you can add no more notes. Closing cannot be undone.",
    ),
    ("erase_title", "Let op: de gegevens worden gewist", "Note: the data is erased"),
    (
        "erase_on_close",
        "Bij afsluiten worden de gegevens van de leerling, de aantekeningen en de tekst van signalen direct gewist.",
        "Closing erases the pupil's data, the notes and the text of signals at once.",
    ),
    (
        "form_incomplete",
        "Vul alle velden in en kies bij elke keuzelijst een waarde; een tekst mag hoogstens 4.000 tekens hebben.",
        "Fill in every field and choose a value in every list; a text may have at most 4,000 characters.",
    ),
    ("close_title", "Afsluiten", "Close"),
    ("outcome_label", "Uitkomst", "Outcome"),
    ("close_button", "Afsluiten", "Close"),
    ("closed_text", "Dit bericht is afgesloten.", "This message is closed."),
    ("all_notices", "Alle berichten van uw school", "All messages of your school"),
    // Signal categories (contract section 3) and close outcomes.
    ("category_behaviour_change", "Veranderd gedrag", "Changed behaviour"),
    ("category_injury", "Letsel", "Injury"),
    ("category_absence", "Afwezigheid", "Absence"),
    ("category_disclosure", "Het kind vertelt iets", "The child tells something"),
    (
        "category_hygiene_or_neglect",
        "Verzorging of verwaarlozing",
        "Hygiene or neglect",
    ),
    ("category_other", "Anders", "Other"),
    (
        "outcome_support_offered",
        "Steun geboden, geen zorgen meer",
        "Support offered, no more concerns",
    ),
    (
        "outcome_referred",
        "Doorverwezen (intern begeleider, wijkteam of Veilig Thuis)",
        "Referred (internal counsellor, neighbourhood team or Veilig Thuis)",
    ),
    (
        "outcome_ongoing",
        "Loopt via de reguliere zorgstructuur",
        "Continues through the regular care structure",
    ),
    ("outcome_other", "Anders", "Other"),
    // Errors.
    ("error_not_found_title", "Niet gevonden", "Not found"),
    (
        "error_not_found",
        "Deze pagina bestaat niet of is niet voor u bestemd.",
        "This page does not exist or is not meant for you.",
    ),
    ("error_forbidden_title", "Niet toegestaan", "Not allowed"),
    (
        "error_forbidden",
        "Dit formulier is verlopen of kwam niet van deze site. Ga terug, laad de pagina opnieuw en probeer het nog eens.",
        "This form has expired or did not come from this site. Go back, reload the page and try again.",
    ),
    ("error_bad_link_title", "Link werkt niet meer", "The link no longer works"),
    (
        "error_bad_link",
        "Deze link is al gebruikt of verlopen. Vraag hieronder een nieuwe link aan.",
        "This link was used already or has expired. Request a new link below.",
    ),
    ("error_sign_in_title", "Inloggen nodig", "Sign-in needed"),
    (
        "error_sign_in",
        "Uw sessie is verlopen. Vraag hieronder een nieuwe link aan.",
        "Your session has ended. Request a new link below.",
    ),
    ("error_locked_title", "Even geduld", "Please wait"),
    (
        "error_locked",
        "Te veel pogingen. Probeer het over een kwartier opnieuw.",
        "Too many attempts. Try again in a quarter of an hour.",
    ),
    ("error_invalid_title", "Niet volledig", "Not complete"),
    (
        "error_invalid",
        "Vul alle velden in; een tekst mag hoogstens 4.000 tekens hebben. Ga terug om het formulier aan te vullen.",
        "Fill in every field; a text may have at most 4,000 characters. Go back to complete the form.",
    ),
    ("error_withdrawn_title", "Bericht ingetrokken", "Message withdrawn"),
    (
        "error_withdrawn",
        "Dit bericht is ingetrokken. Er is niets opgeslagen en u hoeft niets te doen.",
        "This message was withdrawn. Nothing was saved, and you need not do anything.",
    ),
    ("error_db_title", "Tijdelijk niet beschikbaar", "Temporarily unavailable"),
    (
        "error_db",
        "Probeer het over een paar minuten opnieuw.",
        "Try again in a few minutes.",
    ),
    // The operator dashboard.
    ("title_operator", "Werking van de dienst", "How the service is doing"),
    ("op_intro", "Alleen aantallen, tijden en nummers: nooit een kind. Tijden in Nederlandse tijd.", "Counts, times and numbers only: never a child. Times are Dutch time."),
    ("op_range", "Periode", "Period"),
    ("op_from", "Van", "From"),
    ("op_to", "Tot en met", "To, inclusive"),
    ("op_show", "Tonen", "Show"),
    ("op_chart_title", "Berichten per week en het deel dat vóór de schooldag is bevestigd", "Notices per week and the share acknowledged before the school day"),
    ("op_chart_alt", "Staafdiagram van het aantal berichten per week, met een lijn voor het deel dat vóór de schooldag is bevestigd (0 tot 100%). De cijfers staan in de tabel hieronder.", "Bar chart of the notices per week, with a line for the share acknowledged before the school day (0 to 100%). The numbers are in the table below."),
    ("op_legend_notices", "Berichten (staven)", "Notices (bars)"),
    ("op_legend_share", "Deel op tijd bevestigd (lijn)", "Share acknowledged on time (line)"),
    ("op_week", "Week", "Week"),
    ("op_notices", "Berichten", "Notices"),
    ("op_emailed_on_time", "E-mail op tijd", "Emailed on time"),
    ("op_ack_on_time", "Op tijd bevestigd", "Acknowledged on time"),
    ("op_median", "Mediaan e-mail tot bevestiging (min)", "Median email to acknowledgement (min)"),
    ("op_reminders", "Herinneringen", "Reminders"),
    ("op_escalated_unack", "Geëscaleerd: niet bevestigd", "Escalated: unacknowledged"),
    ("op_escalated_undeliverable", "Geëscaleerd: onbestelbaar", "Escalated: undeliverable"),
    ("op_failed", "E-mails definitief mislukt", "Emails failed for good"),
    ("op_signals", "Signalen", "Signals"),
    ("op_withdrawals", "Ingetrokken", "Withdrawn"),
    ("op_school", "School", "School"),
    ("op_region", "Regio", "Region"),
    ("op_notice", "Bericht", "Notice"),
    ("op_due", "Uiterlijk", "Due"),
    ("op_late", "Te laat (min)", "Late (min)"),
    ("op_escalated", "Geëscaleerd", "Escalated"),
    ("op_kind", "Soort", "Kind"),
    ("op_recipient", "Aan", "To"),
    ("op_attempts", "Pogingen", "Attempts"),
    ("op_next_attempt", "Volgende poging", "Next attempt"),
    ("op_error", "Laatste fout", "Last error"),
    ("op_reported", "Gemeld", "Reported"),
    ("op_backlog_title", "Open: over tijd en niet bevestigd", "Open: past due and not acknowledged"),
    ("op_failing_title", "E-mails die nu mislukken", "Emails failing now"),
    ("op_waiting_title", "Signalen die op de broker wachten", "Signals waiting for the broker"),
    ("op_schools_title", "Per school", "Per school"),
    ("op_schools_order", "De scholen met het kleinste deel op tijd bevestigd eerst.", "Schools with the smallest share acknowledged on time first."),
    ("op_download", "Rapport downloaden (CSV)", "Download the report (CSV)"),
    ("op_total", "Totaal", "Total"),
    ("op_shown_of", "getoond van", "shown of"),
    ("op_yes", "ja", "yes"),
    ("op_no", "nee", "no"),
];

/// The catalogue of `locale`, as the templates read it (`t.key`).
pub fn catalogue(locale: Locale) -> &'static BTreeMap<&'static str, &'static str> {
    static MAPS: OnceLock<[BTreeMap<&'static str, &'static str>; 2]> = OnceLock::new();
    let maps = MAPS.get_or_init(|| {
        let pick = |en: bool| {
            CATALOGUE
                .iter()
                .map(|(k, nl, e)| (*k, if en { *e } else { *nl }))
                .collect()
        };
        [pick(false), pick(true)]
    });
    &maps[usize::from(locale == Locale::En)]
}

/// One string. A key missing from the catalogue is a programming error that the
/// unit tests catch; it shows as nothing rather than failing the page.
pub fn t(locale: Locale, key: &str) -> &'static str {
    catalogue(locale).get(key).copied().unwrap_or("")
}

/// English only when the browser prefers it over Dutch; Dutch otherwise.
pub fn from_accept_language(header: Option<&str>) -> Locale {
    let Some(header) = header else {
        return Locale::Nl;
    };
    // (quality, position) of the best entry for each language.
    let mut best: [Option<(u16, usize)>; 2] = [None, None];
    for (position, entry) in header.split(',').enumerate().take(32) {
        let mut parts = entry.split(';');
        let tag = parts.next().unwrap_or("").trim();
        let Some(locale) = Locale::parse(tag) else {
            continue;
        };
        let quality = match parts.find_map(|p| p.trim().strip_prefix("q=")) {
            None => 1.0,
            Some(q) => q.trim().parse::<f32>().unwrap_or(0.0),
        };
        if !(quality > 0.0 && quality <= 1.0) {
            continue;
        }
        let quality = (quality * 1000.0).round() as u16;
        let slot = &mut best[usize::from(locale == Locale::En)];
        if slot.is_none_or(|(q, _)| quality > q) {
            *slot = Some((quality, position));
        }
    }
    match best {
        [None, Some(_)] => Locale::En,
        [Some((nl_q, nl_at)), Some((en_q, en_at))]
            if en_q > nl_q || (en_q == nl_q && en_at < nl_at) =>
        {
            Locale::En
        }
        _ => Locale::Nl,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_once_in_both_languages() {
        let mut keys: Vec<&str> = CATALOGUE.iter().map(|(k, _, _)| *k).collect();
        keys.sort();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key twice");
        for (key, nl, en) in CATALOGUE {
            assert!(!nl.is_empty() && !en.is_empty(), "{key}");
        }
        assert_eq!(t(Locale::En, "open_button"), "Open message");
        assert_eq!(t(Locale::Nl, "open_button"), "Bericht openen");
    }

    #[test]
    fn english_only_when_preferred_over_dutch() {
        let cases = [
            (None, Locale::Nl),
            (Some(""), Locale::Nl),
            (Some("en"), Locale::En),
            (Some("en-GB,en;q=0.9"), Locale::En),
            (Some("nl-NL,nl;q=0.9,en;q=0.8"), Locale::Nl),
            (Some("en-US,en;q=0.9,nl;q=0.8"), Locale::En),
            (Some("de-DE,de;q=0.9"), Locale::Nl),
            (Some("de,en;q=0.5"), Locale::En),
            (Some("nl;q=0.4,en;q=0.5"), Locale::En),
            (Some("en;q=0,nl;q=0.1"), Locale::Nl),
            (Some("nl, en"), Locale::Nl),
            (Some("en, nl"), Locale::En),
            (Some("en;q=garbage"), Locale::Nl),
            (Some(";;;,,,q=1"), Locale::Nl),
        ];
        for (header, expected) in cases {
            assert_eq!(from_accept_language(header), expected, "{header:?}");
        }
    }
}

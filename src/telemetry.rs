//! Logs and metrics. Logs carry ids, reason codes and school codes, never names,
//! BSNs, dates of birth or free text.

use crate::config::LogFormat;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use tracing_subscriber::{fmt::MakeWriter, EnvFilter};

/// Installs the global subscriber, writing to `writer`. JSON in production.
pub fn init<W>(format: LogFormat, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let wanted = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_new(capped_filter(&wanted))
        .unwrap_or_else(|_| EnvFilter::new(capped_filter("info")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Libraries whose debug and trace output holds whole messages (AMQP frames with
/// names and BSNs, SMTP data): whatever `RUST_LOG` asks, they log at `info` at most.
const BODY_LOGGING_CRATES: &[&str] = &["lapin", "amq_protocol", "pinky_swear", "lettre"];

/// `RUST_LOG` with any directive for [`BODY_LOGGING_CRATES`] replaced by a cap.
fn capped_filter(wanted: &str) -> String {
    let mut directives: Vec<String> = wanted
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .filter(|d| !BODY_LOGGING_CRATES.iter().any(|c| d.starts_with(c)))
        .map(str::to_string)
        .collect();
    directives.extend(BODY_LOGGING_CRATES.iter().map(|c| format!("{c}=info")));
    directives.join(",")
}

/// The service's Prometheus metrics, on a registry of its own.
pub struct Metrics {
    registry: Registry,
    pub events: IntCounterVec,
    pub rejected: IntCounterVec,
    pub decisions: IntCounterVec,
    pub commit_seconds: Histogram,
    pub outbox_depth: IntGauge,
    pub published: IntCounter,
    pub publish_failures: IntCounter,
    pub broker_up: IntGauge,
    pub deliveries: IntCounterVec,
    pub delivery_retries: IntCounter,
    /// 5xx replies about the SMTP session (authentication, TLS), by reply code.
    pub mail_session_errors: IntCounterVec,
    pub oldest_pending_delivery: IntGauge,
    pub event_to_email_seconds: Histogram,
    pub reminders: IntCounter,
    pub escalations: IntCounterVec,
    pub purged: IntCounter,
    /// Events posted with a test key (decided, then rolled back), by result: apart
    /// from the live counters, which they never move.
    pub test_events: IntCounterVec,
    pub test_decisions: IntCounterVec,
    /// Notices past their due time that no one acknowledged (and not withdrawn), as
    /// the last follow-up round counted them.
    pub overdue: IntGauge,
    /// What people did on the portal, by action ([`PORTAL_ACTIONS`]).
    pub portal: IntCounterVec,
    /// Main-listener requests by route pattern (`/notices/{id}`, never a real id)
    /// and status.
    pub http_requests: HistogramVec,
}

/// The portal's counted actions: a coordinator's or operator's sign-in, a refused
/// one (a bad link or a wrong code), an acknowledgement, a note, a signal, and a
/// lockout (of an account for wrong codes, or of a client for guessed links).
pub const PORTAL_ACTIONS: [&str; 6] = [
    "sign_in",
    "failed_sign_in",
    "acknowledgement",
    "note",
    "signal",
    "lockout",
];

/// What each metric means, by name: its `# HELP` line.
const HELP: &[(&str, &str)] = &[
    ("schoolsignal_events_total", "Events received, by result"),
    ("schoolsignal_events_rejected_total", "Events rejected, by reason code"),
    ("schoolsignal_decisions_total", "Child decisions, by outcome"),
    ("schoolsignal_intake_receipt_to_commit_seconds", "Time from receiving an event to committing its decisions"),
    ("schoolsignal_outbox_depth", "Outbound messages not yet confirmed by the broker"),
    ("schoolsignal_outbox_published_total", "Outbound messages confirmed by the broker"),
    ("schoolsignal_outbox_publish_failures_total", "Outbound messages the broker refused or did not confirm"),
    ("schoolsignal_broker_up", "1 while the intake consumer holds a broker connection, else 0; readiness leaves the broker out, so this is where an outage shows"),
    ("schoolsignal_deliveries_total", "Emails that reached a final state, by state"),
    ("schoolsignal_delivery_retries_total", "Email attempts that failed and will be tried again"),
    ("schoolsignal_mail_session_errors_total", "Sends refused for the session, not the email (authentication or TLS required or failed): a configuration fault; retried"),
    ("schoolsignal_oldest_pending_delivery_seconds", "Age of the oldest email not yet sent"),
    ("schoolsignal_event_to_email_seconds", "Time from receiving an event to the mail server accepting its notice email"),
    ("schoolsignal_reminders_total", "Notices whose reminder was queued"),
    ("schoolsignal_escalations_total", "Notices escalated, by level"),
    ("schoolsignal_notices_purged_total", "Notices whose personal data was erased"),
    ("schoolsignal_test_events_total", "Events posted with a test key (decided, then rolled back), by result"),
    ("schoolsignal_test_decisions_total", "Child decisions of events posted with a test key, by outcome"),
    ("schoolsignal_notices_overdue", "Notices past their due time (the start of the school day) that no one acknowledged, not withdrawn; counted each follow-up round"),
    ("schoolsignal_portal_actions_total", "Portal actions, by action: sign_in, failed_sign_in, acknowledgement, note, signal, lockout"),
    ("schoolsignal_http_request_duration_seconds", "HTTP requests by route pattern and status, from the request to the response head"),
    ("schoolsignal_build_info", "Always 1; the labels say which build runs"),
];

const HTTP_SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0,
];

const COMMIT_SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const EVENT_TO_EMAIL_SECONDS_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// Registers metrics on one registry. Names and help texts are fixed in this file, so
/// a failure is a programming error caught by the first test.
struct Register<'a>(&'a Registry);

impl Register<'_> {
    fn opts(name: &str) -> Opts {
        let help = HELP
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(name, |(_, h)| h);
        Opts::new(name, help)
    }

    fn add<M: prometheus::core::Collector + Clone + 'static>(&self, metric: M) -> M {
        self.0
            .register(Box::new(metric.clone()))
            .expect("valid, unique metric");
        metric
    }

    fn counter_vec(&self, name: &str, label: &str) -> IntCounterVec {
        self.add(IntCounterVec::new(Self::opts(name), &[label]).expect("valid metric"))
    }

    fn counter(&self, name: &str) -> IntCounter {
        self.add(IntCounter::with_opts(Self::opts(name)).expect("valid metric"))
    }

    fn gauge(&self, name: &str) -> IntGauge {
        self.add(IntGauge::with_opts(Self::opts(name)).expect("valid metric"))
    }

    fn histogram(&self, name: &str, buckets: Vec<f64>) -> Histogram {
        let opts = HistogramOpts::from(Self::opts(name)).buckets(buckets);
        self.add(Histogram::with_opts(opts).expect("valid metric"))
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let reg = Register(&r);
        let metrics = Self {
            events: reg.counter_vec("schoolsignal_events_total", "result"),
            rejected: reg.counter_vec("schoolsignal_events_rejected_total", "reason"),
            decisions: reg.counter_vec("schoolsignal_decisions_total", "outcome"),
            commit_seconds: reg.histogram(
                "schoolsignal_intake_receipt_to_commit_seconds",
                COMMIT_SECONDS_BUCKETS.to_vec(),
            ),
            outbox_depth: reg.gauge("schoolsignal_outbox_depth"),
            published: reg.counter("schoolsignal_outbox_published_total"),
            publish_failures: reg.counter("schoolsignal_outbox_publish_failures_total"),
            broker_up: reg.gauge("schoolsignal_broker_up"),
            deliveries: reg.counter_vec("schoolsignal_deliveries_total", "state"),
            delivery_retries: reg.counter("schoolsignal_delivery_retries_total"),
            mail_session_errors: reg.counter_vec("schoolsignal_mail_session_errors_total", "code"),
            oldest_pending_delivery: reg.gauge("schoolsignal_oldest_pending_delivery_seconds"),
            event_to_email_seconds: reg.histogram(
                "schoolsignal_event_to_email_seconds",
                EVENT_TO_EMAIL_SECONDS_BUCKETS.to_vec(),
            ),
            reminders: reg.counter("schoolsignal_reminders_total"),
            escalations: reg.counter_vec("schoolsignal_escalations_total", "level"),
            purged: reg.counter("schoolsignal_notices_purged_total"),
            test_events: reg.counter_vec("schoolsignal_test_events_total", "result"),
            test_decisions: reg.counter_vec("schoolsignal_test_decisions_total", "outcome"),
            overdue: reg.gauge("schoolsignal_notices_overdue"),
            portal: reg.counter_vec("schoolsignal_portal_actions_total", "action"),
            http_requests: reg.add(
                HistogramVec::new(
                    HistogramOpts::from(Register::opts(
                        "schoolsignal_http_request_duration_seconds",
                    ))
                    .buckets(HTTP_SECONDS_BUCKETS.to_vec()),
                    &["route", "status"],
                )
                .expect("valid metric"),
            ),
            registry: r,
        };
        for events in [&metrics.events, &metrics.test_events] {
            metrics.zero_series(events, ["accepted", "duplicate", "rejected"]);
        }
        metrics.zero_series(&metrics.portal, PORTAL_ACTIONS);
        metrics.register_build_and_process();
        metrics
    }

    /// `schoolsignal_build_info{version}` and the process's own metrics
    /// (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
    /// `process_open_fds`, …; Linux only, which is where the service runs).
    fn register_build_and_process(&self) {
        let opts = Register::opts("schoolsignal_build_info");
        let info = IntGaugeVec::new(opts, &["version"]).expect("valid metric");
        info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Register(&self.registry).add(info);
        #[cfg(target_os = "linux")]
        self.registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("one process collector");
    }

    /// Counts one portal action (one of [`PORTAL_ACTIONS`]).
    pub fn portal_action(&self, action: &str) {
        self.portal.with_label_values(&[action]).inc();
    }

    /// Creates the series of `labels` at zero, so dashboards see them before the
    /// first event. The wiring names the labels: they belong to the stages.
    pub fn zero_series<'a>(
        &self,
        metric: &IntCounterVec,
        labels: impl IntoIterator<Item = &'a str>,
    ) {
        for label in labels {
            metric.with_label_values(&[label]);
        }
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::capped_filter;

    #[test]
    fn message_logging_crates_are_capped_at_info() {
        let f = capped_filter("trace,lapin=trace,amq_protocol::frame=trace,schoolsignal=debug");
        assert!(
            !f.contains("=trace,lapin") && !f.contains("lapin=trace"),
            "{f}"
        );
        assert!(!f.contains("amq_protocol::frame=trace"), "{f}");
        assert!(f.starts_with("trace,schoolsignal=debug,"), "{f}");
        for c in ["lapin", "amq_protocol", "pinky_swear", "lettre"] {
            assert!(f.contains(&format!("{c}=info")), "{f}");
        }
    }
}

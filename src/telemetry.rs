//! Logs and metrics. Logs carry ids, reason codes and school codes, never names,
//! BSNs, dates of birth or free text.

use crate::config::LogFormat;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};
use tracing_subscriber::{fmt::MakeWriter, EnvFilter};

/// Installs the global subscriber, writing to `writer`. JSON in production.
pub fn init<W>(format: LogFormat, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
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
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let events = IntCounterVec::new(
            Opts::new("schoolsignal_events_total", "Events received, by result"),
            &["result"],
        )
        .expect("valid metric");
        let rejected = IntCounterVec::new(
            Opts::new(
                "schoolsignal_events_rejected_total",
                "Events rejected, by reason code",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let decisions = IntCounterVec::new(
            Opts::new(
                "schoolsignal_decisions_total",
                "Child decisions, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let commit_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "schoolsignal_intake_receipt_to_commit_seconds",
                "Time from receiving an event to committing its decisions",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("valid metric");
        let outbox_depth = IntGauge::new(
            "schoolsignal_outbox_depth",
            "Outbound messages not yet confirmed by the broker",
        )
        .expect("valid metric");
        let published = IntCounter::new(
            "schoolsignal_outbox_published_total",
            "Outbound messages confirmed by the broker",
        )
        .expect("valid metric");
        let publish_failures = IntCounter::new(
            "schoolsignal_outbox_publish_failures_total",
            "Outbound messages the broker refused or did not confirm",
        )
        .expect("valid metric");
        let broker_up = IntGauge::new(
            "schoolsignal_broker_up",
            "1 while the intake consumer is connected",
        )
        .expect("valid metric");
        for c in [&events, &rejected, &decisions] {
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
        }
        registry
            .register(Box::new(commit_seconds.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(outbox_depth.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(published.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(publish_failures.clone()))
            .expect("unique metric");
        registry
            .register(Box::new(broker_up.clone()))
            .expect("unique metric");
        // Zero series for every label, so dashboards see them before the first event.
        for r in crate::contract::Reason::ALL {
            rejected.with_label_values(&[r.as_str()]);
        }
        for o in crate::notices::Outcome::ALL {
            decisions.with_label_values(&[o.as_str()]);
        }
        for r in ["accepted", "duplicate", "rejected"] {
            events.with_label_values(&[r]);
        }
        Self {
            registry,
            events,
            rejected,
            decisions,
            commit_seconds,
            outbox_depth,
            published,
            publish_failures,
            broker_up,
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

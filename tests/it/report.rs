//! The timeliness report over three weeks and three schools, driven by
//! `SCHOOLSIGNAL_NOW`: events through the real API, emails through a real SMTP sink,
//! reminders and escalations by the real follow-up at later clocks, and the
//! coordinators' actions through the portal's own domain calls at set instants. The
//! report's numbers must be exactly the known ones, in all three formats, on both
//! backends, published or not, and again after the retention purge.

use crate::support::*;
use chrono::{DateTime, Duration as Minutes, NaiveDateTime, Utc};
use diesel::prelude::*;
use schoolsignal::db::schema::{deliveries, notices};
use schoolsignal::db::Pool;
use schoolsignal::notices::store::{self, Acted, CloseOutcome, NewSignal, SignalCategory, Urgency};
use smtp_sink::SmtpSink;
use std::collections::BTreeMap;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
pub const PUBLIC: &str = "https://portal.example";

pub const REGENBOOG: &str = "zorg@regenboog.example.nl";
pub const ANKER: &str = "zorg@anker.example.nl";
pub const WEGWIJZER: &str = "zorg@wegwijzer.example.nl";

/// The third school, in region zuid, and its one pupil in the scenario.
const WEGWIJZER_CSV: &str = "brin,name,holiday_region,locale,school_day_start,coordinator_name,coordinator_email,deputy_name,deputy_email,participating\n\
56EF02,CBS De Wegwijzer,zuid,nl,08:45,Coordinator Wegwijzer,zorg@wegwijzer.example.nl,Deputy Wegwijzer,adjunct@wegwijzer.example.nl,true\n";
const WEGWIJZER_PUPIL: &str =
    "bsn,school_brin,group,valid_from,valid_until,consent\n123456782,56EF02,groep 4,2026-08-01,,granted\n";

/// A child in the scenario's events.
pub struct Kid {
    pub bsn: &'static str,
    pub given: &'static str,
    pub family: &'static str,
    pub born: &'static str,
    /// The group the registry gives (empty when the child is in no registry row).
    pub group: &'static str,
}

/// 12AB00 (midden, 08:30, with a deputy).
const SANNE: Kid = Kid {
    bsn: "111222333",
    given: "Sanne",
    family: "de Vries",
    born: "2016-04-12",
    group: "groep 5",
};
const MILAN: Kid = Kid {
    bsn: "725763863",
    given: "Milan",
    family: "Bakker",
    born: "2014-06-30",
    group: "groep 7",
};
/// 34CD01 (noord, 08:15, no deputy).
const DAAN: Kid = Kid {
    bsn: "162275869",
    given: "Daan",
    family: "Jansen",
    born: "2019-03-03",
    group: "groep 2",
};
/// Enrolled at 12AB00, but the parents objected: `no_consent`.
const LOTTE: Kid = Kid {
    bsn: "192285142",
    given: "Lotte",
    family: "Smit",
    born: "2015-01-20",
    group: "groep 8",
};
/// In no registry: `no_registry_match`.
const FINN: Kid = Kid {
    bsn: "999999990",
    given: "Finn",
    family: "Mulder",
    born: "2016-08-08",
    group: "",
};
/// 56EF02 (zuid, 08:45, with a deputy).
const ILSE: Kid = Kid {
    bsn: "123456782",
    given: "Ilse",
    family: "Visser",
    born: "2017-09-15",
    group: "groep 4",
};

/// Every child of the scenario: what no operator page may show.
pub const KIDS: [&Kid; 6] = [&SANNE, &MILAN, &DAAN, &LOTTE, &FINN, &ILSE];

fn event(incident: &str, revision: i64, status: &str, visited: &str, kid: &Kid) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "schema": "police.home_visit.v1",
        "event_id": uuid::Uuid::new_v4().to_string(),
        "incident_id": incident,
        "revision": revision,
        "status": status,
        "visited_at": visited,
        "children": [{"bsn": kid.bsn, "given_name": kid.given, "family_name": kid.family,
                      "date_of_birth": kid.born}]
    }))
    .unwrap()
}

fn utc(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap().to_utc()
}

/// A notice as the report reads it.
#[derive(Debug, Clone, Queryable)]
pub struct Row {
    pub id: String,
    pub status: String,
    pub reminded_at: Option<NaiveDateTime>,
    pub escalated_at: Option<NaiveDateTime>,
    pub escalation_level: Option<String>,
    pub withdrawn_at: Option<NaiveDateTime>,
    pub given_name: Option<String>,
}

pub fn notice_of(pool: &Pool, incident: &str) -> Option<Row> {
    let mut conn = pool.get().unwrap();
    notices::table
        .filter(notices::incident_id.eq(incident))
        .select((
            notices::id,
            notices::status,
            notices::reminded_at,
            notices::escalated_at,
            notices::escalation_level,
            notices::withdrawn_at,
            notices::child_given_name,
        ))
        .first(&mut *conn)
        .optional()
        .unwrap()
}

/// When the notice's email (of `kind`) was accepted, for each one accepted.
fn sent(pool: &Pool, notice: &str, kind: &str) -> Vec<NaiveDateTime> {
    let mut conn = pool.get().unwrap();
    deliveries::table
        .filter(deliveries::notice_id.eq(notice))
        .filter(deliveries::kind.eq(kind))
        .filter(deliveries::state.eq("sent"))
        .select(deliveries::finished_at)
        .load::<Option<NaiveDateTime>>(&mut *conn)
        .unwrap()
        .into_iter()
        .flatten()
        .collect()
}

/// The scenario's database after three weeks of it, and what it needs to go on.
pub struct Scenario {
    pub db: TestDb,
    pub pool: Pool,
    pub prefix: String,
    pub broker: Broker,
    pub sink: SmtpSink,
    pub api_key: String,
    pub http: reqwest::Client,
    /// Notice ids by name: n1 … n6.
    pub notices: BTreeMap<&'static str, String>,
}

impl Scenario {
    async fn seeded(backend: Backend) -> Self {
        capture_logs();
        let db = TestDb::create(backend);
        let pool = db.pool();
        let api_key = seed(&pool);
        {
            use schoolsignal::registry::{enrollments, schools, KeyedHasher};
            let mut conn = pool.get().unwrap();
            let now = schoolsignal::db::ts(Utc::now());
            let simulated = schools::Simulated::Allowed;
            schools::import(&mut conn, WEGWIJZER_CSV.as_bytes(), now, simulated).unwrap();
            let hasher = KeyedHasher::new(BSN_KEY.as_bytes());
            let keys = dev_keyring();
            enrollments::import(&mut conn, (&hasher, &keys), WEGWIJZER_PUPIL.as_bytes()).unwrap();
        }
        let prefix = format!("t{}.", unique());
        let names = schoolsignal::config::AmqpNames::with_prefix(&prefix);
        let broker = Broker::connect(&amqp_url(), names).await;
        Scenario {
            db,
            pool,
            prefix,
            broker,
            sink: SmtpSink::start().await,
            api_key,
            http: reqwest::Client::new(),
            notices: BTreeMap::new(),
        }
    }

    /// The service with its clock at `now`, ready (its consumer connected); stop it
    /// before the next phase.
    pub async fn service_at(&self, now: &str) -> InProcess {
        let service = self.start(now, &[]).await;
        let what = format!("the service at {now}");
        wait_ready_at(&self.http, &service.metrics_address, WAIT, &what).await;
        service
    }

    /// The service at `now` with `extra` variables (an unreachable `AMQP_URL`, say),
    /// once its database is ready (`/readyz`), whether or not it reaches the broker.
    pub async fn service_without_broker(&self, now: &str, extra: &[(&str, String)]) -> InProcess {
        let service = self.start(now, extra).await;
        let ready = format!("{}/readyz", service.address);
        let deadline = std::time::Instant::now() + WAIT;
        while !self
            .http
            .get(&ready)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the service at {now} not ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        service
    }

    async fn start(&self, now: &str, extra: &[(&str, String)]) -> InProcess {
        let mut env = vec![
            ("SMTP_URL", format!("{}?tls=none", self.sink.url())),
            ("SCHOOLSIGNAL_PUBLIC_URL", PUBLIC.to_string()),
            ("SCHOOLSIGNAL_NOW", now.to_string()),
            ("SCHOOLSIGNAL_FOLLOW_UP_INTERVAL_SECONDS", "1".to_string()),
            ("SCHOOLSIGNAL_MAIL_RETRY_BASE_MS", "200".to_string()),
        ];
        env.extend(extra.iter().cloned());
        start_in_process(&self.db.url, &self.prefix, &env).await
    }

    async fn post(&self, service: &InProcess, body: Vec<u8>) {
        let (status, _) = post_event_to(&self.http, &service.address, &self.api_key, &body).await;
        assert_eq!(status, 202);
    }

    /// Posts a new incident about `kid`, visited at `visited`, and keeps its notice's
    /// id as `name` once its email was accepted.
    async fn notify(
        &mut self,
        service: &InProcess,
        name: &'static str,
        incident: &str,
        visited: &str,
        kid: &Kid,
    ) {
        self.post(service, event(incident, 1, "active", visited, kid))
            .await;
        let pool = self.pool.clone();
        eventually(&format!("{name}'s email accepted"), WAIT, || {
            notice_of(&pool, incident).is_some_and(|n| !sent(&pool, &n.id, "notice").is_empty())
        })
        .await;
        self.notices
            .insert(name, notice_of(&self.pool, incident).unwrap().id);
    }

    fn id(&self, name: &str) -> String {
        self.notices[name].clone()
    }

    /// The first accepted notice email of `name`, plus `minutes`.
    fn after_email(&self, name: &str, minutes: i64) -> DateTime<Utc> {
        let first = sent(&self.pool, &self.id(name), "notice")
            .into_iter()
            .min()
            .unwrap();
        first.and_utc() + Minutes::minutes(minutes)
    }

    /// A coordinator acts on a notice at `at`, through the portal's own call.
    fn act(&self, what: impl FnOnce(&mut schoolsignal::db::DbConn) -> store::ActResult) {
        let mut conn = self.pool.get().unwrap();
        let done = what(&mut conn).unwrap();
        assert!(
            matches!(done, Some((_, Acted::Done))),
            "the action was done"
        );
    }

    fn signal(
        &self,
        email: &str,
        name: &str,
        category: SignalCategory,
        urgency: Urgency,
        at: &str,
    ) {
        let exchange = schoolsignal::config::AmqpNames::with_prefix(&self.prefix).outbound_exchange;
        let signal = NewSignal {
            category,
            urgency,
            description: "Wirkt verdrietig in de klas.".into(),
        };
        let id = self.id(name);
        self.act(|c| store::signal(c, &desk(email, utc(at)), &id, Some(signal), &exchange));
    }

    /// Three weeks, three schools (see the module's expected numbers).
    pub async fn run(backend: Backend) -> Self {
        let mut s = Self::seeded(backend).await;
        s.week_48().await;
        s.week_49().await;
        s.week_50().await;
        s
    }

    /// Monday 23 November: two notices, one acknowledged on time and one late, an
    /// objection and a child in no registry; two signals.
    async fn week_48(&mut self) {
        let visited = "2026-11-22T21:40:00+01:00";
        let service = self.service_at("2026-11-23T07:00:00+01:00").await;
        self.notify(&service, "n1", "2026-RP-000001", visited, &SANNE)
            .await;
        self.notify(&service, "n2", "2026-RP-000002", visited, &DAAN)
            .await;
        self.post(
            &service,
            event("2026-RP-000003", 1, "active", visited, &LOTTE),
        )
        .await;
        self.post(
            &service,
            event("2026-RP-000004", 1, "active", visited, &FINN),
        )
        .await;
        service.stop().await;
        // 12AB00 is due at 08:30: acknowledged at about 08:00. 34CD01 is due at 08:15:
        // acknowledged at about 08:45, before the reminder (09:15) could go.
        let (n1, n2) = (self.id("n1"), self.id("n2"));
        let at = self.after_email("n1", 60);
        self.act(|c| store::acknowledge(c, &desk(REGENBOOG, at), &n1));
        let at = self.after_email("n2", 105);
        self.act(|c| store::acknowledge(c, &desk(ANKER, at), &n2));
        self.signal(
            REGENBOOG,
            "n1",
            SignalCategory::Injury,
            Urgency::Urgent,
            "2026-11-23T10:00:00+01:00",
        );
        self.signal(
            ANKER,
            "n2",
            SignalCategory::BehaviourChange,
            Urgency::Routine,
            "2026-11-23T11:00:00+01:00",
        );
    }

    /// Monday 30 November: a notice reminded and then acknowledged late, another
    /// reminded and escalated as unacknowledged; the first week's first notice closed.
    async fn week_49(&mut self) {
        let visited = "2026-11-29T21:40:00+01:00";
        let service = self.service_at("2026-11-30T07:00:00+01:00").await;
        self.notify(&service, "n3", "2026-RP-000005", visited, &MILAN)
            .await;
        self.notify(&service, "n4", "2026-RP-000006", visited, &ILSE)
            .await;
        service.stop().await;
        let n1 = self.id("n1");
        let closed = utc("2026-11-30T13:00:00+01:00");
        let outcome = Some(CloseOutcome::SupportOffered);
        self.act(|c| store::close(c, &desk(REGENBOOG, closed), &n1, outcome));

        // 09:31: an hour and a minute after 12AB00's due time; not yet 56EF02's.
        let service = self.service_at("2026-11-30T09:31:00+01:00").await;
        let pool = self.pool.clone();
        eventually("n3 reminded, both emails accepted", WAIT, || {
            notice_of(&pool, "2026-RP-000005").is_some_and(|n| n.reminded_at.is_some())
                && sent(&pool, &self.id("n3"), "reminder").len() == 2
        })
        .await;
        service.stop().await;
        let n3 = self.id("n3");
        let at = self.after_email("n3", 180);
        self.act(|c| store::acknowledge(c, &desk(REGENBOOG, at), &n3));

        // 11:46: three hours and a minute after 56EF02's due time.
        let service = self.service_at("2026-11-30T11:46:00+01:00").await;
        eventually("n4 reminded and escalated", WAIT, || {
            notice_of(&pool, "2026-RP-000006").is_some_and(|n| n.escalated_at.is_some())
                && sent(&pool, &self.id("n4"), "reminder").len() == 2
        })
        .await;
        service.stop().await;
    }

    /// Monday 7 December: 34CD01's mail server refuses its coordinator (no deputy):
    /// undeliverable; a 12AB00 incident withdrawn after its email; a signal.
    async fn week_50(&mut self) {
        let visited = "2026-12-06T21:40:00+01:00";
        self.sink.refuse_recipient(ANKER);
        let service = self.service_at("2026-12-07T07:00:00+01:00").await;
        self.post(
            &service,
            event("2026-RP-000007", 1, "active", visited, &DAAN),
        )
        .await;
        self.notify(&service, "n6", "2026-RP-000008", visited, &SANNE)
            .await;
        self.post(
            &service,
            event("2026-RP-000008", 2, "withdrawn", visited, &SANNE),
        )
        .await;
        let pool = self.pool.clone();
        eventually(
            "n5 escalated as undeliverable, n6 withdrawn and disregarded",
            WAIT,
            || {
                let n5 = notice_of(&pool, "2026-RP-000007");
                let n6 = notice_of(&pool, "2026-RP-000008");
                n5.is_some_and(|n| n.escalated_at.is_some())
                    && n6.is_some_and(|n| n.withdrawn_at.is_some())
                    && sent(&pool, &self.id("n6"), "withdrawal").len() == 1
            },
        )
        .await;
        service.stop().await;
        self.notices
            .insert("n5", notice_of(&self.pool, "2026-RP-000007").unwrap().id);
        self.signal(
            WEGWIJZER,
            "n4",
            SignalCategory::Absence,
            Urgency::Routine,
            "2026-12-07T10:00:00+01:00",
        );
    }

    pub async fn cleanup(&self) {
        self.broker.cleanup().await;
    }
}

/// The report's command line, over the scenario's three weeks.
fn report(db: &TestDb, extra: &[&str]) -> String {
    let mut args = vec!["report", "--from", "2026-11-23", "--to", "2026-12-13"];
    args.extend(extra);
    let out = run_cli(&db.url, &args, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "report failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// A row's cells by column: (period, scope, key) → column → text ("" when empty).
type Table = BTreeMap<(String, String, String), BTreeMap<String, String>>;

fn from_csv(text: &str) -> Table {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect());
    tabulate(header, rows)
}

fn from_table(text: &str) -> Table {
    let mut lines = text
        .lines()
        .map(|l| l.split_whitespace().map(String::from).collect::<Vec<_>>());
    let header = lines.next().unwrap();
    let rows = lines.map(|cells| {
        cells
            .into_iter()
            .map(|c| if c == "-" { String::new() } else { c })
            .collect()
    });
    tabulate(header, rows)
}

fn from_json(text: &str) -> Table {
    let value: serde_json::Value = serde_json::from_str(text).unwrap();
    let mut table = Table::new();
    for row in value["rows"].as_array().unwrap() {
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) if n.is_u64() => n.to_string(),
            serde_json::Value::Number(n) => format!("{:.1}", n.as_f64().unwrap()),
            other => panic!("unexpected {other}"),
        };
        let cells: BTreeMap<String, String> = row
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), text(v)))
            .collect();
        let key = (
            cells["period"].clone(),
            cells["scope"].clone(),
            cells["key"].clone(),
        );
        table.insert(key, cells);
    }
    table
}

fn tabulate(header: Vec<String>, rows: impl Iterator<Item = Vec<String>>) -> Table {
    let mut table = Table::new();
    for cells in rows {
        assert_eq!(cells.len(), header.len(), "{cells:?}");
        let cells: BTreeMap<String, String> = header.iter().cloned().zip(cells).collect();
        let key = (
            cells["period"].clone(),
            cells["scope"].clone(),
            cells["key"].clone(),
        );
        table.insert(key, cells);
    }
    table
}

/// The columns that are shares or medians: empty, not 0, when there is nothing.
const RATIOS: [&str; 3] = [
    "emailed_on_time_pct",
    "acknowledged_on_time_pct",
    "median_ack_minutes",
];

/// Period, scope, key, and the cells that are not 0 (or empty).
type ExpectedRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// The known outcome: every row and every non-zero (or non-empty) cell.
fn expected() -> Table {
    let rows: &[ExpectedRow] = &[
        (
            "2026-W48",
            "service",
            "",
            &[
                ("events", "4"),
                ("decided_notified", "2"),
                ("decided_no_consent", "1"),
                ("decided_no_registry_match", "1"),
                ("notices", "2"),
                ("notices_not_withdrawn", "2"),
                ("emailed_on_time", "2"),
                ("emailed_on_time_pct", "100.0"),
                ("acknowledged_on_time", "1"),
                ("acknowledged_on_time_pct", "50.0"),
                ("median_ack_minutes", "82.5"),
                ("signals", "2"),
                ("signals_injury", "1"),
                ("signals_behaviour_change", "1"),
                ("signals_urgent", "1"),
                ("signals_routine", "1"),
            ],
        ),
        ("2026-W48", "region", "midden", W48_REGENBOOG),
        ("2026-W48", "region", "noord", W48_ANKER),
        ("2026-W48", "school", "12AB00", W48_REGENBOOG),
        ("2026-W48", "school", "34CD01", W48_ANKER),
        (
            "2026-W49",
            "service",
            "",
            &[
                ("events", "2"),
                ("decided_notified", "2"),
                ("notices", "2"),
                ("notices_not_withdrawn", "2"),
                ("emailed_on_time", "2"),
                ("emailed_on_time_pct", "100.0"),
                ("acknowledged_on_time_pct", "0.0"),
                ("median_ack_minutes", "180.0"),
                ("reminders", "2"),
                ("escalated_unacknowledged", "1"),
            ],
        ),
        ("2026-W49", "region", "midden", W49_REGENBOOG),
        ("2026-W49", "region", "zuid", W49_WEGWIJZER),
        ("2026-W49", "school", "12AB00", W49_REGENBOOG),
        ("2026-W49", "school", "56EF02", W49_WEGWIJZER),
        (
            "2026-W50",
            "service",
            "",
            &[
                ("events", "3"),
                ("decided_notified", "2"),
                ("decided_withdrawn", "1"),
                ("notices", "2"),
                ("notices_not_withdrawn", "1"),
                ("emailed_on_time_pct", "0.0"),
                ("acknowledged_on_time_pct", "0.0"),
                ("escalated_undeliverable", "1"),
                ("deliveries_failed", "1"),
                ("signals", "1"),
                ("signals_absence", "1"),
                ("signals_routine", "1"),
                ("withdrawals", "1"),
            ],
        ),
        ("2026-W50", "region", "midden", W50_REGENBOOG),
        ("2026-W50", "region", "noord", W50_ANKER),
        ("2026-W50", "region", "zuid", W50_WEGWIJZER),
        ("2026-W50", "school", "12AB00", W50_REGENBOOG),
        ("2026-W50", "school", "34CD01", W50_ANKER),
        ("2026-W50", "school", "56EF02", W50_WEGWIJZER),
    ];
    let columns = schoolsignal::report::format::header();
    rows.iter()
        .map(|(period, scope, key, cells)| {
            let row = columns
                .iter()
                .map(|c| {
                    let given = cells
                        .iter()
                        .find(|(name, _)| name == c)
                        .map(|(_, v)| v.to_string());
                    let default = match c.as_str() {
                        "period" => period.to_string(),
                        "scope" => scope.to_string(),
                        "key" => key.to_string(),
                        c if RATIOS.contains(&c) => String::new(),
                        _ => "0".into(),
                    };
                    (c.clone(), given.unwrap_or(default))
                })
                .collect();
            (
                (period.to_string(), scope.to_string(), key.to_string()),
                row,
            )
        })
        .collect()
}

const W48_REGENBOOG: &[(&str, &str)] = &[
    ("events", "1"),
    ("decided_notified", "1"),
    ("notices", "1"),
    ("notices_not_withdrawn", "1"),
    ("emailed_on_time", "1"),
    ("emailed_on_time_pct", "100.0"),
    ("acknowledged_on_time", "1"),
    ("acknowledged_on_time_pct", "100.0"),
    ("median_ack_minutes", "60.0"),
    ("signals", "1"),
    ("signals_injury", "1"),
    ("signals_urgent", "1"),
];
const W48_ANKER: &[(&str, &str)] = &[
    ("events", "1"),
    ("decided_notified", "1"),
    ("notices", "1"),
    ("notices_not_withdrawn", "1"),
    ("emailed_on_time", "1"),
    ("emailed_on_time_pct", "100.0"),
    ("acknowledged_on_time_pct", "0.0"),
    ("median_ack_minutes", "105.0"),
    ("signals", "1"),
    ("signals_behaviour_change", "1"),
    ("signals_routine", "1"),
];
const W49_REGENBOOG: &[(&str, &str)] = &[
    ("events", "1"),
    ("decided_notified", "1"),
    ("notices", "1"),
    ("notices_not_withdrawn", "1"),
    ("emailed_on_time", "1"),
    ("emailed_on_time_pct", "100.0"),
    ("acknowledged_on_time_pct", "0.0"),
    ("median_ack_minutes", "180.0"),
    ("reminders", "1"),
];
const W49_WEGWIJZER: &[(&str, &str)] = &[
    ("events", "1"),
    ("decided_notified", "1"),
    ("notices", "1"),
    ("notices_not_withdrawn", "1"),
    ("emailed_on_time", "1"),
    ("emailed_on_time_pct", "100.0"),
    ("acknowledged_on_time_pct", "0.0"),
    ("reminders", "1"),
    ("escalated_unacknowledged", "1"),
];
const W50_REGENBOOG: &[(&str, &str)] = &[
    ("events", "1"),
    ("decided_notified", "1"),
    ("notices", "1"),
    ("withdrawals", "1"),
];
const W50_ANKER: &[(&str, &str)] = &[
    ("events", "1"),
    ("decided_notified", "1"),
    ("notices", "1"),
    ("notices_not_withdrawn", "1"),
    ("emailed_on_time_pct", "0.0"),
    ("acknowledged_on_time_pct", "0.0"),
    ("escalated_undeliverable", "1"),
    ("deliveries_failed", "1"),
];
const W50_WEGWIJZER: &[(&str, &str)] = &[
    ("signals", "1"),
    ("signals_absence", "1"),
    ("signals_routine", "1"),
];

/// What `--publish` makes of the expected table: every count from 1 to 4 reads
/// `<5`, and so does a share or median over 1 to 4 notices (all of this scenario's).
fn published(table: &Table) -> Table {
    let mut out = table.clone();
    for row in out.values_mut() {
        for (column, cell) in row.iter_mut() {
            let small_count = matches!(cell.parse::<u64>(), Ok(1..=4));
            let ratio = RATIOS.contains(&column.as_str()) && !cell.is_empty();
            if small_count || ratio {
                *cell = "<5".into();
            }
        }
    }
    out
}

fn assert_tables(found: &Table, expected: &Table, what: &str) {
    let keys = |t: &Table| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(found), keys(expected), "{what}: the rows");
    for (key, row) in expected {
        for (column, cell) in row {
            assert_eq!(&found[key][column], cell, "{what}: {key:?} {column}");
        }
    }
}

/// The report in its three formats, each read back into one table.
fn all_formats(db: &TestDb, extra: &[&str]) -> [(String, Table); 3] {
    let with = |format: &str| {
        let mut args = vec!["--format", format];
        args.extend(extra);
        report(db, &args)
    };
    let (table, csv, json) = (with("table"), with("csv"), with("json"));
    [
        (table.clone(), from_table(&table)),
        (csv.clone(), from_csv(&csv)),
        (json.clone(), from_json(&json)),
    ]
}

backend_tests!(three_weeks_three_schools);

async fn three_weeks_three_schools(backend: Backend) {
    let s = Scenario::run(backend).await;

    // The lifecycle is in the status, and escalations keep their level.
    let status = |incident| notice_of(&s.pool, incident).unwrap();
    assert_eq!(status("2026-RP-000001").status, "closed");
    assert_eq!(status("2026-RP-000002").status, "acknowledged");
    assert_eq!(status("2026-RP-000005").status, "acknowledged");
    assert_eq!(status("2026-RP-000006").status, "delivered");
    assert_eq!(
        status("2026-RP-000006").escalation_level.as_deref(),
        Some("unacknowledged")
    );
    assert_eq!(status("2026-RP-000007").status, "pending_delivery");
    assert_eq!(
        status("2026-RP-000007").escalation_level.as_deref(),
        Some("undeliverable")
    );
    assert_eq!(status("2026-RP-000008").status, "withdrawn");

    let expected = expected();
    let before = all_formats(&s.db, &[]);
    for ((_, table), format) in before.iter().zip(["table", "csv", "json"]) {
        assert_tables(table, &expected, format);
    }
    let public = published(&expected);
    for ((_, table), format) in all_formats(&s.db, &["--publish"])
        .iter()
        .zip(["table", "csv", "json"])
    {
        assert_tables(table, &public, &format!("{format} --publish"));
    }
    // By month: November holds the first two weeks.
    let months = from_csv(&report(&s.db, &["--format", "csv", "--by", "month"]));
    let service =
        |period: &str| months[&(period.to_string(), "service".to_string(), String::new())].clone();
    assert_eq!(service("2026-11")["events"], "6");
    assert_eq!(service("2026-11")["median_ack_minutes"], "105.0");
    assert_eq!(service("2026-12")["events"], "3");

    // After the retention purge (all notices are past 90 days by April), the same
    // report, to the byte.
    {
        use schoolsignal::notices::retention::{purge, Retention};
        let mut conn = s.pool.get().unwrap();
        let retention = Retention {
            after_close: chrono::Duration::days(30),
            open: chrono::Duration::days(90),
        };
        while purge(&mut conn, retention, utc("2027-04-01T07:00:00+02:00")).unwrap() > 0 {}
    }
    for incident in ["2026-RP-000001", "2026-RP-000006", "2026-RP-000008"] {
        assert_eq!(
            notice_of(&s.pool, incident).unwrap().given_name,
            None,
            "{incident} purged"
        );
    }
    let after = all_formats(&s.db, &[]);
    for ((text_before, _), (text_after, _)) in before.iter().zip(&after) {
        assert_eq!(text_before, text_after, "the same report after the purge");
    }
    s.cleanup().await;
}

#[test]
fn a_bad_range_is_refused() {
    let db = TestDb::create(Backend::Sqlite);
    let out = run_cli(
        &db.url,
        &["report", "--from", "2026-12-01", "--to", "2026-11-01"],
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from must not be after --to"));
    let out = run_cli(&db.url, &["report", "--from", "yesterday"], &[]);
    assert!(!out.status.success());
    let out = run_cli(
        &db.url,
        &["report", "--from", "2026-11-01", "--by", "day"],
        &[],
    );
    assert!(!out.status.success());
}

/// Migration 000009 on rows written before it: closed and acknowledged notices get
/// those statuses, a withdrawal its time, and an escalation its level from the email
/// that failed at the same instant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_moves_existing_rows() {
    use diesel::connection::SimpleConnection;
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let db = TestDb::create(backend);
        let pool = db.pool();
        seed(&pool);
        let mut conn = pool.get().unwrap();
        let down = include_str!(
            "../../migrations/postgres/2026-12-01-000009_lifecycle_operators/down.sql"
        );
        conn.batch_execute(down).unwrap();
        diesel::sql_query(
            "DELETE FROM __diesel_schema_migrations WHERE version = '20261201000009'",
        )
        .execute(&mut *conn)
        .unwrap();
        let t = "'2026-11-23 07:00:00'";
        let (later, failed_at) = ("'2026-11-23 08:00:00'", "'2026-11-23 07:00:05'");
        conn.batch_execute(&format!(
            "INSERT INTO notices (id, incident_id, child_bsn_hash, child_index, school_brin, visited_at,
               status, created_at, updated_at, due_at, acknowledged_at, closed_at, escalated_at) VALUES
             ('closed', 'i1', 'h1', 0, '12AB00', {t}, 'delivered', {t}, {t}, {t}, {later}, {later}, NULL),
             ('acked', 'i2', 'h2', 0, '12AB00', {t}, 'delivered', {t}, {t}, {t}, {later}, NULL, NULL),
             ('gone', 'i3', 'h3', 0, '12AB00', {t}, 'withdrawn', {t}, {later}, {t}, NULL, NULL, NULL),
             ('late', 'i4', 'h4', 0, '12AB00', {t}, 'delivered', {t}, {t}, {t}, NULL, NULL, {later}),
             ('lost', 'i5', 'h5', 0, '34CD01', {t}, 'pending_delivery', {t}, {t}, {t}, NULL, NULL, {failed_at});
             INSERT INTO deliveries (notice_id, kind, recipient, state, message_id, attempts, created_at,
               next_attempt_at, expires_at, finished_at) VALUES
             ('lost', 'notice', 'coordinator', 'permanent_failure', 'm1', 1, {t}, {t}, {later}, {failed_at}),
             ('late', 'notice', 'coordinator', 'sent', 'm2', 1, {t}, {t}, {later}, {t});"
        ))
        .unwrap();
        assert_eq!(
            schoolsignal::db::migrate::run_pending(&mut conn).unwrap(),
            1
        );
        let rows: Vec<(String, String, Option<NaiveDateTime>, Option<String>)> = notices::table
            .order(notices::id)
            .select((
                notices::id,
                notices::status,
                notices::withdrawn_at,
                notices::escalation_level,
            ))
            .load(&mut *conn)
            .unwrap();
        let at = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "'%Y-%m-%d %H:%M:%S'").unwrap();
        let expect = |id: &str, status: &str, withdrawn: Option<&str>, level: Option<&str>| {
            (
                id.to_string(),
                status.to_string(),
                withdrawn.map(at),
                level.map(String::from),
            )
        };
        assert_eq!(
            rows,
            [
                expect("acked", "acknowledged", None, None),
                expect("closed", "closed", None, None),
                expect("gone", "withdrawn", Some(later), None),
                expect("late", "delivered", None, Some("unacknowledged")),
                expect("lost", "pending_delivery", None, Some("undeliverable")),
            ],
            "{backend:?}"
        );
    }
}

//! The service as a real process: redelivery, hard kills, replicas, broker restarts.

use crate::support::*;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(120);

struct Setup {
    _db: TestDb,
    pool: schoolsignal::db::Pool,
    env: Vec<(String, String)>,
    broker: Broker,
    api_key: String,
}

async fn setup(backend: Backend, amqp: &str) -> Setup {
    let db = TestDb::create(backend);
    let pool = db.pool();
    let api_key = seed(&pool);
    let prefix = format!("t{}.", unique());
    let env = service_env(&db.url, &prefix, amqp);
    let broker = Broker::connect(amqp, schoolsignal::config::AmqpNames::with_prefix(&prefix)).await;
    Setup {
        _db: db,
        pool,
        env,
        broker,
        api_key,
    }
}

fn unpublished(pool: &schoolsignal::db::Pool) -> i64 {
    count_rows(pool, "outbox_messages") - published(pool)
}

fn published(pool: &schoolsignal::db::Pool) -> i64 {
    let mut conn = pool.get().unwrap();
    use diesel::prelude::*;
    use schoolsignal::db::schema::outbox_messages::dsl::*;
    outbox_messages
        .filter(published_at.is_not_null())
        .count()
        .get_result(&mut *conn)
        .unwrap()
}

/// Distinct event ids among the outcome messages on the test queue.
async fn outcome_event_ids(broker: &Broker, expected: usize) -> (usize, HashSet<String>) {
    let mut messages = broker
        .take(&broker.outcomes_queue, expected, Duration::from_secs(30))
        .await;
    // Anything beyond the expected count would be a duplicate: give it a moment to show.
    messages.extend(
        broker
            .take(&broker.outcomes_queue, 10, Duration::from_secs(1))
            .await,
    );
    let ids = messages
        .iter()
        .map(|m| {
            serde_json::from_slice::<serde_json::Value>(&m.delivery.data).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    (messages.len(), ids)
}

/// The same event three times, and a process that dies after its commit but before
/// its ack: one set of decisions, one set of outcome messages.
async fn duplicates_and_redelivery(backend: Backend) {
    let s = setup(backend, &amqp_url()).await;
    let body = example("valid-basic.json");
    for _ in 0..3 {
        s.broker.publish(&body).await;
    }
    let mut env = s.env.clone();
    env.push(("SCHOOLSIGNAL_FAULT_ABORT_AFTER_COMMITS".into(), "1".into()));
    let mut first = ServiceProcess::start(&env, &format!("redelivery-{}", unique()));
    let deadline = std::time::Instant::now() + LONG;
    let status = loop {
        if let Some(status) = first.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the fault did not fire"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!status.success(), "aborted between commit and ack");
    assert_eq!(count_rows(&s.pool, "decisions"), 1, "the commit happened");
    assert!(first.logs().contains("aborting before ack"));

    let second = ServiceProcess::start(&s.env, &format!("redelivery2-{}", unique()));
    second.wait_ready(LONG).await;
    wait_for_metric("the redeliveries to be counted", LONG, 3.0, || {
        second.metric("schoolsignal_events_total{result=\"duplicate\"}")
    })
    .await;
    eventually("outbox drained", LONG, || unpublished(&s.pool) == 0).await;
    assert_eq!(count_rows(&s.pool, "decisions"), 1);
    assert_eq!(count_rows(&s.pool, "notices"), 1);
    assert_eq!(count_rows(&s.pool, "outbox_messages"), 1);
    let (total, ids) = outcome_event_ids(&s.broker, 1).await;
    assert_eq!((total, ids.len()), (1, 1), "one outcome message");
    assert_eq!(s.broker.message_count(&s.broker.names.queue).await, 0);
    assert_no_personal_data(&(first.logs() + &second.logs()), "event seen before");
    drop((first, second));
    s.broker.cleanup().await;
}

/// SIGKILL while 1,000 events are in flight, then restart: each decided exactly once.
async fn hard_kill_with_1000_in_flight(backend: Backend) {
    let s = setup(backend, &amqp_url()).await;
    let events: Vec<(String, Vec<u8>)> = (0..1000).map(|n| generated_event(n, "HK")).collect();
    let bodies: Vec<Vec<u8>> = events.iter().map(|(_, b)| b.clone()).collect();
    s.broker.publish_many(&bodies).await;

    let name = format!("hardkill-{}", unique());
    // Small batches, so that the kill lands with most of the events still in flight.
    let mut env = s.env.clone();
    env.push(("SCHOOLSIGNAL_INTAKE_BATCH".into(), "10".into()));
    let mut first = ServiceProcess::start(&env, &name);
    eventually("the first commits", LONG, || {
        count_rows(&s.pool, "inbox_events") > 0
    })
    .await;
    first.kill9();
    let at_kill = count_rows(&s.pool, "inbox_events");
    eprintln!("killed with {at_kill} of 1000 events committed");
    assert!(
        (1..1000).contains(&at_kill),
        "the kill must land mid-run: {at_kill} committed"
    );

    let second = ServiceProcess::start(&s.env, &name);
    eventually("all events decided", LONG, || {
        count_rows(&s.pool, "inbox_events") == 1000
    })
    .await;
    eventually("outbox drained", LONG, || unpublished(&s.pool) == 0).await;
    assert_eq!(count_rows(&s.pool, "decisions"), 1000);
    assert_eq!(count_rows(&s.pool, "notices"), 1000);
    assert_eq!(count_rows(&s.pool, "outbox_messages"), 1000);
    let (_, ids) = outcome_event_ids(&s.broker, 1000).await;
    let sent: HashSet<String> = events.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids, sent, "an outcome message for every event");
    second.wait_ready(LONG).await;
    assert_eq!(
        s.broker.message_count(&s.broker.names.queue).await,
        0,
        "the queue ends empty"
    );
    assert_eq!(s.broker.message_count(&s.broker.names.dead_queue).await, 0);
    assert_no_personal_data(&second.logs(), "event decided");
    drop((first, second));
    s.broker.cleanup().await;
}

/// Three processes on one PostgreSQL database and one queue, every event published
/// twice: each event is decided exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_on_postgres() {
    // The replicas start together on an empty database: they race to migrate it,
    // and the advisory lock makes one of them do it while the others wait.
    let db = TestDb::create(Backend::Postgres);
    let pool = db.pool();
    let prefix = format!("t{}.", unique());
    let env = service_env(&db.url, &prefix, &amqp_url());
    let broker = Broker::connect(
        &amqp_url(),
        schoolsignal::config::AmqpNames::with_prefix(&prefix),
    )
    .await;
    let replicas: Vec<ServiceProcess> = (0..3)
        .map(|i| ServiceProcess::start(&env, &format!("replica{i}-{}", unique())))
        .collect();
    for r in &replicas {
        r.wait_ready(LONG).await;
    }
    assert_eq!(
        count_rows(&pool, "__diesel_schema_migrations"),
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
            .unwrap()
            .count() as i64,
        "every migration ran once"
    );
    let api_key = seed(&pool);
    let s = Setup {
        _db: db,
        pool,
        env,
        broker,
        api_key,
    };
    let events: Vec<(String, Vec<u8>)> = (0..600).map(|n| generated_event(n, "RP")).collect();
    let mut bodies: Vec<Vec<u8>> = events.iter().map(|(_, b)| b.clone()).collect();
    bodies.extend(bodies.clone());
    s.broker.publish_many(&bodies).await;
    eventually("all events decided", LONG, || {
        count_rows(&s.pool, "inbox_events") == 600
    })
    .await;
    eventually("outbox drained", LONG, || unpublished(&s.pool) == 0).await;
    let mut duplicates = 0.0;
    let deadline = std::time::Instant::now() + LONG;
    while duplicates < 600.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "not all copies consumed"
        );
        duplicates = 0.0;
        for r in &replicas {
            duplicates += r
                .metric("schoolsignal_events_total{result=\"duplicate\"}")
                .await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(duplicates, 600.0);
    assert_eq!(count_rows(&s.pool, "decisions"), 600);
    assert_eq!(count_rows(&s.pool, "outbox_messages"), 600);
    let (total, ids) = outcome_event_ids(&s.broker, 600).await;
    assert_eq!(
        (total, ids.len()),
        (600, 600),
        "one outcome message per event"
    );
    assert_eq!(s.broker.message_count(&s.broker.names.queue).await, 0);
    let logs: String = replicas.iter().map(|r| r.logs()).collect();
    assert_no_personal_data(&logs, "event decided");
    drop(replicas);
    s.broker.cleanup().await;
}

/// A private RabbitMQ node, so that restarting it disturbs no other test.
struct PrivateRabbit {
    dir: tempfile::TempDir,
    port: u16,
}

fn rabbit_script(dir: &std::path::Path, port: u16, action: &str) {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/rabbit-node.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(action)
        .arg(dir)
        .arg(port.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "rabbit-node.sh {action} failed");
}

impl PrivateRabbit {
    /// Picks ports (the script uses PORT and PORT+20000) but starts nothing yet. The
    /// service is pointed at the node before it starts, and the node comes back on
    /// the same port, so the port is fixed here: reserved (see `reserve`), so that no
    /// other process takes it meanwhile.
    fn new() -> Self {
        let port = loop {
            let p = reserve_port();
            if (1024..45535).contains(&p) && reserve(p + 20000).is_ok() {
                break p;
            }
        };
        Self {
            dir: tempfile::tempdir().unwrap(),
            port,
        }
    }

    async fn run(&self, action: &'static str) {
        let (dir, port) = (self.dir.path().to_path_buf(), self.port);
        tokio::task::spawn_blocking(move || rabbit_script(&dir, port, action))
            .await
            .unwrap();
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        rabbit_script(self.dir.path(), self.port, "kill");
    }
}

/// Waits until the internal listener says the broker is down: the detailed health
/// (503, the database up, the broker down) and the gauge `schoolsignal_broker_up 0`.
/// Then the replica must still be ready on the main listener: `/readyz` is 200 and
/// says that the database is up, and nothing about the broker.
async fn ready_with_the_broker_down(service: &ServiceProcess) {
    let down = json!({"database": "up", "broker": "down"});
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let health = service.get_internal("/health").await;
        let page = service.get_internal("/metrics").await;
        let reported = health.as_ref().is_some_and(|(status, body)| {
            *status == 503
                && serde_json::from_str::<serde_json::Value>(body).ok() == Some(down.clone())
        });
        let gauge = page
            .as_ref()
            .is_some_and(|(_, page)| page.lines().any(|l| l == "schoolsignal_broker_up 0"));
        if reported && gauge {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the internal listener never reported the broker down: {health:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = service
        .get("/readyz")
        .await
        .expect("the main listener answers");
    assert_eq!(status, 200, "ready while the broker is down: {body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body,
        json!({"database": "up"}),
        "readyz names the database only"
    );
}

/// The broker is unreachable from the start: the replica is ready all the same,
/// because the portal and HTTPS intake need only the database. The broker's state
/// shows on the internal listener, and an event sent over HTTPS is accepted.
async fn ready_while_the_broker_is_down(backend: Backend) {
    let db = TestDb::create(backend);
    let api_key = seed(&db.pool());
    // A port nothing listens on (see `free_port`): the broker stays unreachable.
    let closed = format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port());
    let env = service_env(&db.url, &format!("t{}.", unique()), &closed);
    let service = ServiceProcess::start(&env, &format!("no-broker-{}", unique()));
    ready_with_the_broker_down(&service).await;
    let http = reqwest::Client::new();
    let address = service.address().await;
    let (status, _) = post_event_to(&http, &address, &api_key, &example("valid-basic.json")).await;
    assert_eq!(status, 202, "HTTPS intake works without the broker");
    ready_with_the_broker_down(&service).await;
}

/// Polls `/readyz` on the main listener until it answers `status` with `body`.
async fn readyz_answers(service: &ServiceProcess, status: u16, body: serde_json::Value) {
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let got = service.get("/readyz").await;
        let seen = got
            .as_ref()
            .map(|(s, text)| (*s, serde_json::from_str::<serde_json::Value>(text).ok()));
        if seen == Some((status, Some(body.clone()))) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "readyz never answered {status} {body}: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Readiness follows the database: while it refuses connections, `/readyz` on the
/// main listener answers 503 `{"database":"down"}`, and 200 again once it is back.
/// (No broker, so that nothing is declared on the shared one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database_on_postgres() {
    let db = TestDb::create(Backend::Postgres);
    let closed = format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port());
    let env = service_env(&db.url, &format!("t{}.", unique()), &closed);
    let service = ServiceProcess::start(&env, &format!("db-ready-{}", unique()));
    readyz_answers(&service, 200, json!({"database": "up"})).await;
    let name = db.url.rsplit('/').next().unwrap().to_string();
    let mut admin = <diesel::PgConnection as diesel::Connection>::establish(
        "postgres://postgres@127.0.0.1:5432/test",
    )
    .unwrap();
    use diesel::RunQueryDsl;
    for sql in [
        format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
        format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ),
    ] {
        diesel::sql_query(sql).execute(&mut admin).unwrap();
    }
    readyz_answers(&service, 503, json!({"database": "down"})).await;
    diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&mut admin)
        .unwrap();
    readyz_answers(&service, 200, json!({"database": "up"})).await;
}

/// The queues a RabbitMQ node has, with their arguments, as `rabbitmqctl` prints them.
fn queues_on(rabbit: &PrivateRabbit) -> String {
    let out = std::process::Command::new("/usr/lib/rabbitmq/bin/rabbitmqctl")
        .env("HOME", rabbit.dir.path())
        .args(["-q", "-n", &format!("sstest{}@localhost", rabbit.port)])
        .args(["list_queues", "name", "arguments"])
        .output()
        .unwrap();
    assert!(out.status.success(), "rabbitmqctl list_queues failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The service declared the intake queue as the contract says: quorum, with its
/// dead-letter exchange and an explicit delivery limit.
fn assert_topology(rabbit: &PrivateRabbit, names: &schoolsignal::config::AmqpNames) {
    let queues = queues_on(rabbit);
    let line = queues
        .lines()
        .find(|l| l.split_whitespace().next() == Some(names.queue.as_str()))
        .unwrap_or_else(|| panic!("no intake queue on the node: {queues}"));
    for argument in [
        "x-queue-type".to_string(),
        "quorum".to_string(),
        "x-delivery-limit".to_string(),
        "x-dead-letter-exchange".to_string(),
        names.dead_exchange.clone(),
    ] {
        assert!(line.contains(&argument), "{argument} missing: {line}");
    }
    assert!(
        queues
            .lines()
            .any(|l| l.split_whitespace().next() == Some(names.dead_queue.as_str())),
        "no dead-letter queue: {queues}"
    );
}

/// The service starts before its broker, declares the topology itself, lives through
/// a broker stopped in the middle of a run, and declares everything again when the
/// broker comes back empty.
async fn broker_restart(backend: Backend) {
    let rabbit = PrivateRabbit::new();
    let db = TestDb::create(backend);
    let pool = db.pool();
    let api_key = seed(&pool);
    let prefix = format!("t{}.", unique());
    let env = service_env(&db.url, &prefix, &rabbit.url());
    let service = ServiceProcess::start(&env, &format!("broker-restart-{}", unique()));
    ready_with_the_broker_down(&service).await;
    assert_eq!(service.get("/healthz").await.map(|r| r.0), Some(200));

    rabbit.run("start").await;
    service.wait_ready(LONG).await;
    wait_for_metric("the broker gauge at 1", LONG, 1.0, || {
        service.metric("schoolsignal_broker_up")
    })
    .await;
    let names = schoolsignal::config::AmqpNames::with_prefix(&prefix);
    assert_topology(&rabbit, &names);
    let broker = Broker::connect(&rabbit.url(), names.clone()).await;
    let before: Vec<Vec<u8>> = (0..300).map(|n| generated_event(n, "BR").1).collect();
    broker.publish_many(&before).await;
    eventually("the first commits", LONG, || {
        count_rows(&pool, "inbox_events") > 0
    })
    .await;

    // Stopped mid-run: what was delivered and not yet acked goes back to the queue.
    rabbit.run("stop").await;
    let at_stop = count_rows(&pool, "inbox_events");
    eprintln!("broker stopped with {at_stop} of 300 events committed");
    ready_with_the_broker_down(&service).await;
    // While the broker is down, HTTPS intake goes on; outcomes wait in the outbox.
    let client = reqwest::Client::new();
    for n in 300..320 {
        let r = client
            .post(format!("{}/v1/events", service.address().await))
            .bearer_auth(&api_key)
            .header("content-type", "application/json")
            .body(generated_event(n, "BR").1)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    assert!(
        unpublished(&pool) >= 20,
        "outcomes wait while the broker is down"
    );
    assert!(service.metric("schoolsignal_outbox_depth").await >= 20.0);

    rabbit.run("start").await;
    service.wait_ready(LONG).await;
    let broker = Broker::connect(&rabbit.url(), names.clone()).await;
    eventually("all events decided", LONG, || {
        count_rows(&pool, "inbox_events") == 320
    })
    .await;
    eventually("outbox drained", LONG, || unpublished(&pool) == 0).await;
    assert_eq!(count_rows(&pool, "decisions"), 320, "each decided once");
    let (total, ids) = outcome_event_ids(&broker, 320).await;
    eprintln!("{total} outcome messages for {} events", ids.len());
    assert_eq!(
        ids.len(),
        320,
        "every outcome reached the queue across the restart"
    );
    assert_eq!(broker.message_count(&names.queue).await, 0);

    // The node comes back with nothing: no exchange, no queue. The service
    // declares its topology again, with no manual step.
    rabbit.run("stop").await;
    std::fs::remove_dir_all(rabbit.dir.path().join("mnesia")).unwrap();
    rabbit.run("start").await;
    service.wait_ready(LONG).await;
    assert_topology(&rabbit, &names);
    let broker = Broker::connect(&rabbit.url(), names).await;
    let after: Vec<Vec<u8>> = (320..330).map(|n| generated_event(n, "BR").1).collect();
    broker.publish_many(&after).await;
    eventually("events after the reset decided", LONG, || {
        count_rows(&pool, "inbox_events") == 330
    })
    .await;
    assert_no_personal_data(&service.logs(), "intake consumer connected");
}

/// The database cuts every connection (as in a restart or a failover): the service
/// opens new ones and goes on, with nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_connections_cut_on_postgres() {
    let s = setup(Backend::Postgres, &amqp_url()).await;
    let service = ServiceProcess::start(&s.env, &format!("db-cut-{}", unique()));
    service.wait_ready(LONG).await;
    let first: Vec<Vec<u8>> = (0..50).map(|n| generated_event(n, "DC").1).collect();
    s.broker.publish_many(&first).await;
    eventually("first events decided", LONG, || {
        count_rows(&s.pool, "inbox_events") == 50
    })
    .await;

    let name = s._db.url.rsplit('/').next().unwrap().to_string();
    let mut admin = <diesel::PgConnection as diesel::Connection>::establish(
        "postgres://postgres@127.0.0.1:5432/test",
    )
    .unwrap();
    #[derive(diesel::QueryableByName)]
    struct Cut {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel::RunQueryDsl;
    let cut: Cut = diesel::sql_query(format!(
        "SELECT COUNT(pg_terminate_backend(pid)) AS n FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ))
    .get_result(&mut admin)
    .unwrap();
    assert!(cut.n > 0, "the service held connections");

    let second: Vec<Vec<u8>> = (50..100).map(|n| generated_event(n, "DC").1).collect();
    s.broker.publish_many(&second).await;
    eventually("events after the cut decided", LONG, || {
        count_rows(&s.pool, "inbox_events") == 100
    })
    .await;
    let r = reqwest::Client::new()
        .post(format!("{}/v1/events", service.address().await))
        .bearer_auth(&s.api_key)
        .header("content-type", "application/json")
        .body(generated_event(100, "DC").1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "HTTPS intake works after the cut");
    service.wait_ready(LONG).await;
    eventually("outbox drained", LONG, || unpublished(&s.pool) == 0).await;
    assert_eq!(count_rows(&s.pool, "decisions"), 101);
    let (_, ids) = outcome_event_ids(&s.broker, 101).await;
    assert_eq!(ids.len(), 101, "every outcome published after the cut");
    assert_no_personal_data(&service.logs(), "event decided");
    drop(service);
    s.broker.cleanup().await;
}

/// An event that passes the contract but whose transaction always fails (a trigger
/// refuses its notice): the other events of its batch are decided, the queue moves
/// on, and the broker dead-letters the poison message after the delivery limit.
async fn a_poison_event_does_not_block_the_queue(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    {
        let mut conn = app.pool.get().unwrap();
        use diesel::RunQueryDsl;
        let statements: &[&str] = match backend {
            Backend::Postgres => &[
                "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN \
                 RAISE EXCEPTION 'poison'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER poison BEFORE INSERT ON notices FOR EACH ROW \
                 WHEN (NEW.incident_id = '2026-PX-000000') EXECUTE FUNCTION poison()",
            ],
            Backend::Sqlite => &["CREATE TRIGGER poison BEFORE INSERT ON notices \
                 WHEN NEW.incident_id = '2026-PX-000000' \
                 BEGIN SELECT RAISE(ABORT, 'poison'); END"],
        };
        for sql in statements {
            diesel::sql_query(*sql).execute(&mut *conn).unwrap();
        }
    }
    let events: Vec<(String, Vec<u8>)> = (0..20).map(|n| generated_event(n, "PX")).collect();
    let bodies: Vec<Vec<u8>> = events.iter().map(|(_, b)| b.clone()).collect();
    app.broker.publish_many(&bodies).await;
    wait_for("the other events decided", LONG, || {
        count_rows(&app.pool, "inbox_events") == 19
    })
    .await;
    let later: Vec<Vec<u8>> = (20..30).map(|n| generated_event(n, "PX").1).collect();
    app.broker.publish_many(&later).await;
    wait_for(
        "later events decided while the poison is retried",
        LONG,
        || count_rows(&app.pool, "inbox_events") == 29,
    )
    .await;
    let dead = app
        .broker
        .take(&app.broker.names.dead_queue, 1, Duration::from_secs(180))
        .await;
    assert_eq!(dead.len(), 1, "the poison message is dead-lettered");
    let body: serde_json::Value = serde_json::from_slice(&dead[0].delivery.data).unwrap();
    assert_eq!(body["event_id"].as_str(), Some(events[0].0.as_str()));
    assert_eq!(count_rows(&app.pool, "inbox_events"), 29);
    assert_eq!(app.broker.message_count(&app.broker.names.queue).await, 0);
    assert_no_personal_data(&captured_logs(), "returned to the queue");
    app.cleanup().await;
}

/// A service that cannot serve takes no work. `Application::build` binds both its
/// ports, the main and the internal listener's (and opens its mail transport),
/// before any stage starts, so when either port is taken it fails with the events it
/// would have consumed still on the queue. When the consumer started first, as it
/// once did, it ran on in this runtime after the failure and took them.
async fn a_service_that_cannot_bind_takes_no_events(backend: Backend) {
    let s = setup(backend, &amqp_url()).await;
    s.broker.declare().await;
    let events: Vec<Vec<u8>> = (0..20).map(|n| generated_event(n, "bind").1).collect();
    s.broker.publish_many(&events).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    for var in ["SCHOOLSIGNAL_BIND", "SCHOOLSIGNAL_METRICS_BIND"] {
        let mut env = s.env.clone();
        env.push((var.into(), bind.clone()));
        let built = schoolsignal::app::Application::build(config_from(&env)).await;
        let error = built.err().expect("the port is taken").to_string();
        assert!(error.starts_with(&format!("{var}: ")), "{error}");
    }
    // Long enough for a consumer that had started to connect and take a prefetch.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.broker.message_count(&s.broker.names.queue).await, 20);
    assert_eq!(count_rows(&s.pool, "inbox_events"), 0);
    s.broker.cleanup().await;
}

backend_tests!(
    a_poison_event_does_not_block_the_queue,
    a_service_that_cannot_bind_takes_no_events,
    ready_while_the_broker_is_down,
    duplicates_and_redelivery,
    hard_kill_with_1000_in_flight,
    broker_restart
);

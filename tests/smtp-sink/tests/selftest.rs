//! The SMTP sink's own tests: a real lettre client against the in-process sink, and a
//! raw TCP client for the protocol details.

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use smtp_sink::{Reply, SmtpSink};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

fn transport(sink: &SmtpSink) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(sink.port())
        .timeout(Some(Duration::from_secs(10)))
        .pool_config(PoolConfig::new().max_size(16))
        .build()
}

fn simple(to: &str, n: usize) -> Message {
    Message::builder()
        .from("Zorgsignaal <noreply@schoolsignal.test>".parse().unwrap())
        .to(to.parse().unwrap())
        .subject(format!("Bericht {n}"))
        .header(ContentType::TEXT_PLAIN)
        .body(format!("Bericht nummer {n}\n.begint met een punt\n"))
        .unwrap()
}

#[tokio::test]
async fn receives_and_parses_a_multipart_alternative_message() {
    let sink = SmtpSink::start().await;
    assert_eq!(sink.url(), format!("smtp://127.0.0.1:{}", sink.port()));
    let text = "Beste intern begeleider,\n\nEr is één melding. Groeten — ‘Zorg’ 👋\n.Een regel die met een punt begint\n";
    let html = "<p>Beste intern begeleider,</p><p>Er is één melding — ‘Zorg’ 👋</p>";
    let to: Mailbox = "Intern Begeleider <ib@school.test>".parse().unwrap();
    let msg = Message::builder()
        .from("Zorgsignaal <noreply@schoolsignal.test>".parse().unwrap())
        .to(to)
        .subject("Melding: één kind — vóór de schooldag")
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Test-Id"),
            "abc 123".to_string(),
        ))
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::plain(text.to_string()))
                .singlepart(SinglePart::html(html.to_string())),
        )
        .unwrap();
    transport(&sink).send(msg).await.unwrap();

    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.mail_from, "noreply@schoolsignal.test");
    assert_eq!(m.rcpt_to, vec!["ib@school.test".to_string()]);
    assert_eq!(m.subject(), "Melding: één kind — vóór de schooldag");
    assert_eq!(m.text_body().replace("\r\n", "\n"), text);
    assert_eq!(m.html_body().replace("\r\n", "\n"), html);
    assert_eq!(m.header("x-test-id").as_deref(), Some("abc 123"));
    assert!(m
        .header("Content-Type")
        .unwrap()
        .starts_with("multipart/alternative"));
    assert!(m.header("X-Missing").is_none());
    assert_eq!(m.to_addresses(), vec!["ib@school.test".to_string()]);
    let all = m.all_decoded_text();
    for needle in [
        "één kind",
        "Er is één melding",
        "👋",
        "Intern Begeleider",
        "X-Test-Id",
    ] {
        assert!(all.contains(needle), "all_decoded_text misses {needle:?}");
    }
    assert!(!m.data.ends_with(b".\r\n"));
    assert_eq!(sink.received_for("IB@school.test").len(), 1);
    assert!(sink.received_for("other@school.test").is_empty());
    assert_eq!(sink.attempts(), 1);
    assert_eq!(sink.accepted_count(), 1);
}

#[tokio::test]
async fn scripted_transient_failures_then_acceptance() {
    let sink = SmtpSink::start().await;
    let t = transport(&sink);
    sink.script("a@school.test", 2, Reply::Transient);
    for _ in 0..2 {
        let err = t.send(simple("a@school.test", 1)).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
    }
    // A script for one recipient leaves the others alone.
    t.send(simple("b@school.test", 2)).await.unwrap();
    t.send(simple("a@school.test", 3)).await.unwrap();
    assert_eq!(sink.attempts(), 4);
    let got = sink.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].subject(), "Bericht 3");
    // lettre ends DATA with "\r\n.\r\n" even after a final CRLF: one empty line more.
    assert_eq!(
        got[1].text_body(),
        "Bericht nummer 3\r\n.begint met een punt\r\n\r\n"
    );

    sink.script("*", 1, Reply::Permanent);
    let err = t.send(simple("c@school.test", 4)).await.unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    t.send(simple("c@school.test", 5)).await.unwrap();
    assert_eq!(sink.accepted_count(), 3);
    assert_eq!(sink.attempts(), 6);
}

#[tokio::test]
async fn refused_recipient_is_a_permanent_error() {
    let sink = SmtpSink::start().await;
    let t = transport(&sink);
    sink.refuse_recipient("Gone@School.test");
    let err = t.send(simple("gone@school.test", 1)).await.unwrap_err();
    assert!(err.is_permanent(), "{err:?}");
    assert_eq!(sink.attempts(), 0, "no DATA after a refused RCPT");
    t.send(simple("here@school.test", 2)).await.unwrap();
    sink.accept_recipient("gone@school.test");
    t.send(simple("gone@school.test", 3)).await.unwrap();
    assert_eq!(sink.received().len(), 2);
}

#[tokio::test]
async fn pause_refuses_and_resume_serves_on_the_same_port() {
    let sink = SmtpSink::start().await;
    let port = sink.port();
    let t = transport(&sink);
    t.send(simple("a@school.test", 1)).await.unwrap(); // leaves a pooled connection
    sink.pause().await;
    assert!(sink.is_paused());
    assert_eq!(sink.open_connections(), 0);
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
    let err = t.send(simple("a@school.test", 2)).await.unwrap_err();
    assert!(!err.is_permanent(), "{err:?}");
    sink.resume().await;
    assert_eq!(sink.port(), port);
    t.send(simple("a@school.test", 3)).await.unwrap();
    let subjects: Vec<String> = sink.received().iter().map(|m| m.subject()).collect();
    assert_eq!(subjects, ["Bericht 1", "Bericht 3"]);
    // Pausing twice and resuming twice is harmless.
    sink.pause().await;
    sink.pause().await;
    sink.resume().await;
    sink.resume().await;
    t.send(simple("a@school.test", 4)).await.unwrap();
    assert_eq!(sink.accepted_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_sends_through_a_pool_all_arrive() {
    let sink = SmtpSink::start().await;
    let t = transport(&sink);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..200 {
        let t = t.clone();
        tasks.spawn(async move {
            t.send(simple(&format!("r{}@school.test", n % 7), n))
                .await
                .unwrap()
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let got = sink.wait_for(200, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 200);
    assert_eq!(sink.accepted_count(), 200);
    let mut subjects: Vec<String> = got.iter().map(|m| m.subject()).collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 200);
    assert!(sink.received_for("r3@school.test").len() >= 28);
    eprintln!("200 messages in {:?}", started.elapsed());
}

#[tokio::test]
async fn wait_for_times_out_gracefully() {
    let sink = SmtpSink::start().await;
    let started = Instant::now();
    let got = sink.wait_for(3, Duration::from_millis(200)).await;
    assert!(got.is_empty());
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(190), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    // And it returns early once enough arrived.
    let t = transport(&sink);
    let waiter = sink.wait_for(2, Duration::from_secs(10));
    let sender = async {
        t.send(simple("a@school.test", 1)).await.unwrap();
        t.send(simple("a@school.test", 2)).await.unwrap();
    };
    let (got, ()) = tokio::join!(waiter, sender);
    assert_eq!(got.len(), 2);
}

/// A raw client: writes `input` in one go and reads `replies` reply lines (the last
/// line of each multi-line reply counts once).
async fn exchange(reader: &mut BufReader<TcpStream>, input: &[u8], replies: usize) -> Vec<String> {
    reader.get_mut().write_all(input).await.unwrap();
    let mut out = Vec::new();
    let mut line = String::new();
    while out.len() < replies {
        line.clear();
        assert!(
            reader.read_line(&mut line).await.unwrap() > 0,
            "closed early"
        );
        if line.as_bytes().get(3) == Some(&b' ') || line.len() <= 5 {
            out.push(line.trim_end().to_string());
        }
    }
    out
}

async fn raw_connect(sink: &SmtpSink) -> BufReader<TcpStream> {
    let mut reader = BufReader::new(
        TcpStream::connect(("127.0.0.1", sink.port()))
            .await
            .unwrap(),
    );
    let mut greeting = String::new();
    reader.read_line(&mut greeting).await.unwrap();
    assert!(greeting.starts_with("220 "), "{greeting}");
    reader
}

#[tokio::test]
async fn raw_protocol_pipelining_dot_unstuffing_and_errors() {
    let sink = SmtpSink::start().await;
    let mut c = raw_connect(&sink).await;

    // EHLO advertises what it should and nothing more.
    c.get_mut()
        .write_all(b"EHLO client.test\r\n")
        .await
        .unwrap();
    let mut ehlo = Vec::new();
    loop {
        let mut line = String::new();
        c.read_line(&mut line).await.unwrap();
        ehlo.push(line.trim_end().to_string());
        if line.as_bytes()[3] == b' ' {
            break;
        }
    }
    let ehlo = ehlo.join("\n");
    for ext in ["PIPELINING", "8BITMIME", "SIZE 10485760", "SMTPUTF8"] {
        assert!(ehlo.contains(ext), "{ehlo}");
    }
    assert!(
        !ehlo.contains("AUTH") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );

    // Everything pipelined in one write, including the message and a second transaction.
    let input = b"MAIL FROM:<sender@x.test> BODY=8BITMIME\r\n\
RCPT TO:<one@x.test>\r\n\
RCPT TO:<two@x.test> NOTIFY=NEVER\r\n\
DATA\r\n\
Subject: dots\r\n\
\r\n\
..leading dot\r\n\
.\r\n\
NOOP\r\n\
MAIL FROM:<>\r\n\
RCPT TO:<three@x.test>\r\n\
DATA\r\n\
Subject: second\r\n\
\r\n\
body\r\n\
.\r\n\
BOGUS\r\n\
RSET\r\n\
RCPT TO:<x@x.test>\r\n\
DATA\r\n";
    let replies = exchange(&mut c, input, 14).await;
    let codes: Vec<&str> = replies.iter().map(|r| &r[..3]).collect();
    assert_eq!(
        codes,
        [
            "250", "250", "250", "354", "250", "250", "250", "250", "354", "250", "502", "250",
            "503", "503"
        ]
    );
    assert_eq!(&exchange(&mut c, b"DATA\r\n", 1).await[0][..3], "503");
    assert_eq!(&exchange(&mut c, b"QUIT\r\n", 1).await[0][..3], "221");

    let got = sink.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].mail_from, "sender@x.test");
    assert_eq!(got[0].rcpt_to, ["one@x.test", "two@x.test"]);
    assert_eq!(got[0].data, b"Subject: dots\r\n\r\n.leading dot\r\n");
    assert_eq!(got[1].mail_from, "");
    assert_eq!(got[1].subject(), "second");
    assert_eq!(got[1].text_body(), "body\r\n");
    assert_eq!(sink.attempts(), 2);
}

#[tokio::test]
async fn recipient_limit_and_disconnects_mid_transaction() {
    let sink = SmtpSink::start().await;
    let mut c = raw_connect(&sink).await;
    let mut input = b"HELO c\r\nMAIL FROM:<s@x.test>\r\n".to_vec();
    for i in 0..101 {
        input.extend_from_slice(format!("RCPT TO:<r{i}@x.test>\r\n").as_bytes());
    }
    let replies = exchange(&mut c, &input, 103).await;
    assert!(replies[..102].iter().all(|r| r.starts_with("250")));
    assert!(replies[102].starts_with("452"), "{}", replies[102]);
    // Start a message and vanish halfway.
    let r = exchange(&mut c, b"DATA\r\n", 1).await;
    assert!(r[0].starts_with("354"));
    c.get_mut()
        .write_all(b"Subject: half\r\n\r\nhalf a mess")
        .await
        .unwrap();
    drop(c);

    // Another client vanishes right after the greeting, one mid-command.
    drop(raw_connect(&sink).await);
    let mut c = raw_connect(&sink).await;
    c.get_mut().write_all(b"MAIL FR").await.unwrap();
    drop(c);

    // The sink still works and recorded nothing from those.
    transport(&sink).send(simple("ok@x.test", 1)).await.unwrap();
    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].subject(), "Bericht 1");
    assert_eq!(sink.attempts(), 1);
}

/// The sink itself keeps up with a benchmark: pipelined raw clients on a few
/// connections push thousands of messages through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn raw_pipelined_throughput() {
    const CONNS: usize = 4;
    const PER_CONN: usize = 1000;
    let sink = SmtpSink::start().await;
    let port = sink.port();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CONNS {
        tasks.spawn(async move {
            let (r, mut w) = TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap()
                .into_split();
            let mut input = b"EHLO bench\r\n".to_vec();
            for n in 0..PER_CONN {
                input.extend_from_slice(
                    format!(
                        "MAIL FROM:<s@x.test>\r\nRCPT TO:<r{c}@x.test>\r\nDATA\r\n\
                         Subject: m {c}-{n}\r\n\r\nbody\r\n.\r\n"
                    )
                    .as_bytes(),
                );
            }
            input.extend_from_slice(b"QUIT\r\n");
            // Write and read at once, so that neither side's buffers can fill up.
            let writer = tokio::spawn(async move {
                w.write_all(&input).await.unwrap();
                w
            });
            // greeting + EHLO + 4 replies per message + QUIT
            let expected = 3 + 4 * PER_CONN;
            let mut r = BufReader::new(r);
            let mut line = String::new();
            let (mut replies, mut last) = (0, String::new());
            while replies < expected {
                line.clear();
                assert!(r.read_line(&mut line).await.unwrap() > 0, "closed early");
                if line.as_bytes().get(3) == Some(&b' ') {
                    replies += 1;
                    last.clone_from(&line);
                }
            }
            assert!(last.starts_with("221"), "{last}");
            drop(writer.await.unwrap());
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let elapsed = started.elapsed();
    assert_eq!(sink.accepted_count(), CONNS * PER_CONN);
    assert_eq!(sink.received_for("r2@x.test").len(), PER_CONN);
    let rate = (CONNS * PER_CONN) as f64 / elapsed.as_secs_f64();
    eprintln!("{} messages in {elapsed:?}: {rate:.0}/s", CONNS * PER_CONN);
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
}

//! A real SMTP server for tests: it listens on 127.0.0.1, speaks plain ESMTP (no TLS,
//! no AUTH), records every message it accepts, and can be told to refuse recipients,
//! answer scripted failures at the end of DATA, stop listening for a while, answer
//! slowly, stall (accept connections and never answer), or demand authentication.
//!
//! One tokio task per connection; pipelined commands work; buffered I/O throughout, so
//! that a benchmark can push thousands of messages per second through it.

use mail_parser::{HeaderValue, Message, MessageParser, MimeHeaders, PartType};
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

/// The largest message the sink takes, as advertised in EHLO.
pub const MAX_SIZE: usize = 10_485_760;
/// The most recipients one transaction may have.
pub const MAX_RECIPIENTS: usize = 100;
/// The longest command line the sink reads before it gives up on the connection.
const MAX_LINE: usize = 64 * 1024;

/// A message the sink accepted (answered 250 at the end of DATA).
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    /// The reverse path of `MAIL FROM`, without angle brackets ("" for `<>`).
    pub mail_from: String,
    /// The forward paths of the accepted `RCPT TO` commands, without angle brackets.
    pub rcpt_to: Vec<String>,
    /// The raw RFC 5322 message after dot-unstuffing, without the final "." line.
    pub data: Vec<u8>,
    pub accepted_at: Instant,
}

impl ReceivedMail {
    pub fn parsed(&self) -> Message<'_> {
        MessageParser::default()
            .parse(&self.data)
            .expect("the sink received a message mail-parser can parse")
    }

    /// The decoded subject, or "".
    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_string()
    }

    /// The decoded first text/plain body part (not an attachment), or "".
    pub fn text_body(&self) -> String {
        let msg = self.parsed();
        msg.parts
            .iter()
            .find(|p| is_plain_text(p))
            .and_then(|p| p.text_contents())
            .unwrap_or_default()
            .to_string()
    }

    /// The decoded first text/html body part, or "".
    pub fn html_body(&self) -> String {
        let msg = self.parsed();
        msg.parts
            .iter()
            .find_map(|p| match &p.body {
                PartType::Html(html) => Some(html.to_string()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The raw value of the first top-level header of this name (case-insensitive),
    /// unfolded and trimmed; encoded words are left as they are.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }

    /// The raw values of every top-level header of this name, in order.
    pub fn headers(&self, name: &str) -> Vec<String> {
        let msg = self.parsed();
        msg.headers_raw()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| unfold(v))
            .collect()
    }

    /// The addresses in the `To` header.
    pub fn to_addresses(&self) -> Vec<String> {
        let msg = self.parsed();
        msg.to()
            .map(|a| {
                a.iter()
                    .filter_map(|a| a.address())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Everything a reader of the message could see, for "must not contain" checks:
    /// every header of every part raw and decoded, the decoded subject, and the decoded
    /// contents of every part (text, HTML, and attachments as lossy UTF-8), plus the raw
    /// message itself.
    pub fn all_decoded_text(&self) -> String {
        let msg = self.parsed();
        let mut out = String::with_capacity(self.data.len() * 3);
        collect_text(&msg, &mut out);
        out.push_str(&String::from_utf8_lossy(&self.data));
        out
    }
}

fn is_plain_text(p: &mail_parser::MessagePart<'_>) -> bool {
    matches!(p.body, PartType::Text(_))
        && p.content_type().is_none_or(|ct| {
            ct.ctype().eq_ignore_ascii_case("text")
                && ct.subtype().is_none_or(|s| s.eq_ignore_ascii_case("plain"))
        })
        && !p
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"))
}

fn unfold(raw: &str) -> String {
    raw.replace("\r\n", "").replace('\n', "").trim().to_string()
}

fn collect_text(msg: &Message<'_>, out: &mut String) {
    if let Some(s) = msg.subject() {
        out.push_str(s);
        out.push('\n');
    }
    for part in &msg.parts {
        for h in &part.headers {
            out.push_str(h.name.as_str());
            out.push_str(": ");
            if let Some(raw) = msg
                .raw_message
                .get(h.offset_start as usize..h.offset_end as usize)
            {
                out.push_str(&String::from_utf8_lossy(raw));
            }
            out.push('\n');
            decoded_header_value(&h.value, out);
        }
        match &part.body {
            PartType::Text(t) | PartType::Html(t) => out.push_str(t),
            PartType::Binary(b) | PartType::InlineBinary(b) => {
                out.push_str(&String::from_utf8_lossy(b))
            }
            PartType::Message(m) => collect_text(m, out),
            PartType::Multipart(_) => {}
        }
        out.push('\n');
    }
}

fn decoded_header_value(v: &HeaderValue<'_>, out: &mut String) {
    match v {
        HeaderValue::Text(t) => out.push_str(t),
        HeaderValue::TextList(l) => {
            for t in l {
                out.push_str(t);
                out.push(' ');
            }
        }
        HeaderValue::Address(a) => {
            for addr in a.iter() {
                if let Some(n) = addr.name() {
                    out.push_str(n);
                    out.push(' ');
                }
                if let Some(e) = addr.address() {
                    out.push_str(e);
                    out.push(' ');
                }
            }
        }
        HeaderValue::ContentType(ct) => {
            out.push_str(ct.ctype());
            for attr in ct.attributes().unwrap_or_default() {
                out.push(' ');
                out.push_str(&attr.name);
                out.push('=');
                out.push_str(&attr.value);
            }
        }
        HeaderValue::Received(_) | HeaderValue::DateTime(_) | HeaderValue::Empty => {}
    }
    out.push('\n');
}

/// How the sink answers a scripted DATA transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// 250: the message is accepted and recorded.
    Accept,
    /// 451: a transient failure; nothing is recorded.
    Transient,
    /// 550: a permanent failure; nothing is recorded.
    Permanent,
}

#[derive(Debug)]
struct Script {
    /// Lower-cased recipient, or "*".
    rcpt: String,
    remaining: usize,
    reply: Reply,
}

#[derive(Default)]
struct State {
    received: Vec<ReceivedMail>,
    scripts: VecDeque<Script>,
    refused: HashSet<String>,
}

struct Shared {
    state: Mutex<State>,
    attempts: AtomicUsize,
    accepted: AtomicUsize,
    connections: AtomicUsize,
    /// Every connection ever accepted.
    connections_total: AtomicUsize,
    accepted_notify: Notify,
    /// Milliseconds to wait before each reply.
    reply_delay_ms: AtomicU64,
    /// While set, nothing is answered: not the greeting, not a command.
    stalled: AtomicBool,
    /// While set, MAIL FROM is answered "530 Authentication required".
    require_auth: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not poison the sink for the others.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_refused(&self, rcpt: &str) -> bool {
        let st = self.lock();
        !st.refused.is_empty() && st.refused.contains(&rcpt.to_ascii_lowercase())
    }

    /// Waits as told before a reply: while stalled, then the reply delay.
    async fn before_reply(&self) {
        while self.stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let delay = self.reply_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
    }

    /// Counts the attempt and decides the reply; records the message when accepted.
    fn finish_data(&self, mail_from: &str, rcpt_to: &[String], data: Vec<u8>) -> Reply {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let mut st = self.lock();
        let mut reply = Reply::Accept;
        if !st.scripts.is_empty() {
            let hit = st.scripts.iter().position(|s| {
                s.remaining > 0
                    && (s.rcpt == "*" || rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(&s.rcpt)))
            });
            if let Some(i) = hit {
                let script = &mut st.scripts[i];
                script.remaining -= 1;
                reply = script.reply;
                if script.remaining == 0 {
                    st.scripts.remove(i);
                }
            }
        }
        if reply == Reply::Accept {
            st.received.push(ReceivedMail {
                mail_from: mail_from.to_string(),
                rcpt_to: rcpt_to.to_vec(),
                data,
                accepted_at: Instant::now(),
            });
            self.accepted.fetch_add(1, Ordering::SeqCst);
            drop(st);
            self.accepted_notify.notify_waiters();
        }
        reply
    }
}

struct Running {
    /// Bumped to end the accept loop and every open connection.
    stop: watch::Sender<u64>,
    accept: Option<JoinHandle<()>>,
}

/// A real SMTP server on 127.0.0.1 that records what it accepts. Dropping it stops it.
pub struct SmtpSink {
    shared: Arc<Shared>,
    addr: SocketAddr,
    running: Mutex<Running>,
}

impl SmtpSink {
    /// Binds 127.0.0.1:0 and starts serving.
    pub async fn start() -> SmtpSink {
        let listener =
            listen(SocketAddr::from(([127, 0, 0, 1], 0))).expect("the SMTP sink binds 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            attempts: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            connections_total: AtomicUsize::new(0),
            accepted_notify: Notify::new(),
            reply_delay_ms: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
            require_auth: AtomicBool::new(false),
        });
        let (stop, stop_rx) = watch::channel(0u64);
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), stop_rx));
        SmtpSink {
            shared,
            addr,
            running: Mutex::new(Running {
                stop,
                accept: Some(accept),
            }),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// "smtp://127.0.0.1:PORT"
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port())
    }

    /// Accepted messages only, in the order they were accepted.
    pub fn received(&self) -> Vec<ReceivedMail> {
        self.shared.lock().received.clone()
    }

    /// Accepted messages with this envelope recipient (case-insensitive).
    pub fn received_for(&self, rcpt: &str) -> Vec<ReceivedMail> {
        self.shared
            .lock()
            .received
            .iter()
            .filter(|m| m.rcpt_to.iter().any(|r| r.eq_ignore_ascii_case(rcpt)))
            .cloned()
            .collect()
    }

    /// Forgets the accepted messages (the counters stay).
    pub fn clear_received(&self) {
        self.shared.lock().received.clear();
    }

    /// Returns once at least `n` messages were accepted, or at the timeout with what
    /// there is (it never panics).
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.accepted_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.accepted.load(Ordering::SeqCst) >= n {
                return self.received();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.received();
            }
        }
    }

    /// The next `times` DATA transactions whose recipients include `rcpt` (any, when
    /// `rcpt` is "*") are answered with `reply` at the end of DATA instead of 250.
    /// Scripts are matched in the order they were given.
    pub fn script(&self, rcpt: &str, times: usize, reply: Reply) {
        if times == 0 {
            return;
        }
        self.shared.lock().scripts.push_back(Script {
            rcpt: rcpt.to_ascii_lowercase(),
            remaining: times,
            reply,
        });
    }

    /// Drops every pending script.
    pub fn clear_scripts(&self) {
        self.shared.lock().scripts.clear();
    }

    /// Every RCPT TO for this address (case-insensitive) is refused with 550 until
    /// [`SmtpSink::accept_recipient`] or [`SmtpSink::clear_refusals`].
    pub fn refuse_recipient(&self, rcpt: &str) {
        self.shared.lock().refused.insert(rcpt.to_ascii_lowercase());
    }

    pub fn accept_recipient(&self, rcpt: &str) {
        self.shared
            .lock()
            .refused
            .remove(&rcpt.to_ascii_lowercase());
    }

    pub fn clear_refusals(&self) {
        self.shared.lock().refused.clear();
    }

    /// Every reply (the greeting, each command, the end of DATA) comes `delay` late,
    /// as from a slow mail server. Zero turns it off.
    pub fn set_reply_delay(&self, delay: Duration) {
        self.shared
            .reply_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// While stalled, the sink accepts connections and reads what it is sent, but
    /// answers nothing, on new and open connections alike; replies held back go out
    /// when it is un-stalled (to clients that may have given up).
    pub fn set_stalled(&self, stalled: bool) {
        self.shared.stalled.store(stalled, Ordering::SeqCst);
    }

    /// While set, every MAIL FROM is answered `530 5.7.0 Authentication required`, as
    /// a server that demands AUTH does to a client that did not log in.
    pub fn set_require_auth(&self, require: bool) {
        self.shared.require_auth.store(require, Ordering::SeqCst);
    }

    /// DATA transactions that reached the end of DATA, accepted or not.
    pub fn attempts(&self) -> usize {
        self.shared.attempts.load(Ordering::SeqCst)
    }

    /// Accepted messages; cheap to poll.
    pub fn accepted_count(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections open right now.
    pub fn open_connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Connections accepted since the sink started, open or closed.
    pub fn connections_made(&self) -> usize {
        self.shared.connections_total.load(Ordering::SeqCst)
    }

    pub fn is_paused(&self) -> bool {
        self.lock_running().accept.is_none()
    }

    /// Stops listening and drops every open connection, so that clients see
    /// "connection refused" or a broken connection, until [`SmtpSink::resume`].
    pub async fn pause(&self) {
        let accept = {
            let mut running = self.lock_running();
            let Some(accept) = running.accept.take() else {
                return;
            };
            running.stop.send_modify(|v| *v += 1);
            accept
        };
        // The listener is closed once the accept task has ended.
        let _ = accept.await;
        // The connection tasks end on the same signal; wait until their sockets are gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.shared.connections.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Listens again, on the same port.
    pub async fn resume(&self) {
        if !self.is_paused() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match listen(self.addr) {
                Ok(l) => break l,
                // The port can linger for a moment: try again.
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("the SMTP sink cannot re-bind {}: {e}", self.addr),
            }
        };
        let mut running = self.lock_running();
        if running.accept.is_some() {
            return; // resumed concurrently
        }
        let stop_rx = running.stop.subscribe();
        running.accept = Some(tokio::spawn(accept_loop(
            listener,
            self.shared.clone(),
            stop_rx,
        )));
    }

    fn lock_running(&self) -> MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let mut running = self.lock_running();
        running.stop.send_modify(|v| *v += 1);
        if let Some(accept) = running.accept.take() {
            accept.abort();
        }
    }
}

/// Binds with a deep accept queue: tokio's `TcpListener::bind` uses a backlog of 128,
/// which a burst of a few hundred connections overflows (the dropped SYNs then wait
/// for a one-second retransmit).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<u64>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    let mut stop = stop.clone();
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    shared.connections_total.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(async move {
                        let _guard = ConnectionGuard(shared.clone());
                        tokio::select! {
                            _ = stop.changed() => {}
                            _ = serve(stream, &shared) => {}
                        }
                    });
                }
                // e.g. too many open files: back off a little and go on
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
    }
}

struct ConnectionGuard(Arc<Shared>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::SeqCst);
    }
}

const EHLO_REPLY: &[u8] = b"250-127.0.0.1 greets you\r\n\
250-PIPELINING\r\n\
250-8BITMIME\r\n\
250-SIZE 10485760\r\n\
250 SMTPUTF8\r\n";

/// One SMTP session. Returns on QUIT, end of stream or an I/O error.
async fn serve(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let acker = QuickAck::of(&stream);
    let (r, w) = stream.split();
    let mut reader = BufReader::with_capacity(64 * 1024, r);
    let mut writer = BufWriter::with_capacity(16 * 1024, w);
    shared.before_reply().await;
    writer
        .write_all(b"220 127.0.0.1 ESMTP schoolsignal test sink\r\n")
        .await?;
    writer.flush().await?;

    let mut line: Vec<u8> = Vec::with_capacity(512);
    let mut mail_from: Option<String> = None;
    let mut rcpt_to: Vec<String> = Vec::new();

    loop {
        // Pipelining: answer everything the client sent in one go with one write.
        if reader.buffer().is_empty() {
            writer.flush().await?;
        }
        line.clear();
        if read_line(&mut reader, &mut line).await? == 0 {
            return Ok(());
        }
        shared.before_reply().await;
        let cmd = trim_crlf(&line);
        let (verb, arg) = split_verb(cmd);

        if verb.eq_ignore_ascii_case(b"EHLO") {
            mail_from = None;
            rcpt_to.clear();
            writer.write_all(EHLO_REPLY).await?;
        } else if verb.eq_ignore_ascii_case(b"HELO") {
            mail_from = None;
            rcpt_to.clear();
            writer.write_all(b"250 127.0.0.1\r\n").await?;
        } else if verb.eq_ignore_ascii_case(b"MAIL") {
            // A new MAIL implicitly resets an unfinished transaction (lenient).
            rcpt_to.clear();
            mail_from = None;
            match parse_path(arg, b"FROM:") {
                Some(_) if shared.require_auth.load(Ordering::SeqCst) => {
                    writer
                        .write_all(b"530 5.7.0 Authentication required\r\n")
                        .await?;
                }
                Some((path, params)) => {
                    if declared_size(params).is_some_and(|s| s > MAX_SIZE) {
                        writer
                            .write_all(b"552 5.3.4 Message size exceeds fixed limit\r\n")
                            .await?;
                    } else {
                        mail_from = Some(path);
                        writer.write_all(b"250 2.1.0 OK\r\n").await?;
                    }
                }
                None => {
                    writer
                        .write_all(b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n")
                        .await?
                }
            }
        } else if verb.eq_ignore_ascii_case(b"RCPT") {
            if mail_from.is_none() {
                writer.write_all(b"503 5.5.1 Need MAIL first\r\n").await?;
            } else {
                match parse_path(arg, b"TO:") {
                    Some((path, _)) if !path.is_empty() => {
                        if rcpt_to.len() >= MAX_RECIPIENTS {
                            writer
                                .write_all(b"452 4.5.3 Too many recipients\r\n")
                                .await?;
                        } else if shared.is_refused(&path) {
                            writer
                                .write_all(b"550 5.1.1 Recipient address rejected\r\n")
                                .await?;
                        } else {
                            rcpt_to.push(path);
                            writer.write_all(b"250 2.1.5 OK\r\n").await?;
                        }
                    }
                    _ => {
                        writer
                            .write_all(b"501 5.5.4 Syntax: RCPT TO:<address>\r\n")
                            .await?
                    }
                }
            }
        } else if verb.eq_ignore_ascii_case(b"DATA") {
            let Some(from) = mail_from.take() else {
                writer.write_all(b"503 5.5.1 Need MAIL first\r\n").await?;
                continue;
            };
            if rcpt_to.is_empty() {
                writer
                    .write_all(b"554 5.5.1 No valid recipients\r\n")
                    .await?;
                continue;
            }
            writer
                .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                .await?;
            writer.flush().await?;
            let Some((data, too_big)) = read_data(&mut reader, &mut line, &acker).await? else {
                return Ok(()); // the client went away mid-message
            };
            let rcpts = std::mem::take(&mut rcpt_to);
            shared.before_reply().await;
            if too_big {
                shared.attempts.fetch_add(1, Ordering::SeqCst);
                writer
                    .write_all(b"552 5.3.4 Message size exceeds fixed limit\r\n")
                    .await?;
                continue;
            }
            let reply = match shared.finish_data(&from, &rcpts, data) {
                Reply::Accept => &b"250 2.0.0 OK: queued\r\n"[..],
                Reply::Transient => {
                    &b"451 4.3.0 Temporary failure (scripted), try again later\r\n"[..]
                }
                Reply::Permanent => &b"550 5.7.1 Message rejected (scripted)\r\n"[..],
            };
            writer.write_all(reply).await?;
        } else if verb.eq_ignore_ascii_case(b"RSET") {
            mail_from = None;
            rcpt_to.clear();
            writer.write_all(b"250 2.0.0 OK\r\n").await?;
        } else if verb.eq_ignore_ascii_case(b"NOOP") {
            writer.write_all(b"250 2.0.0 OK\r\n").await?;
        } else if verb.eq_ignore_ascii_case(b"QUIT") {
            writer.write_all(b"221 2.0.0 Bye\r\n").await?;
            writer.flush().await?;
            let _ = writer.shutdown().await;
            return Ok(());
        } else if verb.is_empty() {
            writer.write_all(b"500 5.5.2 Syntax error\r\n").await?;
        } else {
            writer
                .write_all(b"502 5.5.2 Command not implemented\r\n")
                .await?;
        }
    }
}

/// Reads one line (up to and including '\n'); fails on absurdly long lines.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<usize> {
    let n = (&mut *reader)
        .take(MAX_LINE as u64)
        .read_until(b'\n', line)
        .await?;
    if n == MAX_LINE && line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "SMTP line too long",
        ));
    }
    Ok(n)
}

/// Reads the message after 354 until the "." line, dot-unstuffing. Returns None when
/// the stream ends first; `true` when the message exceeded [`MAX_SIZE`] (then the
/// data is discarded).
async fn read_data(
    reader: &mut BufReader<tokio::net::tcp::ReadHalf<'_>>,
    line: &mut Vec<u8>,
    acker: &QuickAck,
) -> std::io::Result<Option<(Vec<u8>, bool)>> {
    let mut data = Vec::with_capacity(8 * 1024);
    let mut too_big = false;
    loop {
        if reader.buffer().is_empty() {
            // About to wait for more of the message: acknowledge what came so far now.
            acker.ack_now();
        }
        line.clear();
        // Message lines may be long (bodies without line breaks); read to the newline.
        if reader.read_until(b'\n', line).await? == 0 || line.last() != Some(&b'\n') {
            return Ok(None);
        }
        if line.as_slice() == b".\r\n" || line.as_slice() == b".\n" {
            return Ok(Some((data, too_big)));
        }
        if too_big {
            continue;
        }
        let content = if line.first() == Some(&b'.') {
            &line[1..]
        } else {
            &line[..]
        };
        if data.len() + content.len() > MAX_SIZE {
            too_big = true;
            data = Vec::new();
        } else {
            data.extend_from_slice(content);
        }
    }
}

/// Sends a pending delayed ACK at once (Linux `TCP_QUICKACK`).
///
/// lettre does not set `TCP_NODELAY`, and it writes a message and the final
/// "\r\n.\r\n" in two writes: Nagle holds the second until the first is acknowledged,
/// and the kernel delays that ACK by 40 ms, which would cap every connection at about
/// 25 messages a second. Acknowledging before waiting for the rest of the message
/// releases the terminator at once. (The std API for this is unstable and no libc
/// crate is a dependency, hence the declaration of `setsockopt` here.)
struct QuickAck {
    #[cfg(target_os = "linux")]
    fd: std::os::fd::RawFd,
}

impl QuickAck {
    fn of(stream: &TcpStream) -> Self {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            QuickAck {
                fd: stream.as_raw_fd(),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = stream;
            QuickAck {}
        }
    }

    fn ack_now(&self) {
        #[cfg(target_os = "linux")]
        {
            use std::ffi::{c_int, c_void};
            extern "C" {
                fn setsockopt(
                    socket: c_int,
                    level: c_int,
                    name: c_int,
                    value: *const c_void,
                    len: u32,
                ) -> c_int;
            }
            const IPPROTO_TCP: c_int = 6;
            const TCP_QUICKACK: c_int = 12;
            let one: c_int = 1;
            // SAFETY: `fd` is the open socket of the stream this connection task owns
            // (it outlives every call), and `one` is a valid c_int for the call.
            // Failure only means the ACK stays delayed.
            unsafe {
                setsockopt(
                    self.fd,
                    IPPROTO_TCP,
                    TCP_QUICKACK,
                    (&one as *const c_int).cast(),
                    std::mem::size_of::<c_int>() as u32,
                );
            }
        }
    }
}

fn trim_crlf(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn split_verb(cmd: &[u8]) -> (&[u8], &[u8]) {
    match cmd.iter().position(|&b| b == b' ') {
        Some(i) => (&cmd[..i], trim_ascii_start(&cmd[i + 1..])),
        None => (cmd, &[]),
    }
}

fn trim_ascii_start(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    &s[start..]
}

/// Parses `FROM:<path> params` / `TO:<path> params`: the path without brackets, and
/// the parameters.
fn parse_path<'a>(arg: &'a [u8], keyword: &[u8]) -> Option<(String, &'a [u8])> {
    if arg.len() < keyword.len() || !arg[..keyword.len()].eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = trim_ascii_start(&arg[keyword.len()..]);
    let (path, params) = if let Some(inner) = rest.strip_prefix(b"<") {
        let end = inner.iter().position(|&b| b == b'>')?;
        (&inner[..end], &inner[end + 1..])
    } else {
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        (&rest[..end], &rest[end..])
    };
    let path = std::str::from_utf8(path).ok()?.trim();
    // A source route (@a,@b:user@host) is ignored, as RFC 5321 allows.
    let path = match path.rfind(':') {
        Some(i) if path.starts_with('@') => &path[i + 1..],
        _ => path,
    };
    Some((path.to_string(), trim_ascii_start(params)))
}

/// The `SIZE=` parameter of MAIL FROM, if any.
fn declared_size(params: &[u8]) -> Option<usize> {
    params
        .split(|&b| b == b' ')
        .find(|p| p.len() > 5 && p[..5].eq_ignore_ascii_case(b"SIZE="))
        .and_then(|p| std::str::from_utf8(&p[5..]).ok()?.parse().ok())
}

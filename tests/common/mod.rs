//! Shared harness for the integration tests: a real SMTP server on 127.0.0.1 (in
//! process, from `mailin-embedded`; plain, or with STARTTLS and a login to check), a
//! temporary config directory and SQLite file, and the real `followup` binary started
//! as a daemon that reports READY=1 over a notify socket the harness owns (no polling
//! for readiness).

#![allow(dead_code)]

pub mod browser;
pub mod http;
pub mod pages;
pub mod postgres;
#[macro_use]
pub mod store;

use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::{Duration, Instant, SystemTime};

use mailin_embedded::response::{AUTH_OK, INVALID_CREDENTIALS, NO_MAILBOX, OK, OUT_OF_SPACE};
use mailin_embedded::{AuthMechanism, Handler, Response, Server, SslConfig};

/// One message as the SMTP server received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// MAIL FROM.
    pub from: String,
    /// RCPT TO, in order.
    pub to: Vec<String>,
    /// The message as received, after SMTP dot-unstuffing.
    pub data: Vec<u8>,
    /// When the server had the whole message.
    pub at: SystemTime,
}

impl Received {
    /// The message parsed.
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(&self.data)
            .expect("a parseable message")
    }

    /// The decoded subject.
    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_string()
    }

    /// The decoded plain-text body.
    pub fn text(&self) -> String {
        self.parsed()
            .body_text(0)
            .map(|t| t.into_owned())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Inbox {
    messages: Vec<Received>,
    rejected: Vec<String>,
    deferred: Vec<String>,
    stall: Option<Duration>,
    /// Messages whose data arrived and that the stall holds unanswered.
    stalling: usize,
}

#[derive(Clone)]
struct Session {
    inbox: Arc<(Mutex<Inbox>, Condvar)>,
    /// The only user and password accepted, when the server requires a login.
    login: Option<(String, String)>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Session {
    fn check_login(&self, user: &str, password: &str) -> Response {
        match &self.login {
            Some((u, p)) if u == user && p == password => AUTH_OK,
            _ => INVALID_CREDENTIALS,
        }
    }
}

impl Handler for Session {
    fn auth_plain(&mut self, _authorization: &str, user: &str, password: &str) -> Response {
        self.check_login(user, password)
    }

    fn auth_login(&mut self, user: &str, password: &str) -> Response {
        self.check_login(user, password)
    }

    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, from: &str) -> Response {
        self.from = from.to_string();
        self.to.clear();
        self.data.clear();
        OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let inbox = self.inbox.0.lock().unwrap();
        if inbox.rejected.iter().any(|r| r == to) {
            return NO_MAILBOX;
        }
        if inbox.deferred.iter().any(|r| r == to) {
            return OUT_OF_SPACE;
        }
        self.to.push(to.to_string());
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let stall = {
            let mut inbox = self.inbox.0.lock().unwrap();
            inbox.stalling += inbox.stall.is_some() as usize;
            inbox.stall
        };
        if let Some(stall) = stall {
            self.inbox.1.notify_all();
            std::thread::sleep(stall);
        }
        let (lock, ready) = &*self.inbox;
        lock.lock().unwrap().messages.push(Received {
            from: self.from.clone(),
            to: self.to.clone(),
            data: std::mem::take(&mut self.data),
            at: SystemTime::now(),
        });
        ready.notify_all();
        OK
    }
}

/// A real SMTP server on 127.0.0.1, on a port of its own, recording what it receives.
pub struct SmtpServer {
    /// The port it listens on.
    pub port: u16,
    inbox: Arc<(Mutex<Inbox>, Condvar)>,
}

impl SmtpServer {
    /// Starts a plain server on a free port; it runs until the test process ends.
    pub fn start() -> SmtpServer {
        SmtpServer::start_on(0)
    }

    /// Starts the server on `port` (0 for any free one).
    pub fn start_on(port: u16) -> SmtpServer {
        SmtpServer::serve(port, None, |_| {})
    }

    /// Starts a server that offers STARTTLS with a self-signed certificate for
    /// 127.0.0.1 (written into `dir`) and takes mail only after AUTH PLAIN or LOGIN as
    /// `user` with `password`.
    pub fn start_with_login(dir: &Path, user: &str, password: &str) -> SmtpServer {
        let certified = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_string(),
            "localhost".to_string(),
        ])
        .unwrap();
        let cert_path = dir.join("smtp-cert.pem");
        let key_path = dir.join("smtp-key.pem");
        std::fs::write(&cert_path, certified.cert.pem()).unwrap();
        std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();
        // The server's TLS uses rustls's process-wide provider; lettre in the binary
        // under test chooses its own.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let login = Some((user.to_string(), password.to_string()));
        SmtpServer::serve(0, login, |server| {
            server
                .with_ssl(SslConfig::SelfSigned {
                    cert_path: cert_path.display().to_string(),
                    key_path: key_path.display().to_string(),
                })
                .unwrap()
                .with_auth(AuthMechanism::Plain)
                .with_auth(AuthMechanism::Login);
        })
    }

    fn serve(
        port: u16,
        login: Option<(String, String)>,
        configure: impl FnOnce(&mut Server<Session>),
    ) -> SmtpServer {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let inbox: Arc<(Mutex<Inbox>, Condvar)> = Arc::default();
        let session = Session {
            inbox: inbox.clone(),
            login,
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        };
        let mut server = Server::new(session);
        server
            .with_name("test.localhost")
            .with_num_threads(16)
            .with_tcp_listener(listener);
        configure(&mut server);
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpServer { port, inbox }
    }

    /// Answers 550 to RCPT TO for `address` from now on.
    pub fn reject(&self, address: &str) {
        self.inbox
            .0
            .lock()
            .unwrap()
            .rejected
            .push(address.to_string());
    }

    /// Answers 452 (a temporary failure) to RCPT TO for `address` until [`Self::undefer`].
    pub fn defer(&self, address: &str) {
        self.inbox
            .0
            .lock()
            .unwrap()
            .deferred
            .push(address.to_string());
    }

    /// Takes mail for `address` again after [`Self::defer`].
    pub fn undefer(&self, address: &str) {
        self.inbox
            .0
            .lock()
            .unwrap()
            .deferred
            .retain(|a| a != address);
    }

    /// Holds every message this long after its data before answering.
    pub fn stall(&self, how_long: Duration) {
        self.inbox.0.lock().unwrap().stall = Some(how_long);
    }

    /// Everything received so far.
    pub fn messages(&self) -> Vec<Received> {
        self.inbox.0.lock().unwrap().messages.clone()
    }

    /// Waits until at least `count` messages arrived or `timeout` passed; returns what
    /// arrived.
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let (lock, ready) = &*self.inbox;
        let deadline = Instant::now() + timeout;
        let mut inbox = lock.lock().unwrap();
        while inbox.messages.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            inbox = ready.wait_timeout(inbox, left).unwrap().0;
        }
        inbox.messages.clone()
    }

    /// Waits until what arrived satisfies `done`; panics, naming `what`, after
    /// `timeout`. Returns what arrived.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let (lock, ready) = &*self.inbox;
        let deadline = Instant::now() + timeout;
        let mut inbox = lock.lock().unwrap();
        while !done(&inbox.messages) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{what}: not within {timeout:?}; got {} messages",
                inbox.messages.len()
            );
            inbox = ready.wait_timeout(inbox, left).unwrap().0;
        }
        inbox.messages.clone()
    }

    /// Waits until `count` messages are held by [`SmtpServer::stall`], their data
    /// received and their answer not given; panics after `timeout`.
    pub fn wait_stalled(&self, count: usize, timeout: Duration) {
        let (lock, ready) = &*self.inbox;
        let deadline = Instant::now() + timeout;
        let mut inbox = lock.lock().unwrap();
        while inbox.stalling < count {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{count} messages stalled within {timeout:?}"
            );
            inbox = ready.wait_timeout(inbox, left).unwrap().0;
        }
    }
}

/// A calendar open every hour of every day, so that customer mail in tests never waits
/// for business hours unless a test says so.
pub const ALWAYS_OPEN: &str = r#"[calendar]
timezone = "Europe/London"
business_hours = { mon = "00:00-24:00", tue = "00:00-24:00", wed = "00:00-24:00", thu = "00:00-24:00", fri = "00:00-24:00", sat = "00:00-24:00", sun = "00:00-24:00" }"#;

/// A `[business]` table with every key but `reply_to`, for customer mail.
pub const BUSINESS: &str = r#"
[business]
name = "Mensah Plumbing"
phone = "+44 20 7946 0018"
website = "https://plumbing.example.com"
signature = "12 High Street, London"
"#;

/// Checks `raw` against the syntax of RFC 5322 strictly: CRLF line endings only, no
/// line over 998 octets, a header section of well-formed fields in printable US-ASCII,
/// an empty line before the body, and a 7-bit body where the message says 7bit. Returns
/// the header field names in order, lower-cased.
pub fn strict_rfc5322(raw: &[u8]) -> Vec<String> {
    for (i, b) in raw.iter().enumerate() {
        match b {
            b'\n' => assert!(i > 0 && raw[i - 1] == b'\r', "bare LF at octet {i}"),
            b'\r' => assert!(raw.get(i + 1) == Some(&b'\n'), "bare CR at octet {i}"),
            0 => panic!("NUL at octet {i}"),
            _ => {}
        }
    }
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("an empty line between header and body");
    let mut names = Vec::new();
    for line in head.split("\r\n") {
        assert!(line.len() <= 998, "header line over 998 octets: {line:?}");
        assert!(
            line.bytes().all(|b| b == b'\t' || (32..127).contains(&b)),
            "header line with other than printable US-ASCII: {line:?}"
        );
        if line.starts_with(' ') || line.starts_with('\t') {
            assert!(
                !names.is_empty(),
                "continuation line before any field: {line:?}"
            );
            continue;
        }
        let (name, _) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("header line without a colon: {line:?}"));
        assert!(
            !name.is_empty() && name.bytes().all(|b| (33..127).contains(&b) && b != b':'),
            "malformed field name {name:?}"
        );
        names.push(name.to_ascii_lowercase());
    }
    for line in body.split("\r\n") {
        assert!(line.len() <= 998, "body line over 998 octets");
    }
    if head
        .to_ascii_lowercase()
        .contains("content-transfer-encoding: 7bit")
    {
        assert!(body.is_ascii(), "8-bit octets in a 7bit body");
    }
    names
}

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_followup")
}

/// A temporary installation: config directory, store and an SMTP server.
pub struct Env {
    /// Holds every file of the test.
    pub root: tempfile::TempDir,
    /// The SMTP server the config points at.
    pub smtp: SmtpServer,
    /// The test clock's file, once [`Env::use_test_clock`] made one: the daemon and
    /// every command then read the time from it.
    clock: std::sync::OnceLock<PathBuf>,
    /// Where the commitments are kept.
    pub store: store::Store,
}

impl Env {
    /// An installation sending through SMTP to a fresh server, with `rules` (TOML for
    /// `[[rule]]` blocks and any extra tables) in `rules.toml`.
    pub fn new(rules: &str) -> Env {
        Env::on(store::Store::Sqlite, rules)
    }

    /// An installation like [`Env::new`] whose commitments are kept in `store`.
    pub fn on(store: store::Store, rules: &str) -> Env {
        Env::with_calendar_on(store, rules, ALWAYS_OPEN)
    }

    /// An installation like [`Env::new`] with `calendar` as the `[calendar]` table.
    pub fn with_calendar(rules: &str, calendar: &str) -> Env {
        Env::with_calendar_on(store::Store::Sqlite, rules, calendar)
    }

    /// An installation like [`Env::with_calendar`] whose commitments are kept in `store`.
    pub fn with_calendar_on(store: store::Store, rules: &str, calendar: &str) -> Env {
        let smtp = SmtpServer::start();
        let root = tempfile::tempdir().unwrap();
        let env = Env {
            root,
            smtp,
            clock: std::sync::OnceLock::new(),
            store,
        };
        std::fs::create_dir_all(env.config_dir()).unwrap();
        env.write_main_config(calendar, env.smtp.port, "tls = \"none\"\n");
        env.write_config("rules.toml", rules);
        env
    }

    /// Writes `followup.toml`: this installation's store, and mail through the SMTP
    /// server on 127.0.0.1:`port` with `smtp` (more `[mail.smtp]` keys, one a line).
    pub fn write_smtp_config(&self, port: u16, smtp: &str) {
        self.write_main_config(ALWAYS_OPEN, port, smtp);
    }

    fn write_main_config(&self, calendar: &str, port: u16, smtp: &str) {
        self.write_config(
            "followup.toml",
            &format!(
                r#"
{store}
{calendar}

[mail]
from = "Followup <followup@example.com>"
transport = "smtp"

[web]
listen = "127.0.0.1:0"

[mail.smtp]
host = "127.0.0.1"
port = {port}
{smtp}"#,
                store = self.store.table(&self.db_path()),
            ),
        );
    }

    /// The config directory.
    pub fn config_dir(&self) -> PathBuf {
        self.root.path().join("config")
    }

    /// The SQLite file (none on PostgreSQL).
    pub fn db_path(&self) -> PathBuf {
        self.root.path().join("state").join("followup.db")
    }

    /// Rewrites a file of the config directory with `edit`.
    pub fn edit_config(&self, name: &str, edit: impl FnOnce(String) -> String) {
        let path = self.config_dir().join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(path, edit(text)).unwrap();
    }

    /// Adds `lines` to the `[mail]` table.
    pub fn mail_options(&self, lines: &str) {
        self.edit_config("followup.toml", |t| {
            t.replace(
                "transport = \"smtp\"",
                &format!("transport = \"smtp\"\n{lines}"),
            )
        });
    }

    /// Adds `lines` to the `[mail.smtp]` table.
    pub fn smtp_options(&self, lines: &str) {
        self.edit_config("followup.toml", |t| {
            t.replace("tls = \"none\"", &format!("tls = \"none\"\n{lines}"))
        });
    }

    /// Writes (or replaces) a file in the config directory.
    pub fn write_config(&self, name: &str, text: &str) {
        let path = self.config_dir().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Runs the CLI with `args` against this installation.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_with(args, &[])
    }

    /// Runs the CLI with `args` and extra environment variables.
    pub fn cli_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(binary())
            .arg("--config")
            .arg(self.config_dir())
            .args(args)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("CREDENTIALS_DIRECTORY")
            .envs(self.clock_env())
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    /// From now on the daemon and every command of this installation run on a test
    /// clock reading `start`, which moves only by [`Env::set_clock`] and
    /// [`Env::advance`]. Call it before starting the daemon.
    pub fn use_test_clock(&self, start: jiff::Timestamp) {
        let path = self.root.path().join("clock");
        std::fs::write(&path, start.to_string()).unwrap();
        self.clock
            .set(path)
            .expect("one test clock per installation");
    }

    /// Sets the test clock to `at`. The file is replaced in one rename, so the daemon
    /// never reads half a time; it wakes for it at once.
    pub fn set_clock(&self, at: jiff::Timestamp) {
        let path = self
            .clock
            .get()
            .expect("a test clock (Env::use_test_clock)");
        let next = path.with_extension("next");
        std::fs::write(&next, at.to_string()).unwrap();
        std::fs::rename(&next, path).unwrap();
    }

    /// Moves the test clock `by` forward.
    pub fn advance(&self, by: Duration) {
        self.set_clock(self.now() + jiff::SignedDuration::try_from(by).unwrap());
    }

    /// The time as this installation sees it: the test clock if there is one, else the
    /// host's.
    pub fn now(&self) -> jiff::Timestamp {
        match self.clock.get() {
            Some(path) => std::fs::read_to_string(path)
                .unwrap()
                .trim()
                .parse()
                .unwrap(),
            None => jiff::Timestamp::now(),
        }
    }

    /// The environment that puts a process of this installation on its test clock.
    pub fn clock_env(&self) -> Vec<(&'static str, PathBuf)> {
        self.clock
            .get()
            .map(|path| ("FOLLOWUP_TEST_CLOCK", path.clone()))
            .into_iter()
            .collect()
    }

    /// Runs the CLI and returns stdout, failing the test if the command fails.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        succeeded(&format!("followup {args:?}"), self.cli(args))
    }

    /// Runs the CLI and returns stderr, failing the test unless the command failed
    /// with exit code 1.
    pub fn cli_fails(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert_eq!(
            out.status.code(),
            Some(1),
            "followup {args:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `followup add` with the given due time and extra flags; returns the id.
    pub fn add(&self, title: &str, due: &str, extra: &[&str]) -> i64 {
        self.add_to("Joe Mensah <joe@example.org>", title, due, extra)
    }

    /// `followup add` of a promise to `customer`, owned by Ana Ruiz; returns the id.
    pub fn add_for(&self, customer: &str, title: &str, due: &str) -> i64 {
        self.add_to(customer, title, due, &[])
    }

    fn add_to(&self, customer: &str, title: &str, due: &str, extra: &[&str]) -> i64 {
        let mut args = vec![
            "add",
            "--title",
            title,
            "--owner",
            "Ana Ruiz <ana@example.com>",
            "--customer",
            customer,
            "--due",
            due,
        ];
        args.extend_from_slice(extra);
        self.cli_ok(&args).trim().parse().unwrap()
    }

    /// `followup show ID --format json`, parsed.
    pub fn show(&self, id: i64) -> serde_json::Value {
        serde_json::from_str(&self.cli_ok(&["show", &id.to_string(), "--format", "json"])).unwrap()
    }

    /// A connection of its own to the store, as another program would open it; the store
    /// is created first if no command has created it yet.
    pub fn db(&self) -> rusqlite::Connection {
        assert!(
            matches!(self.store, store::Store::Sqlite),
            "a SQLite connection to a PostgreSQL store: use Env::sql"
        );
        followup::store::open(&followup::store::Location::Sqlite(self.db_path())).unwrap();
        let conn = rusqlite::Connection::open(self.db_path()).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn
    }

    /// A connection of its own to the store, whichever backend it is on, as another
    /// program would open it; the store is created first if no command has yet.
    pub fn sql(&self) -> store::Sql {
        self.store.connect(&self.db_path())
    }

    /// Where the daemon finds the store.
    pub fn location(&self) -> followup::store::Location {
        self.store.location(&self.db_path())
    }

    /// Starts the daemon (on the test clock, if there is one) and waits for READY=1.
    pub fn start(&self) -> Daemon {
        let clock = self.clock_env();
        let clock: Vec<(&str, &str)> = clock
            .iter()
            .map(|(k, v)| (*k, v.to_str().unwrap()))
            .collect();
        Daemon::start(self.root.path(), &self.config_dir(), &clock)
    }
}

/// Held by the tests that load the machine most (bulk writes, a burst of sends) so
/// that no two of them run at once: on a 2-core machine two together, beside the
/// other tests, can keep a store's write lock busy past a command's busy timeout.
pub fn heavy() -> std::sync::MutexGuard<'static, ()> {
    static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HEAVY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Waits until `probe` gives a value, looking every few milliseconds; panics, naming
/// `what`, after `timeout`. For what no bell announces (a row, a file); the deadline is
/// generous, not a measure of speed.
pub fn wait_until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lets the wall clock reach `moment`: for a test that needs time to pass while no
/// daemon runs (downtime), where there is no event to wait for.
pub fn wait_for_moment(moment: SystemTime) {
    if let Ok(left) = moment.duration_since(SystemTime::now()) {
        std::thread::sleep(left);
    }
}

/// Where the tests on a test clock start: a Monday morning, 09:00 in London.
pub fn monday_morning() -> jiff::Timestamp {
    "2027-03-01T09:00:00Z".parse().unwrap()
}

/// Milliseconds since the Unix epoch, as the store keeps times.
pub fn epoch_ms(at: SystemTime) -> i64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The moment `ms` milliseconds after the Unix epoch.
pub fn from_epoch_ms(ms: i64) -> SystemTime {
    std::time::UNIX_EPOCH + Duration::from_millis(ms as u64)
}

impl Env {
    /// Waits until the daemon has nothing left to do now: every change planned, no
    /// email waiting in the outbox (on a test clock: none whose time has come; the
    /// clock stands still), no step whose time has come still planned or queued. What
    /// has not been sent by then was decided against; panics after `timeout`.
    pub fn wait_idle(&self, timeout: Duration) {
        let mut db = self.sql();
        wait_until("the daemon's work done", timeout, || {
            let now = self.now().as_millisecond();
            // Without a test clock every waiting email counts, whenever its next attempt.
            let outbox = match self.clock.get() {
                Some(_) => format!("AND next_attempt_at <= {now}"),
                None => String::new(),
            };
            let busy = db.count(&format!(
                "SELECT (SELECT COUNT(*) FROM changes)
                      + (SELECT COUNT(*) FROM deliveries
                         WHERE state IN ('pending', 'waiting') {outbox})
                      + (SELECT COUNT(*) FROM steps
                         WHERE state IN ('planned', 'queued') AND fire_at <= {now})"
            ));
            (busy == 0).then_some(())
        });
    }

    /// Waits until commitment `id` has been planned (it has steps and no change of it
    /// waits) and no step of it is planned or queued any more: each was sent, failed or
    /// skipped. Panics after `timeout`.
    pub fn wait_timeline_done(&self, id: i64, timeout: Duration) {
        let mut db = self.sql();
        let sql = format!(
            "SELECT (SELECT COUNT(*) FROM steps WHERE commitment_id = {id}),
                    (SELECT COUNT(*) FROM steps
                     WHERE commitment_id = {id} AND state IN ('planned', 'queued')),
                    (SELECT COUNT(*) FROM changes WHERE commitment_id = {id})"
        );
        wait_until("every step of the timeline done", timeout, || {
            let row = &db.rows(&sql)[0];
            let n = |i: usize| -> i64 { row[i].as_deref().unwrap().parse().unwrap() };
            (n(0) > 0 && n(1) == 0 && n(2) == 0).then_some(())
        });
    }

    /// On a test clock, the time of the next step still to fire, if any.
    pub fn next_step_at(&self) -> Option<jiff::Timestamp> {
        self.sql()
            .int("SELECT MIN(fire_at) FROM steps WHERE state IN ('planned', 'queued')")
            .map(|ms| jiff::Timestamp::from_millisecond(ms).unwrap())
    }

    /// Waits until every change written to the store so far has been planned.
    pub fn wait_planned(&self, timeout: Duration) {
        let mut db = self.sql();
        wait_until("every change planned", timeout, || {
            (db.count("SELECT COUNT(*) FROM changes") == 0).then_some(())
        });
    }
}

/// A running `followup run`, stopped with SIGTERM when dropped.
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
    /// The notify messages, with their arrival times, as a thread of the harness reads
    /// them off the socket: the daemon's sends never wait on a full socket (it holds
    /// ten datagrams), whether or not the test is looking.
    notify: mpsc::Receiver<(Instant, String)>,
    /// Every notify message received so far.
    pub notices: Vec<String>,
}

impl Daemon {
    /// Starts `followup --config DIR run` with a notify socket in `root`, and waits up
    /// to 20 s for READY=1.
    pub fn start(root: &Path, config_dir: &Path, env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(root, config_dir, env, false)
    }

    /// Like [`Daemon::start`], with stderr passed as systemd passes the journal stream:
    /// `JOURNAL_STREAM` names the log file's device and inode.
    pub fn start_under_journal(root: &Path, config_dir: &Path, env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(root, config_dir, env, true)
    }

    fn spawn(root: &Path, config_dir: &Path, env: &[(&str, &str)], journal: bool) -> Daemon {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        static STARTS: AtomicUsize = AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let socket_path = root.join(format!("notify-{n}.sock"));
        let _ = std::fs::remove_file(&socket_path);
        let notify = UnixDatagram::bind(&socket_path).unwrap();
        // Writable for all, as systemd's is, so a daemon that became the store's owner
        // still reaches it.
        std::fs::set_permissions(&socket_path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let log_path = root.join(format!("daemon-{n}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let mut command = Command::new(binary());
        command
            .arg("--config")
            .arg(config_dir)
            .arg("run")
            .env("NOTIFY_SOCKET", &socket_path)
            .env("RUST_LOG", "trace,rusqlite_migration=info")
            .env_remove("JOURNAL_STREAM")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID");
        if journal {
            let meta = log.metadata().unwrap();
            command.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        }
        let child = command
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut daemon = Daemon {
            child: Some(child),
            log: log_path,
            notify: read_notices(notify),
            notices: Vec::new(),
        };
        daemon.wait_notice("READY=1", Duration::from_secs(20));
        daemon
    }

    /// Waits for a notify message containing `needle`; panics after `timeout`.
    pub fn wait_notice(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {needle} within {timeout:?}; got {:?}",
                self.notices
            );
            if let Ok((_, text)) = self.notify.recv_timeout(left)
                && !text.is_empty()
            {
                self.notices.push(text.clone());
                if text.lines().any(|l| l == needle || l.starts_with(needle)) {
                    return text;
                }
            }
        }
    }

    /// Every notify message that arrives within `window`, with its arrival time; with
    /// a zero window, those already received.
    pub fn notices_within(&mut self, window: Duration) -> Vec<(Instant, String)> {
        let deadline = Instant::now() + window;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                while let Ok((at, text)) = self.notify.try_recv() {
                    if text.is_empty() {
                        continue;
                    }
                    self.notices.push(text.clone());
                    got.push((at, text));
                }
                return got;
            }
            if let Ok((at, text)) = self.notify.recv_timeout(left)
                && !text.is_empty()
            {
                self.notices.push(text.clone());
                got.push((at, text));
            }
        }
    }

    /// The first status line after the start, sent once the first planning pass is
    /// over: whatever was due at the start has been dealt with (queued, skipped or
    /// made up) by then. Panics after `timeout`.
    pub fn wait_first_pass(&mut self, timeout: Duration) -> String {
        let passed = |text: &str| {
            text.lines()
                .any(|l| l.starts_with("STATUS=") && !l.starts_with("STATUS=serving"))
        };
        if let Some(seen) = self.notices.iter().find(|n| passed(n)) {
            return seen.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let text = self.wait_notice("STATUS=", left);
            if passed(&text) {
                return text;
            }
        }
    }

    /// Sends SIGTERM and waits for the exit; panics if the process is still there after
    /// `timeout`.
    pub fn stop_within(mut self, timeout: Duration) -> std::process::ExitStatus {
        self.signal("TERM");
        let child = self.child.as_mut().unwrap();
        let status = wait_until("the daemon's exit after SIGTERM", timeout, || {
            child.try_wait().unwrap()
        });
        self.child = None;
        status
    }

    /// What the daemon has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The file the daemon logs to; it stays after the daemon is gone.
    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends `signal` (e.g. "TERM", "HUP", "KILL").
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        self.child.take().unwrap().wait().unwrap()
    }

    /// Waits for the process to exit (after a signal) and returns its status.
    pub fn wait_exit(mut self) -> std::process::ExitStatus {
        self.child.take().unwrap().wait().unwrap()
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill(mut self) {
        self.signal("KILL");
        let _ = self.child.take().unwrap().wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!(
                "--- daemon log {} ---\n{log}--- end of daemon log ---",
                self.log.display()
            );
        }
    }
}

/// Reads `socket` on a thread of its own until the receiver is dropped.
fn read_notices(socket: UnixDatagram) -> mpsc::Receiver<(Instant, String)> {
    let (send, receive) = mpsc::channel();
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match socket.recv(&mut buf) {
                Ok(n) => {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    if send.send((Instant::now(), text)).is_err() {
                        return;
                    }
                }
                // Nothing for a while: is anyone still listening?
                Err(_) if send.send((Instant::now(), String::new())).is_err() => return,
                Err(_) => {}
            }
        }
    });
    receive
}

/// The stdout of a command that must have succeeded; its output if it did not.
pub fn succeeded(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A port on 127.0.0.1 that nothing listens on (it was free a moment ago).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Message-ID header of a raw message.
pub fn message_id(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    text.lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Seconds between two instants, signed (`b - a`).
pub fn seconds_between(a: SystemTime, b: SystemTime) -> f64 {
    match b.duration_since(a) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// A JSON RFC 3339 timestamp as a `SystemTime`.
pub fn system_time(value: &serde_json::Value) -> SystemTime {
    let ts: jiff::Timestamp = value.as_str().expect("a timestamp string").parse().unwrap();
    SystemTime::from(ts)
}

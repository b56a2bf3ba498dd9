//! A throwaway PostgreSQL server for the tests: `initdb` into a temporary directory, then
//! `pg_ctl` on a free port of 127.0.0.1, trusting the user `followup` without a password.
//!
//! The binaries are those of `pg_config --bindir`, else of the highest version under
//! Debian's `/usr/lib/postgresql/*/bin`; `FOLLOWUP_POSTGRES_BINDIR=DIR` looks in `DIR`
//! only (to check the skip on a machine that has PostgreSQL, point it at an empty
//! directory). Absent binaries, [`Postgres::start`] prints why and gives `None` so the
//! test can skip; with `FOLLOWUP_REQUIRE_POSTGRES=1` (CI sets it) that fails instead.
//!
//! `initdb` and `pg_ctl` refuse to run as root: a root test process runs them as the
//! `postgres` user (else `nobody`), which owns the temporary directory.
//!
//! A server ends when the test process does, however it ends: beside each server waits a
//! `sh` on a pipe whose other end only the test process holds (std opens pipes
//! close-on-exec, so no other child inherits it). When the test process exits or is
//! killed, the pipe closes and the shell stops the server (`pg_ctl stop -m immediate`)
//! and removes its directory. That is what stops [`Postgres::shared`], a static that is
//! never dropped; [`Drop`] stops a test's own server at once.

use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long `pg_ctl` waits for the server to start or stop.
const PG_CTL_TIMEOUT: Duration = Duration::from_secs(60);

/// The reason given when the tests cannot have a server.
const NOT_INSTALLED: &str = "PostgreSQL not installed (Debian: apt-get install postgresql)";

/// The user a server of [`Postgres::start_with_tls`] lets in only over TLS, with
/// [`TLS_PASSWORD`].
pub const TLS_USER: &str = "followup_tls";

/// [`TLS_USER`]'s password, which the server checks by SCRAM.
pub const TLS_PASSWORD: &str = "correct horse 'battery' staple";

/// A PostgreSQL server of its own, in a temporary directory; stopped when dropped.
pub struct Postgres {
    bindir: PathBuf,
    /// The unprivileged user that runs the server when the tests run as root.
    user: Option<String>,
    port: u16,
    /// Holds the data directory, the socket and the log.
    dir: tempfile::TempDir,
    /// The write end of the pipe the shell that stops the server at exit waits on.
    watchdog: Option<(Child, ChildStdin)>,
    /// How long the first start took (`initdb` and `pg_ctl start`).
    pub startup: Duration,
    /// The server also speaks TLS ([`Postgres::start_with_tls`]).
    tls: bool,
}

impl Postgres {
    /// Starts a server for this test alone; `None` (with the reason printed) when
    /// PostgreSQL is not installed, unless `FOLLOWUP_REQUIRE_POSTGRES=1`.
    pub fn start() -> Option<Postgres> {
        Postgres::start_speaking(false)
    }

    /// Starts a server for this test alone, like [`Postgres::start`], that also speaks
    /// TLS with a certificate for 127.0.0.1 (not for localhost), signed by a certificate
    /// authority of its own ([`Postgres::ca_file`]). It lets [`TLS_USER`] in only over
    /// TLS and with its password; `followup` stays trusted in the clear, to set up and
    /// look.
    pub fn start_with_tls() -> Option<Postgres> {
        Postgres::start_speaking(true)
    }

    fn start_speaking(tls: bool) -> Option<Postgres> {
        let Some(bindir) = bindir() else {
            if std::env::var("FOLLOWUP_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("FOLLOWUP_REQUIRE_POSTGRES=1 but {NOT_INSTALLED}");
            }
            eprintln!("skipped: {NOT_INSTALLED}");
            return None;
        };
        Some(Postgres::launch(bindir, tls))
    }

    /// One server for every test of this binary that only needs databases of its own
    /// ([`Postgres::create_database`]): started by the first caller, it saves each
    /// later test the second or so of `initdb` and start (a database takes well under
    /// one). Shared, it cannot be stopped by a test (`stop` takes `&mut self`).
    pub fn shared() -> Option<&'static Postgres> {
        static SHARED: OnceLock<Option<Postgres>> = OnceLock::new();
        SHARED.get_or_init(Postgres::start).as_ref()
    }

    fn launch(bindir: PathBuf, tls: bool) -> Postgres {
        let began = Instant::now();
        let user = nix::unistd::Uid::effective()
            .is_root()
            .then(unprivileged_user);
        let dir = tempfile::Builder::new()
            .prefix("followup-pg-")
            .tempdir()
            .expect("a temporary directory");
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        give(dir.path(), user.as_deref());
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Postgres {
            bindir,
            user,
            port,
            dir,
            watchdog: None,
            startup: Duration::ZERO,
            tls,
        };
        server.watchdog = Some(server.spawn_watchdog());
        let data = server.data_dir();
        let initdb = server.run(
            "initdb",
            &[
                "--pgdata".as_ref(),
                data.as_os_str(),
                "--auth=trust".as_ref(),
                "--username=followup".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        assert!(
            initdb.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&initdb.stdout),
            String::from_utf8_lossy(&initdb.stderr)
        );
        if tls {
            server.set_up_tls();
        }
        server.start_again();
        if tls {
            server
                .admin()
                .batch_execute(&format!(
                    "SET password_encryption = 'scram-sha-256';
                     CREATE ROLE {TLS_USER} LOGIN PASSWORD '{}'",
                    TLS_PASSWORD.replace('\'', "''")
                ))
                .unwrap();
        }
        server.startup = began.elapsed();
        server
    }

    /// Writes the certificates and lets [`TLS_USER`] in over TLS only, by password.
    fn set_up_tls(&self) {
        let (ca, issuer) = certificate_authority("followup test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "127.0.0.1");
        let certificate = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(self.ca_file(), ca).unwrap();
        for (name, text) in [
            ("server.crt", certificate.pem()),
            ("server.key", key.serialize_pem()),
        ] {
            let path = self.dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            // The server refuses a key others may read.
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            give(&path, self.user.as_deref());
        }
        let hba = self.data_dir().join("pg_hba.conf");
        let rules = std::fs::read_to_string(&hba).unwrap();
        std::fs::write(
            &hba,
            format!(
                "hostssl all {TLS_USER} 127.0.0.1/32 scram-sha-256\n\
                 host all {TLS_USER} 127.0.0.1/32 reject\n{rules}"
            ),
        )
        .unwrap();
    }

    /// The certificate (PEM) of the authority that signed a TLS server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The URL of `database` as [`TLS_USER`], over TLS checked against
    /// [`Postgres::ca_file`]: the password is to be given apart.
    pub fn tls_url(&self, database: &str) -> String {
        format!(
            "postgres://{TLS_USER}@127.0.0.1:{}/{database}?sslmode=verify-full&sslrootcert={}",
            self.port,
            self.ca_file().display()
        )
    }

    /// Creates the empty database `name` owned by `owner`.
    pub fn create_database_for(&self, name: &str, owner: &str) {
        self.admin()
            .batch_execute(&format!("CREATE DATABASE \"{name}\" OWNER \"{owner}\""))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    }

    /// A connection to the `postgres` database as the trusted superuser `followup`.
    pub fn admin(&self) -> postgres::Client {
        postgres::Client::connect(&self.url("postgres"), postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.url("postgres")))
    }

    /// The URL of `database` on this server, as user `followup`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://followup@127.0.0.1:{}/{database}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates the empty database `name` and returns its URL. On the shared server, tests
    /// tell theirs apart by name: pass one no other test uses (the test's own).
    pub fn create_database(&self, name: &str) -> String {
        self.admin()
            .batch_execute(&format!(
                "CREATE DATABASE \"{}\"",
                name.replace('"', "\"\"")
            ))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        self.url(name)
    }

    /// Stops the server, closing every connection; its data stays for
    /// [`Postgres::start_again`]. A clean stop (`-m fast`), not a crash (`-m immediate`):
    /// with `synchronous_commit=off` a crash loses the last commits.
    pub fn stop(&mut self) {
        let stopped = self.pg_ctl_stop("fast");
        assert!(
            stopped.status.success(),
            "pg_ctl stop failed: {}{}",
            String::from_utf8_lossy(&stopped.stderr),
            self.log_tail()
        );
    }

    /// Starts the server on its data directory and port, and waits until it takes
    /// connections; panics with the end of its log if it does not within a minute.
    pub fn start_again(&mut self) {
        let data = self.data_dir();
        let log = self.dir.path().join("server.log");
        let options = [
            "listen_addresses=127.0.0.1".to_string(),
            format!("port={}", self.port),
            format!("unix_socket_directories={}", self.dir.path().display()),
            "fsync=off".to_string(),
            "synchronous_commit=off".to_string(),
            "full_page_writes=off".to_string(),
        ]
        .into_iter()
        .chain(
            self.tls
                .then(|| {
                    [
                        "ssl=on".to_string(),
                        format!(
                            "ssl_cert_file={}",
                            self.dir.path().join("server.crt").display()
                        ),
                        format!(
                            "ssl_key_file={}",
                            self.dir.path().join("server.key").display()
                        ),
                    ]
                })
                .into_iter()
                .flatten(),
        )
        .collect::<Vec<_>>()
        .iter()
        .map(|setting| format!("-c {}", shell_quote(setting)))
        .collect::<Vec<_>>()
        .join(" ");
        let timeout = PG_CTL_TIMEOUT.as_secs().to_string();
        let started = self.run(
            "pg_ctl",
            &[
                "start".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                timeout.as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
            ],
        );
        assert!(
            started.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&started.stderr),
            self.log_tail()
        );
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The last lines the server logged, to explain a failure.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("\nthe server's log ends:\n{tail}")
    }

    fn pg_ctl_stop(&self, mode: &str) -> Output {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &[
                "stop".as_ref(),
                "-w".as_ref(),
                "-m".as_ref(),
                mode.as_ref(),
                "-D".as_ref(),
                data.as_os_str(),
            ],
        )
    }

    /// `program` of the PostgreSQL binaries, as the unprivileged user when there is one.
    fn command(&self, program: &str) -> Command {
        let program = self.bindir.join(program);
        let mut command = match &self.user {
            None => Command::new(program),
            Some(user) => {
                let mut command = as_user(user);
                command.arg(program);
                command
            }
        };
        // The unprivileged user may not be allowed into the test's working directory.
        command.current_dir(self.dir.path());
        command
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> Output {
        self.command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
    }

    /// A shell that, once its standard input closes, stops the server and removes the
    /// directory. Its own process group keeps a Ctrl-C meant for the tests from killing it
    /// before it has cleaned up.
    fn spawn_watchdog(&self) -> (Child, ChildStdin) {
        let stop = self.command("pg_ctl");
        let mut shell = Command::new("sh");
        shell
            .arg("-c")
            // An initdb the test process left running may still be writing: try again.
            .arg(concat!(
                r#"read _; dir="$1"; shift; "$@"; "#,
                r#"for _ in 1 2 3 4 5; do rm -rf "$dir" 2>/dev/null && break; sleep 1; done"#,
            ))
            .arg("sh")
            .arg(self.dir.path())
            .arg(stop.get_program())
            .args(stop.get_args())
            .args(["stop", "-m", "immediate", "-D"])
            .arg(self.data_dir())
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let mut child = shell.spawn().expect("sh starts");
        let stdin = child.stdin.take().unwrap();
        (child, stdin)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl_stop("immediate");
        if let Some((mut child, mut stdin)) = self.watchdog.take() {
            let _ = stdin.write_all(b"\n");
            drop(stdin);
            let _ = child.wait();
        }
    }
}

/// The directory of `initdb` and `pg_ctl`, if PostgreSQL is installed.
fn bindir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("FOLLOWUP_POSTGRES_BINDIR") {
        let dir = PathBuf::from(dir);
        return has_tools(&dir).then_some(dir);
    }
    // Debian's pg_config (from libpq-dev) names a server's directory even without the
    // server: check that the tools are there.
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        .filter(|dir| has_tools(dir));
    from_pg_config.or_else(|| {
        let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let version = entry
                    .file_name()
                    .to_str()?
                    .split('.')
                    .map(|part| part.parse().ok())
                    .collect::<Option<Vec<u32>>>()?;
                Some((version, entry.path().join("bin")))
            })
            .filter(|(_, dir)| has_tools(dir))
            .collect();
        versions.sort();
        versions.pop().map(|(_, dir)| dir)
    })
}

/// A new certificate authority named `name`: its certificate (PEM), and what signs
/// with it.
pub fn certificate_authority(name: &str) -> (String, rcgen::Issuer<'static, rcgen::KeyPair>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let certificate = params.self_signed(&key).unwrap();
    (certificate.pem(), rcgen::Issuer::new(params, key))
}

/// Makes `path` the unprivileged `user`'s, when the server runs as one.
fn give(path: &Path, user: Option<&str>) {
    if let Some(user) = user {
        let found = nix::unistd::User::from_name(user)
            .unwrap()
            .unwrap_or_else(|| panic!("no user {user}"));
        std::os::unix::fs::chown(path, Some(found.uid.as_raw()), Some(found.gid.as_raw())).unwrap();
    }
}

/// The user a root test process runs PostgreSQL as.
fn unprivileged_user() -> String {
    match nix::unistd::User::from_name("postgres") {
        Ok(Some(_)) => "postgres".to_string(),
        _ => "nobody".to_string(),
    }
}

/// A command that runs its arguments as `user`: util-linux's `runuser`, else `setpriv`.
fn as_user(user: &str) -> Command {
    if on_path("runuser") {
        let mut command = Command::new("runuser");
        command.args(["-u", user, "--"]);
        command
    } else if on_path("setpriv") {
        let mut command = Command::new("setpriv");
        command
            .arg(format!("--reuid={user}"))
            .arg(format!("--regid={user}"))
            .args(["--init-groups", "--"]);
        command
    } else {
        panic!(
            "the tests run as root: PostgreSQL needs runuser or setpriv (util-linux) to run as {user}"
        );
    }
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

/// `value` in single quotes for the shell `pg_ctl` starts the server through.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Waits until a session of `db`'s database waits for a lock, which the server tells
/// no one: it is looked for every few milliseconds, for 20 s at most. Panics, saying
/// `what`, if `finished()` says the session that was to wait ended first, or the
/// deadline passes.
pub fn until_a_session_waits_on_a_lock(
    db: &mut postgres::Client,
    finished: impl Fn() -> bool,
    what: &str,
) {
    let began = Instant::now();
    loop {
        let waiting: bool = db
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                                WHERE datname = current_database() AND wait_event_type = 'Lock')",
                &[],
            )
            .unwrap()
            .get(0);
        if waiting {
            return;
        }
        assert!(!finished(), "{what} did not wait for the lock");
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "{what} never waited"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits on the server until the lease of the daemon named `owner` has run out on the
/// database's clock (the clock leases are measured on).
pub fn until_lease_ran_out(db: &mut postgres::Client, owner: &str) {
    db.execute(
        "SELECT pg_sleep_until(to_timestamp((lease_until + 1) / 1000.0))
         FROM daemons WHERE owner = $1",
        &[&owner],
    )
    .unwrap();
}

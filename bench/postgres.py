"""The PostgreSQL backend measured beside SQLite: one daemon and three on one database,
for throughput, precision, planning of 100,000 inserted rows, and failover after a
`kill -9`.

A throwaway server is started for the run (`initdb` and `pg_ctl` into a temporary
directory, as the `postgres` user when run as root, since `initdb` refuses root), with
PostgreSQL's default durability settings. Other programs' writes and the readings go
through `psql`, so nothing beyond Debian's `postgresql` package is needed.
"""

import atexit
import glob
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time

from harness import CUSTOMER, OWNER, BINARY, Daemon, Scratch, Sink, free_port, now_ms, percentile, \
    remove_at_exit, rfc3339_ms

SENT = "SELECT count(*) FROM deliveries WHERE state = 'sent'"
QUEUED_CHANGES = "SELECT count(*) FROM changes"


def bindir():
    """The directory of `initdb` and `pg_ctl`: `pg_config --bindir`, else the highest
    version under Debian's /usr/lib/postgresql."""
    try:
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        if found and os.path.exists(os.path.join(found, "initdb")):
            return found
    except OSError:
        pass
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                      key=lambda p: int(re.search(r"/(\d+)/bin", p).group(1)))
    return versions[-1] if versions else None


class PgServer:
    """A PostgreSQL server of the run's own on 127.0.0.1, trusting the user `followup`."""

    def __init__(self):
        self.bindir = bindir()
        if not self.bindir:
            raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        self.dir = tempfile.mkdtemp(prefix="followup-bench-pg-")
        remove_at_exit(self.dir)
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres" if shutil.which("runuser") and _user_exists("postgres") else "nobody"
            shutil.chown(self.dir, user=self.user)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.data = os.path.join(self.dir, "data")
        self._run("initdb", "--pgdata", self.data, "--auth=trust", "--username=followup",
                  "--encoding=UTF8")
        options = " ".join([
            "-c listen_addresses=127.0.0.1", f"-c port={self.port}",
            f"-c unix_socket_directories={self.dir}", "-c max_connections=200",
        ])
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", self.data,
                  "-l", os.path.join(self.dir, "server.log"), "-o", options)
        # Registered after the directory's removal, so it runs first.
        atexit.register(self.stop)

    def _run(self, program, *args):
        command = [os.path.join(self.bindir, program), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=self.dir)

    def stop(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._run("pg_ctl", "stop", "-m", "fast", "-D", self.data)

    def url(self, database):
        return f"postgres://followup@127.0.0.1:{self.port}/{database}"

    def psql(self, database, sql, stdin=None):
        """Runs `sql` in `database`; returns what it printed, unaligned, one row a line."""
        done = subprocess.run(
            ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", self.url(database), "-c", sql],
            input=stdin, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"psql: {sql[:80]}: {done.stderr.strip()}")
        return done.stdout

    def create(self, database):
        self.psql("postgres", f'CREATE DATABASE "{database}"')


def _user_exists(name):
    try:
        import pwd
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


class PgScratch(Scratch):
    """A scratch config whose store is a fresh database on `server`."""

    def __init__(self, name, smtp_port, server, **kwargs):
        super().__init__(name, smtp_port, **kwargs)
        self.server = server
        self.database = re.sub(r"[^a-z0-9]", "_", os.path.basename(self.dir).lower())
        server.create(self.database)
        path = os.path.join(self.config, "followup.toml")
        with open(path) as f:
            text = f.read()
        store = f'[store]\nbackend = "postgres"\nurl = "{server.url(self.database)}"\n'
        with open(path, "w") as f:
            f.write(re.sub(r'\[store\]\npath = "[^"]*"\n', store, text, count=1))
        subprocess.run([BINARY, "--config", self.config, "list"], check=True, stdout=subprocess.DEVNULL)

    def insert(self, rows):
        """Inserts (title, due_ms) rows in one transaction (COPY); returns the commit time."""
        lines = "".join(f"{title}\t{OWNER}\t{CUSTOMER}\t{rfc3339_ms(due)}\n" for title, due in rows)
        self.server.psql(self.database, "COPY commitments (title, owner, customer, due_at) FROM STDIN",
                         stdin=lines)
        return now_ms()

    def rows(self, sql):
        return [line.split("|") for line in self.server.psql(self.database, sql).splitlines()]

    def scalar(self, sql):
        value = self.server.psql(self.database, sql).strip()
        return int(value) if re.fullmatch(r"-?\d+", value) else value

    def wait_for(self, sql, want, timeout, poll=0.05):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.scalar(sql) == want:
                return now_ms()
            time.sleep(poll)
        return None


def _start(scratch, daemons):
    started = [Daemon(scratch) for _ in range(daemons)]
    for daemon in started:
        daemon.wait_ready()
    return started


def _stop(started):
    for daemon in started:
        daemon.stop()


def throughput(results, server, daemons, sqlite_seconds, source_reused, connections=4, count=10_000):
    """As SQLite's throughput: 10,000 reminders due at one instant."""
    label = f"postgres x{daemons}"
    sink = Sink()
    scratch = PgScratch(f"pg-throughput-{daemons}", sink.port, server, connections=connections)
    started = _start(scratch, daemons)
    try:
        due = now_ms() + 10_000
        scratch.insert((f"throughput #{i}", due) for i in range(count))
        scratch.wait_for(QUEUED_CHANGES, 0, 60)
        if scratch.wait_for(SENT, count, 600, poll=0.2) is None:
            raise RuntimeError(f"{label} throughput: not every reminder was sent")
        ours = (scratch.scalar("SELECT max(sent_at) FROM deliveries") - due) / 1000
    finally:
        _stop(started)
        sink.stop()
    results.add(label, f"{count} reminders due at once, {connections} connections per daemon",
                f"{ours:.2f} s ({count / ours:.0f}/s)")
    if source_reused:
        results.add(label, "throughput: ours / smtp-source, sessions reused", f"{ours / source_reused:.2f}")
    if sqlite_seconds:
        ratio = sqlite_seconds / ours
        target = ">= 0.5" if daemons == 1 else None
        results.add(label, "throughput / SQLite's", f"{ratio:.2f}", target,
                    ratio >= 0.5 if daemons == 1 else None)


def precision(results, server, daemons, count=2000, spread_ms=60_000):
    """As SQLite's precision: 2,000 reminders at random times over 60 s."""
    label = f"postgres x{daemons}"
    sink = Sink(dump=True)
    scratch = PgScratch(f"pg-precision-{daemons}", sink.port, server)
    started = _start(scratch, daemons)
    try:
        start = now_ms() + 10_000
        rng = random.Random(7)
        scratch.insert((f"precision #{i}", start + rng.randrange(spread_ms)) for i in range(count))
        scratch.wait_for(QUEUED_CHANGES, 0, 60)
        fire_at = {int(title.split("#")[1]): int(at) for title, at in scratch.rows(
            "SELECT c.title, s.fire_at FROM steps s JOIN commitments c ON c.id = s.commitment_id")}
        deadline = time.monotonic() + (start + spread_ms - now_ms()) / 1000 + 60
        while len(sink.received) < count and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        _stop(started)
    late = []
    for at_ns, name in list(sink.received):
        found = re.search(rb"precision #(\d+)", sink.read(name))
        if found:
            late.append(at_ns / 1e6 - fire_at[int(found.group(1))])
    sink.stop()
    if len(late) != count:
        results.note(f"{label} precision: {len(late)} of {count} reminders arrived")
    p50, p99, worst = percentile(late, 50), percentile(late, 99), max(late)
    results.add(label, f"{len(late)} reminders over {spread_ms // 1000} s, lateness p50", f"{p50:.1f} ms")
    results.add(label, "lateness p99", f"{p99:.1f} ms", "<= 50 ms" if daemons == 3 else None,
                p99 <= 50 if daemons == 3 else None)
    results.add(label, "lateness max", f"{worst:.1f} ms")


def planning(results, server, daemons, count=100_000):
    """100,000 commitments written in one COPY while the daemons run, until all are planned."""
    label = f"postgres x{daemons}"
    sink = Sink()
    scratch = PgScratch(f"pg-planning-{daemons}", sink.port, server)
    started = _start(scratch, daemons)
    try:
        due = now_ms() + 3600 * 1000
        committed = scratch.insert((f"planning #{i}", due) for i in range(count))
        planned = scratch.wait_for(QUEUED_CHANGES, 0, 600, poll=0.1)
        steps = scratch.scalar("SELECT count(DISTINCT commitment_id) FROM steps WHERE state = 'planned'")
    finally:
        _stop(started)
        sink.stop()
    took = (planned - committed) / 1000 if planned else float("inf")
    results.add(label, f"{count} commitments inserted in one transaction, all planned", f"{took:.2f} s")
    if steps != count:
        results.note(f"{label} planning: {steps} of {count} commitments planned")


def failover(results, server, count=3000, spread_ms=20_000):
    """Three daemons, reminders due over 20 s; one is killed with SIGKILL a third of the
    way in. Failover is the worst lateness of any reminder, and the time from the kill
    to the last repeat of an email the killed daemon had in flight."""
    label = "postgres x3"
    sink = Sink(dump=True)
    scratch = PgScratch("pg-failover", sink.port, server)
    started = _start(scratch, 3)
    try:
        start = now_ms() + 10_000
        scratch.insert((f"failover #{i}", start + i * spread_ms // count) for i in range(count))
        scratch.wait_for(QUEUED_CHANGES, 0, 60)
        fire_at = {int(title.split("#")[1]): int(at) for title, at in scratch.rows(
            "SELECT c.title, s.fire_at FROM steps s JOIN commitments c ON c.id = s.commitment_id")}
        while len(sink.received) < count // 3:
            time.sleep(0.01)
        killed = now_ms()
        os.kill(started[0].pid, signal.SIGKILL)
        started[0].proc.wait()
        deadline = time.monotonic() + spread_ms / 1000 + 90
        while time.monotonic() < deadline:
            if scratch.scalar(SENT) == count:
                break
            time.sleep(0.2)
        time.sleep(1)  # the sink's last files closed
    finally:
        _stop(started)
    first = {}
    arrivals = {}
    copies = 0
    for at_ns, name in list(sink.received):
        found = re.search(rb"failover #(\d+)", sink.read(name))
        if found:
            copies += 1
            i = int(found.group(1))
            first[i] = min(first.get(i, at_ns / 1e6), at_ns / 1e6)
            arrivals.setdefault(i, []).append(at_ns / 1e6)
    # A repeat is an email the killed daemon had in flight, sent again once its lease ran
    # out and another daemon took it over.
    repeats = [max(times) for times in arrivals.values() if len(times) > 1]
    sink.stop()
    # An email the killed daemon had taken but not sent waits for its lease to run out.
    late = [first[i] - fire_at[i] for i in first]
    worst = max(late) / 1000 if late else float("nan")
    results.add(label, f"failover: {count} reminders over {spread_ms // 1000} s, one daemon killed, "
                "worst lateness of a first copy", f"{worst:.1f} s", "<= 30 s", worst <= 30)
    if repeats:
        taken = (max(repeats) - killed) / 1000
        results.add(label, "failover: kill to the last repeat of an email in flight",
                    f"{taken:.1f} s", "<= 30 s", taken <= 30)
    else:
        results.note(f"{label} failover: the killed daemon had no email in flight")
    results.add(label, "failover: reminders received / repeated",
                f"{len(first)} of {count} / {copies - len(first)}", f"{count} / <= 4",
                len(first) == count and copies - len(first) <= 4)


def postgres(results, sqlite_seconds, source_reused):
    print("postgres (one daemon, then three, on one database)", flush=True)
    server = PgServer()
    try:
        for daemons in (1, 3):
            throughput(results, server, daemons, sqlite_seconds, source_reused)
            precision(results, server, daemons)
            planning(results, server, daemons)
        failover(results, server)
    finally:
        server.stop()

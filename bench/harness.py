"""The parts every benchmark scenario uses: a scratch config and store, the daemon with a
notify socket, postfix's smtp-sink with receive times, and readings from /proc.

Only the standard library: the benchmark runs on a fresh machine with python3 and
postfix's test tools.
"""

import atexit
import ctypes
import errno
import os
import re
import select
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# FOLLOWUP_BIN measures another build of the daemon with the same scenarios.
BINARY = os.environ.get("FOLLOWUP_BIN") or os.path.join(ROOT, "target", "release", "followup")
OWNER = "Ana Ruiz <ana@example.com>"
CUSTOMER = "Joe Mensah <joe@example.org>"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rfc3339_ms(ms):
    """An RFC 3339 UTC time with milliseconds, as the store's writers may give it."""
    t = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def now_ms():
    return time.time_ns() // 1_000_000


def remove_at_exit(path):
    """Removes a scratch directory when the run ends, unless FOLLOWUP_BENCH_KEEP is set."""
    if not os.environ.get("FOLLOWUP_BENCH_KEEP"):
        atexit.register(shutil.rmtree, path, ignore_errors=True)


class Scratch:
    """A config directory and a store file of their own, in a temporary directory,
    removed when the run ends (a full run makes about 1.5 GB of them) unless
    FOLLOWUP_BENCH_KEEP is set, to look at a store afterwards."""

    def __init__(self, name, smtp_port, connections=4, late_after="1m"):
        self.dir = tempfile.mkdtemp(prefix=f"followup-bench-{name}-")
        remove_at_exit(self.dir)
        self.config = os.path.join(self.dir, "config")
        os.makedirs(self.config)
        self.db = os.path.join(self.dir, "var", "followup.db")
        self.connections = connections
        # The daemon's pages, on a port of their own (the built-in default is 8025).
        self.web_port = free_port()
        with open(os.path.join(self.config, "followup.toml"), "w") as f:
            f.write(
                f"""
[store]
path = "{self.db}"

[calendar]
timezone = "UTC"

[daemon]
late_after = "{late_after}"

[mail]
from = "Followup <followup@example.com>"
transport = "smtp"

[mail.smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
connections = {connections}

[web]
listen = "127.0.0.1:{self.web_port}"

[log]
level = "warn"

[[rule]]
name = "bench"
remind = ["0s"]
catch_up = "send"
"""
            )
        # The CLI creates and migrates the store.
        subprocess.run(
            [BINARY, "--config", self.config, "list"],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def connect(self):
        """A connection of another program: WAL, a busy timeout."""
        db = sqlite3.connect(self.db, timeout=30, isolation_level=None)
        db.execute("PRAGMA busy_timeout = 30000")
        return db

    def insert(self, rows):
        """Inserts (title, due_ms) rows in one transaction; returns the commit time (ms)."""
        db = self.connect()
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO commitments (title, owner, customer, due_at) VALUES (?, ?, ?, ?)",
            ((title, OWNER, CUSTOMER, rfc3339_ms(due)) for title, due in rows),
        )
        db.execute("COMMIT")
        done = now_ms()
        db.close()
        return done

    def scalar(self, sql):
        db = self.connect()
        try:
            return db.execute(sql).fetchone()[0]
        finally:
            db.close()

    def wait_for(self, sql, want, timeout, poll=0.01):
        """Polls `sql` until it returns `want`; returns the time it did (ms) or None."""
        db = self.connect()
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if db.execute(sql).fetchone()[0] == want:
                    return now_ms()
                time.sleep(poll)
            return None
        finally:
            db.close()


class Daemon:
    """`followup run` with a notify socket of our own, as systemd would start it."""

    def __init__(self, scratch, watchdog_usec=None):
        self.notify_path = os.path.join(scratch.dir, f"notify-{time.monotonic_ns()}")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.notify_path)
        self.messages = []
        self.ready = threading.Event()
        env = dict(os.environ, NOTIFY_SOCKET=self.notify_path)
        env.pop("WATCHDOG_USEC", None)
        env.pop("WATCHDOG_PID", None)
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        self.log = open(os.path.join(scratch.dir, "daemon.log"), "a")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [BINARY, "--config", scratch.config, "run"],
            env=env,
            stdout=self.log,
            stderr=self.log,
        )
        self.listener = threading.Thread(target=self._listen, daemon=True)
        self.listener.start()

    def _listen(self):
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            if not data:
                return
            at = time.monotonic()
            for line in data.decode(errors="replace").splitlines():
                self.messages.append((at, line))
                if line == "READY=1":
                    self.ready.set()

    def wait_ready(self, timeout=120):
        if not self.ready.wait(timeout):
            raise RuntimeError("the daemon did not report READY=1")
        return next(at for at, m in self.messages if m == "READY=1") - self.started

    def count(self, message, since):
        return sum(1 for at, m in self.messages if m == message and at >= since)

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # The listener must be gone before the socket is closed: a thread still in
        # recv() on a closed descriptor would read from the next socket to get its number
        # (the next daemon's) and take its READY=1.
        self.sock.shutdown(socket.SHUT_RDWR)
        self.listener.join()
        self.sock.close()
        self.log.close()


class Proc:
    """Readings of a running process from /proc."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, pid):
        self.pid = pid

    def cpu_seconds(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.TICK

    def switches(self):
        """Context switches per thread: each time a thread sleeps after waking counts."""
        total = {}
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                with open(f"/proc/{self.pid}/task/{tid}/status") as f:
                    text = f.read()
            except FileNotFoundError:
                continue
            n = sum(
                int(m)
                for m in re.findall(r"^(?:non)?voluntary_ctxt_switches:\s+(\d+)", text, re.M)
            )
            total[tid] = n
        return total

    def memory(self):
        """(VmRSS, VmHWM) in MiB."""
        with open(f"/proc/{self.pid}/status") as f:
            text = f.read()
        rss = int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024
        hwm = int(re.search(r"VmHWM:\s+(\d+)", text).group(1)) / 1024
        return rss, hwm


IN_CLOSE_WRITE = 0x8


class Sink:
    """postfix's smtp-sink on 127.0.0.1. With `dump`, every message is written to a file
    of its own, and an inotify watch records the moment each file is closed: the time the
    sink received the message."""

    def __init__(self, dump=False):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="followup-bench-sink-")
        remove_at_exit(self.dir)
        self.received = []
        args = ["smtp-sink"]
        if dump:
            self._watch()
            args += ["-d", "m."]
        if os.geteuid() == 0:
            # smtp-sink refuses to keep root privileges.
            os.chmod(self.dir, 0o777)
            args += ["-u", "nobody"]
        args += [f"127.0.0.1:{self.port}", "1024"]
        self.proc = subprocess.Popen(args, cwd=self.dir, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("smtp-sink did not start")

    def _watch(self):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        fd = libc.inotify_init1(0)
        if fd < 0 or libc.inotify_add_watch(fd, self.dir.encode(), IN_CLOSE_WRITE) < 0:
            raise OSError(ctypes.get_errno(), "inotify")

        def listen():
            while True:
                data = os.read(fd, 1 << 16)
                at = time.time_ns()
                offset = 0
                while offset < len(data):
                    _, _, _, length = struct.unpack_from("iIII", data, offset)
                    name = data[offset + 16 : offset + 16 + length].rstrip(b"\0").decode()
                    self.received.append((at, name))
                    offset += 16 + length

        threading.Thread(target=listen, daemon=True).start()

    def read(self, name):
        with open(os.path.join(self.dir, name), "rb") as f:
            return f.read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def percentile(values, p):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


TFD_CLOEXEC = 0o2000000
TFD_TIMER_ABSTIME = 1
TFD_TIMER_CANCEL_ON_SET = 2


class ClockSteps:
    """Counts how often the host sets the wall clock while it runs: a timerfd on
    CLOCK_REALTIME armed years ahead with TFD_TIMER_CANCEL_ON_SET fails each read with
    ECANCELED after a change, as the daemon's alarm does. The size of each change is
    how far the wall clock moved against the monotonic clock."""

    def __init__(self):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.fd = libc.timerfd_create(0, TFD_CLOEXEC)  # CLOCK_REALTIME
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create")
        far = struct.pack("llll", 0, 0, int(time.time()) + 10 * 365 * 86400, 0)
        if libc.timerfd_settime(self.fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, far, None) < 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime")
        self.steps = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._count, daemon=True)
        self.thread.start()

    @staticmethod
    def _offset():
        return time.time_ns() - time.monotonic_ns()

    def _count(self):
        poll = select.poll()
        poll.register(self.fd, select.POLLIN)
        before = self._offset()
        while not self.stopping.is_set():
            if not poll.poll(100):
                continue
            try:
                os.read(self.fd, 8)
            except OSError as e:
                if e.errno != errno.ECANCELED:
                    raise
                after = self._offset()
                self.steps.append((after - before) / 1e6)
                before = after

    def stop(self):
        """The changes seen (ms each, signed), once the counting has stopped."""
        self.stopping.set()
        self.thread.join()
        os.close(self.fd)
        return self.steps

"""followup's benchmarks: throughput, precision, planning, catch-up, start, idle, the
tests' timing windows and the web pages under load.

Run by `bench/run.sh`, which builds the release binary and installs postfix's smtp-sink
and smtp-source (and wrk) if missing. Each scenario prepares its own store and config in a
temporary directory and starts its own sink; the figures go to bench/RESULTS.md.

    python3 bench/bench.py [throughput] [precision] [catch-up] [idle] [windows] [web] [postgres]
    (default: all; postgres measures the PostgreSQL backend beside SQLite's throughput)
"""

import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

from harness import ROOT, ClockSteps, Daemon, Proc, Scratch, Sink, now_ms, percentile
from postgres import postgres
from web import web
from windows import windows

SENT = "SELECT count(*) FROM deliveries WHERE state = 'sent'"
QUEUED_CHANGES = "SELECT count(*) FROM changes"


class Results:
    """Rows of the results table: scenario, measure, figure, target, whether it is met."""

    def __init__(self):
        self.rows = []
        self.notes = []
        # smtp-source's time with sessions reused, once throughput measured it.
        self.source_reused = None

    def add(self, scenario, measure, figure, target=None, met=None):
        self.rows.append((scenario, measure, figure, target or "", met))
        mark = "" if met is None else (" (met)" if met else " (MISSED)")
        print(f"  {scenario}: {measure} = {figure}{mark}", flush=True)

    def note(self, text):
        self.notes.append(text)
        print(f"  note: {text}", flush=True)


def throughput(results, connections=4, count=10_000):
    """10,000 reminders due at one instant, against smtp-source sending the same message
    10,000 times over the same number of sessions to the same sink."""
    print("throughput", flush=True)
    sink = Sink()
    scratch = Scratch("throughput", sink.port, connections=connections)
    daemon = Daemon(scratch)
    try:
        daemon.wait_ready()
        due = now_ms() + 8000
        scratch.insert((f"throughput #{i}", due) for i in range(count))
        planned = scratch.wait_for(QUEUED_CHANGES, 0, 60)
        if planned is None or planned > due:
            results.note("throughput: planning was not done before the due time")
        if scratch.wait_for(SENT, count, 600) is None:
            raise RuntimeError("throughput: not every reminder was sent")
        last = scratch.scalar("SELECT max(sent_at) FROM deliveries")
        ours = (last - due) / 1000
        db = scratch.connect()
        message = db.execute("SELECT message FROM deliveries LIMIT 1").fetchone()[0]
        db.close()
    finally:
        daemon.stop()
    # smtp-source appends CRLF to each line of the file it sends.
    with tempfile.NamedTemporaryFile("wb", suffix=".eml", delete=False) as f:
        f.write(message.replace(b"\r\n", b"\n"))
        sample = f.name

    def source(*reuse):
        started = time.monotonic()
        subprocess.run(
            ["smtp-source", "-s", str(connections), *reuse, "-m", str(count), "-F", sample,
             "-f", "followup@example.com", "-t", "ana@example.com", f"127.0.0.1:{sink.port}"],
            check=True,
        )
        return time.monotonic() - started

    # smtp-source's sessions carry one message each by default; with -d they carry
    # many, as the daemon's pooled connections do. Both are reported.
    per_message, reused = source(), source("-d")
    results.source_reused = reused
    sink.stop()
    results.add("throughput", f"{count} reminders of {len(message)} bytes, {connections} connections",
                f"{ours:.2f} s ({count / ours:.0f}/s)")
    results.add("throughput", f"smtp-source -s {connections}: a session per message", f"{per_message:.2f} s")
    results.add("throughput", "ours / smtp-source, a session per message",
                f"{ours / per_message:.2f}", "<= 2.0", ours / per_message <= 2.0)
    results.add("throughput", f"smtp-source -s {connections} -d: sessions reused", f"{reused:.2f} s")
    results.add("throughput", "ours / smtp-source, sessions reused",
                f"{ours / reused:.2f}", "<= 2.0", ours / reused <= 2.0)
    return ours / count


def precision(results, count=2000, spread_ms=60_000):
    """2,000 reminders due at random times over 60 s; lateness is the sink's receive time
    minus the planned time."""
    print("precision", flush=True)
    sink = Sink(dump=True)
    scratch = Scratch("precision", sink.port)
    daemon = Daemon(scratch)
    try:
        daemon.wait_ready()
        start = now_ms() + 10_000
        rng = random.Random(7)
        scratch.insert((f"precision #{i}", start + rng.randrange(spread_ms)) for i in range(count))
        scratch.wait_for(QUEUED_CHANGES, 0, 60)
        db = scratch.connect()
        fire_at = {
            int(title.split("#")[1]): at
            for title, at in db.execute(
                "SELECT c.title, s.fire_at FROM steps s JOIN commitments c ON c.id = s.commitment_id"
            )
        }
        db.close()
        deadline = time.monotonic() + (start + spread_ms - now_ms()) / 1000 + 60
        while len(sink.received) < count and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        daemon.stop()
    late = []
    for at_ns, name in list(sink.received):
        found = re.search(rb"precision #(\d+)", sink.read(name))
        if found:
            late.append(at_ns / 1e6 - fire_at[int(found.group(1))])
    sink.stop()
    if len(late) < count:
        results.note(f"precision: only {len(late)} of {count} reminders arrived")
    p50, p99, worst = percentile(late, 50), percentile(late, 99), max(late)
    results.add("precision", f"{len(late)} reminders over {spread_ms // 1000} s, lateness p50",
                f"{p50:.1f} ms", "<= 10 ms", p50 <= 10)
    results.add("precision", "lateness p99", f"{p99:.1f} ms", "<= 50 ms", p99 <= 50)
    results.add("precision", "lateness max", f"{worst:.1f} ms", "<= 250 ms", worst <= 250)
    results.add("precision", "earliest (negative: before the planned time)",
                f"{min(late):.1f} ms")


def catch_up(results, per_message, count=100_000):
    """100,000 commitments inserted by another program in one transaction (planning),
    then the daemon stopped across their due time and started again (catch-up, `send`)."""
    print("planning and catch-up", flush=True)
    sink = Sink()
    scratch = Scratch("catch-up", sink.port, late_after="1s")
    daemon = Daemon(scratch)
    try:
        daemon.wait_ready()
        due = now_ms() + 45_000
        committed = scratch.insert((f"catch-up #{i}", due) for i in range(count))
        planned = scratch.wait_for(QUEUED_CHANGES, 0, 600)
    finally:
        daemon.stop()
    steps = scratch.scalar("SELECT count(*) FROM steps WHERE state = 'planned'")
    took = (planned - committed) / 1000
    results.add("planning", f"{count} commitments inserted in one transaction, all planned",
                f"{took:.2f} s", "<= 5 s", took <= 5 and steps == count)
    if steps != count or now_ms() > due - 1000:
        results.note(f"catch-up: skipped ({steps} steps planned, due time reached while planning)")
        sink.stop()
        return
    time.sleep((due - now_ms()) / 1000 + 3)
    restarted = now_ms()
    daemon = Daemon(scratch)
    try:
        if scratch.wait_for(SENT, count, 1200, poll=0.1) is None:
            raise RuntimeError("catch-up: not every missed reminder was sent")
        last = scratch.scalar("SELECT max(sent_at) FROM deliveries")
        late = scratch.scalar("SELECT count(*) FROM steps WHERE late = 1")
    finally:
        daemon.stop()
    sink.stop()
    took = (last - restarted) / 1000
    ratio = (took / count) / per_message if per_message else float("nan")
    results.add("catch-up", f"{count} missed reminders ({late} marked late), restart to last sent",
                f"{took:.2f} s ({count / took:.0f}/s)")
    results.add("catch-up", "time per message / throughput's", f"{ratio:.2f}", "<= 1.5", ratio <= 1.5)


def idle(results, count=1_000_000, window=60, settle=15):
    """A store of 1,000,000 open commitments, nothing due for an hour: time to READY, then
    a minute of the daemon's CPU, wake-ups and memory, without and with a watchdog. Each
    change of the host's wall clock in that minute wakes the daemon once (its alarm's
    timerfd reports it); the changes are counted beside it, with the daemon's log lines
    for those it judged worth a look again (1 s or more)."""
    print("start and idle (preparing 1,000,000 commitments)", flush=True)
    sink = Sink()
    scratch = Scratch("idle", sink.port)
    # The daemon logs a clock change it acts on at info level.
    config = os.path.join(scratch.config, "followup.toml")
    with open(config) as f:
        text = f.read()
    with open(config, "w") as f:
        f.write(text.replace('level = "warn"', 'level = "info"'))
    log = os.path.join(scratch.dir, "daemon.log")
    daemon = Daemon(scratch)
    try:
        daemon.wait_ready()
        due = now_ms() + 2 * 3600 * 1000
        committed = scratch.insert((f"idle #{i}", due + i % 3_600_000) for i in range(count))
        planned = scratch.wait_for(QUEUED_CHANGES, 0, 3600, poll=0.5)
        results.note(f"idle: the daemon planned the {count} commitments in {(planned - committed) / 1000:.1f} s")
    finally:
        daemon.stop()
    size = os.path.getsize(scratch.db) / 2**20

    for watchdog in (None, 20_000_000):
        daemon = Daemon(scratch, watchdog_usec=watchdog)
        try:
            ready = daemon.wait_ready()
            if watchdog is None:
                results.add("start", f"start to READY=1, {count} open commitments ({size:.0f} MiB store)",
                            f"{ready:.2f} s", "<= 2 s", ready <= 2)
            time.sleep(settle)
            proc = Proc(daemon.pid)
            logged = os.path.getsize(log)
            clock = ClockSteps()
            cpu0, switches0, since = proc.cpu_seconds(), proc.switches(), time.monotonic()
            time.sleep(window)
            cpu1, switches1 = proc.cpu_seconds(), proc.switches()
            steps = clock.stop()
            rss, peak = proc.memory()
            pings = daemon.count("WATCHDOG=1", since)
            with open(log) as f:
                f.seek(logged)
                changed = f.read().count("the wall clock changed")
        finally:
            daemon.stop()
        jumps = sum(1 for ms in steps if abs(ms) >= 1000)
        largest = max((abs(ms) for ms in steps), default=0)
        wakeups = sum(n - switches0.get(tid, 0) for tid, n in switches1.items())
        gone = len(set(switches0) - set(switches1))
        cpu = cpu1 - cpu0
        if watchdog is None:
            results.add("idle", f"CPU in {window} s", f"{cpu:.2f} s", "<= 0.1 s", cpu <= 0.1)
            results.add("idle", f"wake-ups in {window} s (context switches, {len(switches1)} threads)",
                        f"{wakeups}", "<= 1", wakeups <= 1 and gone == 0)
            results.add("idle", "RSS (peak since start)", f"{rss:.1f} MiB ({peak:.1f} MiB)",
                        "<= 40 MiB", rss <= 40)
        else:
            results.add("idle, watchdog 20 s", f"wake-ups in {window} s / WATCHDOG=1 pings sent",
                        f"{wakeups} / {pings}", "pings only", wakeups <= pings)
            results.add("idle, watchdog 20 s", f"CPU in {window} s", f"{cpu:.2f} s", "<= 0.1 s", cpu <= 0.1)
        label = "idle" if watchdog is None else "idle, watchdog 20 s"
        results.add(label, f"host clock changes in {window} s (timerfd ECANCELED; largest)",
                    f"{len(steps)} ({largest:.1f} ms)")
        results.add(label, f"\"the wall clock changed\" log lines in {window} s",
                    f"{changed}", f"<= {jumps} (changes of 1 s or more)", changed <= jumps)
        if steps:
            results.note(f"{label}: the host changed the wall clock {len(steps)} times in the window; "
                         f"each change wakes the daemon, so its wake-ups are not all its own")
        if gone:
            results.note(f"idle: {gone} threads ended during the window; their switches are not counted")
    sink.stop()


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            found = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            model = found.group(1) if found else model
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.system()} {platform.release()} {platform.machine()}, {model}, " \
           f"{os.cpu_count()} cores, {memory:.0f} GiB"


def write(results, scenarios, elapsed):
    def git(*args):
        return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True).stdout.strip()

    # The results file of an earlier run does not make the measured tree dirty.
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    if git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/RESULTS.md"):
        commit += "-dirty"
    lines = [
        "# Benchmark results",
        "",
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {machine()}",
        f"- command: `{' '.join(['bench/run.sh'] + scenarios)}`",
        f"- commit: {commit}, release build",
        f"- duration: {elapsed / 60:.1f} min",
        "",
        "Every figure comes from this one run. How each is measured: README, \"Benchmarks\".",
        "",
        "| scenario | measure | figure | target | |",
        "|---|---|---|---|---|",
    ]
    for scenario, measure, figure, target, met in results.rows:
        mark = "" if met is None else ("met" if met else "**missed**")
        lines.append(f"| {scenario} | {measure} | {figure} | {target} | {mark} |")
    if results.notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in results.notes]
    path = os.path.join(ROOT, "bench", "RESULTS.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}")


def main(argv):
    known = ["throughput", "precision", "catch-up", "idle", "windows", "web", "postgres"]
    chosen = argv or known
    unknown = [s for s in chosen if s not in known]
    if unknown:
        sys.exit(f"unknown scenario {unknown[0]!r}; choose from {', '.join(known)}")
    results = Results()
    started = time.monotonic()
    per_message = None
    if "throughput" in chosen or "catch-up" in chosen or "postgres" in chosen:
        per_message = throughput(results)
    if "precision" in chosen:
        precision(results)
    if "catch-up" in chosen:
        catch_up(results, per_message)
    if "idle" in chosen:
        idle(results)
    if "windows" in chosen:
        windows(results)
    if "web" in chosen:
        web(results)
    if "postgres" in chosen:
        postgres(results, per_message * 10_000, results.source_reused)
    write(results, argv, time.monotonic() - started)
    missed = [r for r in results.rows if r[4] is False]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

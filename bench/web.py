"""The `web` scenario: the pages behind the links in the emails under load while
reminders fall due. `wrk` (a separate process) GETs one action page for 30 s over 200
connections while 2,000 reminders are due at random times inside that window; the
page's latency comes from wrk, the reminders' lateness from the sink as in `precision`.

The page's URL is a real link: the Done link of the first reminder the daemon sent.
"""

import email
import email.policy
import random
import re
import subprocess
import time

from harness import Daemon, Scratch, Sink, now_ms, percentile

LINK = re.compile(r"https?://[^\s<>\"']+/a/[A-Za-z0-9_\-.~%]+")


def links_of(raw):
    """The action links in the plain text of a raw message."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    part = message.get_body(preferencelist=("plain",))
    text = part.get_content() if part is not None else raw.decode(errors="replace")
    return LINK.findall(text)


def wrk_latency(output):
    """The `--latency` distribution of wrk's report, in ms, by percentile."""
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
    found = {}
    for pct, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M):
        found[int(pct)] = float(value) * scale[unit]
    return found


def wrk_count(output, pattern):
    match = re.search(pattern, output, re.M)
    return int(match.group(1)) if match else 0


def web(results, count=2000, connections=200, seconds=30):
    print("web", flush=True)
    sink = Sink(dump=True)
    scratch = Scratch("web", sink.port)
    daemon = Daemon(scratch)
    try:
        daemon.wait_ready()
        # One reminder now: its Done link is the page under load.
        scratch.insert([("web page", now_ms())])
        deadline = time.monotonic() + 30
        page = None
        while page is None and time.monotonic() < deadline:
            for _, name in list(sink.received):
                links = links_of(sink.read(name))
                if links:
                    page = links[0]
            time.sleep(0.05)
        if page is None:
            raise RuntimeError("web: the first reminder carried no link (is [web] on?)")
        sink.received.clear()
        # The reminders fall due in the load's window, starting 2 s into it.
        load_start = now_ms() + 8000
        spread_ms = (seconds - 5) * 1000
        first = load_start + 2000
        rng = random.Random(15)
        scratch.insert((f"web #{i}", first + rng.randrange(spread_ms)) for i in range(count))
        scratch.wait_for("SELECT count(*) FROM changes", 0, 60)
        db = scratch.connect()
        fire_at = {
            int(title.split("#")[1]): at
            for title, at in db.execute(
                "SELECT c.title, s.fire_at FROM steps s JOIN commitments c ON c.id = s.commitment_id "
                "WHERE c.title LIKE 'web #%'"
            )
        }
        db.close()
        time.sleep(max(0, (load_start - now_ms()) / 1000))
        load = subprocess.run(
            ["wrk", "--latency", "-t", "2", "-c", str(connections), "-d", f"{seconds}s",
             "--timeout", "5s", page],
            capture_output=True, text=True, check=True,
        )
        deadline = time.monotonic() + 60
        while len(sink.received) < count and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        daemon.stop()
    late = []
    for at_ns, name in list(sink.received):
        found = re.search(rb"web #(\d+)", sink.read(name))
        if found and int(found.group(1)) in fire_at:
            late.append(at_ns / 1e6 - fire_at[int(found.group(1))])
    sink.stop()
    latency = wrk_latency(load.stdout)
    requests = wrk_count(load.stdout, r"^\s*(\d+) requests in")
    errors = wrk_count(load.stdout, r"Non-2xx or 3xx responses: (\d+)")
    socket_errors = re.search(r"Socket errors: (.+)$", load.stdout, re.M)
    if not latency:
        raise RuntimeError(f"web: no latency distribution in wrk's report:\n{load.stdout}")
    p99 = latency.get(99, float("nan"))
    results.add("web", f"GET of an action page, {connections} connections, {seconds} s (wrk)",
                f"{requests / seconds:.0f} requests/s, p50 {latency.get(50, float('nan')):.2f} ms")
    results.add("web", "page latency p99", f"{p99:.2f} ms", "<= 20 ms", p99 <= 20)
    results.add("web", "answers other than 2xx or 3xx", f"{errors}", "0", errors == 0)
    if socket_errors:
        results.note(f"web: wrk's socket errors: {socket_errors.group(1)}")
    if len(late) < count:
        results.note(f"web: only {len(late)} of {count} reminders arrived")
    if late:
        lp99 = percentile(late, 99)
        results.add("web", f"{len(late)} reminders due meanwhile, lateness p50",
                    f"{percentile(late, 50):.1f} ms")
        results.add("web", "reminders' lateness p99", f"{lp99:.1f} ms", "<= 50 ms", lp99 <= 50)
        results.add("web", "reminders' lateness max", f"{max(late):.1f} ms")
    print(load.stdout, flush=True)

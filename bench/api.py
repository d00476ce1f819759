#!/usr/bin/env python3
"""The REST API and webhook benchmark (issue 15; docs/PERFORMANCE.md).

For SQLite and PostgreSQL: fills a database with COUNT CDRs (store's cdr_fill example: 200
customers over 30 days), starts `vts serve` on it, then
  - pages: GET /api/v1/cdrs?customer_id=C&since=..&until=..&limit=100 for random customers
    and 7-day windows, each first page followed by its cursor three times; the time of each
    request (p50, p95, p99);
  - export: GET /api/v1/cdrs with Accept: text/csv, every record, read as it streams; its
    time and the switch's peak resident memory meanwhile (from /proc) against before.
Then webhook deliveries per second to a local receiver (jobs' webhook_rate example).

Usage: bench/api.py --vts target/release/vts --examples-dir target/release
                    [--postgres-url URL] [--cdrs N] [--smoke] [--out FILE]
"""

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

START_MS = 1_793_491_200_000  # 2026-11-01T00:00:00Z, as cdr_fill writes
DAY_MS = 86_400_000
CUSTOMERS = 200


def log(msg):
    print(f"[api-bench] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_json(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{cmd[0]}: {out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class Switch:
    def __init__(self, vts, db, workdir):
        self.vts, self.db = vts, db
        self.data = Path(workdir) / "data"
        self.http = free_port()
        env = dict(os.environ, VTS_API_RATE_PER_MINUTE="10000000", VTS_API_BURST="100000")
        self.env = env
        self.proc = subprocess.Popen(
            [vts, "--data-dir", str(self.data), "--db", db, "serve", "--sip", f"udp:127.0.0.1:{free_port()}",
             "--http", f"127.0.0.1:{self.http}"],
            stdout=subprocess.PIPE, stderr=open(Path(workdir) / "serve.log", "w"), text=True, env=env)
        line = self.proc.stdout.readline()
        if not line.startswith("vts: ready"):
            raise SystemExit(f"vts serve did not start: {line!r}")
        out = subprocess.run([vts, "--data-dir", str(self.data), "--db", db, "token", "create", "--name", "bench",
                              "--scope", "read"], capture_output=True, text=True, env=env, check=True)
        self.token = out.stdout.strip().splitlines()[-1]

    def get(self, path, accept="application/json"):
        req = urllib.request.Request(f"http://127.0.0.1:{self.http}{path}",
                                     headers={"Authorization": f"Bearer {self.token}", "Accept": accept})
        return urllib.request.urlopen(req, timeout=600)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def pages(sw, count, rng):
    times = []
    rows = 0
    for _ in range(count):
        customer = rng.randint(1, CUSTOMERS)
        day = rng.randint(0, 22)
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((START_MS + day * DAY_MS) / 1000))
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((START_MS + (day + 7) * DAY_MS) / 1000))
        q = {"customer_id": customer, "since": since, "until": until, "limit": 100}
        for _ in range(4):
            t0 = time.perf_counter()
            with sw.get("/api/v1/cdrs?" + urllib.parse.urlencode(q)) as r:
                page = json.loads(r.read())
            times.append((time.perf_counter() - t0) * 1000)
            rows += len(page["items"])
            if not page["next_cursor"]:
                break
            q["cursor"] = page["next_cursor"]
    return {"requests": len(times), "rows": rows, "p50_ms": round(percentile(times, 50), 2),
            "p95_ms": round(percentile(times, 95), 2), "p99_ms": round(percentile(times, 99), 2),
            "max_ms": round(max(times), 2)}


def export(sw):
    pid = sw.proc.pid
    before = rss_kib(pid)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(pid))
            time.sleep(0.05)

    t = threading.Thread(target=sample)
    t.start()
    t0 = time.perf_counter()
    lines = 0
    size = 0
    with sw.get("/api/v1/cdrs", accept="text/csv") as r:
        while True:
            chunk = r.read(1 << 16)
            if not chunk:
                break
            size += len(chunk)
            lines += chunk.count(b"\n")
    seconds = time.perf_counter() - t0
    done.set()
    t.join()
    return {"records": lines - 1, "bytes": size, "seconds": round(seconds, 2),
            "rss_before_mib": round(before / 1024, 1), "rss_peak_mib": round(peak[0] / 1024, 1)}


def backend(name, url, args, workdir, rng):
    log(f"{name}: filling {args.cdrs} CDRs")
    fill = run_json([str(Path(args.examples_dir) / "examples" / "cdr_fill"), url, str(args.cdrs), str(CUSTOMERS)])
    log(f"{name}: {fill}")
    sw = Switch(args.vts, url, workdir)
    try:
        p = pages(sw, 20 if args.smoke else 300, rng)
        log(f"{name}: pages {p}")
        e = export(sw)
        log(f"{name}: export {e}")
        if e["records"] != args.cdrs:
            raise SystemExit(f"{name}: the export held {e['records']} of {args.cdrs} records")
    finally:
        sw.stop()
    return {"fill": fill, "pages": p, "export": e}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vts", required=True)
    ap.add_argument("--examples-dir", required=True)
    ap.add_argument("--postgres-url")
    ap.add_argument("--cdrs", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--smoke", action="store_true", help="small counts: checks the bench runs, not speed")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "api.json"))
    args = ap.parse_args()
    if args.smoke:
        args.cdrs, args.events = 3_000, 2_000
    rng = random.Random(7)
    results = {"cdrs": args.cdrs}
    with tempfile.TemporaryDirectory(prefix="vts-api-bench.") as tmp:
        sqlite_dir = Path(tmp) / "sqlite"
        sqlite_dir.mkdir()
        results["sqlite"] = backend("sqlite", f"sqlite://{sqlite_dir / 'vts.db'}", args, sqlite_dir, rng)
        wh_sqlite = f"sqlite://{Path(tmp) / 'webhooks.db'}"
        results["webhooks"] = {"sqlite": run_json([str(Path(args.examples_dir) / "examples" / "webhook_rate"),
                                                   wh_sqlite, str(args.events)])}
        log(f"webhooks, sqlite: {results['webhooks']['sqlite']}")
        if args.postgres_url:
            base = args.postgres_url.rsplit("/", 1)[0]
            for db in ["vts_api_bench", "vts_webhook_bench"]:
                subprocess.run(["psql", args.postgres_url, "-qc", f"DROP DATABASE IF EXISTS {db}"], check=True,
                               capture_output=True)
                subprocess.run(["psql", args.postgres_url, "-qc", f"CREATE DATABASE {db}"], check=True,
                               capture_output=True)
            pg_dir = Path(tmp) / "postgres"
            pg_dir.mkdir()
            results["postgres"] = backend("postgres", f"{base}/vts_api_bench", args, pg_dir, rng)
            results["webhooks"]["postgres"] = run_json(
                [str(Path(args.examples_dir) / "examples" / "webhook_rate"), f"{base}/vts_webhook_bench",
                 str(args.events)])
            log(f"webhooks, postgres: {results['webhooks']['postgres']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

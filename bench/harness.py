#!/usr/bin/env python3
"""vts against Kamailio, side by side, on this machine (run it through bench/run).

Runs, for each proxy in turn, the same ramp of sipp load (bench/sipp/uac.xml as the customer,
bench/sipp/uas.xml as two carriers of priority 10 and 5) with the same pass rule and the same
nice level, and finds its highest passing rate. Then, for vts: the time INVITEs and replies
spend inside the switch at half of its highest rate; a concurrency run (calls held 10 s) for
the memory per dialog of both; and the CDR writer's rate into SQLite and PostgreSQL.

Everything runs on loopback; every step is bounded in calls and time.
Standard library only.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import uuid
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")
CHANNEL_LIMIT = 50_000


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def free_port():
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


# ---------------------------------------------------------------- process accounting


def group_pids(pgid):
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 (pgrp) is index 2 after the comm field
            pids.append(int(d))
    return pids


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except OSError:
            pass
    return total / CLK_TCK


def pss_kib(pids):
    """Proportional set size: shared memory (Kamailio's shm) counted once across processes."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


class Proxy:
    """A proxy under test, started in its own process group."""

    name = "proxy"

    def __init__(self):
        self.proc = None

    def pids(self):
        return group_pids(self.proc.pid)

    def cpu(self):
        return cpu_seconds(self.pids())

    def memory_kib(self):
        return pss_kib(self.pids())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def before_step(self):
        pass

    def after_step(self):
        return {}

    def dialogs(self):
        return None


def fresh_database(url, name):
    """A new, empty PostgreSQL database on the server of `url`; returns its URL."""
    base, _, _ = url.rpartition("/")
    db = f"{name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    out = subprocess.run(["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {db}"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"cannot create database {db}: {out.stderr}")
    return f"{base}/{db}"


class Direct(Proxy):
    """No proxy: the customer calls the carrier directly. Its highest passing rate is the
    ceiling of the load generator on this machine."""

    name = "direct"

    def __init__(self, carrier_port):
        super().__init__()
        self.port = carrier_port

    def pids(self):
        return []

    def stop(self):
        pass


class Vts(Proxy):
    name = "vts"

    def __init__(self, binary, workdir, port, carriers, nice, db_url, http=None, trace_mode=None, api=False):
        super().__init__()
        self.http = http
        self.binary = binary
        self.dir = workdir / f"vts-{port}"
        self.dir.mkdir()
        self.db = db_url
        self.port = port
        self.cli("customer", "add", "--name", "load", "--ip", "127.0.0.1", "--max-channels", str(CHANNEL_LIMIT))
        # One address sending thousands of INVITEs a second is a flood unless whitelisted, as an
        # operator whitelists a big customer's SBC (the check itself still runs).
        self.cli("whitelist", "add", "127.0.0.1", "--reason", "load generator")
        for i, (port_, prio) in enumerate(carriers):
            self.cli("carrier", "add", "--name", f"carrier-{i}", "--host", "127.0.0.1", "--port", str(port_),
                     "--priority", str(prio))
        env = dict(os.environ, VTS_LOG="warn")
        if api:
            # 40 requests a second from one token: above the default rate of 600 a minute.
            env["VTS_API_RATE_PER_MINUTE"] = "100000"
            env["VTS_API_BURST"] = "1000"
        if trace_mode:
            env["VTS_TRACE_MODE"] = trace_mode
        self.proc = subprocess.Popen(
            ["nice", "-n", str(nice), str(self.binary), "--data-dir", str(self.dir),
             *(["--db", self.db] if self.db else []), "serve",
             "--sip", f"udp:127.0.0.1:{port}", "--http", http or "off"],
            stdout=subprocess.PIPE, stderr=open(self.dir / "serve.log", "w"), env=env, start_new_session=True)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("vts: ready"):
            raise SystemExit(f"vts did not start: {line!r}\n{(self.dir / 'serve.log').read_text()}")
        # With metrics on, a scraper reads /metrics every 5 s, as Prometheus would.
        self.scrapes, self.scrape_errors = 0, 0
        self.scraping = http is not None
        if self.scraping:
            threading.Thread(target=self.scrape, daemon=True).start()
        # With the API under load (vts-api), a client reads a page of the newest 100 CDRs and
        # the status, 20 of each a second (a busy billing integration and a dashboard), for the
        # whole ramp. Paced: a client spinning as fast as it can would take a core of the
        # two from the switch and the load generator, which measures the machine, not vts.
        self.api_requests, self.api_errors = 0, 0
        if api and http:
            self.token = self.cli("token", "create", "--name", "bench", "--scope", "read").strip().splitlines()[-1]
            threading.Thread(target=self.api_load, daemon=True).start()

    def scrape(self):
        while self.scraping:
            try:
                with urllib.request.urlopen(f"http://{self.http}/metrics", timeout=5) as r:
                    r.read()
                self.scrapes += 1
            except OSError:
                self.scrape_errors += 1
            time.sleep(5)

    def api_load(self):
        headers = {"Authorization": f"Bearer {self.token}"}
        next_at = time.monotonic()
        while self.scraping:
            next_at += 0.05
            time.sleep(max(0.0, next_at - time.monotonic()))
            for path in ("/api/v1/cdrs?limit=100", "/api/v1/status"):
                try:
                    req = urllib.request.Request(f"http://{self.http}{path}", headers=headers)
                    with urllib.request.urlopen(req, timeout=5) as r:
                        r.read()
                    self.api_requests += 1
                except OSError:
                    self.api_errors += 1

    def stop(self):
        self.scraping = False
        super().stop()

    def cli(self, *args):
        db = ["--db", self.db] if self.db else []
        out = subprocess.run([str(self.binary), "--data-dir", str(self.dir), *db, *args], capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"vts {' '.join(args)}: {out.stderr}")
        return out.stdout

    def status(self):
        return json.loads(self.cli("status", "--format", "json"))

    def caps(self, status=None):
        s = status or self.status()
        return s.get("guards", {}).get("caps_reached", {})

    def before_step(self):
        self.cli("status", "--reset-latency")
        self.caps_before = self.caps()

    def after_step(self):
        s = self.status()
        # A bound of docs/SECURITY.md reached during a step refuses calls: say which.
        before = getattr(self, "caps_before", {})
        caps = {k: v - before.get(k, 0) for k, v in self.caps(s).items() if v > before.get(k, 0)}
        return {"invite_latency_us": s["invite_latency"], "reply_latency_us": s["reply_latency"],
                "caps_reached": caps}

    def dialogs(self):
        return self.status()["calls"]

    def cdr_count(self):
        return len(json.loads(self.cli("cdr", "list", "--limit", "10000000", "--format", "json")))


class Kamailio(Proxy):
    name = "kamailio"

    def __init__(self, workdir, port, carriers, nice, db_url, children=4):
        super().__init__()
        self.dir = workdir / f"kamailio-{port}"
        self.dir.mkdir()
        self.ctl = self.dir / "ctl.sock"
        dispatcher = self.dir / "dispatcher.list"
        dispatcher.write_text("".join(f"1 sip:127.0.0.1:{p} 0 {prio}\n" for p, prio in carriers))
        out = subprocess.run(["psql", db_url, "-q", "-v", "ON_ERROR_STOP=1", "-f", str(BENCH / "kamailio" / "acc.sql")],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"acc tables: {out.stderr}")
        defines = {
            "LISTEN": f"udp:127.0.0.1:{port}",
            "CTL_SOCKET": f'"unix:{self.ctl}"',
            "DISPATCHER_LIST": f'"{dispatcher}"',
            "ACC_DB": f'"{db_url}"',
            "CHANNEL_LIMIT": str(CHANNEL_LIMIT),
            "CHILDREN": str(children),
        }
        args = ["nice", "-n", str(nice), "kamailio", "-f", str(BENCH / "kamailio" / "kamailio.cfg"), "-DD", "-E",
                "-m", "2048", "-M", "64", "-x", "tlsf", "-X", "tlsf", "-Y", str(self.dir), "-P", str(self.dir / "pid")]
        for k, v in defines.items():
            args += ["-A", f"{k}={v}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(self.dir / "kamailio.log", "w"),
                                     start_new_session=True)
        deadline = time.time() + 20
        while not self.ctl.exists():
            if self.proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"kamailio did not start:\n{(self.dir / 'kamailio.log').read_text()[-3000:]}")
            time.sleep(0.1)

    def kamcmd(self, *args):
        out = subprocess.run(["kamcmd", "-s", f"unix:{self.ctl}", *args], capture_output=True, text=True)
        return out.stdout

    def dialogs(self):
        out = self.kamcmd("stats.get_statistics", "active_dialogs")
        m = re.search(r"active_dialogs\D+(\d+)", out)
        if not m:
            log(f"kamcmd stats: {out!r}")
        return int(m.group(1)) if m else None

    def shm_used(self):
        out = self.kamcmd("core.shmmem")
        m = re.search(r"used\D+(\d+)", out)
        if not m:
            log(f"kamcmd core.shmmem: {out!r}")
        return int(m.group(1)) if m else None


# ---------------------------------------------------------------- sipp


def sipp_uas(port, nice, workdir):
    return subprocess.Popen(
        ["nice", "-n", str(nice), "sipp", "-sf", str(BENCH / "sipp" / "uas.xml"), "-i", "127.0.0.1", "-p", str(port),
         "-t", "u1", "-aa", "-nostdin", "-buff_size", "8388608", "-max_recv_loops", "10000", "-max_sched_loops", "10000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=workdir, start_new_session=True)


def parse_sipp(out):
    def field(name):
        m = re.search(rf"{re.escape(name)}\s*\|\s*([\d.]+)[^|]*\|\s*([\d.]+)", out)
        return float(m.group(2)) if m else None

    return {
        "successful": int(field("Successful call") or 0),
        "failed": int(field("Failed call") or 0),
        "created": int(field("Outgoing call created") or 0),
        "achieved_cps": field("Call Rate"),
    }


def sipp_step(target, rate, seconds, hold_ms, nice, workdir):
    calls = int(rate * seconds)
    cmd = ["nice", "-n", str(nice), "sipp", "-sf", str(BENCH / "sipp" / "uac.xml"), "-i", "127.0.0.1",
           "-p", str(free_port()), "-t", "u1", "-nostdin", "-trace_err", "-default_behaviors", "-abortunexp", "-s", "34911234567", "-r", str(rate), "-m", str(calls),
           "-d", str(hold_ms), "-l", str(CHANNEL_LIMIT), "-buff_size", "8388608", "-max_recv_loops", "10000",
           "-max_sched_loops", "10000", "-timeout", str(int(seconds + hold_ms / 1000 + 40)), "-timeout_error",
           f"127.0.0.1:{target}"]
    started = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    result = parse_sipp(out.stdout)
    result.update({"rate": rate, "calls": calls, "exit": out.returncode, "wall_s": round(time.time() - started, 2)})
    return result


def passes(step, seconds, hold_ms):
    """The pass rule, the same for both proxies: every call of the step succeeded, and the
    step took at most 10 % (plus 1 s) longer than its calls need at the asked rate: a proxy
    (or generator) that cannot keep the rate makes the step last longer."""
    budget = (seconds + hold_ms / 1000) * 1.1 + 1
    return (step["exit"] == 0 and step["failed"] == 0 and step["successful"] == step["calls"]
            and step["wall_s"] <= budget)


# ---------------------------------------------------------------- runs


def ramp(proxy, port, rates, seconds, hold_ms, nice, workdir, refine=0):
    """Steps up the rates until one fails; then, with `refine` > 0, tries that many rates
    evenly between the last pass and the first failure."""

    def run(rate):
        proxy.before_step()
        cpu0, t0 = proxy.cpu(), time.time()
        step = sipp_step(port, rate, seconds, hold_ms, nice, workdir)
        elapsed = time.time() - t0
        step["cpu_percent"] = round(100 * (proxy.cpu() - cpu0) / elapsed, 1)
        step["memory_mib"] = round(proxy.memory_kib() / 1024, 1)
        step.update(proxy.after_step())
        step["pass"] = passes(step, seconds, hold_ms)
        log(f"{proxy.name}: {rate} cps -> {'pass' if step['pass'] else 'FAIL'} "
            f"(ok {step['successful']}/{step['calls']}, failed {step['failed']}, {step['wall_s']} s, "
            f"cpu {step['cpu_percent']} %, mem {step['memory_mib']} MiB"
            f"{', caps reached ' + str(step['caps_reached']) if step.get('caps_reached') else ''})")
        time.sleep(3)
        return step

    best, steps, failed_at = None, [], None
    for rate in rates:
        step = run(rate)
        steps.append(step)
        if not step["pass"]:
            failed_at = rate
            break
        best = step
    if refine and failed_at and best:
        base = best["rate"]
        gap = (failed_at - base) / (refine + 1)
        for i in range(1, refine + 1):
            step = run(int(base + gap * i) // 10 * 10 or 10)
            steps.append(step)
            if not step["pass"]:
                break
            best = step
    return best, steps


def concurrency(proxy, port, rate, hold_s, nice, workdir):
    """Calls held `hold_s` s at `rate` cps: rate * hold_s dialogs up at the plateau."""
    idle = proxy.memory_kib()
    shm_idle = proxy.shm_used() if isinstance(proxy, Kamailio) else None
    seconds = hold_s + 4
    calls = int(rate * seconds)
    cmd = ["nice", "-n", str(nice), "sipp", "-sf", str(BENCH / "sipp" / "uac.xml"), "-i", "127.0.0.1",
           "-p", str(free_port()), "-t", "u1", "-nostdin", "-trace_err", "-default_behaviors", "-abortunexp", "-s", "34911234567", "-r", str(rate), "-m", str(calls),
           "-d", str(hold_s * 1000), "-l", str(CHANNEL_LIMIT), "-buff_size", "8388608", "-max_recv_loops", "10000",
           "-max_sched_loops", "10000", "-timeout", str(seconds + hold_s + 60), "-timeout_error", f"127.0.0.1:{port}"]
    load = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=workdir)
    time.sleep(hold_s + 1)  # the plateau: the first calls are about to end
    peak = {"memory_kib": proxy.memory_kib(), "dialogs": proxy.dialogs()}
    if isinstance(proxy, Kamailio):
        peak["shm_used"] = proxy.shm_used()
    out, _ = load.communicate()
    result = parse_sipp(out)
    result.update({"rate": rate, "hold_s": hold_s, "idle_memory_kib": idle, **peak})
    dialogs = peak["dialogs"] or 0
    if dialogs:
        result["kib_per_dialog_pss"] = round((peak["memory_kib"] - idle) / dialogs, 2)
        if shm_idle is not None and peak.get("shm_used") is not None:
            result["kib_per_dialog_shm"] = round((peak["shm_used"] - shm_idle) / 1024 / dialogs, 2)
    log(f"{proxy.name}: concurrency {dialogs} dialogs, {result.get('kib_per_dialog_pss')} KiB/dialog (PSS)"
        + (f", {result.get('kib_per_dialog_shm')} KiB/dialog (shm)" if "kib_per_dialog_shm" in result else ""))
    return result


def cdr_rate(cargo_profile_dir, url, count):
    exe = cargo_profile_dir / "examples" / "cdr_rate"
    out = subprocess.run([str(exe), url, str(count)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"cdr_rate {url}: {out.stderr}")
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vts", required=True, help="the vts binary")
    ap.add_argument("--examples-dir", required=True, help="target/<profile> with examples/cdr_rate")
    ap.add_argument("--postgres-url", help="a PostgreSQL database for the CDR writer run")
    ap.add_argument("--smoke", action="store_true", help="one short step each: checks the bench runs, not speed")
    ap.add_argument("--only", choices=["vts", "vts-metrics", "vts-trace-all", "vts-api", "kamailio", "direct"], help="run one only")
    ap.add_argument("--api-load", action="store_true",
                    help="also run vts with a client reading the REST API (CDR pages, status) without pause "
                         "during the ramp (vts-api)")
    ap.add_argument("--trace-all", action="store_true",
                    help="also run vts storing every call's SIP trace (vts-trace-all: [trace] mode = all, "
                         "metrics off) beside plain vts (mode = failed, the default)")
    ap.add_argument("--metrics", action="store_true",
                    help="also run vts with its HTTP server and metrics on (vts-metrics), scraped every 5 s; "
                         "plain vts runs with --http off (no recorder: its counters are no-ops)")
    ap.add_argument("--out", default=str(BENCH / "results" / "latest.json"))
    ap.add_argument("--nice", type=int, default=0)
    ap.add_argument("--rates", help="comma-separated ramp (default: 250 to 6000)")
    ap.add_argument("--no-concurrency", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs) under /tmp")
    args = ap.parse_args()

    if args.smoke:
        rates, seconds, hold_ms, conc = [50], 2, 200, None
        cdr_count = 2000
    else:
        rates = [250, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000]
        seconds, hold_ms, conc = 10, 1000, (2000, 10)
        cdr_count = 100_000

    if args.rates:
        rates = [int(r) for r in args.rates.split(",")]
    if args.no_concurrency:
        conc = None
    results = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "smoke": args.smoke,
               "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip(),
               "machine": {"cpus": os.cpu_count()}, "rule": "every call succeeds, and the step lasts at most 1.1 x (step + hold) + 1 s",
               "step_seconds": seconds, "hold_ms": hold_ms}
    keep = contextlib.nullcontext(tempfile.mkdtemp(prefix="vts-bench-")) if args.keep else None
    with keep or tempfile.TemporaryDirectory(prefix="vts-bench-") as tmp:
        if args.keep:
            log(f"work directory kept: {tmp}")
        workdir = Path(tmp)
        names = ["vts", "kamailio"] if args.smoke else ["direct", "vts", "kamailio"]
        if args.metrics:
            names.insert(names.index("vts") + 1, "vts-metrics")
        if args.trace_all:
            names.insert(names.index("vts") + 1, "vts-trace-all")
        chosen = [args.only] if args.only else names
        if args.only == "vts" and args.metrics:
            chosen.append("vts-metrics")
        if args.only == "vts" and args.trace_all:
            chosen.append("vts-trace-all")
        if args.api_load:
            if args.only == "vts":
                chosen.append("vts-api")
            elif not args.only:
                chosen.insert(chosen.index("vts") + 1, "vts-api")
        for name in chosen:

            def start():
                carrier_ports = [free_port(), free_port()]
                carriers = [sipp_uas(p, args.nice, workdir) for p in carrier_ports]
                if name == "direct":
                    time.sleep(0.5)
                    return Direct(carrier_ports[0]), carrier_ports[0], carriers
                port = free_port()
                db = fresh_database(args.postgres_url, name) if args.postgres_url else None
                routes = list(zip(carrier_ports, [10, 5]))
                if name in ("vts", "vts-metrics", "vts-trace-all", "vts-api"):
                    http = f"127.0.0.1:{free_port()}" if name in ("vts-metrics", "vts-api") else None
                    mode = "all" if name == "vts-trace-all" else None
                    proxy = Vts(Path(args.vts), workdir, port, routes, args.nice, db, http, mode,
                                api=name == "vts-api")
                else:
                    if not db:
                        raise SystemExit("Kamailio's accounting needs --postgres-url")
                    proxy = Kamailio(workdir, port, routes, args.nice, db)
                time.sleep(0.5)
                return proxy, port, carriers

            def stop(proxy, carriers):
                proxy.stop()
                for c in carriers:
                    c.kill()
                    c.wait()

            proxy, port, carriers = start()
            try:
                best, steps = ramp(proxy, port, rates, seconds, hold_ms, args.nice, workdir,
                                   refine=0 if args.smoke else 4)
                entry = {"highest_passing_cps": best["rate"] if best else 0, "steps": steps}
                if name.startswith("vts") and best and not args.smoke:
                    half = best["rate"] // 2
                    time.sleep(2)
                    proxy.before_step()
                    step = sipp_step(port, half, seconds, hold_ms, args.nice, workdir)
                    step.update(proxy.after_step())
                    entry["at_half_rate"] = step
                    log(f"vts at {half} cps: INVITE p99 {step['invite_latency_us']['p99_us']} us, "
                        f"reply p99 {step['reply_latency_us']['p99_us']} us")
                if name.startswith("vts"):
                    if proxy.scraping:
                        entry["scrapes"], entry["scrape_errors"] = proxy.scrapes, proxy.scrape_errors
                        entry["api_requests"], entry["api_errors"] = proxy.api_requests, proxy.api_errors
                    time.sleep(2)
                    entry["cdrs_written"] = proxy.cdr_count()
                    entry["calls_made"] = sum(s["calls"] for s in steps) + entry.get("at_half_rate", {}).get("calls", 0)
            finally:
                stop(proxy, carriers)
            if conc and name != "direct":
                # A fresh process, so that the memory measured is the dialogs' alone.
                proxy, port, carriers = start()
                try:
                    time.sleep(2)
                    entry["concurrency"] = concurrency(proxy, port, conc[0], conc[1], args.nice, workdir)
                finally:
                    stop(proxy, carriers)
            results[name] = entry
        results["cdr_writer"] = {
            "sqlite": cdr_rate(Path(args.examples_dir), f"sqlite://{Path(tmp) / 'cdr-bench.db'}", cdr_count)}
        if args.postgres_url:
            results["cdr_writer"]["postgres"] = cdr_rate(Path(args.examples_dir), args.postgres_url, cdr_count)

    v, k = results.get("vts", {}), results.get("kamailio", {})
    if v and k and k.get("highest_passing_cps"):
        results["ratio"] = round(v["highest_passing_cps"] / k["highest_passing_cps"], 2)
    vm = results.get("vts-metrics", {})
    if v and vm and v.get("highest_passing_cps"):
        results["metrics_ratio"] = round(vm["highest_passing_cps"] / v["highest_passing_cps"], 3)
    vt = results.get("vts-trace-all", {})
    if v and vt and v.get("highest_passing_cps"):
        results["trace_all_ratio"] = round(vt["highest_passing_cps"] / v["highest_passing_cps"], 3)
    va = results.get("vts-api", {})
    if v and va and v.get("highest_passing_cps"):
        results["api_load_ratio"] = round(va["highest_passing_cps"] / v["highest_passing_cps"], 3)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")

    print("\n== vts vs Kamailio (same machine, same harness, same pass rule) ==")
    for name in ("direct", "vts", "vts-metrics", "vts-trace-all", "vts-api", "kamailio"):
        if name in results:
            e = results[name]
            last = next((s for s in reversed(e["steps"]) if s["pass"]), None)
            cpu = f"{last['cpu_percent']} % CPU, {last['memory_mib']} MiB" if last else "-"
            print(f"{name:>9}: highest passing {e['highest_passing_cps']} cps ({cpu} at that step)")
    if "ratio" in results:
        print(f"    ratio: vts / Kamailio = {results['ratio']}")
    if "trace_all_ratio" in results:
        print(f"    ratio: vts storing every trace / failed calls only = {results['trace_all_ratio']}")
    if "metrics_ratio" in results:
        print(f"    ratio: vts with metrics / without = {results['metrics_ratio']} "
              f"({vm.get('scrapes')} scrapes, {vm.get('scrape_errors')} failed)")
    if "api_load_ratio" in results:
        print(f"    ratio: vts with the API read (a CDR page and the status 20 times a second each) / without = {results['api_load_ratio']} "
              f"({va.get('api_requests')} API requests, {va.get('api_errors')} failed)")
    if "at_half_rate" in v:
        h = v["at_half_rate"]
        print(f"vts at {h['rate']} cps: time inside the switch, INVITE p50 {h['invite_latency_us']['p50_us']} us "
              f"p99 {h['invite_latency_us']['p99_us']} us; reply p99 {h['reply_latency_us']['p99_us']} us")
    for name in ("vts", "kamailio"):
        c = results.get(name, {}).get("concurrency")
        if c:
            print(f"{name:>9}: {c.get('dialogs')} dialogs, {c.get('kib_per_dialog_pss')} KiB/dialog (PSS)"
                  + (f", {c['kib_per_dialog_shm']} KiB/dialog (shm)" if "kib_per_dialog_shm" in c else ""))
    for backend, r in results["cdr_writer"].items():
        print(f"CDR writer, {backend}: {r['cdrs_per_sec']} CDRs/s ({r['count']} CDRs in {r['seconds']} s)")
    print(f"results: {args.out}")
    if args.smoke:
        ok = all(results.get(n, {}).get("highest_passing_cps") for n in (["vts", "kamailio"] if not args.only else [args.only]))
        ok = ok and all(r["cdrs_per_sec"] > 0 for r in results["cdr_writer"].values())
        print("smoke:", "ok" if ok else "FAILED")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

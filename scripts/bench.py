#!/usr/bin/env python3
"""Side-by-side benchmark suite of wasmtap and bpftrace on this machine.

Each scenario runs its variants interleaved (untraced, wasmtap, bpftrace,
untraced, wasmtap, ...) and reports medians, min-max and the
wasmtap/bpftrace ratio: a markdown table in BENCHMARKS.md (full runs) and
JSON in target/bench.json (every run). Needs root; installs bpftrace from
Debian's packages when missing and builds its C workloads with cc.

    scripts/bench.py            full run, rewrites BENCHMARKS.md
    scripts/bench.py --quick    few small repetitions: a CI smoke test that
                                every row is produced, not a measurement
    scripts/bench.py --only NAME[,NAME]   a subset of scenarios

A scenario whose feature this build lacks reports its rows as "-" with the
reason, so the table always has every row. BENCH_DEBUG=1 reports how long
each tracer took to attach and to stop.

Scenarios: start-to-exit and start-to-attached; per-event overhead of
counting every syscall by process name (and drops); printf per event
(events/s, loss, host peak RSS); 999 Hz profiling overhead; uprobe per-hit
overhead; start to attached and SIGINT to exit with 600 uprobes; compile time
of a 500-line script, cold and cached; handler-heavy begin scripts (1M array
updates, 1M sprintf) against plain Rust; 1/4/16 tenants of the daemon
(overhead per event, memory per tenant).
"""
import json, os, platform, re, shutil, statistics, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WASMTAP = os.environ.get("WASMTAP_BIN", os.path.join(ROOT, "target/release/wasmtap"))
QUICK = "--quick" in sys.argv
ONLY = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--only=")), None)
REPS = 1 if QUICK else 7
SCALE = 1 if QUICK else 10

WORKLOADS = {
    # N openat+close of one path.
    "openloop": r"""
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    for (long i = 0; i < n; i++) { int fd = openat(AT_FDCWD, argv[2], O_RDONLY); if (fd >= 0) close(fd); }
    return 0;
}
""",
    # N getppid() calls: the cheapest syscall, so tracing cost dominates.
    "ppidloop": r"""
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    for (long i = 0; i < n; i++) getppid();
    return 0;
}
""",
    # CPU-bound with distinct functions and frame pointers, for profiling.
    "spin": r"""
#include <stdlib.h>
__attribute__((noinline)) long leaf(long x) { for (int i = 0; i < 1000; i++) x = x * 6364136223846793005L + 1; return x; }
__attribute__((noinline)) long middle(long x) { return leaf(x) ^ leaf(x + 1); }
__attribute__((noinline)) long top(long x) { return middle(x) + middle(x + 2); }
int main(int argc, char **argv) {
    long n = atol(argv[1]), acc = 0;
    for (long i = 0; i < n; i++) acc += top(i);
    return (int)(acc & 1);
}
""",
    # work(a, b) called N times, for uprobes.
    "workloop": r"""
#include <stdlib.h>
__attribute__((noinline)) int work(int a, int b) { __asm__ volatile(""); return a + b; }
int main(int argc, char **argv) {
    long n = atol(argv[1]); int acc = 0;
    for (long i = 0; i < n; i++) acc += work((int)i, 3);
    return acc & 1;
}
""",
}


def ensure_bpftrace():
    if shutil.which("bpftrace"):
        return True
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "bpftrace"], check=False,
                   capture_output=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    return shutil.which("bpftrace") is not None


class Bench:
    def __init__(self, have_bpftrace):
        self.have_bpftrace = have_bpftrace
        self.work = tempfile.mkdtemp(prefix="wasmtap-bench-")
        self.bins = {}
        for name, source in WORKLOADS.items():
            path = os.path.join(self.work, name)
            flags = ["-O2", "-fno-omit-frame-pointer"] if name == "spin" else ["-O2"]
            subprocess.run(["cc", *flags, "-x", "c", "-", "-o", path], input=source.encode(), check=True)
            self.bins[name] = path
        self.target = os.path.join(self.work, "bench-target-file")
        open(self.target, "w").close()
        self.rows = {}  # name -> {"wasmtap": summary, "bpftrace": summary, "note": str}

    def row(self, name, ours, theirs=None, note=""):
        self.rows[name] = {"wasmtap": summary(ours), "bpftrace": summary(theirs or []), "note": note}

    def missing(self, names, reason):
        for name in names:
            self.rows[name] = {"wasmtap": None, "bpftrace": None, "note": reason}

    def supports(self, script):
        """Whether this build compiles `script` (a feature may not exist yet)."""
        r = subprocess.run([WASMTAP, "-p", "2", "-e", script], capture_output=True, text=True)
        return r.returncode == 0, (r.stderr.strip().splitlines() or [""])[0][:120]


def run_timed(cmd, **kw):
    """Wall seconds and peak RSS (KiB) of one command run to completion."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    _, _, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss


class Tracer:
    """A tracer in the background, ready once `marker` shows up."""

    def __init__(self, cmd, marker, stream="stderr", count=None):
        """`count`: count the stdout lines containing this text from then on
        (read as they come, so the tracer never blocks on a full pipe)."""
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.started = time.perf_counter()
        self.cmd = cmd
        source = self.proc.stderr if stream == "stderr" else self.proc.stdout
        for line in source:
            if marker in line:
                break
        self.ready_after = time.perf_counter() - self.started
        self.counted = 0
        self.counter = None
        if count is not None:
            def read():
                for line in self.proc.stdout:
                    if count in line:
                        self.counted += 1
            self.counter = threading.Thread(target=read, daemon=True)
            self.counter.start()

    def stop(self):
        """SIGINT; returns (stdout, stderr, peak RSS KiB before the stop)."""
        rss = status_kib(self.proc.pid, "VmHWM:")
        t0 = time.perf_counter()
        self.proc.send_signal(2)
        if self.counter is not None:
            self.counter.join(timeout=120)
        try:
            out, err = self.proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        self.stopped_after = time.perf_counter() - t0
        if os.environ.get("BENCH_DEBUG"):
            print(f"# stop {self.cmd[0]} took {self.stopped_after:.2f} s, ready after {self.ready_after:.2f} s", file=sys.stderr)
        return out, err, rss


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def dropped(stderr):
    return sum(int(m) for m in re.findall(r"WARNING: (\d+) events dropped", stderr or ""))


# ---------------------------------------------------------------- scenarios

def startup(b):
    a, t = [], []
    for _ in range(REPS):
        a.append(run_timed([WASMTAP, "-e", "probe begin { exit() }"])[0])
        if b.have_bpftrace:
            t.append(run_timed(["bpftrace", "-e", "BEGIN { exit(); }"])[0])
    b.row("start to exit, begin-only script (s)", a, t)
    a, t = [], []
    for _ in range(REPS):
        tr = Tracer([WASMTAP, "-v", "-e", 'probe syscall.openat { printf("%s(%d) %s\\n", execname(), pid(), user_string($filename)) }'],
                    "attached; running")
        a.append(tr.ready_after)
        tr.stop()
        if b.have_bpftrace:
            tr = Tracer(["bpftrace", "-e", 'BEGIN { printf("ready\\n"); } tracepoint:syscalls:sys_enter_openat { printf("%s(%d) %s\\n", comm, pid, str(args->filename)); }'],
                        "ready", "stdout")
            t.append(tr.ready_after)
            tr.stop()
    b.row("start to attached, openat printf script (s)", a, t)


def counting(b):
    n = 1_000_000 * SCALE
    work = [b.bins["ppidloop"], str(n)]
    base, a, t, a_drops = [], [], [], []
    for _ in range(REPS):
        base.append(run_timed(work)[0])
        tr = Tracer([WASMTAP, "-v", "-e", "global c; probe syscall.* { c[execname()] <<< 1 } probe end { }"], "attached; running")
        a.append(run_timed(work)[0])
        _, err, _ = tr.stop()
        a_drops.append(dropped(err))
        if b.have_bpftrace:
            tr = Tracer(["bpftrace", "-e", 'BEGIN { printf("ready\\n"); } tracepoint:raw_syscalls:sys_enter { @[comm] = count(); } END { clear(@); }'], "ready", "stdout")
            t.append(run_timed(work)[0])
            tr.stop()
    untraced = statistics.median(base)
    b.row(f"{n} getppid() untraced (s)", base)
    b.row(f"{n} getppid() counted per process name (s)", a, t)
    b.row("counting overhead per event (ns)", [(x - untraced) / n * 1e9 for x in a],
          [(x - untraced) / n * 1e9 for x in t])
    b.row("counting: events dropped", a_drops, note="wasmtap counts and prints drops at exit")


def printf_path(b):
    n = 20_000 * SCALE
    work = [b.bins["openloop"], str(n), b.target]
    base, a, t, a_seen, t_seen, a_rss, t_rss = [], [], [], [], [], [], []
    for _ in range(REPS):
        base.append(run_timed(work)[0])
        # Both tools print to a pipe that this script drains line by line.
        tr = Tracer([WASMTAP, "-v", "-e", 'probe syscall.openat { if (execname() == "openloop") printf("%s(%d) %s\\n", execname(), pid(), user_string($filename)) }'],
                    "attached; running", count=b.target)
        a.append(run_timed(work)[0])
        time.sleep(0.3)
        a_rss.append(tr.stop()[2])
        a_seen.append(tr.counted)
        if b.have_bpftrace:
            tr = Tracer(["bpftrace", "-e", 'BEGIN { printf("ready\\n"); } tracepoint:syscalls:sys_enter_openat /comm == "openloop"/ { printf("%s(%d) %s\\n", comm, pid, str(args->filename)); }'],
                        "ready", "stdout", count=b.target)
            t.append(run_timed(work)[0])
            time.sleep(0.3)
            t_rss.append(tr.stop()[2])
            t_seen.append(tr.counted)
    b.row(f"{n} openat untraced (s)", base)
    b.row(f"{n} openat traced with printf to a pipe (s)", a, t)
    b.row(f"printf path: events delivered of {n}", a_seen, t_seen)
    b.row("printf path: events/s delivered", [s / x for s, x in zip(a_seen, a)], [s / x for s, x in zip(t_seen, t)])
    b.row("host peak RSS while tracing (MiB)", [r / 1024 for r in a_rss if r], [r / 1024 for r in t_rss if r])


def profiling(b):
    names = ["999 Hz profile: workload time (s)", "999 Hz profile: overhead on the profiled program (%)", "999 Hz profile: samples/s"]
    script = "global s; probe perf.sw.cpu_clock.sample(1001001) { if (pid() == target()) s[ubacktrace()] <<< 1 } probe end { n = 0; foreach (k in s) n += @count(s[k]); printf(\"samples %d\\n\", n) }"
    ok, why = b.supports(script)
    if not ok:
        return b.missing(names, f"not in this build: {why}")
    n = 50_000 * SCALE  # about 2 s of CPU in a full run
    base, a, t, a_rate = [], [], [], []
    for _ in range(REPS):
        base.append(run_timed([b.bins["spin"], str(n)])[0])
        for tool in (["wasmtap"] + (["bpftrace"] if b.have_bpftrace else [])):
            proc = subprocess.Popen([b.bins["spin"], str(n)], stdout=subprocess.DEVNULL)
            # The child runs at once; the tracer attaches a few ms later,
            # which both tools pay alike.
            if tool == "wasmtap":
                tr = subprocess.Popen([WASMTAP, "-x", str(proc.pid), "-e", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            else:
                # END clears the map: printing (and symbolizing) thousands of
                # stacks of an exited process is not what is measured here.
                tr = subprocess.Popen(["bpftrace", "-e", f"profile:hz:999 /pid == {proc.pid}/ {{ @[ustack] = count(); }} END {{ clear(@); }}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            start = time.perf_counter()
            proc.wait()
            elapsed = time.perf_counter() - start
            tr.send_signal(2)
            try:
                out, _ = tr.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                tr.kill()
                out, _ = tr.communicate()
            if tool == "wasmtap":
                a.append(elapsed)
                m = re.search(r"samples (\d+)", out)
                if m:
                    a_rate.append(int(m.group(1)) / elapsed)
            else:
                t.append(elapsed)
    untraced = statistics.median(base)
    b.row(names[0], a, t)
    b.row(names[1], [(x / untraced - 1) * 100 for x in a], [(x / untraced - 1) * 100 for x in t])
    b.row(names[2], a_rate)


def uprobes(b):
    names = ["uprobe: workload time (s)", "uprobe: overhead per hit (ns)"]
    binary = b.bins["workloop"]
    script = f'global c; probe process("{binary}").function("work") {{ c <<< 1 }} probe end {{ }}'
    ok, why = b.supports(script)
    if not ok:
        return b.missing(names, f"not in this build: {why}")
    n = 50_000 * SCALE
    base, a, t = [], [], []
    for _ in range(REPS):
        base.append(run_timed([binary, str(n)])[0])
        tr = Tracer([WASMTAP, "-v", "-e", script], "attached; running")
        a.append(run_timed([binary, str(n)])[0])
        tr.stop()
        if b.have_bpftrace:
            tr = Tracer(["bpftrace", "-e", f'BEGIN {{ printf("ready\\n"); }} uprobe:{binary}:work {{ @ = count(); }}'], "ready", "stdout")
            t.append(run_timed([binary, str(n)])[0])
            tr.stop()
    untraced = statistics.median(base)
    b.row(names[0], a, t)
    b.row(names[1], [(x - untraced) / n * 1e9 for x in a], [(x - untraced) / n * 1e9 for x in t])


# Few in --quick: bpftrace detaches each uprobe in ~100 ms.
MANY_FUNCTIONS = 30 if QUICK else 600


def many_uprobes(b):
    """Start to attached and SIGINT to exit with a uprobe on each of
    MANY_FUNCTIONS functions of one binary: detaching dominates when every
    uprobe is its own perf event (~100 ms each)."""
    n = MANY_FUNCTIONS
    names = [f"attach {n} uprobes (s)", f"exit after {n} uprobes attached (s)"]
    source = "".join(f"__attribute__((noinline)) int fn_{i}(int x) {{ __asm__ volatile(\"\"); return x + {i}; }}\n" for i in range(n))
    source += "int main(void) { int acc = 0;\n" + "".join(f"acc += fn_{i}(acc);\n" for i in range(n)) + "return acc & 1; }\n"
    binary = os.path.join(b.work, "manyfuncs")
    subprocess.run(["cc", "-O1", "-x", "c", "-", "-o", binary], input=source.encode(), check=True)
    script = f'global c; probe process("{binary}").function("fn_*") {{ c <<< 1 }} probe end {{ }}'
    ok, why = b.supports(script)
    if not ok:
        return b.missing(names, f"not in this build: {why}")
    attach, stop, t_attach, t_stop = [], [], [], []
    # Each bpftrace or pre-uprobe_multi exit takes about a minute: few repetitions.
    for _ in range(min(REPS, 3)):
        tr = Tracer([WASMTAP, "-v", "-e", script], "attached; running")
        attach.append(tr.ready_after)
        tr.stop()
        stop.append(tr.stopped_after)
        if b.have_bpftrace:
            # bpftrace refuses more than 512 probes unless told.
            tr = Tracer(["env", f"BPFTRACE_MAX_PROBES={2 * n}", "bpftrace", "-e", f'BEGIN {{ printf("ready\\n"); }} uprobe:{binary}:fn_* {{ @ = count(); }}'], "ready", "stdout")
            t_attach.append(tr.ready_after)
            tr.stop()
            t_stop.append(tr.stopped_after)
    b.row(names[0], attach, t_attach)
    b.row(names[1], stop, t_stop)


# The same logic as the two wasmtap scripts below, in plain Rust.
NATIVE_RS = r"""
use std::{collections::HashMap, fmt::Write, time::Instant};
fn main() {
    let mode = std::env::args().nth(1).unwrap();
    let start = Instant::now();
    if mode == "array" {
        let mut a: HashMap<i64, i64> = HashMap::new();
        for i in 0..1_000_000i64 { *a.entry(i % 1000).or_insert(0) += i; }
        println!("{}", a[&7]);
    } else {
        let mut n = 0usize;
        let mut s = String::new();
        for i in 0..1_000_000i64 { s.clear(); write!(s, "{}-{}", i, "x").unwrap(); n += s.len(); }
        println!("{}", n);
    }
    eprintln!("{}", start.elapsed().as_secs_f64());
}
"""

ARRAY_STP = """global a
probe begin { for (i = 0; i < 1000000; i++) a[i % 1000] += i; println(a[7]); exit() }
"""
SPRINTF_STP = """probe begin { n = 0; for (i = 0; i < 1000000; i++) n += strlen(sprintf("%d-%s", i, "x")); println(n); exit() }
"""


def script_500_lines():
    """A 500-line script using most of the language: functions, globals,
    arrays, statistics, foreach, printf, try/catch, regex."""
    out = ["global counts, names, lat, total"]
    for f in range(35):
        out += [
            f"function f{f}(x, s:string) {{",
            f"  if (x > {f}) total += x; else total -= x",
            f"  counts[s, x % 7] += {f}",
            f"  lat[s] <<< x * {f + 1}",
            f"  try {{ y = x / (x - {f}) }} catch (m) {{ names[x] = m }}",
            f"  return s =~ \"^a[0-9]+\" ? strlen(s) + {f} : x",
            "}",
        ]
    for p in range(60):
        out += [
            f"probe timer.ms({100 + p}) {{",
            f"  v = f{p % 35}({p}, sprintf(\"a%d\", {p}))",
            f"  printf(\"%d %s %5d\\n\", v, names[{p}], @count(lat[\"a{p}\"]))",
            "}",
        ]
    out += ["probe end {", "  foreach ([s, k] in counts- limit 10) printf(\"%s %d %d\\n\", s, k, counts[s, k])"]
    while len(out) < 498:
        out.append(f"  total += {len(out)}")
    out += ["  print(@hist_log(lat[\"a1\"]))", "}"]
    return "\n".join(out) + "\n"


def compile_times(b):
    script = script_500_lines()
    path = os.path.join(b.work, "big.stp")
    open(path, "w").write(script)
    cache = os.path.join(b.work, "cache")
    env = dict(os.environ, XDG_CACHE_HOME=cache)
    cold, cached = [], []
    for _ in range(REPS):
        shutil.rmtree(cache, ignore_errors=True)
        cold.append(run_timed([WASMTAP, "-p", "4", path], env=env)[0])
        cached.append(run_timed([WASMTAP, "-p", "4", path], env=env)[0])
    lines = script.count("\n")
    b.row(f"compile {lines}-line script, -p4, cold cache (s)", cold)
    b.row(f"compile {lines}-line script, -p4, cached (s)", cached)


def handlers_vs_rust(b):
    """Handler-heavy begin scripts against the same logic in plain Rust; the
    reference sits in the bpftrace column (see the note)."""
    native = os.path.join(b.work, "native")
    subprocess.run(["rustc", "-O", "-o", native, "-"], input=NATIVE_RS.encode(), check=True)
    start = statistics.median([run_timed([WASMTAP, "-e", "probe begin { exit() }"])[0] for _ in range(REPS)])
    for name, text, mode in (("1M array updates", ARRAY_STP, "array"), ("1M sprintf", SPRINTF_STP, "sprintf")):
        path = os.path.join(b.work, mode + ".stp")
        open(path, "w").write(text)
        ours = [run_timed([WASMTAP, "--handler-budget-ms", "60000", path])[0] - start for _ in range(REPS)]
        theirs = [float(subprocess.run([native, mode], capture_output=True, text=True).stderr) for _ in range(REPS)]
        b.row(f"begin script, {name}, minus start-up (s)", ours, theirs,
              note="reference column: the same logic in plain Rust (rustc -O)")


def tenants(b):
    n = 200_000 * SCALE
    work = [b.bins["ppidloop"], str(n)]
    sock = os.path.join(b.work, "daemon.sock")
    policy = os.path.join(b.work, "policy.toml")
    open(policy, "w").write('[default]\nlevel = "user"\n')
    daemon = subprocess.Popen([WASMTAP, "daemon", "--policy", policy, "--socket", sock], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(sock):
            time.sleep(0.02)
        base = [run_timed(work)[0] for _ in range(REPS)]
        untraced = statistics.median(base)
        idle_rss = rss_kib(daemon.pid)
        for count in (1, 4, 16):
            per_event, mem = [], []
            for _ in range(max(1, REPS // 2)):
                clients = [Tracer([WASMTAP, "--connect", sock, "-v", "-e", "global c; probe syscall.getppid { c <<< 1 } probe end { }"], "attached; running")
                           for _ in range(count)]
                mem.append((rss_kib(daemon.pid) - idle_rss) / 1024 / count)
                per_event.append((run_timed(work)[0] - untraced) / n * 1e9)
                for c in clients:
                    c.stop()
            b.row(f"{count} tenant(s) counting getppid: overhead per event (ns)", per_event)
            b.row(f"{count} tenant(s): daemon memory per tenant (MiB)", mem)
    finally:
        daemon.send_signal(15)
        daemon.wait(timeout=60)


def rss_kib(pid):
    return status_kib(pid, "VmRSS:")


def status_kib(pid, field):
    """A size field of /proc/PID/status, in KiB (0 if the process is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


SCENARIOS = [startup, counting, printf_path, profiling, uprobes, many_uprobes, compile_times, handlers_vs_rust, tenants]


def main():
    have_bpftrace = ensure_bpftrace()
    b = Bench(have_bpftrace)
    for scenario in SCENARIOS:
        if ONLY and scenario.__name__ not in ONLY.split(","):
            continue
        started = time.perf_counter()
        scenario(b)
        print(f"# {scenario.__name__}: {time.perf_counter() - started:.1f} s", file=sys.stderr)

    bt_version = subprocess.run(["bpftrace", "--version"], capture_output=True, text=True).stdout.strip() if have_bpftrace else "bpftrace not installed"
    wt_version = subprocess.run([WASMTAP, "--version"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {platform.node()}, {os.cpu_count()} CPUs, kernel {platform.release()}; "
        f"{wt_version}; {bt_version}; date {time.strftime('%Y-%m-%d')}; {'quick' if QUICK else 'full'} run "
        f"({REPS} interleaved repetitions). Generated by `scripts/bench.py` (run as root); "
        "raw figures in target/bench.json.",
        "",
        "| scenario | wasmtap median (min-max) | bpftrace median (min-max) | wasmtap / bpftrace | note |",
        "| --- | --- | --- | --- | --- |",
    ]
    fmt = lambda s: "-" if s is None else f"{s['median']:.4g} ({s['min']:.4g}-{s['max']:.4g})"
    for name, row in b.rows.items():
        a, t = row["wasmtap"], row["bpftrace"]
        ratio = f"{a['median'] / t['median']:.3g}" if a and t and t["median"] else "-"
        lines.append(f"| {name} | {fmt(a)} | {fmt(t)} | {ratio} | {row['note']} |")
    text = "\n".join(lines) + "\n"
    if not QUICK and not ONLY:
        open(os.path.join(ROOT, "BENCHMARKS.md"), "w").write(text)
    os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
    json.dump({"machine": lines[2], "rows": b.rows}, open(os.path.join(ROOT, "target/bench.json"), "w"), indent=1)
    print(text)
    shutil.rmtree(b.work, ignore_errors=True)


if __name__ == "__main__":
    main()

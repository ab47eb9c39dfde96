#!/usr/bin/env python3
"""Side-by-side benchmark of wasmtap and bpftrace on this machine.

Runs each scenario interleaved (wasmtap, bpftrace, wasmtap, ...) and reports
medians, min-max and the wasmtap/bpftrace ratio as a markdown table
(BENCHMARKS.md) and JSON (target/bench.json). Needs root. `--quick` runs few
repetitions, for CI smoke tests.

Scenarios (issue 2): start-to-exit of a begin-only script; start-to-attached
of the openat trace; events/s and loss through the openat printf path.

Language scenarios (issue 3, `--lang` runs only these; no root needed):
compile time of a generated 500-line script with `-p 4`, cold (empty
module cache) and cached; run time of a handler-heavy begin script (1M
array updates, 1M sprintf) against the same logic in plain Rust, as a
ratio. They go into their own section of BENCHMARKS.md.
"""
import json, os, platform, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WASMTAP = os.environ.get("WASMTAP_BIN", os.path.join(ROOT, "target/release/wasmtap"))
QUICK = "--quick" in sys.argv
LANG_ONLY = "--lang" in sys.argv
REPS = 3 if QUICK else 10
OPENS = 20_000 if QUICK else 200_000

WORKLOAD_C = r"""
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    long n = atol(argv[1]);
    for (long i = 0; i < n; i++) { int fd = openat(AT_FDCWD, argv[2], O_RDONLY); if (fd >= 0) close(fd); }
    return 0;
}
"""


def ensure_bpftrace():
    if shutil.which("bpftrace"):
        return True
    subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "bpftrace"], check=False,
                   capture_output=True, env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    return shutil.which("bpftrace") is not None


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def time_to_line(cmd, marker, stream):
    """Seconds from spawn until `marker` appears on stdout or stderr."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    source = proc.stderr if stream == "stderr" else proc.stdout
    elapsed = None
    for line in source:
        if marker in line:
            elapsed = time.perf_counter() - start
            break
    proc.send_signal(2)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
    return elapsed


def openat_rate(tracer_cmd, ready_marker, stream, workload, target):
    """Runs the workload under the tracer; returns (seconds, events seen)."""
    out = tempfile.NamedTemporaryFile(delete=False)
    out.close()
    if tracer_cmd is None:
        return timed([workload, str(OPENS), target]), OPENS
    proc = subprocess.Popen(tracer_cmd + [out.name] if "{out}" not in tracer_cmd else tracer_cmd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    source = proc.stderr if stream == "stderr" else proc.stdout
    for line in source:
        if ready_marker in line:
            break
    seconds = timed([workload, str(OPENS), target])
    time.sleep(0.5)
    proc.send_signal(2)
    proc.communicate(timeout=120)
    with open(out.name, errors="replace") as f:
        seen = sum(1 for line in f if target in line)
    os.unlink(out.name)
    return seconds, seen


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}

LANG_MARKER = "## Language (issue 3)"

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


def language_rows(work):
    rows = {}
    script = os.path.join(work, "big.stp")
    with open(script, "w") as f:
        f.write(script_500_lines())
    lines = script_500_lines().count("\n")
    cold, cached = [], []
    for _ in range(REPS):
        cache = tempfile.mkdtemp()
        env = dict(os.environ, XDG_CACHE_HOME=cache)
        for bucket in (cold, cached):
            start = time.perf_counter()
            subprocess.run([WASMTAP, "-p", "4", script], env=env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            bucket.append(time.perf_counter() - start)
        shutil.rmtree(cache, ignore_errors=True)
    rows[f"compile {lines}-line script, -p 4, cold cache (s)"] = (summary(cold), None)
    rows[f"compile {lines}-line script, -p 4, cached (s)"] = (summary(cached), None)

    native = os.path.join(work, "native")
    subprocess.run(["rustc", "-O", "-o", native, "-"], input=NATIVE_RS.encode(), check=True)
    baseline = summary([timed([WASMTAP, "-e", "probe begin { exit() }"]) for _ in range(REPS)])
    for name, text, mode in (("1M array updates", ARRAY_STP, "array"), ("1M sprintf", SPRINTF_STP, "sprintf")):
        path = os.path.join(work, mode + ".stp")
        with open(path, "w") as f:
            f.write(text)
        ours = [timed([WASMTAP, "--handler-budget-ms", "60000", path]) - baseline["median"]
                for _ in range(REPS)]
        theirs = [float(subprocess.run([native, mode], capture_output=True, text=True).stderr)
                  for _ in range(REPS)]
        rows[f"begin script, {name}, minus start-up (s) vs plain Rust"] = (summary(ours), summary(theirs))
    return rows


def language_section(rows):
    lines = [
        LANG_MARKER,
        "",
        f"Generated by `scripts/bench.py --lang` on {platform.node()} ({os.cpu_count()} CPUs), "
        f"{time.strftime('%Y-%m-%d')}, {REPS} repetitions. The reference column is the same "
        "logic in plain Rust (`rustc -O`, std HashMap and `write!`), timed inside the program; "
        "wasmtap's time is the whole run minus the median run of `probe begin { exit() }`.",
        "",
        "| scenario | wasmtap median (min-max) | reference median (min-max) | ratio |",
        "| --- | --- | --- | --- |",
    ]
    fmt = lambda s: "-" if s is None else f"{s['median']:.4g} ({s['min']:.4g}-{s['max']:.4g})"
    for name, (a, b) in rows.items():
        ratio = f"{a['median'] / b['median']:.3g}" if a and b and b["median"] else "-"
        lines.append(f"| {name} | {fmt(a)} | {fmt(b)} | {ratio} |")
    return "\n".join(lines) + "\n"


def write_language_section(text):
    path = os.path.join(ROOT, "BENCHMARKS.md")
    old = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    head = old.split(LANG_MARKER)[0].rstrip("\n")
    open(path, "w").write(head + "\n\n" + text)


def main():
    if LANG_ONLY:
        work = tempfile.mkdtemp()
        text = language_section(language_rows(work))
        # The section names its repetition count, so a quick run may
        # update it too.
        write_language_section(text)
        print(text)
        return
    have_bpftrace = ensure_bpftrace()
    work = tempfile.mkdtemp()
    workload = os.path.join(work, "openloop")
    subprocess.run(["cc", "-O2", "-x", "c", "-", "-o", workload], input=WORKLOAD_C.encode(), check=True)
    target = os.path.join(work, "bench-target-file")
    open(target, "w").close()

    rows = {}
    scenarios = {
        "start to exit, begin-only script (s)": (
            lambda: timed([WASMTAP, "-e", "probe begin { exit() }"]),
            lambda: timed(["bpftrace", "-e", "BEGIN { exit(); }"]),
        ),
        "start to attached, openat printf script (s)": (
            lambda: time_to_line([WASMTAP, "-v", "-e",
                                  'probe syscall.openat { printf("%s(%d) %s\\n", execname(), pid(), user_string($filename)) }'],
                                 "attached; running", "stderr"),
            lambda: time_to_line(["bpftrace", "-e",
                                  'BEGIN { printf("ready\\n"); } tracepoint:syscalls:sys_enter_openat { printf("%s(%d) %s\\n", comm, pid, str(args->filename)); }'],
                                 "ready", "stdout"),
        ),
    }
    for name, (ours, theirs) in scenarios.items():
        a, b = [], []
        for _ in range(REPS):
            a.append(ours())
            if have_bpftrace:
                b.append(theirs())
        rows[name] = (summary(a), summary(b))

    wasmtap_trace = [WASMTAP, "-v", "-e",
                     'probe syscall.openat { if (execname() == "openloop") printf("%s(%d) %s\\n", execname(), pid(), user_string($filename)) }',
                     "-o"]
    bpftrace_trace = ["bpftrace", "-o"]
    base, ours_t, theirs_t, ours_seen, theirs_seen = [], [], [], [], []
    for _ in range(max(1, REPS // 3)):
        base.append(openat_rate(None, None, None, workload, target)[0])
        t, seen = openat_rate(wasmtap_trace, "attached; running", "stderr", workload, target)
        ours_t.append(t)
        ours_seen.append(seen)
        if have_bpftrace:
            out = tempfile.NamedTemporaryFile(delete=False).name
            cmd = bpftrace_trace + [out, "-e",
                                    'BEGIN { printf("ready\\n"); } tracepoint:syscalls:sys_enter_openat /comm == "openloop"/ { printf("%s(%d) %s\\n", comm, pid, str(args->filename)); }']
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.time() + 30
            while time.time() < deadline:
                if os.path.exists(out) and "ready" in open(out, errors="replace").read(4096):
                    break
                time.sleep(0.05)
            t = timed([workload, str(OPENS), target])
            time.sleep(0.5)
            proc.send_signal(2)
            proc.communicate(timeout=120)
            with open(out, errors="replace") as f:
                theirs_seen.append(sum(1 for line in f if target in line))
            os.unlink(out)
            theirs_t.append(t)
    rows["workload time, %d openat untraced (s)" % OPENS] = (summary(base), None)
    rows["workload time, %d openat traced with printf (s)" % OPENS] = (summary(ours_t), summary(theirs_t))
    rows["events delivered of %d" % OPENS] = (summary(ours_seen), summary(theirs_seen))
    rows["events/s delivered"] = (summary([s / t for s, t in zip(ours_seen, ours_t)]),
                                  summary([s / t for s, t in zip(theirs_seen, theirs_t)]))

    bt_version = subprocess.run(["bpftrace", "--version"], capture_output=True, text=True).stdout.strip() if have_bpftrace else "not installed"
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {platform.node()}, {os.cpu_count()} CPUs, kernel {platform.release()}; "
        f"{bt_version}; date {time.strftime('%Y-%m-%d')}; {'quick' if QUICK else 'full'} run "
        f"({REPS} interleaved repetitions). Generated by `scripts/bench.py` (run as root).",
        "",
        "| scenario | wasmtap median (min-max) | bpftrace median (min-max) | wasmtap / bpftrace |",
        "| --- | --- | --- | --- |",
    ]
    fmt = lambda s: "-" if s is None else f"{s['median']:.4g} ({s['min']:.4g}-{s['max']:.4g})"
    for name, (a, b) in rows.items():
        ratio = f"{a['median'] / b['median']:.3g}" if a and b and b["median"] else "-"
        lines.append(f"| {name} | {fmt(a)} | {fmt(b)} | {ratio} |")
    text = "\n".join(lines) + "\n"
    lang_text = language_section(language_rows(work))
    if not QUICK:
        open(os.path.join(ROOT, "BENCHMARKS.md"), "w").write(text)
        write_language_section(lang_text)
    text += "\n" + lang_text
    os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
    json.dump(rows, open(os.path.join(ROOT, "target/bench.json"), "w"), indent=1)
    print(text)


if __name__ == "__main__":
    main()

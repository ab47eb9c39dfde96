#!/usr/bin/env python3
"""Side-by-side benchmark of wasmtap and bpftrace on this machine.

Runs each scenario interleaved (wasmtap, bpftrace, wasmtap, ...) and reports
medians, min-max and the wasmtap/bpftrace ratio as a markdown table
(BENCHMARKS.md) and JSON (target/bench.json). Needs root. `--quick` runs few
repetitions, for CI smoke tests.

Scenarios (issue 2): start-to-exit of a begin-only script; start-to-attached
of the openat trace; events/s and loss through the openat printf path.
"""
import json, os, platform, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WASMTAP = os.environ.get("WASMTAP_BIN", os.path.join(ROOT, "target/release/wasmtap"))
QUICK = "--quick" in sys.argv
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


def main():
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
    if not QUICK:
        open(os.path.join(ROOT, "BENCHMARKS.md"), "w").write(text)
    os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
    json.dump(rows, open(os.path.join(ROOT, "target/bench.json"), "w"), indent=1)
    print(text)


if __name__ == "__main__":
    main()

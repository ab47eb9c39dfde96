//! One run of a compiled script: instantiate the handlers, load and attach
//! the probes, run `begin`, feed batches of records until `exit()`, Ctrl-C
//! or SIGTERM, run `end`, detach.
//!
//! Errors follow stap: a run-time error in a handler prints `ERROR: ...`
//! with the script location, runs the `error` probes, then the `end`
//! probes, and the run exits 1. A handler that exceeds its CPU budget or
//! memory cap, or traps, leaves the sandbox unusable: it is reported the
//! same way and the run ends at once. In every case the kernel session is
//! dropped, which detaches everything.

use std::{
    fmt::Write as _,
    io::Write,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use wasmtap_abi::RECORD_ALIGN;
use wasmtap_compiler::{
    Bundle, Checked,
    passes::resolve::{ProbeKind, ResolvedProbe},
    plan, span,
};

use crate::{
    kernel::{self, Attach, KernelError, KernelOptions, KernelProbe, KernelSession, PerfCounter},
    sandbox::{self, RunError, Sandbox, SandboxConfig, ScriptInstance},
    signals,
    target::Gate,
};

/// How to run a script.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// The script's file name, for error locations.
    pub file_name: String,
    /// The script's text, for error locations.
    pub source: String,
    /// `-v`: report the phases on stderr.
    pub verbose: u8,
    /// `-p 4`: compile the handlers into the cache and stop.
    pub compile_only: bool,
    /// CPU time one handler call may take. Default 100 ms.
    pub handler_budget: Duration,
    /// Memory cap of the sandbox. Default 64 MiB.
    pub memory_limit: usize,
    /// Ring buffer sizing.
    pub kernel: KernelOptions,
    /// How often the ring buffer is drained when the kernel does not wake
    /// the reader. Default 5 ms.
    pub drain_interval: Duration,
    /// Records are handed to the guest in batches of at most this many
    /// bytes. Default 256 KiB.
    pub batch_bytes: usize,
    /// `-c CMD`: released once the probes are attached; the run ends when
    /// it exits.
    pub target: Option<Arc<dyn Gate>>,
    /// `-x PID` (or a daemon client's `-c` command): what a plugin's
    /// `target()` returns when there is no `target`. Scripts have it
    /// compiled in instead.
    pub target_pid: Option<u32>,
    /// Whether the sandbox names kernel addresses (see
    /// [`SandboxConfig::kernel_symbols`]). Default true.
    pub kernel_symbols: bool,
    /// Samples per second of `timer.profile` on each CPU. Default 100.
    pub profile_hz: u32,
    /// Where run-time errors and warnings go: stderr, or the tenant's
    /// connection in the daemon.
    pub diagnostics: DiagnosticSink,
    /// Ends the run like Ctrl-C once set (the daemon: the client left or
    /// asked to stop, or the daemon is shutting down).
    pub stop: Option<Arc<AtomicBool>>,
    /// Counts this run's work while it runs, for per-tenant statistics.
    pub counters: Arc<RunCounters>,
}

/// Where a run's `ERROR:` and `WARNING:` lines go.
#[derive(Clone, Default)]
pub struct DiagnosticSink(Option<Arc<Mutex<Box<dyn Write + Send>>>>);

impl DiagnosticSink {
    /// Lines go to `sink` instead of stderr.
    pub fn to(sink: Box<dyn Write + Send>) -> Self {
        Self(Some(Arc::new(Mutex::new(sink))))
    }

    /// Writes one line; a sink that fails is ignored (the run goes on).
    pub fn line(&self, line: &str) {
        match &self.0 {
            Some(sink) => {
                let mut sink = sink.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(sink, "{line}");
                let _ = sink.flush();
            }
            None => eprintln!("{line}"),
        }
    }
}

impl std::fmt::Debug for DiagnosticSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "DiagnosticSink(custom)"
        } else {
            "DiagnosticSink(stderr)"
        })
    }
}

/// Live counters of one run; atomics so another thread can read them.
#[derive(Debug, Default)]
pub struct RunCounters {
    /// Records delivered to the handlers.
    pub events: AtomicU64,
    /// Records the kernel dropped (known at the end of the run).
    pub drops: AtomicU64,
    /// Nanoseconds spent inside the sandbox.
    pub handler_ns: AtomicU64,
}

impl RunCounters {
    /// The counters as JSON, for `wasmtap --connect ... --stats`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "events": self.events.load(Ordering::Relaxed),
            "drops": self.drops.load(Ordering::Relaxed),
            "handler_cpu_ms": self.handler_ns.load(Ordering::Relaxed) as f64 / 1e6,
        })
    }
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            file_name: "<input>".into(),
            source: String::new(),
            verbose: 0,
            compile_only: false,
            handler_budget: Duration::from_millis(100),
            memory_limit: 64 << 20,
            kernel: KernelOptions::default(),
            drain_interval: Duration::from_millis(5),
            batch_bytes: 256 << 10,
            target: None,
            target_pid: None,
            kernel_symbols: true,
            profile_hz: 100,
            diagnostics: DiagnosticSink::default(),
            stop: None,
            counters: Arc::default(),
        }
    }
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// 0 after a clean end, 1 after a run-time error.
    pub exit_code: u8,
}

/// What stops a run before its script runs.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Sandbox(#[from] sandbox::SandboxError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("{message}")]
    Script { message: String },
}

/// Runs `bundle` until it exits or is stopped.
///
/// # Errors
/// Failures before the script starts (sandbox, privileges, load, attach),
/// and a failure of `init` or a `begin` probe. Run-time errors after that
/// are reported on stderr and give exit code 1.
pub fn run(
    bundle: &Bundle,
    output: Box<dyn Write + Send>,
    options: &SessionOptions,
) -> Result<Outcome, SessionError> {
    run_program(
        bundle,
        &kernel_probes(bundle, options),
        Linking::Script,
        output,
        options,
    )
}

/// Runs a plugin (see [`crate::plugin`]) like a script: `bundle` lists its
/// probes by manifest index and holds its module, `kernel_probes` are its
/// captures as the host resolved them.
///
/// # Errors
/// As [`run`].
pub fn run_plugin(
    bundle: &Bundle,
    kernel_probes: &[KernelProbe],
    output: Box<dyn Write + Send>,
    options: &SessionOptions,
) -> Result<Outcome, SessionError> {
    run_program(bundle, kernel_probes, Linking::Plugin, output, options)
}

/// How a run's module is instantiated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Linking {
    /// A compiled script, linked against the guest runtime.
    Script,
    /// A plugin: one module that carries its own runtime.
    Plugin,
}

fn run_program(
    bundle: &Bundle,
    kernel_probes: &[KernelProbe],
    linking: Linking,
    output: Box<dyn Write + Send>,
    options: &SessionOptions,
) -> Result<Outcome, SessionError> {
    signals::install();
    let phase = Phase::new(options);
    let sandbox = Sandbox::new(SandboxConfig {
        memory_limit: options.memory_limit,
        deadline: options.handler_budget,
        target_pid: options
            .target
            .as_ref()
            .map(|t| t.pid())
            .or(options.target_pid)
            .unwrap_or(0),
        kernel_symbols: options.kernel_symbols,
        ..SandboxConfig::default()
    })?;
    let module = sandbox.compile_script(&bundle.wasm)?;
    phase.done(4, "compiled the handlers");
    if options.compile_only {
        let path = sandbox.cache_script(&module, &bundle.wasm)?;
        println!("{}", path.display());
        return Ok(Outcome { exit_code: 0 });
    }

    let mut kernel = if kernel_probes.is_empty() {
        None
    } else {
        kernel::check_privileges()?;
        let mut session = KernelSession::load(&options.kernel)?;
        session.install(kernel_probes)?;
        Some(session)
    };
    let mut instance = match linking {
        Linking::Script => sandbox.instantiate(&module, bundle.static_data_size, output)?,
        Linking::Plugin => sandbox.instantiate_plugin(&module, output)?,
    };
    phase.done(5, "loaded the probes and the sandbox");

    let mut run = Run {
        bundle,
        options,
        instance: &mut instance,
        failed: false,
        poisoned: false,
    };
    run.call(None, |i| i.init());
    for probe in ordered(bundle, |k| matches!(k, ProbeKind::Begin { .. })) {
        if run.stopped() {
            break;
        }
        run.call(Some(probe), |i| i.run_probe(probe.id));
    }
    if !run.stopped() {
        if let Some(kernel) = kernel.as_mut() {
            kernel.attach()?;
        }
        phase.done(5, "attached; running");
        if let Some(target) = &options.target {
            target.release();
        }
        run.event_loop(kernel.as_mut());
    }
    if !run.poisoned {
        if run.failed {
            for probe in ordered(bundle, |k| matches!(k, ProbeKind::Error { .. })) {
                run.call(Some(probe), |i| i.run_probe(probe.id));
            }
        }
        for probe in ordered(bundle, |k| matches!(k, ProbeKind::End { .. })) {
            run.call(Some(probe), |i| i.run_probe(probe.id));
        }
        // stap prints the globals the script wrote but never read.
        if !bundle.unread_globals.is_empty() {
            let printer = bundle.probes.len() as u32;
            run.call(None, |i| i.run_probe(printer));
        }
        let _ = run.instance.flush();
    }
    if let Some(kernel) = &kernel {
        report_drops(bundle, kernel, options);
    }
    let exit_code = u8::from(run.failed);
    drop(kernel);
    Ok(Outcome { exit_code })
}

struct Run<'a> {
    bundle: &'a Bundle,
    options: &'a SessionOptions,
    instance: &'a mut ScriptInstance,
    /// A run-time error happened: exit 1, run the `error` probes.
    failed: bool,
    /// The sandbox is unusable: no more calls.
    poisoned: bool,
}

impl Run<'_> {
    fn stopped(&mut self) -> bool {
        self.failed
            || self.poisoned
            || signals::stop_requested()
            || self.options.target.as_ref().is_some_and(|t| t.exited())
            || self
                .options
                .stop
                .as_ref()
                .is_some_and(|stop| stop.load(Ordering::SeqCst))
            || self.instance.exit_requested().unwrap_or(true)
    }

    /// Calls into the guest, reporting a failure stap's way.
    fn call(
        &mut self,
        probe: Option<&ResolvedProbe>,
        f: impl FnOnce(&mut ScriptInstance) -> Result<(), RunError>,
    ) {
        if self.poisoned {
            return;
        }
        let started = Instant::now();
        let result = f(self.instance);
        self.options
            .counters
            .handler_ns
            .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let Err(error) = result else { return };
        self.failed = true;
        self.poisoned = !matches!(error, RunError::Script { .. });
        self.options.diagnostics.line(&self.describe(&error, probe));
    }

    fn event_loop(&mut self, mut kernel: Option<&mut KernelSession>) {
        let mut timers: Vec<(&ResolvedProbe, Duration, Instant)> = self
            .bundle
            .probes
            .iter()
            .filter_map(|p| match p.resolved.kind {
                ProbeKind::Timer { period_ns } => {
                    let period = Duration::from_nanos(period_ns);
                    Some((&p.resolved, period, Instant::now() + period))
                }
                _ => None,
            })
            .collect();
        let mut batch: Vec<u8> = Vec::with_capacity(self.options.batch_bytes);
        while !self.stopped() {
            let now = Instant::now();
            let next_timer = timers.iter().map(|t| t.2).min();
            let wait = next_timer
                .map_or(self.options.drain_interval, |due| {
                    due.saturating_duration_since(now)
                })
                .min(self.options.drain_interval);
            match kernel.as_deref_mut() {
                Some(kernel) => {
                    if let Err(error) = kernel.wait(wait) {
                        self.options.diagnostics.line(&format!("ERROR: {error}"));
                        self.failed = true;
                        return;
                    }
                    self.drain(kernel, &mut batch);
                }
                None => std::thread::sleep(wait),
            }
            let now = Instant::now();
            for timer in &mut timers {
                if timer.2 <= now && !self.stopped() {
                    timer.2 = now + timer.1;
                    let probe = timer.0;
                    self.call(Some(probe), |i| i.run_probe(probe.id));
                }
            }
            let _ = self.instance.flush();
        }
        // Records already captured when the run stops are still delivered.
        if let Some(kernel) = kernel
            && !self.failed
            && !self.poisoned
            && !self.instance.exit_requested().unwrap_or(true)
        {
            self.drain(kernel, &mut batch);
        }
    }

    /// Moves waiting records into the guest in batches.
    fn drain(&mut self, kernel: &mut KernelSession, batch: &mut Vec<u8>) {
        let limit = self.options.batch_bytes;
        loop {
            batch.clear();
            let mut full = false;
            kernel.drain_some(&mut |record| {
                batch.extend_from_slice(record);
                batch.resize(batch.len().next_multiple_of(RECORD_ALIGN), 0);
                full = batch.len() >= limit;
                !full
            });
            if batch.is_empty() {
                return;
            }
            self.options
                .counters
                .events
                .fetch_add(records_in(batch), Ordering::Relaxed);
            let records = std::mem::take(batch);
            self.call(None, |i| i.handle_batch(&records));
            *batch = records;
            if !full || self.stopped() {
                return;
            }
        }
    }

    /// stap's error line: `ERROR: message near 'text' at FILE:LINE:COL`.
    fn describe(&self, error: &RunError, probe: Option<&ResolvedProbe>) -> String {
        let frames = error.frames();
        let location = frames.iter().find_map(|frame| {
            self.bundle
                .span_at(frame.func_index, frame.func_offset? as u32)
        });
        let probe_name = probe.map(|p| p.name.clone()).or_else(|| {
            frames.iter().find_map(|f| {
                f.func_name
                    .as_deref()?
                    .strip_prefix("probe ")
                    .map(str::to_string)
            })
        });
        let mut line = format!("ERROR: {}", error.message(self.options.handler_budget));
        if let Some(name) = probe_name {
            let _ = write!(line, " in probe '{name}'");
        }
        if let Some(span) = location {
            let (row, col) = span::line_col(&self.options.source, span.start);
            let text: String = self.options.source[span.range()].chars().take(40).collect();
            let _ = write!(
                line,
                " near '{text}' at {}:{row}:{col}",
                self.options.file_name
            );
        }
        line
    }
}

/// The kernel's part of every kernel probe.
fn kernel_probes(bundle: &Bundle, options: &SessionOptions) -> Vec<KernelProbe> {
    bundle
        .probes
        .iter()
        .filter_map(|probe| {
            let plan = probe.plan?;
            let attach = match &probe.resolved.kind {
                ProbeKind::Syscall { nr, ret: false, .. } => Attach::SyscallEnter(vec![*nr]),
                ProbeKind::Syscall { nr, ret: true, .. } => Attach::SyscallExit(vec![*nr]),
                ProbeKind::Profile | ProbeKind::PerfSample { .. } => {
                    sample_attach(&probe.resolved.kind, options.profile_hz)?
                }
                ProbeKind::UserFunction {
                    path,
                    file_offset,
                    ret,
                    pid,
                    ..
                } => uprobe(path, *file_offset, *pid, *ret),
                ProbeKind::UserMark {
                    path,
                    file_offset,
                    pid,
                    ..
                } => uprobe(path, *file_offset, *pid, false),
                ProbeKind::Tracepoint { tracepoint, .. } => Attach::Tracepoint {
                    system: tracepoint.system.clone(),
                    event: tracepoint.event.clone(),
                },
                _ => return None,
            };
            Some(KernelProbe {
                id: probe.resolved.id,
                attach,
                plan,
            })
        })
        .collect()
}

/// The perf sampling of `timer.profile` (cpu-clock at `profile_hz` on each
/// CPU) and of `perf.*.sample(N)` probes.
fn sample_attach(kind: &ProbeKind, profile_hz: u32) -> Option<Attach> {
    use wasmtap_compiler::passes::resolve::PerfCounter as Counter;
    Some(match kind {
        ProbeKind::Profile => Attach::PerfSample {
            event: PerfCounter::CpuClock,
            period: 1_000_000_000 / u64::from(profile_hz.max(1)),
        },
        ProbeKind::PerfSample { counter, period } => Attach::PerfSample {
            event: match counter {
                Counter::CpuClock => PerfCounter::CpuClock,
                Counter::CpuCycles => PerfCounter::CpuCycles,
            },
            period: *period,
        },
        _ => return None,
    })
}

/// A uprobe at `file_offset` of the binary `path`, in process `pid` only
/// when set.
fn uprobe(path: &str, file_offset: u64, pid: Option<u32>, ret: bool) -> Attach {
    Attach::Uprobe {
        path: path.into(),
        location: kernel::UprobeLocation::FileOffset(file_offset),
        pid: pid.map(|pid| pid as i32),
        ret,
    }
}

/// Probes of one kind ordered as stap runs them: by priority, then by
/// position in the script.
fn ordered(bundle: &Bundle, want: impl Fn(&ProbeKind) -> bool) -> Vec<&ResolvedProbe> {
    let mut probes: Vec<&ResolvedProbe> = bundle
        .probes
        .iter()
        .map(|p| &p.resolved)
        .filter(|p| want(&p.kind))
        .collect();
    probes.sort_by_key(|p| match p.kind {
        ProbeKind::Begin { priority }
        | ProbeKind::End { priority }
        | ProbeKind::Error { priority } => (priority, p.id),
        _ => (0, p.id),
    });
    probes
}

/// Counts the records of a batch by walking their headers.
fn records_in(batch: &[u8]) -> u64 {
    let mut count = 0;
    let mut at = 0;
    while at + wasmtap_abi::HEADER_LEN <= batch.len() {
        let len = u32::from_ne_bytes([batch[at + 4], batch[at + 5], batch[at + 6], batch[at + 7]])
            as usize;
        if len < wasmtap_abi::HEADER_LEN {
            break;
        }
        count += 1;
        at += len.next_multiple_of(RECORD_ALIGN);
    }
    count
}

fn report_drops(bundle: &Bundle, kernel: &KernelSession, options: &SessionOptions) {
    match kernel.drops() {
        Ok(drops) => {
            for (id, count) in drops {
                options.counters.drops.fetch_add(count, Ordering::Relaxed);
                let name = bundle
                    .probes
                    .get(id as usize)
                    .map_or("?", |p| p.resolved.name.as_str());
                options.diagnostics.line(&format!(
                    "WARNING: {count} events dropped on probe '{name}' (the ring buffer was full)"
                ));
            }
        }
        Err(error) => options
            .diagnostics
            .line(&format!("WARNING: cannot read drop counters: {error}")),
    }
}

/// Reports phases for `-v`.
struct Phase {
    verbose: bool,
    started: Instant,
    sink: DiagnosticSink,
}

impl Phase {
    fn new(options: &SessionOptions) -> Self {
        Self {
            verbose: options.verbose > 0,
            started: Instant::now(),
            sink: options.diagnostics.clone(),
        }
    }

    fn done(&self, pass: u8, what: &str) {
        if self.verbose {
            self.sink.line(&format!(
                "Pass {pass}: {what} in {:.1} ms",
                self.started.elapsed().as_secs_f64() * 1e3
            ));
        }
    }
}

/// `-p 2`: each probe with its variables' types.
pub fn describe_checked(checked: &Checked) -> String {
    let mut out = String::new();
    for probe in &checked.probes {
        let _ = writeln!(out, "probe {} /* id {} */", probe.name, probe.id);
        for (name, slot) in &checked.typed.probe_locals[probe.id as usize] {
            let ty = slot.ty.map_or("unknown", |t| t.name());
            let _ = writeln!(out, "  local {name}:{ty}");
        }
    }
    for global in &checked.typed.globals {
        let ty = global.value.ty.map_or("unknown", |t| t.name());
        match &global.keys {
            Some(keys) => {
                let keys: Vec<&str> = keys
                    .iter()
                    .map(|k| k.ty.map_or("unknown", |t| t.name()))
                    .collect();
                let _ = writeln!(out, "global {}[{}]:{ty}", global.name, keys.join(", "));
            }
            None => {
                let _ = writeln!(out, "global {}:{ty}", global.name);
            }
        }
    }
    for function in &checked.typed.functions {
        let params: Vec<String> = function
            .params
            .iter()
            .map(|(n, s)| format!("{n}:{}", s.ty.map_or("unknown", |t| t.name())))
            .collect();
        let ret = function.ret.ty.map_or("unknown", |t| t.name());
        let _ = writeln!(
            out,
            "function {}({}):{ret}",
            function.name,
            params.join(", ")
        );
    }
    out
}

/// `-p 3`: the capture plan of each kernel probe, then the module as text.
pub fn describe_bundle(bundle: &Bundle) -> String {
    let mut out = String::new();
    for probe in &bundle.probes {
        let _ = write!(
            out,
            "probe {} /* id {} */: ",
            probe.resolved.name, probe.resolved.id
        );
        match &probe.plan {
            Some(p) => out.push_str(&plan::describe(p)),
            None => out.push_str("run by the host, no capture\n"),
        }
    }
    out.push('\n');
    out.push_str(&wasmtap_compiler::wasm_text(&bundle.wasm));
    out
}

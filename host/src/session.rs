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
    time::{Duration, Instant},
};

use wasmtap_abi::RECORD_ALIGN;
use wasmtap_compiler::{
    Bundle, Checked,
    passes::resolve::{ProbeKind, ResolvedProbe},
    plan, span,
};

use crate::{
    kernel::{self, Attach, KernelError, KernelOptions, KernelProbe, KernelSession},
    sandbox::{self, RunError, Sandbox, SandboxConfig, ScriptInstance},
    signals,
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
    signals::install();
    let phase = Phase::new(options.verbose);
    let sandbox = Sandbox::new(SandboxConfig {
        memory_limit: options.memory_limit,
        deadline: options.handler_budget,
        ..SandboxConfig::default()
    })?;
    let module = sandbox.compile_script(&bundle.wasm)?;
    phase.done(4, "compiled the handlers");
    if options.compile_only {
        let path = sandbox.cache_script(&module, &bundle.wasm)?;
        println!("{}", path.display());
        return Ok(Outcome { exit_code: 0 });
    }

    let kernel_probes = kernel_probes(bundle);
    let mut kernel = if kernel_probes.is_empty() {
        None
    } else {
        kernel::check_privileges()?;
        let mut session = KernelSession::load(&options.kernel)?;
        session.install(&kernel_probes)?;
        Some(session)
    };
    let mut instance = sandbox.instantiate(&module, bundle.static_data_size, output)?;
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
        let _ = run.instance.flush();
    }
    if let Some(kernel) = &kernel {
        report_drops(bundle, kernel);
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
        let Err(error) = f(self.instance) else { return };
        self.failed = true;
        self.poisoned = !matches!(error, RunError::Script { .. });
        eprintln!("{}", self.describe(&error, probe));
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
                        eprintln!("ERROR: {error}");
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
fn kernel_probes(bundle: &Bundle) -> Vec<KernelProbe> {
    bundle
        .probes
        .iter()
        .filter_map(|probe| {
            let plan = probe.plan?;
            let attach = match &probe.resolved.kind {
                ProbeKind::Syscall { nr, ret: false, .. } => Attach::SyscallEnter(vec![*nr]),
                ProbeKind::Syscall { nr, ret: true, .. } => Attach::SyscallExit(vec![*nr]),
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

fn report_drops(bundle: &Bundle, kernel: &KernelSession) {
    match kernel.drops() {
        Ok(drops) => {
            for (id, count) in drops {
                let name = bundle
                    .probes
                    .get(id as usize)
                    .map_or("?", |p| p.resolved.name.as_str());
                eprintln!(
                    "WARNING: {count} events dropped on probe '{name}' (the ring buffer was full)"
                );
            }
        }
        Err(error) => eprintln!("WARNING: cannot read drop counters: {error}"),
    }
}

/// Reports phases for `-v`.
struct Phase {
    verbose: bool,
    started: Instant,
}

impl Phase {
    fn new(verbose: u8) -> Self {
        Self {
            verbose: verbose > 0,
            started: Instant::now(),
        }
    }

    fn done(&self, pass: u8, what: &str) {
        if self.verbose {
            eprintln!(
                "Pass {pass}: {what} in {:.1} ms",
                self.started.elapsed().as_secs_f64() * 1e3
            );
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

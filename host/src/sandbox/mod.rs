//! The Wasm sandbox: wasmtime running a script's handlers next to the guest
//! runtime, under a per-call deadline and a memory cap.
//!
//! Every script instance is two Wasm instances in one store: the runtime
//! (`guest-sdk`, embedded in this binary, compiled once and cached on disk)
//! and the script module the compiler generated, which imports the
//! runtime's memory and functions under [`RUNTIME_MODULE`] and its data base
//! as the global [`STATIC_BASE`]. Host functions (output, errors, clocks,
//! randomness) are the only way out. A ticker thread advances the engine's
//! epoch, so every call gets a deadline without fuel's cost; a resource
//! limiter caps linear memory.
//!
//! Failures are split the way stap needs them: a run-time error the script
//! raised ([`RunError::Script`]) leaves the instance usable so the `error`
//! and `end` probes can run; a deadline, the memory cap or a trap poison
//! it.

mod cache;
mod error;
mod host_fns;

use std::{
    io::Write,
    num::NonZeroUsize,
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use wasmtap_abi::wasm::{
    HOST_MODULE, MEMORY, RT_ALLOC_STATIC, RT_BATCH_BUFFER, RT_FLUSH, RUNTIME_MODULE,
    SCRIPT_EXIT_REQUESTED, SCRIPT_HANDLE_BATCH, SCRIPT_INIT, SCRIPT_RUN_PROBE, STATIC_BASE,
};
use wasmtime::{
    Config, Engine, Global, GlobalType, Instance, Linker, Memory, Module, Mutability, OptLevel,
    Store, TypedFunc, Val, ValType, WasmBacktraceDetails,
};

pub use cache::default_cache_dir;
pub use error::{Frame, RunError, SandboxError};
use host_fns::HostState;

/// The guest runtime, built by `build.rs` from `guest-sdk`.
pub const RUNTIME_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/runtime.wasm"));

/// The runtime export that frees per-probe temporaries; the host calls it
/// after a script error so the next probe starts clean.
const RT_SCRATCH_RESET: &str = "scratch_reset";

/// Limits and places of a sandbox.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Most bytes of linear memory one instance may use. Default 64 MiB.
    pub memory_limit: usize,
    /// Longest a single call (a probe, a batch) may run. Default 100 ms.
    pub deadline: Duration,
    /// How often the epoch advances; the deadline is rounded up to it.
    /// Default 2 ms: frequent enough to stop a runaway handler promptly,
    /// rare enough to cost nothing.
    pub epoch_tick: Duration,
    /// Where compiled modules are cached; `None` disables the cache.
    /// Default: [`default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// What the `host.target` import answers: the `-x`/`-c` process, 0
    /// when none. Default 0.
    pub target_pid: u32,
    /// Whether `host.stack` names kernel addresses. A tenant whose policy
    /// denies kernel stacks gets bare addresses instead, so a plugin cannot
    /// read the kernel's layout through symbolization. Default true.
    pub kernel_symbols: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            memory_limit: 64 << 20,
            deadline: Duration::from_millis(100),
            epoch_tick: Duration::from_millis(2),
            cache_dir: default_cache_dir(),
            target_pid: 0,
            kernel_symbols: true,
        }
    }
}

/// Advances the engine's epoch until dropped.
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    fn start(engine: Engine, tick: Duration) -> Result<Self, SandboxError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("wasmtap-epoch".into())
            .spawn(move || {
                // sleep, not park_timeout: a spurious early wake-up would
                // shorten every deadline.
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    engine.increment_epoch();
                }
            })
            .map_err(|e| SandboxError::Setup(format!("starting the epoch thread: {e}")))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A configured engine with the runtime compiled, ready to run scripts.
pub struct Sandbox {
    engine: Engine,
    runtime: Module,
    linker: Linker<HostState>,
    config: SandboxConfig,
    _ticker: Ticker,
}

impl Sandbox {
    /// Sets up the engine and loads the runtime, from the cache when
    /// possible (compiling it takes tens of milliseconds, loading it
    /// microseconds).
    ///
    /// # Errors
    /// The engine cannot be built or the runtime fails to compile.
    pub fn new(config: SandboxConfig) -> Result<Self, SandboxError> {
        let mut c = Config::new();
        c.epoch_interruption(true)
            .wasm_backtrace_max_frames(NonZeroUsize::new(64))
            // Names and offsets only: no DWARF lookups when reporting.
            .wasm_backtrace_details(WasmBacktraceDetails::Disable)
            .cranelift_opt_level(OptLevel::Speed);
        // wasmtime is built without its "backtrace" feature, so its errors
        // never capture host backtraces (which RUST_BACKTRACE would make
        // cost tens of microseconds per trap).
        let engine = Engine::new(&c).map_err(|e| SandboxError::Setup(format!("{e:#}")))?;
        let runtime = load_or_compile(
            &engine,
            config.cache_dir.as_deref(),
            "runtime",
            RUNTIME_WASM,
        )
        .map_err(SandboxError::Setup)?;
        let mut linker = Linker::new(&engine);
        host_fns::define(&mut linker).map_err(|e| SandboxError::Setup(format!("{e:#}")))?;
        let ticker = Ticker::start(engine.clone(), config.epoch_tick)?;
        Ok(Self {
            engine,
            runtime,
            linker,
            config,
            _ticker: ticker,
        })
    }

    /// The engine, for callers that build or inspect modules themselves.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The configuration in force.
    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Compiles a script module (about a millisecond), or loads it from the
    /// cache; newly compiled modules are cached best-effort.
    ///
    /// # Errors
    /// The module is invalid.
    pub fn compile_script(&self, wasm: &[u8]) -> Result<Module, SandboxError> {
        let Some(dir) = &self.config.cache_dir else {
            return Module::new(&self.engine, wasm)
                .map_err(|e| SandboxError::Compile(format!("{e:#}")));
        };
        let path = cache::cache_path(dir, &self.engine, "script", wasm);
        if let Some(m) = cache::load(&self.engine, &path) {
            return Ok(m);
        }
        let module =
            Module::new(&self.engine, wasm).map_err(|e| SandboxError::Compile(format!("{e:#}")))?;
        let _ = cache::store(&module, &path);
        Ok(module)
    }

    /// Writes the compiled `module` (compiled from `wasm`) into the cache
    /// and returns its path (stap's `-p4`).
    ///
    /// # Errors
    /// There is no cache directory, or writing fails.
    pub fn cache_script(&self, module: &Module, wasm: &[u8]) -> Result<PathBuf, SandboxError> {
        let dir = self.config.cache_dir.as_ref().ok_or_else(|| {
            SandboxError::Cache("no cache directory (set HOME or XDG_CACHE_HOME)".into())
        })?;
        let path = cache::cache_path(dir, &self.engine, "script", wasm);
        if !path.exists() {
            cache::store(module, &path).map_err(SandboxError::Cache)?;
        }
        Ok(path)
    }

    /// Instantiates a compiled script: the runtime first, then
    /// `static_data_size` bytes of constant data reserved in it, then the
    /// script linked against both. Output goes to `out`.
    ///
    /// # Errors
    /// Linking fails (a missing or mistyped import or export), or the
    /// instance needs more memory than allowed.
    pub fn instantiate(
        &self,
        script: &Module,
        static_data_size: u32,
        out: Box<dyn Write + Send>,
    ) -> Result<ScriptInstance, SandboxError> {
        let (mut store, deadline_ticks) = self.new_store(out);
        let limit = self.config.memory_limit;
        let inst_err = |store: &Store<HostState>, e| instantiate_error(store, limit, e);
        let runtime = self
            .linker
            .instantiate(&mut store, &self.runtime)
            .map_err(|e| inst_err(&store, e))?;
        let memory = runtime
            .get_memory(&mut store, MEMORY)
            .ok_or_else(|| SandboxError::Instantiate("the runtime exports no memory".into()))?;
        store.data_mut().memory = Some(memory);
        let alloc_static: TypedFunc<i32, i32> = typed(&runtime, &mut store, RT_ALLOC_STATIC)?;
        let size = i32::try_from(static_data_size)
            .map_err(|_| SandboxError::Instantiate("static data too large".into()))?;
        let base = alloc_static
            .call(&mut store, size)
            .map_err(|e| inst_err(&store, e))?;

        let mut linker = self.linker.clone();
        let global = Global::new(
            &mut store,
            GlobalType::new(ValType::I32, Mutability::Const),
            Val::I32(base),
        )
        .map_err(|e| SandboxError::Instantiate(format!("{e:#}")))?;
        linker
            .define(&store, HOST_MODULE, STATIC_BASE, global)
            .and_then(|l| l.instance(&mut store, RUNTIME_MODULE, runtime))
            .map_err(|e| SandboxError::Instantiate(format!("{e:#}")))?;
        store.set_epoch_deadline(deadline_ticks);
        let instance = linker
            .instantiate(&mut store, script)
            .map_err(|e| inst_err(&store, e))?;
        ScriptInstance::new(
            store,
            &instance,
            &runtime,
            memory,
            script,
            base as u32,
            deadline_ticks,
        )
    }

    /// Instantiates a plugin: one module that carries the guest runtime
    /// itself and imports nothing but `host` functions (see
    /// [`crate::plugin`]). Output goes to `out`.
    ///
    /// # Errors
    /// Linking fails (an import the host does not provide, a missing
    /// export), or the instance needs more memory than allowed.
    pub fn instantiate_plugin(
        &self,
        plugin: &Module,
        out: Box<dyn Write + Send>,
    ) -> Result<ScriptInstance, SandboxError> {
        let (mut store, deadline_ticks) = self.new_store(out);
        let limit = self.config.memory_limit;
        let instance = self
            .linker
            .instantiate(&mut store, plugin)
            .map_err(|e| instantiate_error(&store, limit, e))?;
        let memory = instance
            .get_memory(&mut store, MEMORY)
            .ok_or_else(|| SandboxError::Instantiate("the plugin exports no memory".into()))?;
        store.data_mut().memory = Some(memory);
        // The plugin is its own runtime: the same instance answers both.
        ScriptInstance::new(
            store,
            &instance,
            &instance,
            memory,
            plugin,
            0,
            deadline_ticks,
        )
    }

    /// A store for one instance: the memory cap, the first deadline, and
    /// the deadline callback that excuses time spent in host calls (stack
    /// symbolization) from the handler's CPU budget.
    fn new_store(&self, out: Box<dyn Write + Send>) -> (Store<HostState>, u64) {
        let mut state = HostState::new(out, self.config.memory_limit);
        state.target_pid = self.config.target_pid;
        state.kernel_symbols = self.config.kernel_symbols;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        let deadline_ticks = self.deadline_ticks();
        store.set_epoch_deadline(deadline_ticks);
        let tick = self.config.epoch_tick;
        store.epoch_deadline_callback(move |mut ctx| Ok(ctx.data_mut().on_deadline(tick)));
        (store, deadline_ticks)
    }

    /// The names of the functions the sandbox provides in module `host`,
    /// for checking a plugin's imports before anything is attached.
    pub fn host_functions(&self) -> Vec<String> {
        let mut store = Store::new(&self.engine, HostState::new(Box::new(std::io::sink()), 0));
        self.linker
            .iter(&mut store)
            .filter(|(module, _, _)| *module == HOST_MODULE)
            .map(|(_, name, _)| name.to_string())
            .collect()
    }

    fn deadline_ticks(&self) -> u64 {
        let tick = self.config.epoch_tick.as_nanos().max(1);
        let ticks = self.config.deadline.as_nanos().div_ceil(tick);
        // The current tick is partly over: one more keeps the full budget.
        u64::try_from(ticks).unwrap_or(u64::MAX / 2).max(1) + 1
    }
}

/// What a failed instantiation means: the memory cap, when the limiter
/// stopped a grow, else a linking or start-up failure.
fn instantiate_error(store: &Store<HostState>, limit: usize, e: wasmtime::Error) -> SandboxError {
    if store.data().limiter.hit {
        SandboxError::MemoryLimit(limit)
    } else {
        SandboxError::Instantiate(format!("{e:#}"))
    }
}

fn typed<P, R>(
    instance: &Instance,
    store: &mut Store<HostState>,
    name: &str,
) -> Result<TypedFunc<P, R>, SandboxError>
where
    P: wasmtime::WasmParams,
    R: wasmtime::WasmResults,
{
    instance
        .get_typed_func::<P, R>(&mut *store, name)
        .map_err(|e| SandboxError::Instantiate(format!("export `{name}`: {e:#}")))
}

fn load_or_compile(
    engine: &Engine,
    dir: Option<&std::path::Path>,
    kind: &str,
    wasm: &[u8],
) -> Result<Module, String> {
    let path = dir.map(|d| cache::cache_path(d, engine, kind, wasm));
    if let Some(m) = path.as_deref().and_then(|p| cache::load(engine, p)) {
        return Ok(m);
    }
    let module = Module::new(engine, wasm).map_err(|e| format!("compiling the {kind}: {e:#}"))?;
    if let Some(p) = &path {
        // Best effort: a read-only cache only costs the compile next time.
        let _ = cache::store(&module, p);
    }
    Ok(module)
}

/// One running script: its store with the runtime and script instances.
pub struct ScriptInstance {
    store: Store<HostState>,
    memory: Memory,
    script: Module,
    static_base: u32,
    init: TypedFunc<(), ()>,
    run_probe: TypedFunc<i32, ()>,
    handle_batch: TypedFunc<(i32, i32), ()>,
    exit_requested: TypedFunc<(), i32>,
    rt_flush: TypedFunc<(), ()>,
    rt_batch_buffer: TypedFunc<i32, i32>,
    rt_scratch_reset: TypedFunc<(), ()>,
    deadline_ticks: u64,
    poisoned: bool,
}

impl ScriptInstance {
    /// Looks up the entry points: the script's (`entry`) and the runtime's
    /// (`runtime`; the same instance for a plugin, which carries its own).
    fn new(
        mut store: Store<HostState>,
        entry: &Instance,
        runtime: &Instance,
        memory: Memory,
        script: &Module,
        static_base: u32,
        deadline_ticks: u64,
    ) -> Result<Self, SandboxError> {
        Ok(Self {
            init: typed(entry, &mut store, SCRIPT_INIT)?,
            run_probe: typed(entry, &mut store, SCRIPT_RUN_PROBE)?,
            handle_batch: typed(entry, &mut store, SCRIPT_HANDLE_BATCH)?,
            exit_requested: typed(entry, &mut store, SCRIPT_EXIT_REQUESTED)?,
            rt_flush: typed(runtime, &mut store, RT_FLUSH)?,
            rt_batch_buffer: typed(runtime, &mut store, RT_BATCH_BUFFER)?,
            rt_scratch_reset: typed(runtime, &mut store, RT_SCRATCH_RESET)?,
            store,
            memory,
            script: script.clone(),
            static_base,
            deadline_ticks,
            poisoned: false,
        })
    }

    /// Where the script's constant data starts in memory.
    pub fn static_base(&self) -> u32 {
        self.static_base
    }

    /// Whether an earlier failure made the instance unusable.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Runs one guest call under a fresh deadline and sorts out failures.
    fn call<R>(&mut self, f: impl FnOnce(&mut Self) -> wasmtime::Result<R>) -> Result<R, RunError> {
        if self.poisoned {
            return Err(RunError::Poisoned);
        }
        self.store.set_epoch_deadline(self.deadline_ticks);
        let result = f(self);
        let error = match result {
            Ok(r) => return Ok(r),
            Err(e) => e,
        };
        let limiter = &self.store.data().limiter;
        let limit_hit = limiter.hit.then_some(limiter.limit);
        let error = error::classify(error, &self.script, limit_hit);
        if error.is_recoverable() {
            // stap prints what the script wrote before the error, then runs
            // the error and end probes on a clean slate.
            self.store.set_epoch_deadline(self.deadline_ticks);
            let recovered = self
                .rt_scratch_reset
                .call(&mut self.store, ())
                .and_then(|()| {
                    if matches!(error, RunError::Output(_)) {
                        Ok(())
                    } else {
                        self.rt_flush.call(&mut self.store, ())
                    }
                });
            if recovered.is_err() {
                self.poisoned = true;
            }
        } else {
            self.poisoned = true;
        }
        Err(error)
    }

    /// Runs the script's `init` (creates arrays, initializes globals).
    ///
    /// # Errors
    /// See [`RunError`].
    pub fn init(&mut self) -> Result<(), RunError> {
        self.call(|s| s.init.call(&mut s.store, ()))
    }

    /// Runs a probe that has no record (begin, end, error, timers).
    ///
    /// # Errors
    /// See [`RunError`].
    pub fn run_probe(&mut self, probe: u32) -> Result<(), RunError> {
        self.call(|s| s.run_probe.call(&mut s.store, probe as i32))
    }

    /// Copies a batch of records (each padded to `RECORD_ALIGN`) into the
    /// guest, runs their handlers, then flushes the output.
    ///
    /// # Errors
    /// See [`RunError`].
    pub fn handle_batch(&mut self, records: &[u8]) -> Result<(), RunError> {
        if records.is_empty() {
            return Ok(());
        }
        let len = i32::try_from(records.len())
            .map_err(|_| RunError::Host("batch larger than 2 GiB".into()))?;
        let ptr = self.call(|s| s.rt_batch_buffer.call(&mut s.store, len))?;
        self.memory
            .write(&mut self.store, ptr as u32 as usize, records)
            .map_err(|e| RunError::Host(format!("copying the batch: {e}")))?;
        self.call(|s| s.handle_batch.call(&mut s.store, (ptr, len)))?;
        self.flush()
    }

    /// Whether the script called `exit()`.
    ///
    /// # Errors
    /// See [`RunError`].
    pub fn exit_requested(&mut self) -> Result<bool, RunError> {
        self.call(|s| s.exit_requested.call(&mut s.store, ()))
            .map(|v| v != 0)
    }

    /// Hands the guest's buffered output to the writer and flushes it.
    ///
    /// # Errors
    /// See [`RunError`].
    pub fn flush(&mut self) -> Result<(), RunError> {
        self.call(|s| s.rt_flush.call(&mut s.store, ()))?;
        self.store.data_mut().out.flush().map_err(RunError::Output)
    }

    /// Bytes of linear memory in use (for limits and statistics).
    pub fn memory_size(&self) -> usize {
        self.memory.data_size(&self.store)
    }
}

//! How calls into the sandbox fail.

use std::{fmt, time::Duration};

use wasmtime::{Module, Trap, WasmBacktrace};

/// One frame of a Wasm backtrace in the script module, innermost first.
///
/// `func_index` is in the script module's function index space (imported
/// functions first) and `func_offset` counts bytes from the start of that
/// function's body, which is what `wasm_encoder::Function::byte_len()`
/// returned while the compiler emitted the instruction, so the compiler's
/// site table maps a frame to a script location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Function index in the script module (imports included).
    pub func_index: u32,
    /// The function's name from the name section, if the module has one.
    pub func_name: Option<String>,
    /// Byte offset of the instruction in the module.
    pub module_offset: Option<usize>,
    /// Byte offset of the instruction in the function body.
    pub func_offset: Option<usize>,
}

/// A failed call into a script instance.
///
/// Only [`RunError::Script`] and [`RunError::Output`] leave the instance
/// usable (stap then runs the `error` and `end` probes); after any other
/// the instance is poisoned and refuses further calls.
#[derive(Debug)]
pub enum RunError {
    /// A run-time error the script raised (stap's `error()`, division by
    /// zero, array overflow, ...): the message as stap prints it after
    /// `ERROR: `.
    Script {
        /// The message.
        message: String,
        /// Where the script was.
        frames: Vec<Frame>,
    },
    /// The call ran past its deadline (an endless loop, or too much work).
    Deadline {
        /// Where the script was.
        frames: Vec<Frame>,
    },
    /// The guest tried to grow its memory past the limit.
    MemoryLimit {
        /// The limit in bytes.
        limit: usize,
        /// Where the script was.
        frames: Vec<Frame>,
    },
    /// A Wasm trap (out-of-bounds access, unreachable, stack overflow) or a
    /// panic inside the runtime.
    Trap {
        /// What trapped.
        message: String,
        /// Where the script was.
        frames: Vec<Frame>,
    },
    /// Writing the script's output failed (e.g. a closed pipe).
    Output(std::io::Error),
    /// The embedding itself failed (a missing export, a host bug).
    Host(String),
    /// An earlier failure left the instance unusable.
    Poisoned,
}

impl RunError {
    /// Where the script was, innermost frame first (script frames only).
    pub fn frames(&self) -> &[Frame] {
        match self {
            Self::Script { frames, .. }
            | Self::Deadline { frames }
            | Self::MemoryLimit { frames, .. }
            | Self::Trap { frames, .. } => frames,
            Self::Output(_) | Self::Host(_) | Self::Poisoned => &[],
        }
    }

    /// Whether the instance can take more calls after this error.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, Self::Script { .. } | Self::Output(_))
    }

    /// The message stap-style, without the `ERROR: ` prefix; `deadline` is
    /// the per-call budget, named in the deadline message.
    pub fn message(&self, deadline: Duration) -> String {
        match self {
            Self::Script { message, .. } => message.clone(),
            Self::Deadline { .. } => format!(
                "handler exceeded its time budget of {} ms (MAXACTION-like limit)",
                deadline.as_millis()
            ),
            Self::MemoryLimit { limit, .. } => format!(
                "handler exceeded the memory limit of {} MiB",
                limit / (1 << 20)
            ),
            Self::Trap { message, .. } => format!("handler trapped: {message}"),
            Self::Output(e) => format!("writing output failed: {e}"),
            Self::Host(m) => format!("sandbox failure: {m}"),
            Self::Poisoned => "the sandbox is unusable after an earlier failure".into(),
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Deadline { .. } => f.write_str("handler exceeded its time budget"),
            _ => f.write_str(&self.message(Duration::ZERO)),
        }
    }
}

impl std::error::Error for RunError {}

/// Setting up the sandbox, compiling or instantiating a script failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The engine could not be configured or the runtime not compiled.
    #[error("cannot set up the Wasm sandbox: {0}")]
    Setup(String),
    /// The script module is invalid or failed to compile.
    #[error("cannot compile the handler module: {0}")]
    Compile(String),
    /// Linking or instantiating failed.
    #[error("cannot instantiate the handlers: {0}")]
    Instantiate(String),
    /// The instance needs more memory than the limit allows.
    #[error("the handlers need more than the memory limit of {} MiB", .0 / (1 << 20))]
    MemoryLimit(usize),
    /// The module cache could not be used.
    #[error("module cache: {0}")]
    Cache(String),
}

/// Payload of the error `host.error` raises: a script run-time error.
#[derive(Debug)]
pub(crate) struct ScriptRaised(pub String);

impl fmt::Display for ScriptRaised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScriptRaised {}

/// Payload of `host.error` when the runtime itself panicked.
#[derive(Debug)]
pub(crate) struct RuntimePanic(pub String);

impl fmt::Display for RuntimePanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RuntimePanic {}

/// Raised by the resource limiter when memory would grow past the limit.
#[derive(Debug)]
pub(crate) struct MemoryLimitHit {
    pub limit: usize,
}

impl fmt::Display for MemoryLimitHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "memory limit of {} bytes reached", self.limit)
    }
}

impl std::error::Error for MemoryLimitHit {}

/// Writing output failed.
#[derive(Debug)]
pub(crate) struct OutputFailed(pub std::io::Error);

impl fmt::Display for OutputFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for OutputFailed {}

/// The script frames of the backtrace attached to `error`.
fn script_frames(error: &wasmtime::Error, script: &Module) -> Vec<Frame> {
    let Some(bt) = error.downcast_ref::<WasmBacktrace>() else {
        return Vec::new();
    };
    bt.frames()
        .iter()
        .filter(|f| Module::same(f.module(), script))
        .map(|f| Frame {
            func_index: f.func_index(),
            func_name: f.func_name().map(str::to_string),
            module_offset: f.module_offset(),
            func_offset: f.func_offset(),
        })
        .collect()
}

/// Turns a wasmtime error from a call into a [`RunError`].
pub(crate) fn classify(
    error: wasmtime::Error,
    script: &Module,
    limit_hit: Option<usize>,
) -> RunError {
    let frames = script_frames(&error, script);
    if let Some(hit) = error.downcast_ref::<MemoryLimitHit>() {
        return RunError::MemoryLimit {
            limit: hit.limit,
            frames,
        };
    }
    if let Some(limit) = limit_hit {
        // A failed allocation the runtime reported as a panic.
        return RunError::MemoryLimit { limit, frames };
    }
    if let Some(ScriptRaised(message)) = error.downcast_ref::<ScriptRaised>() {
        return RunError::Script {
            message: message.clone(),
            frames,
        };
    }
    if let Some(RuntimePanic(message)) = error.downcast_ref::<RuntimePanic>() {
        return RunError::Trap {
            message: message.clone(),
            frames,
        };
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return match trap {
            Trap::Interrupt => RunError::Deadline { frames },
            other => RunError::Trap {
                message: other.to_string(),
                frames,
            },
        };
    }
    if error.downcast_ref::<OutputFailed>().is_some() {
        return match error.downcast::<OutputFailed>() {
            Ok(OutputFailed(e)) => RunError::Output(e),
            Err(e) => RunError::Host(format!("{e:#}")),
        };
    }
    RunError::Host(format!("{error:#}"))
}

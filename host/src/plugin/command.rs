//! `wasmtap run PLUGIN.wasm`: load a plugin, check it, run it like a
//! script; with `--connect`, hand it to the daemon, whose policy applies.

use std::{
    fs,
    io::{self, Write},
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    os::unix::process::CommandExt,
    path::PathBuf,
    process::{Child, Command, ExitCode},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, bail};
use wasmtap_abi::{Filter, FilterCmp, FilterField};

use super::{LoadOptions, Plugin};
use crate::{
    catalog::LiveCatalog,
    sandbox::{Sandbox, SandboxConfig},
    session::{self, SessionOptions},
};

/// Runs a plugin: hand-written handlers (Rust built with wasmtap-guest for
/// wasm32-unknown-unknown) under the same sandbox and limits as scripts.
#[derive(Debug, clap::Parser)]
#[command(name = "wasmtap run")]
pub struct RunArgs {
    /// The plugin module (.wasm).
    #[arg(value_name = "PLUGIN")]
    pub plugin: PathBuf,

    /// Trace only this process (an in-kernel filter on every probe).
    #[arg(short = 'x', value_name = "PID", conflicts_with = "command")]
    pub target_pid: Option<u32>,

    /// Run CMD (split on whitespace, no shell) once the probes are
    /// attached, trace only it, and stop when it exits.
    #[arg(short = 'c', value_name = "CMD")]
    pub command: Option<String>,

    /// Write the plugin's output to FILE instead of standard output.
    #[arg(short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Report each phase with its time.
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// CPU time a handler batch may take before the plugin is stopped, in ms.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub handler_budget_ms: u64,

    /// Memory the plugin's sandbox may use, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub memory_mib: usize,

    /// Run the plugin through the wasmtap daemon listening on this socket
    /// (the daemon's policy applies to its probes and imports).
    #[arg(long, value_name = "SOCKET", conflicts_with = "command")]
    pub connect: Option<PathBuf>,

    /// With --connect: print the daemon's messages as JSON lines.
    #[arg(long, requires = "connect")]
    pub json: bool,
}

/// Runs `wasmtap run`.
///
/// # Errors
/// The plugin cannot be read or is refused, or the run cannot start.
pub fn execute(args: RunArgs) -> anyhow::Result<ExitCode> {
    let wasm = fs::read(&args.plugin)
        .with_context(|| format!("cannot read plugin '{}'", args.plugin.display()))?;
    let name = args.plugin.display().to_string();
    if let Some(socket) = &args.connect {
        return connect(&args, socket, name, wasm);
    }
    let sandbox_config = SandboxConfig::default();
    let host_functions = Sandbox::new(sandbox_config)?.host_functions();
    let catalog = LiveCatalog::new()?;
    let loaded = super::load(
        wasm,
        &LoadOptions {
            name: &name,
            host_functions: &host_functions,
            restrictions: None,
            catalog: &catalog,
        },
    );
    let mut plugin = match loaded {
        Ok(plugin) => plugin,
        // Rendered diagnostics carry their own `Error:` lines.
        Err(error @ super::PluginError::Probes { .. }) => {
            eprintln!("{error}");
            return Ok(ExitCode::from(1));
        }
        Err(error) => return Err(error.into()),
    };
    let mut held = match &args.command {
        Some(command) => Some(HeldCommand::spawn(command)?),
        None => None,
    };
    if let Some(pid) = args.target_pid.or(held.as_ref().map(HeldCommand::pid)) {
        plugin.add_filter(
            Filter::new(FilterField::Pid, FilterCmp::Eq, u64::from(pid)),
            "target process",
        )?;
    }
    let output: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(io::BufWriter::new(
            fs::File::create(path)
                .with_context(|| format!("cannot create output file '{}'", path.display()))?,
        )),
        None => Box::new(io::stdout()),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let options = SessionOptions {
        file_name: name,
        verbose: args.verbose,
        handler_budget: Duration::from_millis(args.handler_budget_ms.max(1)),
        memory_limit: args.memory_mib.max(1) << 20,
        stop: Some(stop.clone()),
        ..SessionOptions::default()
    };
    let result = run(&plugin, output, &options, held.as_mut(), &stop);
    if let Some(held) = held {
        held.finish();
    }
    Ok(ExitCode::from(result?.exit_code))
}

fn run(
    plugin: &Plugin,
    output: Box<dyn Write + Send>,
    options: &SessionOptions,
    held: Option<&mut HeldCommand>,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<session::Outcome> {
    let mut held = held;
    let mut attached = || {
        if let Some(held) = held.as_deref_mut() {
            held.release(stop.clone());
        }
    };
    Ok(session::run_plugin(
        &plugin.bundle,
        &plugin.kernel_probes,
        output,
        options,
        &mut attached,
    )?)
}

/// `-c CMD`: the command, started but held before its `exec` until the
/// probes are attached, so it is traced from its first instruction.
struct HeldCommand {
    child: Option<Child>,
    gate: Option<OwnedFd>,
    waiter: Option<std::thread::JoinHandle<()>>,
}

impl HeldCommand {
    fn spawn(command: &str) -> anyhow::Result<Self> {
        let mut words = command.split_whitespace();
        let Some(program) = words.next() else {
            bail!("-c needs a command");
        };
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into `fds`.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error()).context("creating the -c gate");
        }
        // SAFETY: both descriptors are new and owned here.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let read_fd = read.as_raw_fd();
        // A shell waits on the gate (fd 3) and then execs the command in
        // the same process, so the pid we filter on is the command's. (A
        // `pre_exec` hook cannot wait: `spawn` returns only after `exec`.)
        let mut cmd = Command::new("/bin/sh");
        cmd.args([
            "-c",
            r#"read -r _ <&3; exec 3<&- "$@""#,
            "wasmtap-c",
            program,
        ])
        .args(words);
        // SAFETY: the hook only calls dup2(2) or fcntl(2), both
        // async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                // dup2 onto itself keeps O_CLOEXEC: clear it then.
                let ok = if read_fd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0) == 0
                } else {
                    libc::dup2(read_fd, 3) == 3
                };
                if !ok {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot run '{program}'"))?;
        drop(read);
        Ok(Self {
            child: Some(child),
            gate: Some(write),
            waiter: None,
        })
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Lets the command run; the run stops once it exits.
    fn release(&mut self, stop: Arc<AtomicBool>) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        self.gate = None;
        self.waiter = Some(std::thread::spawn(move || {
            let _ = child.wait();
            stop.store(true, Ordering::SeqCst);
        }));
    }

    /// Kills a command that never ran, and reaps it.
    fn finish(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(waiter) = self.waiter.take() {
            let _ = waiter.join();
        }
    }
}

/// `--connect`: the daemon checks the plugin against the tenant's policy
/// and runs it; we only stream.
fn connect(
    args: &RunArgs,
    socket: &std::path::Path,
    name: String,
    wasm: Vec<u8>,
) -> anyhow::Result<ExitCode> {
    use crate::daemon::{client, protocol::RunRequest};
    let display = if args.json {
        client::Display::Json
    } else {
        client::Display::Text
    };
    let code = client::run(
        socket,
        RunRequest {
            file_name: name,
            source: String::new(),
            args: Vec::new(),
            target_pid: args.target_pid,
            verbose: args.verbose,
            string_capture: None,
            plugin: Some(wasm),
        },
        display,
    )?;
    Ok(ExitCode::from(code))
}

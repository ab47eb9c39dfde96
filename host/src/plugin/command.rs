//! `wasmtap run PLUGIN.wasm`: load a plugin, check it, run it like a
//! script; with `--connect`, hand it to the daemon, whose policy applies.

use std::{fs, path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context as _;
use wasmtap_abi::{Filter, FilterCmp, FilterField};

use super::LoadOptions;
use crate::{
    catalog::LiveCatalog,
    sandbox::{Sandbox, SandboxConfig},
    session::{self, SessionOptions},
    stacks::report::{OutputFormat, Report},
    target::Target,
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

    /// Run CMD (with /bin/sh, held until the probes are attached), trace
    /// only it, and stop when it exits.
    #[arg(short = 'c', value_name = "CMD")]
    pub command: Option<String>,

    /// Write the plugin's output to FILE instead of standard output.
    #[arg(short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// `text`: the output as the plugin prints it; `folded`: the stack
    /// report in it (stack lines in stap's layout, each followed by a count
    /// line) as folded stacks (`root;...;leaf count`).
    #[arg(long = "output", value_name = "FORMAT", value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Also draw the stack report in the output as an SVG flame graph into
    /// FILE.
    #[arg(long, value_name = "FILE", conflicts_with = "connect")]
    pub flamegraph: Option<PathBuf>,

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
    #[arg(long, value_name = "SOCKET")]
    pub connect: Option<PathBuf>,

    /// With --connect: print the daemon's messages as JSON lines.
    #[arg(long, requires = "connect")]
    pub json: bool,
}

/// `--output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// As printed.
    Text,
    /// Folded stacks.
    Folded,
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
    // `-c`: started now and held until the probes are attached (the
    // session releases it, and ends the run when it exits); killed if the
    // plugin is refused.
    let target = match &args.command {
        Some(command) => Some(Arc::new(
            Target::start(command).with_context(|| format!("cannot start '{command}'"))?,
        )),
        None => None,
    };
    // `process.function(..)` without a path probes the target's program.
    let catalog = LiveCatalog::new()?
        .with_target(target.as_ref().map(|t| t.pid()).or(args.target_pid))
        .with_target_command(args.command.as_deref());
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
    if let Some(pid) = args.target_pid.or(target.as_ref().map(|t| t.pid())) {
        plugin.add_filter(
            Filter::new(FilterField::Pid, FilterCmp::Eq, u64::from(pid)),
            "target process",
        )?;
    }
    let report = Report::new(
        match args.format {
            Format::Text => OutputFormat::Text,
            Format::Folded => OutputFormat::Folded,
        },
        args.flamegraph.clone(),
    );
    let output = report.writer(crate::output::open(args.output.as_deref(), 0)?);
    let options = SessionOptions {
        file_name: name.clone(),
        verbose: args.verbose,
        handler_budget: Duration::from_millis(args.handler_budget_ms.max(1)),
        memory_limit: args.memory_mib.max(1) << 20,
        target: target.map(|t| t as Arc<dyn crate::target::Gate>),
        target_pid: args.target_pid,
        ..SessionOptions::default()
    };
    let outcome = session::run_plugin(&plugin.bundle, &plugin.kernel_probes, output, &options)?;
    drop(options);
    if report.collects() {
        let mut out: Box<dyn std::io::Write> = match &args.output {
            Some(path) => Box::new(
                fs::OpenOptions::new()
                    .append(true)
                    .open(path)
                    .with_context(|| format!("cannot reopen output file '{}'", path.display()))?,
            ),
            None => Box::new(std::io::stdout()),
        };
        report.finish(&mut out, &name)?;
    }
    Ok(ExitCode::from(outcome.exit_code))
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
    let request = RunRequest {
        file_name: name,
        target_pid: args.target_pid,
        verbose: args.verbose,
        plugin: Some(wasm),
        ..RunRequest::default()
    };
    let code = client::run(
        socket,
        request,
        client::Display::new(args.json),
        args.command.as_deref(),
    )?;
    Ok(ExitCode::from(code))
}

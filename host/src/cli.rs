//! The command line, shaped like stap's: validate the arguments, compile,
//! stop after the pass `-p` names, or run.

use std::{
    fs,
    io::{self, Write},
    path::PathBuf,
    process::ExitCode,
    time::Instant,
};

use anyhow::{Context as _, bail};
use clap::Parser;
use wasmtap::{
    catalog::LiveCatalog,
    session::{self, SessionOptions},
};
use wasmtap_compiler::{CompileOptions, diagnostics};

const EXAMPLES: &str = r#"Examples:
  wasmtap -e 'probe begin { printf("hello %s\n", "world"); exit() }'
  wasmtap -e 'probe syscall.openat { printf("%s(%d) %s\n", execname(), pid(), user_string($filename)) }'
  wasmtap -e 'global c; probe syscall.* { c[execname()]++ } probe timer.s(5) { exit() }'
  wasmtap -p 3 script.stp      # show the capture plans and the Wasm handlers
  wasmtap -v script.stp ARG1   # time each pass; $1 / @1 read ARG1"#;

/// Safe SystemTap-style tracing: probes capture in eBPF, handlers run in a
/// Wasm sandbox.
#[derive(Debug, Parser)]
#[command(name = "wasmtap", version, after_help = EXAMPLES)]
pub struct Args {
    /// Run this script text instead of a script file.
    #[arg(short = 'e', value_name = "SCRIPT")]
    pub script_text: Option<String>,

    /// The script file (unless -e), then the script's arguments ($1, @1...).
    #[arg(
        value_name = "SCRIPT_FILE | ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub rest: Vec<String>,

    /// Write the script's output to FILE instead of standard output.
    #[arg(short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Report each pass with its time, like `stap -v`; repeat for more.
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Stop after pass N and print what it produced: 1 parse tree, 2
    /// resolved probes and types, 3 capture plans and Wasm text, 4 compile
    /// the module into the cache.
    #[arg(short = 'p', value_name = "N", value_parser = clap::value_parser!(u8).range(1..=4))]
    pub pass: Option<u8>,

    /// The value of target() (the process of interest).
    #[arg(short = 'x', value_name = "PID")]
    pub target_pid: Option<u32>,

    /// Bytes the kernel copies per user string (user_string, argstr).
    #[arg(long, value_name = "BYTES", default_value_t = 256,
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub string_capture: u16,

    /// CPU time a handler batch may take before the script is stopped, in ms.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub handler_budget_ms: u64,

    /// Memory the script's sandbox may use, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub memory_mib: usize,

    /// Run the script through the wasmtap daemon listening on this socket
    /// (no root needed; the daemon's policy applies).
    #[arg(long, value_name = "SOCKET")]
    pub connect: Option<PathBuf>,

    /// With --connect: print the daemon's messages as JSON lines.
    #[arg(long, requires = "connect")]
    pub json: bool,

    /// With --connect: print the counters of the running tenants you may
    /// see (all of them for root) as JSON, and exit.
    #[arg(long, requires = "connect")]
    pub stats: bool,
}

/// What the user asked for, checked before anything is acquired.
struct Request {
    file_name: String,
    source: String,
    script_args: Vec<String>,
}

impl Args {
    fn request(&self) -> anyhow::Result<Request> {
        if let Some(text) = &self.script_text {
            return Ok(Request {
                file_name: "<input>".to_string(),
                source: text.clone(),
                script_args: self.rest.clone(),
            });
        }
        let Some((file, args)) = self.rest.split_first() else {
            bail!(
                "no script given: pass a script file, or the script text with -e\n  try: wasmtap --help"
            );
        };
        let source = fs::read_to_string(file)
            .with_context(|| format!("cannot read script file '{file}'"))?;
        Ok(Request {
            file_name: file.clone(),
            source,
            script_args: args.to_vec(),
        })
    }
}

/// Runs the command line.
///
/// # Errors
/// Anything that stops the run before the script starts: bad arguments,
/// compile errors (already printed), missing privileges, attach failures.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(socket) = &args.connect {
        return connect(&args, socket);
    }
    let request = args.request()?;
    let catalog = LiveCatalog::new()?;
    let options = CompileOptions {
        args: request.script_args.clone(),
        target_pid: args.target_pid,
        capture_string_bytes: args.string_capture,
        restrictions: None,
    };
    let verbose = |pass: u8, what: &str, started: Instant| {
        if args.verbose > 0 {
            eprintln!(
                "Pass {pass}: {what} in {:.1} ms",
                started.elapsed().as_secs_f64() * 1e3
            );
        }
    };
    let fail = |errors: Vec<diagnostics::Diagnostic>| -> anyhow::Result<ExitCode> {
        eprint!(
            "{}",
            diagnostics::render(&errors, &request.file_name, &request.source)
        );
        let pass = if errors.len() == 1 { "error" } else { "errors" };
        eprintln!("{} {pass}; nothing was attached.", errors.len());
        Ok(ExitCode::from(1))
    };

    let started = Instant::now();
    if args.pass == Some(1) {
        let script = match wasmtap_compiler::parse(&request.source, &catalog, &options) {
            Ok(script) => script,
            Err(errors) => return fail(errors),
        };
        verbose(1, "parsed the script", started);
        println!("{}", serde_json::to_string_pretty(&script)?);
        return Ok(ExitCode::SUCCESS);
    }
    if args.pass == Some(2) {
        let checked = match wasmtap_compiler::check(&request.source, &catalog, &options) {
            Ok(checked) => checked,
            Err(errors) => return fail(errors),
        };
        verbose(2, "resolved and checked the script", started);
        print!("{}", session::describe_checked(&checked));
        return Ok(ExitCode::SUCCESS);
    }
    let bundle = match wasmtap_compiler::compile(&request.source, &catalog, &options) {
        Ok(bundle) => bundle,
        Err(errors) => return fail(errors),
    };
    verbose(3, "compiled capture plans and handlers", started);
    if args.pass == Some(3) {
        print!("{}", session::describe_bundle(&bundle));
        return Ok(ExitCode::SUCCESS);
    }

    let output: Box<dyn Write + Send> = match &args.output {
        Some(path) => Box::new(io::BufWriter::new(
            fs::File::create(path)
                .with_context(|| format!("cannot create output file '{}'", path.display()))?,
        )),
        None => Box::new(io::stdout()),
    };
    let session_options = SessionOptions {
        file_name: request.file_name.clone(),
        source: request.source.clone(),
        verbose: args.verbose,
        compile_only: args.pass == Some(4),
        handler_budget: std::time::Duration::from_millis(args.handler_budget_ms.max(1)),
        memory_limit: args.memory_mib.max(1) << 20,
        ..SessionOptions::default()
    };
    let outcome = session::run(&bundle, output, &session_options)?;
    Ok(ExitCode::from(outcome.exit_code))
}

/// `--connect`: the daemon compiles and runs; we only stream.
fn connect(args: &Args, socket: &std::path::Path) -> anyhow::Result<ExitCode> {
    use wasmtap::daemon::{client, protocol::RunRequest};
    if args.stats {
        client::stats(socket)?;
        return Ok(ExitCode::SUCCESS);
    }
    let request = args.request()?;
    let display = if args.json {
        client::Display::Json
    } else {
        client::Display::Text
    };
    let code = client::run(
        socket,
        RunRequest {
            file_name: request.file_name,
            source: request.source,
            args: request.script_args,
            target_pid: args.target_pid,
            verbose: args.verbose,
            string_capture: Some(args.string_capture),
            plugin: None,
        },
        display,
    )?;
    Ok(ExitCode::from(code))
}

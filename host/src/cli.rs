//! The command line, shaped like stap's: validate the arguments, compile,
//! stop after the pass `-p` names, or run.

use std::{
    fs,
    io::{self, Write},
    path::PathBuf,
    process::ExitCode,
    sync::Arc,
    time::Instant,
};

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};
use wasmtap::{
    catalog::LiveCatalog,
    output,
    session::{self, SessionOptions},
    stacks::report::{OutputFormat, Report},
    target::Target,
};
use wasmtap_compiler::{CompileOptions, diagnostics, listing};

const EXAMPLES: &str = r#"Examples:
  wasmtap -e 'probe begin { printf("hello %s\n", "world"); exit() }'
  wasmtap -e 'probe syscall.openat { printf("%s(%d) %s\n", execname(), pid(), user_string($filename)) }'
  wasmtap -e 'global c; probe syscall.* { c[execname()]++ } probe timer.s(5) { exit() }'
  wasmtap -L 'syscall.open*'   # probe points with their variables
  wasmtap -p 3 script.stp      # show the capture plans and the Wasm handlers
  wasmtap -v script.stp ARG1   # time each pass; $1 / @1 read ARG1
  wasmtap --flamegraph out.svg -c ./prog prof.stp   # a stack report, drawn
  wasmtap profile -c ./prog --flamegraph out.svg    # the same, no script"#;

/// Safe SystemTap-style tracing: probes capture in eBPF, handlers run in a
/// Wasm sandbox.
#[derive(Debug, Parser)]
#[command(
    name = "wasmtap",
    version,
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// A shortcut instead of a script.
    #[command(subcommand)]
    pub command: Option<Shortcut>,

    /// Run this script text instead of a script file.
    #[arg(short = 'e', value_name = "SCRIPT")]
    pub script_text: Option<String>,

    /// The script file (unless -e), then the script's arguments ($1, @1...).
    #[arg(value_name = "SCRIPT_FILE | ARGS", trailing_var_arg = true)]
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

    /// List the probe points matching PATTERN, one per line, and exit
    /// (`-l 'syscall.*'`).
    #[arg(short = 'l', value_name = "PATTERN", conflicts_with = "list_vars")]
    pub list: Option<String>,

    /// List the probe points matching PATTERN with their variables and
    /// types, and exit (`-L 'syscall.open*'`).
    #[arg(short = 'L', value_name = "PATTERN")]
    pub list_vars: Option<String>,

    /// The value of target() (the process of interest).
    #[arg(short = 'x', value_name = "PID", conflicts_with = "command_line")]
    pub target_pid: Option<u32>,

    /// Start CMD (with /bin/sh) once the probes are attached; target() is
    /// its pid and the run ends when it exits.
    #[arg(short = 'c', value_name = "CMD")]
    pub command_line: Option<String>,

    #[command(flatten)]
    pub stacks: StackOutput,

    /// Bytes the kernel copies per user string (user_string, argstr).
    #[arg(long, value_name = "BYTES", default_value_t = 256,
          value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub string_capture: u16,

    /// stap's MAXSTRINGLEN: the longest string a script value holds, in
    /// bytes (one less, as stap counts the NUL).
    #[arg(long, value_name = "BYTES", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(2..=1 << 20))]
    pub maxstringlen: u32,

    /// stap's MAXMAPENTRIES: entries an array declared without a size
    /// (`global a[N]`) may hold; one more is a run-time error.
    #[arg(long, value_name = "N", default_value_t = 2048,
          value_parser = clap::value_parser!(u32).range(1..=100_000_000))]
    pub maxmapentries: u32,

    /// CPU time a handler batch may take before the script is stopped, in ms.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub handler_budget_ms: u64,

    /// Memory the script's sandbox may use, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub memory_mib: usize,

    /// Stop the script (as a run-time error) once it prints more than
    /// this many bytes in one second; 0 for no limit.
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    pub max_output_rate: u64,

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

/// How stack reports are shown; shared by scripts and `wasmtap profile`.
#[derive(Debug, clap::Args)]
pub struct StackOutput {
    /// `text`: the script's output as printed; `folded`: the stack report
    /// in it as folded stacks (`root;...;leaf count`), for flame graph
    /// tools.
    #[arg(long = "output", value_name = "FORMAT", value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Also draw the stack report as an SVG flame graph into FILE.
    #[arg(long, value_name = "FILE")]
    pub flamegraph: Option<PathBuf>,

    /// Samples per second of `timer.profile` on each CPU.
    #[arg(long, value_name = "HZ", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub profile_hz: u32,
}

/// `--output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Folded,
}

/// Shortcuts that write the script themselves.
#[derive(Debug, Subcommand)]
pub enum Shortcut {
    /// Profile a process's user stacks on every CPU: print each distinct
    /// stack with its sample count (stap's layout), most frequent first.
    Profile(ProfileArgs),
}

/// `wasmtap profile`.
#[derive(Debug, clap::Args)]
pub struct ProfileArgs {
    /// Profile this running process.
    #[arg(
        short = 'x',
        value_name = "PID",
        conflicts_with = "command_line",
        required_unless_present = "command_line"
    )]
    pub target_pid: Option<u32>,

    /// Start CMD (with /bin/sh) and profile it until it exits.
    #[arg(short = 'c', value_name = "CMD")]
    pub command_line: Option<String>,

    /// Stop after this many seconds (default: when the process exits, or
    /// on Ctrl-C; with -x too).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<u32>,

    /// Write the report to FILE instead of standard output.
    #[arg(short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(flatten)]
    pub stacks: StackOutput,
}

impl ProfileArgs {
    /// The script the shortcut runs.
    fn script(&self) -> String {
        let mut script = String::from(
            "global s\n\
             probe timer.profile { if (pid() == target()) s[ubacktrace()] <<< 1 }\n\
             probe end { foreach (i in s-) { print_ustack(i); printf(\"\\t%d\\n\", @count(s[i])) } }\n",
        );
        // With -c the run ends with the command; with -x it ends when the
        // process's last thread exits.
        if self.target_pid.is_some() {
            script.push_str("probe process.end { if (pid() == target()) exit() }\n");
        }
        if let Some(seconds) = self.duration {
            script.push_str(&format!("probe timer.s({}) {{ exit() }}\n", seconds.max(1)));
        }
        script
    }
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

impl Args {
    /// The pattern of `-l` / `-L`, and whether variables are wanted.
    fn listing(&self) -> Option<(&str, bool)> {
        match (&self.list, &self.list_vars) {
            (Some(pattern), _) => Some((pattern, false)),
            (None, Some(pattern)) => Some((pattern, true)),
            (None, None) => None,
        }
    }
}

/// `-l` / `-L`: prints the matching probe points (with their variables).
fn list(pattern: &str, with_vars: bool) -> anyhow::Result<ExitCode> {
    let catalog = LiveCatalog::new()?;
    match listing::list(pattern, &catalog, with_vars) {
        Ok(lines) => {
            let mut out = io::stdout().lock();
            for line in lines {
                writeln!(out, "{line}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            let source = listing::script_for(pattern);
            eprint!("{}", diagnostics::render(&errors, "<pattern>", &source));
            Ok(ExitCode::from(1))
        }
    }
}

/// Runs the command line.
///
/// # Errors
/// Anything that stops the run before the script starts: bad arguments,
/// compile errors (already printed), missing privileges, attach failures.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(Shortcut::Profile(profile)) = &args.command {
        return run_profile(&args, profile);
    }
    if let Some(socket) = &args.connect {
        return connect(&args, socket);
    }
    if let Some((pattern, with_vars)) = args.listing() {
        return list(pattern, with_vars);
    }
    let request = args.request()?;
    run_script(
        &args,
        &request,
        Targets::from(&args),
        &args.stacks,
        args.output.as_ref(),
    )
}

/// `-x` / `-c` of a run.
struct Targets<'a> {
    pid: Option<u32>,
    command: Option<&'a str>,
}

impl<'a> From<&'a Args> for Targets<'a> {
    fn from(args: &'a Args) -> Self {
        Self {
            pid: args.target_pid,
            command: args.command_line.as_deref(),
        }
    }
}

/// `wasmtap profile`: the profile script, run like any other.
fn run_profile(args: &Args, profile: &ProfileArgs) -> anyhow::Result<ExitCode> {
    if let Some(pid) = profile.target_pid
        && !std::path::Path::new(&format!("/proc/{pid}")).exists()
    {
        bail!(
            "no process {pid} to profile\n  try: pass the pid of a running process, or start one with -c CMD"
        );
    }
    let request = Request {
        file_name: "<profile>".to_string(),
        source: profile.script(),
        script_args: Vec::new(),
    };
    let targets = Targets {
        pid: profile.target_pid,
        command: profile.command_line.as_deref(),
    };
    run_script(
        args,
        &request,
        targets,
        &profile.stacks,
        profile.output.as_ref(),
    )
}

/// Compiles and runs `request`; shared by scripts and shortcuts.
fn run_script(
    args: &Args,
    request: &Request,
    targets: Targets<'_>,
    stacks: &StackOutput,
    output_file: Option<&PathBuf>,
) -> anyhow::Result<ExitCode> {
    // The command starts now, held before exec, so target() is its pid;
    // it is released once the probes are attached, and killed if the run
    // fails before.
    let target = match targets.command {
        Some(command) if args.pass.is_none() => Some(Arc::new(
            Target::start(command).with_context(|| format!("cannot start '{command}'"))?,
        )),
        _ => None,
    };
    let catalog = LiveCatalog::new()?
        .with_target(target.as_ref().map(|t| t.pid()).or(targets.pid))
        .with_target_command(targets.command);
    let options = CompileOptions {
        args: request.script_args.clone(),
        target_pid: target.as_ref().map(|t| t.pid()).or(targets.pid),
        capture_string_bytes: args.string_capture,
        restrictions: None,
        max_string_len: args.maxstringlen,
        max_map_entries: args.maxmapentries,
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
    if !bundle.warnings.is_empty() {
        eprint!(
            "{}",
            diagnostics::render(&bundle.warnings, &request.file_name, &request.source)
        );
    }
    verbose(3, "compiled capture plans and handlers", started);
    if args.pass == Some(3) {
        print!("{}", session::describe_bundle(&bundle));
        return Ok(ExitCode::SUCCESS);
    }

    let report = Report::new(
        match stacks.format {
            Format::Text => OutputFormat::Text,
            Format::Folded => OutputFormat::Folded,
        },
        stacks.flamegraph.clone(),
    );
    let output = output::open(output_file.map(PathBuf::as_path), args.max_output_rate)?;
    let output = report.writer(output);
    let session_options = SessionOptions {
        file_name: request.file_name.clone(),
        source: request.source.clone(),
        verbose: args.verbose,
        compile_only: args.pass == Some(4),
        handler_budget: std::time::Duration::from_millis(args.handler_budget_ms.max(1)),
        memory_limit: args.memory_mib.max(1) << 20,
        target: target.clone().map(|t| t as Arc<dyn wasmtap::target::Gate>),
        profile_hz: stacks.profile_hz,
        ..SessionOptions::default()
    };
    let outcome = session::run(&bundle, output, &session_options)?;
    drop(target);
    if report.collects() {
        let mut out: Box<dyn Write> = match output_file {
            Some(path) => Box::new(
                fs::OpenOptions::new()
                    .append(true)
                    .open(path)
                    .with_context(|| format!("cannot reopen output file '{}'", path.display()))?,
            ),
            None => Box::new(io::stdout()),
        };
        report.finish(&mut out, &request.file_name)?;
    }
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
    let run_request = RunRequest {
        file_name: request.file_name,
        source: request.source,
        args: request.script_args,
        target_pid: args.target_pid,
        verbose: args.verbose,
        string_capture: Some(args.string_capture),
        ..RunRequest::default()
    };
    // `-c`: the command runs here, as this user, never as the daemon's.
    let code = client::run(
        socket,
        run_request,
        client::Display::new(args.json),
        args.command_line.as_deref(),
    )?;
    Ok(ExitCode::from(code))
}

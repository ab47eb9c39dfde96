//! `wasmtap`: parse the command line, run, map the result to an exit code.
//! Everything else lives in the library and in [`cli`].

mod cli;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    // `wasmtap daemon ...` has its own flags; everything else is stap-like.
    if std::env::args().nth(1).as_deref() == Some("daemon") {
        let args = wasmtap::daemon::server::DaemonArgs::parse_from(std::env::args().skip(1));
        return match wasmtap::daemon::server::serve(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("ERROR: {error:#}");
                ExitCode::from(1)
            }
        };
    }
    // `wasmtap run PLUGIN.wasm ...`, also as `wasmtap --connect SOCK run
    // PLUGIN.wasm ...`: a plugin rather than a script.
    let argv: Vec<String> = std::env::args().collect();
    let run_at = match argv.get(1).map(String::as_str) {
        Some("run") => Some(1),
        Some("--connect") if argv.get(3).map(String::as_str) == Some("run") => Some(3),
        _ => None,
    };
    if let Some(at) = run_at {
        let mut run_argv = vec!["wasmtap run".to_string()];
        run_argv.extend(argv[at + 1..].iter().cloned());
        if at == 3 {
            run_argv.extend(["--connect".to_string(), argv[2].clone()]);
        }
        let args = wasmtap::plugin::command::RunArgs::parse_from(run_argv);
        return match wasmtap::plugin::command::execute(args) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("ERROR: {error:#}");
                ExitCode::from(1)
            }
        };
    }
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ERROR: {error:#}");
            ExitCode::from(1)
        }
    }
}

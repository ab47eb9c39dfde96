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
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ERROR: {error:#}");
            ExitCode::from(1)
        }
    }
}

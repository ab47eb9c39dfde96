//! `wasmtap`: parse the command line, run, map the result to an exit code.
//! Everything else lives in the library and in [`cli`].

mod cli;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("ERROR: {error:#}");
            ExitCode::from(1)
        }
    }
}

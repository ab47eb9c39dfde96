//! `wasmtap --connect PATH ...`: run a script through a daemon without
//! root, with the local CLI's experience: output on stdout, diagnostics on
//! stderr, Ctrl-C ends the run (its `end` probes still print), the exit code
//! is the script's.

use std::{
    io::{self, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use anyhow::Context as _;

use super::protocol::{self, ClientMessage, RunRequest, ServerMessage};
use crate::signals;

/// How the client shows the daemon's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// Like the local CLI.
    Text,
    /// Every message as a JSON line on stdout, for tools.
    Json,
}

/// Runs `request` on the daemon at `socket`; returns the script's exit code.
///
/// # Errors
/// No daemon at `socket`, or the connection broke before the run ended.
pub fn run(socket: &Path, request: RunRequest, display: Display) -> anyhow::Result<u8> {
    let stream = connect(socket)?;
    protocol::send(&mut &stream, &ClientMessage::Run(request))?;
    signals::install();
    // Wake up now and then to forward Ctrl-C as a `stop` message.
    stream.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stop_sent = false;
    loop {
        if signals::stop_requested() && !stop_sent {
            protocol::send(&mut &stream, &ClientMessage::Stop)?;
            stop_sent = true;
        }
        let message = match protocol::receive::<ServerMessage>(&mut reader) {
            Ok(Some(message)) => message,
            Ok(None) => anyhow::bail!("the daemon closed the connection before the run ended"),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e).context("reading from the daemon"),
        };
        if display == Display::Json {
            println!("{}", serde_json::to_string(&message)?);
            if let ServerMessage::Exit { code, .. } = message {
                return Ok(code);
            }
            continue;
        }
        match message {
            ServerMessage::Out { data } => {
                let mut out = io::stdout().lock();
                out.write_all(data.as_bytes())?;
                out.flush()?;
            }
            ServerMessage::Err { data } => eprint!("{data}"),
            ServerMessage::Stats { .. } => {}
            ServerMessage::Exit { code, .. } => return Ok(code),
        }
    }
}

/// Prints the counters of the tenants this user may see, as JSON.
///
/// # Errors
/// No daemon at `socket`.
pub fn stats(socket: &Path) -> anyhow::Result<()> {
    let stream = connect(socket)?;
    protocol::send(&mut &stream, &ClientMessage::Stats)?;
    let mut reader = BufReader::new(stream);
    if let Some(ServerMessage::Stats { tenants }) = protocol::receive(&mut reader)? {
        println!("{}", serde_json::to_string_pretty(&tenants)?);
    }
    Ok(())
}

fn connect(socket: &Path) -> anyhow::Result<UnixStream> {
    UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot connect to a wasmtap daemon at {}\n  hint: start one as root with `wasmtap daemon --policy FILE --socket {}`",
            socket.display(),
            socket.display()
        )
    })
}

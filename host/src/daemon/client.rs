//! `wasmtap --connect PATH ...`: run a script through a daemon without
//! root, with the local CLI's experience: output on stdout, diagnostics on
//! stderr, Ctrl-C ends the run (its `end` probes still print), the exit code
//! is the script's. With `-c` the command runs here, as the user (see
//! [`super::target`]): held until the daemon says the probes are attached,
//! and its exit ends the run.

use std::{
    io::{self, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use anyhow::Context as _;

use super::protocol::{self, ClientMessage, RunRequest, ServerMessage};
use crate::{signals, target::Target};

/// How the client shows the daemon's stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// Like the local CLI.
    Text,
    /// Every message as a JSON line on stdout, for tools.
    Json,
}

impl Display {
    /// JSON lines when `json` (`--json`), else text.
    pub fn new(json: bool) -> Self {
        if json { Self::Json } else { Self::Text }
    }
}

/// Runs `request` on the daemon at `socket`; returns the script's exit code.
/// `command` is `-c`'s: started here, held until the daemon's `attached`,
/// and its exit stops the run.
///
/// # Errors
/// The command cannot be started, no daemon at `socket`, or the connection
/// broke before the run ended.
pub fn run(
    socket: &Path,
    mut request: RunRequest,
    display: Display,
    command: Option<&str>,
) -> anyhow::Result<u8> {
    let target = command
        .map(|command| hold_command(&mut request, command))
        .transpose()?;
    let target = target.as_ref();
    let stream = connect(socket)?;
    protocol::send(&mut &stream, &ClientMessage::Run(request))?;
    signals::install();
    // Wake up now and then to forward Ctrl-C as a `stop` message.
    stream.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stop_sent = false;
    loop {
        let target_done = target.is_some_and(Target::exited);
        if (signals::stop_requested() || target_done) && !stop_sent {
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
        if message == ServerMessage::Attached
            && let Some(target) = target
        {
            target.release();
        }
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
            ServerMessage::Stats { .. } | ServerMessage::Attached => {}
            ServerMessage::Exit { code, .. } => return Ok(code),
        }
    }
}

/// `-c CMD` through the daemon: starts `command` here, as the user, held
/// before exec, and makes `request` name it as its held target.
fn hold_command(request: &mut RunRequest, command: &str) -> anyhow::Result<Target> {
    let target = Target::start(command).with_context(|| format!("cannot start '{command}'"))?;
    request.target_pid = Some(target.pid());
    request.held_target = true;
    // Resolved here, with the user's PATH and working directory.
    request.target_executable = command
        .split_whitespace()
        .next()
        .and_then(|name| crate::elf::resolve_path(name).ok())
        .and_then(|path| std::fs::canonicalize(path).ok())
        .map(|path| path.display().to_string());
    Ok(target)
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

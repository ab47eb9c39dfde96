//! The messages between `wasmtap --connect` and `wasmtap daemon`: one JSON
//! object per line over a Unix stream socket, so any language can be a
//! client and a stream can be read by `jq`.

use std::io::{self, BufRead, Write};

use serde::{Deserialize, Serialize};

/// What a client sends.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Compile and run a script; must be the first message of a connection.
    Run(RunRequest),
    /// End the running script like Ctrl-C (`end` probes run).
    Stop,
    /// Report the counters of the tenants this user may see, then close.
    Stats,
}

/// A script to run and the options a user may set.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct RunRequest {
    /// For error locations.
    pub file_name: String,
    pub source: String,
    /// `$1`, `@1`...
    #[serde(default)]
    pub args: Vec<String>,
    /// `-x PID`, or with `held_target` the pid of the client's `-c`
    /// command. A `user`-level tenant may name only its own processes.
    #[serde(default)]
    pub target_pid: Option<u32>,
    /// `-c CMD`: `target_pid` is a command the client started as itself
    /// and holds before exec; it must be the tenant's own, the daemon
    /// answers [`ServerMessage::Attached`] once the probes are attached,
    /// and the client sends `stop` when the command exits.
    #[serde(default)]
    pub held_target: bool,
    /// The program the `-c` command runs (absolute path): what
    /// `process.function(..)` without a path probes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_executable: Option<String>,
    /// `-v`: the daemon reports phases ("attached; running").
    #[serde(default)]
    pub verbose: u8,
    /// `--string-capture`.
    #[serde(default)]
    pub string_capture: Option<u16>,
    /// `wasmtap --connect SOCK run PLUGIN.wasm`: the plugin module, run
    /// instead of `source` (checked against the tenant's policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<Vec<u8>>,
}

/// What the daemon sends.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Script output (what stap prints on stdout).
    Out { data: String },
    /// Diagnostics, errors and warnings (stap's stderr).
    Err { data: String },
    /// The probes are attached: the client lets its held `-c` command
    /// run.
    Attached,
    /// Answer to [`ClientMessage::Stats`].
    Stats { tenants: Vec<serde_json::Value> },
    /// The run ended; the connection closes after this.
    Exit {
        code: u8,
        /// The tenant's counters at the end (events, drops, CPU time).
        stats: serde_json::Value,
    },
}

/// Writes `message` as one line.
///
/// # Errors
/// The peer went away.
pub fn send<T: Serialize>(out: &mut impl Write, message: &T) -> io::Result<()> {
    let mut line = serde_json::to_vec(message).map_err(io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

/// Reads one message; `Ok(None)` at end of stream.
///
/// # Errors
/// A broken stream, or a line that is not a message (with the reason).
pub fn receive<T: for<'de> Deserialize<'de>>(input: &mut impl BufRead) -> io::Result<Option<T>> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    serde_json::from_str(&line)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_as_lines() {
        let mut buf = Vec::new();
        send(&mut buf, &ClientMessage::Stop).unwrap();
        send(
            &mut buf,
            &ClientMessage::Run(RunRequest {
                source: "probe begin { exit() }".into(),
                ..RunRequest::default()
            }),
        )
        .unwrap();
        assert_eq!(buf.iter().filter(|&&b| b == b'\n').count(), 2);
        let mut input = io::Cursor::new(buf);
        assert_eq!(
            receive::<ClientMessage>(&mut input).unwrap(),
            Some(ClientMessage::Stop)
        );
        assert!(matches!(
            receive::<ClientMessage>(&mut input).unwrap(),
            Some(ClientMessage::Run(_))
        ));
        assert_eq!(receive::<ClientMessage>(&mut input).unwrap(), None);
    }
}

//! A tenant's target process on the daemon's side: `-x PID`, or the `-c`
//! command its client started and holds before exec.
//!
//! The command never runs as the daemon's user: the client starts it (as
//! itself, held at [`crate::target::Target`]'s gate) and sends only its
//! pid. The daemon checks that the process is the tenant's
//! ([`check_owner`]) before anything is attached, and once the probes are
//! attached tells the client to let it run ([`ClientGate`]); the client
//! asks the daemon to stop when the command exits, so the `end` probes run
//! and their output is delivered as for a local `-c`.

use std::{
    os::unix::net::UnixStream,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use super::protocol::{self, ServerMessage};
use crate::target::Gate;

/// Checks that every user id of process `pid` (real, effective, saved,
/// filesystem) is `uid`, so a tenant can only target its own processes
/// and not a set-uid program it started.
///
/// # Errors
/// No such process, or another user's, in words for the tenant.
pub fn check_owner(pid: u32, uid: u32) -> Result<(), String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|_| format!("no process {pid}\n  hint: pass the pid of a running process"))?;
    let ids: Vec<u32> = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .map(|l| {
            l.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if ids.len() == 4 && ids.iter().all(|&id| id == uid) {
        Ok(())
    } else {
        Err(format!(
            "process {pid} does not belong to user {uid}; nothing was attached\n  hint: a tenant may target only its own processes"
        ))
    }
}

/// The gate of a `-c` command the client holds: releasing it sends the
/// client an [`ServerMessage::Attached`] message.
#[derive(Debug)]
pub struct ClientGate {
    pid: u32,
    client: Arc<Mutex<UnixStream>>,
    released: AtomicBool,
}

impl ClientGate {
    /// The gate of process `pid`, held by the client at `client`.
    pub fn new(pid: u32, client: &Arc<Mutex<UnixStream>>) -> Self {
        Self {
            pid,
            client: Arc::clone(client),
            released: AtomicBool::new(false),
        }
    }
}

impl Gate for ClientGate {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn release(&self) {
        if !self.released.swap(true, Ordering::SeqCst) {
            let mut stream = self.client.lock().unwrap_or_else(|e| e.into_inner());
            // A vanished client is noticed by the connection's watcher.
            let _ = protocol::send(&mut *stream, &ServerMessage::Attached);
        }
    }

    /// The client reports the command's exit with a `stop` message, which
    /// ends the run; the daemon cannot reap another user's child.
    fn exited(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_processes_only() {
        let me = std::process::id();
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        assert_eq!(check_owner(me, uid), Ok(()));
        assert!(
            check_owner(me, uid + 1)
                .unwrap_err()
                .contains("does not belong")
        );
        assert!(
            check_owner(u32::MAX, uid)
                .unwrap_err()
                .contains("no process")
        );
    }
}

//! `-c CMD`: the command whose process is `target()`.
//!
//! The command is started before the script is compiled (so `target()` is
//! its pid) but held at a gate until every probe is attached, so no event
//! of it is missed: it runs as `/bin/sh -c 'read GO <&3 && exec CMD'`, and
//! the shell waits on a pipe (fd 3) until [`Target::release`] writes to it,
//! then execs the command in the same process. The run ends when the
//! process exits, as stap's does; if the run ends first (a script `exit()`,
//! Ctrl-C, `--duration`), the command is killed rather than left running
//! unobserved.

use std::{
    fs::File,
    io::{self, Write},
    os::{fd::AsRawFd, unix::process::CommandExt},
    process::{Child, Command},
    sync::Mutex,
};

/// What a run needs of its `-c` command: its pid, a way to let it run once
/// the probes are attached, and whether it has exited. The command may be
/// local ([`Target`]) or held by a daemon's client (the daemon's gate sends
/// the client an `attached` message instead).
pub trait Gate: std::fmt::Debug + Send + Sync {
    /// The process id: `target()`.
    fn pid(&self) -> u32;
    /// Lets the command run. Idempotent.
    fn release(&self);
    /// Whether the command has exited (the run ends then).
    fn exited(&self) -> bool;
}

/// The started, held command.
#[derive(Debug)]
pub struct Target {
    child: Mutex<Child>,
    pid: u32,
    /// The gate's write end; dropped on release.
    gate: Mutex<Option<File>>,
}

impl Target {
    /// Starts `command` with a shell, held before it execs.
    ///
    /// # Errors
    /// The pipe or the process cannot be created.
    pub fn start(command: &str) -> io::Result<Self> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into `fds`.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors are fresh and owned here.
        let (read, write) = unsafe {
            use std::os::fd::FromRawFd;
            (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1]))
        };
        let read_fd = read.as_raw_fd();
        let mut shell = Command::new("/bin/sh");
        shell.arg("-c").arg(format!(
            "read wasmtap_go <&3 && exec 3<&- && exec {command}"
        ));
        // SAFETY: only dup2 and fcntl, which are async-signal-safe, run
        // between fork and exec.
        unsafe {
            shell.pre_exec(move || {
                // dup2 onto itself keeps close-on-exec set: clear it instead.
                let rc = if read_fd == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(read_fd, 3)
                };
                if rc < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = shell.spawn()?;
        drop(read);
        Ok(Self {
            pid: child.id(),
            child: Mutex::new(child),
            gate: Mutex::new(Some(write)),
        })
    }

    /// The process id: `target()`.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Lets the command run. Idempotent.
    pub fn release(&self) {
        let gate = self.gate.lock().map(|mut g| g.take());
        if let Ok(Some(mut gate)) = gate {
            let _ = gate.write_all(b"go\n");
        }
    }

    /// Whether the command has exited (it is reaped then).
    pub fn exited(&self) -> bool {
        self.child
            .lock()
            .map(|mut c| !matches!(c.try_wait(), Ok(None)))
            .unwrap_or(true)
    }
}

impl Gate for Target {
    fn pid(&self) -> u32 {
        Target::pid(self)
    }

    fn release(&self) {
        Target::release(self);
    }

    fn exited(&self) -> bool {
        Target::exited(self)
    }
}

impl Drop for Target {
    /// Kills the command if it still runs, and reaps it.
    fn drop(&mut self) {
        self.gate.get_mut().map(Option::take).ok();
        if let Ok(child) = self.child.get_mut()
            && matches!(child.try_wait(), Ok(None))
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_until_released() {
        let dir = std::env::temp_dir().join(format!("wasmtap-target-{}", std::process::id()));
        let _ = std::fs::remove_file(&dir);
        let target = Target::start(&format!("touch {}", dir.display())).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!dir.exists(), "the command ran before release");
        assert!(!target.exited());
        target.release();
        while !target.exited() {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(dir.exists());
        let _ = std::fs::remove_file(&dir);
    }
}

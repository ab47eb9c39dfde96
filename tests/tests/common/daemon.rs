//! A `wasmtap daemon` for tests: its own directory with a policy file, the
//! binary copied where other users may run it, and clients for any uid.

use std::{
    os::unix::{fs::PermissionsExt, process::CommandExt},
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use super::{Tracer, unique_path};

/// A daemon in its own directory, with the binary copied where other
/// users may run it.
pub struct Daemon {
    pub child: Child,
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub bin: PathBuf,
}

impl Daemon {
    pub fn start(tag: &str, policy: &str) -> Daemon {
        let dir = PathBuf::from(unique_path(tag));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("wasmtap");
        std::fs::copy(super::bin(), &bin).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("policy.toml"), policy).unwrap();
        let socket = dir.join("sock");
        Self::spawn(dir, bin, socket)
    }

    pub fn spawn(dir: PathBuf, bin: PathBuf, socket: PathBuf) -> Daemon {
        let mut command = Command::new(&bin);
        command
            .arg("daemon")
            .arg("--policy")
            .arg(dir.join("policy.toml"))
            .arg("--socket")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // The fresh copy may still be open for writing in a child another
        // test thread is forking (ETXTBSY) for a moment: try again.
        let mut tries = 0;
        let child = loop {
            match command.spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                spawned => break spawned.expect("spawn daemon"),
            }
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "the daemon did not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
        Daemon {
            child,
            dir,
            socket,
            bin,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// A client command for `uid` (root when `None`).
    pub fn client(&self, uid: Option<u32>, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command.arg("--connect").arg(&self.socket).args(args);
        if let Some(uid) = uid {
            command.uid(uid).gid(uid_gid(uid));
        }
        command
    }

    /// Runs a client with `args` as user `uid` (root for None) to its end,
    /// within `limit`, with its output captured.
    pub fn run_client(&self, uid: Option<u32>, args: &[&str], limit: Duration) -> Output {
        let child = self
            .client(uid, args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a client");
        super::wait_output(child, limit)
    }

    /// A client, once its probes are attached.
    pub fn tracer(&self, uid: u32, script: &str) -> Tracer {
        Tracer::start_command(self.client(Some(uid), &["-v", "-e", script]))
    }

    /// SIGTERM; the daemon must exit cleanly.
    pub fn stop(&mut self) {
        // SAFETY: kill on our own child.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the daemon ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(status.success(), "daemon exit: {status}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn uid_gid(uid: u32) -> u32 {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.get(2)?.parse::<u32>().ok()? == uid).then(|| f[3].parse().ok())?
        })
        .unwrap_or(uid)
}

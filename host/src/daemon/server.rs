//! `wasmtap daemon`: a long-running root process that runs other users'
//! scripts under the operator's policy.
//!
//! One thread per connection: identify the peer by `SO_PEERCRED`, resolve
//! its [`TenantPolicy`], compile with the policy's restrictions, scope every
//! capture plan to the tenant in the kernel, then run the script in its own
//! kernel session and sandbox, streaming output back. Tenants share nothing
//! but the daemon process: each has its own ring buffer, programs, wasmtime
//! store and limits, so one tenant's flood, trap or runaway loop does not
//! stop another. A disconnect or a `stop` message ends the tenant's run like
//! Ctrl-C; SIGTERM ends every run (each `end` probe runs and its output is
//! delivered) and removes the socket.

use std::{
    io::{self, BufReader, Write},
    os::{
        fd::AsRawFd,
        unix::{fs::PermissionsExt, net::UnixListener, net::UnixStream},
    },
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use wasmtap_compiler::{CompileOptions, diagnostics};

use super::{
    protocol::{self, ClientMessage, RunRequest, ServerMessage},
    target::{ClientGate, check_owner},
};
use crate::{
    catalog::LiveCatalog,
    output::RateLimited,
    policy::{Peer, Policy, TenantPolicy},
    session::{self, DiagnosticSink, RunCounters, SessionOptions},
    signals,
};

/// `wasmtap daemon --policy FILE --socket PATH`.
#[derive(Debug, clap::Parser)]
#[command(name = "wasmtap daemon")]
pub struct DaemonArgs {
    /// The operator's policy (TOML; see docs/policy.md).
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// Where to listen; created mode 0666 (the policy decides who may do
    /// what, by the peer's uid).
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,
}

/// A running tenant, for statistics.
struct Tenant {
    id: u64,
    uid: u32,
    user: String,
    script: String,
    counters: Arc<RunCounters>,
}

#[derive(Default)]
struct Tenants {
    next_id: AtomicU64,
    running: Mutex<Vec<Tenant>>,
}

/// Serves until SIGTERM or SIGINT.
///
/// # Errors
/// A policy that does not load, or a socket that cannot be bound.
pub fn serve(args: &DaemonArgs) -> anyhow::Result<()> {
    let policy = Arc::new(Policy::load(&args.policy)?);
    crate::kernel::check_privileges()?;
    signals::install();
    let listener = bind(&args.socket)?;
    eprintln!("wasmtap daemon: listening on {}", args.socket.display());
    let tenants = Arc::new(Tenants::default());
    let mut workers = Vec::new();
    while !signals::stop_requested() {
        match listener.accept() {
            Ok((stream, _)) => {
                let policy = Arc::clone(&policy);
                let tenants = Arc::clone(&tenants);
                workers.push(std::thread::spawn(move || {
                    if let Err(error) = serve_connection(stream, &policy, &tenants) {
                        eprintln!("wasmtap daemon: connection: {error:#}");
                    }
                }));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => eprintln!("wasmtap daemon: accept: {e}"),
        }
        workers.retain(|w| !w.is_finished());
    }
    // Every run sees the same stop flag: each runs its `end` probes and
    // sends its exit message before its thread ends.
    for worker in workers {
        let _ = worker.join();
    }
    let _ = std::fs::remove_file(&args.socket);
    eprintln!("wasmtap daemon: stopped");
    Ok(())
}

fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if path.exists() {
        // A live daemon answers; a stale socket from a crash does not.
        if UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another daemon is listening on {}\n  hint: stop it, or pick another --socket",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove stale socket {}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .with_context(|| format!("cannot open {} to all users", path.display()))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn serve_connection(stream: UnixStream, policy: &Policy, tenants: &Tenants) -> anyhow::Result<()> {
    stream.set_nonblocking(false)?;
    let (uid, gid) = peer_credentials(&stream)?;
    let peer = Peer::from_ids(uid, gid);
    let mut reader = BufReader::new(stream.try_clone()?);
    let writer = Arc::new(Mutex::new(stream));
    let first: Option<ClientMessage> = protocol::receive(&mut reader)?;
    match first {
        Some(ClientMessage::Run(request)) => {
            let tenant = policy.resolve(&peer);
            run_tenant(request, &peer, &tenant, reader, &writer, tenants)
        }
        Some(ClientMessage::Stats) => {
            let running = tenants.running.lock().unwrap_or_else(|e| e.into_inner());
            let visible = running
                .iter()
                .filter(|t| uid == 0 || t.uid == uid)
                .map(|t| {
                    serde_json::json!({
                        "id": t.id,
                        "uid": t.uid,
                        "user": t.user,
                        "script": t.script,
                        "counters": t.counters.to_json(),
                    })
                })
                .collect();
            drop(running);
            send(&writer, &ServerMessage::Stats { tenants: visible });
            Ok(())
        }
        Some(ClientMessage::Stop) | None => Ok(()),
    }
}

fn run_tenant(
    request: RunRequest,
    peer: &Peer,
    tenant: &TenantPolicy,
    mut reader: BufReader<UnixStream>,
    writer: &Arc<Mutex<UnixStream>>,
    tenants: &Tenants,
) -> anyhow::Result<()> {
    let counters = Arc::new(RunCounters::default());
    let errors = DiagnosticSink::to(Box::new(Framed::err(writer)));
    let compiled = check_target(&request, peer, tenant).and_then(|()| compile(&request, tenant));
    let (bundle, plugin_probes) = match compiled {
        Ok(compiled) => compiled,
        Err(message) => {
            errors.line(message.trim_end());
            send(
                writer,
                &ServerMessage::Exit {
                    code: 1,
                    stats: counters.to_json(),
                },
            );
            return Ok(());
        }
    };
    let id = tenants.next_id.fetch_add(1, Ordering::Relaxed);
    tenants
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Tenant {
            id,
            uid: peer.uid,
            user: peer.user.clone().unwrap_or_else(|| peer.uid.to_string()),
            script: request.file_name.clone(),
            counters: Arc::clone(&counters),
        });

    // The client's `stop`, or its disconnect, ends the run like Ctrl-C.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            loop {
                match protocol::receive::<ClientMessage>(&mut reader) {
                    Ok(Some(ClientMessage::Stop)) | Ok(None) | Err(_) => break,
                    Ok(Some(_)) => {}
                }
            }
            stop.store(true, Ordering::SeqCst);
        })
    };
    let options = SessionOptions {
        file_name: request.file_name.clone(),
        source: request.source.clone(),
        verbose: request.verbose,
        handler_budget: tenant.limits.handler_budget,
        memory_limit: tenant.limits.memory_bytes,
        diagnostics: errors.clone(),
        target: match request.target_pid {
            Some(pid) if request.held_target => {
                Some(Arc::new(ClientGate::new(pid, writer)) as Arc<dyn crate::target::Gate>)
            }
            _ => None,
        },
        target_pid: request.target_pid,
        kernel_symbols: tenant.restrictions.denies_builtin("symname").is_none(),
        stop: Some(Arc::clone(&stop)),
        counters: Arc::clone(&counters),
        ..SessionOptions::default()
    };
    let output = Framed::out(writer, tenant.limits.output_bytes_per_s);
    let result = match &plugin_probes {
        Some(probes) => session::run_plugin(&bundle, probes, Box::new(output), &options),
        None => session::run(&bundle, Box::new(output), &options),
    };
    let code = match result {
        Ok(outcome) => outcome.exit_code,
        Err(error) => {
            errors.line(&format!("ERROR: {error}"));
            1
        }
    };
    tenants
        .running
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|t| t.id != id);
    send(
        writer,
        &ServerMessage::Exit {
            code,
            stats: counters.to_json(),
        },
    );
    // Closing our side ends the watcher's read if the client lingers.
    if let Ok(stream) = writer.lock() {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
    let _ = watcher.join();
    Ok(())
}

/// Refuses a target the tenant may not trace: a held `-c` command must be
/// the peer's own process (its client started it), and so must a `-x`
/// process of a tenant scoped to its own processes.
fn check_target(request: &RunRequest, peer: &Peer, tenant: &TenantPolicy) -> Result<(), String> {
    let Some(pid) = request.target_pid else {
        return Ok(());
    };
    let owner = if request.held_target {
        Some(peer.uid)
    } else {
        tenant.scope_uid
    };
    match owner {
        Some(uid) => check_owner(pid, uid).map_err(|e| format!("ERROR: {e}")),
        None => Ok(()),
    }
}

/// The kernel probes of a plugin, which the host resolved itself; `None`
/// for a script.
type PluginProbes = Option<Vec<crate::kernel::KernelProbe>>;

/// Compiles a tenant's script (or checks its plugin) under its policy, or
/// renders why not.
fn compile(
    request: &RunRequest,
    tenant: &TenantPolicy,
) -> Result<(wasmtap_compiler::Bundle, PluginProbes), String> {
    if let Some(wasm) = &request.plugin {
        let plugin = crate::plugin::load_for_tenant(
            wasm.clone(),
            &request.file_name,
            tenant,
            request.target_pid,
            request.target_executable.as_deref(),
        )
        .map_err(|e| match e.downcast_ref::<crate::plugin::PluginError>() {
            // Rendered diagnostics carry their own `Error:` lines.
            Some(crate::plugin::PluginError::Probes { .. }) => e.to_string(),
            _ => format!("ERROR: {e}"),
        })?;
        return Ok((plugin.bundle, Some(plugin.kernel_probes)));
    }
    let catalog = LiveCatalog::new()
        .map_err(|e| format!("ERROR: {e}"))?
        .with_target(request.target_pid)
        .with_target_command(request.target_executable.as_deref());
    let options = CompileOptions {
        args: request.args.clone(),
        target_pid: request.target_pid,
        capture_string_bytes: request.string_capture.unwrap_or(256).clamp(1, 4096),
        restrictions: Some(tenant.restrictions.clone()),
        ..CompileOptions::default()
    };
    let mut bundle =
        wasmtap_compiler::compile(&request.source, &catalog, &options).map_err(|errors| {
            let mut text = diagnostics::render(&errors, &request.file_name, &request.source);
            let pass = if errors.len() == 1 { "error" } else { "errors" };
            text.push_str(&format!("{} {pass}; nothing was attached.", errors.len()));
            text
        })?;
    tenant
        .scope_plans(&mut bundle)
        .map_err(|e| format!("ERROR: {e}"))?;
    Ok((bundle, None))
}

fn send(writer: &Mutex<UnixStream>, message: &ServerMessage) {
    let mut stream = writer.lock().unwrap_or_else(|e| e.into_inner());
    // A vanished client is noticed by the watcher; nothing to do here.
    let _ = protocol::send(&mut *stream, message);
}

/// Turns writes into `out` or `err` messages.
struct Framed {
    stream: Arc<Mutex<UnixStream>>,
    is_err: bool,
}

impl Framed {
    /// Script output, limited to `bytes_per_s`.
    fn out(stream: &Arc<Mutex<UnixStream>>, bytes_per_s: u64) -> RateLimited<Self> {
        RateLimited::new(
            Self {
                stream: Arc::clone(stream),
                is_err: false,
            },
            bytes_per_s,
        )
    }

    fn err(stream: &Arc<Mutex<UnixStream>>) -> Self {
        Self {
            stream: Arc::clone(stream),
            is_err: true,
        }
    }
}

impl Write for Framed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let data = String::from_utf8_lossy(buf).into_owned();
        let message = if self.is_err {
            ServerMessage::Err { data }
        } else {
            ServerMessage::Out { data }
        };
        let mut stream = self.stream.lock().unwrap_or_else(|e| e.into_inner());
        protocol::send(&mut *stream, &message)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The uid and gid of the process at the other end, as the kernel saw them
/// when it connected.
fn peer_credentials(stream: &UnixStream) -> io::Result<(u32, u32)> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for the size passed; the fd is a
    // live Unix socket.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((cred.uid, cred.gid))
}

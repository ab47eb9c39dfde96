//! The host's side of the kernel: load the generic eBPF programs, place
//! capture plans in their maps, attach, and drain the records they emit.
//!
//! The programs in `probes/ebpf` never change with the script; everything a
//! script needs from the kernel is data written here (see
//! [`wasmtap_abi`]). A run goes:
//!
//! 1. [`check_privileges`] (and [`ensure_tracefs`] before any tracepoint
//!    attach) so failures name their cause;
//! 2. [`KernelSession::load`]: verify the programs, create the maps, tell the
//!    programs the host's own process id so the host never traces itself;
//! 3. [`KernelSession::install`]: write the plans and the syscall routes;
//! 4. [`KernelSession::attach`]: attach the programs that have probes;
//! 5. loop: [`KernelSession::wait`] with a timeout (the programs wake the
//!    reader only when `wakeup_bytes` are waiting, so the run loop drains on
//!    a timer as well), then [`KernelSession::drain`];
//! 6. drop the session: links are detached and programs and maps unloaded.

mod error;
mod probes;
mod system;

use std::{io, os::fd::AsRawFd, time::Duration};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, Map, MapData, PerCpuArray, RingBuf},
    programs::{ProgramError, RawTracePoint},
};
use wasmtap_abi::{Config, Plan, SyscallRoute, names};

use self::probes::{RouteTable, plan_routes};
pub use self::{
    error::KernelError,
    probes::{Attach, KernelProbe},
    system::{check_privileges, ensure_tracefs},
};

/// The eBPF object built from `probes/ebpf` by `build.rs`.
static PROBES_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/wasmtap-probes"));

/// Bytes the kernel adds in front of every ring buffer record.
const RINGBUF_RECORD_HEADER: usize = 8;

/// How the kernel side is sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOptions {
    /// Size of the ring buffer all records go through: a power of two and a
    /// multiple of the page size. Larger absorbs longer bursts between
    /// drains; records that do not fit are counted in [`KernelSession::drops`].
    pub ring_bytes: u32,
    /// The programs wake a reader blocked in [`KernelSession::wait`] once
    /// this many bytes wait in the ring buffer; below it they submit without
    /// a wakeup (a wakeup per record slowed traced programs 5.7x), so the
    /// reader must also drain on a timer. At most `ring_bytes`; 0 wakes on
    /// every record.
    pub wakeup_bytes: u32,
}

impl Default for KernelOptions {
    /// An 8 MiB ring buffer that wakes the reader when a quarter full.
    fn default() -> Self {
        Self {
            ring_bytes: 8 << 20,
            wakeup_bytes: 2 << 20,
        }
    }
}

impl KernelOptions {
    fn validate(&self) -> Result<(), KernelError> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u32;
        let reason = if !self.ring_bytes.is_power_of_two() || self.ring_bytes < page {
            format!(
                "ring_bytes {} must be a power of two of at least the page size ({page})",
                self.ring_bytes
            )
        } else if self.wakeup_bytes > self.ring_bytes {
            format!(
                "wakeup_bytes {} exceeds ring_bytes {}: the reader would never be woken",
                self.wakeup_bytes, self.ring_bytes
            )
        } else {
            return Ok(());
        };
        Err(KernelError::InvalidOptions { reason })
    }
}

/// A loaded program as the kernel reports it: for diagnostics and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedProgram {
    /// The program's name in the object (see [`names`]).
    pub name: &'static str,
    /// The kernel's id for it (as listed by `bpftool prog`).
    pub id: u32,
    /// Instructions the verifier processed, where the kernel reports it.
    pub verified_instructions: Option<u32>,
    /// Whether this session attached it.
    pub attached: bool,
}

/// The programs of the object and which route table feeds each.
const PROGRAMS: [(&str, &str); 2] = [
    (names::PROG_SYS_ENTER, names::SYSCALL_ENTER_ROUTES),
    (names::PROG_SYS_EXIT, names::SYSCALL_EXIT_ROUTES),
];

/// The loaded eBPF object and the state the host wrote into it.
///
/// Owning the session owns the kernel objects: dropping it detaches every
/// link and closes every program and map, so nothing stays behind when the
/// host exits or a run ends.
pub struct KernelSession {
    ebpf: Ebpf,
    events: RingBuf<MapData>,
    ring_bytes: u32,
    /// Probe ids whose plans are written.
    installed: Vec<u32>,
    /// Syscall numbers with a route written, per program (enter, exit).
    routed: [Vec<u32>; 2],
    /// Whether a probe needs each program (enter, exit).
    wanted: [bool; 2],
    /// Whether each program is attached (enter, exit).
    attached: [bool; 2],
}

impl KernelSession {
    /// Loads and verifies the programs, creates the maps and writes the
    /// run-wide [`Config`] (this process's id, so the host never traces
    /// itself, and the wakeup threshold). Nothing is attached yet.
    pub fn load(opts: &KernelOptions) -> Result<Self, KernelError> {
        opts.validate()?;
        check_privileges()?;
        let mut ebpf = EbpfLoader::new()
            .map_max_entries(names::EVENTS, opts.ring_bytes)
            .load(PROBES_OBJECT)
            .map_err(|source| KernelError::LoadObject { source })?;
        for (program, _) in PROGRAMS {
            raw_tracepoint(&mut ebpf, program)?
                .load()
                .map_err(|source| program_error(program, "load", source))?;
        }
        let config = Config {
            host_tgid: std::process::id(),
            wakeup_bytes: opts.wakeup_bytes,
            task: Default::default(),
        };
        let mut map = Array::<_, Config>::try_from(map_mut(&mut ebpf, names::CONFIG)?)
            .map_err(|source| map_error(names::CONFIG, "open", source))?;
        map.set(0, config, 0)
            .map_err(|source| map_error(names::CONFIG, "write", source))?;
        // Array maps start zeroed, and a zeroed route names probe 0 in every
        // slot: mark every syscall unrouted before anything attaches.
        for (_, map_name) in PROGRAMS {
            let mut routes = Array::<_, SyscallRoute>::try_from(map_mut(&mut ebpf, map_name)?)
                .map_err(|source| map_error(map_name, "open", source))?;
            for nr in 0..wasmtap_abi::MAX_SYSCALLS {
                routes
                    .set(nr, SyscallRoute::default(), 0)
                    .map_err(|source| map_error(map_name, "clear", source))?;
            }
        }
        let events = ebpf
            .take_map(names::EVENTS)
            .ok_or(KernelError::MissingItem {
                kind: "map",
                name: names::EVENTS,
            })?;
        let events =
            RingBuf::try_from(events).map_err(|source| map_error(names::EVENTS, "open", source))?;
        Ok(Self {
            ebpf,
            events,
            ring_bytes: opts.ring_bytes,
            installed: Vec::new(),
            routed: [Vec::new(), Vec::new()],
            wanted: [false; 2],
            attached: [false; 2],
        })
    }

    /// Replaces the installed probes with `probes`: writes their plans and
    /// the syscall routes, and clears what an earlier call installed.
    ///
    /// Every probe is validated first (ids, plan bounds, at most
    /// [`wasmtap_abi::PROBES_PER_SYSCALL`] probes per syscall), so an error
    /// leaves the kernel state untouched. Safe while attached: plans are
    /// written before the routes that lead to them and routes cleared before
    /// their plans, so a running program never follows a route to a stale
    /// plan. Call [`Self::attach`] afterwards if a new direction (entry or
    /// exit) gained probes.
    pub fn install(&mut self, probes: &[KernelProbe]) -> Result<(), KernelError> {
        let routes = plan_routes(probes)?;

        let mut plans = Array::<_, Plan>::try_from(map_mut(&mut self.ebpf, names::PLANS)?)
            .map_err(|source| map_error(names::PLANS, "open", source))?;
        for probe in probes {
            plans
                .set(probe.id, probe.plan, 0)
                .map_err(|source| map_error(names::PLANS, "write", source))?;
        }

        for (index, ((_, map_name), table)) in PROGRAMS
            .iter()
            .zip([&routes.enter, &routes.exit])
            .enumerate()
        {
            write_routes(&mut self.ebpf, map_name, table, &self.routed[index])?;
            self.routed[index] = table.keys().copied().collect();
            self.wanted[index] = !table.is_empty();
        }

        let mut plans = Array::<_, Plan>::try_from(map_mut(&mut self.ebpf, names::PLANS)?)
            .map_err(|source| map_error(names::PLANS, "open", source))?;
        for &old in &self.installed {
            if !probes.iter().any(|p| p.id == old) {
                plans
                    .set(old, Plan::default(), 0)
                    .map_err(|source| map_error(names::PLANS, "clear", source))?;
            }
        }
        self.installed = probes.iter().map(|p| p.id).collect();
        Ok(())
    }

    /// Attaches the programs that installed probes need and are not attached
    /// yet. Raw tracepoints: no tracefs needed, about a millisecond each to
    /// detach.
    pub fn attach(&mut self) -> Result<(), KernelError> {
        for (index, (program, _)) in PROGRAMS.iter().enumerate() {
            if !self.wanted[index] || self.attached[index] {
                continue;
            }
            raw_tracepoint(&mut self.ebpf, program)?
                .attach(program)
                .map_err(|source| program_error(program, "attach", source))?;
            self.attached[index] = true;
        }
        Ok(())
    }

    /// Blocks until the programs wake the reader (the ring buffer holds
    /// `wakeup_bytes`) or `timeout` passes. Returns whether records are
    /// known to be waiting; records below the threshold do not wake, so
    /// drain after a timeout too. An interrupted wait returns `Ok(false)`.
    pub fn wait(&self, timeout: Duration) -> Result<bool, KernelError> {
        let mut fd = libc::pollfd {
            fd: self.events.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // ppoll takes a timespec: sub-millisecond drain intervals are kept
        // rather than rounded down to a busy poll(0).
        let timeout = libc::timespec {
            tv_sec: timeout.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
            tv_nsec: timeout.subsec_nanos().into(),
        };
        // SAFETY: `fd` and `timeout` are valid for the duration of the call;
        // a null sigmask keeps the current one.
        let rc = unsafe { libc::ppoll(&mut fd, 1, &timeout, std::ptr::null()) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(false);
            }
            return Err(KernelError::Poll { source: err });
        }
        Ok(rc > 0)
    }

    /// Hands each waiting record (header included, see
    /// [`wasmtap_abi::RecordHeader`]) to `f` and returns how many it
    /// handed over. Stops when the ring buffer is empty or after about one
    /// ring buffer's worth of bytes, so a producer faster than the reader
    /// cannot keep one call running forever.
    pub fn drain(&mut self, f: &mut dyn FnMut(&[u8])) -> usize {
        self.drain_some(&mut |record| {
            f(record);
            true
        })
    }

    /// Like [`Self::drain`], but `f` decides after each record whether to go
    /// on: returning `false` stops the drain (that record is consumed). The
    /// run loop uses it to fill a guest batch of bounded size and leave the
    /// rest waiting in the ring buffer.
    pub fn drain_some(&mut self, f: &mut dyn FnMut(&[u8]) -> bool) -> usize {
        let budget = self.ring_bytes as usize;
        let mut bytes = 0usize;
        let mut count = 0usize;
        while bytes < budget {
            let Some(record) = self.events.next() else {
                break;
            };
            let more = f(&record);
            bytes += record.len() + RINGBUF_RECORD_HEADER;
            count += 1;
            if !more {
                break;
            }
        }
        count
    }

    /// Records lost because the ring buffer was full, per installed probe
    /// id, summed over CPUs; only probes that lost some are listed.
    pub fn drops(&self) -> Result<Vec<(u32, u64)>, KernelError> {
        let map = self
            .ebpf
            .map(names::DROPS)
            .ok_or(KernelError::MissingItem {
                kind: "map",
                name: names::DROPS,
            })?;
        let drops = PerCpuArray::<_, u64>::try_from(map)
            .map_err(|source| map_error(names::DROPS, "open", source))?;
        let mut out = Vec::new();
        for &id in &self.installed {
            let values = drops
                .get(&id, 0)
                .map_err(|source| map_error(names::DROPS, "read", source))?;
            let total: u64 = values.iter().copied().fold(0, u64::wrapping_add);
            if total != 0 {
                out.push((id, total));
            }
        }
        Ok(out)
    }

    /// The session's programs as the kernel sees them (ids, verifier
    /// instruction counts, attach state): for diagnostics, `--verbose`
    /// output and tests.
    pub fn programs(&self) -> Result<Vec<LoadedProgram>, KernelError> {
        let mut out = Vec::new();
        for (index, (name, _)) in PROGRAMS.iter().enumerate() {
            let program: &RawTracePoint = self
                .ebpf
                .program(name)
                .ok_or(KernelError::MissingItem {
                    kind: "program",
                    name,
                })?
                .try_into()
                .map_err(|source| program_error(name, "inspect", source))?;
            let info = program
                .info()
                .map_err(|source| program_error(name, "inspect", source))?;
            out.push(LoadedProgram {
                name,
                id: info.id(),
                verified_instructions: info.verified_instruction_count(),
                attached: self.attached[index],
            });
        }
        Ok(out)
    }
}

/// Writes `table` into route map `map_name`, resetting the syscalls in
/// `previous` that `table` no longer routes.
fn write_routes(
    ebpf: &mut Ebpf,
    map_name: &'static str,
    table: &RouteTable,
    previous: &[u32],
) -> Result<(), KernelError> {
    let mut map = Array::<_, SyscallRoute>::try_from(map_mut(ebpf, map_name)?)
        .map_err(|source| map_error(map_name, "open", source))?;
    for (&nr, route) in table {
        map.set(nr, route, 0)
            .map_err(|source| map_error(map_name, "write", source))?;
    }
    for &nr in previous {
        if !table.contains_key(&nr) {
            map.set(nr, SyscallRoute::default(), 0)
                .map_err(|source| map_error(map_name, "clear", source))?;
        }
    }
    Ok(())
}

fn map_mut<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut Map, KernelError> {
    ebpf.map_mut(name)
        .ok_or(KernelError::MissingItem { kind: "map", name })
}

fn raw_tracepoint<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut RawTracePoint, KernelError> {
    ebpf.program_mut(name)
        .ok_or(KernelError::MissingItem {
            kind: "program",
            name,
        })?
        .try_into()
        .map_err(|source| program_error(name, "inspect", source))
}

fn map_error(map: &'static str, action: &'static str, source: aya::maps::MapError) -> KernelError {
    KernelError::Map {
        map,
        action,
        source,
    }
}

/// Turns a verifier rejection into [`KernelError::Verifier`] with its log.
fn program_error(program: &'static str, action: &'static str, source: ProgramError) -> KernelError {
    match source {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => KernelError::Verifier {
            program,
            log: verifier_log.to_string(),
            source: io_error,
        },
        source => KernelError::Program {
            program,
            action,
            source,
        },
    }
}

//! The host's side of the kernel: load the generic eBPF programs, place
//! capture plans in their maps, attach, and drain the records they emit.
//!
//! The programs in `probes/ebpf` never change with the script; everything a
//! script needs from the kernel is data written here (see
//! [`wasmtap_abi`]). A run goes:
//!
//! 1. [`check_privileges`] so failures name their cause;
//! 2. [`KernelSession::load`]: load the object, create the maps, tell the
//!    programs the host's own process id so the host never traces itself;
//! 3. [`KernelSession::install`]: write the plans and the routes that lead to
//!    them (syscall numbers, tracepoint event ids read from tracefs, which
//!    it mounts if needed, and sampling periods), and the kernel struct
//!    offsets from BTF when a plan walks tasks;
//! 4. [`KernelSession::attach`]: verify the programs the probes need and
//!    attach them: raw tracepoints for syscalls, one cookie-carrying link per
//!    tracepoint, one uprobe_multi link per (binary, process, entry or
//!    return) with each probe's id as the cookie of its offset (one plain
//!    uprobe link per probe where the kernel lacks uprobe_multi), one perf
//!    event per (sampling period, online CPU); links no installed probe
//!    needs any more are detached;
//! 5. loop: [`KernelSession::wait`] with a timeout (the programs wake the
//!    reader only when `wakeup_bytes` are waiting, so the run loop drains on
//!    a timer as well), then [`KernelSession::drain`];
//! 6. drop the session: links are detached and programs and maps unloaded.
//!
//! # Costs measured here (Linux 6.18, 2 vCPUs)
//! - Object load ~70-120 ms; each program verifies in ~60-90 ms (~25k
//!   verifier steps) when first attached.
//! - Each perf-event link (a plain uprobe, a tracepoint) takes ~100 ms to
//!   detach: the kernel waits for RCU grace periods under a global mutex
//!   (`event_mutex`) per perf event, so detaching in parallel does not help
//!   (600 plain uprobes: `wasmtap` took 66 s to exit after SIGINT). A
//!   uprobe_multi link carries every uprobe of one binary, process and kind
//!   and detaches in one grace period: with it the same 600-function
//!   script exits 0.02 s after SIGINT and is attached 0.06-0.10 s after
//!   start (0.30 s with plain links; `scripts/bench.py --only=many_uprobes`),
//!   and 500 uprobes attach at ~70 µs each. Raw tracepoints and cpu-clock events
//!   detach in about a millisecond.

mod btf;
mod cookie_link;
mod error;
mod probes;
mod system;

use std::{
    collections::BTreeMap,
    io,
    num::NonZeroU32,
    os::fd::{AsFd as _, AsRawFd},
    path::{Path, PathBuf},
    time::Duration,
};

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap, Map, MapData, PerCpuArray, RingBuf},
    programs::{
        PerfEvent, Program, ProgramError, RawTracePoint, TracePoint, UProbe,
        perf_event::{
            HardwareEvent, PerfEventConfig, PerfEventLinkId, PerfEventScope, SamplePolicy,
            SoftwareEvent,
        },
        uprobe::{UProbeAttachLocation, UProbeAttachPoint, UProbeLinkId, UProbeScope},
    },
    sys::{UProbeMultiFeature, is_uprobe_multi_supported},
};
use wasmtap_abi::{Config, OpCode, Plan, ProbeRoute, TaskOffsets, names};

use self::cookie_link::CookieLink;
use self::probes::{RouteTable, TracepointName, UprobeTarget, plan_routes};
pub use self::{
    error::KernelError,
    probes::{Attach, KernelProbe, PerfCounter, UprobeLocation},
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

/// The syscall programs and the route array that feeds each.
const PROGRAMS: [(&str, &str); 2] = [
    (names::PROG_SYS_ENTER, names::SYSCALL_ENTER_ROUTES),
    (names::PROG_SYS_EXIT, names::SYSCALL_EXIT_ROUTES),
];

/// The ops that read kernel structs at offsets from BTF ([`Config::task`]).
const TASK_OPS: [OpCode; 5] = [
    OpCode::TaskChain,
    OpCode::ParentTgid,
    OpCode::EuidEgid,
    OpCode::Cmdline,
    OpCode::ExitCode,
];

/// Every program of the object, in the order [`KernelSession::programs`]
/// lists them.
const ALL_PROGRAMS: [&str; 8] = [
    names::PROG_SYS_ENTER,
    names::PROG_SYS_EXIT,
    names::PROG_TRACEPOINT,
    names::PROG_UPROBE,
    names::PROG_URETPROBE,
    names::PROG_UPROBE_MULTI,
    names::PROG_URETPROBE_MULTI,
    names::PROG_PERF,
];

/// One attached uprobe link and the probes it fires.
struct UprobeLink {
    /// The program it runs: a uprobe_multi program when it carries several
    /// probes of one binary, process and kind, a plain one otherwise.
    program: &'static str,
    /// Its probes by id (the cookie of their offsets) and where each sits.
    probes: BTreeMap<u32, UprobeTarget>,
    link: UProbeLinkId,
}

/// Which uprobe_multi links the kernel creates, probed once per session.
#[derive(Clone, Copy, Debug)]
struct UprobeMultiSupport {
    /// For probes in every process (kernel 6.6+).
    all_processes: bool,
    /// For probes in one process: a pid must select the whole process, as
    /// a plain uprobe's does, which only kernels with the later PID filter
    /// fix do (`UProbeMultiFeature::ProcessScopedPidFilter`).
    one_process: bool,
}

impl UprobeMultiSupport {
    /// Asks the kernel. A probe that cannot decide counts as unsupported:
    /// plain links always work, they only detach slower.
    fn detect() -> Self {
        let supported = |feature| is_uprobe_multi_supported(feature).unwrap_or(false);
        Self {
            all_processes: supported(UProbeMultiFeature::LinkCreation),
            one_process: supported(UProbeMultiFeature::ProcessScopedPidFilter),
        }
    }
}

/// The loaded eBPF object and the state the host wrote into it.
///
/// Owning the session owns the kernel objects: dropping it detaches every
/// link and closes every program and map, so nothing stays behind when the
/// host exits or a run ends.
pub struct KernelSession {
    ebpf: Ebpf,
    events: RingBuf<MapData>,
    ring_bytes: u32,
    /// The config written to the kernel.
    config: Config,
    /// Probe ids whose plans are written.
    installed: Vec<u32>,
    /// Syscall numbers with a route written, per program (enter, exit).
    routed: [Vec<u32>; 2],
    /// Whether a probe needs each program (enter, exit).
    wanted: [bool; 2],
    /// Whether each program is attached (enter, exit).
    attached: [bool; 2],
    /// Tracepoints with a route written, and their event ids.
    tracepoints: BTreeMap<TracepointName, u32>,
    /// Attached tracepoint links (the event id as cookie).
    tracepoint_links: BTreeMap<TracepointName, CookieLink>,
    /// Where each installed uprobe probe wants to be.
    uprobes: BTreeMap<u32, UprobeTarget>,
    /// Attached uprobe links.
    uprobe_links: Vec<UprobeLink>,
    /// What the kernel allows of uprobe_multi, once a uprobe first attaches.
    uprobe_multi: Option<UprobeMultiSupport>,
    /// Sampling periods with a route written, and their counters.
    periods: BTreeMap<u64, PerfCounter>,
    /// Attached perf links, one per online CPU, per sampling period.
    perf_links: BTreeMap<u64, (PerfCounter, Vec<PerfEventLinkId>)>,
}

impl KernelSession {
    /// Loads the eBPF object, creates the maps and writes the run-wide
    /// [`Config`] (this process's id, so the host never traces itself, and
    /// the wakeup threshold; [`Self::install`] adds the kernel struct
    /// offsets from BTF when a plan needs them). Nothing is
    /// attached yet, and programs are verified only when [`Self::attach`]
    /// first needs them: each takes the verifier tens of milliseconds, and a
    /// script rarely needs more than two of the six.
    pub fn load(opts: &KernelOptions) -> Result<Self, KernelError> {
        opts.validate()?;
        check_privileges()?;
        let mut ebpf = EbpfLoader::new()
            .map_max_entries(names::EVENTS, opts.ring_bytes)
            .load(PROBES_OBJECT)
            .map_err(|source| KernelError::LoadObject { source })?;
        // Programs are verified when first needed (see `ensure_loaded`);
        // check now that the object has them all.
        for name in ALL_PROGRAMS {
            ebpf.program(name).ok_or(KernelError::MissingItem {
                kind: "program",
                name,
            })?;
        }
        let config = Config {
            host_tgid: std::process::id(),
            wakeup_bytes: opts.wakeup_bytes,
            // Filled from BTF by `install` when a plan first needs it.
            task: Default::default(),
        };
        let mut map = Array::<_, Config>::try_from(map_mut(&mut ebpf, names::CONFIG)?)
            .map_err(|source| map_error(names::CONFIG, "open", source))?;
        map.set(0, &config, 0)
            .map_err(|source| map_error(names::CONFIG, "write", source))?;
        // Array maps start zeroed, and a zeroed route names probe 0 in every
        // slot: mark every syscall unrouted before anything attaches.
        for (_, map_name) in PROGRAMS {
            let mut routes = Array::<_, ProbeRoute>::try_from(map_mut(&mut ebpf, map_name)?)
                .map_err(|source| map_error(map_name, "open", source))?;
            for nr in 0..wasmtap_abi::MAX_SYSCALLS {
                routes
                    .set(nr, &ProbeRoute::default(), 0)
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
            config,
            installed: Vec::new(),
            routed: [Vec::new(), Vec::new()],
            wanted: [false; 2],
            attached: [false; 2],
            tracepoints: BTreeMap::new(),
            tracepoint_links: BTreeMap::new(),
            uprobes: BTreeMap::new(),
            uprobe_links: Vec::new(),
            uprobe_multi: None,
            periods: BTreeMap::new(),
            perf_links: BTreeMap::new(),
        })
    }

    /// Replaces the installed probes with `probes`: writes their plans and
    /// routes, and clears what an earlier call installed.
    ///
    /// Every probe is validated first (ids, plan bounds, at most
    /// [`wasmtap_abi::PROBES_PER_ROUTE`] probes per event, tracepoints that
    /// exist, kernel BTF readable where task ops need it), so an error
    /// leaves the kernel state untouched. Tracepoint probes mount tracefs if
    /// needed ([`ensure_tracefs`]) to find event ids. Safe while attached:
    /// plans are written before the routes that lead to them and routes
    /// cleared before their plans, so a running program never follows a
    /// route to a stale plan. Call [`Self::attach`] afterwards to attach (and
    /// detach) what the new probes need.
    pub fn install(&mut self, probes: &[KernelProbe]) -> Result<(), KernelError> {
        let routes = plan_routes(probes)?;
        let tracepoint_ids = if routes.tracepoints.is_empty() {
            BTreeMap::new()
        } else {
            let tracefs = ensure_tracefs()?;
            routes
                .tracepoints
                .keys()
                .map(|name| Ok((name.clone(), tracepoint_id(&tracefs, name)?)))
                .collect::<Result<BTreeMap<_, _>, KernelError>>()?
        };
        let needs_task = probes.iter().any(|p| {
            p.plan.ops[..p.plan.n_ops as usize]
                .iter()
                .any(|op| TASK_OPS.iter().any(|code| *code as u8 == op.code))
        });
        if needs_task && self.config.task == TaskOffsets::default() {
            // Parsing the kernel's BTF takes ~35 ms: only when a plan walks
            // kernel structs.
            self.config.task = btf::running_kernel_task_offsets()?;
            let mut map = Array::<_, Config>::try_from(map_mut(&mut self.ebpf, names::CONFIG)?)
                .map_err(|source| map_error(names::CONFIG, "open", source))?;
            map.set(0, &self.config, 0)
                .map_err(|source| map_error(names::CONFIG, "write", source))?;
        }

        let mut plans = Array::<_, Plan>::try_from(map_mut(&mut self.ebpf, names::PLANS)?)
            .map_err(|source| map_error(names::PLANS, "open", source))?;
        for probe in probes {
            plans
                .set(probe.id, &probe.plan, 0)
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

        let by_id: BTreeMap<u32, ProbeRoute> = routes
            .tracepoints
            .iter()
            .map(|(name, route)| (tracepoint_ids[name], *route))
            .collect();
        let stale: Vec<u32> = self.tracepoints.values().copied().collect();
        write_hash_routes(&mut self.ebpf, names::TRACEPOINT_ROUTES, &by_id, &stale)?;
        self.tracepoints = tracepoint_ids;

        let by_period: BTreeMap<u64, ProbeRoute> = routes
            .perf
            .iter()
            .map(|(period, (_, route))| (*period, *route))
            .collect();
        let stale: Vec<u64> = self.periods.keys().copied().collect();
        write_hash_routes(&mut self.ebpf, names::PERF_ROUTES, &by_period, &stale)?;
        self.periods = routes
            .perf
            .iter()
            .map(|(period, (counter, _))| (*period, *counter))
            .collect();

        self.uprobes = routes.uprobes;

        let mut plans = Array::<_, Plan>::try_from(map_mut(&mut self.ebpf, names::PLANS)?)
            .map_err(|source| map_error(names::PLANS, "open", source))?;
        for &old in &self.installed {
            if !probes.iter().any(|p| p.id == old) {
                plans
                    .set(old, &Plan::default(), 0)
                    .map_err(|source| map_error(names::PLANS, "clear", source))?;
            }
        }
        self.installed = probes.iter().map(|p| p.id).collect();
        Ok(())
    }

    /// Brings the attached links in line with the installed probes:
    /// attaches what they need and is not attached yet, and detaches what no
    /// installed probe needs any more (the syscall programs stay attached:
    /// with no routes they return after one lookup). Raw tracepoints need no
    /// tracefs and detach in about a millisecond; classic tracepoints and
    /// perf events take tens of milliseconds to detach (RCU grace periods).
    ///
    /// On error, what was attached so far stays attached and tracked, and
    /// is detached with the session.
    pub fn attach(&mut self) -> Result<(), KernelError> {
        for (index, (program, _)) in PROGRAMS.iter().enumerate() {
            if !self.wanted[index] || self.attached[index] {
                continue;
            }
            ensure_loaded(&mut self.ebpf, program)?;
            raw_tracepoint(&mut self.ebpf, program)?
                .attach(program)
                .map_err(|source| program_error(program, "attach", source))?;
            self.attached[index] = true;
        }
        self.attach_tracepoints()?;
        self.attach_uprobes()?;
        self.attach_perf()
    }

    fn attach_tracepoints(&mut self) -> Result<(), KernelError> {
        let name = names::PROG_TRACEPOINT;
        // Dropping a link detaches it.
        self.tracepoint_links
            .retain(|tp, _| self.tracepoints.contains_key(tp));
        if self.tracepoints.is_empty() {
            return Ok(());
        }
        ensure_loaded(&mut self.ebpf, name)?;
        let program: &mut TracePoint = program_mut(&mut self.ebpf, name)?;
        let fd = program
            .fd()
            .map_err(|source| program_error(name, "attach", source))?;
        for (tp, &id) in &self.tracepoints {
            if self.tracepoint_links.contains_key(tp) {
                continue;
            }
            let (system, event) = tp;
            let link = cookie_link::attach_tracepoint(fd.as_fd(), id.into(), id.into()).map_err(
                |source| KernelError::AttachTarget {
                    program: name,
                    target: format!("tracepoint {system}:{event}"),
                    source: ProgramError::SyscallError(aya::sys::SyscallError {
                        call: "perf_event_open/BPF_LINK_CREATE",
                        io_error: source,
                    }),
                },
            )?;
            self.tracepoint_links.insert(tp.clone(), link);
        }
        Ok(())
    }

    /// Attaches the installed uprobe probes that no link carries yet, one
    /// uprobe_multi link per (binary, process, kind) where the kernel has
    /// them (one RCU grace period to detach instead of one per probe), one
    /// plain link per probe otherwise. A link carrying a probe that is gone
    /// or moved is detached whole and its other probes attached anew.
    fn attach_uprobes(&mut self) -> Result<(), KernelError> {
        let (keep, stale): (Vec<_>, Vec<_>) = std::mem::take(&mut self.uprobe_links)
            .into_iter()
            .partition(|link| {
                link.probes
                    .iter()
                    .all(|(id, target)| self.uprobes.get(id) == Some(target))
            });
        self.uprobe_links = keep;
        for link in stale {
            program_mut::<UProbe>(&mut self.ebpf, link.program)?
                .detach(link.link)
                .map_err(|source| program_error(link.program, "detach", source))?;
        }
        // Probes no link carries, grouped by what one link can share.
        let mut pending: BTreeMap<(&Path, Option<i32>, bool), BTreeMap<u32, &UprobeTarget>> =
            BTreeMap::new();
        for (&id, target) in &self.uprobes {
            if !self.uprobe_links.iter().any(|l| l.probes.contains_key(&id)) {
                pending
                    .entry((&target.path, target.pid, target.ret))
                    .or_default()
                    .insert(id, target);
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        let support = *self
            .uprobe_multi
            .get_or_insert_with(UprobeMultiSupport::detect);
        let mut attached = Vec::new();
        let mut result = Ok(());
        'groups: for ((path, pid, ret), probes) in pending {
            let multi = if pid.is_some() {
                support.one_process
            } else {
                support.all_processes
            };
            let links: Vec<BTreeMap<u32, &UprobeTarget>> = if multi && probes.len() > 1 {
                vec![probes]
            } else {
                probes.into_iter().map(|probe| [probe].into()).collect()
            };
            for probes in links {
                match attach_uprobe_link(&mut self.ebpf, path, pid, ret, &probes) {
                    Ok(link) => attached.push(link),
                    Err(err) => {
                        result = Err(err);
                        break 'groups;
                    }
                }
            }
        }
        // What attached before an error stays tracked (and detached with
        // the session).
        self.uprobe_links.extend(attached);
        result
    }

    fn attach_perf(&mut self) -> Result<(), KernelError> {
        let name = names::PROG_PERF;
        let program: &mut PerfEvent = program_mut(&mut self.ebpf, name)?;
        let stale: Vec<u64> = self
            .perf_links
            .iter()
            .filter(|(period, (counter, _))| self.periods.get(period) != Some(counter))
            .map(|(period, _)| *period)
            .collect();
        for period in stale {
            if let Some((_, links)) = self.perf_links.remove(&period) {
                for link in links {
                    program
                        .detach(link)
                        .map_err(|source| program_error(name, "detach", source))?;
                }
            }
        }
        let wanted: Vec<(u64, PerfCounter)> = self
            .periods
            .iter()
            .filter(|(period, _)| !self.perf_links.contains_key(period))
            .map(|(period, counter)| (*period, *counter))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        ensure_loaded(&mut self.ebpf, name)?;
        let program: &mut PerfEvent = program_mut(&mut self.ebpf, name)?;
        let cpus =
            aya::util::online_cpus().map_err(|(_, source)| KernelError::OnlineCpus { source })?;
        for (period, counter) in wanted {
            let config = match counter {
                PerfCounter::CpuClock => PerfEventConfig::Software(SoftwareEvent::CpuClock),
                PerfCounter::CpuCycles => PerfEventConfig::Hardware(HardwareEvent::CpuCycles),
            };
            let mut links = Vec::with_capacity(cpus.len());
            for &cpu in &cpus {
                let attached = program.attach(
                    config,
                    PerfEventScope::AllProcessesOneCpu { cpu },
                    SamplePolicy::Period(period),
                    false,
                );
                match attached {
                    Ok(link) => links.push(link),
                    Err(source) => {
                        // All CPUs or none: a period is either attached
                        // and tracked or retried by the next attach.
                        for link in links {
                            let _ = program.detach(link);
                        }
                        return Err(perf_error(counter, cpu, source));
                    }
                }
            }
            self.perf_links.insert(period, (counter, links));
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

    /// The session's loaded programs as the kernel sees them (ids, verifier
    /// instruction counts, attach state): for diagnostics, `--verbose`
    /// output and tests. Programs no probe needed yet are not loaded.
    pub fn programs(&self) -> Result<Vec<LoadedProgram>, KernelError> {
        let mut out = Vec::new();
        for name in ALL_PROGRAMS {
            let program = self.ebpf.program(name).ok_or(KernelError::MissingItem {
                kind: "program",
                name,
            })?;
            if program.fd().is_err() {
                continue;
            }
            let info = program
                .info()
                .map_err(|source| program_error(name, "inspect", source))?;
            let attached = match name {
                names::PROG_SYS_ENTER => self.attached[0],
                names::PROG_SYS_EXIT => self.attached[1],
                names::PROG_TRACEPOINT => !self.tracepoint_links.is_empty(),
                names::PROG_PERF => !self.perf_links.is_empty(),
                _ => self.uprobe_links.iter().any(|l| l.program == name),
            };
            out.push(LoadedProgram {
                name,
                id: info.id(),
                verified_instructions: info.verified_instruction_count(),
                attached,
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
    let mut map = Array::<_, ProbeRoute>::try_from(map_mut(ebpf, map_name)?)
        .map_err(|source| map_error(map_name, "open", source))?;
    for (&nr, route) in table {
        map.set(nr, route, 0)
            .map_err(|source| map_error(map_name, "write", source))?;
    }
    for &nr in previous {
        if !table.contains_key(&nr) {
            map.set(nr, &ProbeRoute::default(), 0)
                .map_err(|source| map_error(map_name, "clear", source))?;
        }
    }
    Ok(())
}

/// Writes `table` into the hash route map `map_name` and removes the keys
/// in `previous` that `table` no longer routes.
fn write_hash_routes<K: aya::Pod + Ord>(
    ebpf: &mut Ebpf,
    map_name: &'static str,
    table: &BTreeMap<K, ProbeRoute>,
    previous: &[K],
) -> Result<(), KernelError> {
    let mut map = HashMap::<_, K, ProbeRoute>::try_from(map_mut(ebpf, map_name)?)
        .map_err(|source| map_error(map_name, "open", source))?;
    for (key, route) in table {
        map.insert(key, route, 0)
            .map_err(|source| map_error(map_name, "write", source))?;
    }
    for key in previous {
        if !table.contains_key(key) {
            map.remove(key)
                .map_err(|source| map_error(map_name, "clear", source))?;
        }
    }
    Ok(())
}

/// The event id of tracepoint `system:event` (the `common_type` its trace
/// entries start with), from tracefs.
fn tracepoint_id(tracefs: &Path, (system, event): &TracepointName) -> Result<u32, KernelError> {
    let path: PathBuf = tracefs.join("events").join(system).join(event).join("id");
    let unknown = |source| KernelError::UnknownTracepoint {
        system: system.clone(),
        event: event.clone(),
        path: path.clone(),
        source,
    };
    let text = std::fs::read_to_string(&path).map_err(unknown)?;
    text.trim().parse().map_err(|_| {
        unknown(io::Error::new(
            io::ErrorKind::InvalidData,
            "not an event id",
        ))
    })
}

/// Attaches the uprobes of `probes`, all on `path` in process `pid` (every
/// process when `None`) at entry or at return (`ret`), as one link with
/// each probe's id as the cookie of its offset: a uprobe_multi link when
/// there are several, a plain one for one.
fn attach_uprobe_link(
    ebpf: &mut Ebpf,
    path: &Path,
    pid: Option<i32>,
    ret: bool,
    probes: &BTreeMap<u32, &UprobeTarget>,
) -> Result<UprobeLink, KernelError> {
    let program = match (ret, probes.len() > 1) {
        (false, false) => names::PROG_UPROBE,
        (true, false) => names::PROG_URETPROBE,
        (false, true) => names::PROG_UPROBE_MULTI,
        (true, true) => names::PROG_URETPROBE_MULTI,
    };
    ensure_loaded(ebpf, program)?;
    let points = probes.iter().map(|(&id, target)| UProbeAttachPoint {
        location: match &target.location {
            UprobeLocation::Symbol(symbol) => UProbeAttachLocation::Symbol(symbol),
            UprobeLocation::FileOffset(offset) => UProbeAttachLocation::AbsoluteOffset(*offset),
        },
        cookie: Some(id.into()),
    });
    let scope = match pid.and_then(|pid| NonZeroU32::new(pid as u32)) {
        Some(pid) => UProbeScope::OneProcess(pid),
        None => UProbeScope::AllProcesses,
    };
    let link = program_mut::<UProbe>(ebpf, program)?
        .attach(points, path, scope)
        .map_err(|source| KernelError::AttachTarget {
            program,
            target: describe_uprobes(path, pid, ret, probes),
            source,
        })?;
    Ok(UprobeLink {
        program,
        probes: probes
            .iter()
            .map(|(&id, &target)| (id, target.clone()))
            .collect(),
        link,
    })
}

/// Names the uprobes of one link for an error message.
fn describe_uprobes(
    path: &Path,
    pid: Option<i32>,
    ret: bool,
    probes: &BTreeMap<u32, &UprobeTarget>,
) -> String {
    let kind = if ret { "uretprobe" } else { "uprobe" };
    let at = |target: &UprobeTarget| match &target.location {
        UprobeLocation::Symbol(symbol) => symbol.clone(),
        UprobeLocation::FileOffset(offset) => format!("offset {offset:#x}"),
    };
    let mut targets = probes.values();
    let first = targets.next().map(|t| at(t)).unwrap_or_default();
    let more = match targets.len() {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    let pid = pid
        .map(|pid| format!(" in process {pid}"))
        .unwrap_or_default();
    format!("{kind} {}:{first}{more}{pid}", path.display())
}

/// A perf attach failure; a missing counter gets its own message.
fn perf_error(counter: PerfCounter, cpu: u32, source: ProgramError) -> KernelError {
    let missing = match &source {
        ProgramError::SyscallError(err) => matches!(
            err.io_error.raw_os_error(),
            Some(libc::ENOENT | libc::EOPNOTSUPP | libc::ENODEV)
        ),
        _ => false,
    };
    if missing {
        KernelError::PerfUnsupported {
            counter: counter.name(),
            source,
        }
    } else {
        KernelError::AttachTarget {
            program: names::PROG_PERF,
            target: format!("{} sampling on CPU {cpu}", counter.name()),
            source,
        }
    }
}

/// Verifies and loads program `name` unless it is loaded already.
fn ensure_loaded(ebpf: &mut Ebpf, name: &'static str) -> Result<(), KernelError> {
    let program = ebpf.program_mut(name).ok_or(KernelError::MissingItem {
        kind: "program",
        name,
    })?;
    if program.fd().is_ok() {
        return Ok(());
    }
    let loaded = match program {
        Program::RawTracePoint(p) => p.load(),
        Program::TracePoint(p) => p.load(),
        Program::UProbe(p) => p.load(),
        Program::PerfEvent(p) => p.load(),
        _ => {
            return Err(KernelError::MissingItem {
                kind: "program of the expected type",
                name,
            });
        }
    };
    loaded.map_err(|source| program_error(name, "load", source))
}

fn map_mut<'a>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut Map, KernelError> {
    ebpf.map_mut(name)
        .ok_or(KernelError::MissingItem { kind: "map", name })
}

fn raw_tracepoint<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
) -> Result<&'a mut RawTracePoint, KernelError> {
    program_mut(ebpf, name)
}

/// Program `name` of the object as its concrete type.
fn program_mut<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, KernelError>
where
    &'a mut T: TryFrom<&'a mut Program, Error = ProgramError>,
{
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

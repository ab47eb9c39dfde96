//! The one error type of the kernel layer.

use std::{io, path::PathBuf};

/// Everything that can go wrong between the host and the kernel, phrased so
/// the user can act on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// The process lacks capabilities needed to load and attach programs.
    #[error(
        "missing {missing}: wasmtap loads eBPF programs; run as root or grant {missing} \
         (e.g. `setcap cap_bpf,cap_perfmon+ep` on the wasmtap binary)"
    )]
    Privileges {
        /// Names of the missing capabilities, comma separated.
        missing: String,
    },

    /// The capability set of this process could not be read.
    #[error("could not read {path} to check capabilities")]
    ReadCapabilities {
        /// The file that was read.
        path: PathBuf,
        /// The underlying failure.
        #[source]
        source: io::Error,
    },

    /// tracefs is not mounted and this process may not mount it.
    #[error(
        "tracefs is not mounted at {path} and wasmtap is not root; run \
         `mount -t tracefs nodev /sys/kernel/tracing` as root"
    )]
    TracefsMissing {
        /// Where tracefs was expected.
        path: PathBuf,
    },

    /// Mounting tracefs failed.
    #[error(
        "could not mount tracefs at {path}; run `mount -t tracefs nodev /sys/kernel/tracing` \
         as root"
    )]
    TracefsMount {
        /// The mount point.
        path: PathBuf,
        /// The mount(2) failure.
        #[source]
        source: io::Error,
    },

    /// The options passed to [`super::KernelSession::load`] are unusable.
    #[error("invalid kernel options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },

    /// The embedded eBPF object could not be loaded (maps, BTF, relocations).
    #[error("loading the wasmtap eBPF object failed")]
    LoadObject {
        /// The loader's failure.
        #[source]
        source: aya::EbpfError,
    },

    /// The object lacks a map or program the host expects: host and probes
    /// were built from different sources.
    #[error("the eBPF object has no {kind} named {name}; host and probes are out of sync, rebuild")]
    MissingItem {
        /// "map" or "program".
        kind: &'static str,
        /// The missing name.
        name: &'static str,
    },

    /// The kernel's verifier refused a program.
    #[error("the eBPF verifier rejected program {program}: {source}\nverifier log:\n{log}")]
    Verifier {
        /// The program's name.
        program: &'static str,
        /// The verifier's log (may be long).
        log: String,
        /// The BPF_PROG_LOAD failure.
        #[source]
        source: io::Error,
    },

    /// Loading or attaching a program failed for another reason.
    #[error("could not {action} eBPF program {program}")]
    Program {
        /// The program's name.
        program: &'static str,
        /// What was attempted ("load", "attach", "inspect").
        action: &'static str,
        /// The failure.
        #[source]
        source: aya::programs::ProgramError,
    },

    /// Reading or writing a map failed.
    #[error("could not {action} eBPF map {map}")]
    Map {
        /// The map's name.
        map: &'static str,
        /// What was attempted.
        action: &'static str,
        /// The failure.
        #[source]
        source: aya::maps::MapError,
    },

    /// A probe passed to [`super::KernelSession::install`] is malformed.
    #[error("probe {id}: {reason}")]
    InvalidProbe {
        /// The probe id.
        id: u32,
        /// What is wrong with it.
        reason: String,
    },

    /// Too many probes share one event.
    #[error("{count} probes on {event} but at most {max} may share one event: probes {probes:?}")]
    RouteFull {
        /// The event ("syscall 257 (entry)", "tracepoint sched:sched_switch").
        event: String,
        /// How many probes asked for it.
        count: usize,
        /// The limit, [`wasmtap_abi::PROBES_PER_ROUTE`].
        max: usize,
        /// The probe ids that asked for it.
        probes: Vec<u32>,
    },

    /// More distinct tracepoints or sampling periods than the route maps hold.
    #[error("{count} {what} carry probes but at most {max} may")]
    TooManyTargets {
        /// "tracepoints" or "sampling periods".
        what: &'static str,
        /// How many were asked for.
        count: usize,
        /// The size of the route map.
        max: usize,
    },

    /// The kernel's BTF could not be read.
    #[error(
        "could not read the kernel's BTF at {path}; task ops (ancestry, credentials, command \
         line) need a kernel built with CONFIG_DEBUG_INFO_BTF"
    )]
    ReadBtf {
        /// The file that was read.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },

    /// The kernel's BTF is malformed or of an unknown version.
    #[error("could not parse the kernel's BTF at {path}: {reason}")]
    ParseBtf {
        /// The file that was parsed.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// A struct member the task ops read is missing from the kernel's BTF.
    #[error("the kernel's BTF has no member {member}, which the task ops read")]
    BtfMember {
        /// `struct.member`.
        member: String,
    },

    /// A tracepoint a probe names does not exist on this kernel.
    #[error(
        "no tracepoint {system}:{event} on this kernel (no {path}); list them with \
         `ls /sys/kernel/tracing/events/{system}`"
    )]
    UnknownTracepoint {
        /// The event's system.
        system: String,
        /// The event's name.
        event: String,
        /// The id file that was read.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },

    /// Attaching a program to one target failed.
    #[error("could not attach {program} to {target}")]
    AttachTarget {
        /// The program's name.
        program: &'static str,
        /// What it was attached to.
        target: String,
        /// The failure.
        #[source]
        source: aya::programs::ProgramError,
    },

    /// The perf counter a sampling probe needs does not exist here.
    #[error(
        "this machine has no {counter} counter (virtual machines often lack hardware \
         counters); sample on cpu-clock instead (timer.profile, perf.sw.cpu_clock)"
    )]
    PerfUnsupported {
        /// The counter's name.
        counter: &'static str,
        /// The perf_event_open failure.
        #[source]
        source: aya::programs::ProgramError,
    },

    /// The list of online CPUs could not be read.
    #[error("could not list the online CPUs for perf sampling")]
    OnlineCpus {
        /// The failure.
        #[source]
        source: io::Error,
    },

    /// Waiting on the ring buffer failed.
    #[error("waiting for events on the ring buffer failed")]
    Poll {
        /// The poll(2) failure.
        #[source]
        source: io::Error,
    },
}

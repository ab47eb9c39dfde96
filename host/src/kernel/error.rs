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

    /// Too many probes share one syscall.
    #[error(
        "{count} probes on syscall {syscall} ({direction}) but at most {max} may share one \
         syscall: probes {probes:?}"
    )]
    RouteFull {
        /// The syscall number.
        syscall: u32,
        /// "entry" or "exit".
        direction: &'static str,
        /// How many probes asked for it.
        count: usize,
        /// The limit, [`wasmtap_abi::PROBES_PER_SYSCALL`].
        max: usize,
        /// The probe ids that asked for it.
        probes: Vec<u32>,
    },

    /// Waiting on the ring buffer failed.
    #[error("waiting for events on the ring buffer failed")]
    Poll {
        /// The poll(2) failure.
        #[source]
        source: io::Error,
    },
}

//! Plugins: hand-written Wasm modules (Rust with `wasmtap-guest`) run like
//! compiled scripts.
//!
//! A plugin is one module that carries the guest runtime itself, exports
//! the script entry points, imports only `host` functions, and declares its
//! probes and captures in the `wasmtap.manifest` custom section (see
//! [`wasmtap_abi::plugin`]). [`load`] reads and checks all of that without
//! running anything and turns it into a [`Plugin`]: a [`Bundle`] (probes by
//! manifest index, the module) plus the kernel probes, which
//! [`crate::session::run_plugin`] runs under the same limits, error
//! reporting and teardown as a script. Every refusal (bad module, an import
//! the host does not provide, an unknown or denied probe, a capture a probe
//! cannot take) happens here, before anything is attached.

pub mod command;
mod module;
mod resolve;
mod tracefs;

use std::path::PathBuf;

use wasmtap_abi::{Filter, FilterCmp, FilterField, MAX_FILTERS, Plan, plugin::ManifestReader};
use wasmtap_compiler::{Bundle, catalog::Catalog, diagnostics, passes::restrict::Restrictions};

use crate::kernel::KernelProbe;

/// A checked plugin, ready for [`crate::session::run_plugin`].
#[derive(Clone, Debug)]
pub struct Plugin {
    /// The probes by manifest index (which is also the records' probe id)
    /// and the module.
    pub bundle: Bundle,
    /// What the kernel attaches and captures.
    pub kernel_probes: Vec<KernelProbe>,
}

/// What [`load`] checks a plugin against.
pub struct LoadOptions<'a> {
    /// The plugin's name in messages (its file name).
    pub name: &'a str,
    /// The functions the sandbox defines in module `host`
    /// ([`crate::sandbox::Sandbox::host_functions`]).
    pub host_functions: &'a [String],
    /// The policy's restrictions, when an operator's policy applies.
    pub restrictions: Option<&'a Restrictions>,
    /// Syscalls and kernel version.
    pub catalog: &'a dyn Catalog,
}

/// Why a plugin is refused.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("not a Wasm module: {0}")]
    NotWasm(String),
    #[error(
        "the module has no `wasmtap.manifest` section, so it is not a wasmtap plugin\n  hint: declare its probes with wasmtap_guest::probes! and export it with wasmtap_guest::export_plugin!"
    )]
    NoManifest,
    #[error("bad manifest: {0}")]
    Manifest(String),
    #[error(
        "the plugin imports `{module}.{name}`, which the host does not provide; nothing was attached\n  hint: plugins may import only host.{{{provided}}}"
    )]
    Import {
        module: String,
        name: String,
        provided: String,
    },
    #[error(
        "the plugin does not export `{0}`; nothing was attached\n  hint: export the plugin type with wasmtap_guest::export_plugin!"
    )]
    Export(String),
    #[error("{rendered}{count} error(s) in the plugin's manifest; nothing was attached.")]
    Probes { rendered: String, count: usize },
    #[error("a capture plan has no free filter slot for the {0}")]
    TooManyFilters(&'static str),
}

/// Reads, checks and resolves the plugin `wasm`.
///
/// # Errors
/// See [`PluginError`]; all of them before anything is attached.
pub fn load(wasm: Vec<u8>, options: &LoadOptions<'_>) -> Result<Plugin, PluginError> {
    let manifest = module::inspect(&wasm, options.host_functions)?;
    let probes = read_manifest(manifest)?;
    let source = resolve::source_of(&probes);
    let mut tracefs = || -> Result<PathBuf, String> {
        crate::kernel::ensure_tracefs().map_err(|e| e.to_string())
    };
    let resolved = resolve::resolve(
        &probes,
        &source,
        options.catalog,
        options.restrictions,
        &mut tracefs,
    );
    let (probes, kernel_probes) = resolved.map_err(|errors| PluginError::Probes {
        rendered: diagnostics::render(&errors, &format!("{} (manifest)", options.name), &source),
        count: errors.len(),
    })?;
    Ok(Plugin {
        bundle: Bundle {
            probes,
            wasm,
            static_data_size: 0,
            sites: Vec::new(),
            unread_globals: Vec::new(),
            warnings: Vec::new(),
        },
        kernel_probes,
    })
}

fn read_manifest(bytes: &[u8]) -> Result<Vec<resolve::ManifestProbe<'_>>, PluginError> {
    let bad = |e| PluginError::Manifest(format!("{e:?}"));
    let mut reader = ManifestReader::new(bytes).map_err(bad)?;
    let mut probes = Vec::with_capacity(reader.remaining());
    loop {
        let mut captures = Vec::new();
        match reader.next_probe(|c| captures.push(c)).map_err(bad)? {
            Some(point) => probes.push(resolve::ManifestProbe { point, captures }),
            None => break,
        }
    }
    if probes.is_empty() {
        return Err(PluginError::Manifest("it declares no probe".into()));
    }
    Ok(probes)
}

/// Loads a plugin for a daemon tenant: checked against the tenant's
/// restrictions, scoped to its processes, and to `target_pid` if given
/// (whose program is `target_executable` for a `-c` command).
///
/// # Errors
/// As [`load`], and anything that stops the host from checking it.
pub fn load_for_tenant(
    wasm: Vec<u8>,
    name: &str,
    tenant: &crate::policy::TenantPolicy,
    target_pid: Option<u32>,
    target_executable: Option<&str>,
) -> anyhow::Result<Plugin> {
    let sandbox = crate::sandbox::Sandbox::new(crate::sandbox::SandboxConfig::default())?;
    let catalog = crate::catalog::LiveCatalog::new()?
        .with_target(target_pid)
        .with_target_command(target_executable);
    let mut plugin = load(
        wasm,
        &LoadOptions {
            name,
            host_functions: &sandbox.host_functions(),
            restrictions: Some(&tenant.restrictions),
            catalog: &catalog,
        },
    )?;
    if let Some(uid) = tenant.scope_uid {
        let scope = Filter::new(FilterField::Uid, FilterCmp::Eq, u64::from(uid));
        plugin.add_filter(scope, "tenant's scope")?;
    }
    if let Some(pid) = target_pid {
        let target = Filter::new(FilterField::Pid, FilterCmp::Eq, u64::from(pid));
        plugin.add_filter(target, "target process")?;
    }
    Ok(plugin)
}

impl Plugin {
    /// Adds `filter` to every capture plan, so the kernel drops events it
    /// rejects before copying anything (`-x PID`, a tenant's scope).
    ///
    /// # Errors
    /// A plan whose filter slots are all taken.
    pub fn add_filter(&mut self, filter: Filter, what: &'static str) -> Result<(), PluginError> {
        let add = |plan: &mut Plan| {
            let n = plan.n_filters as usize;
            if n >= MAX_FILTERS {
                return Err(PluginError::TooManyFilters(what));
            }
            plan.filters[n] = filter;
            plan.n_filters += 1;
            Ok(())
        };
        for probe in &mut self.kernel_probes {
            add(&mut probe.plan)?;
        }
        for probe in &mut self.bundle.probes {
            if let Some(plan) = probe.plan.as_mut() {
                add(plan)?;
            }
        }
        Ok(())
    }
}

//! The wasmtap compiler: a SystemTap-dialect script in, a [`Bundle`] out.
//!
//! The passes run in this order ([`compile`] lists them):
//! 1. **parse** ([`syntax::parse`]): preprocess `%( %)` conditionals, lex,
//!    parse into the [`syntax::ast`].
//! 2. **resolve** ([`passes::resolve`]): expand probe points against a
//!    [`Catalog`] into concrete probes; then **check** ([`passes::types`]):
//!    names and types, inferred across the whole script.
//! 3. **plan + codegen** ([`codegen`]): one Wasm module with a handler per
//!    probe, and per kernel probe the capture [`plan`] the eBPF side runs.
//!
//! ```
//! use wasmtap_compiler::{compile, CompileOptions, catalog::StaticCatalog};
//! let catalog = StaticCatalog::x86_64((6, 18, 0));
//! let bundle = compile(
//!     r#"probe begin { printf("hello %s\n", "world"); exit() }"#,
//!     &catalog,
//!     &CompileOptions::default(),
//! )
//! .unwrap();
//! assert_eq!(bundle.probes.len(), 1);
//! ```

pub mod catalog;
pub mod codegen;
pub mod diagnostics;
pub mod format;
pub mod listing;
pub mod passes;
pub mod plan;
pub mod span;
pub mod syntax;
pub mod syscalls;

use catalog::Catalog;
use diagnostics::Diagnostic;
use passes::{resolve::ResolvedProbe, types::Typed};
use span::Span;
pub use wasmtap_abi::Plan;

/// Settings that change what a script compiles to.
#[derive(Clone, Debug)]
pub struct CompileOptions {
    /// Script arguments (`$1`, `@1`, `$#`).
    pub args: Vec<String>,
    /// The value of `target()` (`-x PID` / `-c CMD`).
    pub target_pid: Option<u32>,
    /// Bytes the kernel copies for each user string (`user_string`,
    /// tapset strings, `argstr`). Default 256; stap's MAXSTRINGLEN is 128.
    pub capture_string_bytes: u16,
    /// What an operator's policy forbids (the daemon, a restricted user);
    /// checked after resolution so a denied script attaches nothing.
    pub restrictions: Option<passes::restrict::Restrictions>,
}

impl Default for CompileOptions {
    fn default() -> Self {
        Self {
            args: Vec::new(),
            target_pid: None,
            capture_string_bytes: 256,
            restrictions: None,
        }
    }
}

/// One probe of the compiled script, as the host needs it.
#[derive(Clone, Debug)]
pub struct BundleProbe {
    pub resolved: ResolvedProbe,
    /// What the kernel copies; `None` for probes the host runs itself.
    pub plan: Option<Plan>,
}

/// Everything the host needs to run a script.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub probes: Vec<BundleProbe>,
    /// The handler module (imports the guest runtime).
    pub wasm: Vec<u8>,
    /// Bytes of constant data to reserve in the runtime before instantiation.
    pub static_data_size: u32,
    /// `(function, offset, span)` sorted: maps a trap to a script location.
    pub sites: Vec<(u32, u32, Span)>,
    /// Globals that are written but never read, which stap prints at exit.
    pub unread_globals: Vec<String>,
    /// Warnings to show even though compilation succeeded.
    pub warnings: Vec<Diagnostic>,
}

impl Bundle {
    /// The script location of a trap in function `func` at `offset`.
    pub fn span_at(&self, func: u32, offset: u32) -> Option<Span> {
        let end = self
            .sites
            .partition_point(|&(f, o, _)| (f, o) <= (func, offset));
        let &(f, _, span) = self.sites[..end].last()?;
        (f == func).then_some(span)
    }
}

/// Output of passes 1-2, for `-p 2` and for callers that stop early.
#[derive(Debug)]
pub struct Checked {
    pub script: syntax::ast::Script,
    pub probes: Vec<ResolvedProbe>,
    pub typed: Typed,
}

/// Pass 1: parse.
///
/// # Errors
/// Syntax errors.
pub fn parse(
    source: &str,
    catalog: &dyn Catalog,
    options: &CompileOptions,
) -> Result<syntax::ast::Script, Vec<Diagnostic>> {
    let parse_options = syntax::ParseOptions {
        args: options.args.clone(),
        kernel_version: catalog.kernel_version(),
        arch: catalog.arch().to_string(),
    };
    syntax::parse(source, &parse_options)
}

/// Passes 1-2: parse, resolve, check.
///
/// # Errors
/// Syntax, resolution and type errors.
pub fn check(
    source: &str,
    catalog: &dyn Catalog,
    options: &CompileOptions,
) -> Result<Checked, Vec<Diagnostic>> {
    let script = parse(source, catalog, options)?;
    // Resolution first: the checker needs each probe's variables.
    let probes = passes::resolve::resolve(&script, catalog)?;
    if let Some(restrictions) = &options.restrictions {
        passes::restrict::check(&script, &probes, restrictions)?;
    }
    let typed = passes::types::check(&script, &probes, catalog)?;
    Ok(Checked {
        script,
        probes,
        typed,
    })
}

/// All passes: the script compiled to a [`Bundle`].
///
/// # Errors
/// Every diagnostic of the first pass that failed.
pub fn compile(
    source: &str,
    catalog: &dyn Catalog,
    options: &CompileOptions,
) -> Result<Bundle, Vec<Diagnostic>> {
    let checked = check(source, catalog, options)?;
    let generated = codegen::generate(
        &checked.script,
        &checked.probes,
        &checked.typed,
        catalog,
        options,
    )?;
    let unread_globals = checked
        .typed
        .globals
        .iter()
        .filter(|g| g.written && !g.read)
        .map(|g| g.name.clone())
        .collect();
    let warnings = passes::tracepoints::warnings(&checked.probes);
    let probes = checked
        .probes
        .into_iter()
        .zip(generated.plans)
        .map(|(resolved, plan)| BundleProbe { resolved, plan })
        .collect();
    Ok(Bundle {
        probes,
        wasm: generated.wasm,
        static_data_size: generated.static_data_size,
        sites: generated.sites,
        unread_globals,
        warnings,
    })
}

/// The module as WebAssembly text, for `-p 3`.
pub fn wasm_text(wasm: &[u8]) -> String {
    wasmprinter::print_bytes(wasm).unwrap_or_else(|e| format!(";; cannot print module: {e}"))
}

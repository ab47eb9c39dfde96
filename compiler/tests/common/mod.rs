//! What the compiler's integration tests share: compiling a script for the
//! recorded x86_64 catalog of Linux 6.18, and looking into its plans.
#![allow(dead_code, reason = "each test file uses a different part")]

use wasmtap_abi::{Plan, PlanOp};
use wasmtap_compiler::{Bundle, CompileOptions, catalog::StaticCatalog, compile, diagnostics};

/// Compiles `source` with `options`; the module must validate.
pub fn build_with(source: &str, options: &CompileOptions) -> Bundle {
    let catalog = StaticCatalog::x86_64((6, 18, 0));
    match compile(source, &catalog, options) {
        Ok(bundle) => {
            wasmparser::Validator::new()
                .validate_all(&bundle.wasm)
                .unwrap_or_else(|e| panic!("invalid module for {source}: {e}"));
            bundle
        }
        Err(errors) => panic!("{}", diagnostics::render(&errors, "<input>", source)),
    }
}

/// Compiles `source` with the default options.
pub fn build(source: &str) -> Bundle {
    build_with(source, &CompileOptions::default())
}

/// The rendered diagnostics of `source`, which must not compile.
pub fn errors(source: &str) -> String {
    let catalog = StaticCatalog::x86_64((6, 18, 0));
    match compile(source, &catalog, &CompileOptions::default()) {
        Ok(_) => panic!("expected an error for {source}"),
        Err(errors) => diagnostics::render(&errors, "<input>", source),
    }
}

/// The ops a plan uses.
pub fn ops(plan: &Plan) -> Vec<PlanOp> {
    plan.ops[..plan.n_ops as usize].to_vec()
}

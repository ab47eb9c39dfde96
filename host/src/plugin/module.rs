//! What a plugin module is made of, read without running it: the manifest
//! section, the imports and the exports, each checked against what the host
//! provides and calls.

use wasmparser::{ExternalKind, Parser, Payload, TypeRef};
use wasmtap_abi::{
    plugin::MANIFEST_SECTION,
    wasm::{
        HOST_MODULE, MEMORY, RT_BATCH_BUFFER, RT_FLUSH, SCRIPT_EXIT_REQUESTED, SCRIPT_HANDLE_BATCH,
        SCRIPT_INIT, SCRIPT_RUN_PROBE,
    },
};

use super::PluginError;

/// The exports the host calls, all of which a plugin must have
/// (`export_plugin!` and the guest runtime define them).
const REQUIRED_EXPORTS: &[&str] = &[
    SCRIPT_INIT,
    SCRIPT_HANDLE_BATCH,
    SCRIPT_RUN_PROBE,
    SCRIPT_EXIT_REQUESTED,
    RT_BATCH_BUFFER,
    RT_FLUSH,
    "scratch_reset",
    MEMORY,
];

/// Returns the manifest bytes of `wasm` after checking its imports against
/// `host_functions` and its exports against what the host calls.
///
/// # Errors
/// Not a module, no (or two) manifest sections, an import the host does
/// not provide, or a missing export.
pub(super) fn inspect<'a>(
    wasm: &'a [u8],
    host_functions: &[String],
) -> Result<&'a [u8], PluginError> {
    let mut manifest = None;
    let mut exports = Vec::new();
    let not_wasm = |e: wasmparser::BinaryReaderError| PluginError::NotWasm(e.to_string());
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(not_wasm)? {
            Payload::CustomSection(section) if section.name() == MANIFEST_SECTION => {
                let twice = manifest.replace(section.data()).is_some();
                if twice {
                    return Err(PluginError::Manifest(
                        "the module has two manifest sections".into(),
                    ));
                }
            }
            Payload::ImportSection(imports) => {
                for import in imports.into_imports() {
                    let import = import.map_err(not_wasm)?;
                    let provided = import.module == HOST_MODULE
                        && matches!(import.ty, TypeRef::Func(_) | TypeRef::FuncExact(_))
                        && host_functions.iter().any(|f| f == import.name);
                    if !provided {
                        return Err(PluginError::Import {
                            module: import.module.to_string(),
                            name: import.name.to_string(),
                            provided: host_functions.join(", "),
                        });
                    }
                }
            }
            Payload::ExportSection(section) => {
                for export in section {
                    let export = export.map_err(not_wasm)?;
                    if matches!(export.kind, ExternalKind::Func | ExternalKind::Memory) {
                        exports.push(export.name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    if let Some(name) = REQUIRED_EXPORTS
        .iter()
        .find(|name| !exports.iter().any(|e| e == *name))
    {
        return Err(PluginError::Export(name.to_string()));
    }
    manifest.ok_or(PluginError::NoManifest)
}

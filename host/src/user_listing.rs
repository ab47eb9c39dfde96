//! `wasmtap -L 'process("BIN").function("PATTERN")'`: each matching user
//! function or USDT mark with its variables and their types, as
//! `stap -L` prints them (`process("/bin/x").function("add@x.c:3") $a:int`).

use wasmtap_compiler::{
    CompileOptions,
    catalog::Catalog,
    diagnostics::Diagnostic,
    passes::resolve::{self, ProbeKind},
};

/// The listing of every probe `point` resolves to, one per line.
///
/// # Errors
/// The point's diagnostics, with spans into the returned source text
/// (`probe POINT {}`) for rendering.
pub fn list(point: &str, catalog: &dyn Catalog) -> Result<String, (String, Vec<Diagnostic>)> {
    let source = format!("probe {point} {{}}");
    let fail = |errors| (source.clone(), errors);
    let script =
        wasmtap_compiler::parse(&source, catalog, &CompileOptions::default()).map_err(fail)?;
    let probes = resolve::resolve(&script, catalog).map_err(fail)?;
    let mut out = String::new();
    for probe in probes {
        out.push_str(&probe.name);
        match &probe.kind {
            ProbeKind::UserFunction {
                path, index, ret, ..
            } => {
                let binary = catalog.user_binary(path).ok();
                let function = binary.as_ref().and_then(|b| b.functions.get(*index));
                if let Some(function) = function {
                    if *ret {
                        let ty = function
                            .return_type
                            .as_ref()
                            .map_or("long", |t| t.name.as_str());
                        out.push_str(&format!(" $return:{ty}"));
                    } else {
                        for param in &function.params {
                            out.push_str(&format!(" ${}:{}", param.name, param.ty.name));
                        }
                    }
                }
            }
            ProbeKind::UserMark { path, index, .. } => {
                let binary = catalog.user_binary(path).ok();
                if let Some(mark) = binary.as_ref().and_then(|b| b.marks.get(*index)) {
                    for (n, arg) in mark.args.iter().enumerate() {
                        let ty = match (arg.size, arg.signed) {
                            (1, true) => "char",
                            (1, false) => "unsigned char",
                            (2, true) => "short",
                            (2, false) => "unsigned short",
                            (4, true) => "int",
                            (4, false) => "unsigned int",
                            (_, true) => "long",
                            (_, false) => "unsigned long",
                        };
                        out.push_str(&format!(" $arg{}:{ty}", n + 1));
                    }
                }
            }
            _ => {}
        }
        out.push('\n');
    }
    Ok(out)
}

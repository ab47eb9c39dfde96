//! Probe point listings: stap's `-l PATTERN` (the matching points, one per
//! line) and `-L PATTERN` (each with its variables and their types).
//!
//! The pattern is parsed and resolved exactly like a probe point of a
//! script, so every probe family resolution knows (syscalls today,
//! tracepoints and process functions as they are added) lists without code
//! here; the variables come from [`symbols::probe_vars`], the same table
//! the type checker uses.

use crate::{
    catalog::Catalog,
    diagnostics::Diagnostic,
    passes::{resolve, symbols, uprobe},
    syntax::{self, ParseOptions},
};

/// The script text a pattern is parsed as; diagnostics of [`list`] point
/// into it, so render them against this text.
pub fn script_for(pattern: &str) -> String {
    format!("probe {pattern} {{}}")
}

/// The points matching `pattern`, sorted, one line each: the point's name,
/// then with `with_vars` each variable as `name:type` (`$` fields typed
/// `long`), in stap's `-L` layout.
///
/// # Errors
/// A pattern that does not parse as a probe point, or matches nothing.
pub fn list(
    pattern: &str,
    catalog: &dyn Catalog,
    with_vars: bool,
) -> Result<Vec<String>, Vec<Diagnostic>> {
    let options = ParseOptions {
        args: Vec::new(),
        kernel_version: catalog.kernel_version(),
        arch: catalog.arch().to_string(),
    };
    let script = syntax::parse(&script_for(pattern), &options)?;
    let probes = resolve::resolve(&script, catalog)?;
    let mut lines: Vec<String> = probes
        .iter()
        .map(|probe| {
            let mut line = probe.name.clone();
            if with_vars && let Some(vars) = uprobe::listed_vars(&probe.kind, catalog) {
                // User probes list C types from DWARF, as stap does.
                line.push_str(&vars);
            } else if with_vars {
                for (name, ty) in symbols::probe_vars(&probe.kind, catalog) {
                    line.push_str(&format!(" {name}:{}", ty.name()));
                }
            }
            line
        })
        .collect();
    lines.sort();
    lines.dedup();
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::StaticCatalog;

    fn catalog() -> StaticCatalog {
        StaticCatalog::x86_64((6, 18, 0))
    }

    #[test]
    fn lists_matching_points() {
        let lines = list("syscall.open*", &catalog(), false).unwrap();
        assert_eq!(
            lines,
            [
                "syscall.open",
                "syscall.open_by_handle_at",
                "syscall.open_tree",
                "syscall.open_tree_attr",
                "syscall.openat",
                "syscall.openat2"
            ]
        );
    }

    #[test]
    fn lists_variables_in_stap_layout() {
        let lines = list("syscall.openat", &catalog(), true).unwrap();
        assert_eq!(
            lines,
            [
                "syscall.openat name:string dfd:long dfd_str:string filename:string flags:long flags_str:string mode:long argstr:string $dfd:long $filename:long $flags:long $mode:long"
            ]
        );
        let lines = list("syscall.close.return", &catalog(), true).unwrap();
        assert_eq!(
            lines,
            ["syscall.close.return name:string retstr:string $return:long"]
        );
    }

    #[test]
    fn a_pattern_matching_nothing_is_an_error() {
        let errors = list("syscall.nonesuch*", &catalog(), false).unwrap_err();
        assert!(errors[0].message.contains("matches nothing"), "{errors:?}");
    }
}

//! User binaries as the compiler sees them: the functions (symbol tables
//! and DWARF) and USDT marks of an ELF executable or shared library, with
//! the file offsets uprobes attach to.
//!
//! - [`resolve_path`] finds the file a `process("NAME")` names, as stap
//!   does: a name with a `/` is a path (relative to the current directory),
//!   a bare name is looked up in `$PATH`.
//! - [`load`] reads it into a [`UserBinary`]. Functions come from DWARF
//!   (with parameters, see [`dwarf`] for where they are read) and from the
//!   symbol tables (`.symtab` and `.dynsym`), so stripped binaries and
//!   libraries without debug info still offer every exported function,
//!   with no parameters.

mod dwarf;
pub mod regs;
mod usdt;

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
};

use object::{Object, ObjectSection, ObjectSegment, ObjectSymbol, SymbolKind};
use wasmtap_compiler::catalog::{UsdtMark, UserBinary, UserFunction};

/// Why a user binary cannot be described.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error("no executable named '{name}' in $PATH")]
    NotInPath { name: String },
    #[error("cannot open '{path}': {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("'{path}' is not an ELF file wasmtap can read: {source}")]
    Parse {
        path: String,
        #[source]
        source: object::Error,
    },
    #[error("'{path}' is a {arch:?} binary; uprobes here need x86_64")]
    Arch {
        path: String,
        arch: object::Architecture,
    },
    #[error("cannot read the DWARF debug info of '{path}': {source}")]
    Dwarf {
        path: String,
        #[source]
        source: gimli::Error,
    },
}

/// The canonical path of the binary `name` names: a name containing `/`
/// is a path (relative to the current directory), a bare name is searched
/// in `$PATH`; symbolic links (and `/proc/PID/exe`) are followed.
///
/// # Errors
/// A bare name found nowhere in `$PATH`, or a path that does not exist.
pub fn resolve_path(name: &str) -> Result<PathBuf, ElfError> {
    let candidate = if name.contains('/') {
        PathBuf::from(name)
    } else {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|file| file.is_file())
            .ok_or_else(|| ElfError::NotInPath {
                name: name.to_string(),
            })?
    };
    std::fs::canonicalize(&candidate).map_err(|source| ElfError::Open {
        path: candidate.display().to_string(),
        source,
    })
}

/// Reads the functions and USDT marks of the ELF file at `path` (already
/// resolved by [`resolve_path`]).
///
/// # Errors
/// The file cannot be read, is not a little-endian x86_64 ELF file, or has
/// DWARF that cannot be parsed.
pub fn load(path: &Path) -> Result<UserBinary, ElfError> {
    let display = path.display().to_string();
    let data = std::fs::read(path).map_err(|source| ElfError::Open {
        path: display.clone(),
        source,
    })?;
    let file = object::File::parse(&*data).map_err(|source| ElfError::Parse {
        path: display.clone(),
        source,
    })?;
    if file.architecture() != object::Architecture::X86_64 {
        return Err(ElfError::Arch {
            path: display,
            arch: file.architecture(),
        });
    }
    let segments = Segments::new(&file);
    let (dwarf_functions, types) = dwarf::functions(&file).map_err(|source| ElfError::Dwarf {
        path: display.clone(),
        source,
    })?;
    let has_debug_info = !dwarf_functions.is_empty();

    let mut functions = Vec::new();
    let mut seen: HashSet<(String, u64)> = HashSet::new();
    for function in dwarf_functions {
        let Some(file_offset) = segments.file_offset(function.low_pc) else {
            continue;
        };
        if seen.insert((function.name.clone(), function.low_pc)) {
            functions.push(UserFunction {
                name: function.name,
                file: function.file,
                line: function.line,
                address: function.low_pc,
                file_offset,
                params: function.params,
                return_type: function.return_type,
            });
        }
    }
    // Symbols add what DWARF does not describe (crt code, libraries
    // without debug info) and aliases of described functions, which
    // share their parameters.
    let described: Vec<(u64, usize)> = {
        let mut v: Vec<_> = functions
            .iter()
            .enumerate()
            .map(|(i, f)| (f.address, i))
            .collect();
        v.sort_unstable();
        v
    };
    for symbol in file.symbols().chain(file.dynamic_symbols()) {
        if symbol.kind() != SymbolKind::Text || !symbol.is_definition() || symbol.address() == 0 {
            continue;
        }
        let Ok(name) = symbol.name() else { continue };
        if name.is_empty() || !seen.insert((name.to_string(), symbol.address())) {
            continue;
        }
        let Some(file_offset) = segments.file_offset(symbol.address()) else {
            continue;
        };
        let alias = described
            .binary_search_by_key(&symbol.address(), |&(address, _)| address)
            .ok()
            .map(|i| &functions[described[i].1]);
        functions.push(UserFunction {
            name: name.to_string(),
            file: alias.and_then(|f| f.file.clone()),
            line: alias.and_then(|f| f.line),
            address: symbol.address(),
            file_offset,
            params: alias.map(|f| f.params.clone()).unwrap_or_default(),
            return_type: alias.and_then(|f| f.return_type.clone()),
        });
    }
    functions.sort_by(|a, b| (&a.name, a.address).cmp(&(&b.name, b.address)));

    Ok(UserBinary {
        path: display,
        functions,
        marks: marks(&file, &segments),
        has_debug_info,
        types: types.shapes,
        named_types: types.named,
    })
}

/// The USDT marks of `.note.stapsdt`, with pcs moved by the distance the
/// linker moved `.stapsdt.base` (as `<sys/sdt.h>` consumers must).
fn marks(file: &object::File, segments: &Segments) -> Vec<UsdtMark> {
    let Some(data) = file
        .section_by_name(".note.stapsdt")
        .and_then(|section| section.data().ok())
    else {
        return Vec::new();
    };
    let base = file
        .section_by_name(".stapsdt.base")
        .map(|section| section.address());
    usdt::parse_notes(data)
        .into_iter()
        .filter_map(|note| {
            let address = match base {
                Some(actual) if note.base != 0 => {
                    note.pc.wrapping_add(actual).wrapping_sub(note.base)
                }
                _ => note.pc,
            };
            Some(UsdtMark {
                provider: note.provider,
                name: note.name,
                address,
                file_offset: segments.file_offset(address)?,
                semaphore: note.semaphore,
                args: note.args,
            })
        })
        .collect()
}

/// The loadable segments: virtual address ranges and their file offsets.
struct Segments(Vec<(u64, u64, u64)>);

impl Segments {
    fn new(file: &object::File) -> Self {
        Self(
            file.segments()
                .map(|segment| {
                    let (offset, size) = segment.file_range();
                    (segment.address(), size, offset)
                })
                .collect(),
        )
    }

    /// The file offset of virtual address `address`, if a segment maps it
    /// from the file.
    fn file_offset(&self, address: u64) -> Option<u64> {
        self.0
            .iter()
            .find(|&&(start, size, _)| start <= address && address < start + size)
            .map(|&(start, _, offset)| address - start + offset)
    }
}

#[cfg(test)]
mod tests {
    use wasmtap_compiler::catalog::{TypeClass, UsdtLocation, ValueLocation};

    use super::*;

    /// Builds the end-to-end tests' demo program with `flags`.
    fn demo(flags: &[&str]) -> (tempdir::Dir, UserBinary) {
        let dir = tempdir::Dir::new();
        let exe = dir.0.join("demo");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tests/uprobes/demo.c");
        let status = std::process::Command::new("gcc")
            .args(flags)
            .arg("-o")
            .arg(&exe)
            .arg(&source)
            .status()
            .expect("run gcc");
        assert!(status.success());
        let binary = load(&resolve_path(exe.to_str().unwrap()).unwrap()).unwrap();
        (dir, binary)
    }

    mod tempdir {
        /// A directory removed on drop.
        pub struct Dir(pub std::path::PathBuf);

        impl Dir {
            pub fn new() -> Self {
                static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let path =
                    std::env::temp_dir().join(format!("wasmtap-elf-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&path).unwrap();
                Self(path)
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn function<'b>(binary: &'b UserBinary, name: &str) -> &'b UserFunction {
        binary
            .functions
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no function {name}"))
    }

    #[test]
    fn parameters_are_in_argument_registers_at_entry() {
        for opt in ["-O0", "-O2"] {
            let (_dir, binary) = demo(&["-g", opt]);
            assert!(binary.has_debug_info);
            let add = function(&binary, "add");
            let params: Vec<_> = add
                .params
                .iter()
                .map(|p| (p.name.as_str(), p.ty.name.as_str(), p.location))
                .collect();
            assert_eq!(
                params,
                [
                    ("a", "int", ValueLocation::Register(112)),
                    ("b", "int", ValueLocation::Register(104)),
                ],
                "{opt}"
            );
            assert!(
                add.file
                    .as_deref()
                    .unwrap()
                    .ends_with("tests/uprobes/demo.c")
            );
            assert_eq!(add.return_type.as_ref().unwrap().class, TypeClass::Signed);
            let scale = function(&binary, "scale");
            let types: Vec<_> = scale
                .params
                .iter()
                .map(|p| (p.ty.name.as_str(), p.ty.size, p.ty.class))
                .collect();
            assert_eq!(
                types,
                [
                    ("long int", 8, TypeClass::Signed),
                    ("unsigned char", 1, TypeClass::Unsigned),
                    ("char const*", 8, TypeClass::Pointer),
                ]
            );
            assert_eq!(scale.params[2].location, ValueLocation::Register(96));
            let handle = function(&binary, "handle");
            assert_eq!(handle.params[0].ty.name, "struct req*");
            assert!(function(&binary, "noop").params.is_empty());
            // The entry's file offset is where the code is in the file.
            let data = std::fs::read(&binary.path).unwrap();
            let file = object::File::parse(&*data).unwrap();
            let symbol = file.symbols().find(|s| s.name() == Ok("add")).unwrap();
            assert_eq!(add.address, symbol.address());
        }
    }

    #[test]
    fn stripped_binaries_keep_symbol_functions_and_marks() {
        let (_dir, binary) = demo(&["-O2", "-s"]);
        assert!(!binary.has_debug_info);
        assert!(binary.functions.iter().all(|f| f.params.is_empty()));
        // -s drops .symtab and DWARF; the USDT note stays.
        assert_eq!(binary.marks.len(), 1);
        let mark = &binary.marks[0];
        assert_eq!(
            (mark.provider.as_str(), mark.name.as_str()),
            ("demo", "tick")
        );
        assert_eq!(mark.args.len(), 3);
        assert!(matches!(mark.args[0].location, UsdtLocation::Register(_)));
        assert_eq!(mark.args[2].location, UsdtLocation::Constant(-3));
        assert_eq!(data_at(&binary.path, mark.file_offset), 0x90, "a nop");
    }

    fn data_at(path: &str, offset: u64) -> u8 {
        std::fs::read(path).unwrap()[offset as usize]
    }

    #[test]
    fn names_resolve_through_path() {
        let sh = resolve_path("sh").unwrap();
        assert!(sh.is_absolute());
        assert!(matches!(
            resolve_path("no-such-program-xyz"),
            Err(ElfError::NotInPath { .. })
        ));
    }
}

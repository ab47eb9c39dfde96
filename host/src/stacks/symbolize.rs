//! Names for user addresses, with blazesym: by (binary, file offset) from
//! the binary's ELF symbols. Results are cached per binary and offset, so a
//! report that prints the same frames many times looks each up once.
//! Kernel addresses are named from kallsyms (see [`super::kallsyms`]).

use std::{collections::HashMap, path::Path, sync::Arc};

use blazesym::symbolize::{
    Input, Symbolized, Symbolizer,
    source::{Elf, Source},
};

/// A symbol an address falls in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// Demangled name.
    pub name: String,
    /// Bytes from the symbol's start to the address.
    pub offset: u64,
    /// The symbol's size, 0 when the symbol table does not say.
    pub size: u64,
}

/// Cached symbolization.
pub struct Symbols {
    symbolizer: Symbolizer,
    user: HashMap<(Arc<Path>, u64), Option<Symbol>>,
}

impl Default for Symbols {
    fn default() -> Self {
        Self {
            symbolizer: Symbolizer::builder()
                .enable_code_info(false)
                .enable_inlined_fns(false)
                .enable_demangling(false)
                .build(),
            user: HashMap::new(),
        }
    }
}

impl Symbols {
    /// The symbol at `file_offset` of binary `path`; None when the binary
    /// is unreadable or has no symbol there.
    pub fn user(&mut self, path: &Arc<Path>, file_offset: u64) -> Option<Symbol> {
        if let Some(known) = self.user.get(&(path.clone(), file_offset)) {
            return known.clone();
        }
        let source = Source::Elf(Elf::new(path.to_path_buf()));
        let found = self
            .symbolizer
            .symbolize_single(&source, Input::FileOffset(file_offset))
            .ok()
            .and_then(symbol);
        self.user.insert((path.clone(), file_offset), found.clone());
        found
    }
}

fn symbol(symbolized: Symbolized<'_>) -> Option<Symbol> {
    match symbolized {
        Symbolized::Sym(sym) => Some(Symbol {
            name: demangle(&sym.name),
            offset: sym.offset as u64,
            size: sym.size.unwrap_or(0) as u64,
        }),
        Symbolized::Unknown(_) => None,
    }
}

/// The readable form of a Rust or C++ symbol; other names (C functions,
/// which may look like Itanium type codes: `b`, `a`) as they are.
pub fn demangle(name: &str) -> String {
    if let Ok(rust) = rustc_demangle::try_demangle(name) {
        return format!("{rust:#}");
    }
    if name.starts_with("_Z")
        && let Ok(symbol) = cpp_demangle::Symbol::new(name)
        && let Ok(text) = symbol.demangle()
    {
        return text;
    }
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::demangle;

    #[test]
    fn demangles_only_mangled_names() {
        assert_eq!(demangle("b"), "b");
        assert_eq!(demangle("main"), "main");
        assert_eq!(demangle("_ZN3foo3barE"), "foo::bar");
        assert_eq!(demangle("_Z3fooi"), "foo(int)");
    }
}

//! Names for addresses, with blazesym: user addresses by (binary, file
//! offset) from the binary's ELF symbols, kernel addresses from kallsyms.
//! Results are cached per binary and offset (and per kernel address), so a
//! report that prints the same frames many times looks each up once.

use std::{collections::HashMap, path::Path, sync::Arc};

use blazesym::{
    MaybeDefault,
    symbolize::{
        Input, Symbolized, Symbolizer,
        source::{Elf, Kernel, Source},
    },
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
    kernel: HashMap<u64, Option<Symbol>>,
}

impl Default for Symbols {
    fn default() -> Self {
        Self {
            symbolizer: Symbolizer::builder()
                .enable_code_info(false)
                .enable_inlined_fns(false)
                .build(),
            user: HashMap::new(),
            kernel: HashMap::new(),
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

    /// The kernel symbol at `addr`, from /proc/kallsyms.
    pub fn kernel(&mut self, addr: u64) -> Option<Symbol> {
        if let Some(known) = self.kernel.get(&addr) {
            return known.clone();
        }
        let source = Source::Kernel(Kernel {
            kallsyms: MaybeDefault::Default,
            vmlinux: MaybeDefault::None,
            ..Kernel::default()
        });
        let found = self
            .symbolizer
            .symbolize_single(&source, Input::AbsAddr(addr))
            .ok()
            .and_then(symbol);
        self.kernel.insert(addr, found.clone());
        found
    }
}

fn symbol(symbolized: Symbolized<'_>) -> Option<Symbol> {
    match symbolized {
        Symbolized::Sym(sym) => Some(Symbol {
            name: sym.name.into_owned(),
            offset: sym.offset as u64,
            size: sym.size.unwrap_or(0) as u64,
        }),
        Symbolized::Unknown(_) => None,
    }
}

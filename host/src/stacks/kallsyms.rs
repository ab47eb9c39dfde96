//! Kernel symbols from `/proc/kallsyms`, read in the background.
//!
//! Reading and sorting the ~120k symbols takes longer than a handler's CPU
//! budget, so the table is loaded on a thread as soon as a script captures
//! its first kernel stack (long before the report prints it), and a lookup
//! waits for it only if it comes first.

use std::{fs, thread::JoinHandle};

use super::symbolize::Symbol;

/// A sorted kernel symbol table.
#[derive(Debug, Default)]
pub struct KernelSymbols {
    /// `(address, name, module)`, sorted by address; module is None for
    /// the kernel image.
    symbols: Vec<(u64, Box<str>, Option<Box<str>>)>,
}

impl KernelSymbols {
    /// Parses the text of `/proc/kallsyms`; keeps text symbols.
    pub fn parse(text: &str) -> Self {
        let mut symbols: Vec<_> = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_ascii_whitespace();
                let addr = u64::from_str_radix(fields.next()?, 16).ok()?;
                let kind = fields.next()?;
                if !matches!(kind, "t" | "T" | "w" | "W") || addr == 0 {
                    return None;
                }
                let name = fields.next()?;
                let module = fields
                    .next()
                    .map(|m| m.trim_start_matches('[').trim_end_matches(']').into());
                Some((addr, Box::from(name), module))
            })
            .collect();
        symbols.sort_by_key(|s| s.0);
        Self { symbols }
    }

    /// The symbol holding `addr` and its module (`kernel` for the image).
    /// A symbol's size is the distance to the next one, as the table does
    /// not record sizes.
    pub fn lookup(&self, addr: u64) -> Option<(Symbol, &str)> {
        let i = self
            .symbols
            .partition_point(|s| s.0 <= addr)
            .checked_sub(1)?;
        let (start, name, module) = &self.symbols[i];
        let next = self.symbols.get(i + 1).map_or(start + 1, |s| s.0);
        if addr >= next && i + 1 < self.symbols.len() {
            return None;
        }
        Some((
            Symbol {
                name: name.to_string(),
                offset: addr - start,
                size: next.saturating_sub(*start),
            },
            module.as_deref().unwrap_or("kernel"),
        ))
    }
}

/// The table, loading or loaded.
#[derive(Debug, Default)]
pub enum Loader {
    #[default]
    Idle,
    Loading(JoinHandle<KernelSymbols>),
    Ready(KernelSymbols),
}

impl Loader {
    /// Starts reading the table on a thread, once.
    pub fn start(&mut self) {
        if matches!(self, Self::Idle) {
            let handle = std::thread::Builder::new()
                .name("wasmtap-kallsyms".into())
                .spawn(|| {
                    KernelSymbols::parse(&fs::read_to_string("/proc/kallsyms").unwrap_or_default())
                });
            *self = match handle {
                Ok(handle) => Self::Loading(handle),
                Err(_) => Self::Ready(KernelSymbols::default()),
            };
        }
    }

    /// The table, waiting for it if it is still loading.
    pub fn get(&mut self) -> &KernelSymbols {
        self.start();
        if let Self::Loading(_) = self {
            let Self::Loading(handle) = std::mem::take(self) else {
                unreachable!("checked above");
            };
            *self = Self::Ready(handle.join().unwrap_or_default());
        }
        match self {
            Self::Ready(symbols) => symbols,
            _ => unreachable!("loaded above"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_text_symbols() {
        let table = KernelSymbols::parse(
            "ffffffff81000000 T _stext\n\
             ffffffff81000100 t do_one\n\
             ffffffff81000180 D some_data\n\
             ffffffff81000200 T do_two\n\
             ffffffffc0000000 t mod_fn\t[ext4]\n",
        );
        let (sym, module) = table.lookup(0xffffffff81000110).unwrap();
        assert_eq!(
            (sym.name.as_str(), sym.offset, sym.size, module),
            ("do_one", 0x10, 0x100, "kernel")
        );
        assert_eq!(table.lookup(0xffffffffc0000000).unwrap().1, "ext4");
        assert!(table.lookup(0x1000).is_none());
    }
}

//! `=~`: walks a DFA table the compiler built from the pattern (see the
//! compiler's `codegen::regex` for the layout). Linear in the subject; a
//! malformed table (never produced by the compiler) gives "no match".

use wasmtap_abi::wasm::regex_flag;

/// Whether the DFA `table` matches anywhere in `subject`.
pub fn matches(table: &[u8], subject: &[u8]) -> bool {
    walk(table, subject).unwrap_or(false)
}

fn walk(table: &[u8], subject: &[u8]) -> Option<bool> {
    let word = |i: usize| -> Option<usize> {
        let bytes = table.get(i * 4..i * 4 + 4)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?) as usize)
    };
    let (states, n_classes, mut s) = (word(0)?, word(1)?, word(2)?);
    let classes = table.get(12..12 + 256)?;
    let next_at = (12 + 256) / 4;
    let eoi_at = next_at + states * n_classes;
    let flags = table.get((eoi_at + states) * 4..)?;
    for &b in subject {
        s = word(next_at + s * n_classes + usize::from(classes[usize::from(b)]))?;
        let f = *flags.get(s)?;
        if f & regex_flag::MATCH != 0 {
            return Some(true);
        }
        if f & regex_flag::DEAD != 0 {
            return Some(false);
        }
    }
    Some(*flags.get(word(eoi_at + s)?)? & regex_flag::MATCH != 0)
}

//! USDT probes from `.note.stapsdt` (the format of `<sys/sdt.h>`): each
//! note (owner `stapsdt`, type 3) holds the probe's pc, the link-time
//! address of `.stapsdt.base`, the semaphore address, then the provider,
//! the name and the argument specs as NUL-terminated strings.

use wasmtap_compiler::catalog::{UsdtArg, UsdtLocation};

use super::regs;

/// One decoded note, addresses as linked (before the base adjustment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Note {
    pub pc: u64,
    pub base: u64,
    pub semaphore: u64,
    pub provider: String,
    pub name: String,
    pub args: Vec<UsdtArg>,
}

const NT_STAPSDT: u32 = 3;

/// Decodes the notes of a `.note.stapsdt` section (little-endian ELF64);
/// malformed notes end the walk.
pub(super) fn parse_notes(data: &[u8]) -> Vec<Note> {
    let mut notes = Vec::new();
    let mut at = 0usize;
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
    };
    while let (Some(namesz), Some(descsz), Some(kind)) =
        (u32_at(at), u32_at(at + 4), u32_at(at + 8))
    {
        let name_start = at + 12;
        let desc_start = name_start + (namesz as usize).next_multiple_of(4);
        let next = desc_start + (descsz as usize).next_multiple_of(4);
        let (Some(owner), Some(desc)) = (
            data.get(name_start..name_start + namesz as usize),
            data.get(desc_start..desc_start + descsz as usize),
        ) else {
            break;
        };
        if kind == NT_STAPSDT
            && owner == b"stapsdt\0"
            && let Some(note) = parse_desc(desc)
        {
            notes.push(note);
        }
        at = next;
    }
    notes
}

fn parse_desc(desc: &[u8]) -> Option<Note> {
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(desc.get(at..at + 8)?.try_into().ok()?))
    };
    let (pc, base, semaphore) = (u64_at(0)?, u64_at(8)?, u64_at(16)?);
    let mut strings = desc.get(24..)?.split(|&b| b == 0);
    let mut next = || {
        strings
            .next()
            .map(|s| String::from_utf8_lossy(s).into_owned())
    };
    let provider = next()?;
    let name = next()?;
    let args = next().unwrap_or_default();
    Some(Note {
        pc,
        base,
        semaphore,
        provider,
        name,
        args: args.split_whitespace().map(parse_arg).collect(),
    })
}

/// Decodes one argument spec: `[-]SIZE@OPERAND` where the operand is
/// `%reg`, `$imm`, `disp(%reg)` or `(%reg)`; no size means 8 unsigned bytes.
pub(super) fn parse_arg(spec: &str) -> UsdtArg {
    let (size, signed, operand) = match spec.split_once('@') {
        Some((size, operand)) if size.trim_start_matches('-').parse::<u8>().is_ok() => {
            let signed = size.starts_with('-');
            let size = size.trim_start_matches('-').parse::<u8>().unwrap_or(8);
            (size, signed, operand)
        }
        _ => (8, false, spec),
    };
    let location = parse_operand(operand).unwrap_or(UsdtLocation::Unsupported);
    UsdtArg {
        spec: spec.to_string(),
        size,
        signed,
        location,
    }
}

fn parse_operand(operand: &str) -> Option<UsdtLocation> {
    if let Some(reg) = operand.strip_prefix('%') {
        return regs::att_register(reg).map(UsdtLocation::Register);
    }
    if let Some(imm) = operand.strip_prefix('$') {
        return parse_int(imm).map(UsdtLocation::Constant);
    }
    let (disp, rest) = operand.split_once('(')?;
    let reg = rest.strip_suffix(')')?.strip_prefix('%')?;
    let disp = if disp.is_empty() { 0 } else { parse_int(disp)? };
    Some(UsdtLocation::Memory {
        base: regs::att_register(reg)?,
        disp,
    })
}

fn parse_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let value = match digits.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok()?,
        None => digits.parse().ok()?,
    };
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_argument_specs() {
        let arg = parse_arg("-4@%edi");
        assert_eq!((arg.size, arg.signed), (4, true));
        assert_eq!(arg.location, UsdtLocation::Register(112));
        let arg = parse_arg("8@-16(%rbp)");
        assert_eq!((arg.size, arg.signed), (8, false));
        assert_eq!(
            arg.location,
            UsdtLocation::Memory {
                base: 32,
                disp: -16
            }
        );
        assert_eq!(parse_arg("4@$5").location, UsdtLocation::Constant(5));
        assert_eq!(parse_arg("-1@$-3").location, UsdtLocation::Constant(-3));
        assert_eq!(
            parse_arg("8@(%rax)").location,
            UsdtLocation::Memory { base: 80, disp: 0 }
        );
        assert_eq!(parse_arg("%rsi").location, UsdtLocation::Register(104));
        assert_eq!(parse_arg("8@%ah").location, UsdtLocation::Unsupported);
        assert_eq!(
            parse_arg("8@16(%rax,%rbx,8)").location,
            UsdtLocation::Unsupported
        );
    }

    #[test]
    fn decodes_a_note() {
        let mut desc = Vec::new();
        desc.extend_from_slice(&0x1139u64.to_le_bytes());
        desc.extend_from_slice(&0x2004u64.to_le_bytes());
        desc.extend_from_slice(&0u64.to_le_bytes());
        desc.extend_from_slice(b"app\0tick\0-4@%edi 8@%rsi\0");
        let mut note = Vec::new();
        note.extend_from_slice(&8u32.to_le_bytes());
        note.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        note.extend_from_slice(&NT_STAPSDT.to_le_bytes());
        note.extend_from_slice(b"stapsdt\0");
        note.extend_from_slice(&desc);
        note.resize(note.len().next_multiple_of(4), 0);
        let notes = parse_notes(&note);
        assert_eq!(notes.len(), 1);
        assert_eq!(notes[0].pc, 0x1139);
        assert_eq!(notes[0].base, 0x2004);
        assert_eq!(
            (notes[0].provider.as_str(), notes[0].name.as_str()),
            ("app", "tick")
        );
        assert_eq!(notes[0].args.len(), 2);
    }
}

//! x86_64 register numberings mapped to byte offsets in `struct pt_regs`,
//! the layout the uprobe programs see: DWARF register numbers (System V
//! psABI, table 3.36), the integer argument registers of the calling
//! convention, and the AT&T names USDT argument specs use.

/// `pt_regs` offset of DWARF register `number` (general purpose only).
pub fn dwarf_register(number: u16) -> Option<u16> {
    Some(match number {
        0 => AX,
        1 => DX,
        2 => CX,
        3 => BX,
        4 => SI,
        5 => DI,
        6 => BP,
        7 => SP,
        8 => R8,
        9 => R9,
        10 => R10,
        11 => R11,
        12 => R12,
        13 => R13,
        14 => R14,
        15 => R15,
        _ => return None,
    })
}

/// `pt_regs` offset of the stack pointer: stack-passed arguments are read
/// relative to it.
pub const STACK_POINTER: u16 = SP;

/// The registers that carry the first six integer or pointer arguments.
pub const ARGUMENT_REGISTERS: [u16; 6] = [DI, SI, DX, CX, R8, R9];

/// `pt_regs` offset of the register an AT&T operand names without its `%`
/// (`rdi`, `edi`, `di`, `dil`, `r8d`...); high-byte registers (`ah`) are
/// not supported.
pub fn att_register(name: &str) -> Option<u16> {
    let legacy = |base: &str| -> Option<u16> {
        Some(match base {
            "ax" => AX,
            "bx" => BX,
            "cx" => CX,
            "dx" => DX,
            "si" => SI,
            "di" => DI,
            "bp" => BP,
            "sp" => SP,
            "ip" => IP,
            _ => return None,
        })
    };
    if let Some(rest) = name.strip_prefix('r')
        && let Some(digits_end) = rest
            .find(|c: char| !c.is_ascii_digit())
            .or(Some(rest.len()))
        && digits_end > 0
    {
        let (number, suffix) = rest.split_at(digits_end);
        if !matches!(suffix, "" | "d" | "w" | "b") {
            return None;
        }
        return match number.parse::<u16>().ok()? {
            n @ 8..=15 => dwarf_register(n),
            _ => None,
        };
    }
    if let Some(base) = name.strip_prefix('r').or_else(|| name.strip_prefix('e')) {
        return legacy(base);
    }
    match name {
        "al" => Some(AX),
        "bl" => Some(BX),
        "cl" => Some(CX),
        "dl" => Some(DX),
        "sil" => Some(SI),
        "dil" => Some(DI),
        "bpl" => Some(BP),
        "spl" => Some(SP),
        _ => legacy(name),
    }
}

const R15: u16 = 0;
const R14: u16 = 8;
const R13: u16 = 16;
const R12: u16 = 24;
const BP: u16 = 32;
const BX: u16 = 40;
const R11: u16 = 48;
const R10: u16 = 56;
const R9: u16 = 64;
const R8: u16 = 72;
/// `pt_regs` offset of `rax`: a function's return value.
pub const AX: u16 = 80;
const CX: u16 = 88;
const DX: u16 = 96;
const SI: u16 = 104;
const DI: u16 = 112;
const IP: u16 = 128;
const SP: u16 = 152;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_pt_regs() {
        assert_eq!(att_register("rdi"), Some(DI));
        assert_eq!(att_register("edi"), Some(DI));
        assert_eq!(att_register("dil"), Some(DI));
        assert_eq!(att_register("r8d"), Some(R8));
        assert_eq!(att_register("r15"), Some(R15));
        assert_eq!(att_register("rbp"), Some(BP));
        assert_eq!(att_register("ax"), Some(AX));
        assert_eq!(att_register("ah"), None);
        assert_eq!(att_register("r16"), None);
        assert_eq!(dwarf_register(5), Some(DI));
        assert_eq!(dwarf_register(16), None);
    }
}

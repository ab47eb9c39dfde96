//! Functions and their formal parameters from DWARF.
//!
//! # Where parameters are read
//! Probes sit on a function's entry address (the symbol's address, before
//! the prologue), not after the prologue as stap places them: a uretprobe
//! must sit there anyway, and at that instant the System V calling
//! convention fixes where arguments are. So a parameter's location is:
//! 1. the register DWARF names for the entry pc (`DW_OP_reg*`, directly or
//!    in the location-list entry that covers the entry pc: what gcc -O2
//!    emits);
//! 2. otherwise, when DWARF places it in the frame (`DW_OP_fbreg` with a
//!    `DW_OP_call_frame_cfa` frame base, what gcc -O0 emits: the prologue
//!    has not stored it yet) or says nothing, the integer argument register
//!    the calling convention assigns it (`rdi`, `rsi`, `rdx`, `rcx`, `r8`,
//!    `r9`), for functions that follow the convention (not gcc's `.isra` /
//!    `.constprop` clones);
//! 3. otherwise unavailable (printed as `?`).

use std::borrow::Cow;

use gimli::{AttributeValue, DebuggingInformationEntry, EndianSlice, RunTimeEndian, UnitOffset};
use object::{Object, ObjectSection};
use wasmtap_compiler::catalog::{TypeClass, UserParam, UserType, ValueLocation};

use super::regs;

type R<'a> = EndianSlice<'a, RunTimeEndian>;
type Dwarf<'a> = gimli::Dwarf<R<'a>>;
type Unit<'a> = gimli::Unit<R<'a>>;
type Entry<'a> = DebuggingInformationEntry<R<'a>>;

/// A function DWARF describes with an entry address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct DwarfFunction {
    pub name: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub low_pc: u64,
    pub params: Vec<UserParam>,
    pub return_type: Option<UserType>,
}

/// Every defined function of every compilation unit; empty without DWARF.
pub(super) fn functions(object: &object::File) -> Result<Vec<DwarfFunction>, gimli::Error> {
    let load = |id: gimli::SectionId| -> Result<Cow<'_, [u8]>, gimli::Error> {
        Ok(object
            .section_by_name(id.name())
            .and_then(|section| section.uncompressed_data().ok())
            .unwrap_or(Cow::Borrowed(&[])))
    };
    let sections = gimli::DwarfSections::load(load)?;
    let endian = if object.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    let dwarf = sections.borrow(|section| EndianSlice::new(section, endian));
    let mut out = Vec::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        unit_functions(&dwarf, &unit, &mut out)?;
    }
    Ok(out)
}

/// A function whose parameters are still being collected.
struct Pending {
    depth: isize,
    function: DwarfFunction,
    /// Raw locations, resolved once every parameter is known.
    locations: Vec<Location>,
}

fn unit_functions<'a>(
    dwarf: &Dwarf<'a>,
    unit: &Unit<'a>,
    out: &mut Vec<DwarfFunction>,
) -> Result<(), gimli::Error> {
    let mut cursor = unit.entries();
    let mut pending: Option<Pending> = None;
    while let Some(entry) = cursor.next_dfs()? {
        let depth = entry.depth();
        if pending.as_ref().is_some_and(|p| depth <= p.depth) {
            out.extend(pending.take().map(finish));
        }
        match entry.tag() {
            gimli::DW_TAG_subprogram => {
                if let Some(function) = subprogram(dwarf, unit, entry)? {
                    out.extend(pending.take().map(finish));
                    pending = Some(Pending {
                        depth,
                        function,
                        locations: Vec::new(),
                    });
                }
            }
            gimli::DW_TAG_formal_parameter => {
                if let Some(p) = pending.as_mut().filter(|p| depth == p.depth + 1) {
                    let origin = origin_chain(unit, entry);
                    let name = find_attr(entry, &origin, gimli::DW_AT_name)
                        .and_then(|v| string(dwarf, unit, v))
                        .unwrap_or_else(|| format!("arg{}", p.function.params.len() + 1));
                    let ty = find_attr(entry, &origin, gimli::DW_AT_type)
                        .map_or_else(unknown_type, |v| type_of(dwarf, unit, v, 0));
                    let location = location(
                        dwarf,
                        unit,
                        entry.attr_value(gimli::DW_AT_location),
                        p.function.low_pc,
                    )?;
                    p.function.params.push(UserParam {
                        name,
                        ty,
                        location: ValueLocation::Unavailable,
                    });
                    p.locations.push(location);
                }
            }
            _ => {}
        }
    }
    out.extend(pending.take().map(finish));
    Ok(())
}

/// The function of a `DW_TAG_subprogram` with code, or `None` for
/// declarations, abstract inline instances and discarded code.
fn subprogram<'a>(
    dwarf: &Dwarf<'a>,
    unit: &Unit<'a>,
    entry: &Entry<'a>,
) -> Result<Option<DwarfFunction>, gimli::Error> {
    if entry.attr_value(gimli::DW_AT_declaration).is_some() {
        return Ok(None);
    }
    let Some(low_pc) = entry.attr_value(gimli::DW_AT_low_pc) else {
        return Ok(None);
    };
    let low_pc = dwarf.attr_address(unit, low_pc)?.unwrap_or(0);
    if low_pc == 0 {
        return Ok(None);
    }
    let origin = origin_chain(unit, entry);
    let Some(name) =
        find_attr(entry, &origin, gimli::DW_AT_name).and_then(|v| string(dwarf, unit, v))
    else {
        return Ok(None);
    };
    let file = find_attr(entry, &origin, gimli::DW_AT_decl_file).and_then(|v| {
        let index = match v {
            AttributeValue::FileIndex(index) => index,
            other => other.udata_value()?,
        };
        file_name(dwarf, unit, index)
    });
    let line = find_attr(entry, &origin, gimli::DW_AT_decl_line)
        .and_then(|v| v.udata_value())
        .map(|line| line as u32);
    let return_type =
        find_attr(entry, &origin, gimli::DW_AT_type).map(|v| type_of(dwarf, unit, v, 0));
    Ok(Some(DwarfFunction {
        name,
        file,
        line,
        low_pc,
        params: Vec::new(),
        return_type,
    }))
}

/// The entries a concrete instance takes its name and types from
/// (`DW_AT_abstract_origin`, `DW_AT_specification`), nearest first.
fn origin_chain<'a>(unit: &Unit<'a>, entry: &Entry<'a>) -> Vec<Entry<'a>> {
    let mut chain: Vec<Entry<'a>> = Vec::new();
    let mut next = origin_of(entry);
    while let Some(offset) = next
        && chain.len() < 4
    {
        let Ok(origin) = unit.entry(offset) else {
            break;
        };
        next = origin_of(&origin);
        chain.push(origin);
    }
    chain
}

fn origin_of(entry: &Entry) -> Option<UnitOffset> {
    [gimli::DW_AT_abstract_origin, gimli::DW_AT_specification]
        .into_iter()
        .find_map(|at| match entry.attr_value(at) {
            Some(AttributeValue::UnitRef(offset)) => Some(offset),
            _ => None,
        })
}

fn find_attr<'a>(
    entry: &Entry<'a>,
    origins: &[Entry<'a>],
    at: gimli::DwAt,
) -> Option<AttributeValue<R<'a>>> {
    std::iter::once(entry)
        .chain(origins)
        .find_map(|e| e.attr_value(at))
}

fn string<'a>(dwarf: &Dwarf<'a>, unit: &Unit<'a>, value: AttributeValue<R<'a>>) -> Option<String> {
    let text = dwarf.attr_string(unit, value).ok()?;
    Some(text.to_string_lossy().into_owned())
}

/// The path of file `index` of the unit's line table, made absolute with
/// its directory and the unit's compilation directory.
fn file_name<'a>(dwarf: &Dwarf<'a>, unit: &Unit<'a>, index: u64) -> Option<String> {
    let program = unit.line_program.as_ref()?;
    let header = program.header();
    let file = header.file(index)?;
    let name = string(dwarf, unit, file.path_name())?;
    if name.starts_with('/') {
        return Some(name);
    }
    let mut path = std::path::PathBuf::new();
    if let Some(comp_dir) = &unit.comp_dir {
        path.push(comp_dir.to_string_lossy().as_ref());
    }
    if let Some(dir) = file.directory(header).and_then(|d| string(dwarf, unit, d)) {
        path.push(dir);
    }
    path.push(name);
    Some(path.to_string_lossy().into_owned())
}

fn unknown_type() -> UserType {
    UserType {
        name: "long".to_string(),
        size: 8,
        class: TypeClass::Signed,
    }
}

/// The C type `value` refers to, spelled as stap does (`char const*`).
fn type_of<'a>(
    dwarf: &Dwarf<'a>,
    unit: &Unit<'a>,
    value: AttributeValue<R<'a>>,
    depth: u8,
) -> UserType {
    let void = || UserType {
        name: "void".to_string(),
        size: 0,
        class: TypeClass::Aggregate,
    };
    let AttributeValue::UnitRef(offset) = value else {
        return unknown_type();
    };
    let Ok(entry) = unit.entry(offset) else {
        return unknown_type();
    };
    if depth > 16 {
        return unknown_type();
    }
    let inner = || {
        entry
            .attr_value(gimli::DW_AT_type)
            .map_or_else(void, |v| type_of(dwarf, unit, v, depth + 1))
    };
    let name = entry
        .attr_value(gimli::DW_AT_name)
        .and_then(|v| string(dwarf, unit, v));
    let size = entry
        .attr_value(gimli::DW_AT_byte_size)
        .and_then(|v| v.udata_value())
        .unwrap_or(0) as u32;
    let named = |prefix: &str| match &name {
        Some(n) if prefix.is_empty() => n.clone(),
        Some(n) => format!("{prefix} {n}"),
        None => format!("{prefix} {{...}}").trim().to_string(),
    };
    match entry.tag() {
        gimli::DW_TAG_base_type => {
            let class = match entry.attr_value(gimli::DW_AT_encoding) {
                Some(AttributeValue::Encoding(gimli::DW_ATE_float)) => TypeClass::Float,
                Some(AttributeValue::Encoding(
                    gimli::DW_ATE_signed | gimli::DW_ATE_signed_char,
                )) => TypeClass::Signed,
                _ => TypeClass::Unsigned,
            };
            UserType {
                name: named(""),
                size,
                class,
            }
        }
        gimli::DW_TAG_pointer_type
        | gimli::DW_TAG_reference_type
        | gimli::DW_TAG_rvalue_reference_type => UserType {
            name: format!("{}*", inner().name),
            size: 8,
            class: TypeClass::Pointer,
        },
        gimli::DW_TAG_const_type => {
            let inner = inner();
            UserType {
                name: format!("{} const", inner.name),
                ..inner
            }
        }
        gimli::DW_TAG_volatile_type => {
            let inner = inner();
            UserType {
                name: format!("{} volatile", inner.name),
                ..inner
            }
        }
        gimli::DW_TAG_typedef => UserType {
            name: named(""),
            ..inner()
        },
        gimli::DW_TAG_structure_type => UserType {
            name: named("struct"),
            size,
            class: TypeClass::Aggregate,
        },
        gimli::DW_TAG_union_type => UserType {
            name: named("union"),
            size,
            class: TypeClass::Aggregate,
        },
        gimli::DW_TAG_class_type => UserType {
            name: named("class"),
            size,
            class: TypeClass::Aggregate,
        },
        gimli::DW_TAG_enumeration_type => UserType {
            name: named("enum"),
            size,
            class: if entry.attr_value(gimli::DW_AT_type).is_some() {
                inner().class
            } else {
                TypeClass::Unsigned
            },
        },
        gimli::DW_TAG_subroutine_type => UserType {
            name: format!("{}()", inner().name),
            size: 0,
            class: TypeClass::Aggregate,
        },
        gimli::DW_TAG_array_type => UserType {
            name: format!("{}[]", inner().name),
            size,
            class: TypeClass::Aggregate,
        },
        // restrict, atomic and the like qualify without changing the value.
        _ => inner(),
    }
}

/// What DWARF says about a parameter's place at the entry pc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Location {
    Register(u16),
    /// In the frame (not stored yet at the entry pc) or not described.
    Convention,
    /// Somewhere else (an expression wasmtap does not evaluate).
    Unknown,
}

fn location<'a>(
    dwarf: &Dwarf<'a>,
    unit: &Unit<'a>,
    value: Option<AttributeValue<R<'a>>>,
    entry_pc: u64,
) -> Result<Location, gimli::Error> {
    let Some(value) = value else {
        return Ok(Location::Convention);
    };
    if let AttributeValue::Exprloc(expression) = value {
        return Ok(classify(expression.0.slice()));
    }
    let Some(mut list) = dwarf.attr_locations(unit, value)? else {
        return Ok(Location::Unknown);
    };
    while let Some(entry) = list.next()? {
        if entry.range.begin <= entry_pc && entry_pc < entry.range.end {
            return Ok(classify(entry.data.0.slice()));
        }
    }
    Ok(Location::Convention)
}

/// The first operation of a location expression.
fn classify(expression: &[u8]) -> Location {
    const DW_OP_REG0: u8 = 0x50;
    const DW_OP_REG31: u8 = 0x6f;
    const DW_OP_BREG6: u8 = 0x76;
    const DW_OP_BREG7: u8 = 0x77;
    const DW_OP_REGX: u8 = 0x90;
    const DW_OP_FBREG: u8 = 0x91;
    let register = |n: u16| regs::dwarf_register(n).map_or(Location::Unknown, Location::Register);
    match expression.first() {
        Some(&op @ DW_OP_REG0..=DW_OP_REG31) => register(u16::from(op - DW_OP_REG0)),
        Some(&DW_OP_REGX) => match expression.get(1) {
            Some(&n) if n < 0x80 => register(u16::from(n)),
            _ => Location::Unknown,
        },
        Some(&(DW_OP_FBREG | DW_OP_BREG6 | DW_OP_BREG7)) => Location::Convention,
        _ => Location::Unknown,
    }
}

/// Turns raw locations into registers, applying the calling convention
/// where DWARF places a parameter in the frame.
fn finish(pending: Pending) -> DwarfFunction {
    let Pending {
        mut function,
        locations,
        ..
    } = pending;
    let follows_convention = !function.name.contains('.');
    // A struct returned in memory takes rdi for its hidden pointer.
    let mut next = usize::from(
        function
            .return_type
            .as_ref()
            .is_some_and(|t| t.class == TypeClass::Aggregate && t.size > 16),
    );
    let mut convention_known = follows_convention;
    for (param, location) in function.params.iter_mut().zip(locations) {
        let register = match param.ty.class {
            TypeClass::Signed | TypeClass::Unsigned | TypeClass::Pointer if param.ty.size <= 8 => {
                let slot = regs::ARGUMENT_REGISTERS.get(next).copied();
                next += 1;
                slot
            }
            TypeClass::Float => None,
            // By-value aggregates up to 16 bytes may take one or two
            // integer registers: the count is lost from here on.
            TypeClass::Aggregate if param.ty.size <= 16 => {
                convention_known = false;
                None
            }
            _ => None,
        };
        param.location = match location {
            Location::Register(reg) => ValueLocation::Register(reg),
            Location::Convention if convention_known => {
                register.map_or(ValueLocation::Unavailable, ValueLocation::Register)
            }
            _ => ValueLocation::Unavailable,
        };
    }
    function
}

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

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap},
};

use gimli::{AttributeValue, DebuggingInformationEntry, EndianSlice, RunTimeEndian, UnitOffset};
use object::{Object, ObjectSection};
use wasmtap_compiler::catalog::{
    TypeClass, TypeShape, UserMember, UserParam, UserType, ValueLocation,
};

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

/// Every defined function of every compilation unit (empty without DWARF),
/// and the types their parameters and the units' named types use.
pub(super) fn functions(
    object: &object::File,
) -> Result<(Vec<DwarfFunction>, Types), gimli::Error> {
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
    let mut types = Types::default();
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        unit_functions(&mut types, &dwarf, &unit, &mut out)?;
    }
    Ok((out, types))
}

/// A function whose parameters are still being collected.
struct Pending {
    depth: isize,
    function: DwarfFunction,
    /// Raw locations, resolved once every parameter is known.
    locations: Vec<Location>,
}

fn unit_functions<'a>(
    types: &mut Types,
    dwarf: &Dwarf<'a>,
    unit: &Unit<'a>,
    out: &mut Vec<DwarfFunction>,
) -> Result<(), gimli::Error> {
    types.next_unit();
    let mut cursor = unit.entries();
    let mut pending: Option<Pending> = None;
    while let Some(entry) = cursor.next_dfs()? {
        let depth = entry.depth();
        if pending.as_ref().is_some_and(|p| depth <= p.depth) {
            out.extend(pending.take().map(finish));
        }
        if depth == 1 {
            types.name_top_level(dwarf, unit, entry);
        }
        match entry.tag() {
            gimli::DW_TAG_subprogram => {
                if let Some(function) = subprogram(types, dwarf, unit, entry)? {
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
                        .map_or_else(unknown_type, |v| types.of(dwarf, unit, v, 0));
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
    types: &mut Types,
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
        find_attr(entry, &origin, gimli::DW_AT_type).map(|v| types.of(dwarf, unit, v, 0));
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
    UserType::scalar("long", 8, TypeClass::Signed)
}

/// The C types of a binary as the compiler's [`TypeShape`] table, built as
/// parameters and named types are met. Types are memoized per unit by entry
/// offset, and a struct is memoized before its members are read, so
/// self-referencing structs (`struct req *next`) end.
#[derive(Default)]
pub(super) struct Types {
    pub shapes: Vec<TypeShape>,
    pub named: BTreeMap<String, UserType>,
    /// Types of the current unit by entry offset; cleared per unit.
    memo: HashMap<UnitOffset, UserType>,
}

impl Types {
    /// Forgets the current unit's entry offsets (they mean other entries
    /// in the next unit).
    fn next_unit(&mut self) {
        self.memo.clear();
    }

    /// The C type `value` refers to, spelled as stap does (`char const*`).
    fn of<'a>(
        &mut self,
        dwarf: &Dwarf<'a>,
        unit: &Unit<'a>,
        value: AttributeValue<R<'a>>,
        depth: u8,
    ) -> UserType {
        match value {
            AttributeValue::UnitRef(offset) => self.entry_type(dwarf, unit, offset, depth),
            _ => unknown_type(),
        }
    }

    /// The type of the entry at `offset`.
    fn entry_type<'a>(
        &mut self,
        dwarf: &Dwarf<'a>,
        unit: &Unit<'a>,
        offset: UnitOffset,
        depth: u8,
    ) -> UserType {
        if let Some(known) = self.memo.get(&offset) {
            return known.clone();
        }
        let Ok(entry) = unit.entry(offset) else {
            return unknown_type();
        };
        if depth > 16 {
            return unknown_type();
        }
        let ty = self.build(dwarf, unit, &entry, offset, depth);
        self.memo.insert(offset, ty.clone());
        ty
    }

    fn inner<'a>(
        &mut self,
        dwarf: &Dwarf<'a>,
        unit: &Unit<'a>,
        entry: &Entry<'a>,
        depth: u8,
    ) -> UserType {
        match entry.attr_value(gimli::DW_AT_type) {
            Some(v) => self.of(dwarf, unit, v, depth + 1),
            None => UserType::scalar("void", 0, TypeClass::Aggregate),
        }
    }

    fn build<'a>(
        &mut self,
        dwarf: &Dwarf<'a>,
        unit: &Unit<'a>,
        entry: &Entry<'a>,
        offset: UnitOffset,
        depth: u8,
    ) -> UserType {
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
                UserType::scalar(&named(""), size, class)
            }
            gimli::DW_TAG_pointer_type
            | gimli::DW_TAG_reference_type
            | gimli::DW_TAG_rvalue_reference_type => {
                let target = self.inner(dwarf, unit, entry, depth);
                let name = format!("{}*", target.name);
                UserType {
                    name,
                    size: 8,
                    class: TypeClass::Pointer,
                    shape: Some(self.push(TypeShape::Pointer(target))),
                }
            }
            gimli::DW_TAG_const_type => {
                let inner = self.inner(dwarf, unit, entry, depth);
                UserType {
                    name: format!("{} const", inner.name),
                    ..inner
                }
            }
            gimli::DW_TAG_volatile_type => {
                let inner = self.inner(dwarf, unit, entry, depth);
                UserType {
                    name: format!("{} volatile", inner.name),
                    ..inner
                }
            }
            gimli::DW_TAG_typedef => UserType {
                name: named(""),
                ..self.inner(dwarf, unit, entry, depth)
            },
            tag @ (gimli::DW_TAG_structure_type
            | gimli::DW_TAG_union_type
            | gimli::DW_TAG_class_type) => {
                let prefix = match tag {
                    gimli::DW_TAG_union_type => "union",
                    gimli::DW_TAG_class_type => "class",
                    _ => "struct",
                };
                let mut ty = UserType::scalar(&named(prefix), size, TypeClass::Aggregate);
                if entry.attr_value(gimli::DW_AT_declaration).is_some() {
                    // Incomplete here; the compiler looks the name up in
                    // `named_types` for the members.
                    return ty;
                }
                let id = self.push(TypeShape::Record(Vec::new()));
                ty.shape = Some(id);
                self.memo.insert(offset, ty.clone());
                let members = self.members(dwarf, unit, offset, depth);
                self.shapes[id as usize] = TypeShape::Record(members);
                ty
            }
            gimli::DW_TAG_enumeration_type => {
                let class = if entry.attr_value(gimli::DW_AT_type).is_some() {
                    self.inner(dwarf, unit, entry, depth).class
                } else {
                    TypeClass::Unsigned
                };
                UserType::scalar(&named("enum"), size, class)
            }
            gimli::DW_TAG_subroutine_type => {
                let ret = self.inner(dwarf, unit, entry, depth);
                UserType::scalar(&format!("{}()", ret.name), 0, TypeClass::Aggregate)
            }
            gimli::DW_TAG_array_type => {
                let element = self.inner(dwarf, unit, entry, depth);
                let count = array_count(unit, offset);
                let name = if count == 0 {
                    format!("{}[]", element.name)
                } else {
                    format!("{}[{count}]", element.name)
                };
                let size = if size == 0 {
                    element.size.saturating_mul(count)
                } else {
                    size
                };
                let shape = self.push(TypeShape::Array { element, count });
                UserType {
                    name,
                    size,
                    class: TypeClass::Aggregate,
                    shape: Some(shape),
                }
            }
            // restrict, atomic and the like qualify without changing the value.
            _ => self.inner(dwarf, unit, entry, depth),
        }
    }

    fn push(&mut self, shape: TypeShape) -> u32 {
        self.shapes.push(shape);
        (self.shapes.len() - 1) as u32
    }

    /// The `DW_TAG_member` children of the record at `offset`.
    fn members<'a>(
        &mut self,
        dwarf: &Dwarf<'a>,
        unit: &Unit<'a>,
        offset: UnitOffset,
        depth: u8,
    ) -> Vec<UserMember> {
        let mut members = Vec::new();
        for child in children(unit, offset) {
            if child.tag() != gimli::DW_TAG_member {
                continue;
            }
            let name = child
                .attr_value(gimli::DW_AT_name)
                .and_then(|v| string(dwarf, unit, v))
                .unwrap_or_default();
            let ty = match child.attr_value(gimli::DW_AT_type) {
                Some(v) => self.of(dwarf, unit, v, depth + 1),
                None => unknown_type(),
            };
            let offset = child
                .attr_value(gimli::DW_AT_data_member_location)
                .and_then(|v| v.udata_value())
                .unwrap_or(0) as u32;
            let bit_field = child.attr_value(gimli::DW_AT_bit_size).is_some();
            members.push(UserMember {
                name,
                offset,
                ty,
                bit_field,
            });
        }
        members
    }

    /// Records the named types defined at the top of a unit.
    fn name_top_level<'a>(&mut self, dwarf: &Dwarf<'a>, unit: &Unit<'a>, entry: &Entry<'a>) {
        let defines = matches!(
            entry.tag(),
            gimli::DW_TAG_structure_type
                | gimli::DW_TAG_union_type
                | gimli::DW_TAG_class_type
                | gimli::DW_TAG_typedef
                | gimli::DW_TAG_enumeration_type
        );
        if !defines
            || entry.attr_value(gimli::DW_AT_declaration).is_some()
            || entry.attr_value(gimli::DW_AT_name).is_none()
        {
            return;
        }
        let ty = self.entry_type(dwarf, unit, entry.offset(), 0);
        self.named.entry(ty.name.clone()).or_insert(ty);
    }
}

/// The children of the entry at `offset` (empty when DWARF is malformed).
fn children<'a>(unit: &Unit<'a>, offset: UnitOffset) -> Vec<Entry<'a>> {
    let mut out = Vec::new();
    let Ok(mut tree) = unit.entries_tree(Some(offset)) else {
        return out;
    };
    let Ok(root) = tree.root() else {
        return out;
    };
    let mut iter = root.children();
    while let Ok(Some(child)) = iter.next() {
        out.push(child.entry().clone());
    }
    out
}

/// Elements of the array type at `offset`, from its first subrange (0 when
/// unknown, as for `char name[]`).
fn array_count(unit: &Unit, offset: UnitOffset) -> u32 {
    children(unit, offset)
        .iter()
        .find(|c| c.tag() == gimli::DW_TAG_subrange_type)
        .and_then(|range| {
            range
                .attr_value(gimli::DW_AT_count)
                .and_then(|v| v.udata_value())
                .or_else(|| {
                    range
                        .attr_value(gimli::DW_AT_upper_bound)
                        .and_then(|v| v.udata_value())
                        .map(|ub| ub + 1)
                })
        })
        .unwrap_or(0) as u32
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
    // Bytes of stack arguments so far: the first sits at sp + 8, above the
    // return address.
    let mut stack: i32 = 0;
    let mut on_stack = |size: u32| {
        let at = ValueLocation::Memory {
            base: regs::STACK_POINTER,
            disp: 8 + stack,
        };
        stack += size.div_ceil(8) as i32 * 8;
        at
    };
    for (param, location) in function.params.iter_mut().zip(locations) {
        let convention = match param.ty.class {
            TypeClass::Signed | TypeClass::Unsigned | TypeClass::Pointer if param.ty.size <= 8 => {
                let slot = regs::ARGUMENT_REGISTERS.get(next).copied();
                next += 1;
                Some(slot.map_or_else(|| on_stack(8), ValueLocation::Register))
            }
            TypeClass::Float => None,
            // By-value aggregates up to 16 bytes may take one or two
            // integer registers: the count is lost from here on.
            TypeClass::Aggregate if param.ty.size <= 16 => {
                convention_known = false;
                None
            }
            // Larger ones are copied to the stack.
            TypeClass::Aggregate => Some(on_stack(param.ty.size)),
            _ => None,
        };
        param.location = match location {
            Location::Register(reg) => ValueLocation::Register(reg),
            Location::Convention if convention_known => {
                convention.unwrap_or(ValueLocation::Unavailable)
            }
            _ => ValueLocation::Unavailable,
        };
    }
    function
}

//! Kernel struct offsets from the running kernel's BTF.
//!
//! The task ops (`TaskChain`, `ParentTgid`, `EuidEgid`, `Cmdline`) walk
//! `task_struct`, `cred` and `mm_struct`, whose layouts change with every
//! kernel build. Rather than CO-RE relocations in the eBPF object, the host
//! reads the offsets from `/sys/kernel/btf/vmlinux` at load and hands them
//! to the programs in [`Config::task`](wasmtap_abi::Config). Only the small
//! part of the BTF format needed for that is parsed here: type records,
//! struct and union members (with anonymous nested members, as in
//! `mm_struct`), and names.

use std::{borrow::Cow, path::Path};

use wasmtap_abi::TaskOffsets;

use super::KernelError;

/// Where the running kernel publishes its BTF.
pub(crate) const VMLINUX_BTF: &str = "/sys/kernel/btf/vmlinux";

const BTF_MAGIC: u16 = 0xeb9f;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// One type record: what member lookup needs.
#[derive(Clone, Debug)]
struct Type {
    name_off: u32,
    kind: u32,
    /// The referenced type (typedef, const, ...).
    target: u32,
    /// Struct and union members.
    members: Vec<Member>,
}

#[derive(Clone, Copy, Debug)]
struct Member {
    name_off: u32,
    ty: u32,
    /// Offset in bits from the start of the enclosing type.
    bit_offset: u32,
}

/// A parsed BTF blob: its types (index = type id) and string section.
pub(crate) struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
}

impl Btf {
    /// Parses the BTF at `path`.
    pub(crate) fn from_file(path: &Path) -> Result<Self, KernelError> {
        let data = std::fs::read(path).map_err(|source| KernelError::ReadBtf {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&data).map_err(|reason| KernelError::ParseBtf {
            path: path.to_owned(),
            reason,
        })
    }

    /// Parses a native-endian BTF blob.
    fn parse(data: &[u8]) -> Result<Self, String> {
        let u32_at = |at: usize| -> Result<u32, String> {
            data.get(at..at + 4)
                .map(|b| u32::from_ne_bytes(b.try_into().unwrap_or_default()))
                .ok_or_else(|| format!("truncated at byte {at}"))
        };
        let magic = data
            .get(0..2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
            .ok_or("empty file")?;
        if magic != BTF_MAGIC {
            return Err(format!("bad magic {magic:#x}"));
        }
        let hdr_len = u32_at(4)? as usize;
        let type_off = hdr_len + u32_at(8)? as usize;
        let type_len = u32_at(12)? as usize;
        let str_off = hdr_len + u32_at(16)? as usize;
        let str_len = u32_at(20)? as usize;
        let strings = data
            .get(str_off..str_off + str_len)
            .ok_or("string section out of bounds")?
            .to_vec();
        // Type id 0 is `void`.
        let mut types = vec![Type {
            name_off: 0,
            kind: 0,
            target: 0,
            members: Vec::new(),
        }];
        let end = type_off + type_len;
        let mut at = type_off;
        while at < end {
            let name_off = u32_at(at)?;
            let info = u32_at(at + 4)?;
            let size_or_type = u32_at(at + 8)?;
            at += 12;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            let kind_flag = info >> 31 != 0;
            let mut members = Vec::new();
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION => {
                    for i in 0..vlen {
                        let m = at + 12 * i;
                        let offset = u32_at(m + 8)?;
                        members.push(Member {
                            name_off: u32_at(m)?,
                            ty: u32_at(m + 4)?,
                            // With kind_flag, the top 8 bits hold a bitfield
                            // size.
                            bit_offset: if kind_flag {
                                offset & 0x00ff_ffff
                            } else {
                                offset
                            },
                        });
                    }
                    12 * vlen
                }
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
                KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
                KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
                | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
                other => return Err(format!("unknown BTF kind {other}")),
            };
            at += extra;
            types.push(Type {
                name_off,
                kind,
                target: size_or_type,
                members,
            });
        }
        Ok(Self { types, strings })
    }

    fn name(&self, off: u32) -> Cow<'_, str> {
        let start = off as usize;
        let rest = self.strings.get(start..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        String::from_utf8_lossy(&rest[..end])
    }

    /// The id of the struct named `name` that has members (not a forward
    /// declaration).
    fn struct_id(&self, name: &str) -> Option<u32> {
        self.types
            .iter()
            .position(|t| {
                t.kind == KIND_STRUCT && !t.members.is_empty() && self.name(t.name_off) == name
            })
            .map(|id| id as u32)
    }

    /// Follows typedefs and qualifiers to the underlying type id.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.types.get(id as usize) {
                Some(t)
                    if matches!(
                        t.kind,
                        KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                    ) =>
                {
                    id = t.target
                }
                _ => break,
            }
        }
        id
    }

    /// Byte offset of member `field` in the struct or union `id`, looking
    /// through anonymous struct and union members.
    fn member_offset(&self, id: u32, field: &str) -> Option<u32> {
        let ty = self.types.get(id as usize)?;
        for member in &ty.members {
            if member.name_off != 0 && self.name(member.name_off) == field {
                return Some(member.bit_offset / 8);
            }
        }
        for member in &ty.members {
            if member.name_off != 0 {
                continue;
            }
            let inner = self.resolve(member.ty);
            let is_aggregate = self
                .types
                .get(inner as usize)
                .is_some_and(|t| matches!(t.kind, KIND_STRUCT | KIND_UNION));
            if is_aggregate && let Some(off) = self.member_offset(inner, field) {
                return Some(member.bit_offset / 8 + off);
            }
        }
        None
    }

    /// Byte offset of `strukt.field`, or an error naming what is missing.
    fn offset(&self, strukt: &str, field: &str) -> Result<u32, KernelError> {
        self.struct_id(strukt)
            .and_then(|id| self.member_offset(id, field))
            .ok_or_else(|| KernelError::BtfMember {
                member: format!("{strukt}.{field}"),
            })
    }

    /// The offsets the task ops need.
    pub(crate) fn task_offsets(&self) -> Result<TaskOffsets, KernelError> {
        Ok(TaskOffsets {
            real_parent: self.offset("task_struct", "real_parent")?,
            tgid: self.offset("task_struct", "tgid")?,
            pid: self.offset("task_struct", "pid")?,
            comm: self.offset("task_struct", "comm")?,
            real_cred: self.offset("task_struct", "real_cred")?,
            mm: self.offset("task_struct", "mm")?,
            cred_uid: self.offset("cred", "uid")?,
            cred_euid: self.offset("cred", "euid")?,
            cred_egid: self.offset("cred", "egid")?,
            mm_arg_start: self.offset("mm_struct", "arg_start")?,
            mm_arg_end: self.offset("mm_struct", "arg_end")?,
            exit_code: self.offset("task_struct", "exit_code")?,
        })
    }
}

/// The task offsets of the running kernel.
pub(crate) fn running_kernel_task_offsets() -> Result<TaskOffsets, KernelError> {
    Btf::from_file(Path::new(VMLINUX_BTF))?.task_offsets()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_running_kernels_task_offsets() {
        let offsets = running_kernel_task_offsets().expect("BTF of the running kernel");
        // Plausibility: members in a sane order and inside their structs.
        assert!(
            offsets.pid > 0 && offsets.tgid == offsets.pid + 4,
            "{offsets:?}"
        );
        assert!(offsets.real_parent > offsets.tgid, "{offsets:?}");
        assert!(offsets.comm > 0 && offsets.real_cred > 0 && offsets.mm > 0);
        // cred: usage counter, then uid, gid, suid, sgid, euid, egid.
        assert_eq!(offsets.cred_euid, offsets.cred_uid + 16, "{offsets:?}");
        assert_eq!(offsets.cred_egid, offsets.cred_euid + 4, "{offsets:?}");
        // mm_struct: arg_end follows arg_start, inside the anonymous struct.
        assert_eq!(offsets.mm_arg_end, offsets.mm_arg_start + 8, "{offsets:?}");
    }

    #[test]
    fn rejects_garbage() {
        assert!(Btf::parse(b"not btf at all, just bytes").is_err());
        assert!(Btf::parse(&[]).is_err());
    }
}

//! Complete user stacks without frame pointers: unwind the registers and
//! the stack copy the kernel took (`UserRegsStack`) with each binary's
//! DWARF CFI (`.eh_frame`, `.debug_frame`), through framehop. Where a frame
//! has no CFI framehop follows the frame pointer, so code built with frame
//! pointers and JIT code still unwind as far as the kernel's own walk would.
//!
//! Unwind sections are read once per binary and shared by every process
//! that maps it; each process gets an unwinder built from its mappings,
//! rebuilt when an address falls outside every known module (a `dlopen`).

use std::{
    collections::HashMap,
    fs,
    ops::Range,
    path::{Path, PathBuf},
    sync::Arc,
};

use framehop::{
    ExplicitModuleSectionInfo, Module, Unwinder as _,
    x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64},
};
use object::{Object, ObjectSection, ObjectSegment};

use super::maps::ProcessMaps;

/// Frames an unwind yields at most (the kernel's `perf_event_max_stack`).
pub const MAX_FRAMES: usize = wasmtap_abi::MAX_STACK_FRAMES;

type Data = Arc<[u8]>;

/// The registers and stack bytes the kernel copied at the event.
#[derive(Clone, Copy, Debug)]
pub struct UserRegs<'a> {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    /// The stack from `sp` up.
    pub stack: &'a [u8],
}

impl<'a> UserRegs<'a> {
    /// Decodes a `UserRegsStack` slot; None when the kernel could copy
    /// nothing (a kernel thread has no user registers).
    pub fn parse(slot: &'a [u8]) -> Option<Self> {
        let header = wasmtap_abi::REGS_STACK_HEADER_LEN;
        let word = |i: usize| u64::from_le_bytes(slot[i * 8..i * 8 + 8].try_into().unwrap());
        if slot.len() < header {
            return None;
        }
        let (ip, sp, bp) = (word(0), word(1), word(2));
        let status = i32::from_le_bytes(slot[24..28].try_into().unwrap());
        if ip == 0 {
            return None;
        }
        let copied = usize::try_from(status).unwrap_or(0);
        let stack = &slot[header..(header + copied).min(slot.len())];
        Some(Self { ip, sp, bp, stack })
    }
}

/// Unwind data of one binary, read once.
struct Binary {
    sections: ExplicitModuleSectionInfo<Data>,
    /// `(file offset range, stated address)` of each loadable segment.
    segments: Vec<(Range<u64>, u64)>,
}

/// One process's unwinder and rule cache.
struct ProcessUnwinder {
    unwinder: UnwinderX86_64<Data>,
    cache: CacheX86_64,
    /// Address ranges with a module, to notice unknown code.
    ranges: Vec<Range<u64>>,
}

/// Unwinds user stacks; caches binaries and per-process unwinders.
#[derive(Default)]
pub struct Unwinder {
    binaries: HashMap<PathBuf, Option<Arc<Binary>>>,
    processes: HashMap<u32, ProcessUnwinder>,
}

impl Unwinder {
    /// Whether `addr` is inside a module the unwinder of `pid` knows.
    pub fn knows(&self, pid: u32, addr: u64) -> bool {
        self.processes
            .get(&pid)
            .is_some_and(|p| p.ranges.iter().any(|r| r.contains(&addr)))
    }

    /// Builds (or rebuilds) the unwinder of `pid` from its mappings.
    pub fn load(&mut self, pid: u32, maps: &ProcessMaps) {
        let mut unwinder = UnwinderX86_64::new();
        let mut ranges = Vec::new();
        // (file, lowest start, highest end) of each mapped file.
        let mut by_file: Vec<(&Path, u64, u64)> = Vec::new();
        for m in &maps.mappings {
            match by_file.iter_mut().find(|(f, ..)| *f == &*m.file) {
                Some(entry) => {
                    entry.1 = entry.1.min(m.start);
                    entry.2 = entry.2.max(m.end);
                }
                None => by_file.push((&m.file, m.start, m.end)),
            }
        }
        for (file, start, end) in by_file {
            let Some(binary) = self.binary(file) else {
                continue;
            };
            // The lowest mapping of the file gives the load bias.
            let Some(first) = maps
                .mappings
                .iter()
                .find(|m| &*m.file == file && m.start == start)
            else {
                continue;
            };
            let Some(stated) = binary
                .segments
                .iter()
                .find(|(range, _)| range.contains(&first.offset) || range.start == first.offset)
                .map(|(range, address)| address + (first.offset - range.start))
            else {
                continue;
            };
            let base = start.wrapping_sub(stated);
            unwinder.add_module(Module::new(
                first.path.display().to_string(),
                start..end,
                base,
                binary.sections.clone(),
            ));
            ranges.push(start..end);
        }
        self.processes.insert(
            pid,
            ProcessUnwinder {
                unwinder,
                cache: CacheX86_64::new(),
                ranges,
            },
        );
    }

    /// The return addresses of the stack in `regs`, innermost (the ip)
    /// first. Stops at the end of the copied stack, at an address no rule
    /// can unwind, or after [`MAX_FRAMES`].
    pub fn unwind(&mut self, pid: u32, regs: &UserRegs<'_>) -> Vec<u64> {
        let mut frames = vec![regs.ip];
        let Some(process) = self.processes.get_mut(&pid) else {
            return frames;
        };
        let (sp, stack) = (regs.sp, regs.stack);
        let mut read_stack = |addr: u64| -> Result<u64, ()> {
            let at = usize::try_from(addr.checked_sub(sp).ok_or(())?).map_err(|_| ())?;
            let bytes = stack.get(at..at.checked_add(8).ok_or(())?).ok_or(())?;
            Ok(u64::from_le_bytes(bytes.try_into().map_err(|_| ())?))
        };
        let mut iter = process.unwinder.iter_frames(
            regs.ip,
            UnwindRegsX86_64::new(regs.ip, regs.sp, regs.bp),
            &mut process.cache,
            &mut read_stack,
        );
        // The first frame is the ip itself, already in `frames`.
        let _ = iter.next();
        while frames.len() < MAX_FRAMES {
            match iter.next() {
                Ok(Some(frame)) if frame.address() != 0 => frames.push(frame.address()),
                _ => break,
            }
        }
        frames
    }

    /// Forgets the unwinder of a process (its mappings changed).
    pub fn forget(&mut self, pid: u32) {
        self.processes.remove(&pid);
    }

    fn binary(&mut self, path: &Path) -> Option<Arc<Binary>> {
        self.binaries
            .entry(path.to_path_buf())
            .or_insert_with(|| read_binary(path).map(Arc::new))
            .clone()
    }
}

/// Reads the unwind sections and segment layout of an ELF file; None for
/// files that are not ELF (fonts, locale archives) or cannot be read.
fn read_binary(path: &Path) -> Option<Binary> {
    let bytes = fs::read(path).ok()?;
    let file = object::File::parse(&*bytes).ok()?;
    let section = |name: &str| {
        let s = file.section_by_name(name)?;
        let range = s.address()..s.address() + s.size();
        let data: Data = Arc::from(&*s.uncompressed_data().ok()?);
        Some((range, data))
    };
    let text = section(".text");
    let eh_frame = section(".eh_frame");
    let eh_frame_hdr = section(".eh_frame_hdr");
    let debug_frame = section(".debug_frame");
    let got = file
        .section_by_name(".got")
        .map(|s| s.address()..s.address() + s.size());
    if eh_frame.is_none() && debug_frame.is_none() && text.is_none() {
        return None;
    }
    let segments = file
        .segments()
        .map(|s| {
            let (offset, size) = s.file_range();
            (offset..offset + size.max(1), s.address())
        })
        .collect();
    Some(Binary {
        sections: ExplicitModuleSectionInfo {
            base_svma: 0,
            text_svma: text.as_ref().map(|t| t.0.clone()),
            text: text.map(|t| t.1),
            got_svma: got,
            eh_frame_svma: eh_frame.as_ref().map(|e| e.0.clone()),
            eh_frame: eh_frame.map(|e| e.1),
            eh_frame_hdr_svma: eh_frame_hdr.as_ref().map(|e| e.0.clone()),
            eh_frame_hdr: eh_frame_hdr.map(|e| e.1),
            debug_frame: debug_frame.map(|d| d.1),
            ..ExplicitModuleSectionInfo::default()
        },
        segments,
    })
}

#[cfg(test)]
mod tests {
    use super::super::maps::MappedFiles;
    use super::*;

    #[test]
    fn parses_a_slot() {
        let mut slot = vec![0u8; 32 + 16];
        slot[0..8].copy_from_slice(&0x401000u64.to_le_bytes());
        slot[8..16].copy_from_slice(&0x7ffe0000u64.to_le_bytes());
        slot[24..28].copy_from_slice(&16i32.to_le_bytes());
        let regs = UserRegs::parse(&slot).unwrap();
        assert_eq!(
            (regs.ip, regs.sp, regs.stack.len()),
            (0x401000, 0x7ffe0000, 16)
        );
        slot[0..8].copy_from_slice(&0u64.to_le_bytes());
        assert!(UserRegs::parse(&slot).is_none());
    }

    /// This test process's own stack, unwound from a copy of it: every
    /// frame from here up to the test harness must be found.
    #[test]
    #[inline(never)]
    fn unwinds_this_process() {
        let pid = std::process::id();
        let mut files = MappedFiles::default();
        let maps = ProcessMaps::read(pid, &mut files).unwrap();
        let mut unwinder = Unwinder::default();
        unwinder.load(pid, &maps);
        let (ip, sp, bp): (u64, u64, u64);
        // SAFETY: reads three registers; no memory is touched.
        unsafe {
            std::arch::asm!("lea {ip}, [rip]", "mov {sp}, rsp", "mov {bp}, rbp",
                ip = out(reg) ip, sp = out(reg) sp, bp = out(reg) bp);
        }
        // SAFETY: the 4 KiB above sp are this thread's live stack.
        let stack = unsafe { std::slice::from_raw_parts(sp as *const u8, 4096) }.to_vec();
        let frames = unwinder.unwind(
            pid,
            &UserRegs {
                ip,
                sp,
                bp,
                stack: &stack,
            },
        );
        assert!(frames.len() > 3, "only {frames:x?}");
        assert!(
            frames.iter().all(|&a| maps.find(a).is_some()),
            "{frames:x?}"
        );
    }
}

//! A process's file-backed memory mappings (`/proc/PID/maps`), read while
//! the process lives and kept after it exits, so addresses sampled from it
//! can still be named when the report is printed.

use std::{fs, io, path::Path, sync::Arc};

/// One file-backed mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// File offset of `start`.
    pub offset: u64,
    /// The mapped file, as the kernel names it.
    pub path: Arc<Path>,
}

impl Mapping {
    /// The file offset of `addr`, which must be inside the mapping.
    pub fn file_offset(&self, addr: u64) -> u64 {
        addr - self.start + self.offset
    }
}

/// The file-backed mappings of one process, sorted by address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessMaps {
    pub mappings: Vec<Mapping>,
}

impl ProcessMaps {
    /// Reads `/proc/PID/maps`.
    ///
    /// # Errors
    /// The process is gone or not readable.
    pub fn read(pid: u32) -> io::Result<Self> {
        Ok(Self::parse(&fs::read_to_string(format!(
            "/proc/{pid}/maps"
        ))?))
    }

    /// Parses the text of a maps file; anonymous and special mappings
    /// (`[heap]`, `[vdso]`) are left out.
    pub fn parse(text: &str) -> Self {
        let mut mappings: Vec<Mapping> = text.lines().filter_map(parse_line).collect();
        mappings.sort_by_key(|m| m.start);
        Self { mappings }
    }

    /// The mapping that holds `addr`.
    pub fn find(&self, addr: u64) -> Option<&Mapping> {
        let i = self.mappings.partition_point(|m| m.start <= addr);
        let m = self.mappings.get(i.checked_sub(1)?)?;
        (addr < m.end).then_some(m)
    }
}

fn parse_line(line: &str) -> Option<Mapping> {
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let _perms = fields.next()?;
    let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    let _dev = fields.next()?;
    let _inode = fields.next()?;
    let path = fields.next()?.trim_start();
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    if !path.starts_with('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        offset,
        path: Arc::from(Path::new(path)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_mappings_only() {
        let maps = ProcessMaps::parse(
            "55d0c0a00000-55d0c0a01000 r--p 00000000 08:01 1234   /usr/bin/prog\n\
             55d0c0a01000-55d0c0a02000 r-xp 00001000 08:01 1234   /usr/bin/prog\n\
             55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0      [heap]\n\
             7f0000000000-7f0000001000 r-xp 00002000 08:01 99     /tmp/x (deleted)\n",
        );
        assert_eq!(maps.mappings.len(), 3);
        let m = maps.find(0x55d0c0a01234).unwrap();
        assert_eq!(&*m.path, Path::new("/usr/bin/prog"));
        assert_eq!(m.file_offset(0x55d0c0a01234), 0x1234);
        assert!(maps.find(0x55d0c1000010).is_none());
        assert_eq!(
            &*maps.find(0x7f0000000010).unwrap().path,
            Path::new("/tmp/x")
        );
    }
}

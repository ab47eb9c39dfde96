//! A process's file-backed memory mappings (`/proc/PID/maps`), read while
//! the process lives and kept after it exits, so addresses sampled from it
//! can still be named when the report is printed.
//!
//! The path in `maps` names a file in the process's mount namespace as it
//! was when mapped: in a container it is another file (or none) on the
//! host, and a binary replaced by an upgrade or a rebuild shows up as
//! `(deleted)`. So the bytes are read from what the process really mapped:
//! each mapped file is opened once through `/proc/PID/map_files/` and the
//! descriptor is held ([`MappedFiles`]), which keeps even a deleted file
//! readable after the process exits.

use std::{
    collections::HashMap,
    fs::{self, File},
    io,
    os::fd::AsRawFd,
    path::{Path, PathBuf},
    sync::Arc,
};

/// One file-backed mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// File offset of `start`.
    pub offset: u64,
    /// The mapped file, as the kernel names it: what reports print.
    pub path: Arc<Path>,
    /// Where the mapped file's bytes are read from: a descriptor held by
    /// [`MappedFiles`] (`/proc/self/fd/N`), or `path` when it could not be
    /// opened that way. Distinct files have distinct names here, so caches
    /// key on it.
    pub file: Arc<Path>,
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
    /// Reads `/proc/PID/maps` and opens each mapped file through `files`.
    ///
    /// # Errors
    /// The process is gone or not readable.
    pub fn read(pid: u32, files: &mut MappedFiles) -> io::Result<Self> {
        let text = fs::read_to_string(format!("/proc/{pid}/maps"))?;
        let mappings = parse_keyed(&text)
            .into_iter()
            .map(|(mut m, key)| {
                m.file = files.open(pid, &m, key);
                m
            })
            .collect();
        Ok(Self { mappings })
    }

    /// Parses the text of a maps file; anonymous and special mappings
    /// (`[heap]`, `[vdso]`) are left out. Files are read by `path`.
    pub fn parse(text: &str) -> Self {
        Self {
            mappings: parse_keyed(text).into_iter().map(|(m, _)| m).collect(),
        }
    }

    /// The mapping that holds `addr`.
    pub fn find(&self, addr: u64) -> Option<&Mapping> {
        let i = self.mappings.partition_point(|m| m.start <= addr);
        let m = self.mappings.get(i.checked_sub(1)?)?;
        (addr < m.end).then_some(m)
    }
}

/// Which file a mapping maps: its device and inode.
type FileKey = (String, u64);

/// The file-backed mappings of a maps file with their files, by address.
fn parse_keyed(text: &str) -> Vec<(Mapping, FileKey)> {
    let mut keyed: Vec<_> = text.lines().filter_map(parse_line).collect();
    keyed.sort_by_key(|(m, _)| m.start);
    keyed
}

fn parse_line(line: &str) -> Option<(Mapping, FileKey)> {
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let _perms = fields.next()?;
    let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    let dev = fields.next()?;
    let inode = fields.next()?.parse().ok()?;
    let path = fields.next()?.trim_start();
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    if !path.starts_with('/') {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    let path: Arc<Path> = Arc::from(Path::new(path));
    let mapping = Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        offset,
        file: path.clone(),
        path,
    };
    Some((mapping, (dev.to_string(), inode)))
}

/// Files held open at most: past it, new files are read by path, so a
/// system-wide profile of many distinct binaries cannot run the host out
/// of descriptors.
const MAX_HELD_FILES: usize = 512;

/// The files processes have mapped, each opened once and held for the run.
#[derive(Default)]
pub struct MappedFiles {
    open: HashMap<FileKey, (File, Arc<Path>)>,
}

impl MappedFiles {
    /// The name to read mapping `m` of `pid` by: the held descriptor of
    /// its file, opened now if new; `m.path` when `/proc/PID/map_files`
    /// cannot be opened (not root, or the process is gone).
    fn open(&mut self, pid: u32, m: &Mapping, key: FileKey) -> Arc<Path> {
        if let Some((_, name)) = self.open.get(&key) {
            return name.clone();
        }
        if self.open.len() >= MAX_HELD_FILES {
            return m.path.clone();
        }
        let through = format!("/proc/{pid}/map_files/{:x}-{:x}", m.start, m.end);
        match File::open(&through) {
            Ok(file) => {
                let name: Arc<Path> =
                    Arc::from(PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd())));
                self.open.insert(key, (file, name.clone()));
                name
            }
            Err(_) => m.path.clone(),
        }
    }
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

    #[test]
    fn reads_the_mapped_file_through_a_held_descriptor() {
        let mut files = MappedFiles::default();
        let maps = ProcessMaps::read(std::process::id(), &mut files).unwrap();
        let exe = fs::read_link("/proc/self/exe").unwrap();
        let m = maps.mappings.iter().find(|m| *m.path == *exe).unwrap();
        assert!(m.file.starts_with("/proc/self/fd/"), "{m:?}");
        assert_eq!(
            fs::metadata(&m.file).unwrap().len(),
            fs::metadata(&exe).unwrap().len()
        );
        // Every mapping of the same file shares the one descriptor.
        assert!(
            maps.mappings
                .iter()
                .filter(|other| other.path == m.path)
                .all(|other| other.file == m.file)
        );
    }
}

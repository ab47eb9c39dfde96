//! The on-disk cache of compiled modules, as stap caches its kernel
//! modules: keyed by the engine's compatibility hash and the module bytes,
//! so a different wasmtime or engine configuration never loads a stale
//! artifact.

use std::{
    fs,
    hash::{DefaultHasher, Hash, Hasher},
    io::Write as _,
    os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use wasmtime::{Engine, Module};

/// The default cache directory: `$XDG_CACHE_HOME/wasmtap` or
/// `$HOME/.cache/wasmtap`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wasmtap"))
}

/// The file a module compiled from `bytes` is cached in: 128 bits of two
/// differently seeded SipHashes over the engine hash and the bytes.
pub fn cache_path(dir: &Path, engine: &Engine, kind: &str, bytes: &[u8]) -> PathBuf {
    let mut parts = [0u64; 2];
    for (i, part) in parts.iter_mut().enumerate() {
        let mut h = DefaultHasher::new();
        (i as u64, "wasmtap module cache v1").hash(&mut h);
        engine.precompile_compatibility_hash().hash(&mut h);
        bytes.hash(&mut h);
        *part = h.finish();
    }
    dir.join(format!("{kind}-{:016x}{:016x}.cwasm", parts[0], parts[1]))
}

/// Loads a cached module, if present and trustworthy: the file must belong
/// to the current user and not be writable by others, because deserializing
/// runs its machine code.
pub fn load(engine: &Engine, path: &Path) -> Option<Module> {
    let meta = fs::metadata(path).ok()?;
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid || meta.mode() & 0o022 != 0 {
        return None;
    }
    // SAFETY: the file is a wasmtime artifact we wrote (checked owner and
    // permissions above), keyed by this engine's compatibility hash;
    // wasmtime still validates its header and version.
    unsafe { Module::deserialize_file(engine, path) }.ok()
}

/// Stores `module` at `path` atomically (temporary file, then rename), in
/// a directory only the user can write.
pub fn store(module: &Module, path: &Path) -> Result<(), String> {
    let bytes = module.serialize().map_err(|e| format!("{e:#}"))?;
    let dir = path.parent().ok_or("cache path has no directory")?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("creating {}: {e}", tmp.display()))?;
    file.write_all(&bytes)
        .map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("renaming to {}: {e}", path.display())
    })
}

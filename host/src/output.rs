//! Output limits shared by the CLI and the daemon.

use std::{
    fs,
    io::{self, Write},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context as _;

/// Where a run's output goes: `file` (`-o`), else stdout, limited to
/// `bytes_per_s` (0: no limit).
///
/// # Errors
/// The file cannot be created.
pub fn open(file: Option<&Path>, bytes_per_s: u64) -> anyhow::Result<Box<dyn Write + Send>> {
    Ok(match file {
        Some(path) => Box::new(RateLimited::new(
            io::BufWriter::new(
                fs::File::create(path)
                    .with_context(|| format!("cannot create output file '{}'", path.display()))?,
            ),
            bytes_per_s,
        )),
        None => Box::new(RateLimited::new(io::stdout(), bytes_per_s)),
    })
}

/// Fails writes once more than `bytes_per_s` bytes were written within one
/// second, so a script printing in a tight loop is stopped (reported like a
/// stap error, naming the probe and line) instead of flooding a terminal, a
/// disk or a tenant's connection.
pub struct RateLimited<W> {
    inner: W,
    bytes_per_s: u64,
    window: Instant,
    used: u64,
}

impl<W: Write> RateLimited<W> {
    /// Wraps `inner`; `bytes_per_s` of 0 means no limit.
    pub fn new(inner: W, bytes_per_s: u64) -> Self {
        Self {
            inner,
            bytes_per_s,
            window: Instant::now(),
            used: 0,
        }
    }
}

impl<W: Write> Write for RateLimited<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes_per_s > 0 {
            if self.window.elapsed() >= Duration::from_secs(1) {
                self.window = Instant::now();
                self.used = 0;
            }
            self.used += buf.len() as u64;
            if self.used > self.bytes_per_s {
                return Err(io::Error::other(format!(
                    "output limit of {} bytes/s exceeded",
                    self.bytes_per_s
                )));
            }
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_past_the_rate_fail() {
        let mut out = RateLimited::new(Vec::new(), 10);
        out.write_all(b"0123456789").unwrap();
        let error = out.write_all(b"x").unwrap_err();
        assert!(error.to_string().contains("10 bytes/s"), "{error}");
        assert_eq!(out.inner, b"0123456789");
        let mut free = RateLimited::new(Vec::new(), 0);
        free.write_all(&[0; 4096]).unwrap();
    }
}

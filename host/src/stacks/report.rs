//! What `--output folded` and `--flamegraph FILE` do with a script's
//! output: keep a copy of it while it is printed, then fold the stack
//! report in it (see [`super::folded`]) and write the folded lines or the
//! SVG when the run ends.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use super::{flamegraph, folded};

/// How the script's output is shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// As the script prints it.
    #[default]
    Text,
    /// Folded stacks (`root;...;leaf count`) instead of the report.
    Folded,
}

/// Collects a run's output for a folded or flame graph view of it.
#[derive(Debug)]
pub struct Report {
    format: OutputFormat,
    flamegraph: Option<PathBuf>,
    copy: Arc<Mutex<Vec<u8>>>,
}

impl Report {
    /// A report in `format`, also drawn to `flamegraph` if given.
    pub fn new(format: OutputFormat, flamegraph: Option<PathBuf>) -> Self {
        Self {
            format,
            flamegraph,
            copy: Arc::default(),
        }
    }

    /// Whether the output must be kept (anything but plain text).
    pub fn collects(&self) -> bool {
        self.format != OutputFormat::Text || self.flamegraph.is_some()
    }

    /// The writer to give the script: `out` itself for plain text, a tee
    /// for text plus a flame graph, a buffer for folded output.
    pub fn writer(&self, out: Box<dyn Write + Send>) -> Box<dyn Write + Send> {
        if !self.collects() {
            return out;
        }
        Box::new(Tee {
            out: (self.format == OutputFormat::Text).then_some(out),
            copy: self.copy.clone(),
        })
    }

    /// After the run: writes the folded stacks to `out` (folded format) and
    /// the flame graph to its file.
    ///
    /// # Errors
    /// Writing either fails.
    pub fn finish(&self, out: &mut dyn Write, title: &str) -> io::Result<()> {
        if !self.collects() {
            return Ok(());
        }
        let copy = self.copy.lock().map(|c| c.clone()).unwrap_or_default();
        let stacks = folded::fold(&String::from_utf8_lossy(&copy));
        if self.format == OutputFormat::Folded {
            out.write_all(folded::render(&stacks).as_bytes())?;
            out.flush()?;
        }
        if let Some(path) = &self.flamegraph {
            if stacks.is_empty() {
                eprintln!(
                    "WARNING: the output holds no stack report (frame lines, then a count): {} shows no stacks",
                    path.display()
                );
            }
            write_flamegraph(path, &stacks, title)?;
        }
        Ok(())
    }
}

fn write_flamegraph(path: &Path, stacks: &[(String, u64)], title: &str) -> io::Result<()> {
    let file = fs::File::create(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot create flame graph '{}': {e}", path.display()),
        )
    })?;
    let mut file = io::BufWriter::new(file);
    flamegraph::write_svg(stacks, title, &mut file).map_err(io::Error::other)?;
    file.flush()
}

/// Writes to `out` (if any) and keeps a copy.
struct Tee {
    out: Option<Box<dyn Write + Send>>,
    copy: Arc<Mutex<Vec<u8>>>,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(out) = &mut self.out {
            out.write_all(buf)?;
        }
        if let Ok(mut copy) = self.copy.lock() {
            copy.extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

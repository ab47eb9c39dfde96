//! Output: formatted text appended to the runtime's output buffer, which
//! the host flushes after every batch and probe (so plugin output
//! interleaves with nothing and costs no host call per line).

use crate::rt::Str;

/// The run's output, as a [`core::fmt::Write`] sink. [`out!`](crate::out)
/// and [`outln!`](crate::outln) write to it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Out;

impl core::fmt::Write for Out {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        // SAFETY: the runtime copies the bytes before `s` goes away.
        let s = unsafe { Str::from_raw(s.as_ptr(), s.len()) };
        crate::exports::with(|rt| rt.fmt_lit(s));
        Ok(())
    }
}

impl Out {
    /// Appends raw bytes (e.g. a string that is not UTF-8).
    pub fn bytes(&mut self, bytes: &[u8]) {
        // SAFETY: as in `write_str`.
        let s = unsafe { Str::from_raw(bytes.as_ptr(), bytes.len()) };
        crate::exports::with(|rt| rt.fmt_lit(s));
    }
}

/// Prints formatted text to the run's output, like `print!`.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = core::fmt::Write::write_fmt(&mut $crate::plugin::Out, format_args!($($arg)*));
    }};
}

/// Prints formatted text and a newline to the run's output, like
/// `println!`.
#[macro_export]
macro_rules! outln {
    () => { $crate::out!("\n") };
    ($($arg:tt)*) => {{
        $crate::out!($($arg)*);
        $crate::out!("\n");
    }};
}

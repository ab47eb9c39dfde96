//! The built-in SVG flame graph (inferno, a port of Brendan Gregg's
//! flamegraph.pl): folded stacks in, an interactive SVG out, so a profile
//! needs no external script.

use std::io::Write;

use inferno::flamegraph::{self, Options};

/// Error from drawing a flame graph.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the flame graph: {0}")]
pub struct FlameGraphError(String);

/// Writes the flame graph of `folded` (see [`super::folded`]) to `out`.
/// An empty profile gives inferno's "no stack counts" image rather than an
/// error, so a run without samples still leaves a valid file.
///
/// # Errors
/// Writing fails.
pub fn write_svg(
    folded: &[(String, u64)],
    title: &str,
    out: impl Write,
) -> Result<(), FlameGraphError> {
    let lines: Vec<String> = folded
        .iter()
        .map(|(stack, count)| format!("{stack} {count}"))
        .collect();
    let mut options = Options::default();
    options.title = title.to_string();
    options.count_name = "samples".to_string();
    match flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), out) {
        // inferno has drawn its "no valid input" image: a valid file.
        Err(_) if folded.is_empty() => Ok(()),
        result => result.map_err(|e| FlameGraphError(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_the_frames() {
        let folded = vec![
            ("main;a;b;hot".to_string(), 90),
            ("main;a;cold".to_string(), 10),
        ];
        let mut svg = Vec::new();
        write_svg(&folded, "test", &mut svg).unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(svg.starts_with("<?xml"));
        assert!(svg.contains("hot") && svg.contains("cold"));
        let mut empty = Vec::new();
        write_svg(&[], "test", &mut empty).unwrap();
        assert!(String::from_utf8(empty).unwrap().starts_with("<?xml"));
    }
}

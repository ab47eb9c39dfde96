//! Tracepoint fields by name, from the event's `format` file in tracefs:
//! where a plugin's `Field` and `FieldStr` captures read.

use std::path::Path;

/// One field of a trace entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Field {
    pub name: String,
    /// Byte offset in the trace entry.
    pub offset: u16,
    /// Bytes.
    pub size: u16,
    /// A `__data_loc` string (a u32 locating the bytes in the entry).
    pub data_loc: bool,
}

/// The fields of `events/SYSTEM/EVENT/format` under `tracefs`, or `None`
/// when the event does not exist.
pub(super) fn fields(tracefs: &Path, system: &str, event: &str) -> Option<Vec<Field>> {
    let bad = |s: &str| s.is_empty() || s.contains('/') || s.contains("..");
    if bad(system) || bad(event) {
        return None;
    }
    let path = tracefs
        .join("events")
        .join(system)
        .join(event)
        .join("format");
    Some(parse(&std::fs::read_to_string(path).ok()?))
}

/// Parses the `field:` lines of a format file.
fn parse(text: &str) -> Vec<Field> {
    text.lines()
        .filter_map(|line| {
            let mut decl = None;
            let (mut offset, mut size) = (None, None);
            for part in line.trim().split(';') {
                let part = part.trim();
                if let Some(d) = part.strip_prefix("field:") {
                    decl = Some(d.trim());
                } else if let Some(o) = part.strip_prefix("offset:") {
                    offset = o.parse().ok();
                } else if let Some(s) = part.strip_prefix("size:") {
                    size = s.parse().ok();
                }
            }
            let decl = decl?;
            let name = decl.rsplit(' ').next()?;
            let name = name.split('[').next()?.to_string();
            Some(Field {
                name,
                offset: offset?,
                size: size?,
                data_loc: decl.starts_with("__data_loc"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_format_file() {
        let text = "name: sched_process_exec\nID: 300\nformat:\n\
            \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
            \n\
            \tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;\n\
            \tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;\n\
            \tfield:char comm[16];\toffset:20;\tsize:16;\tsigned:0;\n\
            \nprint fmt: \"filename=%s\"\n";
        let fields = parse(text);
        let names: Vec<_> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["common_type", "filename", "pid", "comm"]);
        assert!(fields[1].data_loc);
        assert_eq!((fields[2].offset, fields[2].size), (12, 4));
        assert_eq!(fields[3].size, 16);
    }
}

//! Folded stacks from a printed stack report, as FlameGraph's
//! `stackcollapse-stap.pl` makes them: frame lines (` 0xADDR : sym+off/size
//! [module]`, innermost first) followed by a count line (`\t46`) become one
//! `root;...;leaf 46` line. Identical stacks are summed; other lines of the
//! report are ignored.

use std::collections::HashMap;

/// Folds `report` into `(stack, count)` pairs, root first, in order of
/// first appearance.
pub fn fold(report: &str) -> Vec<(String, u64)> {
    let mut order: Vec<String> = Vec::new();
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut frames: Vec<String> = Vec::new();
    for line in report.lines() {
        if let Some(name) = frame_name(line) {
            frames.push(name);
            continue;
        }
        let count = line.trim().parse::<u64>().ok();
        match count {
            Some(count) if !frames.is_empty() => {
                frames.reverse();
                let stack = frames.join(";");
                frames.clear();
                match counts.get_mut(&stack) {
                    Some(total) => *total += count,
                    None => {
                        counts.insert(stack.clone(), count);
                        order.push(stack);
                    }
                }
            }
            _ => frames.clear(),
        }
    }
    order
        .into_iter()
        .map(|stack| {
            let count = counts[&stack];
            (stack, count)
        })
        .collect()
}

/// Renders folded stacks, one `stack count` line each.
pub fn render(folded: &[(String, u64)]) -> String {
    let mut out = String::new();
    for (stack, count) in folded {
        out.push_str(stack);
        out.push(' ');
        out.push_str(&count.to_string());
        out.push('\n');
    }
    out
}

/// The function of a frame line: the symbol without `+off/size`, the
/// binary and offset for a frame without one, else the address. None for
/// lines that are not frames.
fn frame_name(line: &str) -> Option<String> {
    let line = line.trim();
    let rest = line.strip_prefix("0x")?;
    let hex_end = rest
        .find(|c: char| !c.is_ascii_hexdigit())
        .unwrap_or(rest.len());
    if hex_end == 0 {
        return None;
    }
    let address = &line[..2 + hex_end];
    let after = rest[hex_end..].trim_start();
    if after.is_empty() {
        return Some(address.to_string());
    }
    if let Some(inside) = after.strip_prefix('[') {
        // No symbol: `[/lib/x.so+0x700]` folds to `x.so+0x700`, which names
        // the same code in every run (the address moves with ASLR).
        let inside = inside.trim_end_matches(']');
        let base = inside.rsplit('/').next().unwrap_or(inside);
        return Some(base.replace([';', ' '], "_"));
    }
    let symbol = after.strip_prefix(':')?.trim_start();
    let name = match symbol.rfind("+0x") {
        Some(plus) => &symbol[..plus],
        None => symbol.split(' ').next().unwrap_or(symbol),
    };
    // Folded stacks separate frames with ';' and end with a space-separated
    // count: keep both out of names (C++ templates may contain spaces).
    Some(name.replace(';', ":").replace(' ', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_stap_reports() {
        let report = "\
 0x3cda6e86f3 : __epoll_wait_nocancel+0xa/0x67 [/lib64/libc-2.12.so]
 0x433f49 : ngx_epoll_process_events+0x3b/0x409 [/usr/local/nginx/sbin/nginx]
 0x40397a : main+0x538/0x53f [/usr/local/nginx/sbin/nginx]
\t46
 0x7f00 [/lib/x.so+0x700]
 0x40397a : main+0x538/0x53f [/usr/local/nginx/sbin/nginx]
\t3
WARNING: something else
 0x3cda6e86f3 : __epoll_wait_nocancel+0xa/0x67 [/lib64/libc-2.12.so]
 0x433f49 : ngx_epoll_process_events+0x3b/0x409 [/usr/local/nginx/sbin/nginx]
 0x40397a : main+0x538/0x53f [/usr/local/nginx/sbin/nginx]
4
";
        let folded = fold(report);
        assert_eq!(
            render(&folded),
            "main;ngx_epoll_process_events;__epoll_wait_nocancel 50\nmain;x.so+0x700 3\n"
        );
    }
}

//! `=~` patterns compiled to DFA tables at compile time.
//!
//! stap's regular expressions are literals, so the whole automaton can be
//! built here (with `regex-automata`) and shipped as constant data: the
//! guest only walks a table (`rt.regex_match`), linear in the subject, with
//! no regex engine and no compile step inside the sandbox. Matching is on
//! bytes (no Unicode classes), unanchored, like stap's: `^`/`$` anchor.
//!
//! The table layout (all integers little-endian u32 unless said) is the
//! contract with the guest's `regex::matches`:
//! `[states][classes][start]`, 256 bytes mapping each byte to its class,
//! then per state `classes` next-state indices, then per state the
//! end-of-input next state, then per state one flag byte
//! ([`wasmtap_abi::wasm::regex_flag`]).

use std::collections::HashMap;

use regex_automata::{
    Anchored,
    dfa::{Automaton, StartKind, dense},
    nfa::thompson,
    util::{primitives::StateID, start, syntax},
};
use wasmtap_abi::wasm::regex_flag;

/// Builds the table for `pattern`, or says why it is not a valid pattern.
pub fn compile(pattern: &str) -> Result<Vec<u8>, String> {
    let dfa = dense::Builder::new()
        .syntax(
            syntax::Config::new()
                .unicode(false)
                .utf8(false)
                .dot_matches_new_line(true),
        )
        .thompson(thompson::Config::new().utf8(false))
        .configure(
            dense::Config::new()
                .start_kind(StartKind::Unanchored)
                .dfa_size_limit(Some(1 << 20))
                .determinize_size_limit(Some(4 << 20)),
        )
        .build(pattern)
        .map_err(|e| reason(&e))?;
    let start = dfa
        .start_state(&start::Config::new().anchored(Anchored::No))
        .map_err(|e| e.to_string())?;
    let classes = dfa.byte_classes();
    let n_classes = usize::from(classes.get(255)) + 1;
    // A representative byte of each class.
    let mut reps = vec![0u8; n_classes];
    for b in (0..=255u8).rev() {
        reps[usize::from(classes.get(b))] = b;
    }

    // Number the states reachable from the start, breadth first.
    let mut index: HashMap<StateID, u32> = HashMap::from([(start, 0)]);
    let mut order = vec![start];
    let mut next = Vec::new();
    let mut eoi = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let id = order[i];
        let mut number = |to: StateID, order: &mut Vec<StateID>| -> u32 {
            let n = index.len() as u32;
            *index.entry(to).or_insert_with(|| {
                order.push(to);
                n
            })
        };
        for &b in &reps {
            let to = dfa.next_state(id, b);
            next.push(number(to, &mut order));
        }
        let to = dfa.next_eoi_state(id);
        eoi.push(number(to, &mut order));
        i += 1;
    }

    let mut table = Vec::new();
    for n in [order.len(), n_classes, 0] {
        table.extend_from_slice(&(n as u32).to_le_bytes());
    }
    table.extend((0..=255u8).map(|b| classes.get(b)));
    for n in next.iter().chain(&eoi) {
        table.extend_from_slice(&n.to_le_bytes());
    }
    table.extend(order.iter().map(|&id| {
        let mut flags = 0;
        if dfa.is_match_state(id) {
            flags |= regex_flag::MATCH;
        }
        if dfa.is_dead_state(id) {
            flags |= regex_flag::DEAD;
        }
        flags
    }));
    Ok(table)
}

/// The innermost cause of a build error, in one line: regex-syntax draws
/// the pattern with a caret and ends with `error: WHAT`.
fn reason(error: &dyn std::error::Error) -> String {
    let mut inner = error;
    while let Some(source) = inner.source() {
        inner = source;
    }
    let text = inner.to_string();
    text.lines()
        .find_map(|line| line.strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().next().unwrap_or_default())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The guest's walk, restated to test tables without Wasm.
    fn matches(table: &[u8], subject: &[u8]) -> bool {
        let word = |i: usize| u32::from_le_bytes(table[i * 4..i * 4 + 4].try_into().unwrap());
        let (states, n_classes) = (word(0) as usize, word(1) as usize);
        let class_at = 12;
        let next_at = (class_at + 256) / 4;
        let eoi_at = next_at + states * n_classes;
        let flags_at = (eoi_at + states) * 4;
        let flag = |s: usize| table[flags_at + s];
        let mut s = word(2) as usize;
        for &b in subject {
            s = word(next_at + s * n_classes + usize::from(table[class_at + usize::from(b)]))
                as usize;
            if flag(s) & regex_flag::MATCH != 0 {
                return true;
            }
            if flag(s) & regex_flag::DEAD != 0 {
                return false;
            }
        }
        flag(word(eoi_at + s) as usize) & regex_flag::MATCH != 0
    }

    #[test]
    fn patterns_match_like_extended_regular_expressions() {
        let cases: &[(&str, &str, bool)] = &[
            ("ab+c", "xxabbbcyy", true),
            ("ab+c", "xxacyy", false),
            ("^foo", "foobar", true),
            ("^foo", "afoo", false),
            ("bar$", "foobar", true),
            ("bar$", "bars", false),
            ("[0-9]{3}", "ab123", true),
            ("[[:alpha:]]+[0-9]", "--x9", true),
            ("cat|dog", "hotdog", true),
            ("", "", true),
            ("a.c", "a\nc", true),
        ];
        for &(pattern, subject, want) in cases {
            let table = compile(pattern).unwrap();
            assert_eq!(
                matches(&table, subject.as_bytes()),
                want,
                "{pattern} =~ {subject}"
            );
        }
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(compile("a(b").is_err());
        assert!(compile("[z-a]").is_err());
    }
}

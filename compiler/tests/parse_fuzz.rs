//! The front end never panics, never hangs, and every error it reports
//! points inside the source and renders: on random bytes, on random soups
//! of script tokens, and on a corpus of inputs that once were (or could
//! be) trouble.

use proptest::prelude::*;
use wasmtap_compiler::diagnostics::render;
use wasmtap_compiler::syntax::{ParseOptions, parse};

fn options() -> ParseOptions {
    ParseOptions {
        args: vec!["/bin/ls".into(), "100".into()],
        kernel_version: (5, 15, 0),
        arch: "x86_64".into(),
    }
}

/// Parses `source` and checks what comes back.
fn check(source: &str) {
    match parse(source, &options()) {
        Ok(script) => drop(script),
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty(), "an error without a diagnostic");
            for d in &diagnostics {
                for label in std::iter::once(&d.primary).chain(&d.secondary) {
                    assert!(
                        label.span.start <= label.span.end
                            && label.span.end as usize <= source.len(),
                        "span {:?} outside a source of {} bytes: {source:?}",
                        label.span,
                        source.len()
                    );
                    assert!(source.is_char_boundary(label.span.start as usize));
                    assert!(source.is_char_boundary(label.span.end as usize));
                }
                assert!(!d.message.is_empty());
            }
            let text = render(&diagnostics, "<input>", source);
            assert!(text.contains("<input>"));
        }
    }
}

/// Inputs that exercise corners: unclosed things at the end of input,
/// deep nesting, huge numbers, odd characters, preprocessor misuse.
const CORPUS: &[&str] = &[
    "",
    " ",
    "\n\n\n",
    "#",
    "//",
    "/*",
    "/**/",
    "/*/",
    "\"",
    "\"\\",
    "\"\\x",
    "\"\\7",
    "%{",
    "%{ %",
    "%(",
    "%( $# %?",
    "%( $# == %?",
    "%( $# == 1 %?",
    "%( $# == 1 %? %:",
    "%( $# == 1 %? %: %: %)",
    "%)",
    "%:",
    "%?",
    "%( $9 == 1 %? %)",
    "%( @1 == \"/bin/ls\" %? probe a {} %)",
    "$",
    "$$",
    "$$$",
    "@",
    "@#",
    "$#",
    "$0",
    "$99999999999",
    "@define",
    "probe",
    "probe {",
    "probe { {",
    "probe {a",
    "probe {a,",
    "probe {a}",
    "probe {a}.",
    "probe a.",
    "probe a(",
    "probe a(-",
    "probe a(-$1",
    "probe a($1)",
    "probe a(@9)",
    "probe a if",
    "probe a if (",
    "probe a =",
    "probe a = b",
    "probe a +=",
    "probe a {",
    "probe a { x",
    "probe a { x =",
    "probe a { x = (",
    "probe a { x = [",
    "probe a { x = [a",
    "probe a { x = [a]",
    "probe a { x = [a] in",
    "probe a { foreach",
    "probe a { foreach (",
    "probe a { foreach (v",
    "probe a { foreach (v =",
    "probe a { foreach (v = [",
    "probe a { foreach ([a,",
    "probe a { foreach (k in",
    "probe a { foreach (k in x limit",
    "probe a { try",
    "probe a { try {} catch (",
    "probe a { for (",
    "probe a { for (;",
    "probe a { for (;;",
    "probe a { $x->",
    "probe a { $x[",
    "probe a { @cast(",
    "probe a { @cast(p, \"t\")->",
    "probe a { print(@hist_linear(x,",
    "probe a { print(@hist_linear(x, 1, 2, 3)",
    "probe a { printf(",
    "probe a { printd(\",\"",
    "probe a { a ? b",
    "probe a { a ? b :",
    "probe a { a =~",
    "probe a { -",
    "probe a { ++",
    "probe a { !!!!!!!!",
    "function",
    "function f",
    "function f:",
    "function f(",
    "function f(a:",
    "function f(a)",
    "function f(a):",
    "global",
    "global a[",
    "global a[-1]",
    "global a[99999999999999999999]",
    "global a =",
    "global a = -",
    "global a = -$1",
    "private",
    "private function",
    "0x",
    "0xffffffffffffffffff",
    "18446744073709551615",
    "18446744073709551616",
    "probe a { x = 18446744073709551615 }",
    "probe a(-9223372036854775808) {}",
    "probe a(-9223372036854775809) {}",
    "\u{0}",
    "\u{feff}probe a {}",
    "probe a { x = \"é\" . \"\u{1F600}\" }",
    "probe a { é }",
    "probe a { x = 'é' }",
    "probe \u{a0} a {}",
    "probe {a,b}.{c,d}.{e,f}.{g,h}.{i,j}.{k,l}.{m,n}.{o,p}.{q,r}.{s,t}.{u,v}.{w,x}.{y,z} {}",
    "probe a? if (1) . b {}",
    "probe {a?}.b {}",
];

/// Every script of the regression corpus (`tests/fuzz_corpus/`, inputs
/// that once were or could be trouble) and of the conformance suite goes
/// through the whole front end and code generation: errors are fine,
/// panics are not. proptest keeps its own failures in
/// `proptest-regressions/`; copy a minimized one here to keep it forever.
#[test]
fn regression_corpus_never_panics() {
    use wasmtap_compiler::{CompileOptions, catalog::StaticCatalog, compile};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("tests/fuzz_corpus")];
    for kind in ["ok", "parse_err", "type_err", "run"] {
        dirs.push(root.join("../tests/conformance").join(kind));
    }
    let catalog = StaticCatalog::x86_64((6, 18, 0));
    let mut seen = 0;
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            if path.extension().is_none_or(|x| x != "stp") {
                continue;
            }
            let source = std::fs::read_to_string(&path).expect("read corpus file");
            check(&source);
            let _ = compile(&source, &catalog, &CompileOptions::default());
            seen += 1;
        }
    }
    assert!(seen > 250, "only {seen} corpus scripts found");
}

#[test]
fn corpus_never_panics() {
    for source in CORPUS {
        check(source);
    }
}

#[test]
fn deep_nesting_of_every_kind_is_refused_without_overflow() {
    let n = 20_000;
    for (open, close) in [
        ("(", ")"),
        ("{", "}"),
        ("[", "]"),
        ("-", ""),
        ("!", ""),
        ("f(", ")"),
        ("a[", "]"),
        ("$a[", "]"),
        ("@cast(", ",\"t\")"),
        ("if (1) ", ""),
        ("if (1) x; else ", ""),
        ("a ? b : ", ""),
        ("a = ", ""),
        ("a + ", ""),
        ("sprintf(\"\", ", ")"),
    ] {
        let body = format!("{}1{}", open.repeat(n), close.repeat(n));
        check(&format!("probe begin {{ {body} }}"));
        check(&format!("function f() {{ {body} }}"));
    }
    check(&format!("probe {}a{} {{}}", "{".repeat(n), "}".repeat(n)));
    check(&"%( $# == 0 %? ".repeat(n));
}

#[test]
fn long_flat_chains_are_fine_or_refused() {
    // Left-associative chains nest the tree; they count against the limit.
    check(&format!(
        "probe begin {{ x = 1{} }}",
        " + 1".repeat(100_000)
    ));
    assert!(
        parse(
            &format!("probe begin {{ x = 1{} }}", " + 1".repeat(200)),
            &options()
        )
        .is_ok()
    );
    // Many statements, probe points and arguments are flat and fine.
    let many = "x = 1; ".repeat(10_000);
    assert!(parse(&format!("probe begin {{ {many} }}"), &options()).is_ok());
    let points = vec!["timer.s(1)"; 1000].join(", ");
    assert!(parse(&format!("probe {points} {{}}"), &options()).is_ok());
}

/// Script tokens, well-formed and not, to glue into random soups.
const VOCABULARY: &[&str] = &[
    "probe",
    "global",
    "private",
    "function",
    "if",
    "else",
    "for",
    "foreach",
    "in",
    "limit",
    "return",
    "delete",
    "while",
    "break",
    "continue",
    "next",
    "string",
    "long",
    "try",
    "catch",
    "begin",
    "end",
    "syscall",
    "open",
    "timer",
    "ms",
    "process",
    "x",
    "a",
    "k",
    "printf",
    "print",
    "println",
    "printd",
    "sprintf",
    "f",
    "$x",
    "$$parms",
    "$",
    "$1",
    "@1",
    "$#",
    "@#",
    "$9",
    "@count",
    "@sum",
    "@hist_log",
    "@hist_linear",
    "@cast",
    "@var",
    "@entry",
    "@foo",
    "@",
    "0",
    "1",
    "-1",
    "0x10",
    "010",
    "\"s\"",
    "\"%d\\n\"",
    "\"",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ";",
    ":",
    "?",
    "!",
    ".",
    "*",
    "+",
    "-",
    "/",
    "%",
    "~",
    "&",
    "|",
    "^",
    "<",
    ">",
    "=",
    "==",
    "!=",
    "<=",
    ">=",
    "=~",
    "!~",
    "+=",
    ".=",
    "<<<",
    "<<",
    ">>",
    ">>>",
    "&&",
    "||",
    "++",
    "--",
    "->",
    "%(",
    "%?",
    "%:",
    "%)",
    "%{ c %}",
    "kernel_v",
    "arch",
    "\"5.0\"",
    "#c\n",
    "/* c */",
    "`",
    "'",
];

fn soup() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(VOCABULARY), 0..120),
        prop::collection::vec(prop::bool::ANY, 120),
    )
        .prop_map(|(tokens, spaces)| {
            let mut out = String::new();
            for (token, space) in tokens.iter().zip(spaces) {
                out.push_str(token);
                if space {
                    out.push(' ');
                }
            }
            out
        })
}

/// Mostly-valid scripts with a random edit, to reach deep parser states.
fn mutated() -> impl Strategy<Value = String> {
    const SEEDS: &[&str] = &[
        "global s; probe timer.profile { if (pid() == target()) s[ubacktrace()] <<< 1 }",
        "probe timer.s(20) { foreach (i in s-) { print_ustack(i); printf(\"\\t%d\\n\", @count(s[i])) } exit() }",
        "probe process(\"/bin/ls\").function(\"ma*\").return? if (x) { printf(\"%s\\n\", $$parms$) }",
        "function f:long(a:long, b:string) { try { return a + 1 } catch (e) { return -1 } }",
        "probe begin { x = @cast(p, \"PyThreadState\")->frame; %( $# > 1 %? y = $2 %: y = 0 %) }",
        "probe syscall.{open, close}.return, kernel.trace(\"sched:sched_switch\") { foreach ([a, b+] in x limit 10) delete x[a, b] }",
    ];
    (
        prop::sample::select(SEEDS),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        prop::sample::select(VOCABULARY),
    )
        .prop_map(|(seed, at, len, insert)| {
            let bytes = seed.as_bytes();
            let start = at.index(bytes.len());
            let end = (start + len.index(8)).min(bytes.len());
            let mut out = seed[..start].to_owned();
            out.push_str(insert);
            out.push_str(&seed[end..]);
            out
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,200}") {
        check(&text);
    }

    #[test]
    fn token_soups_never_panic(source in soup()) {
        check(&source);
    }

    #[test]
    fn mutated_scripts_never_panic(source in mutated()) {
        check(&source);
    }
}

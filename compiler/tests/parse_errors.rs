//! Scripts that must fail, compared with the full rendered diagnostic.
//!
//! Each expectation is the text `diagnostics::render` prints for the file
//! `<input>` (trailing spaces at line ends are ignored, so that this file
//! has none). When a message changes on purpose, update the text here and
//! check by eye that the caret still points at the right token.

use wasmtap_compiler::diagnostics::render;
use wasmtap_compiler::syntax::{ParseOptions, parse};

/// Two script arguments, a 5.15 kernel, x86_64.
fn options() -> ParseOptions {
    ParseOptions {
        args: vec!["/bin/ls".into(), "100".into()],
        kernel_version: (5, 15, 0),
        arch: "x86_64".into(),
    }
}

fn trim_lines(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses `source`, which must fail, and compares the rendered errors with
/// `expected` (its first line break is for layout only).
#[track_caller]
fn check(source: &str, expected: &str) {
    let diagnostics = match parse(source, &options()) {
        Ok(_) => panic!("parsed without error:\n{source}"),
        Err(diagnostics) => diagnostics,
    };
    assert_eq!(diagnostics.len(), 1, "one error at a time");
    let got = render(&diagnostics, "<input>", source);
    let expected = expected.strip_prefix('\n').unwrap_or(expected);
    assert_eq!(
        trim_lines(&got),
        trim_lines(expected),
        "\n--- got ---\n{got}\n--- for ---\n{source}"
    );
}

// ---------------------------------------------------------------------------
// Lexical errors

#[test]
fn unterminated_string() {
    check(
        "probe begin { x = \"abc }",
        r#"
Error: unterminated string (<input>:1:19)
   ,-[ <input>:1:19 ]
   |
 1 | probe begin { x = "abc }
   |                   ^^^|^^
   |                      `---- this string is never closed
   |
   | Help: close it with '"' on the same line; write a newline as \n
---'
"#,
    );
}

#[test]
fn unterminated_comment() {
    check(
        "/* never closed\nprobe begin {}",
        r#"
Error: unterminated comment (<input>:1:1)
   ,-[ <input>:1:1 ]
   |
 1 | /* never closed
   | ^|
   |  `-- this comment is never closed
   |
   | Help: close it with '*/'
---'
"#,
    );
}

#[test]
fn hex_without_digits() {
    check(
        "probe begin { x = 0x }",
        r#"
Error: invalid number '0x' (<input>:1:19)
   ,-[ <input>:1:19 ]
   |
 1 | probe begin { x = 0x }
   |                   ^|
   |                    `-- not a number
   |
   | Help: numbers are decimal (42), hexadecimal (0x2a) or octal (052)
---'
"#,
    );
}

#[test]
fn number_too_large() {
    check(
        "probe begin { x = 99999999999999999999 }",
        r#"
Error: number '99999999999999999999' does not fit in 64 bits (<input>:1:19)
   ,-[ <input>:1:19 ]
   |
 1 | probe begin { x = 99999999999999999999 }
   |                   ^^^^^^^^^^|^^^^^^^^^
   |                             `----------- out of range
   |
   | Help: the largest number is 18446744073709551615 (0xffffffffffffffff)
---'
"#,
    );
}

#[test]
fn bad_octal_digit() {
    check(
        "probe begin { x = 089 }",
        r#"
Error: invalid number '089' (<input>:1:19)
   ,-[ <input>:1:19 ]
   |
 1 | probe begin { x = 089 }
   |                   ^|^
   |                    `--- not a number
   |
   | Help: numbers are decimal (42), hexadecimal (0x2a) or octal (052)
---'
"#,
    );
}

#[test]
fn unknown_character() {
    check(
        "probe begin { x = `y` }",
        r#"
Error: unexpected character '`' (<input>:1:19)
   ,-[ <input>:1:19 ]
   |
 1 | probe begin { x = `y` }
   |                   |
   |                   `-- not part of the language
---'
"#,
    );
}

#[test]
fn single_quotes() {
    check(
        "probe begin { x = 'a' }",
        r#"
Error: unexpected character "'" (<input>:1:19)
   ,-[ <input>:1:19 ]
   |
 1 | probe begin { x = 'a' }
   |                   |
   |                   `-- not part of the language
   |
   | Help: strings are written in double quotes: "text"
---'
"#,
    );
}

#[test]
fn hex_escape_without_digits() {
    check(
        "probe begin { x = \"\\xzz\" }",
        r#"
Error: '\x' escape without hex digits (<input>:1:20)
   ,-[ <input>:1:20 ]
   |
 1 | probe begin { x = "\xzz" }
   |                    ^|
   |                     `-- expected one or two hex digits
   |
   | Help: write a byte as \x41
---'
"#,
    );
}

#[test]
fn octal_escape_out_of_range() {
    check(
        "probe begin { x = \"\\777\" }",
        r#"
Error: octal escape is out of range (<input>:1:20)
   ,-[ <input>:1:20 ]
   |
 1 | probe begin { x = "\777" }
   |                    ^^|^
   |                      `--- larger than \377
---'
"#,
    );
}

#[test]
fn escape_makes_invalid_utf8() {
    check(
        "probe begin { x = \"\\xff\" }",
        r#"
Error: string literal is not valid UTF-8 (<input>:1:19)
   ,-[ <input>:1:19 ]
   |
 1 | probe begin { x = "\xff" }
   |                   ^^^|^^
   |                      `---- its escapes make invalid UTF-8
   |
   | Help: wasmtap strings are UTF-8: byte escapes must spell whole UTF-8 characters
---'
"#,
    );
}

#[test]
fn lone_at_sign() {
    check(
        "probe begin { x = @ }",
        r#"
Error: expected a name, a number or '#' after '@' (<input>:1:19)
   ,-[ <input>:1:19 ]
   |
 1 | probe begin { x = @ }
   |                   |
   |                   `-- a lone '@'
   |
   | Help: '@' starts an operator such as @count(x) or a string argument such as @1
---'
"#,
    );
}

#[test]
fn argument_zero() {
    check(
        "probe begin { x = $0 }",
        r#"
Error: script arguments are numbered from 1 (<input>:1:19)
   ,-[ <input>:1:19 ]
   |
 1 | probe begin { x = $0 }
   |                   ^|
   |                    `-- there is no argument 0
   |
   | Help: the first argument after the script name is $1 (or @1 as a string)
---'
"#,
    );
}

// ---------------------------------------------------------------------------
// Embedded C and macros

#[test]
fn embedded_c_in_handler() {
    check(
        "probe begin { %{ printf(\"x\") %} }",
        r#"
Error: embedded C is not supported by wasmtap (<input>:1:15)
   ,-[ <input>:1:15 ]
   |
 1 | probe begin { %{ printf("x") %} }
   |               ^^^^^^^^|^^^^^^^^
   |                       `---------- embedded C block
   |
   | Help: wasmtap runs handlers in a WebAssembly sandbox and cannot load C code; write this with script functions and tapset builtins
---'
"#,
    );
}

#[test]
fn embedded_c_at_top_level() {
    check(
        "%{ #include <linux/sched.h> %}\nprobe begin {}",
        r#"
Error: embedded C is not supported by wasmtap (<input>:1:1)
   ,-[ <input>:1:1 ]
   |
 1 | %{ #include <linux/sched.h> %}
   | ^^^^^^^^^^^^^^^|^^^^^^^^^^^^^^
   |                `---------------- embedded C block
   |
   | Help: wasmtap runs handlers in a WebAssembly sandbox and cannot load C code; write this with script functions and tapset builtins
---'
"#,
    );
}

#[test]
fn macro_definition() {
    check(
        "@define foo %( 1 %)",
        r#"
Error: macros (@define) are not supported by wasmtap (<input>:1:1)
   ,-[ <input>:1:1 ]
   |
 1 | @define foo %( 1 %)
   | ^^^|^^^
   |    `----- macro definition
   |
   | Help: write a script function instead
---'
"#,
    );
}

// ---------------------------------------------------------------------------
// Delimiters

#[test]
fn unclosed_call() {
    check(
        "probe begin { f(1 }",
        r#"
Error: expected ',' or ')', found '}' (<input>:1:19)
   ,-[ <input>:1:19 ]
   |
 1 | probe begin { f(1 }
   |                |  |
   |                |  `-- expected ',' or ')'
   |                |
   |                `----- to match this '('
---'
"#,
    );
}

#[test]
fn unclosed_block_at_end() {
    check(
        "probe begin { printf(\"hi\") ",
        r#"
Error: expected '}', found end of input (<input>:1:28)
   ,-[ <input>:1:28 ]
   |
 1 | probe begin { printf("hi")
   |             |              |
   |             |              `-- expected '}'
   |             |
   |             `----------------- this '{' is not closed
---'
"#,
    );
}

#[test]
fn unclosed_block_before_probe() {
    check(
        "probe begin { x = 1\nprobe end {}",
        r#"
Error: expected '}', found 'probe' (<input>:2:1)
   ,-[ <input>:2:1 ]
   |
 1 | probe begin { x = 1
   |             |
   |             `-- this '{' is not closed
 2 | probe end {}
   | ^^|^^
   |   `---- expected '}'
   |
   | Help: declarations cannot appear inside a block; is a '}' missing?
---'
"#,
    );
}

#[test]
fn unclosed_parenthesis() {
    check(
        "probe begin { x = (1 + 2 }",
        r#"
Error: expected ')', found '}' (<input>:1:26)
   ,-[ <input>:1:26 ]
   |
 1 | probe begin { x = (1 + 2 }
   |                   |      |
   |                   |      `-- expected ')'
   |                   |
   |                   `--------- to match this '('
---'
"#,
    );
}

#[test]
fn unclosed_index() {
    check(
        "probe begin { a[1 = 2 }",
        r#"
Error: expected ',' or ']', found '}' (<input>:1:23)
   ,-[ <input>:1:23 ]
   |
 1 | probe begin { a[1 = 2 }
   |                |      |
   |                |      `-- expected ',' or ']'
   |                |
   |                `--------- to match this '['
---'
"#,
    );
}

#[test]
fn ternary_without_colon() {
    check(
        "probe begin { x = a ? b }",
        r#"
Error: expected ':', found '}' (<input>:1:25)
   ,-[ <input>:1:25 ]
   |
 1 | probe begin { x = a ? b }
   |                     |   |
   |                     |   `-- expected ':'
   |                     |
   |                     `------ to complete this '?'
---'
"#,
    );
}

#[test]
fn stray_closing_brace() {
    check(
        "probe begin {} }",
        r#"
Error: expected 'probe', 'global', 'function' or 'private', found '}' (<input>:1:16)
   ,-[ <input>:1:16 ]
   |
 1 | probe begin {} }
   |                |
   |                `-- expected 'probe', 'global', 'function' or 'private'
   |
   | Help: this '}' closes nothing
---'
"#,
    );
}

// ---------------------------------------------------------------------------
// Probes

#[test]
fn probe_without_point() {
    check(
        "probe { printf(\"hi\") }",
        r#"
Error: expected probe point, found '{' (<input>:1:7)
   ,-[ <input>:1:7 ]
   |
 1 | probe { printf("hi") }
   |       |
   |       `-- expected probe point
   |
   | Help: name the event to probe, as in `probe begin { ... }` or `probe syscall.openat { ... }`
---'
"#,
    );
}

#[test]
fn probe_at_end_of_input() {
    check(
        "probe",
        r#"
Error: expected probe point, found end of input (<input>:1:6)
   ,-[ <input>:1:6 ]
   |
 1 | probe
   |      |
   |      `-- expected probe point
   |
   | Help: name the event to probe, as in `probe begin { ... }` or `probe syscall.openat { ... }`
---'
"#,
    );
}

#[test]
fn probe_without_braces() {
    check(
        "probe begin printf(\"x\")",
        r#"
Error: expected '{', found 'printf' (<input>:1:13)
   ,-[ <input>:1:13 ]
   |
 1 | probe begin printf("x")
   |             ^^^|^^
   |                `---- expected '{'
   |
   | Help: a probe point is followed by its handler in braces, as in `probe timer.s(1) { ... }`; separate several probe points with ','
---'
"#,
    );
}

#[test]
fn probe_argument_unclosed() {
    check(
        "probe timer.ms(1 {}",
        r#"
Error: expected ')', found '{' (<input>:1:18)
   ,-[ <input>:1:18 ]
   |
 1 | probe timer.ms(1 {}
   |               |  |
   |               |  `-- expected ')'
   |               |
   |               `----- to match this '('
---'
"#,
    );
}

#[test]
fn probe_alternatives_unclosed() {
    check(
        "probe syscall.{open, close {}",
        r#"
Error: expected ',' or '}', found '{' (<input>:1:28)
   ,-[ <input>:1:28 ]
   |
 1 | probe syscall.{open, close {}
   |               |            |
   |               |            `-- expected ',' or '}'
   |               |
   |               `--------------- to match this '{'
---'
"#,
    );
}

#[test]
fn probe_argument_not_literal() {
    check(
        "probe begin(x) {}",
        r#"
Error: expected literal number or string, found 'x' (<input>:1:13)
   ,-[ <input>:1:13 ]
   |
 1 | probe begin(x) {}
   |             |
   |             `-- expected literal number or string
---'
"#,
    );
}

#[test]
fn optional_marker_in_the_middle() {
    check(
        "probe a.b?.c {}",
        r#"
Error: '?' and '!' may only follow a whole probe point (<input>:1:10)
   ,-[ <input>:1:10 ]
   |
 1 | probe a.b?.c {}
   |          |
   |          `-- marks part of a probe point
   |
   | Help: move it to the end, as in `probe syscall.open.return? { ... }`
---'
"#,
    );
}

#[test]
fn alias_of_two_names() {
    check(
        "probe a, b = c {}",
        r#"
Error: an alias definition names exactly one new probe point (<input>:1:12)
   ,-[ <input>:1:12 ]
   |
 1 | probe a, b = c {}
   |            |
   |            `-- defines 2 names at once
   |
   | Help: write one alias definition per name
---'
"#,
    );
}

#[test]
fn alias_chain() {
    check(
        "probe foo = bar? = baz {}",
        r#"
Error: an alias definition can define only one alias (<input>:1:18)
   ,-[ <input>:1:18 ]
   |
 1 | probe foo = bar? = baz {}
   |                  |
   |                  `-- second alias
---'
"#,
    );
}

#[test]
fn alias_prologue_and_epilogue() {
    check(
        "probe a = b {} , {}",
        r#"
Error: combined prologue and epilogue aliases are not supported by wasmtap (<input>:1:16)
   ,-[ <input>:1:16 ]
   |
 1 | probe a = b {} , {}
   |                |
   |                `-- second body follows
---'
"#,
    );
}

#[test]
fn probe_argument_too_small() {
    check(
        "probe begin(-9223372036854775809) {}",
        r#"
Error: number out of range (<input>:1:13)
   ,-[ <input>:1:13 ]
   |
 1 | probe begin(-9223372036854775809) {}
   |             ^^^^^^^^^^|^^^^^^^^^
   |                       `----------- below the smallest 64-bit number
---'
"#,
    );
}

#[test]
fn missing_string_argument() {
    check(
        "probe process(@3) {}",
        r#"
Error: script argument @3 was not given (<input>:1:15)
   ,-[ <input>:1:15 ]
   |
 1 | probe process(@3) {}
   |               ^|
   |                `-- the script was given 2 arguments
   |
   | Help: script arguments follow the script name on the command line, as with stap
---'
"#,
    );
}

#[test]
fn numeric_argument_not_a_number() {
    check(
        "probe timer.ms($1) {}",
        r#"
Error: script argument $1 is not a number (<input>:1:16)
   ,-[ <input>:1:16 ]
   |
 1 | probe timer.ms($1) {}
   |                ^|
   |                 `-- its value is "/bin/ls"
   |
   | Help: use @1 to take the argument as a string
---'
"#,
    );
}

// ---------------------------------------------------------------------------
// Declarations

#[test]
fn statement_at_top_level() {
    check(
        "x = 1",
        r#"
Error: expected 'probe', 'global', 'function' or 'private', found 'x' (<input>:1:1)
   ,-[ <input>:1:1 ]
   |
 1 | x = 1
   | |
   | `-- expected 'probe', 'global', 'function' or 'private'
   |
   | Help: statements belong in a probe handler: probe begin { ... }
---'
"#,
    );
}

#[test]
fn private_probe() {
    check(
        "private probe begin {}",
        r#"
Error: expected 'function', 'global' or a variable name, found 'probe' (<input>:1:9)
   ,-[ <input>:1:9 ]
   |
 1 | private probe begin {}
   |         ^^|^^
   |           `---- expected 'function', 'global' or a variable name
---'
"#,
    );
}

#[test]
fn duplicate_parameter() {
    check(
        "function f(a, a) { }",
        r#"
Error: duplicate parameter 'a' (<input>:1:15)
   ,-[ <input>:1:15 ]
   |
 1 | function f(a, a) { }
   |            |  |
   |            |  `-- declared again here
   |            |
   |            `----- first declared here
---'
"#,
    );
}

#[test]
fn parameters_without_comma() {
    check(
        "function f(a b) { }",
        r#"
Error: expected ',' or ')', found 'b' (<input>:1:14)
   ,-[ <input>:1:14 ]
   |
 1 | function f(a b) { }
   |           |  |
   |           |  `-- expected ',' or ')'
   |           |
   |           `----- to match this '('
---'
"#,
    );
}

#[test]
fn keyword_as_function_name() {
    check(
        "function next() { }",
        r#"
Error: expected function name, found 'next' (<input>:1:10)
   ,-[ <input>:1:10 ]
   |
 1 | function next() { }
   |          ^^|^
   |            `--- expected function name
   |
   | Help: 'next' is a reserved word and cannot be used as a name
---'
"#,
    );
}

#[test]
fn function_priority() {
    check(
        "function f(a) : 5 { }",
        r#"
Error: function priorities are not supported by wasmtap (<input>:1:17)
   ,-[ <input>:1:17 ]
   |
 1 | function f(a) : 5 { }
   |                 |
   |                 `-- priority
   |
   | Help: a script has one definition of each function
---'
"#,
    );
}

#[test]
fn return_type_twice() {
    check(
        "function f:long(a):string { }",
        r#"
Error: return type given twice (<input>:1:20)
   ,-[ <input>:1:20 ]
   |
 1 | function f:long(a):string { }
   |                    ^^^|^^
   |                       `---- second return type
---'
"#,
    );
}

#[test]
fn initialized_array() {
    check(
        "global a[10] = 5",
        r#"
Error: only scalar globals can be initialized (<input>:1:14)
   ,-[ <input>:1:14 ]
   |
 1 | global a[10] = 5
   |              |
   |              `-- initializer of an array
   |
   | Help: fill the array in `probe begin { ... }`
---'
"#,
    );
}

#[test]
fn global_initialized_with_variable() {
    check(
        "global x = y",
        r#"
Error: expected literal number or string, found 'y' (<input>:1:12)
   ,-[ <input>:1:12 ]
   |
 1 | global x = y
   |            |
   |            `-- expected literal number or string
   |
   | Help: a global starts with a constant; compute other values in `probe begin { ... }`
---'
"#,
    );
}

#[test]
fn global_without_name() {
    check(
        "global",
        r#"
Error: expected variable name, found end of input (<input>:1:7)
   ,-[ <input>:1:7 ]
   |
 1 | global
   |       |
   |       `-- expected variable name
---'
"#,
    );
}

#[test]
fn wrap_around_array() {
    check(
        "global a%[10]",
        r#"
Error: wrap-around arrays ('%') are not supported by wasmtap (<input>:1:9)
   ,-[ <input>:1:9 ]
   |
 1 | global a%[10]
   |         |
   |         `-- wrap-around marker
---'
"#,
    );
}

#[test]
fn array_size_zero() {
    check(
        "global a[0]",
        r#"
Error: array size out of range (<input>:1:10)
   ,-[ <input>:1:10 ]
   |
 1 | global a[0]
   |          |
   |          `-- must be between 1 and 2147483647
---'
"#,
    );
}

// ---------------------------------------------------------------------------
// Statements

#[test]
fn if_without_parentheses() {
    check(
        "probe begin { if x > 1 { } }",
        r#"
Error: expected '(', found 'x' (<input>:1:18)
   ,-[ <input>:1:18 ]
   |
 1 | probe begin { if x > 1 { } }
   |                  |
   |                  `-- expected '('
   |
   | Help: the condition of 'if' is written in parentheses: if (x > 0) ...
---'
"#,
    );
}

#[test]
fn return_in_probe() {
    check(
        "probe begin { return 1 }",
        r#"
Error: 'return' outside a function (<input>:1:15)
   ,-[ <input>:1:15 ]
   |
 1 | probe begin { return 1 }
   |               ^^^|^^
   |                  `---- in a probe handler
   |
   | Help: use 'next' to leave a probe handler early
---'
"#,
    );
}

#[test]
fn else_without_if() {
    check(
        "probe begin { if (x) {} else else {} }",
        r#"
Error: expected statement, found 'else' (<input>:1:30)
   ,-[ <input>:1:30 ]
   |
 1 | probe begin { if (x) {} else else {} }
   |                              ^^|^
   |                                `--- expected statement
   |
   | Help: 'else' must directly follow the statement of an 'if'
---'
"#,
    );
}

#[test]
fn foreach_two_sort_markers() {
    check(
        "probe begin { foreach (k- in x+) {} }",
        r#"
Error: more than one sort marker (<input>:1:31)
   ,-[ <input>:1:31 ]
   |
 1 | probe begin { foreach (k- in x+) {} }
   |                               |
   |                               `-- second sort marker
   |
   | Help: a foreach sorts by one column: one key, or the value
---'
"#,
    );
}

#[test]
fn foreach_without_in() {
    check(
        "probe begin { foreach (k of x) {} }",
        r#"
Error: expected 'in', found 'of' (<input>:1:26)
   ,-[ <input>:1:26 ]
   |
 1 | probe begin { foreach (k of x) {} }
   |                          ^|
   |                           `-- expected 'in'
   |
   | Help: a foreach loop reads foreach (KEY in ARRAY) or foreach ([K1, K2] in ARRAY)
---'
"#,
    );
}

#[test]
fn foreach_array_slice() {
    check(
        "probe begin { foreach ([a, b] in x[1, *]) {} }",
        r#"
Error: array slices in foreach are not supported by wasmtap (<input>:1:35)
   ,-[ <input>:1:35 ]
   |
 1 | probe begin { foreach ([a, b] in x[1, *]) {} }
   |                                   |
   |                                   `-- slice
---'
"#,
    );
}

#[test]
fn try_without_catch() {
    check(
        "probe begin { try { } }",
        r#"
Error: expected 'catch', found '}' (<input>:1:23)
   ,-[ <input>:1:23 ]
   |
 1 | probe begin { try { } }
   |                       |
   |                       `-- expected 'catch'
   |
   | Help: a try block is followed by catch { ... }
---'
"#,
    );
}

#[test]
fn for_with_two_parts() {
    check(
        "probe begin { for (i = 0; i < 10) {} }",
        r#"
Error: expected ';', found ')' (<input>:1:33)
   ,-[ <input>:1:33 ]
   |
 1 | probe begin { for (i = 0; i < 10) {} }
   |                                 |
   |                                 `-- expected ';'
---'
"#,
    );
}

#[test]
fn while_without_body() {
    check(
        "probe begin { while (1) }",
        r#"
Error: expected statement, found '}' (<input>:1:25)
   ,-[ <input>:1:25 ]
   |
 1 | probe begin { while (1) }
   |                         |
   |                         `-- expected statement
---'
"#,
    );
}

#[test]
fn delete_without_operand() {
    check(
        "probe begin { delete }",
        r#"
Error: expected expression, found '}' (<input>:1:22)
   ,-[ <input>:1:22 ]
   |
 1 | probe begin { delete }
   |                      |
   |                      `-- expected expression
---'
"#,
    );
}

// ---------------------------------------------------------------------------
// Expressions

#[test]
fn missing_operand() {
    check(
        "probe begin { x = 1 + }",
        r#"
Error: expected expression, found '}' (<input>:1:23)
   ,-[ <input>:1:23 ]
   |
 1 | probe begin { x = 1 + }
   |                       |
   |                       `-- expected expression
---'
"#,
    );
}

#[test]
fn pretty_print_then_member() {
    check(
        "probe begin { $var->a$->b }",
        r#"
Error: '->' and '[' cannot follow the pretty-printing '$' (<input>:1:23)
   ,-[ <input>:1:23 ]
   |
 1 | probe begin { $var->a$->b }
   |                       ^|
   |                        `-- after the pretty-print marker
---'
"#,
    );
}

#[test]
fn bare_dollar() {
    check(
        "probe begin { x = $ }",
        r#"
Error: expected a target variable name after '$' (<input>:1:19)
   ,-[ <input>:1:19 ]
   |
 1 | probe begin { x = $ }
   |                   |
   |                   `-- no name
   |
   | Help: target variables look like $name, $$parms or $var->field
---'
"#,
    );
}

#[test]
fn unknown_at_operator() {
    check(
        "probe begin { x = @foo(1) }",
        r#"
Error: unknown operator '@foo' (<input>:1:19)
   ,-[ <input>:1:19 ]
   |
 1 | probe begin { x = @foo(1) }
   |                   ^^|^
   |                     `--- not a known @-operator
   |
   | Help: the @-operators are @count, @sum, @min, @max, @avg, @variance, @hist_log, @hist_linear, @cast, @var, @defined, @entry and @perf
---'
"#,
    );
}

#[test]
fn histogram_as_value() {
    check(
        "probe begin { x = @hist_log(v) }",
        r#"
Error: a histogram can only be printed (<input>:1:19)
   ,-[ <input>:1:19 ]
   |
 1 | probe begin { x = @hist_log(v) }
   |                   ^^^^|^^^^
   |                       `------ histogram used as a value
   |
   | Help: print it on its own: print(@hist_log(...))
---'
"#,
    );
}

#[test]
fn stat_with_two_arguments() {
    check(
        "probe begin { x = @count(s, 2) }",
        r#"
Error: '@count' takes one argument in wasmtap (<input>:1:27)
   ,-[ <input>:1:27 ]
   |
 1 | probe begin { x = @count(s, 2) }
   |                           |
   |                           `-- extra argument
---'
"#,
    );
}

#[test]
fn pretty_print_after_cast() {
    check(
        "probe begin { x = @cast(p, \"t\")$ }",
        r#"
Error: pretty-printing ('$') of @cast is not supported by wasmtap (<input>:1:32)
   ,-[ <input>:1:32 ]
   |
 1 | probe begin { x = @cast(p, "t")$ }
   |                                |
   |                                `-- pretty-print marker
---'
"#,
    );
}

#[test]
fn print_without_arguments() {
    check(
        "probe begin { print() }",
        r#"
Error: 'print' needs an argument (<input>:1:21)
   ,-[ <input>:1:21 ]
   |
 1 | probe begin { print() }
   |                     |
   |                     `-- arguments end here
---'
"#,
    );
}

#[test]
fn printd_with_one_value() {
    check(
        "probe begin { printd(\",\", 1) }",
        r#"
Error: 'printd' needs at least two values after the delimiter (<input>:1:28)
   ,-[ <input>:1:28 ]
   |
 1 | probe begin { printd(",", 1) }
   |                            |
   |                            `-- arguments end here
---'
"#,
    );
}

#[test]
fn printf_format_not_literal() {
    check(
        "probe begin { printf(fmt, 1) }",
        r#"
Error: expected string literal, found 'fmt' (<input>:1:22)
   ,-[ <input>:1:22 ]
   |
 1 | probe begin { printf(fmt, 1) }
   |                      ^|^
   |                       `--- expected string literal
   |
   | Help: the first argument of 'printf' must be a literal string
---'
"#,
    );
}

#[test]
fn regex_not_literal() {
    check(
        "probe begin { x = s =~ pattern }",
        r#"
Error: expected string literal, found 'pattern' (<input>:1:24)
   ,-[ <input>:1:24 ]
   |
 1 | probe begin { x = s =~ pattern }
   |                        ^^^|^^^
   |                           `----- expected string literal
   |
   | Help: the right side of '=~' and '!~' is a literal regular expression
---'
"#,
    );
}

#[test]
fn regex_chained_with_comparison() {
    check(
        "probe begin { x = a =~ \"x\" == 1 }",
        r#"
Error: a regular expression match cannot be chained with a comparison (<input>:1:28)
   ,-[ <input>:1:28 ]
   |
 1 | probe begin { x = a =~ "x" == 1 }
   |                            ^|
   |                             `-- chained here
   |
   | Help: add parentheses to say which comes first
---'
"#,
    );
}

#[test]
fn address_of() {
    check(
        "probe begin { x = &$var }",
        r#"
Error: taking an address ('&') is not supported by wasmtap (<input>:1:19)
   ,-[ <input>:1:19 ]
   |
 1 | probe begin { x = &$var }
   |                   |
   |                   `-- address-of
   |
   | Help: read the value itself, or @cast a pointer you already have
---'
"#,
    );
}

#[test]
fn member_of_plain_value() {
    check(
        "probe begin { x = ptr->next }",
        r#"
Error: '->' only follows a $target variable, @cast or @var (<input>:1:22)
   ,-[ <input>:1:22 ]
   |
 1 | probe begin { x = ptr->next }
   |                      ^|
   |                       `-- member access on a plain value
   |
   | Help: name the type: @cast(EXPR, "struct_name")->member
---'
"#,
    );
}

#[test]
fn index_twice() {
    check(
        "probe begin { x = a[1][2] }",
        r#"
Error: this value cannot be indexed (<input>:1:23)
   ,-[ <input>:1:23 ]
   |
 1 | probe begin { x = a[1][2] }
   |                       |
   |                       `-- '[' after a value that is not an array
   |
   | Help: an array takes all its keys in one bracket: a[k1, k2]
---'
"#,
    );
}

#[test]
fn wildcard_key() {
    check(
        "probe begin { x = [a, *] in arr }",
        r#"
Error: wildcard '*' keys are not supported by wasmtap (<input>:1:23)
   ,-[ <input>:1:23 ]
   |
 1 | probe begin { x = [a, *] in arr }
   |                       |
   |                       `-- wildcard
---'
"#,
    );
}

#[test]
fn in_chained() {
    check(
        "probe begin { x = k in a in b }",
        r#"
Error: an 'in' test cannot be the left side of another 'in' (<input>:1:26)
   ,-[ <input>:1:26 ]
   |
 1 | probe begin { x = k in a in b }
   |                          ^|
   |                           `-- second 'in'
---'
"#,
    );
}

#[test]
fn comparison_after_in() {
    check(
        "probe begin { x = k in a == 1 }",
        r#"
Error: '==' cannot follow an 'in' test (<input>:1:26)
   ,-[ <input>:1:26 ]
   |
 1 | probe begin { x = k in a == 1 }
   |                          ^|
   |                           `-- needs parentheses
   |
   | Help: put the 'in' test in parentheses: (k in a) == 0
---'
"#,
    );
}

#[test]
fn unsigned_shift() {
    check(
        "probe begin { x = a >>> 1 }",
        r#"
Error: '>>>' is not supported by wasmtap (<input>:1:21)
   ,-[ <input>:1:21 ]
   |
 1 | probe begin { x = a >>> 1 }
   |                     ^|^
   |                      `--- unsigned shift
   |
   | Help: use '>>' on a non-negative value
---'
"#,
    );
}

#[test]
fn triple_plus() {
    check(
        "probe begin { x = 1 } probe end { y = +++ }",
        r#"
Error: expected expression, found '+' (<input>:1:41)
   ,-[ <input>:1:41 ]
   |
 1 | probe begin { x = 1 } probe end { y = +++ }
   |                                         |
   |                                         `-- expected expression
---'
"#,
    );
}

#[test]
fn nesting_too_deep() {
    check(
        &format!(
            "probe begin {{ x =\n{}1{} }}",
            "(\n".repeat(300),
            ")".repeat(300)
        ),
        r#"
Error: nesting too deep (<input>:256:1)
     ,-[ <input>:256:1 ]
     |
 256 | (
     | |
     | `-- more than 256 levels deep
     |
     | Help: split the expression or statement into smaller parts
-----'
"#,
    );
}

// ---------------------------------------------------------------------------
// Preprocessor conditionals

#[test]
fn conditional_never_closed() {
    check(
        "%( $# > 1 %? probe a {} ",
        r#"
Error: expected '%)', found end of input (<input>:1:25)
   ,-[ <input>:1:25 ]
   |
 1 | %( $# > 1 %? probe a {}
   | ^|                      |
   |  |                      `-- expected '%)'
   |  |
   |  `------------------------- this conditional is never closed
---'
"#,
    );
}

#[test]
fn conditional_unknown_name() {
    check(
        "%( foo == 1 %? probe a {} %)",
        r#"
Error: unknown preprocessor condition 'foo' (<input>:1:4)
   ,-[ <input>:1:4 ]
   |
 1 | %( foo == 1 %? probe a {} %)
   |    ^|^
   |     `--- not something a conditional can test
   |
   | Help: a condition compares kernel_v, kernel_vr, arch, systemtap_v, $# or @# with a literal, e.g. %( kernel_v >= "5.8" %? ... %)
---'
"#,
    );
}

#[test]
fn kernel_version_as_number() {
    check(
        "%( kernel_v >= 5 %? probe a {} %)",
        r#"
Error: expected a version string, found '5' (<input>:1:16)
   ,-[ <input>:1:16 ]
   |
 1 | %( kernel_v >= 5 %? probe a {} %)
   | ^|             |
   |  |             `-- expected a version string
   |  |
   |  `---------------- in this conditional
   |
   | Help: a condition compares kernel_v, kernel_vr, arch, systemtap_v, $# or @# with a literal, e.g. %( kernel_v >= "5.8" %? ... %)
---'
"#,
    );
}

#[test]
fn arch_order_comparison() {
    check(
        "%( arch < \"x86\" %? probe a {} %)",
        r#"
Error: expected '==' or '!=', found '<' (<input>:1:9)
   ,-[ <input>:1:9 ]
   |
 1 | %( arch < "x86" %? probe a {} %)
   | ^|      |
   |  |      `-- expected '==' or '!='
   |  |
   |  `--------- in this conditional
   |
   | Help: a condition compares kernel_v, kernel_vr, arch, systemtap_v, $# or @# with a literal, e.g. %( kernel_v >= "5.8" %? ... %)
---'
"#,
    );
}

#[test]
fn conditional_without_then() {
    check(
        "%( $# > 1 probe a {} %)",
        r#"
Error: expected '%?', found 'probe' (<input>:1:11)
   ,-[ <input>:1:11 ]
   |
 1 | %( $# > 1 probe a {} %)
   | ^|        ^^|^^
   |  |          `---- expected '%?'
   |  |
   |  `--------------- in this conditional
   |
   | Help: a conditional reads %( CONDITION %? THEN %: ELSE %)
---'
"#,
    );
}

#[test]
fn close_without_open() {
    check(
        "probe a {} %)",
        r#"
Error: '%)' without a matching '%(' (<input>:1:12)
   ,-[ <input>:1:12 ]
   |
 1 | probe a {} %)
   |            ^|
   |             `-- no conditional is open here
   |
   | Help: a conditional reads %( CONDITION %? THEN %: ELSE %)
---'
"#,
    );
}

#[test]
fn else_twice() {
    check(
        "%( $# == 0 %? probe a {} %: probe b {} %: probe c {} %)",
        r#"
Error: duplicate '%:' in conditional (<input>:1:40)
   ,-[ <input>:1:40 ]
   |
 1 | %( $# == 0 %? probe a {} %: probe b {} %: probe c {} %)
   | ^|                                     ^|
   |  |                                      `-- second '%:'
   |  |
   |  `----------------------------------------- in this conditional
---'
"#,
    );
}

#[test]
fn then_without_open() {
    check(
        "%( $# == 2 %? probe a {} %) %?",
        r#"
Error: '%?' without a matching '%(' (<input>:1:29)
   ,-[ <input>:1:29 ]
   |
 1 | %( $# == 2 %? probe a {} %) %?
   |                             ^|
   |                              `-- no conditional is open here
   |
   | Help: a conditional reads %( CONDITION %? THEN %: ELSE %)
---'
"#,
    );
}

#[test]
fn kernel_config_option() {
    check(
        "%( CONFIG_SMP == \"y\" %? probe a {} %)",
        r#"
Error: kernel configuration options are not known to wasmtap (<input>:1:4)
   ,-[ <input>:1:4 ]
   |
 1 | %( CONFIG_SMP == "y" %? probe a {} %)
   |    ^^^^^|^^^^
   |         `------ cannot be tested
---'
"#,
    );
}

#[test]
fn number_against_string() {
    check(
        "%( $# == \"two\" %? probe a {} %)",
        r#"
Error: cannot compare a number with a string (<input>:1:7)
   ,-[ <input>:1:7 ]
   |
 1 | %( $# == "two" %? probe a {} %)
   |       ^|
   |        `-- a number on one side, a string on the other
---'
"#,
    );
}

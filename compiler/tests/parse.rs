//! Scripts that must parse, with the shape of their AST.
//!
//! Shapes are compared as compact S-expressions printed by [`Sx`] below:
//! `(+ a (* b c))` for `a + b * c`, so precedence tests read at a glance.

use wasmtap_compiler::diagnostics::render;
use wasmtap_compiler::span::Span;
use wasmtap_compiler::syntax::ast::*;
use wasmtap_compiler::syntax::{ParseOptions, parse};

// ---------------------------------------------------------------------------
// Helpers

fn options() -> ParseOptions {
    ParseOptions {
        args: vec!["/bin/ls".into(), "100".into(), "-7".into()],
        kernel_version: (5, 15, 0),
        arch: "x86_64".into(),
    }
}

fn parse_with(source: &str, options: &ParseOptions) -> Script {
    match parse(source, options) {
        Ok(script) => script,
        Err(diagnostics) => panic!(
            "failed to parse:\n{source}\n{}",
            render(&diagnostics, "<input>", source)
        ),
    }
}

fn script(source: &str) -> Script {
    parse_with(source, &options())
}

/// The whole script as S-expressions, one item per line.
fn sx(source: &str) -> String {
    script(source)
        .items
        .iter()
        .map(item)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The statements of a `probe begin` body.
fn body(statements: &str) -> String {
    let source = format!("probe begin {{ {statements} }}");
    let script = script(&source);
    let Item::Probe(probe) = &script.items[0] else {
        panic!("not a probe")
    };
    probe
        .body
        .stmts
        .iter()
        .map(stmt)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One expression, parsed as a statement.
fn ex(expression: &str) -> String {
    body(expression)
}

fn item(item: &Item) -> String {
    match item {
        Item::Global(g) => {
            let mut s = format!("(global {}", g.name.name);
            if g.private {
                s.push_str(" private");
            }
            if let Some(n) = g.max_entries {
                s.push_str(&format!(" [{n}]"));
            }
            if let Some(init) = &g.init {
                s.push_str(&format!(" = {}", expr(init)));
            }
            s + ")"
        }
        Item::Probe(p) => {
            let mut s = String::from("(probe");
            if let Some(alias) = &p.alias {
                let op = if alias.epilogue { "+=" } else { "=" };
                s.push_str(&format!(" {} {op}", point(&alias.name)));
            }
            for pt in &p.points {
                s.push(' ');
                s.push_str(&point(pt));
            }
            s.push(' ');
            s.push_str(&block(&p.body));
            s + ")"
        }
        Item::Function(f) => {
            let mut s = format!("(function {}", f.name.name);
            if f.private {
                s.push_str(" private");
            }
            let params: Vec<String> = f
                .params
                .iter()
                .map(|p| match p.ty {
                    Some(t) => format!("{}:{}", p.name.name, ty(t)),
                    None => p.name.name.clone(),
                })
                .collect();
            s.push_str(&format!(" ({})", params.join(" ")));
            if let Some(t) = f.ret {
                s.push_str(&format!(":{}", ty(t)));
            }
            s.push(' ');
            s.push_str(&block(&f.body));
            s + ")"
        }
    }
}

fn ty(t: TypeAnn) -> &'static str {
    match t {
        TypeAnn::Long => "long",
        TypeAnn::String => "string",
    }
}

fn point(p: &ProbePoint) -> String {
    let mut s = p
        .components
        .iter()
        .map(|c| match &c.arg {
            None => c.name.clone(),
            Some(Literal::Int(n)) => format!("{}({n})", c.name),
            Some(Literal::Str(v)) => format!("{}({v:?})", c.name),
        })
        .collect::<Vec<_>>()
        .join(".");
    if p.sufficient {
        s.push('!');
    } else if p.optional {
        s.push('?');
    }
    if let Some(c) = &p.condition {
        s.push_str(&format!(" if {}", expr(c)));
    }
    s
}

fn block(b: &Block) -> String {
    let inner: Vec<String> = b.stmts.iter().map(stmt).collect();
    if inner.is_empty() {
        "{}".into()
    } else {
        format!("{{{}}}", inner.join(" "))
    }
}

fn stmt(s: &Stmt) -> String {
    match &s.kind {
        StmtKind::Block(b) => block(b),
        StmtKind::Expr(e) => expr(e),
        StmtKind::If {
            cond,
            then,
            otherwise,
        } => match otherwise {
            Some(o) => format!("(if {} {} {})", expr(cond), stmt(then), stmt(o)),
            None => format!("(if {} {})", expr(cond), stmt(then)),
        },
        StmtKind::While { cond, body } => format!("(while {} {})", expr(cond), stmt(body)),
        StmtKind::For {
            init,
            cond,
            step,
            body,
        } => {
            let opt = |e: &Option<Expr>| e.as_ref().map_or("_".into(), expr);
            format!(
                "(for {} {} {} {})",
                opt(init),
                opt(cond),
                opt(step),
                stmt(body)
            )
        }
        StmtKind::Foreach(f) => {
            let mut s = String::from("(foreach ");
            if let Some(v) = &f.value {
                s.push_str(&format!("{} = ", v.name));
            }
            let keys: Vec<&str> = f.keys.iter().map(|k| k.name.as_str()).collect();
            s.push_str(&format!("[{}] in {}", keys.join(" "), f.array.name));
            if let Some(sort) = f.sort {
                let dir = if sort.descending { '-' } else { '+' };
                s.push_str(&format!(" sort{}{}", sort.column, dir));
            }
            if let Some(l) = &f.limit {
                s.push_str(&format!(" limit {}", expr(l)));
            }
            s.push_str(&format!(" {})", stmt(&f.body)));
            s
        }
        StmtKind::Break => "break".into(),
        StmtKind::Continue => "continue".into(),
        StmtKind::Next => "next".into(),
        StmtKind::Return(None) => "(return)".into(),
        StmtKind::Return(Some(e)) => format!("(return {})", expr(e)),
        StmtKind::Delete(e) => format!("(delete {})", expr(e)),
        StmtKind::Try {
            body,
            catch_var,
            catch_body,
        } => {
            let var = catch_var.as_ref().map_or("_", |v| v.name.as_str());
            format!("(try {} catch {var} {})", block(body), block(catch_body))
        }
        StmtKind::Empty => ";".into(),
    }
}

fn binop(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "+",
        BinaryOp::Sub => "-",
        BinaryOp::Mul => "*",
        BinaryOp::Div => "/",
        BinaryOp::Mod => "%",
        BinaryOp::Shl => "<<",
        BinaryOp::Shr => ">>",
        BinaryOp::BitAnd => "&",
        BinaryOp::BitOr => "|",
        BinaryOp::BitXor => "^",
        BinaryOp::And => "&&",
        BinaryOp::Or => "||",
        BinaryOp::Eq => "==",
        BinaryOp::Ne => "!=",
        BinaryOp::Lt => "<",
        BinaryOp::Le => "<=",
        BinaryOp::Gt => ">",
        BinaryOp::Ge => ">=",
        BinaryOp::Concat => ".",
        BinaryOp::Match => "=~",
        BinaryOp::NotMatch => "!~",
    }
}

fn path(path: &[Access]) -> String {
    path.iter()
        .map(|a| match a {
            Access::Member(m) => format!("->{}", m.name),
            Access::Index(i) => format!("[{}]", expr(i)),
        })
        .collect()
}

fn list(items: &[Expr]) -> String {
    items.iter().map(expr).collect::<Vec<_>>().join(" ")
}

fn expr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(n) => n.to_string(),
        ExprKind::Str(s) => format!("{s:?}"),
        ExprKind::Var(v) => v.name.clone(),
        ExprKind::Target(t) => format!(
            "${}{}{}",
            t.name,
            path(&t.path),
            if t.pretty { "$" } else { "" }
        ),
        ExprKind::ScriptArg { index, string } => {
            format!("{}{index}", if *string { '@' } else { '$' })
        }
        ExprKind::ScriptArgCount => "$#".into(),
        ExprKind::Index { array, keys } => format!("{}[{}]", array.name, list(keys)),
        ExprKind::Call { name, args } if args.is_empty() => format!("({})", name.name),
        ExprKind::Call { name, args } => format!("({} {})", name.name, list(args)),
        ExprKind::Unary { op, operand } => {
            let op = match op {
                UnaryOp::Neg => "neg",
                UnaryOp::Plus => "pos",
                UnaryOp::Not => "!",
                UnaryOp::BitNot => "~",
            };
            format!("({op} {})", expr(operand))
        }
        ExprKind::Binary { op, lhs, rhs } => {
            format!("({} {} {})", binop(*op), expr(lhs), expr(rhs))
        }
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => format!("(? {} {} {})", expr(cond), expr(then), expr(otherwise)),
        ExprKind::Assign { op, target, value } => {
            let op = match op {
                AssignOp::Set => "=".to_string(),
                AssignOp::Compound(b) => format!("{}=", binop(*b)),
                AssignOp::Aggregate => "<<<".to_string(),
            };
            format!("({op} {} {})", expr(target), expr(value))
        }
        ExprKind::IncDec {
            increment,
            prefix,
            target,
        } => {
            let op = if *increment { "++" } else { "--" };
            let fix = if *prefix { "pre" } else { "post" };
            format!("({fix}{op} {})", expr(target))
        }
        ExprKind::In { keys, array } => format!("(in [{}] {})", list(keys), array.name),
        ExprKind::StatOp { op, operand } => {
            format!("(@{} {})", format!("{op:?}").to_lowercase(), expr(operand))
        }
        ExprKind::Hist { kind, operand } => match kind {
            HistKind::Log => format!("(@hist_log {})", expr(operand)),
            HistKind::Linear { lo, hi, step } => format!(
                "(@hist_linear {} {} {} {})",
                expr(operand),
                expr(lo),
                expr(hi),
                expr(step)
            ),
        },
        ExprKind::AtCall {
            name,
            args,
            path: p,
        } => {
            format!("(@{} {}){}", name.name, list(args), path(p))
        }
    }
}

/// The text a span covers.
fn at(source: &str, span: Span) -> &str {
    &source[span.range()]
}

// ---------------------------------------------------------------------------
// Lexical structure

#[test]
fn comments_of_all_three_kinds() {
    let src = "# shell\n// c++\n/* c\n block */ probe begin { x = 1 # trailing\n /* inner */ }";
    assert_eq!(sx(src), "(probe begin {(= x 1)})");
}

#[test]
fn shebang_line_is_a_comment() {
    assert_eq!(sx("#!/usr/bin/stap\nprobe end {}"), "(probe end {})");
}

#[test]
fn integer_literals_in_three_bases() {
    assert_eq!(
        ex("a = 42; b = 0x2a; c = 052; d = 0"),
        "(= a 42) (= b 42) (= c 42) (= d 0)"
    );
}

#[test]
fn largest_literals_wrap_like_stap() {
    assert_eq!(ex("9223372036854775807"), "9223372036854775807");
    assert_eq!(ex("0xffffffffffffffff"), "-1");
    assert_eq!(ex("-9223372036854775808"), "(neg -9223372036854775808)");
}

#[test]
fn string_escapes_are_decoded() {
    assert_eq!(
        ex(r#""a\n\t\r\\\"\a\b\f\v\101\x41\0""#),
        format!("{:?}", "a\n\t\r\\\"\x07\x08\x0c\x0bAA\0")
    );
}

#[test]
fn unknown_escapes_stand_for_the_character() {
    assert_eq!(ex(r#""\d\q""#), r#""dq""#);
}

#[test]
fn hex_escapes_may_spell_utf8() {
    assert_eq!(ex(r#""caf\xc3\xa9""#), r#""café""#);
}

#[test]
fn adjacent_strings_are_concatenated_as_in_stap() {
    assert_eq!(ex(r#"x = "a" "b" /* c */ "c""#), r#"(= x "abc")"#);
}

#[test]
fn identifiers_may_contain_dollars_and_underscores() {
    assert_eq!(ex("_a1 = b$c"), "(= _a1 b$c)");
}

#[test]
fn minus_then_greater_is_an_arrow_only_when_adjacent() {
    assert_eq!(ex("x = $a-> b"), "(= x $a->b)");
    assert_eq!(ex("a-1 > b"), "(> (- a 1) b)");
}

#[test]
fn dot_equals_is_one_operator() {
    assert_eq!(ex("s .= \"x\""), r#"(.= s "x")"#);
    assert_eq!(ex("s . t"), "(. s t)");
}

#[test]
fn shift_and_aggregate_operators_lex_greedily() {
    assert_eq!(ex("s <<< 1"), "(<<< s 1)");
    assert_eq!(ex("a <<= 2"), "(<<= a 2)");
    assert_eq!(ex("a << 2"), "(<< a 2)");
    assert_eq!(ex("a >>= 2; b >> 1"), "(>>= a 2) (>> b 1)");
}

#[test]
fn minus_minus_greater_is_decrement_then_greater() {
    assert_eq!(ex("x-->0"), "(> (post-- x) 0)");
}

// ---------------------------------------------------------------------------
// Script arguments

#[test]
fn script_arguments_stay_nodes_in_expressions() {
    assert_eq!(ex("x = $1 + $2; s = @1"), "(= x (+ $1 $2)) (= s @1)");
}

#[test]
fn argument_counts_are_nodes() {
    assert_eq!(ex("n = $#; m = @#"), "(= n $#) (= m $#)");
}

#[test]
fn script_arguments_are_substituted_in_probe_points() {
    assert_eq!(
        sx("probe process(@1).function(\"main\") {} probe timer.ms($2) {}"),
        "(probe process(\"/bin/ls\").function(\"main\") {})\n(probe timer.ms(100) {})"
    );
}

#[test]
fn negative_numeric_argument_in_probe_point() {
    assert_eq!(sx("probe begin($3) {}"), "(probe begin(-7) {})");
}

#[test]
fn global_initializer_keeps_argument_nodes() {
    assert_eq!(
        sx("global a = $2, b = @1"),
        "(global a = $2)\n(global b = @1)"
    );
}

#[test]
fn array_size_may_come_from_an_argument() {
    assert_eq!(sx("global a[$2]"), "(global a [100])");
}

// ---------------------------------------------------------------------------
// Target variables

#[test]
fn plain_target_variable() {
    assert_eq!(ex("x = $filename"), "(= x $filename)");
}

#[test]
fn double_dollar_forms_keep_one_dollar() {
    assert_eq!(
        ex("a = $$parms; b = $$vars; c = $$locals; d = $$return; e = $return"),
        "(= a $$parms) (= b $$vars) (= c $$locals) (= d $$return) (= e $return)"
    );
    let script = script("probe begin { $$parms }");
    let Item::Probe(p) = &script.items[0] else {
        panic!()
    };
    let StmtKind::Expr(Expr {
        kind: ExprKind::Target(t),
        ..
    }) = &p.body.stmts[0].kind
    else {
        panic!()
    };
    assert_eq!(t.name, "$parms");
}

#[test]
fn member_and_index_chains() {
    assert_eq!(ex("x = $var->a->b[3]"), "(= x $var->a->b[3])");
    assert_eq!(ex("x = $p[i + 1]->next"), "(= x $p[(+ i 1)]->next)");
}

#[test]
fn members_may_be_keywords() {
    assert_eq!(ex("x = $task->next->string"), "(= x $task->next->string)");
}

#[test]
fn pretty_print_markers() {
    assert_eq!(
        ex("a = $var$; b = $$parms$$; c = $p->f$; d = $arr[0]$; e = $arr[1] $"),
        "(= a $var$) (= b $$parms$) (= c $p->f$) (= d $arr[0]$) (= e $arr[1]$)"
    );
}

#[test]
fn target_span_covers_the_chain() {
    let src = "probe begin { $a->b[2] }";
    let script = script(src);
    let Item::Probe(p) = &script.items[0] else {
        panic!()
    };
    assert_eq!(at(src, p.body.stmts[0].span), "$a->b[2]");
}

// ---------------------------------------------------------------------------
// @-operators

#[test]
fn statistics_extractors() {
    assert_eq!(
        ex("a = @count(s); b = @sum(s[k]); c = @min(s) + @max(s); d = @avg(s); e = @variance(s)"),
        "(= a (@count s)) (= b (@sum s[k])) (= c (+ (@min s) (@max s))) (= d (@avg s)) (= e (@variance s))"
    );
}

#[test]
fn histograms_are_printed() {
    assert_eq!(
        ex("print(@hist_log(s)); println(@hist_linear(s[k], 0, 100, -10))"),
        "(print (@hist_log s)) (println (@hist_linear s[k] 0 100 -10))"
    );
}

#[test]
fn cast_with_member_chain() {
    assert_eq!(
        ex("f = @cast(ptr, \"PyThreadState\")->frame"),
        "(= f (@cast ptr \"PyThreadState\")->frame)"
    );
    assert_eq!(
        ex("x = @cast(p, \"task_struct\", \"kernel\")->parent->pid"),
        "(= x (@cast p \"task_struct\" \"kernel\")->parent->pid)"
    );
}

#[test]
fn var_entry_defined_and_friends() {
    assert_eq!(
        ex(
            "a = @var(\"_PyThreadState_Current@Python/pystate.c\"); b = @entry($x); c = @defined($y) ? 1 : 0"
        ),
        "(= a (@var \"_PyThreadState_Current@Python/pystate.c\")) (= b (@entry $x)) (= c (? (@defined $y) 1 0))"
    );
}

#[test]
fn at_call_name_excludes_the_at_sign() {
    let src = "probe begin { @cast(p, \"t\")->f }";
    let script = script(src);
    let Item::Probe(p) = &script.items[0] else {
        panic!()
    };
    let StmtKind::Expr(Expr {
        kind: ExprKind::AtCall { name, .. },
        span,
    }) = &p.body.stmts[0].kind
    else {
        panic!()
    };
    assert_eq!(name.name, "cast");
    assert_eq!(at(src, name.span), "@cast");
    assert_eq!(at(src, *span), "@cast(p, \"t\")->f");
}

// ---------------------------------------------------------------------------
// Precedence and associativity

#[test]
fn multiplication_binds_tighter_than_addition() {
    assert_eq!(ex("a + b * c"), "(+ a (* b c))");
    assert_eq!(ex("a * b + c"), "(+ (* a b) c)");
    assert_eq!(ex("a % b / c"), "(/ (% a b) c)");
}

#[test]
fn binary_operators_are_left_associative() {
    assert_eq!(ex("a - b - c"), "(- (- a b) c)");
    assert_eq!(ex("a . b . c"), "(. (. a b) c)");
    assert_eq!(ex("a << b >> c"), "(>> (<< a b) c)");
}

#[test]
fn assignment_is_right_associative() {
    assert_eq!(ex("x = y = 3"), "(= x (= y 3))");
    assert_eq!(ex("x += y -= 1"), "(+= x (-= y 1))");
}

#[test]
fn all_compound_assignments() {
    assert_eq!(
        ex(
            "a += 1; a -= 1; a *= 1; a /= 1; a %= 1; a <<= 1; a >>= 1; a &= 1; a ^= 1; a |= 1; s .= \"x\"; t <<< 1"
        ),
        "(+= a 1) (-= a 1) (*= a 1) (/= a 1) (%= a 1) (<<= a 1) (>>= a 1) (&= a 1) (^= a 1) (|= a 1) (.= s \"x\") (<<< t 1)"
    );
}

#[test]
fn concatenation_sits_between_shift_and_additive() {
    assert_eq!(ex("a . b + c"), "(. a (+ b c))");
    assert_eq!(ex("a << b . c"), "(<< a (. b c))");
    assert_eq!(ex("a . b == c"), "(== (. a b) c)");
}

#[test]
fn comparisons_below_shifts() {
    assert_eq!(ex("a < b << 1"), "(< a (<< b 1))");
    assert_eq!(ex("a == b != c"), "(!= (== a b) c)");
    assert_eq!(ex("a <= b && c >= d"), "(&& (<= a b) (>= c d))");
}

#[test]
fn bitwise_levels() {
    assert_eq!(ex("a | b ^ c & d"), "(| a (^ b (& c d)))");
    assert_eq!(ex("a & b == c"), "(& a (== b c))");
    assert_eq!(ex("a || b | c"), "(|| a (| b c))");
}

#[test]
fn logical_and_binds_tighter_than_or() {
    assert_eq!(ex("a || b && c"), "(|| a (&& b c))");
    assert_eq!(ex("a && b || c && d"), "(|| (&& a b) (&& c d))");
}

#[test]
fn membership_binds_between_bitand_and_comparison() {
    assert_eq!(ex("k in a && b"), "(&& (in [k] a) b)");
    assert_eq!(ex("a == b in c"), "(in [(== a b)] c)");
    assert_eq!(ex("x & k in a"), "(& x (in [k] a))");
    assert_eq!(ex("!(k in a)"), "(! (in [k] a))");
}

#[test]
fn membership_with_key_lists() {
    assert_eq!(ex("[a, b + 1] in arr"), "(in [a (+ b 1)] arr)");
    assert_eq!(
        ex("if ([pid(), tid()] in seen) next"),
        "(if (in [(pid) (tid)] seen) next)"
    );
    assert_eq!(ex("x = [a] in arr || y"), "(= x (|| (in [a] arr) y))");
}

#[test]
fn unary_operators_bind_tightest() {
    assert_eq!(ex("-a * b"), "(* (neg a) b)");
    assert_eq!(ex("!a == b"), "(== (! a) b)");
    assert_eq!(ex("~a & b"), "(& (~ a) b)");
    assert_eq!(ex("- -a"), "(neg (neg a))");
    assert_eq!(ex("+a"), "(pos a)");
}

#[test]
fn increments_and_decrements() {
    assert_eq!(
        ex("++a; a++; --b; b--"),
        "(pre++ a) (post++ a) (pre-- b) (post-- b)"
    );
    assert_eq!(ex("-a++"), "(neg (post++ a))");
    assert_eq!(ex("a-- - --b"), "(- (post-- a) (pre-- b))");
    assert_eq!(ex("++c[k]"), "(pre++ c[k])");
}

#[test]
fn ternary_is_right_associative_and_below_or() {
    assert_eq!(ex("a ? b : c ? d : e"), "(? a b (? c d e))");
    assert_eq!(ex("a || b ? c : d"), "(? (|| a b) c d)");
    assert_eq!(ex("x = a ? b : c"), "(= x (? a b c))");
    assert_eq!(ex("a ? b = 1 : c"), "(? a (= b 1) c)");
}

#[test]
fn regex_matches() {
    assert_eq!(ex("s =~ \"^foo\""), "(=~ s \"^foo\")");
    assert_eq!(
        ex("s !~ \"x\" && t =~ \"y\""),
        "(&& (!~ s \"x\") (=~ t \"y\"))"
    );
    assert_eq!(
        ex("execname() . \"x\" =~ \"a\" \"b\""),
        "(=~ (. (execname) \"x\") \"ab\")"
    );
}

#[test]
fn parentheses_override_precedence() {
    assert_eq!(ex("(a + b) * c"), "(* (+ a b) c)");
    assert_eq!(ex("((((a))))"), "a");
}

#[test]
fn deep_nesting_within_the_limit() {
    let depth = 200;
    let src = format!("{}1{}", "(".repeat(depth), ")".repeat(depth));
    assert_eq!(ex(&src), "1");
    let src = format!("x = {}1", "- ".repeat(depth));
    assert!(ex(&src).starts_with("(= x (neg (neg"));
}

#[test]
fn calls_indexes_and_variables() {
    assert_eq!(ex("f()"), "(f)");
    assert_eq!(ex("f(a, b + 1, g(c))"), "(f a (+ b 1) (g c))");
    assert_eq!(ex("a[k1, k2] = v"), "(= a[k1 k2] v)");
    assert_eq!(ex("x = counts[execname()]"), "(= x counts[(execname)])");
}

#[test]
fn printf_family_argument_shapes() {
    assert_eq!(
        ex("printf(\"%d %s\\n\", a, b)"),
        "(printf \"%d %s\\n\" a b)"
    );
    assert_eq!(ex("s = sprintf(\"%d\", 1)"), "(= s (sprintf \"%d\" 1))");
    assert_eq!(ex("printd(\",\", a, b)"), "(printd \",\" a b)");
    assert_eq!(ex("println()"), "(println)");
    assert_eq!(ex("print(a . b)"), "(print (. a b))");
    assert_eq!(ex("printf(@1, 2)"), "(printf @1 2)");
}

#[test]
fn expression_spans_cover_their_operands() {
    let src = "probe begin { x = a + b * c }";
    let script = script(src);
    let Item::Probe(p) = &script.items[0] else {
        panic!()
    };
    let StmtKind::Expr(e) = &p.body.stmts[0].kind else {
        panic!()
    };
    assert_eq!(at(src, e.span), "x = a + b * c");
    let ExprKind::Assign { value, .. } = &e.kind else {
        panic!()
    };
    assert_eq!(at(src, value.span), "a + b * c");
    let ExprKind::Binary { rhs, .. } = &value.kind else {
        panic!()
    };
    assert_eq!(at(src, rhs.span), "b * c");
}

// ---------------------------------------------------------------------------
// Statements

#[test]
fn if_else_and_dangling_else() {
    assert_eq!(ex("if (a) b = 1 else b = 2"), "(if a (= b 1) (= b 2))");
    assert_eq!(ex("if (a) if (b) x else y"), "(if a (if b x y))");
    assert_eq!(
        ex("if (a) { x } else if (b) { y }"),
        "(if a {x} (if b {y}))"
    );
}

#[test]
fn while_loop() {
    assert_eq!(ex("while (i < 10) i++"), "(while (< i 10) (post++ i))");
}

#[test]
fn for_loops_with_and_without_parts() {
    assert_eq!(
        ex("for (i = 0; i < n; i++) { s += i }"),
        "(for (= i 0) (< i n) (post++ i) {(+= s i)})"
    );
    assert_eq!(ex("for (;;) break"), "(for _ _ _ break)");
    assert_eq!(ex("for (; i;) continue"), "(for _ i _ continue)");
}

#[test]
fn foreach_single_key() {
    assert_eq!(
        ex("foreach (k in x) print(k)"),
        "(foreach [k] in x (print k))"
    );
}

#[test]
fn foreach_sorted_by_value_descending() {
    assert_eq!(ex("foreach (i in s-) {}"), "(foreach [i] in s sort0- {})");
}

#[test]
fn foreach_key_list_with_sort_and_limit() {
    assert_eq!(
        ex("foreach ([a, b+] in x limit 10) {}"),
        "(foreach [a b] in x sort2+ limit 10 {})"
    );
}

#[test]
fn foreach_with_value_variable() {
    assert_eq!(
        ex("foreach (v = [k] in x-) {}"),
        "(foreach v = [k] in x sort0- {})"
    );
    assert_eq!(ex("foreach (v = k in x) {}"), "(foreach v = [k] in x {})");
    assert_eq!(
        ex("foreach (v- = [a, b] in x) {}"),
        "(foreach v = [a b] in x sort0- {})"
    );
}

#[test]
fn foreach_sorted_by_first_key() {
    assert_eq!(
        ex("foreach (k+ in x limit n * 2) {}"),
        "(foreach [k] in x sort1+ limit (* n 2) {})"
    );
}

#[test]
fn break_continue_next() {
    assert_eq!(
        ex("while (1) { break; continue }"),
        "(while 1 {break continue})"
    );
    assert_eq!(
        ex("if (pid() != target()) next"),
        "(if (!= (pid) (target)) next)"
    );
}

#[test]
fn return_only_in_functions() {
    assert_eq!(
        sx("function f() { return } function g() { return 1 + 2; }"),
        "(function f () {(return)})\n(function g () {(return (+ 1 2))})"
    );
}

#[test]
fn delete_forms() {
    assert_eq!(
        ex("delete a; delete a[k]; delete x"),
        "(delete a) (delete a[k]) (delete x)"
    );
}

#[test]
fn try_catch_with_and_without_variable() {
    assert_eq!(
        ex("try { x = 1/0 } catch (msg) { println(msg) } try {} catch {}"),
        "(try {(= x (/ 1 0))} catch msg {(println msg)}) (try {} catch _ {})"
    );
}

#[test]
fn empty_statements_and_optional_semicolons() {
    assert_eq!(ex(";"), ";");
    assert_eq!(ex("a = 1;; b = 2"), "(= a 1) ; (= b 2)");
    assert_eq!(ex("a = 1 b = 2 c()"), "(= a 1) (= b 2) (c)");
}

#[test]
fn nested_blocks() {
    assert_eq!(ex("{ { x } { } }"), "{{x} {}}");
}

#[test]
fn statement_spans_exclude_the_optional_semicolon() {
    let src = "probe begin { delete a[k]; next }";
    let script = script(src);
    let Item::Probe(p) = &script.items[0] else {
        panic!()
    };
    assert_eq!(at(src, p.body.stmts[0].span), "delete a[k]");
    assert_eq!(at(src, p.body.stmts[1].span), "next");
    assert_eq!(at(src, p.body.span), "{ delete a[k]; next }");
}

// ---------------------------------------------------------------------------
// Globals and functions

#[test]
fn global_declarations() {
    assert_eq!(
        sx("global a, b[100], c = 5;"),
        "(global a)\n(global b [100])\n(global c = 5)"
    );
}

#[test]
fn global_initializers_fold_negative_numbers_and_concatenate() {
    assert_eq!(
        sx("global n = -5\nglobal s = \"a\" \"b\""),
        "(global n = -5)\n(global s = \"ab\")"
    );
}

#[test]
fn global_spans_cover_each_declarator() {
    let src = "global a, b[10] = 1";
    let result = parse(src, &options());
    // Arrays cannot be initialized; check the scalar span instead.
    assert!(result.is_err());
    let src = "global a, bb = 10";
    let script = script(src);
    let Item::Global(g) = &script.items[1] else {
        panic!()
    };
    assert_eq!(at(src, g.span), "bb = 10");
    assert_eq!(at(src, g.name.span), "bb");
}

#[test]
fn private_globals_and_the_shorthand() {
    assert_eq!(
        sx("private global x\nprivate y, z[4]"),
        "(global x private)\n(global y private)\n(global z private [4])"
    );
}

#[test]
fn functions_with_stap_type_syntax() {
    assert_eq!(
        sx("function f:long(a:long, b:string) { return a }"),
        "(function f (a:long b:string):long {(return a)})"
    );
}

#[test]
fn functions_with_trailing_return_type() {
    assert_eq!(
        sx("function f(a, b:string):string { return b }"),
        "(function f (a b:string):string {(return b)})"
    );
}

#[test]
fn private_function() {
    assert_eq!(
        sx("private function helper() {}"),
        "(function helper private () {})"
    );
}

#[test]
fn semicolons_between_declarations_are_allowed() {
    assert_eq!(
        sx("global a; ; function f() {};"),
        "(global a)\n(function f () {})"
    );
}

// ---------------------------------------------------------------------------
// Probe points

#[test]
fn probe_point_with_numeric_argument() {
    assert_eq!(sx("probe timer.ms(100) {}"), "(probe timer.ms(100) {})");
}

#[test]
fn process_function_return_with_wildcard_string() {
    assert_eq!(
        sx("probe process(\"/bin/ls\").function(\"ma*\").return { }"),
        "(probe process(\"/bin/ls\").function(\"ma*\").return {})"
    );
}

#[test]
fn kernel_tracepoint() {
    assert_eq!(
        sx("probe kernel.trace(\"sched:sched_switch\") {}"),
        "(probe kernel.trace(\"sched:sched_switch\") {})"
    );
}

#[test]
fn negative_probe_argument() {
    assert_eq!(sx("probe begin(-1) {}"), "(probe begin(-1) {})");
}

#[test]
fn wildcard_component_names() {
    assert_eq!(
        sx(
            "probe syscall.* {} probe syscall.open* {} probe kernel.function(\"sys_*\").* {} probe a.b*c*d {}"
        ),
        "(probe syscall.* {})\n(probe syscall.open* {})\n(probe kernel.function(\"sys_*\").* {})\n(probe a.b*c*d {})"
    );
}

#[test]
fn optional_and_sufficient_markers() {
    assert_eq!(
        sx("probe syscall.open?, kernel.function(\"x\")! , end {}"),
        "(probe syscall.open? kernel.function(\"x\")! end {})"
    );
    let script = script("probe a! {}");
    let Item::Probe(p) = &script.items[0] else {
        panic!()
    };
    assert!(p.points[0].optional && p.points[0].sufficient);
}

#[test]
fn conditional_probe_point() {
    assert_eq!(
        sx("global on\nprobe timer.s(1) if (on) {}"),
        "(global on)\n(probe timer.s(1) if on {})"
    );
    assert_eq!(sx("probe a.b? if (x > 1) {}"), "(probe a.b? if (> x 1) {})");
}

#[test]
fn several_probe_points() {
    assert_eq!(
        sx("probe begin, end, error {}"),
        "(probe begin end error {})"
    );
}

#[test]
fn brace_alternatives_expand() {
    assert_eq!(
        sx("probe syscall.{open, close}.return {}"),
        "(probe syscall.open.return syscall.close.return {})"
    );
    assert_eq!(sx("probe {begin, end} {}"), "(probe begin end {})");
}

#[test]
fn keywords_as_components() {
    assert_eq!(
        sx("probe kernel.function(\"f\").return, process.next, foo.if {}"),
        "(probe kernel.function(\"f\").return process.next foo.if {})"
    );
}

#[test]
fn probe_point_and_component_spans() {
    let src = "probe syscall.open.return? {}";
    let script = script(src);
    let Item::Probe(p) = &script.items[0] else {
        panic!()
    };
    assert_eq!(at(src, p.points[0].span), "syscall.open.return?");
    assert_eq!(at(src, p.points[0].components[1].span), "open");
    assert_eq!(at(src, p.span), src);
}

#[test]
fn alias_with_prologue() {
    assert_eq!(
        sx("probe myname = syscall.open { fn = filename }"),
        "(probe myname = syscall.open {(= fn filename)})"
    );
}

#[test]
fn alias_with_epilogue_and_dotted_name() {
    assert_eq!(
        sx("probe syscall.myopen += syscall.open, syscall.openat { }"),
        "(probe syscall.myopen += syscall.open syscall.openat {})"
    );
}

// ---------------------------------------------------------------------------
// Preprocessor

fn with_args(n: usize) -> ParseOptions {
    ParseOptions {
        args: (1..=n).map(|i| i.to_string()).collect(),
        ..options()
    }
}

#[test]
fn argument_count_conditional() {
    let src = "probe begin { %( $# > 1 %? two() %: one() %) }";
    assert_eq!(sx_with(src, &with_args(2)), "(probe begin {(two)})");
    assert_eq!(sx_with(src, &with_args(1)), "(probe begin {(one)})");
}

fn sx_with(src: &str, options: &ParseOptions) -> String {
    parse_with(src, options)
        .items
        .iter()
        .map(item)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn string_argument_count_conditional() {
    let src = "probe begin { %( @# == \"0\" %? none() %) }";
    assert_eq!(sx_with(src, &with_args(0)), "(probe begin {(none)})");
    assert_eq!(sx_with(src, &with_args(3)), "(probe begin {})");
    let src = "probe begin { %( @# > 1 %? many() %) }";
    assert_eq!(sx_with(src, &with_args(2)), "(probe begin {(many)})");
}

#[test]
fn kernel_version_conditionals() {
    let src = "%( kernel_v >= \"5.8\" %? probe new {} %: probe old {} %)";
    assert_eq!(sx(src), "(probe new {})");
    let src = "%( kernel_vr < \"2.6.32\" %? probe old {} %: probe new {} %)";
    assert_eq!(sx(src), "(probe new {})");
    let src = "%( kernel_v == \"5.15.*\" %? probe yes {} %)";
    assert_eq!(sx(src), "(probe yes {})");
}

#[test]
fn arch_conditional_with_wildcards() {
    let src = "%( arch == \"x86_64\" %? probe x {} %) %( arch != \"i?86\" %? probe y {} %)";
    assert_eq!(sx(src), "(probe x {})\n(probe y {})");
}

#[test]
fn and_or_in_conditions() {
    let src =
        "%( arch == \"arm64\" || kernel_v > \"5\" && $# == 3 %? probe yes {} %: probe no {} %)";
    assert_eq!(sx(src), "(probe yes {})");
    let src =
        "%( arch == \"arm64\" && kernel_v > \"5\" || $# == 0 %? probe yes {} %: probe no {} %)";
    assert_eq!(sx(src), "(probe no {})");
}

#[test]
fn nested_conditionals() {
    let src = "%( $# >= 1 %? %( $# >= 2 %? probe two {} %: probe one {} %) %: probe none {} %)";
    assert_eq!(sx_with(src, &with_args(1)), "(probe one {})");
    assert_eq!(sx_with(src, &with_args(2)), "(probe two {})");
    assert_eq!(sx_with(src, &with_args(0)), "(probe none {})");
}

#[test]
fn skipped_branches_may_hold_embedded_c_and_junk() {
    let src = "%( arch == \"s390\" %? %{ #include <x.h> %} ` %: probe ok {} %)";
    assert_eq!(sx(src), "(probe ok {})");
}

#[test]
fn conditionals_inside_expressions() {
    assert_eq!(
        ex("x = %( kernel_v >= \"4\" %? 1 %: 2 %) + 3"),
        "(= x (+ 1 3))"
    );
}

#[test]
fn conditional_argument_values() {
    let src = "%( $2 == 100 && @1 == \"/bin/ls\" %? probe yes {} %)";
    assert_eq!(sx(src), "(probe yes {})");
}

#[test]
fn spans_survive_preprocessing() {
    let src = "%( $# > 5 %? probe a {} %: probe bee {} %)";
    let script = script(src);
    let Item::Probe(p) = &script.items[0] else {
        panic!()
    };
    assert_eq!(at(src, p.points[0].span), "bee");
    assert_eq!(at(src, p.span), "probe bee {}");
}

// ---------------------------------------------------------------------------
// The six seed programs (shared/seeds/README.md), as written there.

#[test]
fn seed_1_who_deleted_my_file() {
    let src = r#"
global pid2cmdline

probe syscall.exec* { pid2cmdline[pid()] = argstr }

probe kernel.function("sys_exit") { delete pid2cmdline[pid()] }

probe syscall.unlink* {
    path = user_string($pathname)
    if (path =~ "core") {
        printf("%s deleted by:\n", path)
        t = task_current()
        while (task_pid(t) != 1) {
            printf("  %d %s %s\n", task_pid(t), task_execname(t), pid2cmdline[task_pid(t)])
            t = task_parent(t)
        }
    }
}
"#;
    assert_eq!(
        sx(src),
        "(global pid2cmdline)\n\
         (probe syscall.exec* {(= pid2cmdline[(pid)] argstr)})\n\
         (probe kernel.function(\"sys_exit\") {(delete pid2cmdline[(pid)])})\n\
         (probe syscall.unlink* {(= path (user_string $pathname)) (if (=~ path \"core\") {(printf \"%s deleted by:\\n\" path) (= t (task_current)) (while (!= (task_pid t) 1) {(printf \"  %d %s %s\\n\" (task_pid t) (task_execname t) pid2cmdline[(task_pid t)]) (= t (task_parent t))})})})"
    );
}

#[test]
fn seed_2_system_wide_strace() {
    assert_eq!(
        sx(r#"probe syscall.* { printf("%s(%d) %s %s\n", execname(), pid(), name, argstr) }"#),
        "(probe syscall.* {(printf \"%s(%d) %s %s\\n\" (execname) (pid) name argstr)})"
    );
}

#[test]
fn seed_3_who_started_or_killed_my_process() {
    let src = r#"
probe syscall.exec* { printf("exec %s %s\n", execname(), argstr) }
probe signal.send {
    if (sig_name == "SIGKILL" || sig_name == "SIGTERM")
        printf("%s -> %s(%d) by %s uid %d\n", sig_name, pid_name, sig_pid, execname(), uid())
}
"#;
    assert_eq!(
        sx(src),
        "(probe syscall.exec* {(printf \"exec %s %s\\n\" (execname) argstr)})\n\
         (probe signal.send {(if (|| (== sig_name \"SIGKILL\") (== sig_name \"SIGTERM\")) (printf \"%s -> %s(%d) by %s uid %d\\n\" sig_name pid_name sig_pid (execname) (uid)))})"
    );
}

#[test]
fn seed_4_what_is_a_process_doing() {
    assert_eq!(
        sx(
            r#"probe process("/path/to/nginx").function("*") { printf("%s(%s)\n", probefunc(), $$parms) }"#
        ),
        "(probe process(\"/path/to/nginx\").function(\"*\") {(printf \"%s(%s)\\n\" (probefunc) $$parms)})"
    );
}

#[test]
fn seed_5_cpu_profile_for_a_flame_graph() {
    let src = r#"
global s
probe timer.profile {
    if (pid() == target())
        s[ubacktrace()] <<< 1
}
probe timer.s(20) {
    foreach (i in s-) { print_ustack(i); printf("\t%d\n", @count(s[i])) }
    exit()
}
"#;
    assert_eq!(
        sx(src),
        "(global s)\n\
         (probe timer.profile {(if (== (pid) (target)) (<<< s[(ubacktrace)] 1))})\n\
         (probe timer.s(20) {(foreach [i] in s sort0- {(print_ustack i) (printf \"\\t%d\\n\" (@count s[i]))}) (exit)})"
    );
}

#[test]
fn seed_6_python_interpreter_stack() {
    let src = r#"
probe timer.profile {
    ptr = @var("_PyThreadState_Current@Python/pystate.c")
    frame = @cast(ptr, "PyThreadState")->frame
    while (frame) {
        code = @cast(frame, "PyFrameObject")->f_code
        printf("%s:%s:%d\n", user_string(@cast(code, "PyCodeObject")->co_filename),
               user_string(@cast(code, "PyCodeObject")->co_name),
               @cast(frame, "PyFrameObject")->f_lineno)
        frame = @cast(frame, "PyFrameObject")->f_back
    }
}
"#;
    let out = sx(src);
    assert!(out.starts_with(
        "(probe timer.profile {(= ptr (@var \"_PyThreadState_Current@Python/pystate.c\")) \
         (= frame (@cast ptr \"PyThreadState\")->frame) (while frame {"
    ));
    assert!(out.ends_with("(= frame (@cast frame \"PyFrameObject\")->f_back)})})"));
}

// ---------------------------------------------------------------------------
// Whole scripts in the style of stap's examples

#[test]
fn top_style_script() {
    let src = r#"
global syscalls

function print_top () {
    cnt = 0
    printf ("%-20s %10s\n", "SYSCALL", "COUNT")
    foreach ([name] in syscalls-) {
        printf("%-20s %10d\n", name, syscalls[name])
        if (cnt++ == 20)
            break
    }
    printf("--------------------------------------\n")
    delete syscalls
}

probe kernel.trace("raw_syscalls:sys_enter") {
    syscalls[probefunc()]++
}

probe timer.ms(5000) {
    print_top ()
}
"#;
    let script = script(src);
    assert_eq!(script.items.len(), 4);
    assert_eq!(
        item(&script.items[2]),
        "(probe kernel.trace(\"raw_syscalls:sys_enter\") {(post++ syscalls[(probefunc)])})"
    );
}

#[test]
fn histogram_script() {
    let src = r#"
global reads
probe vfs.read.return { if ($return > 0) reads[execname()] <<< $return }
probe end {
    foreach (name in reads) {
        printf("%s\n", name)
        print(@hist_log(reads[name]))
    }
}
"#;
    assert_eq!(
        item(&script(src).items[2]),
        "(probe end {(foreach [name] in reads {(printf \"%s\\n\" name) (print (@hist_log reads[name]))})})"
    );
}

#[test]
fn ast_serializes_to_json() {
    let script = script("probe begin { x = 1 }");
    let json = serde_json::to_string(&script).unwrap();
    assert!(json.contains("\"Assign\""));
    assert!(json.contains("\"Set\""));
}

#[test]
fn systemtap_version_and_argument_count_in_probe_points() {
    assert_eq!(
        sx("%( systemtap_v >= \"4.0\" %? probe timer.ms($#) {} %)"),
        "(probe timer.ms(3) {})"
    );
}

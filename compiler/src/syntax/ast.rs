//! The parse tree of a script: plain enums and vectors with a [`Span`] on
//! every node, so later passes can point at the source in their errors.

use serde::Serialize;

use crate::span::Span;

/// A whole script after preprocessing and parsing.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Script {
    pub items: Vec<Item>,
}

/// A top-level declaration.
#[derive(Clone, Debug, Serialize)]
pub enum Item {
    Global(GlobalDecl),
    Probe(ProbeDecl),
    Function(FunctionDecl),
}

/// A name and where it was written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// `global x`, `global a[100]`, `global x = 5`, `private global y`.
/// `global a, b` yields one declaration per name.
#[derive(Clone, Debug, Serialize)]
pub struct GlobalDecl {
    pub name: Ident,
    /// `[N]`: the array's maximum entry count.
    pub max_entries: Option<u32>,
    /// `= literal`.
    pub init: Option<Expr>,
    pub private: bool,
    pub span: Span,
}

/// `probe POINT[, POINT...] { body }`, or an alias definition
/// `probe NAME = POINT[, POINT...] { prologue }` (`+=` for an epilogue).
#[derive(Clone, Debug, Serialize)]
pub struct ProbeDecl {
    pub alias: Option<AliasDef>,
    pub points: Vec<ProbePoint>,
    pub body: Block,
    pub span: Span,
}

/// The left side of an alias definition.
#[derive(Clone, Debug, Serialize)]
pub struct AliasDef {
    /// The new name, itself a probe point (e.g. `syscall.myopen`).
    pub name: ProbePoint,
    /// `+=`: the body runs after the user's handler instead of before.
    pub epilogue: bool,
}

/// A dotted probe point such as `syscall.openat.return`,
/// `process("/bin/ls").function("main")` or `timer.ms(100)`.
#[derive(Clone, Debug, Serialize)]
pub struct ProbePoint {
    pub components: Vec<Component>,
    /// Trailing `?`: no error when it matches nothing.
    pub optional: bool,
    /// Trailing `!`: stop at the first alternative that resolves.
    pub sufficient: bool,
    /// `if (expr)` after the point: the handler runs only while it holds.
    pub condition: Option<Expr>,
    pub span: Span,
}

/// One dotted component: a name (possibly with `*` wildcards) and an
/// optional parenthesized literal argument.
#[derive(Clone, Debug, Serialize)]
pub struct Component {
    pub name: String,
    pub arg: Option<Literal>,
    pub span: Span,
}

/// A literal probe-point argument.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Literal {
    Int(i64),
    Str(String),
}

/// `function name(a, b:string):long { body }`.
#[derive(Clone, Debug, Serialize)]
pub struct FunctionDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: Option<TypeAnn>,
    pub body: Block,
    pub private: bool,
    pub span: Span,
}

/// A function parameter with its optional `:type`.
#[derive(Clone, Debug, Serialize)]
pub struct Param {
    pub name: Ident,
    pub ty: Option<TypeAnn>,
}

/// A written type annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum TypeAnn {
    Long,
    String,
}

/// `{ stmt; stmt }`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

/// A statement and its span.
#[derive(Clone, Debug, Serialize)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

/// Statements of the language.
#[derive(Clone, Debug, Serialize)]
pub enum StmtKind {
    Block(Block),
    Expr(Expr),
    If {
        cond: Expr,
        then: Box<Stmt>,
        otherwise: Option<Box<Stmt>>,
    },
    While {
        cond: Expr,
        body: Box<Stmt>,
    },
    For {
        init: Option<Expr>,
        cond: Option<Expr>,
        step: Option<Expr>,
        body: Box<Stmt>,
    },
    /// `foreach ([k1, k2] in arr- limit 5)` or `foreach (v = [k] in arr)`.
    Foreach(Box<Foreach>),
    Break,
    Continue,
    /// Leaves the probe handler.
    Next,
    Return(Option<Expr>),
    /// `delete x`, `delete a[k]`, `delete a`.
    Delete(Expr),
    Try {
        body: Block,
        /// `catch (msg)`: the variable receiving the error message.
        catch_var: Option<Ident>,
        catch_body: Block,
    },
    /// A lone `;`.
    Empty,
}

/// The parts of a `foreach` loop.
#[derive(Clone, Debug, Serialize)]
pub struct Foreach {
    /// `v = [...]`: receives each element's value.
    pub value: Option<Ident>,
    pub keys: Vec<Ident>,
    pub array: Ident,
    /// At most one sort marker, on a key or on the array (value).
    pub sort: Option<Sort>,
    pub limit: Option<Expr>,
    pub body: Stmt,
}

/// A `+`/`-` sort marker in a `foreach`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Sort {
    /// 0 sorts by value; k sorts by the k-th key (1-based).
    pub column: u32,
    pub descending: bool,
}

/// An expression and its span.
#[derive(Clone, Debug, Serialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

/// Expressions of the language.
#[derive(Clone, Debug, Serialize)]
pub enum ExprKind {
    Int(i64),
    Str(String),
    /// A local or global variable, or a tapset variable such as `name`.
    Var(Ident),
    /// `$name`, `$$parms`, `$$vars`, `$return`, `$var->field[3]`...
    Target(TargetExpr),
    /// `$1` (number) or `@1` (string): a script argument.
    ScriptArg {
        index: u32,
        string: bool,
    },
    /// `$#` or `@#`: how many script arguments there are.
    ScriptArgCount,
    /// `a[k1, k2]`.
    Index {
        array: Ident,
        keys: Vec<Expr>,
    },
    /// `f(args)`: a script function or a builtin.
    Call {
        name: Ident,
        args: Vec<Expr>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    Ternary {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    /// `target op value`, where op is `=`, `+=`, `.=`, ... or `<<<`.
    Assign {
        op: AssignOp,
        target: Box<Expr>,
        value: Box<Expr>,
    },
    /// `++x`, `x--`.
    IncDec {
        increment: bool,
        prefix: bool,
        target: Box<Expr>,
    },
    /// `[k1, k2] in arr` or `k in arr`.
    In {
        keys: Vec<Expr>,
        array: Ident,
    },
    /// `@count(x)`, `@sum(a[k])`, ...
    StatOp {
        op: StatOp,
        operand: Box<Expr>,
    },
    /// `@hist_log(x)` / `@hist_linear(x, lo, hi, step)`, printed by `print`.
    Hist {
        kind: HistKind,
        operand: Box<Expr>,
    },
    /// Other `@name(args)` forms: `@cast`, `@var`, `@defined`, `@entry`...
    /// followed by member accesses in `path`.
    AtCall {
        name: Ident,
        args: Vec<Expr>,
        path: Vec<Access>,
    },
}

/// A `$variable` with its member/index chain.
#[derive(Clone, Debug, Serialize)]
pub struct TargetExpr {
    /// Without the `$` signs: `filename`, `$parms`, `return`.
    pub name: String,
    pub path: Vec<Access>,
    /// A trailing `$` (`$var$`, `$$parms$`): pretty-print the pointee.
    pub pretty: bool,
}

/// One step of a member/index chain.
#[derive(Clone, Debug, Serialize)]
pub enum Access {
    /// `->name` (also written `.name`? no: stap uses `->` only).
    Member(Ident),
    /// `[expr]`.
    Index(Expr),
}

/// Prefix operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum UnaryOp {
    Neg,
    Plus,
    Not,
    BitNot,
}

/// Infix operators other than assignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Shl,
    Shr,
    BitAnd,
    BitOr,
    BitXor,
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `.`: string concatenation.
    Concat,
    /// `=~`: regular expression match.
    Match,
    /// `!~`.
    NotMatch,
}

/// Assignment operators. `Aggregate` is `<<<`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum AssignOp {
    Set,
    /// `op=`: the binary operator applied before storing.
    Compound(BinaryOp),
    Aggregate,
}

/// Aggregate extractors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum StatOp {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    Variance,
}

/// Histogram shapes.
#[derive(Clone, Debug, Serialize)]
pub enum HistKind {
    Log,
    Linear {
        lo: Box<Expr>,
        hi: Box<Expr>,
        step: Box<Expr>,
    },
}

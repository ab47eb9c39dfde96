//! In-kernel filters from a handler's leading predicate, so events the
//! handler would ignore never reach user space (a profile of one process
//! on a busy machine otherwise copies every other process's stacks).
//!
//! Two shapes are recognised, with any operand order:
//! - the whole body is one `if (COND) STMT` without `else`: each conjunct
//!   of `COND` (`A && B`) that is a simple comparison becomes a filter;
//! - the body starts with `if (COND) next`: each disjunct of
//!   `COND` (`A || B`) that is a simple comparison becomes the negated
//!   filter.
//!
//! A simple comparison is `pid()`, `tid()`, `uid()` or `gid()` compared
//! (`== != < <= > >=`) with `target()` or a non-negative integer literal.
//! Filters only ever drop events the handler would do nothing with; the
//! handler still evaluates its condition, so an unrecognised form just
//! costs the copy, never correctness.

use wasmtap_abi::{Filter, FilterCmp, FilterField, MAX_FILTERS};

use super::Layout;
use crate::syntax::ast::{BinaryOp, Block, Expr, ExprKind, Stmt, StmtKind};

/// The filters the leading predicate of `body` allows, at most
/// [`MAX_FILTERS`].
pub(crate) fn kernel_filters(l: &Layout, body: &Block) -> Vec<Filter> {
    let stmts: Vec<&Stmt> = body
        .stmts
        .iter()
        .filter(|s| !matches!(s.kind, StmtKind::Empty))
        .collect();
    let mut filters = match stmts.as_slice() {
        [
            Stmt {
                kind:
                    StmtKind::If {
                        cond,
                        otherwise: None,
                        ..
                    },
                ..
            },
        ] => leading(l, cond, BinaryOp::And, false),
        [
            Stmt {
                kind:
                    StmtKind::If {
                        cond,
                        then,
                        otherwise: None,
                    },
                ..
            },
            ..,
        ] if leaves(then) => leading(l, cond, BinaryOp::Or, true),
        _ => Vec::new(),
    };
    filters.truncate(MAX_FILTERS);
    filters
}

/// Filters for the simple comparisons that start the `op` chain `cond`.
/// Only the leading ones: `&&` and `||` short-circuit, so an operand after
/// an unrecognised one (a function call, say) may have effects that must
/// still happen for events the comparison rejects.
fn leading(l: &Layout, cond: &Expr, op: BinaryOp, negate: bool) -> Vec<Filter> {
    split(cond, op)
        .into_iter()
        .map_while(|operand| comparison(l, operand, negate))
        .collect()
}

/// Whether `stmt` is `next` or a block of just `next`.
fn leaves(stmt: &Stmt) -> bool {
    match &stmt.kind {
        StmtKind::Next => true,
        StmtKind::Block(b) => matches!(b.stmts.as_slice(), [only] if leaves(only)),
        _ => false,
    }
}

/// The operands of a chain of `op` (`a && b && c`).
fn split(e: &Expr, op: BinaryOp) -> Vec<&Expr> {
    match &e.kind {
        ExprKind::Binary { op: o, lhs, rhs } if *o == op => {
            let mut parts = split(lhs, op);
            parts.extend(split(rhs, op));
            parts
        }
        _ => vec![e],
    }
}

/// `e` as a filter (negated when `negate`), if it is a simple comparison.
fn comparison(l: &Layout, e: &Expr, negate: bool) -> Option<Filter> {
    let ExprKind::Binary { op, lhs, rhs } = &e.kind else {
        return None;
    };
    let (field, value, op) = match (field(l, lhs), value(l, rhs)) {
        (Some(f), Some(v)) => (f, v, *op),
        _ => (field(l, rhs)?, value(l, lhs)?, mirror(*op)?),
    };
    let op = if negate { negation(op)? } else { op };
    let cmp = match op {
        BinaryOp::Eq => FilterCmp::Eq,
        BinaryOp::Ne => FilterCmp::Ne,
        BinaryOp::Lt => FilterCmp::Lt,
        BinaryOp::Le => FilterCmp::Le,
        BinaryOp::Gt => FilterCmp::Gt,
        BinaryOp::Ge => FilterCmp::Ge,
        _ => return None,
    };
    Some(Filter::new(field, cmp, value))
}

/// A call of a context builtin the kernel can compare, not shadowed by a
/// script function of the same name.
fn field(l: &Layout, e: &Expr) -> Option<FilterField> {
    let name = builtin_call(l, e)?;
    Some(match name {
        "pid" => FilterField::Pid,
        "tid" => FilterField::Tid,
        "uid" => FilterField::Uid,
        "gid" => FilterField::Gid,
        _ => return None,
    })
}

fn value(l: &Layout, e: &Expr) -> Option<u64> {
    match &e.kind {
        ExprKind::Int(n) if *n >= 0 => Some(*n as u64),
        _ if builtin_call(l, e) == Some("target") => {
            Some(u64::from(l.options.target_pid.unwrap_or(0)))
        }
        _ => None,
    }
}

fn builtin_call<'e>(l: &Layout, e: &'e Expr) -> Option<&'e str> {
    match &e.kind {
        ExprKind::Call { name, args }
            if args.is_empty() && l.typed.function(&name.name).is_none() =>
        {
            Some(name.name.as_str())
        }
        _ => None,
    }
}

/// `a OP b` as `b OP' a`.
fn mirror(op: BinaryOp) -> Option<BinaryOp> {
    Some(match op {
        BinaryOp::Eq | BinaryOp::Ne => op,
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Le => BinaryOp::Ge,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Ge => BinaryOp::Le,
        _ => return None,
    })
}

fn negation(op: BinaryOp) -> Option<BinaryOp> {
    Some(match op {
        BinaryOp::Eq => BinaryOp::Ne,
        BinaryOp::Ne => BinaryOp::Eq,
        BinaryOp::Lt => BinaryOp::Ge,
        BinaryOp::Le => BinaryOp::Gt,
        BinaryOp::Gt => BinaryOp::Le,
        BinaryOp::Ge => BinaryOp::Lt,
        _ => return None,
    })
}

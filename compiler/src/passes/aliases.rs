//! Pass 1b: rewrites probe aliases and probe-point conditions into plain
//! probes, so the passes after it only ever see concrete points.
//!
//! - `probe NAME = P1, P2 { prologue }` defines an alias; a probe on `NAME`
//!   becomes a probe on `P1, P2` whose body is the prologue followed by the
//!   handler (`+=`: the handler, then the epilogue), in one block so the
//!   two share locals as in stap. Aliases may use other aliases.
//! - `probe P if (cond) { body }` becomes `probe P { if (!(cond)) next; body }`:
//!   stap arms and disarms such probes as `cond` changes, which is the same
//!   as far as a script can observe, since the handler never runs while the
//!   condition is false.
//!
//! Alias definitions are removed from the script: they produce no probes.

use crate::{
    diagnostics::Diagnostic,
    passes::resolve::point_text,
    syntax::ast::{
        Block, Expr, ExprKind, Item, ProbeDecl, ProbePoint, Script, Stmt, StmtKind, UnaryOp,
    },
};

/// How deep aliases may refer to aliases before we call it a cycle.
const MAX_DEPTH: usize = 16;

/// Expands aliases and conditions in place.
///
/// # Errors
/// An alias that refers to itself (directly or through others).
pub fn expand(script: &mut Script) -> Result<(), Vec<Diagnostic>> {
    let mut aliases = Vec::new();
    let mut items = Vec::new();
    for item in script.items.drain(..) {
        match item {
            Item::Probe(decl) if decl.alias.is_some() => aliases.push(decl),
            other => items.push(other),
        }
    }
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Item::Probe(decl) = item else {
            out.push(item);
            continue;
        };
        match expand_probe(decl, &aliases, 0) {
            Ok(decls) => out.extend(decls.into_iter().map(Item::Probe)),
            Err(e) => errors.push(e),
        }
    }
    script.items = out;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// One declaration per point that needs its own body (an alias use or a
/// condition); the other points stay together.
fn expand_probe(
    decl: ProbeDecl,
    aliases: &[ProbeDecl],
    depth: usize,
) -> Result<Vec<ProbeDecl>, Diagnostic> {
    let mut plain = Vec::new();
    let mut out = Vec::new();
    for mut point in decl.points {
        let alias = aliases.iter().find(|a| {
            a.alias
                .as_ref()
                .is_some_and(|def| point_text(&def.name) == point_text(&point))
        });
        let condition = point.condition.take();
        if alias.is_none() && condition.is_none() {
            plain.push(point);
            continue;
        }
        let mut body = decl.body.clone();
        if let Some(cond) = condition {
            body.stmts.insert(0, skip_unless(cond));
        }
        let Some(alias) = alias else {
            out.push(ProbeDecl {
                alias: None,
                points: vec![point],
                body,
                span: decl.span,
            });
            continue;
        };
        if depth >= MAX_DEPTH {
            return Err(Diagnostic::error(
                format!("probe alias '{}' refers to itself", point_text(&point)),
                point.span,
                "alias used here",
            )
            .with_hint("an alias must end in concrete probe points"));
        }
        let epilogue = alias.alias.as_ref().is_some_and(|def| def.epilogue);
        let (first, second) = if epilogue {
            (body, alias.body.clone())
        } else {
            (alias.body.clone(), body)
        };
        let joined = Block {
            span: decl.body.span,
            stmts: vec![block_stmt(first), block_stmt(second)],
        };
        let points = alias
            .points
            .iter()
            .map(|p| with_use_site(p, &point))
            .collect();
        let inner = ProbeDecl {
            alias: None,
            points,
            body: joined,
            span: decl.span,
        };
        out.extend(expand_probe(inner, aliases, depth + 1)?);
    }
    if !plain.is_empty() {
        out.insert(
            0,
            ProbeDecl {
                alias: None,
                points: plain,
                body: decl.body,
                span: decl.span,
            },
        );
    }
    Ok(out)
}

/// An alias's point as used at `site`: optional if either is.
fn with_use_site(point: &ProbePoint, site: &ProbePoint) -> ProbePoint {
    let mut p = point.clone();
    p.optional |= site.optional;
    p
}

/// A block as a statement, flattened into the body so `next` and locals
/// behave as in one handler.
fn block_stmt(block: Block) -> Stmt {
    Stmt {
        span: block.span,
        kind: StmtKind::Block(block),
    }
}

/// `if (!(cond)) next`.
fn skip_unless(cond: Expr) -> Stmt {
    let span = cond.span;
    Stmt {
        span,
        kind: StmtKind::If {
            cond: Expr {
                span,
                kind: ExprKind::Unary {
                    op: UnaryOp::Not,
                    operand: Box::new(cond),
                },
            },
            then: Box::new(Stmt {
                span,
                kind: StmtKind::Next,
            }),
            otherwise: None,
        },
    }
}

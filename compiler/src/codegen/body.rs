//! Code generation for one function body: a probe handler or a script
//! function. Every value is an i64 on the Wasm stack (strings packed, see
//! `wasmtap_abi::wasm::pack_str`); conditions become i32 only where Wasm
//! branches on them.

pub(super) mod task;
mod tracepoint;

use std::collections::HashMap;

use wasm_encoder::{BlockType, Function, InstructionSink, ValType};
use wasmtap_abi::{
    Plan,
    wasm::{spec, stat},
};

use super::{Layout, Statics, mem};
use crate::{
    diagnostics::Diagnostic,
    format::{self, Count, Piece},
    passes::{
        resolve::ProbeKind,
        symbols::{self, ContextField, ProbeVar, Ty},
        tracepoints::TapsetAlias,
        types::{self, Name, Scope, lookup},
    },
    plan::{Capture, PlanBuilder},
    span::Span,
    syntax::ast::*,
};

#[path = "uprobe.rs"]
mod uprobe;
// The syscall tapset variables (`argstr`, `retstr`, `*_str`) live in their
// own file, a child module so they extend `Gen` directly.
#[path = "syscall.rs"]
mod syscall;

/// A generated body with its error sites and, for handlers, its plan.
pub(crate) struct BodyOut {
    pub function: Function,
    pub sites: Vec<(u32, Span)>,
    pub plan: Option<Plan>,
}

/// Generates a probe handler.
pub(crate) fn handler(
    layout: &Layout,
    statics: &mut Statics,
    probe: usize,
    body: &Block,
) -> Result<BodyOut, Vec<Diagnostic>> {
    let kind = &layout.probes[probe].kind;
    let mut plan = kind.is_kernel().then(|| PlanBuilder::new(&layout.context));
    if let Some(plan) = plan.as_mut() {
        for filter in super::filter::kernel_filters(layout, body) {
            plan.filter(filter);
        }
    }
    let mut g = Gen::new(layout, statics, Scope::Probe(probe), 0, plan);
    if matches!(kind, ProbeKind::End { .. } | ProbeKind::Error { .. }) {
        // After abort() (exit flag 2) stap runs neither `error` nor `end`.
        let exit = layout.g_exit;
        g.ins().global_get(exit).i32_const(2).i32_eq();
        g.open(BlockType::Empty, b'i');
        g.ins().return_();
        g.close();
    }
    let span = layout.probes[probe].span;
    g.task_prologue(probe, span);
    g.tracepoint_prologue(probe, span);
    g.block(body);
    g.finish(false)
}

/// Generates a script function; it returns an i64 (0 when it falls off the
/// end, as stap's functions return 0 or "").
pub(crate) fn function(
    layout: &Layout,
    statics: &mut Statics,
    index: usize,
    body: &Block,
) -> Result<BodyOut, Vec<Diagnostic>> {
    let params = layout.typed.functions[index].params.len() as u32;
    let mut g = Gen::new(layout, statics, Scope::Function(index), params, None);
    g.block(body);
    g.finish(true)
}

/// Pushes a string literal's packed value.
pub(crate) fn push_literal(
    ins: &mut InstructionSink,
    layout: &Layout,
    statics: &mut Statics,
    bytes: &[u8],
) {
    let offset = statics.intern(bytes);
    ins.global_get(layout.g_static_base)
        .i32_const(offset as i32)
        .i32_add()
        .i64_extend_i32_u()
        .i64_const(((bytes.len() as u64) << 32) as i64)
        .i64_or();
}

struct Loop {
    break_depth: u32,
    continue_depth: u32,
    /// `try` blocks open outside the loop; leaving the loop leaves the
    /// ones opened since.
    tries: usize,
}

struct Gen<'a, 'l> {
    l: &'a Layout<'l>,
    statics: &'a mut Statics,
    scope: Scope,
    code: Vec<u8>,
    n_params: u32,
    extra: Vec<ValType>,
    named: HashMap<String, u32>,
    depth: u32,
    loops: Vec<Loop>,
    /// Block depth of the `catch` label of each enclosing `try`.
    tries: Vec<u32>,
    /// An output call is being built into a string (see `special`).
    buffering: bool,
    plan: Option<PlanBuilder>,
    errors: Vec<Diagnostic>,
    sites: Vec<(u32, Span)>,
}

impl<'a, 'l> Gen<'a, 'l> {
    fn new(
        l: &'a Layout<'l>,
        statics: &'a mut Statics,
        scope: Scope,
        n_params: u32,
        plan: Option<PlanBuilder>,
    ) -> Self {
        let mut named = HashMap::new();
        if let Scope::Function(f) = scope {
            for (i, (name, _)) in l.typed.functions[f].params.iter().enumerate() {
                named.insert(name.clone(), i as u32);
            }
        }
        Self {
            l,
            statics,
            scope,
            code: Vec::new(),
            n_params,
            extra: Vec::new(),
            named,
            depth: 0,
            loops: Vec::new(),
            tries: Vec::new(),
            buffering: false,
            plan,
            errors: Vec::new(),
            sites: Vec::new(),
        }
    }

    fn finish(mut self, returns: bool) -> Result<BodyOut, Vec<Diagnostic>> {
        if returns {
            self.ins().i64_const(0);
        }
        self.ins().end();
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        let mut function = Function::new_with_locals_types(self.extra.iter().copied());
        let prefix = function.byte_len() as u32;
        function.raw(self.code.iter().copied());
        let sites = self.sites.iter().map(|&(o, s)| (o + prefix, s)).collect();
        Ok(BodyOut {
            function,
            sites,
            plan: self.plan.map(PlanBuilder::finish),
        })
    }

    fn ins(&mut self) -> InstructionSink<'_> {
        InstructionSink::new(&mut self.code)
    }

    /// Marks the next instruction as one that may raise an error at `span`.
    fn site(&mut self, span: Span) {
        self.sites.push((self.code.len() as u32, span));
    }

    fn error(&mut self, diagnostic: Diagnostic) {
        self.errors.push(diagnostic);
    }

    fn temp(&mut self, ty: ValType) -> u32 {
        self.extra.push(ty);
        self.n_params + self.extra.len() as u32 - 1
    }

    fn local(&mut self, name: &str) -> u32 {
        if let Some(&index) = self.named.get(name) {
            return index;
        }
        let index = self.temp(ValType::I64);
        self.named.insert(name.to_string(), index);
        index
    }

    fn rt(&mut self, name: &str) {
        let index = self.l.rt(name);
        self.ins().call(index);
    }

    fn literal(&mut self, bytes: &[u8]) {
        let mut ins = InstructionSink::new(&mut self.code);
        push_literal(&mut ins, self.l, self.statics, bytes);
    }

    /// Raises a run-time error with the string on the stack. Inside a
    /// `try` the runtime records it and returns, and the code goes on at
    /// the `catch`; outside, it never returns.
    fn raise(&mut self, span: Span) {
        self.site(span);
        if !self.l.has_try {
            let error = self.l.host_error;
            self.ins().call(error).unreachable();
            return;
        }
        self.rt("error_raise");
        self.propagate();
    }

    /// Leaves for the innermost `catch` (or, in a function, returns to the
    /// caller, which checks in turn) once an error was caught.
    fn propagate(&mut self) {
        if let Some(&catch) = self.tries.last() {
            let label = self.depth - catch;
            self.ins().br(label);
        } else if let Scope::Function(_) = self.scope {
            self.ins().i64_const(0).return_();
        } else {
            // Outside any `try` the runtime never returns from an error.
            self.ins().unreachable();
        }
    }

    /// After a call or statement that may have raised a caught error:
    /// propagates it. Needed only where an error can be caught, inside a
    /// `try` or a function (which a `try` may have called).
    fn check_caught(&mut self) {
        if !self.may_catch() {
            return;
        }
        self.rt("err_pending");
        self.open(BlockType::Empty, b'i');
        self.propagate();
        self.close();
    }

    /// Whether an error raised here may be caught rather than end the
    /// handler: inside a `try`, or in a function (a `try` may call it).
    fn may_catch(&self) -> bool {
        !self.tries.is_empty() || (self.l.has_try && matches!(self.scope, Scope::Function(_)))
    }

    /// Leaves the `try` blocks opened after the first `keep`.
    fn leave_tries(&mut self, keep: usize) {
        for _ in keep..self.tries.len() {
            self.rt("try_leave");
        }
    }

    /// `try { body } catch (var) { handler }`:
    /// block $done { block $catch { try_enter; body; try_leave; br $done }
    /// var = try_catch(); handler }
    fn try_catch(&mut self, body: &Block, var: Option<&Ident>, handler: &Block) {
        self.open(BlockType::Empty, b'b');
        let done = self.depth;
        self.open(BlockType::Empty, b'b');
        self.rt("try_enter");
        self.tries.push(self.depth);
        self.block(body);
        self.tries.pop();
        self.rt("try_leave");
        let label = self.depth - done;
        self.ins().br(label);
        self.close();
        self.rt("try_catch");
        match var {
            Some(var) => {
                let local = self.local(&var.name);
                self.ins().local_set(local);
            }
            None => {
                self.ins().drop();
            }
        }
        self.block(handler);
        self.close();
    }

    fn raise_literal(&mut self, message: &str, span: Span) {
        self.literal(message.as_bytes());
        self.raise(span);
    }

    fn open(&mut self, block: BlockType, kind: u8) {
        match kind {
            b'b' => self.ins().block(block),
            b'l' => self.ins().loop_(block),
            _ => self.ins().if_(block),
        };
        self.depth += 1;
    }

    fn close(&mut self) {
        self.ins().end();
        self.depth -= 1;
    }

    // ---- statements ----

    fn block(&mut self, block: &Block) {
        for stmt in &block.stmts {
            self.stmt(stmt);
        }
    }

    fn stmt(&mut self, stmt: &Stmt) {
        // Every statement is a site, so a trap anywhere (a deadline in a
        // loop, a runtime error) maps back to the statement it happened in.
        self.site(stmt.span);
        match &stmt.kind {
            StmtKind::Block(b) => self.block(b),
            StmtKind::Expr(e) => {
                if self.expr(e).is_some() {
                    self.ins().drop();
                }
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } if let Some(live) = self.defined(cond) => {
                if live {
                    self.stmt(then);
                } else if let Some(o) = otherwise {
                    self.stmt(o);
                }
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.cond(cond);
                self.open(BlockType::Empty, b'i');
                self.stmt(then);
                if let Some(o) = otherwise {
                    self.ins().else_();
                    self.stmt(o);
                }
                self.close();
            }
            StmtKind::While { cond, body } => self.loop_(Some(cond), None, body),
            StmtKind::For {
                init,
                cond,
                step,
                body,
            } => {
                if let Some(init) = init {
                    self.discard(init);
                }
                self.loop_(cond.as_ref(), step.as_ref(), body);
            }
            StmtKind::Foreach(f) => self.foreach(f),
            StmtKind::Break | StmtKind::Continue => {
                let Some(target) = self.loops.last() else {
                    return;
                };
                let depth = if matches!(stmt.kind, StmtKind::Break) {
                    target.break_depth
                } else {
                    target.continue_depth
                };
                let tries = target.tries;
                self.leave_tries(tries);
                let label = self.depth - depth;
                self.ins().br(label);
            }
            StmtKind::Next => {
                self.leave_tries(0);
                self.ins().return_();
            }
            StmtKind::Return(value) => {
                match (value, self.scope) {
                    (Some(v), _) => {
                        self.expr(v);
                    }
                    (None, Scope::Function(_)) => {
                        self.ins().i64_const(0);
                    }
                    (None, Scope::Probe(_)) => {}
                }
                self.leave_tries(0);
                self.ins().return_();
            }
            StmtKind::Delete(target) => self.delete(target),
            StmtKind::Try {
                body,
                catch_var,
                catch_body,
            } => self.try_catch(body, catch_var.as_ref(), catch_body),
            StmtKind::Empty => {}
        }
        // Errors the runtime raised inside this statement (a full array...).
        if !matches!(stmt.kind, StmtKind::Block(_) | StmtKind::Empty) {
            self.check_caught();
        }
    }

    /// Evaluates an expression for its effects.
    fn discard(&mut self, e: &Expr) {
        if self.expr(e).is_some() {
            self.ins().drop();
        }
    }

    /// block $break { loop $top { cond; br_if $break; block $continue
    /// { body } step; br $top } }
    fn loop_(&mut self, cond: Option<&Expr>, step: Option<&Expr>, body: &Stmt) {
        self.open(BlockType::Empty, b'b');
        let break_depth = self.depth;
        self.open(BlockType::Empty, b'l');
        if let Some(cond) = cond {
            self.cond(cond);
            let label = self.depth - break_depth;
            self.ins().i32_eqz().br_if(label);
        }
        self.open(BlockType::Empty, b'b');
        self.loops.push(Loop {
            break_depth,
            continue_depth: self.depth,
            tries: self.tries.len(),
        });
        self.stmt(body);
        self.loops.pop();
        self.close();
        if let Some(step) = step {
            self.discard(step);
        }
        self.ins().br(0);
        self.close();
        self.close();
    }

    fn foreach(&mut self, f: &Foreach) {
        let Some((g, global)) = self.l.typed.global(&f.array.name) else {
            return;
        };
        let map = self.l.globals[g];
        let key_types: Vec<Ty> = global
            .keys
            .iter()
            .flatten()
            .map(|k| k.ty.unwrap_or(Ty::Long))
            .collect();
        let value_ty = self.l.global_ty(g);
        let it = self.temp(ValType::I32);
        let (column, descending) = f
            .sort
            .map_or((-1, false), |s| (s.column as i32, s.descending));
        self.ins()
            .global_get(map)
            .i32_const(column)
            .i32_const(descending as i32);
        match &f.limit {
            Some(limit) => {
                self.expr(limit);
            }
            None => {
                self.ins().i64_const(-1);
            }
        }
        self.rt("iter_begin");
        self.ins().local_set(it);
        self.open(BlockType::Empty, b'b');
        let break_depth = self.depth;
        self.open(BlockType::Empty, b'l');
        self.ins().local_get(it);
        self.rt("iter_next");
        self.ins().i32_eqz().br_if(1);
        let mut key_locals = Vec::new();
        for (k, key) in f.keys.iter().enumerate() {
            let local = self.local(&key.name);
            key_locals.push(local);
            self.ins().local_get(it).i32_const(k as i32);
            self.rt(if key_types.get(k) == Some(&Ty::Str) {
                "iter_key_str"
            } else {
                "iter_key_i64"
            });
            self.ins().local_set(local);
        }
        if let Some(value) = &f.value {
            let local = self.local(&value.name);
            self.push_key_locals(&key_locals, &key_types);
            self.ins().global_get(map);
            self.rt(if value_ty == Ty::Str {
                "map_get_str"
            } else {
                "map_get_i64"
            });
            self.ins().local_set(local);
        }
        self.open(BlockType::Empty, b'b');
        self.loops.push(Loop {
            break_depth,
            continue_depth: self.depth,
            tries: self.tries.len(),
        });
        self.stmt(&f.body);
        self.loops.pop();
        self.close();
        self.ins().br(0);
        self.close();
        self.close();
        self.ins().local_get(it);
        self.rt("iter_end");
    }

    fn push_key_locals(&mut self, locals: &[u32], types: &[Ty]) {
        for (local, ty) in locals.iter().zip(types) {
            self.ins().local_get(*local);
            self.rt(if *ty == Ty::Str { "key_str" } else { "key_i64" });
        }
    }

    fn delete(&mut self, target: &Expr) {
        match &target.kind {
            ExprKind::Index { array, keys } => {
                let Some(g) = self.global_index(&array.name) else {
                    return;
                };
                self.keys(keys);
                let map = self.l.globals[g];
                self.ins().global_get(map);
                self.rt("map_delete");
            }
            ExprKind::Var(ident) => match self.name(&ident.name) {
                Some(Name::Global(g)) if self.l.is_map(g) => {
                    let map = self.l.globals[g];
                    self.ins().global_get(map);
                    self.rt("map_clear");
                }
                Some(Name::Global(g)) => {
                    let global = self.l.globals[g];
                    if self.l.global_ty(g) == Ty::Str {
                        self.ins().global_get(global).i64_const(0);
                        self.rt("str_keep");
                        self.ins().global_set(global);
                    } else {
                        self.ins().i64_const(0).global_set(global);
                    }
                }
                _ => {
                    let local = self.local(&ident.name);
                    self.ins().i64_const(0).local_set(local);
                }
            },
            _ => {}
        }
    }

    // ---- expressions ----

    fn name(&self, name: &str) -> Option<Name> {
        lookup(
            self.l.typed,
            self.l.probes,
            self.l.catalog,
            self.scope,
            name,
        )
    }

    /// `@defined(...)` conditions, decided for this probe.
    fn defined(&self, cond: &Expr) -> Option<bool> {
        types::defined(cond, self.l.probes, self.l.catalog, self.scope)
    }

    fn global_index(&self, name: &str) -> Option<usize> {
        self.l.typed.global(name).map(|(g, _)| g)
    }

    /// Pushes a condition as i32.
    fn cond(&mut self, e: &Expr) {
        self.expr(e);
        self.ins().i64_const(0).i64_ne();
    }

    /// Generates `e`; returns the type of the value left on the stack, or
    /// None when it leaves nothing.
    fn expr(&mut self, e: &Expr) -> Option<Ty> {
        match &e.kind {
            ExprKind::Int(n) => {
                self.ins().i64_const(*n);
                Some(Ty::Long)
            }
            ExprKind::Str(s) => {
                self.literal(s.as_bytes());
                Some(Ty::Str)
            }
            ExprKind::ScriptArg { index, string } => self.script_arg(*index, *string, e.span),
            ExprKind::ScriptArgCount => {
                let n = self.l.options.args.len() as i64;
                self.ins().i64_const(n);
                Some(Ty::Long)
            }
            ExprKind::Var(ident) => self.var(ident, e.span),
            ExprKind::Target(target) => {
                if let Some(ty) = self.user_target(target, e.span) {
                    return ty;
                }
                let Scope::Probe(p) = self.scope else {
                    return None;
                };
                let kind = &self.l.probes[p].kind;
                let var = symbols::probe_var(kind, self.l.catalog, &target.name, true)?;
                self.probe_var(&var, e.span)
            }
            ExprKind::Index { array, keys } => {
                let g = self.global_index(&array.name)?;
                self.keys(keys);
                let map = self.l.globals[g];
                let ty = self.l.global_ty(g);
                self.ins().global_get(map);
                self.rt(if ty == Ty::Str {
                    "map_get_str"
                } else {
                    "map_get_i64"
                });
                Some(ty)
            }
            ExprKind::Call { name, args } => self.call(name, args, e.span),
            ExprKind::Unary { op, operand } => {
                match op {
                    UnaryOp::Neg => {
                        self.ins().i64_const(0);
                        self.expr(operand);
                        self.ins().i64_sub();
                    }
                    UnaryOp::Plus => {
                        self.expr(operand);
                    }
                    UnaryOp::Not => {
                        self.expr(operand);
                        self.ins().i64_eqz().i64_extend_i32_u();
                    }
                    UnaryOp::BitNot => {
                        self.expr(operand);
                        self.ins().i64_const(-1).i64_xor();
                    }
                }
                Some(Ty::Long)
            }
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, e.span),
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } if let Some(live) = self.defined(cond) => {
                self.expr(if live { then } else { otherwise })
            }
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                self.cond(cond);
                self.open(BlockType::Result(ValType::I64), b'i');
                let ty = self.expr(then);
                self.ins().else_();
                self.expr(otherwise);
                self.close();
                ty
            }
            ExprKind::Assign { op, target, value } => self.assign(*op, target, value, e.span),
            ExprKind::IncDec {
                increment,
                prefix,
                target,
            } => {
                let delta = if *increment { 1 } else { -1 };
                let new = self.update(target, e.span, &mut |g| {
                    g.ins().i64_const(delta).i64_add();
                })?;
                self.ins().local_get(new);
                if !prefix {
                    self.ins().i64_const(delta).i64_sub();
                }
                Some(Ty::Long)
            }
            ExprKind::In { keys, array } => {
                let g = self.global_index(&array.name)?;
                self.keys(keys);
                let map = self.l.globals[g];
                self.ins().global_get(map);
                self.rt("map_exists");
                self.ins().i64_extend_i32_u();
                Some(Ty::Long)
            }
            ExprKind::StatOp { op, operand } => {
                let which = match op {
                    StatOp::Count => stat::COUNT,
                    StatOp::Sum => stat::SUM,
                    StatOp::Min => stat::MIN,
                    StatOp::Max => stat::MAX,
                    StatOp::Avg => stat::AVG,
                    StatOp::Variance => stat::VARIANCE,
                };
                self.aggregate_ref(operand)?;
                self.site(e.span);
                self.ins().i32_const(which);
                self.rt("stat_get");
                Some(Ty::Long)
            }
            ExprKind::Hist { .. } => {
                self.error(
                    Diagnostic::error("a histogram can only be printed", e.span, "not a value")
                        .with_hint("write print(@hist_log(x))"),
                );
                None
            }
            ExprKind::AtCall { name, args, path } if name.name == "cast" => {
                self.cast(args, path, e.span)
            }
            ExprKind::AtCall { .. } => {
                let value = self.defined(e)?;
                self.ins().i64_const(i64::from(value));
                Some(Ty::Long)
            }
        }
    }

    fn script_arg(&mut self, index: u32, string: bool, span: Span) -> Option<Ty> {
        let args = &self.l.options.args;
        let Some(value) = args.get(index as usize - 1).cloned() else {
            self.error(
                Diagnostic::error(
                    format!("script argument {index} is missing: {} given", args.len()),
                    span,
                    "no such argument",
                )
                .with_hint("pass it after the script: `wasmtap script.stp ARG1 ARG2`"),
            );
            return None;
        };
        if string {
            self.literal(value.as_bytes());
            return Some(Ty::Str);
        }
        match parse_int(&value) {
            Some(n) => {
                self.ins().i64_const(n);
                Some(Ty::Long)
            }
            None => {
                self.error(
                    Diagnostic::error(
                        format!("script argument {index} ('{value}') is not a number"),
                        span,
                        "used as a number",
                    )
                    .with_hint(format!("use @{index} for the argument as a string")),
                );
                None
            }
        }
    }

    fn var(&mut self, ident: &Ident, span: Span) -> Option<Ty> {
        match self.name(&ident.name) {
            Some(Name::Probe(var)) => self.probe_var(&var, span),
            Some(Name::Global(g)) => {
                let global = self.l.globals[g];
                self.ins().global_get(global);
                Some(self.l.global_ty(g))
            }
            Some(Name::Param(i)) => {
                self.ins().local_get(i as u32);
                Some(self.param_ty(i))
            }
            Some(Name::Local) | None => {
                let local = self.local(&ident.name);
                self.ins().local_get(local);
                Some(self.local_ty(&ident.name))
            }
        }
    }

    fn param_ty(&self, i: usize) -> Ty {
        match self.scope {
            Scope::Function(f) => self.l.typed.functions[f].params[i].1.ty.unwrap_or(Ty::Long),
            Scope::Probe(_) => Ty::Long,
        }
    }

    fn local_ty(&self, name: &str) -> Ty {
        let locals = match self.scope {
            Scope::Probe(p) => &self.l.typed.probe_locals[p],
            Scope::Function(f) => &self.l.typed.functions[f].locals,
        };
        locals.get(name).and_then(|s| s.ty).unwrap_or(Ty::Long)
    }

    fn capture(&mut self, capture: Capture, span: Span) -> Option<u16> {
        let result = self.plan.as_mut().map(|plan| plan.capture(capture));
        match result {
            Some(Ok(offset)) => Some(offset),
            Some(Err(_)) => {
                self.error(Diagnostic::error(
                    format!(
                        "this probe captures more than a record holds ({} bytes)",
                        wasmtap_abi::MAX_RECORD
                    ),
                    span,
                    "one capture too many",
                ));
                None
            }
            None => {
                self.error(Diagnostic::error(
                    "this value exists only in probes fed by the kernel",
                    span,
                    "not available here",
                ));
                None
            }
        }
    }

    /// Pushes the i64 at `offset` in the current record.
    fn load_field(&mut self, offset: u16) {
        let rec = self.l.g_rec;
        self.ins().global_get(rec).i64_load(mem(offset as u64, 3));
    }

    fn syscall_arg_type(&self, index: u8) -> String {
        let Scope::Probe(p) = self.scope else {
            return String::new();
        };
        symbols::syscall_args(&self.l.probes[p].kind, self.l.catalog)
            .and_then(|args| args.get(index as usize))
            .map(|a| a.c_type.clone())
            .unwrap_or_default()
    }

    /// Pushes syscall argument `index`, sign- or zero-extended from 32 bits
    /// where its C type is 32 bits wide, as stap's `$fd` is.
    fn arg(&mut self, index: u8, span: Span) -> Option<()> {
        let offset = self.capture(Capture::Arg(index), span)?;
        self.load_field(offset);
        match self.syscall_arg_type(index).as_str() {
            "int" | "pid_t" | "key_t" | "clockid_t" | "timer_t" | "mqd_t" | "rwf_t" => {
                self.ins().i64_extend32_s();
            }
            "unsigned int" | "uid_t" | "gid_t" | "qid_t" | "u32" | "umode_t" => {
                self.ins().i64_const(0xffff_ffff).i64_and();
            }
            _ => {}
        }
        Some(())
    }

    /// Pushes the user string behind argument `index`. Where the kernel
    /// could not read it (the page was not resident when the event fired),
    /// the value is the pointer in hex, as stap's `user_string_quoted`
    /// gives, rather than stap's `user_string` error: one unreadable path
    /// must not end a system-wide trace.
    fn user_string(&mut self, index: u8, span: Span) -> Option<Ty> {
        let max = self.l.options.capture_string_bytes;
        let offset = self.capture(Capture::UserString { arg: index, max }, span)?;
        let pointer = self.capture(Capture::Arg(index), span)?;
        let status = self.temp(ValType::I32);
        let rec = self.l.g_rec;
        self.ins()
            .global_get(rec)
            .i32_load(mem(offset as u64, 2))
            .local_tee(status)
            .i32_const(0)
            .i32_lt_s();
        self.open(BlockType::Result(ValType::I64), b'i');
        self.rt("fmt_begin");
        self.load_field(pointer);
        self.ins()
            .i64_const(spec::pack(b'x', spec::FLAG_HASH, None, None));
        self.rt("fmt_i64");
        self.rt("fmt_end");
        self.ins().else_();
        self.record_str(offset as i32 + wasmtap_abi::STR_STATUS_LEN as i32, status);
        self.close();
        Some(Ty::Str)
    }

    /// Pushes a string value of the record's bytes at `offset`, as many as
    /// the i32 in local `len`.
    fn record_str(&mut self, offset: i32, len: u32) {
        let rec = self.l.g_rec;
        self.ins().global_get(rec).i32_const(offset).i32_add();
        self.str_value(len);
    }

    /// Turns the i32 address on the stack into a string value of as many
    /// bytes as the i32 in local `len` (`len << 32 | address`).
    fn str_value(&mut self, len: u32) {
        self.ins()
            .i64_extend_i32_u()
            .local_get(len)
            .i64_extend_i32_u()
            .i64_const(32)
            .i64_shl()
            .i64_or();
    }

    fn probe_var(&mut self, var: &ProbeVar, span: Span) -> Option<Ty> {
        let Scope::Probe(p) = self.scope else {
            return None;
        };
        let kind = self.l.probes[p].kind.clone();
        match var {
            ProbeVar::Arg { index } => {
                self.arg(*index, span)?;
            }
            ProbeVar::ArgString { index } => return self.user_string(*index, span),
            ProbeVar::SyscallName => {
                let ProbeKind::Syscall { name, .. } = &kind else {
                    return None;
                };
                self.literal(name.as_bytes());
            }
            ProbeVar::Return => {
                let offset = self.capture(Capture::RetVal, span)?;
                self.load_field(offset);
            }
            ProbeVar::ArgStr => self.argstr(&kind, span)?,
            ProbeVar::RetStr => self.retstr(&kind, span)?,
            ProbeVar::ArgDecoded { index, kind } => self.decoded_arg(*index, *kind, span)?,
            ProbeVar::ArgInt { index } => {
                self.arg(*index, span)?;
                self.ins().i64_extend32_s();
            }
            ProbeVar::SyscallNr => {
                let ProbeKind::Syscall { nr, .. } = &kind else {
                    return None;
                };
                self.ins().i64_const(i64::from(*nr));
            }
            ProbeVar::Field { index, .. } => return self.tracepoint_field(*index, span),
            ProbeVar::SignalName { index } => return self.signal_name(*index, span),
            ProbeVar::Const(value) => {
                self.ins().i64_const(*value);
            }
            ProbeVar::ConstStr(text) => self.literal(text.as_bytes()),
            ProbeVar::TracepointParms => return self.tracepoint_parms(span),
            ProbeVar::ExitCode => {
                let offset = self.capture(Capture::ExitCode, span)?;
                self.load_field(offset);
            }
            _ => return self.user_probe_var(var, span),
        }
        Some(var.ty())
    }

    /// Evaluates `keys` into temporaries, then pushes them as the pending
    /// key, so a key expression that itself indexes a map cannot interleave
    /// its key parts with ours.
    fn keys(&mut self, keys: &[Expr]) {
        let mut temps = Vec::new();
        for key in keys {
            let ty = self.expr(key).unwrap_or(Ty::Long);
            let t = self.temp(ValType::I64);
            self.ins().local_set(t);
            temps.push((t, ty));
        }
        for (t, ty) in temps {
            self.ins().local_get(t);
            self.rt(if ty == Ty::Str { "key_str" } else { "key_i64" });
        }
    }

    /// Pushes the map id of an aggregate with its key pending.
    fn aggregate_ref(&mut self, operand: &Expr) -> Option<()> {
        match &operand.kind {
            ExprKind::Index { array, keys } => {
                let g = self.global_index(&array.name)?;
                self.keys(keys);
                let map = self.l.globals[g];
                self.ins().global_get(map);
            }
            ExprKind::Var(ident) => {
                let g = self.global_index(&ident.name)?;
                let map = self.l.globals[g];
                self.ins().global_get(map);
            }
            _ => return None,
        }
        Some(())
    }

    fn binary(&mut self, op: BinaryOp, lhs: &Expr, rhs: &Expr, span: Span) -> Option<Ty> {
        use BinaryOp::*;
        match op {
            And | Or => {
                self.cond(lhs);
                self.open(BlockType::Result(ValType::I64), b'i');
                if op == And {
                    self.cond(rhs);
                    self.ins().i64_extend_i32_u();
                    self.ins().else_().i64_const(0);
                } else {
                    self.ins().i64_const(1).else_();
                    self.cond(rhs);
                    self.ins().i64_extend_i32_u();
                }
                self.close();
                Some(Ty::Long)
            }
            Concat => {
                self.expr(lhs);
                self.expr(rhs);
                self.rt("str_concat");
                Some(Ty::Str)
            }
            Eq | Ne | Lt | Le | Gt | Ge => {
                let ty = self.expr(lhs);
                self.expr(rhs);
                if ty == Some(Ty::Str) {
                    self.rt("str_cmp");
                    self.ins().i32_const(0);
                    match op {
                        Eq => self.ins().i32_eq(),
                        Ne => self.ins().i32_ne(),
                        Lt => self.ins().i32_lt_s(),
                        Le => self.ins().i32_le_s(),
                        Gt => self.ins().i32_gt_s(),
                        _ => self.ins().i32_ge_s(),
                    };
                } else {
                    match op {
                        Eq => self.ins().i64_eq(),
                        Ne => self.ins().i64_ne(),
                        Lt => self.ins().i64_lt_s(),
                        Le => self.ins().i64_le_s(),
                        Gt => self.ins().i64_gt_s(),
                        _ => self.ins().i64_ge_s(),
                    };
                }
                self.ins().i64_extend_i32_u();
                Some(Ty::Long)
            }
            Match | NotMatch => {
                self.expr(lhs);
                let ExprKind::Str(pattern) = &rhs.kind else {
                    return None;
                };
                match super::regex::compile(pattern) {
                    Ok(table) => self.literal(&table),
                    Err(why) => {
                        self.error(Diagnostic::error(why, rhs.span, "this pattern"));
                        return None;
                    }
                }
                // The runtime takes (table, subject).
                let subject = self.temp(ValType::I64);
                let table = self.temp(ValType::I64);
                self.ins()
                    .local_set(table)
                    .local_set(subject)
                    .local_get(table)
                    .local_get(subject);
                self.rt("regex_match");
                if op == NotMatch {
                    self.ins().i64_eqz().i64_extend_i32_u();
                }
                Some(Ty::Long)
            }
            _ => {
                self.expr(lhs);
                self.expr(rhs);
                self.arith(op, span);
                Some(Ty::Long)
            }
        }
    }

    /// Applies an arithmetic operator to the two i64s on the stack, with
    /// stap's division-by-zero error.
    fn arith(&mut self, op: BinaryOp, span: Span) {
        use BinaryOp::*;
        match op {
            Add => {
                self.ins().i64_add();
            }
            Sub => {
                self.ins().i64_sub();
            }
            Mul => {
                self.ins().i64_mul();
            }
            Shl => {
                self.ins().i64_shl();
            }
            Shr => {
                self.ins().i64_shr_s();
            }
            BitAnd => {
                self.ins().i64_and();
            }
            BitOr => {
                self.ins().i64_or();
            }
            BitXor => {
                self.ins().i64_xor();
            }
            Div | Mod => {
                let divisor = self.temp(ValType::I64);
                let dividend = self.temp(ValType::I64);
                self.ins().local_set(divisor).local_set(dividend);
                self.ins().local_get(divisor).i64_eqz();
                self.open(BlockType::Empty, b'i');
                self.raise_literal("division by 0", span);
                self.close();
                // i64::MIN / -1 traps in Wasm; stap's C gives the wrapped
                // quotient and a zero remainder, so -1 never divides.
                self.ins().local_get(divisor).i64_const(-1).i64_eq();
                self.open(BlockType::Result(ValType::I64), b'i');
                if op == Div {
                    self.ins().i64_const(0).local_get(dividend).i64_sub();
                } else {
                    self.ins().i64_const(0);
                }
                self.ins().else_().local_get(dividend).local_get(divisor);
                if op == Div {
                    self.ins().i64_div_s();
                } else {
                    self.ins().i64_rem_s();
                }
                self.close();
            }
            _ => {}
        }
    }

    fn assign(&mut self, op: AssignOp, target: &Expr, value: &Expr, span: Span) -> Option<Ty> {
        match op {
            AssignOp::Aggregate => {
                let v = self.temp(ValType::I64);
                self.expr(value);
                self.ins().local_set(v);
                self.aggregate_ref(target)?;
                self.ins().local_get(v);
                self.rt("stat_add");
                None
            }
            AssignOp::Set => {
                let ty = self.expr(value)?;
                let v = self.temp(ValType::I64);
                self.ins().local_set(v);
                self.store(target, v, ty)?;
                self.ins().local_get(v);
                Some(ty)
            }
            AssignOp::Compound(BinaryOp::Concat) => {
                let v = self.temp(ValType::I64);
                self.expr(value);
                self.ins().local_set(v);
                let new = self.update(target, span, &mut |g| {
                    g.ins().local_get(v);
                    g.rt("str_concat");
                })?;
                self.ins().local_get(new);
                Some(Ty::Str)
            }
            AssignOp::Compound(bin) => {
                let v = self.temp(ValType::I64);
                self.expr(value);
                self.ins().local_set(v);
                let new = self.update(target, span, &mut |g| {
                    g.ins().local_get(v);
                    g.arith(bin, span);
                })?;
                self.ins().local_get(new);
                Some(Ty::Long)
            }
        }
    }

    /// Stores local `v` (of type `ty`) into an assignable expression.
    fn store(&mut self, target: &Expr, v: u32, ty: Ty) -> Option<()> {
        match &target.kind {
            ExprKind::Var(ident) => match self.name(&ident.name) {
                Some(Name::Global(g)) => {
                    let global = self.l.globals[g];
                    if ty == Ty::Str {
                        self.ins().global_get(global).local_get(v);
                        self.rt("str_keep");
                        self.ins().global_set(global);
                    } else {
                        self.ins().local_get(v).global_set(global);
                    }
                }
                Some(Name::Param(i)) => {
                    self.ins().local_get(v).local_set(i as u32);
                }
                _ => {
                    let local = self.local(&ident.name);
                    self.ins().local_get(v).local_set(local);
                }
            },
            ExprKind::Index { array, keys } => {
                let g = self.global_index(&array.name)?;
                self.keys(keys);
                let map = self.l.globals[g];
                self.ins().global_get(map).local_get(v);
                self.site(target.span);
                self.rt(if ty == Ty::Str {
                    "map_set_str"
                } else {
                    "map_set_i64"
                });
            }
            _ => return None,
        }
        Some(())
    }

    /// Reads an assignable expression, applies `apply` to the value on the
    /// stack, stores the result and returns the local holding it.
    fn update(
        &mut self,
        target: &Expr,
        span: Span,
        apply: &mut dyn FnMut(&mut Self),
    ) -> Option<u32> {
        let new = self.temp(ValType::I64);
        match &target.kind {
            ExprKind::Index { array, keys } => {
                let g = self.global_index(&array.name)?;
                let ty = self.l.global_ty(g);
                // Keys once into temporaries, pushed twice (get, then set).
                let mut temps = Vec::new();
                for key in keys {
                    self.expr(key);
                    let t = self.temp(ValType::I64);
                    self.ins().local_set(t);
                    temps.push(t);
                }
                let key_types: Vec<Ty> = self.l.typed.globals[g]
                    .keys
                    .iter()
                    .flatten()
                    .map(|k| k.ty.unwrap_or(Ty::Long))
                    .collect();
                let map = self.l.globals[g];
                self.push_key_locals(&temps, &key_types);
                self.ins().global_get(map);
                self.rt(if ty == Ty::Str {
                    "map_get_str"
                } else {
                    "map_get_i64"
                });
                apply(self);
                self.ins().local_set(new);
                self.push_key_locals(&temps, &key_types);
                self.ins().global_get(map).local_get(new);
                self.site(span);
                self.rt(if ty == Ty::Str {
                    "map_set_str"
                } else {
                    "map_set_i64"
                });
            }
            ExprKind::Var(_) => {
                let ty = self.expr(target)?;
                apply(self);
                self.ins().local_set(new);
                self.store(target, new, ty)?;
            }
            _ => return None,
        }
        Some(new)
    }

    fn call(&mut self, name: &Ident, args: &[Expr], span: Span) -> Option<Ty> {
        if let Some((f, function)) = self.l.typed.function(&name.name) {
            for arg in args {
                self.expr(arg);
            }
            let index = self.l.first_function + f as u32;
            self.site(span);
            self.ins().call(index);
            self.check_caught();
            return Some(function.ret.ty.unwrap_or(Ty::Long));
        }
        let builtin = symbols::builtin(&name.name)?;
        match builtin.kind {
            symbols::BuiltinKind::Runtime => {
                for arg in args {
                    self.expr(arg);
                }
                self.site(span);
                self.rt(builtin.name);
                builtin.ret
            }
            symbols::BuiltinKind::Context => self.context(&name.name),
            symbols::BuiltinKind::Special => self.special(&name.name, args, span),
        }
    }

    fn context(&mut self, name: &str) -> Option<Ty> {
        if let Some(ty) = self.alias_context(name) {
            return Some(ty);
        }
        let field = symbols::context_field(name)?;
        let offset = self.l.context.offset(field)? as u64;
        if task::is_process_context(field) {
            return self.process_context(name, offset as u16);
        }
        let rec = self.l.g_rec;
        match name {
            "pid" => {
                self.ins()
                    .global_get(rec)
                    .i64_load(mem(offset, 3))
                    .i64_const(32)
                    .i64_shr_u();
            }
            "tid" | "uid" => {
                self.ins()
                    .global_get(rec)
                    .i64_load(mem(offset, 3))
                    .i64_const(0xffff_ffff)
                    .i64_and();
            }
            "gid" => {
                self.ins()
                    .global_get(rec)
                    .i64_load(mem(offset, 3))
                    .i64_const(32)
                    .i64_shr_u();
            }
            "execname" => {
                self.ins()
                    .global_get(rec)
                    .i32_const(offset as i32)
                    .i32_add()
                    .i32_const(wasmtap_abi::COMM_LEN as i32);
                self.rt("str_from_cstr");
                return Some(Ty::Str);
            }
            _ => {
                debug_assert_eq!(field, ContextField::Cpu);
                self.ins().global_get(rec).i64_load(mem(offset, 3));
            }
        }
        Some(Ty::Long)
    }

    fn special(&mut self, name: &str, args: &[Expr], span: Span) -> Option<Ty> {
        match name {
            "printf" | "print" | "println" | "printd" | "printdln"
                if self.may_catch() && !self.buffering =>
            {
                // Where an error may be caught, a statement's output must
                // appear whole or not at all: build it, then write it.
                self.buffering = true;
                self.rt("fmt_begin");
                self.special(name, args, span);
                self.rt("fmt_end");
                self.rt("fmt_lit");
                self.buffering = false;
                None
            }
            "printf" => {
                self.printf(args);
                None
            }
            "sprintf" => {
                self.rt("fmt_begin");
                self.printf(args);
                self.rt("fmt_end");
                Some(Ty::Str)
            }
            "print" | "println" | "sprint" | "sprintln" => {
                let to_string = name.starts_with('s');
                if to_string {
                    self.rt("fmt_begin");
                }
                self.print_values(args, None);
                if name.ends_with("ln") {
                    self.literal(b"\n");
                    self.rt("fmt_lit");
                }
                if to_string {
                    self.rt("fmt_end");
                    return Some(Ty::Str);
                }
                None
            }
            "printd" | "printdln" => {
                let (delimiter, rest) = args.split_first()?;
                let d = self.temp(ValType::I64);
                self.expr(delimiter);
                self.ins().local_set(d);
                self.print_values(rest, Some(d));
                if name == "printdln" {
                    self.literal(b"\n");
                    self.rt("fmt_lit");
                }
                None
            }
            "exit" => {
                let exit = self.l.g_exit;
                self.ins().i32_const(1).global_set(exit);
                None
            }
            "abort" => {
                let exit = self.l.g_exit;
                self.ins().i32_const(2).global_set(exit);
                self.raise_literal("abort() called", span);
                None
            }
            "error" => {
                self.expr(&args[0]);
                self.raise(span);
                None
            }
            "user_string" | "user_string_n" if let Some(value) = self.user_value_arg(&args[0]) => {
                let max = self.l.options.capture_string_bytes;
                self.user_string_value(&value, max, span)?;
                if let Some(n) = args.get(1) {
                    // The capture reads the whole string; cut it here.
                    self.ins().i64_const(0);
                    self.expr(n);
                    self.rt("substr");
                }
                Some(Ty::Str)
            }
            "user_string" | "user_string_n" => {
                let index = self.pointer_arg(&args[0], name)?;
                if let Some(n) = args.get(1) {
                    // The capture reads the whole string; cut it here.
                    self.user_string(index, span)?;
                    self.ins().i64_const(0);
                    self.expr(n);
                    self.rt("substr");
                    return Some(Ty::Str);
                }
                self.user_string(index, span)
            }
            "text_strn" => {
                // stap's text_strn(s, len, quoted); a quoted string cut
                // short gets "..." after its closing quote.
                for arg in args {
                    self.expr(arg);
                }
                self.ins().i64_const(0);
                self.rt("text_strn");
                Some(Ty::Str)
            }
            "string_quoted" => {
                // stap: text_strn(s, 0, quoted, no ellipsis).
                self.expr(&args[0]);
                self.ins().i64_const(0).i64_const(1).i64_const(0);
                self.rt("text_strn");
                Some(Ty::Str)
            }
            "target" => {
                let pid = self.l.options.target_pid.unwrap_or(0) as i64;
                self.ins().i64_const(pid);
                Some(Ty::Long)
            }
            "pp" | "probefunc" | "ppfunc" => {
                let Scope::Probe(p) = self.scope else {
                    self.literal(b"");
                    return Some(Ty::Str);
                };
                let probe = &self.l.probes[p];
                let text = match (name, &probe.kind) {
                    ("pp", _) => probe.name.clone(),
                    (_, ProbeKind::Syscall { name, .. }) if name.starts_with("__") => name.clone(),
                    (_, ProbeKind::Syscall { name, .. }) => format!("__x64_sys_{name}"),
                    (_, ProbeKind::UserFunction { function, .. }) => function.clone(),
                    (
                        _,
                        ProbeKind::Tracepoint {
                            alias: Some(TapsetAlias::KernelFunction(function)),
                            ..
                        },
                    ) => function.clone(),
                    _ => String::new(),
                };
                self.literal(text.as_bytes());
                Some(Ty::Str)
            }
            "probemod" => self.probemod(),
            "randint" => {
                let n = self.temp(ValType::I64);
                self.expr(&args[0]);
                self.ins().local_tee(n).i64_const(0).i64_le_s();
                self.open(BlockType::Empty, b'i');
                self.raise_literal("randint: the range must be positive", span);
                self.close();
                let random = self.l.host_random;
                self.ins().call(random).local_get(n).i64_rem_u();
                Some(Ty::Long)
            }
            _ if name.starts_with("task_") => self.task_builtin(name, args),
            _ if name.starts_with("gettimeofday_") || name.starts_with("local_clock_") => {
                let clock = i32::from(name.starts_with("local_clock_"));
                let divisor = match name.rsplit('_').next() {
                    Some("us") => 1_000,
                    Some("ms") => 1_000_000,
                    Some("s") => 1_000_000_000,
                    _ => 1,
                };
                let now = self.l.host_now_ns;
                self.ins().i32_const(clock).call(now);
                if divisor != 1 {
                    self.ins().i64_const(divisor).i64_div_u();
                }
                Some(Ty::Long)
            }
            _ => self.stack(name, args, span),
        }
    }

    /// The stack builtins (see `codegen/stack.rs`): capture the slot the
    /// builtin needs, evaluate its argument, call the runtime.
    fn stack(&mut self, name: &str, args: &[Expr], span: Span) -> Option<Ty> {
        let call = super::stack::lower(name)?;
        if call.capture.is_some() && self.plan.is_none() {
            self.error(
                Diagnostic::error(
                    format!("{name}() needs an event the kernel samples"),
                    span,
                    "no stack to capture here",
                )
                .with_hint("use it in timer.profile, perf.*.sample(N) or syscall probes; keep the stack in a global (s[ubacktrace()] <<< 1) and print it later"),
            );
            return None;
        }
        let slot = match call.capture {
            Some((capture, _)) => Some(self.capture(capture, span)?),
            None => None,
        };
        let value = self.temp(ValType::I64);
        if let Some(arg) = args.first() {
            self.expr(arg);
            self.ins().local_set(value);
        }
        self.site(span);
        let l = self.l;
        super::stack::emit(&mut self.ins(), l, &call, slot, value);
        call.ret
    }

    /// The syscall argument a `user_string()` pointer names.
    fn pointer_arg(&mut self, arg: &Expr, function: &str) -> Option<u8> {
        let var = match (&arg.kind, self.scope) {
            (ExprKind::Target(t), Scope::Probe(p)) if t.path.is_empty() => {
                symbols::probe_var(&self.l.probes[p].kind, self.l.catalog, &t.name, true)
            }
            (ExprKind::Var(v), Scope::Probe(_)) => match self.name(&v.name) {
                Some(Name::Probe(var)) => Some(var),
                _ => None,
            },
            _ => None,
        };
        match var {
            Some(ProbeVar::Arg { index }) => Some(index),
            _ => {
                self.error(
                    Diagnostic::error(
                        format!("{function}() needs a pointer argument of the probe, such as $filename"),
                        arg.span,
                        "not a probe argument",
                    )
                    .with_hint("the kernel copies the string when the event fires, so it must know which argument to read"),
                );
                None
            }
        }
    }

    /// printf's pieces; arguments are evaluated first, as stap does.
    fn printf(&mut self, args: &[Expr]) {
        let Some(ExprKind::Str(format)) = args.first().map(|a| &a.kind) else {
            return;
        };
        let Ok(pieces) = format::parse(format) else {
            return;
        };
        let mut values = Vec::new();
        for arg in &args[1..] {
            self.expr(arg);
            let t = self.temp(ValType::I64);
            self.ins().local_set(t);
            values.push(t);
        }
        let mut next = values.into_iter();
        for piece in pieces {
            match piece {
                Piece::Literal(text) => {
                    self.literal(text.as_bytes());
                    self.rt("fmt_lit");
                }
                Piece::Conversion {
                    conv,
                    flags,
                    width,
                    precision,
                } => {
                    let fixed = |c: Count| match c {
                        Count::Fixed(n) => Some(n),
                        _ => None,
                    };
                    let width_arg = (width == Count::Star).then(|| next.next()).flatten();
                    let precision_arg = (precision == Count::Star).then(|| next.next()).flatten();
                    let Some(value) = next.next() else { return };
                    self.ins().local_get(value);
                    let packed = spec::pack(conv, flags, fixed(width), fixed(precision));
                    self.ins().i64_const(packed);
                    for (arg, shift) in [
                        (width_arg, spec::WIDTH_SHIFT),
                        (precision_arg, spec::PRECISION_SHIFT),
                    ] {
                        if let Some(a) = arg {
                            self.ins()
                                .local_get(a)
                                .i64_const(1)
                                .i64_add()
                                .i64_const(0xffff)
                                .i64_and()
                                .i64_const(shift as i64)
                                .i64_shl()
                                .i64_or();
                        }
                    }
                    self.rt(if conv == b's' { "fmt_str" } else { "fmt_i64" });
                }
            }
        }
    }

    /// print/printd: each value in its natural format, histograms drawn.
    fn print_values(&mut self, args: &[Expr], delimiter: Option<u32>) {
        for (i, arg) in args.iter().enumerate() {
            if i > 0
                && let Some(d) = delimiter
            {
                self.ins().local_get(d);
                self.rt("fmt_lit");
            }
            if let ExprKind::Hist { kind, operand } = &arg.kind {
                if self.aggregate_ref(operand).is_none() {
                    continue;
                }
                match kind {
                    HistKind::Log => {
                        self.ins()
                            .i32_const(0)
                            .i64_const(0)
                            .i64_const(0)
                            .i64_const(0);
                    }
                    HistKind::Linear { lo, hi, step } => {
                        self.ins().i32_const(1);
                        self.expr(lo);
                        self.expr(hi);
                        self.expr(step);
                    }
                }
                self.site(arg.span);
                self.rt("stat_print_hist");
                continue;
            }
            match self.expr(arg) {
                Some(Ty::Str) => {
                    self.ins().i64_const(spec::pack(b's', 0, None, None));
                    self.rt("fmt_str");
                }
                Some(_) => {
                    self.ins().i64_const(spec::pack(b'd', 0, None, None));
                    self.rt("fmt_i64");
                }
                None => {}
            }
        }
    }
}

/// Parses a script argument as stap does: decimal, 0x hex, 0 octal.
fn parse_int(text: &str) -> Option<i64> {
    let text = text.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let value = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse().ok()?
    };
    Some(if negative { -value } else { value })
}

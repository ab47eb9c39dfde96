//! Pass 2b: names and types.
//!
//! Finds every variable (globals, function parameters and locals, probe
//! locals), and infers its type the way stap does: from literals, operators,
//! builtin signatures and assignments, across functions and probes, until
//! nothing changes. A variable used with two types is an error naming both
//! places; a variable whose type nothing determines is an error too.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::{
    catalog::Catalog,
    diagnostics::Diagnostic,
    passes::{
        resolve::ResolvedProbe,
        symbols::{self, ProbeVar, Ty},
        uprobe::UserSite,
        userpath,
    },
    span::Span,
    syntax::ast::*,
};

/// A type slot being inferred, with where its type was first decided.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Slot {
    pub ty: Option<Ty>,
    pub origin: Option<Span>,
}

/// A global variable or array.
#[derive(Clone, Debug, Serialize)]
pub struct Global {
    pub name: String,
    /// Element type for arrays, value type for scalars.
    pub value: Slot,
    /// Key types; `None` for scalars.
    pub keys: Option<Vec<Slot>>,
    pub max_entries: Option<u32>,
    pub init: Option<Expr>,
    pub span: Span,
    /// Written to somewhere (stap prints written-never-read globals at end).
    pub written: bool,
    /// Read somewhere.
    pub read: bool,
}

impl Global {
    /// Whether this global is an associative array.
    pub fn is_array(&self) -> bool {
        self.keys.is_some()
    }
}

/// A script function's signature and locals.
#[derive(Clone, Debug, Serialize)]
pub struct Function {
    pub name: String,
    /// Index in `Script::items`.
    pub item: usize,
    pub params: Vec<(String, Slot)>,
    pub ret: Slot,
    /// Whether some `return expr` gives it a value.
    pub returns_value: bool,
    pub locals: BTreeMap<String, Slot>,
    pub span: Span,
}

/// The result of the pass: every name with its type.
#[derive(Clone, Debug, Serialize)]
pub struct Typed {
    pub globals: Vec<Global>,
    pub functions: Vec<Function>,
    /// Locals of each resolved probe's handler, by probe id.
    pub probe_locals: Vec<BTreeMap<String, Slot>>,
}

impl Typed {
    /// The global named `name`.
    pub fn global(&self, name: &str) -> Option<(usize, &Global)> {
        self.globals
            .iter()
            .enumerate()
            .find(|(_, g)| g.name == name)
    }

    /// The function named `name`.
    pub fn function(&self, name: &str) -> Option<(usize, &Function)> {
        self.functions
            .iter()
            .enumerate()
            .find(|(_, f)| f.name == name)
    }
}

/// Where a body runs: a probe handler or a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Probe(usize),
    Function(usize),
}

/// What a plain name refers to in a scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Name {
    Local,
    Param(usize),
    Global(usize),
    Probe(ProbeVar),
}

/// Infers all types.
///
/// # Errors
/// Type conflicts, unknown functions, wrong argument counts, unresolved
/// types.
pub fn check(
    script: &Script,
    probes: &[ResolvedProbe],
    catalog: &dyn Catalog,
) -> Result<Typed, Vec<Diagnostic>> {
    let mut checker = Checker::new(script, probes, catalog);
    checker.declare()?;
    // Iterate to a fixpoint without reporting, then once more reporting.
    for _ in 0..32 {
        checker.changed = false;
        checker.walk_all();
        if !checker.changed {
            break;
        }
    }
    checker.report = true;
    checker.walk_all();
    checker.check_resolved();
    if checker.errors.is_empty() {
        Ok(checker.typed)
    } else {
        Err(checker.errors)
    }
}

struct Checker<'a> {
    script: &'a Script,
    probes: &'a [ResolvedProbe],
    catalog: &'a dyn Catalog,
    typed: Typed,
    changed: bool,
    report: bool,
    errors: Vec<Diagnostic>,
    /// Loop depth while walking, for break/continue checks.
    loops: usize,
}

/// Type rules shared with code generation: what a name means in a scope.
pub fn lookup(
    typed: &Typed,
    probes: &[ResolvedProbe],
    catalog: &dyn Catalog,
    scope: Scope,
    name: &str,
) -> Option<Name> {
    if let Scope::Function(f) = scope
        && let Some(i) = typed.functions[f]
            .params
            .iter()
            .position(|(p, _)| p == name)
    {
        return Some(Name::Param(i));
    }
    if let Scope::Probe(p) = scope
        && let Some(var) = symbols::probe_var(&probes[p].kind, catalog, name, false)
    {
        return Some(Name::Probe(var));
    }
    if let Some((i, _)) = typed.global(name) {
        return Some(Name::Global(i));
    }
    let locals = match scope {
        Scope::Probe(p) => &typed.probe_locals[p],
        Scope::Function(f) => &typed.functions[f].locals,
    };
    locals.contains_key(name).then_some(Name::Local)
}

impl<'a> Checker<'a> {
    fn new(script: &'a Script, probes: &'a [ResolvedProbe], catalog: &'a dyn Catalog) -> Self {
        Self {
            script,
            probes,
            catalog,
            typed: Typed {
                globals: Vec::new(),
                functions: Vec::new(),
                probe_locals: vec![BTreeMap::new(); probes.len()],
            },
            changed: false,
            report: false,
            errors: Vec::new(),
            loops: 0,
        }
    }

    fn declare(&mut self) -> Result<(), Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let mut seen: HashMap<String, Span> = HashMap::new();
        for (index, item) in self.script.items.iter().enumerate() {
            match item {
                Item::Global(decl) => {
                    if let Some(previous) = seen.insert(decl.name.name.clone(), decl.name.span) {
                        errors.push(
                            Diagnostic::error(
                                format!("'{}' is declared twice", decl.name.name),
                                decl.name.span,
                                "second declaration",
                            )
                            .with_secondary(previous, "first declared here"),
                        );
                        continue;
                    }
                    let mut value = Slot::default();
                    if let Some(init) = &decl.init {
                        value = Slot {
                            ty: Some(match init.kind {
                                ExprKind::Str(_) => Ty::Str,
                                _ => Ty::Long,
                            }),
                            origin: Some(init.span),
                        };
                    }
                    self.typed.globals.push(Global {
                        name: decl.name.name.clone(),
                        value,
                        keys: None,
                        max_entries: decl.max_entries,
                        init: decl.init.clone(),
                        span: decl.span,
                        written: decl.init.is_some(),
                        read: false,
                    });
                }
                Item::Function(decl) => {
                    if let Some(previous) = seen.insert(decl.name.name.clone(), decl.name.span) {
                        errors.push(
                            Diagnostic::error(
                                format!("'{}' is declared twice", decl.name.name),
                                decl.name.span,
                                "second declaration",
                            )
                            .with_secondary(previous, "first declared here"),
                        );
                        continue;
                    }
                    let annotated = |ann: Option<TypeAnn>, span: Span| Slot {
                        ty: ann.map(|a| match a {
                            TypeAnn::Long => Ty::Long,
                            TypeAnn::String => Ty::Str,
                        }),
                        origin: ann.map(|_| span),
                    };
                    self.typed.functions.push(Function {
                        name: decl.name.name.clone(),
                        item: index,
                        params: decl
                            .params
                            .iter()
                            .map(|p| (p.name.name.clone(), annotated(p.ty, p.name.span)))
                            .collect(),
                        ret: annotated(decl.ret, decl.name.span),
                        returns_value: false,
                        locals: BTreeMap::new(),
                        span: decl.span,
                    });
                }
                Item::Probe(_) => {}
            }
        }
        // An array's shape comes from its first indexed use; find it now so
        // the walk can tell `a` (scalar) from `a[k]` (array) anywhere.
        for item in &self.script.items {
            let body = match item {
                Item::Probe(p) => &p.body,
                Item::Function(f) => &f.body,
                Item::Global(_) => continue,
            };
            let mut arrays = Vec::new();
            visit_block(body, &mut |expr| match &expr.kind {
                ExprKind::Index { array, keys } | ExprKind::In { array, keys } => {
                    arrays.push((array.name.clone(), keys.len()))
                }
                _ => {}
            });
            for stmt_array in foreach_arrays(body) {
                arrays.push(stmt_array);
            }
            for (name, arity) in arrays {
                if let Some(g) = self.typed.globals.iter_mut().find(|g| g.name == name)
                    && g.keys.is_none()
                {
                    g.keys = Some(vec![Slot::default(); arity]);
                }
            }
        }
        for global in &mut self.typed.globals {
            if global.max_entries.is_some() && global.keys.is_none() {
                global.keys = Some(Vec::new());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn walk_all(&mut self) {
        for p in 0..self.probes.len() {
            let Item::Probe(decl) = &self.script.items[self.probes[p].item] else {
                continue;
            };
            self.block(&decl.body, Scope::Probe(p));
        }
        for f in 0..self.typed.functions.len() {
            let Item::Function(decl) = &self.script.items[self.typed.functions[f].item] else {
                continue;
            };
            self.block(&decl.body, Scope::Function(f));
        }
    }

    fn check_resolved(&mut self) {
        let mut unresolved = Vec::new();
        for g in &self.typed.globals {
            if g.value.ty.is_none() {
                unresolved.push((format!("global '{}'", g.name), g.span));
            }
            for (i, key) in g.keys.iter().flatten().enumerate() {
                if key.ty.is_none() {
                    unresolved.push((format!("key {} of array '{}'", i + 1, g.name), g.span));
                }
            }
        }
        for f in &self.typed.functions {
            for (name, slot) in &f.params {
                if slot.ty.is_none() {
                    unresolved.push((format!("parameter '{name}' of '{}'", f.name), f.span));
                }
            }
            if f.returns_value && f.ret.ty.is_none() {
                unresolved.push((format!("the return value of '{}'", f.name), f.span));
            }
        }
        for (what, span) in unresolved {
            self.errors.push(
                Diagnostic::error(
                    format!("cannot infer the type of {what}"),
                    span,
                    "declared here",
                )
                .with_hint(
                    "use it with a value of a known type, or annotate it (`:long`, `:string`)",
                ),
            );
        }
        // Locals nobody gave a type default to long, as stap's do when only read.
        for locals in self
            .typed
            .probe_locals
            .iter_mut()
            .chain(self.typed.functions.iter_mut().map(|f| &mut f.locals))
        {
            for slot in locals.values_mut() {
                slot.ty.get_or_insert(Ty::Long);
            }
        }
        for f in &mut self.typed.functions {
            f.ret.ty.get_or_insert(Ty::Long);
        }
    }

    fn error(&mut self, diagnostic: Diagnostic) {
        if self.report && !self.errors.contains(&diagnostic) {
            self.errors.push(diagnostic);
        }
    }

    /// Unifies `slot` with `ty` seen at `span`; reports a conflict naming
    /// both places.
    fn unify(&mut self, slot: SlotRef, ty: Ty, span: Span, what: &str) {
        let current = *self.slot_mut(slot.clone());
        match current.ty {
            None => {
                *self.slot_mut(slot) = Slot {
                    ty: Some(ty),
                    origin: Some(span),
                };
                self.changed = true;
            }
            Some(existing) if existing != ty => {
                let mut d = Diagnostic::error(
                    format!(
                        "type mismatch for {what}: {} vs {}",
                        existing.name(),
                        ty.name()
                    ),
                    span,
                    format!("used as {} here", ty.name()),
                );
                if let Some(origin) = current.origin {
                    d = d.with_secondary(origin, format!("{} here", existing.name()));
                }
                self.error(d);
            }
            Some(_) => {}
        }
    }

    fn slot_mut(&mut self, slot: SlotRef) -> &mut Slot {
        match slot {
            SlotRef::GlobalValue(g) => &mut self.typed.globals[g].value,
            SlotRef::GlobalKey(g, k) => &mut self.typed.globals[g].keys.as_mut().expect("array")[k],
            SlotRef::Param(f, i) => &mut self.typed.functions[f].params[i].1,
            SlotRef::Ret(f) => &mut self.typed.functions[f].ret,
            SlotRef::Local(Scope::Probe(p), name) => {
                self.typed.probe_locals[p].entry(name).or_default()
            }
            SlotRef::Local(Scope::Function(f), name) => {
                self.typed.functions[f].locals.entry(name).or_default()
            }
        }
    }

    fn slot(&self, slot: &SlotRef) -> Option<Ty> {
        match slot {
            SlotRef::GlobalValue(g) => self.typed.globals[*g].value.ty,
            SlotRef::GlobalKey(g, k) => self.typed.globals[*g].keys.as_ref()?.get(*k)?.ty,
            SlotRef::Param(f, i) => self.typed.functions[*f].params[*i].1.ty,
            SlotRef::Ret(f) => self.typed.functions[*f].ret.ty,
            SlotRef::Local(Scope::Probe(p), name) => self.typed.probe_locals[*p].get(name)?.ty,
            SlotRef::Local(Scope::Function(f), name) => {
                self.typed.functions[*f].locals.get(name)?.ty
            }
        }
    }

    fn block(&mut self, block: &Block, scope: Scope) {
        for stmt in &block.stmts {
            self.stmt(stmt, scope);
        }
    }

    fn stmt(&mut self, stmt: &Stmt, scope: Scope) {
        match &stmt.kind {
            StmtKind::Block(b) => self.block(b, scope),
            StmtKind::Expr(e) => {
                self.expr(e, scope, None);
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => match defined(cond, self.probes, self.catalog, scope) {
                // `if (@defined($x))`: only the branch that will exist is
                // checked, so it may use what the other may not.
                Some(true) => self.stmt(then, scope),
                Some(false) => {
                    if let Some(o) = otherwise {
                        self.stmt(o, scope);
                    }
                }
                None => {
                    self.condition(cond, scope);
                    self.stmt(then, scope);
                    if let Some(o) = otherwise {
                        self.stmt(o, scope);
                    }
                }
            },
            StmtKind::While { cond, body } => {
                self.condition(cond, scope);
                self.loop_body(body, scope);
            }
            StmtKind::For {
                init,
                cond,
                step,
                body,
            } => {
                if let Some(e) = init {
                    self.expr(e, scope, None);
                }
                if let Some(c) = cond {
                    self.condition(c, scope);
                }
                if let Some(e) = step {
                    self.expr(e, scope, None);
                }
                self.loop_body(body, scope);
            }
            StmtKind::Foreach(f) => self.foreach(f, scope),
            StmtKind::Break | StmtKind::Continue => {
                if self.loops == 0 {
                    self.error(Diagnostic::error(
                        "'break' or 'continue' outside a loop",
                        stmt.span,
                        "not inside while, for or foreach",
                    ));
                }
            }
            StmtKind::Next => {
                if let Scope::Function(_) = scope {
                    self.error(Diagnostic::error(
                        "'next' outside a probe handler",
                        stmt.span,
                        "only probe handlers can skip to the next event",
                    ));
                }
            }
            StmtKind::Return(value) => match scope {
                Scope::Probe(_) => {
                    if value.is_some() {
                        self.error(
                            Diagnostic::error(
                                "'return' with a value in a probe handler",
                                stmt.span,
                                "probes return nothing",
                            )
                            .with_hint("use 'next' to leave a probe handler"),
                        );
                    }
                }
                Scope::Function(f) => {
                    if let Some(v) = value {
                        if !self.typed.functions[f].returns_value {
                            self.typed.functions[f].returns_value = true;
                            self.changed = true;
                        }
                        let expected = self.typed.functions[f].ret.ty;
                        if let Some(ty) = self.expr(v, scope, expected) {
                            let name = self.typed.functions[f].name.clone();
                            self.unify(
                                SlotRef::Ret(f),
                                ty,
                                v.span,
                                &format!("the return value of '{name}'"),
                            );
                        }
                    }
                }
            },
            StmtKind::Delete(target) => self.delete(target, scope),
            StmtKind::Try {
                body,
                catch_var,
                catch_body,
            } => {
                self.block(body, scope);
                if let Some(var) = catch_var {
                    self.unify(
                        SlotRef::Local(scope, var.name.clone()),
                        Ty::Str,
                        var.span,
                        &format!("'{}'", var.name),
                    );
                }
                self.block(catch_body, scope);
            }
            StmtKind::Empty => {}
        }
    }

    fn loop_body(&mut self, body: &Stmt, scope: Scope) {
        self.loops += 1;
        self.stmt(body, scope);
        self.loops -= 1;
    }

    fn condition(&mut self, cond: &Expr, scope: Scope) {
        if let Some(ty) = self.expr(cond, scope, Some(Ty::Long))
            && ty != Ty::Long
        {
            self.error(
                Diagnostic::error(
                    format!("a condition must be a number, not a {}", ty.name()),
                    cond.span,
                    "condition",
                )
                .with_hint("compare strings explicitly, e.g. `s != \"\"`"),
            );
        }
    }

    fn foreach(&mut self, f: &Foreach, scope: Scope) {
        let Some((g, global)) = self.typed.global(&f.array.name) else {
            self.error(Diagnostic::error(
                format!(
                    "foreach over '{}', which is not a global array",
                    f.array.name
                ),
                f.array.span,
                "not a global array",
            ));
            return;
        };
        let arity = global.keys.as_ref().map_or(0, Vec::len);
        if arity != f.keys.len() {
            self.error(Diagnostic::error(
                format!(
                    "'{}' has {arity} keys, but foreach names {}",
                    f.array.name,
                    f.keys.len()
                ),
                f.array.span,
                "key count mismatch",
            ));
        } else {
            for (k, key) in f.keys.iter().enumerate() {
                let local = SlotRef::Local(scope, key.name.clone());
                self.slot_mut(local.clone());
                if let Some(ty) = self.slot(&SlotRef::GlobalKey(g, k)) {
                    self.unify(local, ty, key.span, &format!("'{}'", key.name));
                } else if let Some(ty) = self.slot(&local) {
                    self.unify(
                        SlotRef::GlobalKey(g, k),
                        ty,
                        key.span,
                        &format!("key {} of '{}'", k + 1, f.array.name),
                    );
                }
            }
        }
        self.typed.globals[g].read = true;
        if let Some(value) = &f.value {
            let local = SlotRef::Local(scope, value.name.clone());
            self.slot_mut(local.clone());
            match self.slot(&SlotRef::GlobalValue(g)) {
                Some(Ty::Stats) => self.error(
                    Diagnostic::error(
                        "foreach value variable over a statistics array",
                        value.span,
                        "has no single value",
                    )
                    .with_hint("read @count(a[k]) etc. in the loop instead"),
                ),
                Some(ty) => self.unify(local, ty, value.span, &format!("'{}'", value.name)),
                None => {}
            }
        }
        if let Some(limit) = &f.limit {
            self.expr(limit, scope, Some(Ty::Long));
        }
        self.loop_body(&f.body, scope);
    }

    fn delete(&mut self, target: &Expr, scope: Scope) {
        match &target.kind {
            ExprKind::Index { .. } => {
                self.expr(target, scope, None);
            }
            ExprKind::Var(ident) => {
                if let Some(Name::Global(g)) = self.lookup(scope, &ident.name) {
                    self.typed.globals[g].written = true;
                } else {
                    self.expr(target, scope, None);
                }
            }
            _ => self.error(Diagnostic::error(
                "'delete' needs a variable, an array or an array element",
                target.span,
                "cannot delete this",
            )),
        }
    }

    fn lookup(&self, scope: Scope, name: &str) -> Option<Name> {
        lookup(&self.typed, self.probes, self.catalog, scope, name)
    }

    /// The slot a variable name refers to, creating a local if needed.
    fn var_slot(&mut self, scope: Scope, ident: &Ident) -> Option<SlotRef> {
        match self.lookup(scope, &ident.name) {
            Some(Name::Param(i)) => match scope {
                Scope::Function(f) => Some(SlotRef::Param(f, i)),
                Scope::Probe(_) => None,
            },
            Some(Name::Global(g)) => {
                if self.typed.globals[g].is_array() {
                    let mut diagnostic = Diagnostic::error(
                        format!("'{}' is an array; index it", ident.name),
                        ident.span,
                        "array used as a scalar",
                    )
                    .with_hint(format!("write {}[key]", ident.name));
                    // Name the other place too: where it was indexed.
                    let indexed = self.typed.globals[g]
                        .keys
                        .iter()
                        .flatten()
                        .find_map(|k| k.origin);
                    if let Some(span) = indexed {
                        diagnostic = diagnostic.with_secondary(span, "used as an array here");
                    }
                    self.error(diagnostic);
                    return None;
                }
                Some(SlotRef::GlobalValue(g))
            }
            Some(Name::Probe(_)) => None,
            Some(Name::Local) | None => Some(SlotRef::Local(scope, ident.name.clone())),
        }
    }

    /// Infers the type of `expr`; `expected` flows into untyped variables.
    fn expr(&mut self, expr: &Expr, scope: Scope, expected: Option<Ty>) -> Option<Ty> {
        match &expr.kind {
            ExprKind::Int(_) | ExprKind::ScriptArgCount => Some(Ty::Long),
            ExprKind::Str(_) => Some(Ty::Str),
            ExprKind::ScriptArg { string, .. } => Some(if *string { Ty::Str } else { Ty::Long }),
            ExprKind::Var(ident) => self.var_read(ident, scope, expected),
            ExprKind::Target(target) => self.target(target, expr.span, scope),
            ExprKind::Index { array, keys } => {
                let g = self.array(array, keys, scope)?;
                self.typed.globals[g].read = true;
                let slot = SlotRef::GlobalValue(g);
                if let (None, Some(ty)) = (self.slot(&slot), expected) {
                    self.unify(slot.clone(), ty, expr.span, &format!("'{}'", array.name));
                }
                self.slot(&slot)
            }
            ExprKind::Call { name, args } => self.call(name, args, expr.span, scope),
            ExprKind::Unary { operand, .. } => {
                self.expect(operand, scope, Ty::Long, "operand");
                Some(Ty::Long)
            }
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, scope),
            ExprKind::Ternary {
                cond,
                then,
                otherwise,
            } => {
                match defined(cond, self.probes, self.catalog, scope) {
                    Some(true) => return self.expr(then, scope, expected),
                    Some(false) => return self.expr(otherwise, scope, expected),
                    None => {}
                }
                self.condition(cond, scope);
                let a = self.expr(then, scope, expected);
                let b = self.expr(otherwise, scope, a.or(expected));
                let a = a.or_else(|| b.and_then(|b| self.expr(then, scope, Some(b))));
                if let (Some(x), Some(y)) = (a, b)
                    && x != y
                {
                    self.error(
                        Diagnostic::error(
                            format!("the branches of '?:' differ: {} vs {}", x.name(), y.name()),
                            otherwise.span,
                            y.name(),
                        )
                        .with_secondary(then.span, x.name()),
                    );
                }
                a.or(b)
            }
            ExprKind::Assign { op, target, value } => self.assign(*op, target, value, scope),
            ExprKind::IncDec { target, .. } => {
                self.lvalue(target, scope, Ty::Long, expr.span);
                Some(Ty::Long)
            }
            ExprKind::In { keys, array } => {
                if let Some(g) = self.array(array, keys, scope) {
                    self.typed.globals[g].read = true;
                }
                Some(Ty::Long)
            }
            ExprKind::StatOp { operand, .. } | ExprKind::Hist { operand, .. } => {
                self.stats_operand(operand, scope);
                if let ExprKind::Hist {
                    kind: HistKind::Linear { lo, hi, step },
                    ..
                } = &expr.kind
                {
                    for e in [lo, hi, step] {
                        self.expect(e, scope, Ty::Long, "histogram bound");
                    }
                }
                Some(Ty::Long)
            }
            ExprKind::AtCall { name, .. } if name.name == "defined" => Some(Ty::Long),
            ExprKind::AtCall { name, .. } if name.name == "entry" => {
                self.error(
                    Diagnostic::error("'@entry' is not supported by wasmtap", name.span, "here")
                        .with_hint(
                            "save the value in the entry probe, e.g. `start[tid()] = ...`, \
                             and read it in the return probe",
                        ),
                );
                None
            }
            ExprKind::AtCall { name, args, path } if name.name == "cast" => {
                let Scope::Probe(p) = scope else {
                    self.error(Diagnostic::error(
                        "@cast used outside a probe handler",
                        expr.span,
                        "the kernel copies the struct when a probe fires",
                    ));
                    return None;
                };
                let value =
                    userpath::cast_value(&self.probes[p].kind, self.catalog, args, path, expr.span)
                        .and_then(|v| {
                            v.script_ty(false).map_err(|message| {
                                Diagnostic::error(message, expr.span, "not a script value")
                            })
                        });
                match value {
                    Ok(ty) => Some(ty),
                    Err(diagnostic) => {
                        self.error(diagnostic);
                        None
                    }
                }
            }
            ExprKind::AtCall { name, .. } => {
                self.error(Diagnostic::error(
                    format!("'@{}' is not supported yet", name.name),
                    name.span,
                    "unsupported",
                ));
                None
            }
        }
    }

    fn expect(&mut self, expr: &Expr, scope: Scope, want: Ty, what: &str) {
        if let Some(ty) = self.expr(expr, scope, Some(want))
            && ty != want
        {
            self.error(Diagnostic::error(
                format!("{what} must be a {}, not a {}", want.name(), ty.name()),
                expr.span,
                format!("this is a {}", ty.name()),
            ));
        }
    }

    fn var_read(&mut self, ident: &Ident, scope: Scope, expected: Option<Ty>) -> Option<Ty> {
        match self.lookup(scope, &ident.name) {
            Some(Name::Probe(var)) => Some(var.ty()),
            Some(Name::Global(g)) => {
                self.typed.globals[g].read = true;
                let slot = self.var_slot(scope, ident)?;
                if let (None, Some(ty)) = (self.slot(&slot), expected) {
                    self.unify(slot.clone(), ty, ident.span, &format!("'{}'", ident.name));
                }
                self.slot(&slot)
            }
            _ => {
                let slot = self.var_slot(scope, ident)?;
                self.slot_mut(slot.clone());
                if let (None, Some(ty)) = (self.slot(&slot), expected) {
                    self.unify(slot.clone(), ty, ident.span, &format!("'{}'", ident.name));
                }
                self.slot(&slot)
            }
        }
    }

    fn target(&mut self, target: &TargetExpr, span: Span, scope: Scope) -> Option<Ty> {
        let Scope::Probe(p) = scope else {
            self.error(
                Diagnostic::error(
                    format!("'${}' used outside a probe handler", target.name),
                    span,
                    "target variables exist only in probes",
                )
                .with_hint("pass the value to the function as an argument"),
            );
            return None;
        };
        let kind = &self.probes[p].kind;
        if let Some(value) = userpath::target_value(kind, self.catalog, target, span) {
            let ty = value.and_then(|v| {
                v.script_ty(target.pretty)
                    .map_err(|message| Diagnostic::error(message, span, "not a script value"))
            });
            return match ty {
                Ok(ty) => Some(ty),
                Err(diagnostic) => {
                    self.error(diagnostic);
                    None
                }
            };
        }
        let user_probe = UserSite::of(kind, self.catalog).is_some();
        if user_probe && target.pretty && target.path.is_empty() && target.name == "$parms" {
            return Some(Ty::Str);
        }
        if (!target.path.is_empty() || target.pretty) && !user_probe {
            self.error(Diagnostic::error(
                "member access on target variables is not supported yet",
                span,
                "unsupported",
            ));
            return None;
        }
        match symbols::probe_var(kind, self.catalog, &target.name, true) {
            Some(var) => Some(var.ty()),
            None => {
                let names = symbols::probe_var_names(kind, self.catalog)
                    .into_iter()
                    .filter(|n| n.starts_with('$'))
                    .collect::<Vec<_>>();
                let mut d = Diagnostic::error(
                    format!(
                        "unknown target variable '${}' in probe '{}'",
                        target.name, self.probes[p].name
                    ),
                    span,
                    "not available here",
                );
                d = d.with_hint(if names.is_empty() {
                    "this probe has no target variables".to_string()
                } else {
                    format!("available: {}", names.join(" "))
                });
                self.error(d);
                None
            }
        }
    }

    /// Checks an array access; returns the global's index.
    fn array(&mut self, array: &Ident, keys: &[Expr], scope: Scope) -> Option<usize> {
        let Some(Name::Global(g)) = self.lookup(scope, &array.name) else {
            self.error(
                Diagnostic::error(
                    format!("'{}' is not a global array", array.name),
                    array.span,
                    "unknown array",
                )
                .with_hint(format!("declare it: `global {}`", array.name)),
            );
            for key in keys {
                self.expr(key, scope, None);
            }
            return None;
        };
        let arity = self.typed.globals[g].keys.as_ref().map_or(0, Vec::len);
        if arity != keys.len() {
            self.error(Diagnostic::error(
                format!(
                    "'{}' is used with {} keys here but {arity} elsewhere",
                    array.name,
                    keys.len()
                ),
                array.span,
                "key count mismatch",
            ));
            return None;
        }
        for (k, key) in keys.iter().enumerate() {
            let slot = SlotRef::GlobalKey(g, k);
            let known = self.slot(&slot);
            if let Some(ty) = self.expr(key, scope, known) {
                if ty == Ty::Stats {
                    self.error(Diagnostic::error(
                        "a statistic cannot be a key",
                        key.span,
                        "stats",
                    ));
                    continue;
                }
                self.unify(
                    slot,
                    ty,
                    key.span,
                    &format!("key {} of '{}'", k + 1, array.name),
                );
            }
        }
        Some(g)
    }

    fn stats_operand(&mut self, operand: &Expr, scope: Scope) {
        let slot = match &operand.kind {
            ExprKind::Index { array, keys } => {
                self.array(array, keys, scope).map(SlotRef::GlobalValue)
            }
            ExprKind::Var(ident) => self.var_slot(scope, ident),
            _ => None,
        };
        match slot {
            Some(slot) => {
                if let SlotRef::GlobalValue(g) = slot {
                    self.typed.globals[g].read = true;
                }
                self.unify(slot, Ty::Stats, operand.span, "the aggregate");
            }
            None => self.error(Diagnostic::error(
                "statistics operators need a global fed with '<<<'",
                operand.span,
                "not an aggregate",
            )),
        }
    }

    fn binary(&mut self, op: BinaryOp, lhs: &Expr, rhs: &Expr, scope: Scope) -> Option<Ty> {
        use BinaryOp::*;
        match op {
            Concat => {
                self.expect(lhs, scope, Ty::Str, "an operand of '.'");
                self.expect(rhs, scope, Ty::Str, "an operand of '.'");
                Some(Ty::Str)
            }
            Eq | Ne | Lt | Le | Gt | Ge => {
                let a = self.expr(lhs, scope, None);
                let b = self.expr(rhs, scope, a);
                let a = a.or_else(|| b.and_then(|b| self.expr(lhs, scope, Some(b))));
                match (a, b) {
                    (Some(x), Some(y)) if x != y => self.error(
                        Diagnostic::error(
                            format!("cannot compare a {} with a {}", x.name(), y.name()),
                            rhs.span,
                            y.name(),
                        )
                        .with_secondary(lhs.span, x.name()),
                    ),
                    (Some(Ty::Stats), _) => self.error(
                        Diagnostic::error("cannot compare a statistic", lhs.span, "stats")
                            .with_hint("compare one of its aggregates, e.g. @count(x)"),
                    ),
                    _ => {}
                }
                Some(Ty::Long)
            }
            Match | NotMatch => {
                self.expect(lhs, scope, Ty::Str, "the left side of '=~'");
                self.expect(rhs, scope, Ty::Str, "the regular expression");
                match &rhs.kind {
                    ExprKind::Str(pattern) => {
                        if let Err(why) = crate::codegen::regex::compile(pattern) {
                            self.error(
                                Diagnostic::error(
                                    format!("invalid regular expression: {why}"),
                                    rhs.span,
                                    "this pattern",
                                )
                                .with_hint("patterns are POSIX extended regular expressions"),
                            );
                        }
                    }
                    _ => self.error(
                        Diagnostic::error(
                            "the regular expression must be a string literal",
                            rhs.span,
                            "not a literal",
                        )
                        .with_hint("stap compiles patterns before the run: write it in quotes"),
                    ),
                }
                Some(Ty::Long)
            }
            _ => {
                let what = "an arithmetic operand";
                self.expect(lhs, scope, Ty::Long, what);
                self.expect(rhs, scope, Ty::Long, what);
                Some(Ty::Long)
            }
        }
    }

    fn assign(&mut self, op: AssignOp, target: &Expr, value: &Expr, scope: Scope) -> Option<Ty> {
        match op {
            AssignOp::Aggregate => {
                self.expect(value, scope, Ty::Long, "the value of '<<<'");
                self.lvalue(target, scope, Ty::Stats, target.span);
                None
            }
            AssignOp::Compound(BinaryOp::Concat) => {
                self.expect(value, scope, Ty::Str, "the value of '.='");
                self.lvalue(target, scope, Ty::Str, target.span);
                Some(Ty::Str)
            }
            AssignOp::Compound(_) => {
                self.expect(value, scope, Ty::Long, "the value of a compound assignment");
                self.lvalue(target, scope, Ty::Long, target.span);
                Some(Ty::Long)
            }
            AssignOp::Set => {
                if !matches!(target.kind, ExprKind::Var(_) | ExprKind::Index { .. }) {
                    // Reports "cannot assign to this expression".
                    self.lvalue(target, scope, Ty::Long, target.span);
                    return None;
                }
                let current = self.lvalue_type(target, scope);
                let ty = self.expr(value, scope, current)?;
                if ty == Ty::Stats {
                    self.error(
                        Diagnostic::error("cannot assign a statistic", value.span, "stats")
                            .with_hint("feed values with '<<<'"),
                    );
                    return None;
                }
                self.lvalue(target, scope, ty, value.span);
                Some(ty)
            }
        }
    }

    /// The current type of an assignable expression, without side effects.
    fn lvalue_type(&mut self, target: &Expr, scope: Scope) -> Option<Ty> {
        match &target.kind {
            ExprKind::Var(ident) => {
                let slot = self.var_slot(scope, ident)?;
                self.slot(&slot)
            }
            ExprKind::Index { array, .. } => {
                let (g, _) = self.typed.global(&array.name)?;
                self.typed.globals[g].value.ty
            }
            _ => None,
        }
    }

    /// Records that `target` receives a value of type `ty`.
    fn lvalue(&mut self, target: &Expr, scope: Scope, ty: Ty, span: Span) {
        let slot = match &target.kind {
            ExprKind::Var(ident) => {
                if let Some(Name::Probe(_)) = self.lookup(scope, &ident.name) {
                    self.error(Diagnostic::error(
                        format!(
                            "'{}' is a probe variable and cannot be assigned",
                            ident.name
                        ),
                        ident.span,
                        "read-only",
                    ));
                    return;
                }
                if let Some(Name::Global(g)) = self.lookup(scope, &ident.name) {
                    self.typed.globals[g].written = true;
                }
                self.var_slot(scope, ident)
            }
            ExprKind::Index { array, keys } => {
                let g = self.array(array, keys, scope);
                if let Some(g) = g {
                    self.typed.globals[g].written = true;
                }
                g.map(SlotRef::GlobalValue)
            }
            _ => {
                self.error(Diagnostic::error(
                    "cannot assign to this expression",
                    target.span,
                    "not a variable or array element",
                ));
                None
            }
        };
        if let Some(slot) = slot {
            let what = match &target.kind {
                ExprKind::Var(i) | ExprKind::Index { array: i, .. } => format!("'{}'", i.name),
                _ => "the target".into(),
            };
            self.unify(slot, ty, span, &what);
        }
    }

    fn call(&mut self, name: &Ident, args: &[Expr], span: Span, scope: Scope) -> Option<Ty> {
        if let Some((f, _)) = self.typed.function(&name.name) {
            let params = self.typed.functions[f].params.len();
            if params != args.len() {
                self.error(
                    Diagnostic::error(
                        format!(
                            "'{}' takes {params} arguments, but {} were given",
                            name.name,
                            args.len()
                        ),
                        span,
                        "wrong argument count",
                    )
                    .with_secondary(self.typed.functions[f].span, "defined here"),
                );
            }
            for (i, arg) in args.iter().enumerate().take(params) {
                let slot = SlotRef::Param(f, i);
                let known = self.slot(&slot);
                if let Some(ty) = self.expr(arg, scope, known) {
                    let fname = self.typed.functions[f].name.clone();
                    let pname = self.typed.functions[f].params[i].0.clone();
                    self.unify(
                        slot,
                        ty,
                        arg.span,
                        &format!("parameter '{pname}' of '{fname}'"),
                    );
                }
            }
            let function = &self.typed.functions[f];
            return if function.returns_value || function.ret.ty.is_some() {
                function.ret.ty
            } else {
                Some(Ty::Long)
            };
        }
        let Some(builtin) = symbols::builtin(&name.name) else {
            self.error(
                Diagnostic::error(
                    format!("unknown function '{}'", name.name),
                    name.span,
                    "not a builtin or a function of this script",
                )
                .with_hint(suggest(&name.name)),
            );
            for arg in args {
                self.expr(arg, scope, None);
            }
            return None;
        };
        match builtin.params {
            Some(params) => {
                if params.len() != args.len() {
                    self.error(Diagnostic::error(
                        format!(
                            "'{}' takes {} arguments, but {} were given",
                            name.name,
                            params.len(),
                            args.len()
                        ),
                        span,
                        "wrong argument count",
                    ));
                }
                for (arg, want) in args.iter().zip(params.iter()) {
                    self.expect(
                        arg,
                        scope,
                        *want,
                        &format!("the argument of '{}'", name.name),
                    );
                }
            }
            None => self.variadic(&name.name, args, span, scope),
        }
        builtin.ret
    }

    fn variadic(&mut self, name: &str, args: &[Expr], span: Span, scope: Scope) {
        match name {
            "printf" | "sprintf" => {
                let Some(first) = args.first() else {
                    self.error(Diagnostic::error(
                        format!("'{name}' needs a format string"),
                        span,
                        "no arguments",
                    ));
                    return;
                };
                let ExprKind::Str(format) = &first.kind else {
                    self.error(Diagnostic::error(
                        format!("the format of '{name}' must be a string literal"),
                        first.span,
                        "not a literal",
                    ));
                    return;
                };
                match crate::format::parse(format) {
                    Err(message) => self.error(Diagnostic::error(
                        format!("bad format string: {message}"),
                        first.span,
                        "format",
                    )),
                    Ok(pieces) => {
                        let wanted: Vec<Ty> = pieces.iter().flat_map(|p| p.arg_types()).collect();
                        if wanted.len() != args.len() - 1 {
                            self.error(
                                Diagnostic::error(
                                    format!(
                                        "the format wants {} values, but {} were given",
                                        wanted.len(),
                                        args.len() - 1
                                    ),
                                    span,
                                    "argument count does not match the format",
                                )
                                .with_secondary(first.span, "format"),
                            );
                        }
                        for (arg, want) in args[1..].iter().zip(wanted) {
                            self.expect(arg, scope, want, "this format argument");
                        }
                    }
                }
            }
            "printd" | "printdln" => {
                if let Some(first) = args.first() {
                    self.expect(first, scope, Ty::Str, "the delimiter");
                }
                for arg in args.iter().skip(1) {
                    self.printable(arg, scope);
                }
            }
            _ => {
                for arg in args {
                    self.printable(arg, scope);
                }
            }
        }
    }

    fn printable(&mut self, arg: &Expr, scope: Scope) {
        if let Some(Ty::Stats) = self.expr(arg, scope, None) {
            self.error(
                Diagnostic::error("cannot print a statistic directly", arg.span, "stats")
                    .with_hint("print @count(x), @avg(x), or @hist_log(x)"),
            );
        }
    }
}

/// A type slot by address, so the walk can read and write it.
#[derive(Clone, Debug)]
enum SlotRef {
    GlobalValue(usize),
    GlobalKey(usize, usize),
    Param(usize, usize),
    Ret(usize),
    Local(Scope, String),
}

fn suggest(name: &str) -> String {
    let close: Vec<&str> = symbols::BUILTINS
        .iter()
        .map(|b| b.name)
        .filter(|b| edit_distance(b, name) <= 2)
        .collect();
    if close.is_empty() {
        "see `wasmtap --help` for the builtins".to_string()
    } else {
        format!("did you mean {}?", close.join(" or "))
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The value of a condition that is `@defined(X)` or `!@defined(X)`, known
/// at compile time per probe: whether X names a variable of the probe
/// (`$arg`, a tapset variable). `None` for any other condition. Code and
/// checks for the branch that cannot run are skipped, as stap elides it.
pub fn defined(
    cond: &Expr,
    probes: &[ResolvedProbe],
    catalog: &dyn Catalog,
    scope: Scope,
) -> Option<bool> {
    match &cond.kind {
        ExprKind::Unary {
            op: UnaryOp::Not,
            operand,
        } => defined(operand, probes, catalog, scope).map(|v| !v),
        ExprKind::AtCall { name, args, .. } if name.name == "defined" => {
            let Scope::Probe(p) = scope else {
                return Some(false);
            };
            let kind = &probes[p].kind;
            Some(match args.first().map(|a| &a.kind) {
                Some(ExprKind::Target(t)) if t.path.is_empty() => {
                    symbols::probe_var(kind, catalog, &t.name, true).is_some()
                }
                Some(ExprKind::Var(v)) => {
                    symbols::probe_var(kind, catalog, &v.name, false).is_some()
                }
                _ => false,
            })
        }
        _ => None,
    }
}

/// Calls `f` on every expression in `block`, depth first.
pub fn visit_block(block: &Block, f: &mut dyn FnMut(&Expr)) {
    for stmt in &block.stmts {
        visit_stmt(stmt, f);
    }
}

/// Calls `f` on every expression in `stmt`, depth first.
pub fn visit_stmt(stmt: &Stmt, f: &mut dyn FnMut(&Expr)) {
    match &stmt.kind {
        StmtKind::Block(b) => visit_block(b, f),
        StmtKind::Expr(e) | StmtKind::Delete(e) => visit_expr(e, f),
        StmtKind::If {
            cond,
            then,
            otherwise,
        } => {
            visit_expr(cond, f);
            visit_stmt(then, f);
            if let Some(o) = otherwise {
                visit_stmt(o, f);
            }
        }
        StmtKind::While { cond, body } => {
            visit_expr(cond, f);
            visit_stmt(body, f);
        }
        StmtKind::For {
            init,
            cond,
            step,
            body,
        } => {
            for e in [init, cond, step].into_iter().flatten() {
                visit_expr(e, f);
            }
            visit_stmt(body, f);
        }
        StmtKind::Foreach(fe) => {
            if let Some(l) = &fe.limit {
                visit_expr(l, f);
            }
            visit_stmt(&fe.body, f);
        }
        StmtKind::Return(Some(e)) => visit_expr(e, f),
        StmtKind::Try {
            body, catch_body, ..
        } => {
            visit_block(body, f);
            visit_block(catch_body, f);
        }
        StmtKind::Return(None)
        | StmtKind::Break
        | StmtKind::Continue
        | StmtKind::Next
        | StmtKind::Empty => {}
    }
}

/// Calls `f` on `expr` and every sub-expression.
pub fn visit_expr(expr: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(expr);
    match &expr.kind {
        ExprKind::Index { keys, .. } | ExprKind::In { keys, .. } => {
            keys.iter().for_each(|k| visit_expr(k, f))
        }
        ExprKind::Call { args, .. } | ExprKind::AtCall { args, .. } => {
            args.iter().for_each(|a| visit_expr(a, f))
        }
        ExprKind::Unary { operand, .. } | ExprKind::StatOp { operand, .. } => {
            visit_expr(operand, f)
        }
        ExprKind::Hist { operand, kind } => {
            visit_expr(operand, f);
            if let HistKind::Linear { lo, hi, step } = kind {
                for e in [lo, hi, step] {
                    visit_expr(e, f);
                }
            }
        }
        ExprKind::Binary { lhs, rhs, .. } => {
            visit_expr(lhs, f);
            visit_expr(rhs, f);
        }
        ExprKind::Ternary {
            cond,
            then,
            otherwise,
        } => {
            visit_expr(cond, f);
            visit_expr(then, f);
            visit_expr(otherwise, f);
        }
        ExprKind::Assign { target, value, .. } => {
            visit_expr(target, f);
            visit_expr(value, f);
        }
        ExprKind::IncDec { target, .. } => visit_expr(target, f),
        ExprKind::Int(_)
        | ExprKind::Str(_)
        | ExprKind::Var(_)
        | ExprKind::Target(_)
        | ExprKind::ScriptArg { .. }
        | ExprKind::ScriptArgCount => {}
    }
}

/// (array, key count) of every foreach in `block`.
fn foreach_arrays(block: &Block) -> Vec<(String, usize)> {
    fn walk(stmt: &Stmt, out: &mut Vec<(String, usize)>) {
        match &stmt.kind {
            StmtKind::Block(b) => b.stmts.iter().for_each(|s| walk(s, out)),
            StmtKind::If {
                then, otherwise, ..
            } => {
                walk(then, out);
                if let Some(o) = otherwise {
                    walk(o, out);
                }
            }
            StmtKind::While { body, .. } | StmtKind::For { body, .. } => walk(body, out),
            StmtKind::Foreach(f) => {
                out.push((f.array.name.clone(), f.keys.len()));
                walk(&f.body, out);
            }
            StmtKind::Try {
                body, catch_body, ..
            } => body
                .stmts
                .iter()
                .chain(&catch_body.stmts)
                .for_each(|s| walk(s, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    block.stmts.iter().for_each(|s| walk(s, &mut out));
    out
}

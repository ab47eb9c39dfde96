//! Pass 3: the Wasm module with the handlers, and each probe's plan.
//!
//! The module imports the runtime's memory and functions
//! ([`wasmtap_abi::wasm::RUNTIME_FUNCS`]), a few host functions and the
//! address of its constant data; it exports the entry points the host calls.
//! Function indices: imports, then script functions, then one handler per
//! resolved probe, then the exports' bodies. Handlers take no parameters and
//! read the current record through the `rec` global, which is how script
//! functions read context too.

mod body;
mod filter;
pub mod regex;
mod stack;

use std::collections::{BTreeSet, HashMap};

use wasm_encoder::{
    CodeSection, ConstExpr, CustomSection, DataSection, ElementSection, Elements, EntityType,
    ExportKind, ExportSection, Function, FunctionSection, GlobalSection, GlobalType, ImportSection,
    MemArg, MemoryType, Module, NameMap, NameSection, RefType, TableSection, TableType,
    TypeSection, ValType,
};
use wasmtap_abi::{
    Plan,
    wasm::{self, RUNTIME_FUNCS, Ty as AbiTy},
};

use crate::{
    CompileOptions,
    catalog::Catalog,
    diagnostics::Diagnostic,
    passes::{
        resolve::ResolvedProbe,
        symbols::{self, ContextField, Ty},
        types::{self, Typed},
    },
    plan::ContextLayout,
    span::Span,
    syntax::ast::{Expr, ExprKind, Item, Script},
};

/// The generated module and what the host needs to run it.
#[derive(Clone, Debug)]
pub struct Generated {
    pub wasm: Vec<u8>,
    /// Bytes of constant data the runtime must reserve (`alloc_static`).
    pub static_data_size: u32,
    /// The plan of each probe the kernel feeds, by probe id.
    pub plans: Vec<Option<Plan>>,
    /// `(function index, offset in the function body, span)` of every
    /// instruction that can raise an error, sorted, to map traps to lines.
    pub sites: Vec<(u32, u32, Span)>,
}

/// Indices fixed before any body is generated.
pub(crate) struct Layout<'a> {
    pub probes: &'a [ResolvedProbe],
    pub typed: &'a Typed,
    pub catalog: &'a dyn Catalog,
    pub options: &'a CompileOptions,
    pub context: ContextLayout,
    runtime: HashMap<&'static str, u32>,
    pub host_error: u32,
    pub host_now_ns: u32,
    pub host_random: u32,
    /// Index of the first script function.
    pub first_function: u32,
    pub g_static_base: u32,
    pub g_rec: u32,
    pub g_exit: u32,
    /// Wasm global of each script global: an i64 value for long and string
    /// scalars, an i32 map id for arrays and aggregates.
    pub globals: Vec<u32>,
    /// Type index of `() -> ()`.
    pub void_type: u32,
    /// The i32 global pointing at the running probe's task chain (0: none),
    /// if the script uses task functions.
    pub g_task: Option<u32>,
    /// Per probe, whether it captures the task chain.
    pub task_probes: Vec<bool>,
    /// The script has a `try`: errors may be caught, so generated code
    /// checks for them after calls (see `body::Gen::check_caught`).
    pub has_try: bool,
}

impl Layout<'_> {
    /// The function index of a runtime import.
    pub fn rt(&self, name: &str) -> u32 {
        *self
            .runtime
            .get(name)
            .unwrap_or_else(|| panic!("runtime function {name} is not in RUNTIME_FUNCS"))
    }

    /// The type of a script global's value.
    pub fn global_ty(&self, g: usize) -> Ty {
        self.typed.globals[g].value.ty.unwrap_or(Ty::Long)
    }

    /// Whether script global `g` lives in a runtime map.
    pub fn is_map(&self, g: usize) -> bool {
        self.typed.globals[g].is_array() || self.global_ty(g) == Ty::Stats
    }
}

/// Constant data (string literals) placed at `static_base`.
#[derive(Default)]
pub(crate) struct Statics {
    pub bytes: Vec<u8>,
    interned: HashMap<Vec<u8>, u32>,
}

impl Statics {
    /// The offset of `bytes` in the constant data, added once.
    pub fn intern(&mut self, bytes: &[u8]) -> u32 {
        if let Some(&offset) = self.interned.get(bytes) {
            return offset;
        }
        let offset = self.bytes.len() as u32;
        self.bytes.extend_from_slice(bytes);
        self.interned.insert(bytes.to_vec(), offset);
        offset
    }
}

/// Generates the module.
///
/// # Errors
/// Constructs the checker accepted but this back end cannot express (for
/// example a value it cannot capture), each with its span.
pub fn generate(
    script: &Script,
    probes: &[ResolvedProbe],
    typed: &Typed,
    catalog: &dyn Catalog,
    options: &CompileOptions,
) -> Result<Generated, Vec<Diagnostic>> {
    let context = ContextLayout::new(&used_context(script));
    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    let mut type_index: HashMap<(Vec<ValType>, Vec<ValType>), u32> = HashMap::new();
    let mut ty = |params: Vec<ValType>, results: Vec<ValType>| -> u32 {
        let next = type_index.len() as u32;
        *type_index.entry((params, results)).or_insert(next)
    };
    let abi = |t: &AbiTy| match t {
        AbiTy::I32 => ValType::I32,
        AbiTy::I64 => ValType::I64,
    };

    // Imports: memory, static base, runtime functions, host functions.
    imports.import(
        wasm::RUNTIME_MODULE,
        wasm::MEMORY,
        EntityType::Memory(MemoryType {
            minimum: 0,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        }),
    );
    imports.import(
        wasm::HOST_MODULE,
        wasm::STATIC_BASE,
        EntityType::Global(GlobalType {
            val_type: ValType::I32,
            mutable: false,
            shared: false,
        }),
    );
    let mut runtime = HashMap::new();
    let mut function_count = 0u32;
    let mut import_names = Vec::new();
    for func in RUNTIME_FUNCS {
        let t = ty(
            func.params.iter().map(abi).collect(),
            func.results.iter().map(abi).collect(),
        );
        imports.import(wasm::RUNTIME_MODULE, func.name, EntityType::Function(t));
        runtime.insert(func.name, function_count);
        import_names.push(format!("rt.{}", func.name));
        function_count += 1;
    }
    let host_funcs: [(&str, Vec<ValType>, Vec<ValType>); 3] = [
        (wasm::HOST_ERROR, vec![ValType::I64], vec![]),
        (wasm::HOST_NOW_NS, vec![ValType::I32], vec![ValType::I64]),
        (wasm::HOST_RANDOM, vec![], vec![ValType::I64]),
    ];
    for (name, params, results) in host_funcs {
        let t = ty(params, results);
        imports.import(wasm::HOST_MODULE, name, EntityType::Function(t));
        import_names.push(format!("host.{name}"));
        function_count += 1;
    }
    let void_type = ty(vec![], vec![]);

    // Globals: rec, exit, then the script's.
    let mut globals = GlobalSection::new();
    let g_rec = 1; // index 0 is the imported static base
    mutable_global(&mut globals, ValType::I32, &ConstExpr::i32_const(0));
    let g_exit = 2;
    mutable_global(&mut globals, ValType::I32, &ConstExpr::i32_const(0));
    let mut script_globals = Vec::new();
    for (g, global) in typed.globals.iter().enumerate() {
        let is_map = global.is_array() || global.value.ty == Some(Ty::Stats);
        let init = match (&global.init, is_map) {
            (
                Some(Expr {
                    kind: ExprKind::Int(n),
                    ..
                }),
                false,
            ) => ConstExpr::i64_const(*n),
            (_, true) => ConstExpr::i32_const(-1),
            _ => ConstExpr::i64_const(0),
        };
        let val_type = if is_map { ValType::I32 } else { ValType::I64 };
        mutable_global(&mut globals, val_type, &init);
        script_globals.push(3 + g as u32);
    }
    let task_probes = body::task::probes_using_tasks(script, typed, probes);
    let g_task = task_probes.iter().any(|&t| t).then(|| {
        mutable_global(&mut globals, ValType::I32, &ConstExpr::i32_const(0));
        3 + typed.globals.len() as u32
    });

    let first_function = function_count;
    let first_handler = first_function + typed.functions.len() as u32;
    let layout = Layout {
        probes,
        typed,
        catalog,
        options,
        context,
        runtime,
        host_error: first_function - 3,
        host_now_ns: first_function - 2,
        host_random: first_function - 1,
        first_function,
        g_static_base: 0,
        g_rec,
        g_exit,
        globals: script_globals,
        void_type,
        g_task,
        task_probes,
        has_try: has_try(script),
    };

    let mut statics = Statics::default();
    let context_size = layout.context.end().max(8) as usize;
    let zero_context = statics.intern(&vec![0; context_size]);
    let mut functions = FunctionSection::new();
    let mut code = CodeSection::new();
    let mut names = NameMap::new();
    for (i, name) in import_names.iter().enumerate() {
        names.append(i as u32, name);
    }
    let mut errors = Vec::new();
    let mut sites = Vec::new();
    let mut plans = vec![None; probes.len()];

    // Script functions.
    for (f, function) in typed.functions.iter().enumerate() {
        let Item::Function(decl) = &script.items[function.item] else {
            continue;
        };
        let params = vec![ValType::I64; function.params.len()];
        let t = ty(params, vec![ValType::I64]);
        functions.function(t);
        let index = first_function + f as u32;
        names.append(index, &function.name);
        match body::function(&layout, &mut statics, f, &decl.body) {
            Ok(out) => {
                sites.extend(out.sites.iter().map(|&(o, s)| (index, o, s)));
                code.function(&out.function);
            }
            Err(mut e) => {
                errors.append(&mut e);
                code.function(&unreachable_body());
            }
        }
    }
    // Probe handlers.
    for (p, probe) in probes.iter().enumerate() {
        let Item::Probe(decl) = &script.items[probe.item] else {
            continue;
        };
        functions.function(void_type);
        let index = first_handler + p as u32;
        names.append(index, &format!("probe {}", probe.name));
        match body::handler(&layout, &mut statics, p, &decl.body) {
            Ok(out) => {
                sites.extend(out.sites.iter().map(|&(o, s)| (index, o, s)));
                plans[p] = out.plan;
                code.function(&out.function);
            }
            Err(mut e) => {
                errors.append(&mut e);
                code.function(&unreachable_body());
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    // The printer of written-but-unread globals, run like a probe with the
    // id after the last one (see `wasm::SCRIPT_RUN_PROBE`).
    let dump_index = first_handler + probes.len() as u32;
    functions.function(void_type);
    code.function(&dump_body(&layout, &mut statics));
    names.append(dump_index, "print_unread_globals");

    // Entry points.
    let mut exports = ExportSection::new();
    let next = dump_index + 1;
    let init_type = void_type;
    functions.function(init_type);
    code.function(&init_body(&layout, script, &mut statics)?);
    exports.export(wasm::SCRIPT_INIT, ExportKind::Func, next);
    names.append(next, "init");

    let batch_type = ty(vec![ValType::I32, ValType::I32], vec![]);
    functions.function(batch_type);
    code.function(&batch_body(&layout));
    exports.export(wasm::SCRIPT_HANDLE_BATCH, ExportKind::Func, next + 1);
    names.append(next + 1, "handle_batch");

    let probe_type = ty(vec![ValType::I32], vec![]);
    functions.function(probe_type);
    code.function(&run_probe_body(&layout, zero_context));
    exports.export(wasm::SCRIPT_RUN_PROBE, ExportKind::Func, next + 2);
    names.append(next + 2, "run_probe");

    let exit_type = ty(vec![], vec![ValType::I32]);
    functions.function(exit_type);
    let mut exit = Function::new([]);
    exit.instructions().global_get(g_exit).end();
    code.function(&exit);
    exports.export(wasm::SCRIPT_EXIT_REQUESTED, ExportKind::Func, next + 3);
    names.append(next + 3, "exit_requested");

    // The dispatch table: probe id -> handler.
    let mut tables = TableSection::new();
    tables.table(TableType {
        element_type: RefType::FUNCREF,
        table64: false,
        minimum: probes.len() as u64 + 1,
        maximum: Some(probes.len() as u64 + 1),
        shared: false,
    });
    let mut elements = ElementSection::new();
    let handlers: Vec<u32> = (0..=probes.len() as u32)
        .map(|p| first_handler + p)
        .collect();
    elements.active(
        Some(0),
        &ConstExpr::i32_const(0),
        Elements::Functions(handlers.into()),
    );

    let mut data = DataSection::new();
    data.active(
        0,
        &ConstExpr::global_get(layout.g_static_base),
        statics.bytes.iter().copied(),
    );

    let mut types_sorted: Vec<_> = type_index.into_iter().collect();
    types_sorted.sort_by_key(|(_, index)| *index);
    for ((params, results), _) in types_sorted {
        types.ty().function(params, results);
    }

    let mut module = Module::new();
    module.section(&types);
    module.section(&imports);
    module.section(&functions);
    module.section(&tables);
    module.section(&globals);
    module.section(&exports);
    module.section(&elements);
    module.section(&code);
    module.section(&data);
    let mut name_section = NameSection::new();
    name_section.functions(&names);
    module.section(&name_section);
    module.section(&CustomSection {
        name: "wasmtap.abi".into(),
        data: wasmtap_abi::ABI_VERSION.to_le_bytes().to_vec().into(),
    });
    sites.sort_by_key(|&(f, o, _)| (f, o));
    Ok(Generated {
        wasm: module.finish(),
        static_data_size: statics.bytes.len() as u32,
        plans,
        sites,
    })
}

fn unreachable_body() -> Function {
    let mut f = Function::new([]);
    f.instructions().unreachable().end();
    f
}

/// Context fields read anywhere in the script.
fn used_context(script: &Script) -> BTreeSet<ContextField> {
    let mut used = BTreeSet::new();
    for body in bodies(script) {
        types::visit_block(body, &mut |expr| {
            if let ExprKind::Call { name, .. } = &expr.kind
                && let Some(field) = symbols::context_field(&name.name)
            {
                used.insert(field);
            }
        });
    }
    used
}

pub(crate) fn mem(offset: u64, align: u32) -> MemArg {
    MemArg {
        offset,
        align,
        memory_index: 0,
    }
}

/// `init`: creates the maps and sets string initializers.
fn init_body(
    layout: &Layout,
    script: &Script,
    statics: &mut Statics,
) -> Result<Function, Vec<Diagnostic>> {
    let mut f = Function::new([]);
    let mut ins = f.instructions();
    ins.i64_const(i64::from(layout.options.max_string_len))
        .i64_const(i64::from(layout.options.max_map_entries))
        .call(layout.rt("set_limits"));
    for (g, global) in layout.typed.globals.iter().enumerate() {
        if layout.is_map(g) {
            let kind = match (global.is_array(), layout.global_ty(g)) {
                (_, Ty::Stats) => wasm::value_kind::STATS,
                (_, Ty::Str) => wasm::value_kind::STRING,
                (_, Ty::Long) => wasm::value_kind::LONG,
            };
            ins.i32_const(kind)
                .i32_const(global.max_entries.unwrap_or(0) as i32)
                .call(layout.rt("map_new"))
                .global_set(layout.globals[g]);
            // Linear buckets are counted only once their bounds are known.
            if let Some((lo, hi, step)) = linear_bounds(script, &global.name) {
                ins.global_get(layout.globals[g])
                    .i64_const(lo)
                    .i64_const(hi)
                    .i64_const(step)
                    .call(layout.rt("stat_hist_linear"));
            }
        } else if let Some(Expr {
            kind: ExprKind::Str(s),
            ..
        }) = &global.init
        {
            ins.i64_const(0);
            body::push_literal(&mut ins, layout, statics, s.as_bytes());
            ins.call(layout.rt("str_keep"))
                .global_set(layout.globals[g]);
        }
    }
    ins.end();
    Ok(f)
}

/// The printer of the globals a script wrote but never read, which stap
/// prints after the `end` probes, in declaration order.
fn dump_body(layout: &Layout, statics: &mut Statics) -> Function {
    let mut f = Function::new([]);
    let mut ins = f.instructions();
    for (g, global) in layout.typed.globals.iter().enumerate() {
        if !global.written || global.read {
            continue;
        }
        body::push_literal(&mut ins, layout, statics, global.name.as_bytes());
        let kind = match (global.is_array(), layout.global_ty(g)) {
            (true, _) => wasm::dump_kind::MAP,
            (false, Ty::Stats) => wasm::dump_kind::STATS,
            (false, Ty::Str) => wasm::dump_kind::STRING,
            (false, Ty::Long) => wasm::dump_kind::LONG,
        };
        ins.i32_const(kind).global_get(layout.globals[g]);
        if layout.is_map(g) {
            ins.i64_extend_i32_s();
        }
        ins.call(layout.rt("global_dump"));
    }
    ins.end();
    f
}

/// Whether any body of the script has a `try`.
fn has_try(script: &Script) -> bool {
    fn in_stmt(stmt: &crate::syntax::ast::Stmt) -> bool {
        use crate::syntax::ast::StmtKind;
        match &stmt.kind {
            StmtKind::Try { .. } => true,
            StmtKind::Block(b) => b.stmts.iter().any(in_stmt),
            StmtKind::If {
                then, otherwise, ..
            } => in_stmt(then) || otherwise.as_deref().is_some_and(in_stmt),
            StmtKind::While { body, .. } | StmtKind::For { body, .. } => in_stmt(body),
            StmtKind::Foreach(f) => in_stmt(&f.body),
            _ => false,
        }
    }
    bodies(script).any(|b| b.stmts.iter().any(in_stmt))
}

/// `handle_batch(ptr, len)`: runs each record's handler until the batch
/// ends or the script called `exit()`.
fn batch_body(layout: &Layout) -> Function {
    use wasm_encoder::BlockType;
    let (ptr, len, end) = (0, 1, 2);
    let mut f = Function::new([(1, ValType::I32)]);
    let mut ins = f.instructions();
    ins.local_get(ptr).local_get(len).i32_add().local_set(end);
    ins.block(BlockType::Empty).loop_(BlockType::Empty);
    // while ptr + header <= end && !exit
    ins.local_get(ptr)
        .i32_const(wasmtap_abi::HEADER_LEN as i32)
        .i32_add()
        .local_get(end)
        .i32_gt_u()
        .br_if(1);
    ins.global_get(layout.g_exit).br_if(1);
    ins.local_get(ptr).global_set(layout.g_rec);
    ins.local_get(ptr)
        .i32_load(mem(0, 2))
        .call_indirect(0, layout.void_type);
    ins.call(layout.rt("scratch_reset"));
    // ptr += align8(len)
    ins.local_get(ptr)
        .local_get(ptr)
        .i32_load(mem(4, 2))
        .i32_const(7)
        .i32_add()
        .i32_const(-8)
        .i32_and()
        .i32_add()
        .local_set(ptr);
    ins.br(0).end().end().end();
    f
}

/// `run_probe(probe)`: a probe without a record, reading a zeroed context.
fn run_probe_body(layout: &Layout, zero_context: u32) -> Function {
    let mut f = Function::new([]);
    let mut ins = f.instructions();
    ins.global_get(layout.g_static_base)
        .i32_const(zero_context as i32)
        .i32_add()
        .global_set(layout.g_rec);
    ins.local_get(0).call_indirect(0, layout.void_type);
    ins.call(layout.rt("scratch_reset"));
    ins.end();
    f
}

/// The constant bounds of the first `@hist_linear` over global `name`.
fn linear_bounds(script: &Script, name: &str) -> Option<(i64, i64, i64)> {
    let constant = |e: &Expr| match e.kind {
        ExprKind::Int(n) => Some(n),
        _ => None,
    };
    let mut found = None;
    for body in bodies(script) {
        types::visit_block(body, &mut |expr| {
            if found.is_some() {
                return;
            }
            if let ExprKind::Hist {
                kind: crate::syntax::ast::HistKind::Linear { lo, hi, step },
                operand,
            } = &expr.kind
                && let ExprKind::Var(ident) | ExprKind::Index { array: ident, .. } = &operand.kind
                && ident.name == name
                && let (Some(lo), Some(hi), Some(step)) =
                    (constant(lo), constant(hi), constant(step))
            {
                found = Some((lo, hi, step));
            }
        });
    }
    found
}

/// Every handler and function body of the script.
pub(crate) fn bodies(script: &Script) -> impl Iterator<Item = &crate::syntax::ast::Block> {
    script.items.iter().filter_map(|item| match item {
        Item::Probe(p) => Some(&p.body),
        Item::Function(f) => Some(&f.body),
        Item::Global(_) => None,
    })
}

/// Declares a mutable, unshared global of `val_type` starting at `init`.
fn mutable_global(globals: &mut GlobalSection, val_type: ValType, init: &ConstExpr) {
    globals.global(
        GlobalType {
            val_type,
            mutable: true,
            shared: false,
        },
        init,
    );
}

//! The sandbox against the real guest runtime, with small script modules
//! built here the way the compiler builds them: they import the runtime's
//! memory and functions (module `rt`) and `host.static_base`, keep string
//! literals in a data segment placed at the static base, and export the
//! script entry points.

mod common;

use common::Sink;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, DataSection, EntityType, ExportKind, ExportSection,
    Function, FunctionSection, GlobalType, ImportSection, InstructionSink, MemArg, MemoryType,
    Module, TypeSection, ValType,
};
use wasmtap::sandbox::{RunError, Sandbox, SandboxConfig, ScriptInstance};
use wasmtap_abi::wasm::{
    self, HOST_ERROR, HOST_MODULE, MEMORY, RUNTIME_FUNCS, RUNTIME_MODULE, STATIC_BASE, Ty, spec,
    stat, value_kind,
};

fn val(t: Ty) -> ValType {
    match t {
        Ty::I32 => ValType::I32,
        Ty::I64 => ValType::I64,
    }
}

/// Builds a script module.
struct Script {
    types: TypeSection,
    imports: ImportSection,
    functions: FunctionSection,
    exports: ExportSection,
    code: CodeSection,
    n_types: u32,
    n_imported: u32,
    n_defined: u32,
    rt: HashMap<&'static str, u32>,
    data: Vec<u8>,
}

/// Index of the imported `static_base` global.
const BASE: u32 = 0;

impl Script {
    fn new() -> Self {
        let mut s = Self {
            types: TypeSection::new(),
            imports: ImportSection::new(),
            functions: FunctionSection::new(),
            exports: ExportSection::new(),
            code: CodeSection::new(),
            n_types: 0,
            n_imported: 0,
            n_defined: 0,
            rt: HashMap::new(),
            data: Vec::new(),
        };
        s.imports.import(
            RUNTIME_MODULE,
            MEMORY,
            MemoryType {
                minimum: 0,
                maximum: None,
                memory64: false,
                shared: false,
                page_size_log2: None,
            },
        );
        s.imports.import(
            HOST_MODULE,
            STATIC_BASE,
            GlobalType {
                val_type: ValType::I32,
                mutable: false,
                shared: false,
            },
        );
        s
    }

    fn ty(&mut self, params: &[ValType], results: &[ValType]) -> u32 {
        self.types
            .ty()
            .function(params.iter().copied(), results.iter().copied());
        self.n_types += 1;
        self.n_types - 1
    }

    /// Imports runtime functions by name, with their ABI signatures.
    fn import_rt(&mut self, names: &[&'static str]) {
        for &name in names {
            let f = RUNTIME_FUNCS
                .iter()
                .find(|f| f.name == name)
                .unwrap_or_else(|| panic!("{name} is not in RUNTIME_FUNCS"));
            let params: Vec<ValType> = f.params.iter().map(|&t| val(t)).collect();
            let results: Vec<ValType> = f.results.iter().map(|&t| val(t)).collect();
            let ty = self.ty(&params, &results);
            self.imports
                .import(RUNTIME_MODULE, name, EntityType::Function(ty));
            self.rt.insert(name, self.n_imported);
            self.n_imported += 1;
        }
    }

    /// Imports `host.error`.
    fn import_error(&mut self) -> u32 {
        let ty = self.ty(&[ValType::I64], &[]);
        self.imports
            .import(HOST_MODULE, HOST_ERROR, EntityType::Function(ty));
        self.n_imported += 1;
        self.n_imported - 1
    }

    fn f(&self, name: &str) -> u32 {
        self.rt[name]
    }

    /// Adds a string literal to the static data; returns its offset.
    fn lit(&mut self, s: &str) -> (u32, u32) {
        let off = self.data.len() as u32;
        self.data.extend_from_slice(s.as_bytes());
        (off, s.len() as u32)
    }

    /// Defines a function; `body` emits its instructions (without `end`).
    fn func(
        &mut self,
        export: Option<&str>,
        params: &[ValType],
        results: &[ValType],
        locals: &[ValType],
        body: impl FnOnce(&Self, &mut InstructionSink<'_>),
    ) -> u32 {
        let ty = self.ty(params, results);
        self.functions.function(ty);
        let idx = self.n_imported + self.n_defined;
        self.n_defined += 1;
        let mut f = Function::new(locals.iter().map(|&t| (1, t)));
        {
            let mut sink = f.instructions();
            body(self, &mut sink);
            sink.end();
        }
        self.code.function(&f);
        if let Some(name) = export {
            self.exports.export(name, ExportKind::Func, idx);
        }
        idx
    }

    /// Adds the four script exports with empty bodies where not given.
    fn finish(mut self, defined: &[&str]) -> Vec<u8> {
        for (name, params, results) in [
            (wasm::SCRIPT_INIT, &[][..], &[][..]),
            (wasm::SCRIPT_RUN_PROBE, &[ValType::I32][..], &[][..]),
            (
                wasm::SCRIPT_HANDLE_BATCH,
                &[ValType::I32, ValType::I32][..],
                &[][..],
            ),
            (wasm::SCRIPT_EXIT_REQUESTED, &[][..], &[ValType::I32][..]),
        ] {
            if !defined.contains(&name) {
                let zero = !results.is_empty();
                self.func(Some(name), params, results, &[], |_, f| {
                    if zero {
                        f.i32_const(0);
                    }
                });
            }
        }
        let mut module = Module::new();
        module.section(&self.types);
        module.section(&self.imports);
        module.section(&self.functions);
        module.section(&self.exports);
        module.section(&self.code);
        if !self.data.is_empty() {
            let mut data = DataSection::new();
            data.active(0, &ConstExpr::global_get(BASE), self.data.iter().copied());
            module.section(&data);
        }
        module.finish()
    }
}

/// Pushes the packed string value of a literal at `(offset, len)`.
fn push_lit(f: &mut InstructionSink<'_>, (off, len): (u32, u32)) {
    f.global_get(BASE)
        .i64_extend_i32_u()
        .i64_const(off as i64)
        .i64_add()
        .i64_const((len as i64) << 32)
        .i64_or();
}

fn config() -> SandboxConfig {
    SandboxConfig {
        deadline: Duration::from_millis(50),
        cache_dir: None,
        ..SandboxConfig::default()
    }
}

fn start(sandbox: &Sandbox, wasm: &[u8], static_size: u32) -> (ScriptInstance, Sink) {
    let module = sandbox.compile_script(wasm).expect("compile");
    let sink = Sink::default();
    let instance = sandbox
        .instantiate(&module, static_size, Box::new(sink.clone()))
        .expect("instantiate");
    (instance, sink)
}

fn mem(offset: u64) -> MemArg {
    MemArg {
        offset,
        align: 0,
        memory_index: 0,
    }
}

#[test]
fn printf_reaches_the_writer_through_static_literals() {
    let mut s = Script::new();
    s.import_rt(&[
        "fmt_lit",
        "fmt_i64",
        "fmt_str",
        "scratch_reset",
        "fmt_begin",
        "fmt_end",
    ]);
    let hello = s.lit("hello ");
    let abc = s.lit("abc");
    let bar = s.lit("|\n");
    s.func(
        Some(wasm::SCRIPT_RUN_PROBE),
        &[ValType::I32],
        &[],
        &[ValType::I64],
        |s, f| {
            push_lit(f, hello);
            f.call(s.f("fmt_lit"));
            // printf("%5d", probe)
            f.local_get(0)
                .i64_extend_i32_s()
                .i64_const(spec::pack(b'd', 0, Some(5), None))
                .call(s.f("fmt_i64"));
            push_lit(f, abc);
            f.i64_const(spec::pack(b's', spec::FLAG_MINUS, Some(4), None))
                .call(s.f("fmt_str"));
            // sprintf("%#x", 255) printed with %s
            f.call(s.f("fmt_begin"))
                .i64_const(255)
                .i64_const(spec::pack(b'x', spec::FLAG_HASH, None, None))
                .call(s.f("fmt_i64"))
                .call(s.f("fmt_end"))
                .local_set(1)
                .local_get(1)
                .call(s.f("fmt_lit"));
            push_lit(f, bar);
            f.call(s.f("fmt_lit")).call(s.f("scratch_reset"));
        },
    );
    let static_size = s.data.len() as u32;
    let wasm = s.finish(&[wasm::SCRIPT_RUN_PROBE]);

    let sandbox = Sandbox::new(config()).unwrap();
    let (mut inst, sink) = start(&sandbox, &wasm, static_size);
    assert_ne!(inst.static_base(), 0);
    inst.init().unwrap();
    inst.run_probe(7).unwrap();
    inst.run_probe(12345).unwrap();
    assert_eq!(sink.take(), "", "output stays buffered until a flush");
    inst.flush().unwrap();
    assert_eq!(sink.take(), "hello     7abc 0xff|\nhello 12345abc 0xff|\n");
    assert!(!inst.exit_requested().unwrap());
}

#[test]
fn a_batch_of_records_is_passed_and_read() {
    let mut s = Script::new();
    s.import_rt(&[
        "fmt_lit",
        "fmt_i64",
        "fmt_str",
        "str_from_cstr",
        "scratch_reset",
    ]);
    let sep = s.lit(" ");
    let nl = s.lit("\n");
    let d = spec::pack(b'd', 0, None, None);
    let sp = spec::pack(b's', 0, None, None);
    // handle_batch(ptr, len): for each record print "probe value comm".
    s.func(
        Some(wasm::SCRIPT_HANDLE_BATCH),
        &[ValType::I32, ValType::I32],
        &[],
        &[ValType::I32, ValType::I32],
        |s, f| {
            // local 2 = cursor, local 3 = end
            f.local_get(0).local_set(2);
            f.local_get(0).local_get(1).i32_add().local_set(3);
            f.block(BlockType::Empty).loop_(BlockType::Empty);
            f.local_get(2).local_get(3).i32_ge_u().br_if(1);
            // probe id
            f.local_get(2)
                .i64_load32_u(mem(0))
                .i64_const(d)
                .call(s.f("fmt_i64"));
            push_lit(f, sep);
            f.call(s.f("fmt_lit"));
            // u64 at offset 8
            f.local_get(2)
                .i64_load(mem(8))
                .i64_const(d)
                .call(s.f("fmt_i64"));
            push_lit(f, sep);
            f.call(s.f("fmt_lit"));
            // comm at offset 16, 16 bytes
            f.local_get(2)
                .i32_const(16)
                .i32_add()
                .i32_const(16)
                .call(s.f("str_from_cstr"))
                .i64_const(sp)
                .call(s.f("fmt_str"));
            push_lit(f, nl);
            f.call(s.f("fmt_lit")).call(s.f("scratch_reset"));
            // cursor += align8(len)
            f.local_get(2)
                .local_get(2)
                .i32_load(mem(4))
                .i32_const(7)
                .i32_add()
                .i32_const(-8)
                .i32_and()
                .i32_add()
                .local_set(2);
            f.br(0).end().end();
        },
    );
    let static_size = s.data.len() as u32;
    let wasm = s.finish(&[wasm::SCRIPT_HANDLE_BATCH]);

    let record = |probe: u32, value: u64, comm: &[u8]| {
        let mut r = Vec::new();
        r.extend_from_slice(&probe.to_le_bytes());
        r.extend_from_slice(&(32u32).to_le_bytes());
        r.extend_from_slice(&value.to_le_bytes());
        let mut c = [0u8; 16];
        c[..comm.len()].copy_from_slice(comm);
        r.extend_from_slice(&c);
        r
    };
    let mut batch = record(3, 1_000_000_007, b"bash");
    batch.extend(record(4, u64::MAX, b"sixteen-chars-xx"));

    let sandbox = Sandbox::new(config()).unwrap();
    let (mut inst, sink) = start(&sandbox, &wasm, static_size);
    inst.init().unwrap();
    inst.handle_batch(&batch).unwrap();
    assert_eq!(sink.take(), "3 1000000007 bash\n4 -1 sixteen-chars-xx\n");
    // A bigger batch reallocates the buffer.
    let big: Vec<u8> = (0..3000).flat_map(|i| record(i, i as u64, b"x")).collect();
    inst.handle_batch(&big).unwrap();
    let out = sink.take();
    assert_eq!(out.lines().count(), 3000);
    assert_eq!(out.lines().last(), Some("2999 2999 x"));
}

#[test]
fn an_endless_loop_hits_the_deadline() {
    let mut s = Script::new();
    s.func(
        Some(wasm::SCRIPT_RUN_PROBE),
        &[ValType::I32],
        &[],
        &[],
        |_, f| {
            f.loop_(BlockType::Empty).br(0).end();
        },
    );
    let wasm = s.finish(&[wasm::SCRIPT_RUN_PROBE]);
    let sandbox = Sandbox::new(config()).unwrap();
    let (mut inst, _) = start(&sandbox, &wasm, 0);
    inst.init().unwrap();
    let t = Instant::now();
    let err = inst.run_probe(0).unwrap_err();
    let took = t.elapsed();
    assert!(matches!(err, RunError::Deadline { .. }), "{err:?}");
    assert!(took >= Duration::from_millis(45), "{took:?}");
    assert!(took < Duration::from_millis(500), "{took:?}");
    assert!(!err.frames().is_empty(), "the loop's frame is reported");
    assert!(inst.is_poisoned());
    assert!(matches!(inst.run_probe(0), Err(RunError::Poisoned)));
}

#[test]
fn growing_memory_past_the_limit_is_reported() {
    // Directly: memory.grow in a loop.
    let mut s = Script::new();
    s.func(
        Some(wasm::SCRIPT_RUN_PROBE),
        &[ValType::I32],
        &[],
        &[],
        |_, f| {
            f.loop_(BlockType::Empty)
                .i32_const(16)
                .memory_grow(0)
                .drop()
                .br(0)
                .end();
        },
    );
    let wasm = s.finish(&[wasm::SCRIPT_RUN_PROBE]);
    let sandbox = Sandbox::new(SandboxConfig {
        memory_limit: 16 << 20,
        ..config()
    })
    .unwrap();
    let (mut inst, _) = start(&sandbox, &wasm, 0);
    let err = inst.run_probe(0).unwrap_err();
    assert!(
        matches!(err, RunError::MemoryLimit { limit, .. } if limit == 16 << 20),
        "{err:?}"
    );
    assert!(inst.is_poisoned());

    // Through the runtime: an array that keeps growing.
    let mut s = Script::new();
    s.import_rt(&[
        "map_new",
        "key_str",
        "key_i64",
        "map_set_i64",
        "scratch_reset",
    ]);
    let long = s.lit(&"k".repeat(1000));
    s.func(
        Some(wasm::SCRIPT_RUN_PROBE),
        &[ValType::I32],
        &[],
        &[ValType::I32, ValType::I64],
        |s, f| {
            f.i32_const(value_kind::LONG)
                .i32_const(i32::MAX)
                .call(s.f("map_new"))
                .local_set(1);
            f.loop_(BlockType::Empty);
            push_lit(f, long);
            f.call(s.f("key_str"));
            f.local_get(2).call(s.f("key_i64"));
            f.local_get(1).i64_const(1).call(s.f("map_set_i64"));
            f.local_get(2).i64_const(1).i64_add().local_set(2);
            f.br(0).end();
        },
    );
    let size = s.data.len() as u32;
    let wasm = s.finish(&[wasm::SCRIPT_RUN_PROBE]);
    let sandbox = Sandbox::new(SandboxConfig {
        memory_limit: 16 << 20,
        deadline: Duration::from_secs(5),
        ..config()
    })
    .unwrap();
    let (mut inst, _) = start(&sandbox, &wasm, size);
    let err = inst.run_probe(0).unwrap_err();
    assert!(matches!(err, RunError::MemoryLimit { .. }), "{err:?}");
}

#[test]
fn script_errors_carry_the_message_and_keep_the_instance() {
    let mut s = Script::new();
    s.import_rt(&["fmt_lit", "map_new", "stat_get", "scratch_reset"]);
    let error = s.import_error();
    let before = s.lit("before\n");
    let msg = s.lit("division by zero");
    let after = s.lit("after\n");
    s.func(Some(wasm::SCRIPT_INIT), &[], &[], &[], |s, f| {
        f.i32_const(value_kind::STATS)
            .i32_const(0)
            .call(s.f("map_new"))
            .drop();
    });
    s.func(
        Some(wasm::SCRIPT_RUN_PROBE),
        &[ValType::I32],
        &[],
        &[],
        |s, f| {
            f.block(BlockType::Empty);
            f.local_get(0).i32_eqz().br_if(0);
            f.block(BlockType::Empty);
            f.local_get(0).i32_const(1).i32_ne().br_if(0);
            // probe 1: print, then error("division by zero")
            push_lit(f, before);
            f.call(s.f("fmt_lit"));
            push_lit(f, msg);
            f.call(error);
            f.end();
            // probe 2: @min of an empty aggregate
            f.i32_const(0)
                .i32_const(stat::MIN)
                .call(s.f("stat_get"))
                .drop();
            f.end();
            // probe 0: prints
            push_lit(f, after);
            f.call(s.f("fmt_lit")).call(s.f("scratch_reset"));
        },
    );
    let size = s.data.len() as u32;
    let wasm = s.finish(&[wasm::SCRIPT_INIT, wasm::SCRIPT_RUN_PROBE]);
    let sandbox = Sandbox::new(config()).unwrap();
    let (mut inst, sink) = start(&sandbox, &wasm, size);
    inst.init().unwrap();

    let err = inst.run_probe(1).unwrap_err();
    match &err {
        RunError::Script { message, frames } => {
            assert_eq!(message, "division by zero");
            let probe_fn = frames.first().expect("a script frame");
            // Imports: 4 runtime functions and host.error; init is 5, run_probe 6.
            assert_eq!(probe_fn.func_index, 6);
            assert!(probe_fn.func_offset.is_some());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        sink.take(),
        "before\n",
        "output before the error is flushed"
    );
    assert!(!inst.is_poisoned());

    let err = inst.run_probe(2).unwrap_err();
    assert!(
        matches!(&err, RunError::Script { message, .. } if message == "empty aggregate"),
        "{err:?}"
    );
    assert_eq!(err.frames().first().map(|f| f.func_index), Some(6));

    inst.run_probe(0).unwrap();
    inst.flush().unwrap();
    assert_eq!(sink.take(), "after\n");
}

#[test]
fn traps_poison_the_instance() {
    let mut s = Script::new();
    s.func(
        Some(wasm::SCRIPT_RUN_PROBE),
        &[ValType::I32],
        &[],
        &[],
        |_, f| {
            f.i32_const(-4).i32_load(mem(0)).drop();
        },
    );
    let wasm = s.finish(&[wasm::SCRIPT_RUN_PROBE]);
    let sandbox = Sandbox::new(config()).unwrap();
    let (mut inst, _) = start(&sandbox, &wasm, 0);
    let err = inst.run_probe(0).unwrap_err();
    assert!(
        matches!(&err, RunError::Trap { message, .. } if message.contains("out of bounds")),
        "{err:?}"
    );
    assert!(inst.is_poisoned());
}

#[test]
fn every_runtime_func_resolves_with_its_signature() {
    let mut s = Script::new();
    let names: Vec<&'static str> = RUNTIME_FUNCS.iter().map(|f| f.name).collect();
    s.import_rt(&names);
    let wasm = s.finish(&[]);
    let sandbox = Sandbox::new(config()).unwrap();
    let (mut inst, _) = start(&sandbox, &wasm, 0);
    inst.init().unwrap();
    assert!(!inst.exit_requested().unwrap());
}

#[test]
fn arrays_statistics_and_foreach_through_wasm() {
    // count[probe % 3] += 1 for 1000 probes, then prints the array sorted
    // by value descending and a @hist_log of stats <<< probe.
    let mut s = Script::new();
    s.import_rt(&[
        "map_new",
        "key_i64",
        "map_add_i64",
        "map_get_i64",
        "stat_add",
        "stat_print_hist",
        "iter_begin",
        "iter_next",
        "iter_key_i64",
        "iter_end",
        "fmt_lit",
        "fmt_i64",
        "scratch_reset",
    ]);
    let eq = s.lit("=");
    let nl = s.lit("\n");
    let d = spec::pack(b'd', 0, None, None);
    s.func(Some(wasm::SCRIPT_INIT), &[], &[], &[], |s, f| {
        f.i32_const(value_kind::LONG)
            .i32_const(0)
            .call(s.f("map_new"))
            .drop();
        f.i32_const(value_kind::STATS)
            .i32_const(0)
            .call(s.f("map_new"))
            .drop();
    });
    s.func(
        Some(wasm::SCRIPT_RUN_PROBE),
        &[ValType::I32],
        &[],
        &[ValType::I32],
        |s, f| {
            f.block(BlockType::Empty);
            f.local_get(0).i32_const(-1).i32_eq().br_if(0);
            f.local_get(0)
                .i32_const(3)
                .i32_rem_u()
                .i64_extend_i32_u()
                .call(s.f("key_i64"));
            f.i32_const(0).i64_const(1).call(s.f("map_add_i64")).drop();
            f.i32_const(1)
                .local_get(0)
                .i64_extend_i32_u()
                .call(s.f("stat_add"));
            f.return_();
            f.end();
            // probe -1: foreach ([k] in count-) printf("%d=%d\n", k, count[k])
            f.i32_const(0)
                .i32_const(0)
                .i32_const(1)
                .i64_const(-1)
                .call(s.f("iter_begin"))
                .local_set(1);
            f.block(BlockType::Empty).loop_(BlockType::Empty);
            f.local_get(1).call(s.f("iter_next")).i32_eqz().br_if(1);
            f.local_get(1)
                .i32_const(0)
                .call(s.f("iter_key_i64"))
                .i64_const(d)
                .call(s.f("fmt_i64"));
            push_lit(f, eq);
            f.call(s.f("fmt_lit"));
            f.local_get(1)
                .i32_const(0)
                .call(s.f("iter_key_i64"))
                .call(s.f("key_i64"));
            f.i32_const(0)
                .call(s.f("map_get_i64"))
                .i64_const(d)
                .call(s.f("fmt_i64"));
            push_lit(f, nl);
            f.call(s.f("fmt_lit"));
            f.br(0).end().end();
            f.local_get(1).call(s.f("iter_end"));
            f.i32_const(1)
                .i32_const(0)
                .i64_const(0)
                .i64_const(0)
                .i64_const(0)
                .call(s.f("stat_print_hist"));
            f.call(s.f("scratch_reset"));
        },
    );
    let size = s.data.len() as u32;
    let wasm = s.finish(&[wasm::SCRIPT_INIT, wasm::SCRIPT_RUN_PROBE]);
    let sandbox = Sandbox::new(config()).unwrap();
    let (mut inst, sink) = start(&sandbox, &wasm, size);
    inst.init().unwrap();
    for p in 0..1000 {
        inst.run_probe(p).unwrap();
    }
    inst.run_probe(u32::MAX).unwrap();
    inst.flush().unwrap();
    let out = sink.take();
    let (counts, hist) = out.split_at(out.find("value").unwrap());
    assert_eq!(counts, "0=334\n1=333\n2=333\n");
    assert!(hist.starts_with("value |---"), "{hist}");
    // Values 0..999: 256 in bucket 256, 488 in bucket 512; bars scale by
    // ceil(488 / 50) = 10.
    let row = |v: u32, n: usize| {
        let bar = "@".repeat(n / 10);
        format!("{v:>5} |{bar}{n:>w$}\n", w = 50 - n / 10 + 1 + 3)
    };
    assert!(hist.contains(&row(256, 256)), "{hist}");
    assert!(hist.contains(&row(512, 488)), "{hist}");
    assert!(hist.ends_with(&format!("{}\n", row(2048, 0))), "{hist}");
}

#[test]
fn the_runtime_is_cached_on_disk() {
    let dir = std::env::temp_dir().join(format!("wasmtap-sandbox-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = SandboxConfig {
        cache_dir: Some(dir.clone()),
        ..config()
    };
    let first = Instant::now();
    let sandbox = Sandbox::new(cfg.clone()).unwrap();
    let cold = first.elapsed();
    drop(sandbox);
    let files: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(files.len(), 1, "the runtime was cached");
    let second = Instant::now();
    let sandbox = Sandbox::new(cfg).unwrap();
    let warm = second.elapsed();
    eprintln!("sandbox setup: cold {cold:?}, cached {warm:?}");
    let s = Script::new().finish(&[]);
    let module = sandbox.compile_script(&s).unwrap();
    let path = sandbox.cache_script(&module, &s).unwrap();
    assert!(path.exists());
    let again = sandbox.compile_script(&s).unwrap();
    let (mut inst, _) = {
        let sink = Sink::default();
        (
            sandbox
                .instantiate(&again, 0, Box::new(sink.clone()))
                .unwrap(),
            sink,
        )
    };
    inst.init().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Per-record cost of the two hot paths the architecture notes measured
/// (`cargo test --release --test sandbox -- --ignored --nocapture`).
#[test]
#[ignore = "timing, run by hand"]
fn per_record_costs() {
    // Records: header + u64 pid, padded to 64 bytes.
    let n = 1024u32;
    let mut batch = Vec::new();
    for i in 0..n {
        let mut r = [0u8; 64];
        r[..4].copy_from_slice(&1u32.to_le_bytes());
        r[4..8].copy_from_slice(&64u32.to_le_bytes());
        r[8..16].copy_from_slice(&u64::from(i % 64).to_le_bytes());
        batch.extend_from_slice(&r);
    }
    for printf in [false, true] {
        let mut s = Script::new();
        s.import_rt(&[
            "map_new",
            "key_i64",
            "map_add_i64",
            "fmt_lit",
            "fmt_i64",
            "scratch_reset",
        ]);
        let pid = s.lit("pid ");
        let nl = s.lit("\n");
        let d = spec::pack(b'd', 0, None, None);
        s.func(Some(wasm::SCRIPT_INIT), &[], &[], &[], |s, f| {
            f.i32_const(value_kind::LONG)
                .i32_const(0)
                .call(s.f("map_new"))
                .drop();
        });
        s.func(
            Some(wasm::SCRIPT_HANDLE_BATCH),
            &[ValType::I32, ValType::I32],
            &[],
            &[ValType::I32, ValType::I32],
            |s, f| {
                f.local_get(0).local_set(2);
                f.local_get(0).local_get(1).i32_add().local_set(3);
                f.block(BlockType::Empty).loop_(BlockType::Empty);
                f.local_get(2).local_get(3).i32_ge_u().br_if(1);
                if printf {
                    push_lit(f, pid);
                    f.call(s.f("fmt_lit"));
                    f.local_get(2)
                        .i64_load(mem(8))
                        .i64_const(d)
                        .call(s.f("fmt_i64"));
                    push_lit(f, nl);
                    f.call(s.f("fmt_lit"));
                } else {
                    f.local_get(2).i64_load(mem(8)).call(s.f("key_i64"));
                    f.i32_const(0).i64_const(1).call(s.f("map_add_i64")).drop();
                }
                f.call(s.f("scratch_reset"));
                f.local_get(2).i32_const(64).i32_add().local_set(2);
                f.br(0).end().end();
            },
        );
        let size = s.data.len() as u32;
        let wasm = s.finish(&[wasm::SCRIPT_INIT, wasm::SCRIPT_HANDLE_BATCH]);
        let sandbox = Sandbox::new(config()).unwrap();
        let module = sandbox.compile_script(&wasm).unwrap();
        let mut inst = sandbox
            .instantiate(&module, size, Box::new(std::io::sink()))
            .unwrap();
        inst.init().unwrap();
        for _ in 0..50 {
            inst.handle_batch(&batch).unwrap();
        }
        let rounds = 1000;
        let t = Instant::now();
        for _ in 0..rounds {
            inst.handle_batch(&batch).unwrap();
        }
        let ns = t.elapsed().as_nanos() as f64 / f64::from(rounds * n);
        let what = if printf { "printf" } else { "map increment" };
        eprintln!("{what}: {ns:.1} ns per record (batches of {n}, copy and flush included)");
    }
}

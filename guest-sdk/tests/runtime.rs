//! Native tests of the runtime's script-visible behaviour.

use std::panic::{AssertUnwindSafe, catch_unwind};

use wasmtap_abi::wasm::{spec, stat, value_kind};
use wasmtap_guest::host::{ScriptError, take_output};
use wasmtap_guest::{Runtime, Str};

fn st(s: &'static str) -> Str {
    Str::from_static(s.as_bytes())
}

fn text(s: Str) -> String {
    String::from_utf8(s.bytes().to_vec()).unwrap()
}

/// Runs `f`, expecting it to raise a run-time error; returns the message.
fn script_error(f: impl FnOnce()) -> String {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let r = catch_unwind(AssertUnwindSafe(f));
    std::panic::set_hook(prev);
    match r {
        Ok(()) => panic!("expected a run-time error"),
        Err(p) => match p.downcast::<ScriptError>() {
            Ok(e) => e.0,
            Err(p) => std::panic::resume_unwind(p),
        },
    }
}

fn d() -> i64 {
    spec::pack(b'd', 0, None, None)
}

#[test]
fn concat_truncates_and_extends_in_place() {
    let mut rt = Runtime::new();
    let a = rt.str_concat(st("foo"), st("bar"));
    assert_eq!(text(a), "foobar");
    let b = rt.str_concat(a, st("!"));
    assert_eq!(text(b), "foobar!");
    assert_eq!(b.ptr(), a.ptr(), "appended in place");
    assert_eq!(text(a), "foobar", "earlier value unchanged");
    let mut s = Str::EMPTY;
    for _ in 0..2000 {
        s = rt.str_concat(s, st("x"));
    }
    assert_eq!(s.len(), 1023);
    rt.set_maxstringlen(8);
    assert_eq!(text(rt.str_concat(st("abcdef"), st("ghijk"))), "abcdefg");
}

#[test]
fn string_functions() {
    let mut rt = Runtime::new();
    assert_eq!(rt.str_cmp(st("a"), st("b")), -1);
    assert_eq!(rt.str_cmp(st("b"), st("a")), 1);
    assert_eq!(rt.str_cmp(st("ab"), st("ab")), 0);
    assert_eq!(rt.str_cmp(st("ab"), st("abc")), -1);
    assert_eq!(text(rt.str_from_i64(-1234)), "-1234");
    assert_eq!(text(rt.substr(st("hello"), 1, 3)), "ell");
    assert_eq!(text(rt.substr(st("hello"), 3, 100)), "lo");
    assert_eq!(text(rt.substr(st("hello"), 5, 1)), "");
    assert_eq!(text(rt.substr(st("hello"), -1, 1)), "");
    assert_eq!(text(rt.substr(st("hello"), 0, -1)), "");
    assert_eq!(rt.isinstr(st("hello"), st("ll")), 1);
    assert_eq!(rt.isinstr(st("hello"), st("lll")), 0);
    assert_eq!(rt.strpos(st("hello"), st("l")), 2);
    assert_eq!(rt.strpos(st("hello"), st("z")), -1);
    assert_eq!(
        text(rt.str_replace(st("a.b.c"), st("."), st("::"))),
        "a::b::c"
    );
    assert_eq!(rt.stringat(st("AB"), 1), 66);
    assert_eq!(rt.stringat(st("\u{e9}"), 0), -61);
    let msg = script_error(|| {
        rt.stringat(st("AB"), 2);
    });
    assert_eq!(msg, "Position out of bounds");
    let mut rt = Runtime::new();
    assert_eq!(text(rt.text_str(st("a\tb"), 0, false, false)), "a\\tb");
    assert_eq!(
        text(rt.text_str(st("abcdefgh"), 8, true, false)),
        "\"abc\"..."
    );
    assert_eq!(text(rt.tokenize(st("a,b"), st(","))), "a");
    assert_eq!(text(rt.tokenize(Str::EMPTY, st(","))), "b");
    assert_eq!(text(rt.tokenize(Str::EMPTY, st(","))), "");
    let raw = b"comm\0garbage";
    // SAFETY: `raw` is a live static.
    let c = unsafe { rt.str_from_cstr(raw.as_ptr(), raw.len()) };
    assert_eq!(text(c), "comm");
    // SAFETY: as above.
    let c = unsafe { rt.str_from_cstr(raw.as_ptr(), 2) };
    assert_eq!(text(c), "co");
}

#[test]
fn kept_strings_survive_resets_and_old_ones_are_released() {
    let mut rt = Runtime::new();
    let t = rt.str_concat(st("temp"), st("orary"));
    let g = rt.str_keep(Str::EMPTY, t);
    rt.scratch_reset();
    let filler = rt.str_concat(st("XXXXX"), st("XXXXX"));
    assert_eq!(text(filler), "XXXXXXXXXX");
    assert_eq!(text(g), "temporary");
    // Replacing keeps the old value readable until the next reset.
    let g2 = rt.str_keep(g, st("new"));
    assert_eq!(text(g), "temporary");
    assert_eq!(text(g2), "new");
    rt.scratch_reset();
    // Statics and empty strings are never freed.
    let g3 = rt.str_keep(st("static"), st("x"));
    let g4 = rt.str_keep(g3, Str::EMPTY);
    assert!(g4.is_empty());
}

#[test]
fn printf_goes_to_output_and_sprintf_to_strings() {
    let mut rt = Runtime::new();
    take_output();
    rt.fmt_lit(st("pid "));
    rt.fmt_i64(42, d());
    rt.fmt_begin();
    rt.fmt_lit(st("["));
    rt.fmt_str(st("abc"), spec::pack(b's', spec::FLAG_MINUS, Some(5), None));
    rt.fmt_begin();
    rt.fmt_i64(255, spec::pack(b'x', spec::FLAG_HASH, None, None));
    let inner = rt.fmt_end();
    rt.fmt_lit(inner);
    rt.fmt_lit(st("]"));
    let s = rt.fmt_end();
    assert_eq!(text(s), "[abc  0xff]");
    rt.fmt_lit(st(" "));
    rt.fmt_lit(s);
    rt.fmt_lit(st("\n"));
    assert_eq!(rt.pending_output(), b"pid 42 [abc  0xff]\n");
    assert!(take_output().is_empty());
    rt.flush();
    assert_eq!(take_output(), b"pid 42 [abc  0xff]\n");
    assert!(rt.pending_output().is_empty());
    assert_eq!(text(rt.fmt_end()), "", "no builder open");
}

#[test]
fn output_flushes_at_64k() {
    let mut rt = Runtime::new();
    take_output();
    let line = st("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n");
    for _ in 0..1024 {
        rt.fmt_lit(line);
    }
    assert_eq!(take_output().len(), 65536);
    rt.fmt_lit(line);
    assert_eq!(rt.pending_output().len(), 64);
}

#[test]
fn maps_with_multi_part_keys() {
    let mut rt = Runtime::new();
    let m = rt.map_new(value_kind::LONG, 0);
    rt.key_i64(1);
    rt.key_str(st("a"));
    assert_eq!(rt.map_add_i64(m, 5), 5);
    rt.key_i64(1);
    rt.key_str(st("a"));
    assert_eq!(rt.map_add_i64(m, 2), 7);
    rt.key_i64(1);
    rt.key_str(st("b"));
    assert_eq!(rt.map_get_i64(m), 0);
    rt.key_i64(1);
    rt.key_str(st("b"));
    assert_eq!(rt.map_exists(m), 0, "a read does not insert");
    assert_eq!(rt.map_len(m), 1);
    rt.key_i64(2);
    rt.key_str(st("a"));
    rt.map_set_i64(m, -1);
    assert_eq!(rt.map_len(m), 2);
    rt.key_i64(1);
    rt.key_str(st("a"));
    rt.map_delete(m);
    rt.key_i64(1);
    rt.key_str(st("a"));
    assert_eq!(rt.map_exists(m), 0);
    rt.map_clear(m);
    assert_eq!(rt.map_len(m), 0);

    let s = rt.map_new(value_kind::STRING, 0);
    rt.key_str(st("k"));
    assert_eq!(text(rt.map_get_str(s)), "");
    rt.key_str(st("k"));
    let t = rt.str_concat(st("val"), st("ue"));
    rt.map_set_str(s, t);
    rt.scratch_reset();
    rt.key_str(st("k"));
    let v = rt.map_get_str(s);
    assert_eq!(text(v), "value");
    rt.key_str(st("k"));
    rt.map_set_str(s, st("other"));
    assert_eq!(text(v), "value", "old value readable until the reset");
    rt.key_str(st("k"));
    assert_eq!(text(rt.map_get_str(s)), "other");
}

#[test]
fn map_overflow_is_stap_error() {
    let mut rt = Runtime::new();
    let m = rt.map_new(value_kind::LONG, 2);
    for k in 0..2 {
        rt.key_i64(k);
        rt.map_set_i64(m, k);
    }
    rt.key_i64(0);
    rt.map_set_i64(m, 9);
    let msg = script_error(|| {
        rt.key_i64(2);
        rt.map_add_i64(m, 1);
    });
    assert_eq!(msg, "Array overflow, check MAXMAPENTRIES");
}

#[test]
fn statistics() {
    let mut rt = Runtime::new();
    let m = rt.map_new(value_kind::STATS, 0);
    for v in [3, 1, 4, 1, 5, 9, 2, 6] {
        rt.key_str(st("x"));
        rt.stat_add(m, v);
    }
    let get = |rt: &mut Runtime, w| {
        rt.key_str(st("x"));
        rt.stat_get(m, w)
    };
    assert_eq!(get(&mut rt, stat::COUNT), 8);
    assert_eq!(get(&mut rt, stat::SUM), 31);
    assert_eq!(get(&mut rt, stat::MIN), 1);
    assert_eq!(get(&mut rt, stat::MAX), 9);
    assert_eq!(get(&mut rt, stat::AVG), 3);
    assert_eq!(get(&mut rt, stat::VARIANCE), 7);
    rt.key_str(st("missing"));
    assert_eq!(rt.stat_get(m, stat::COUNT), 0);
    rt.key_str(st("missing"));
    assert_eq!(rt.stat_get(m, stat::SUM), 0);
    let msg = script_error(|| {
        rt.key_str(st("missing"));
        rt.stat_get(m, stat::AVG);
    });
    assert_eq!(msg, "empty aggregate");
}

#[test]
fn histograms_print_through_the_formatter() {
    let mut rt = Runtime::new();
    let m = rt.map_new(value_kind::STATS, 0);
    rt.stat_hist_linear(m, 0, 30, 10);
    for v in [1, 11, 12, 25] {
        rt.stat_add(m, v);
    }
    take_output();
    rt.stat_print_hist(m, 1, 0, 30, 10);
    rt.flush();
    let expected = "\
value |-------------------------------------------------- count
    0 |@                                                  1
   10 |@@                                                 2
   20 |@                                                  1
   30 |                                                   0

";
    assert_eq!(String::from_utf8(take_output()).unwrap(), expected);
    rt.fmt_begin();
    rt.stat_print_hist(m, 0, 0, 0, 0);
    let log = text(rt.fmt_end());
    assert!(log.starts_with("value |---"), "{log}");
    assert!(log.contains("    8 |@@     "), "{log}");
    let msg = script_error(|| rt.stat_print_hist(m, 1, 0, 40, 10));
    assert!(msg.contains("@hist_linear"), "{msg}");
    let e = rt.map_new(value_kind::STATS, 0);
    let msg = script_error(|| rt.stat_print_hist(e, 0, 0, 0, 0));
    assert_eq!(msg, "empty aggregate");
}

fn collect(rt: &mut Runtime, m: i32, col: i32, desc: bool, limit: i64) -> Vec<String> {
    let it = rt.iter_begin(m, col, desc, limit);
    let mut out = Vec::new();
    while rt.iter_next(it) != 0 {
        let k = text(rt.iter_key_str(it, 0));
        let n = rt.iter_key_i64(it, 1);
        out.push(format!("{k}{n}"));
    }
    assert_eq!(rt.iter_next(it), 0);
    rt.iter_end(it);
    out
}

#[test]
fn foreach_orders() {
    let mut rt = Runtime::new();
    let m = rt.map_new(value_kind::LONG, 0);
    for (k, n, v) in [("b", 1, 10), ("a", 2, 30), ("c", 0, 10), ("a", 1, 20)] {
        rt.key_str(st(k));
        rt.key_i64(n);
        rt.map_set_i64(m, v);
    }
    assert_eq!(collect(&mut rt, m, -1, false, -1), ["b1", "a2", "c0", "a1"]);
    // By value, stable: b1 and c0 tie at 10 and keep insertion order.
    assert_eq!(collect(&mut rt, m, 0, false, -1), ["b1", "c0", "a1", "a2"]);
    assert_eq!(collect(&mut rt, m, 0, true, -1), ["a2", "a1", "b1", "c0"]);
    assert_eq!(collect(&mut rt, m, 1, false, -1), ["a2", "a1", "b1", "c0"]);
    assert_eq!(collect(&mut rt, m, 2, true, 2), ["a2", "b1"]);
    assert_eq!(collect(&mut rt, m, 0, true, 0), Vec::<String>::new());

    let s = rt.map_new(value_kind::STATS, 0);
    for (k, n) in [("x", 3), ("y", 1), ("z", 2)] {
        for _ in 0..n {
            rt.key_str(st(k));
            rt.key_i64(0);
            rt.stat_add(s, 7);
        }
    }
    assert_eq!(collect(&mut rt, s, 0, true, -1), ["x0", "z0", "y0"]);
}

#[test]
fn reset_recovers_from_interrupted_operations() {
    let mut rt = Runtime::new();
    let m = rt.map_new(value_kind::LONG, 0);
    rt.key_i64(1);
    rt.fmt_begin();
    let _ = rt.iter_begin(m, -1, false, -1);
    rt.scratch_reset();
    rt.key_i64(2);
    rt.map_set_i64(m, 5);
    let it = rt.iter_begin(m, -1, false, -1);
    assert_eq!(rt.iter_next(it), 1);
    assert_eq!(rt.iter_key_i64(it, 0), 2);
    rt.fmt_lit(st("x"));
    assert_eq!(rt.pending_output(), b"x");
}

#[test]
fn errors_inside_try_are_recorded_and_taken_by_catch() {
    let mut rt = Runtime::new();
    let m = rt.map_new(value_kind::LONG, 1);
    rt.try_enter();
    rt.fmt_begin();
    rt.fmt_lit(st("half-built sprintf"));
    rt.key_i64(1);
    rt.map_set_i64(m, 1);
    rt.key_i64(2);
    rt.map_set_i64(m, 2);
    assert!(rt.err_pending());
    // A second error keeps the first message.
    rt.fail(b"second");
    assert_eq!(text(rt.try_catch()), "Array overflow, check MAXMAPENTRIES");
    assert!(!rt.err_pending());
    // The open builder was dropped: output goes to the output again.
    rt.fmt_lit(st("out"));
    rt.flush();
    assert_eq!(take_output(), b"out");
    // Outside any try the error ends the handler.
    assert_eq!(script_error(|| rt.fail(b"boom")), "boom");
}

#[test]
fn limits_set_by_the_script() {
    let mut rt = Runtime::new();
    rt.set_limits(4, 2);
    assert_eq!(text(rt.str_concat(st("abc"), st("def"))), "abc");
    let m = rt.map_new(value_kind::LONG, 0);
    for k in 0..2 {
        rt.key_i64(k);
        rt.map_set_i64(m, k);
    }
    rt.key_i64(9);
    let msg = script_error(|| rt.map_set_i64(m, 9));
    assert_eq!(msg, "Array overflow, check MAXMAPENTRIES");
}

#[test]
fn unread_globals_print_like_stap() {
    use wasmtap_abi::wasm::dump_kind;
    let mut rt = Runtime::new();
    rt.global_dump(st("n"), dump_kind::LONG, 42);
    let a = rt.map_new(value_kind::LONG, 0);
    for (k, v) in [("a", 1), ("b", 3), ("c", 2)] {
        rt.key_str(st(k));
        rt.key_i64(7);
        rt.map_set_i64(a, v);
    }
    rt.global_dump(st("hits"), dump_kind::MAP, i64::from(a));
    let s = rt.map_new(value_kind::STATS, 0);
    rt.global_dump(st("empty"), dump_kind::STATS, i64::from(s));
    for v in [1, 2, 6] {
        rt.stat_add(s, v);
    }
    rt.global_dump(st("s"), dump_kind::STATS, i64::from(s));
    rt.flush();
    assert_eq!(
        String::from_utf8(take_output()).unwrap(),
        "n=42\nhits[\"b\",7]=3\nhits[\"c\",7]=2\nhits[\"a\",7]=1\n\
         empty @count=0 @min=0 @max=0 @sum=0 @avg=0\n\
         s @count=3 @min=1 @max=6 @sum=9 @avg=3\n"
    );
}

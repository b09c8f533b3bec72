//! Error reporting: every kind of error with its exact 1-based line and column (counted by
//! hand) and the key words of its message.

use crate::text::{parse, ParseError};

const HEAD: &str = "graph @g(%x: f32[2,3], %i: i64[2]) {\n";
const TAIL: &str = "  return %y: %0\n}\n";

fn err(text: &str) -> ParseError {
    match parse(text) {
        Ok(g) => panic!("parsed without error:\n{text}\n{}", crate::text::print(&g)),
        Err(e) => e,
    }
}

/// The error for the base graph with its body replaced by `body` (lines 2...).
fn body_err(body: &str) -> ParseError {
    err(&format!("{HEAD}{body}\n{TAIL}"))
}

fn check(e: ParseError, line: usize, column: usize, words: &[&str]) {
    assert_eq!((e.line, e.column), (line, column), "{e}");
    for w in words {
        assert!(e.message.contains(w), "`{w}` not in `{e}`");
    }
}

#[test]
fn base_text_parses() {
    parse(&format!("{HEAD}  %0 = exp(%x) : f32[2,3]\n{TAIL}")).unwrap();
}

#[test]
fn node_errors() {
    let cases: &[(&str, usize, usize, &[&str])] = &[
        ("  %0 = foo(%x) : f32[2,3]", 2, 8, &["unknown op `foo`"]),
        ("  %0 = exp(%17) : f32[2,3]", 2, 12, &["unknown value %17"]),
        (
            "  %0 = exp(%x) : f32[2,4]",
            2,
            18,
            &["declared type f32[2,4] differs from inferred type f32[2,3]"],
        ),
        (
            "  %0 = add(%x, %i) : f32[2,3]",
            2,
            8,
            &["ill-typed `add`", "operand element types differ"],
        ),
        (
            "  %0 = slice(%x) {axis=1, start=2, end=1} : f32[2,0]",
            2,
            8,
            &["ill-typed `slice`", "slice 2..1 out of range"],
        ),
        (
            "  %0 = exp(%x) : f32[2,x]",
            2,
            18,
            &["bad type", "`x` is not an integer"],
        ),
        (
            "  %0 = exp(%x) : f64[2,3]",
            2,
            18,
            &["bad type", "unknown element type `f64`"],
        ),
        (
            "  %0 = exp(%x) : f32",
            2,
            21,
            &["expected `[`", "end of line"],
        ),
        (
            "  %0 = exp(%x) f32[2,3]",
            2,
            16,
            &["expected `:`", "found `f32`"],
        ),
        (
            "  %0 = reduce_sum(%x) {axes=2} : f32[2]",
            2,
            24,
            &["bad attribute `axes`"],
        ),
        (
            "  %0 = reduce_sum(%x) {axes=[a]} : f32[2]",
            2,
            24,
            &["element `a`"],
        ),
        (
            "  %0 = reshape(%x) : f32[6]",
            2,
            8,
            &["`reshape` is missing attribute `shape`"],
        ),
        (
            "  %0 = exp(%x) {foo} : f32[2,3]",
            2,
            17,
            &["unknown attribute `foo` for `exp`"],
        ),
        (
            "  %0 = exp(%x) : f32[2,3] junk",
            2,
            27,
            &["unexpected `junk` after the node"],
        ),
        (
            "  %0 = matmul(%x, %x) {transpose_b=1} : f32[2,2]",
            2,
            24,
            &["flag is written bare"],
        ),
        (
            "  %0 = exp(%x) {a, a} : f32[2,3]",
            2,
            20,
            &["duplicate attribute `a`"],
        ),
        (
            "  %0 = input : f32[2]",
            2,
            8,
            &["`input` cannot appear in the body"],
        ),
        (
            "  %0 = param : f32[2]",
            2,
            8,
            &["`param` needs its checkpoint name"],
        ),
        (
            "  %0 = exp(%x) \"s\" : f32[2,3]",
            2,
            16,
            &["only `param` takes a name string"],
        ),
        (
            "  %0 = exp(%x) : f32[4294967297]",
            2,
            18,
            &["exceeds the limit"],
        ),
        (
            "  %0 = exp(%x) : f32[99999999999999999999999]",
            2,
            18,
            &["not an integer"],
        ),
        (
            "  %0 = exp(%x) : f32[2,3] stage=x",
            2,
            33,
            &["bad stage `x`"],
        ),
        (
            "  %0 = exp(%x) : f32[2,3] @\"abc",
            2,
            28,
            &["unterminated string literal"],
        ),
        (
            "  %0 = full {value=abc} : f32[]",
            2,
            14,
            &["`value=abc`", "expected a number"],
        ),
        ("  %0 = full : f32[]", 2, 8, &["missing attribute `value`"]),
        (
            "  %0 = reshape(%x) {shape=[65536,65536,65537]} : f32[2]",
            2,
            8,
            &["attribute `shape`", "more than"],
        ),
        (
            "  %0 = pad(%x) {axis=0, before=4294967296, after=1} : f32[2,3]",
            2,
            8,
            &["inferred result type", "exceeds the limit"],
        ),
        (
            "  %0 = exp(%1) : f32[2,3]\n  %1 = exp(%x) : f32[2,3]",
            2,
            12,
            &["%1 is used before its definition on line 3"],
        ),
        (
            "  %0 = exp(%x) : f32[2,3]\n  %0 = exp(%x) : f32[2,3]",
            3,
            3,
            &["redefinition of %0"],
        ),
        ("  %x = exp(%x) : f32[2,3]", 2, 3, &["redefinition of %x"]),
        (
            "  %0 = param \"w\" : f32[2]\n  %1 = param \"w\" : f32[2]",
            3,
            14,
            &["duplicate param name `w`"],
        ),
        (
            "  foo",
            2,
            3,
            &["expected a node `%name = ...` or `return`, found `foo`"],
        ),
    ];
    for &(body, line, column, words) in cases {
        check(body_err(body), line, column, words);
    }
}

#[test]
fn structure_errors() {
    let cases: &[(&str, usize, usize, &[&str])] = &[
        (
            "graph @g(%x: f32[2]) {\n  %0 = exp(%x) : f32[2]\n}\n",
            3,
            1,
            &["missing `return`"],
        ),
        ("graph @g() {\n", 2, 1, &["missing `return`"]),
        (
            "graph @g() {\n  return\n}\nextra\n",
            4,
            1,
            &["trailing `extra`"],
        ),
        (
            "graph @g() {\n  return\n",
            3,
            1,
            &["expected `}`", "end of input"],
        ),
        (
            "graph @g(%x: f32[2]) {\n  return %a: %x, %a: %x\n}",
            2,
            18,
            &["duplicate output name `a`"],
        ),
        (
            "graph @g(%x: f32[2], %x: f32[2]) {\n  return\n}",
            1,
            22,
            &["redefinition of %x"],
        ),
        ("func @g() {}", 1, 1, &["expected `graph @name(...)`"]),
        ("graph g() {", 1, 7, &["expected the graph name"]),
        (
            "graph @g() {\n  return $\n}",
            2,
            10,
            &["unexpected character '$'"],
        ),
        (
            "graph @g(%x: f32[2]) {\n  return %y: %5\n}",
            2,
            14,
            &["unknown value %5"],
        ),
        (
            "graph @g() { %0 = exp()\n",
            1,
            14,
            &["unexpected `%0` after `{`"],
        ),
        ("graph @g(x) {\n", 1, 10, &["expected a graph input"]),
        ("", 1, 1, &["expected `graph"]),
    ];
    for &(text, line, column, words) in cases {
        check(err(text), line, column, words);
    }
}

#[test]
fn display_is_line_colon_column() {
    let e = body_err("  %0 = foo(%x) : f32[2,3]");
    assert_eq!(e.to_string(), "2:8: unknown op `foo`");
}

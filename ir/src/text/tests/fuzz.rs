//! Robustness: the parser returns `Ok` or `Err` on arbitrary text and on mutations of valid
//! text, never panics; whatever it accepts is well-typed and round-trips.

use super::all_ops_graph;
use crate::text::{parse, print};
use crate::verify::verify;
use proptest::prelude::*;

/// Parses `text`; when it is accepted, checks that the graph verifies and round-trips.
fn parse_total(text: &str) -> Result<(), TestCaseError> {
    if let Ok(g) = parse(text) {
        if let Err(e) = verify(&g) {
            // Quoted scopes may hold white space, which only the verifier rejects.
            prop_assert!(
                e.violations
                    .iter()
                    .all(|v| v.message.starts_with("malformed scope")),
                "{}",
                e
            );
        }
        let printed = print(&g);
        let again = parse(&printed).map_err(|e| TestCaseError::fail(format!("{e}\n{printed}")))?;
        prop_assert_eq!(print(&again), printed);
    }
    Ok(())
}

/// Characters and fragments that matter to the lexer and parser.
const PIECES: [&str; 32] = [
    "%",
    "@",
    "\"",
    "\\",
    "\n",
    " ",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    "=",
    "//",
    "-",
    "0",
    "9",
    "x",
    "é",
    "\u{0}",
    "f32",
    "i64[",
    "return",
    "graph",
    "stage=",
    "recompute",
    "99999999999999999999",
    "4294967296",
    "nan",
    "\\u{",
];

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, usize),
    DupLine(usize),
    SwapLines(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..8).prop_map(|(p, n)| Edit::Delete(p, n)),
        (any::<usize>(), 0..PIECES.len()).prop_map(|(p, k)| Edit::Insert(p, k)),
        any::<usize>().prop_map(Edit::DupLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

fn apply(text: &str, e: &Edit) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<&str> = text.lines().collect();
    match *e {
        Edit::Delete(p, n) => {
            let p = p % (chars.len() + 1);
            let end = (p + n).min(chars.len());
            chars[..p].iter().chain(&chars[end..]).collect()
        }
        Edit::Insert(p, k) => {
            let p = p % (chars.len() + 1);
            let mut s: String = chars[..p].iter().collect();
            s.push_str(PIECES[k]);
            s.extend(&chars[p..]);
            s
        }
        Edit::DupLine(i) => {
            let i = i % lines.len();
            lines.insert(i, lines[i]);
            lines.join("\n")
        }
        Edit::SwapLines(a, b) => {
            let n = lines.len();
            lines.swap(a % n, b % n);
            lines.join("\n")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,200}") {
        parse_total(&s)?;
        parse_total(&format!("graph @g(%x: f32[2]) {{\n{s}\n  return\n}}\n"))?;
    }

    #[test]
    fn pieces_never_panic(ks in prop::collection::vec(0..PIECES.len(), 0..60)) {
        let s: String = ks.iter().map(|&k| PIECES[k]).collect();
        parse_total(&s)?;
        parse_total(&format!("graph @g(%x: f32[2]) {{\n  %0 = {s}\n  return\n}}\n"))?;
    }

    #[test]
    fn mutated_text_never_panics(edits in prop::collection::vec(edit(), 1..6)) {
        let mut text = print(&all_ops_graph());
        for e in &edits {
            text = apply(&text, e);
        }
        parse_total(&text)?;
    }
}

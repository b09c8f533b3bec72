//! Lexical conventions shared by the printer, the parser and DOT export: which names print
//! bare and which quoted, string escapes, exact float spelling, and the printed name of
//! every value.
//!
//! Keeping these rules in one place is what makes `print` and `parse` agree: the printer
//! quotes exactly the names the lexer would not read back as one bare word.

use crate::graph::{Graph, NodeId};
use crate::op::Op;
use std::fmt::Write as _;

/// True for characters the lexer accepts inside a bare word (names, numbers, scopes).
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-')
}

/// True when `s` prints without quotes after `%` or `@`: an ASCII letter or `_`, then
/// letters, digits, `_`, `.` or `-`. All-digit words are reserved for numbered values.
pub(crate) fn is_bare_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Appends `s` as a double-quoted string literal with `\\`, `\"`, `\n`, `\r`, `\t` and
/// `\u{..}` (other control characters) escapes.
pub(crate) fn push_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `s` bare when [`is_bare_name`] allows it, quoted otherwise.
pub(crate) fn push_name(out: &mut String, s: &str) {
    if is_bare_name(s) {
        out.push_str(s);
    } else {
        push_quoted(out, s);
    }
}

/// The printed reference of a graph input named `name`: `%name` or `%"name"`.
pub(crate) fn input_value_name(name: &str) -> String {
    let mut s = String::with_capacity(name.len() + 3);
    s.push('%');
    push_name(&mut s, name);
    s
}

/// Spells a float so that [`parse_f64`] gives back the same bits: Rust's shortest
/// round-trip form, `inf`, `-inf`, `nan` for the canonical quiet NaN, and the raw bits in
/// hex (`0x7ff8000000000001`) for any other NaN.
pub(crate) fn format_f64(v: f64) -> String {
    if v.is_nan() {
        if v.to_bits() == f64::NAN.to_bits() {
            "nan".to_string()
        } else {
            format!("0x{:016x}", v.to_bits())
        }
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.to_string()
    } else {
        format!("{v:?}")
    }
}

/// Reads a float spelled by [`format_f64`] (or any decimal float Rust parses).
pub(crate) fn parse_f64(s: &str) -> Option<f64> {
    if let Some(hex) = s.strip_prefix("0x") {
        if hex.len() != 16 {
            return None;
        }
        return u64::from_str_radix(hex, 16).ok().map(f64::from_bits);
    }
    match s {
        "nan" => Some(f64::NAN),
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ if s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+') => s.parse().ok(),
        _ => None,
    }
}

/// The nodes in printed order and the printed name of each node, indexed by node index.
pub(crate) struct ValueNames {
    /// [`Graph::topo_order`].
    pub order: Vec<NodeId>,
    names: Vec<Option<String>>,
}

impl ValueNames {
    /// Names every node as [`Graph::value_names`] does (`%input_name`, `%0`, `%1`, ...),
    /// quoting input names that are not bare words.
    pub(crate) fn new(graph: &Graph) -> Self {
        let order = graph.topo_order();
        let bound = petgraph::visit::NodeIndexable::node_bound(graph.petgraph());
        let mut names = vec![None; bound];
        let mut k = 0usize;
        for &id in &order {
            let name = match &graph.node(id).op {
                Op::Input { name, .. } => input_value_name(name),
                _ => {
                    k += 1;
                    format!("%{}", k - 1)
                }
            };
            if let Some(slot) = names.get_mut(id.index()) {
                *slot = Some(name);
            }
        }
        ValueNames { order, names }
    }

    /// The printed name of `id`, or `%?<index>` for a node outside the topological order
    /// (on a cycle) or not in the graph.
    pub(crate) fn get(&self, id: NodeId) -> String {
        match self.names.get(id.index()) {
            Some(Some(n)) => n.clone(),
            _ => format!("%?{}", id.index()),
        }
    }

    /// Appends the printed name of `id` to `out` (see [`ValueNames::get`]).
    pub(crate) fn push(&self, out: &mut String, id: NodeId) {
        match self.names.get(id.index()) {
            Some(Some(n)) => out.push_str(n),
            _ => {
                let _ = write!(out, "%?{}", id.index());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names() {
        for ok in ["x", "input_ids", "_a.b-c", "lxmert.encoder.layer.0"] {
            assert!(is_bare_name(ok), "{ok}");
        }
        for bad in ["", "0", "12", "0a", "a b", "a\"", "a+b", ".a", "é"] {
            assert!(!is_bare_name(bad), "{bad}");
        }
    }

    #[test]
    fn quoting_escapes() {
        let mut s = String::new();
        push_quoted(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, r#""a\"b\\c\nd\u{1}é""#);
    }

    #[test]
    fn floats_round_trip_bit_exactly() {
        let odd_nan = f64::from_bits(0x7ff8_0000_0000_0001);
        let neg_nan = f64::from_bits(0xfff8_0000_0000_0000);
        let values = [
            0.0,
            -0.0,
            1.0,
            0.1,
            1e-12,
            -3.4028234663852886e38,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            odd_nan,
            neg_nan,
        ];
        for v in values {
            let s = format_f64(v);
            let back = parse_f64(&s).unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{v:?} printed as {s}");
        }
        assert_eq!(format_f64(f64::NAN), "nan");
        assert_eq!(format_f64(odd_nan), "0x7ff8000000000001");
        assert_eq!(format_f64(-3.4028234663852886e38), "-3.4028234663852886e38");
        assert_eq!(parse_f64("1e-12"), Some(1e-12));
        assert_eq!(parse_f64("abc"), None);
        assert_eq!(parse_f64("0x12"), None);
    }
}

//! The attribute syntax of every op, in both directions: [`push_attrs`] prints an op's
//! attributes and [`build_op`] rebuilds the op from its name, attributes and literal.
//!
//! Both directions live in this one file so that they cannot drift apart. Booleans are bare
//! words present only when true; integers are decimal; floats use [`format_f64`]; dtypes
//! their names; lists `[a,b]`. Attributes print in the order the op's fields are declared:
//!
//! | op | attributes |
//! |----|------------|
//! | `param "name"` | none (the checkpoint name is a string literal) |
//! | `full` | `value=F` |
//! | `iota` | `axis=N` |
//! | `matmul` | `transpose_a`, `transpose_b`, `half_partials` (flags) |
//! | `scatter_add` | `rows=N` |
//! | `one_hot` | `depth=N, dtype=D` |
//! | `layer_norm` | `eps=F` |
//! | `reduce_sum`/`reduce_mean`/`reduce_max` | `axes=[..]`, `keep_dims` (flag) |
//! | `reshape`, `broadcast_to` | `shape=[..]` |
//! | `transpose` | `perm=[..]` |
//! | `slice` | `axis=N, start=N, end=N` |
//! | `pad` | `axis=N, before=N, after=N` |
//! | `concat` | `axis=N` |
//! | `cast` | `to=D` |
//!
//! All other ops (elementwise, `select`, `gather`, `softmax`) have no attributes.

use super::ast::{Attr, AttrValue};
use super::lex::Pos;
use super::names::{format_f64, parse_f64};
use super::parse::{check_shape, MAX_EXTENT};
use super::ParseError;
use crate::dtype::DType;
use crate::op::{BinaryOp, CmpOp, Op, ReduceKind, UnaryOp};
use crate::types::TensorType;
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Write as _;

fn list(v: &[usize]) -> String {
    let items: Vec<String> = v.iter().map(|x| x.to_string()).collect();
    format!("[{}]", items.join(","))
}

/// The op's attributes as `name=value` strings (flags as bare names), in print order.
pub(crate) fn attr_strings(op: &Op) -> Vec<String> {
    let mut a = Vec::new();
    match op {
        Op::Input { .. }
        | Op::Param { .. }
        | Op::Unary(_)
        | Op::Binary(_)
        | Op::Compare(_)
        | Op::Select
        | Op::Softmax => {}
        Op::Gather { padding_idx } => {
            if let Some(p) = padding_idx {
                a.push(format!("padding_idx={p}"));
            }
        }
        Op::Full { value, .. } => a.push(format!("value={}", format_f64(*value))),
        Op::Iota { axis, .. } => a.push(format!("axis={axis}")),
        Op::MatMul {
            transpose_a,
            transpose_b,
            half_partials,
        } => {
            for (on, name) in [
                (transpose_a, "transpose_a"),
                (transpose_b, "transpose_b"),
                (half_partials, "half_partials"),
            ] {
                if *on {
                    a.push(name.to_string());
                }
            }
        }
        Op::ScatterAdd { rows } => a.push(format!("rows={rows}")),
        Op::OneHot { depth, dtype } => {
            a.push(format!("depth={depth}"));
            a.push(format!("dtype={dtype}"));
        }
        Op::LayerNorm { eps } => a.push(format!("eps={}", format_f64(*eps))),
        Op::Reduce {
            axes, keep_dims, ..
        } => {
            a.push(format!("axes={}", list(axes)));
            if *keep_dims {
                a.push("keep_dims".to_string());
            }
        }
        Op::Reshape { shape } | Op::BroadcastTo { shape } => {
            a.push(format!("shape={}", list(shape)))
        }
        Op::Transpose { perm } => a.push(format!("perm={}", list(perm))),
        Op::Slice { axis, start, end } => {
            a.push(format!("axis={axis}"));
            a.push(format!("start={start}"));
            a.push(format!("end={end}"));
        }
        Op::Pad {
            axis,
            before,
            after,
        } => {
            a.push(format!("axis={axis}"));
            a.push(format!("before={before}"));
            a.push(format!("after={after}"));
        }
        Op::Concat { axis } => a.push(format!("axis={axis}")),
        Op::Cast { to } => a.push(format!("to={to}")),
    }
    a
}

/// Appends ` {a, b}` (nothing when the op has no attributes).
pub(crate) fn push_attrs(out: &mut String, op: &Op) {
    let attrs = attr_strings(op);
    if !attrs.is_empty() {
        let _ = write!(out, " {{{}}}", attrs.join(", "));
    }
}

/// The attributes of one node being rebuilt; each is taken at most once and leftovers
/// are reported as unknown.
struct Attrs<'a, 'b> {
    op: &'b str,
    op_pos: Pos,
    attrs: Vec<Option<&'b Attr<'a>>>,
}

impl<'a, 'b> Attrs<'a, 'b> {
    fn new(op: &'b str, op_pos: Pos, attrs: &'b [Attr<'a>]) -> Result<Self, ParseError> {
        let mut seen = HashSet::with_capacity(attrs.len());
        for a in attrs {
            if !seen.insert(a.name) {
                return Err(a.pos.error(format!("duplicate attribute `{}`", a.name)));
            }
        }
        Ok(Attrs {
            op,
            op_pos,
            attrs: attrs.iter().map(Some).collect(),
        })
    }

    fn take(&mut self, name: &str) -> Option<&'b Attr<'a>> {
        self.attrs
            .iter_mut()
            .find(|a| a.is_some_and(|a| a.name == name))
            .and_then(Option::take)
    }

    fn required(&mut self, name: &str, form: &str) -> Result<&'b Attr<'a>, ParseError> {
        self.take(name).ok_or_else(|| {
            self.op_pos.error(format!(
                "`{}` is missing attribute `{name}` (write `{{{name}={form}}}`)",
                self.op
            ))
        })
    }

    fn word(&mut self, name: &str, form: &str) -> Result<(&'a str, Pos), ParseError> {
        let a = self.required(name, form)?;
        match &a.value {
            AttrValue::Word(w) => Ok((*w, a.pos)),
            _ => Err(a
                .pos
                .error(format!("bad attribute `{name}`: expected `{name}={form}`"))),
        }
    }

    fn usize(&mut self, name: &str) -> Result<usize, ParseError> {
        let (w, pos) = self.word(name, "N")?;
        parse_usize(w).ok_or_else(|| {
            pos.error(format!(
                "bad attribute `{name}={w}`: expected an integer at most {MAX_EXTENT}"
            ))
        })
    }

    fn opt_usize(&mut self, name: &str) -> Result<Option<usize>, ParseError> {
        if self.attrs.iter().flatten().any(|a| a.name == name) {
            self.usize(name).map(Some)
        } else {
            Ok(None)
        }
    }

    fn f64(&mut self, name: &str) -> Result<f64, ParseError> {
        let (w, pos) = self.word(name, "number")?;
        parse_f64(w)
            .ok_or_else(|| pos.error(format!("bad attribute `{name}={w}`: expected a number")))
    }

    fn dtype(&mut self, name: &str) -> Result<DType, ParseError> {
        let (w, pos) = self.word(name, "f32")?;
        w.parse()
            .map_err(|e| pos.error(format!("bad attribute `{name}={w}`: {e}")))
    }

    fn list(&mut self, name: &str) -> Result<Vec<usize>, ParseError> {
        let a = self.required(name, "[..]")?;
        let AttrValue::List(items) = &a.value else {
            return Err(a
                .pos
                .error(format!("bad attribute `{name}`: expected `{name}=[..]`")));
        };
        let mut out = Vec::with_capacity(items.len());
        for w in items {
            out.push(parse_usize(w).ok_or_else(|| {
                a.pos.error(format!(
                    "bad attribute `{name}`: element `{w}` is not an integer at most {MAX_EXTENT}"
                ))
            })?);
        }
        Ok(out)
    }

    fn flag(&mut self, name: &str) -> Result<bool, ParseError> {
        match self.take(name) {
            None => Ok(false),
            Some(Attr {
                value: AttrValue::Flag,
                ..
            }) => Ok(true),
            Some(a) => Err(a.pos.error(format!(
                "bad attribute `{name}`: a flag is written bare (`{name}`), without a value"
            ))),
        }
    }

    fn finish(self) -> Result<(), ParseError> {
        match self.attrs.iter().flatten().next() {
            None => Ok(()),
            Some(a) => Err(a
                .pos
                .error(format!("unknown attribute `{}` for `{}`", a.name, self.op))),
        }
    }
}

fn parse_usize(w: &str) -> Option<usize> {
    if !w.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    w.parse::<usize>()
        .ok()
        .filter(|&n| u64::try_from(n).is_ok_and(|n| n <= MAX_EXTENT))
}

/// Rebuilds an op from its name, attributes, optional string literal and declared result
/// type (which is the op's own type for `param`, `full` and `iota`).
pub(crate) fn build_op(
    name: &str,
    name_pos: Pos,
    attrs: &[Attr<'_>],
    literal: Option<&(Cow<'_, str>, Pos)>,
    ty: &TensorType,
) -> Result<Op, ParseError> {
    let mut at = Attrs::new(name, name_pos, attrs)?;
    if let (Some((_, pos)), false) = (literal, name == "param") {
        return Err(pos.error(format!(
            "unexpected string literal: only `param` takes a name string, not `{name}`"
        )));
    }
    let ty = ty.clone();
    let op = match name {
        "input" => {
            return Err(name_pos
                .error("`input` cannot appear in the body: declare graph inputs in the header"))
        }
        "param" => match literal {
            Some((n, _)) => Op::Param {
                name: n.to_string(),
                ty,
            },
            None => {
                return Err(name_pos.error(
                    "`param` needs its checkpoint name as a string: `param \"a.b.weight\"`",
                ))
            }
        },
        "full" => Op::Full {
            value: at.f64("value")?,
            ty,
        },
        "iota" => Op::Iota {
            axis: at.usize("axis")?,
            ty,
        },
        "select" => Op::Select,
        "gather" => Op::Gather {
            padding_idx: at.opt_usize("padding_idx")?,
        },
        "softmax" => Op::Softmax,
        "matmul" => Op::MatMul {
            transpose_a: at.flag("transpose_a")?,
            transpose_b: at.flag("transpose_b")?,
            half_partials: at.flag("half_partials")?,
        },
        "scatter_add" => Op::ScatterAdd {
            rows: at.usize("rows")?,
        },
        "one_hot" => Op::OneHot {
            depth: at.usize("depth")?,
            dtype: at.dtype("dtype")?,
        },
        "layer_norm" => Op::LayerNorm {
            eps: at.f64("eps")?,
        },
        "reshape" | "broadcast_to" => {
            let shape = at.list("shape")?;
            check_shape(&shape, "attribute `shape`", name_pos)?;
            if name == "reshape" {
                Op::Reshape { shape }
            } else {
                Op::BroadcastTo { shape }
            }
        }
        "transpose" => Op::Transpose {
            perm: at.list("perm")?,
        },
        "slice" => Op::Slice {
            axis: at.usize("axis")?,
            start: at.usize("start")?,
            end: at.usize("end")?,
        },
        "pad" => Op::Pad {
            axis: at.usize("axis")?,
            before: at.usize("before")?,
            after: at.usize("after")?,
        },
        "concat" => Op::Concat {
            axis: at.usize("axis")?,
        },
        "cast" => Op::Cast {
            to: at.dtype("to")?,
        },
        _ => {
            if let Some(u) = UnaryOp::ALL.into_iter().find(|u| u.name() == name) {
                Op::Unary(u)
            } else if let Some(b) = BinaryOp::ALL.into_iter().find(|b| b.name() == name) {
                Op::Binary(b)
            } else if let Some(c) = CmpOp::ALL.into_iter().find(|c| c.name() == name) {
                Op::Compare(c)
            } else if let Some(kind) = ReduceKind::ALL.into_iter().find(|k| k.name() == name) {
                Op::Reduce {
                    kind,
                    axes: at.list("axes")?,
                    keep_dims: at.flag("keep_dims")?,
                }
            } else {
                return Err(name_pos.error(format!("unknown op `{name}`")));
            }
        }
    };
    at.finish()?;
    Ok(op)
}

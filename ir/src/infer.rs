//! Type inference: the result type of every op from its operand types.
//!
//! Called when a node is added to a graph (so an ill-typed node never enters it) and by
//! the verifier (which re-infers every node). The rules are strict, as in XLA HLO: binary
//! ops need equal element types, shapes broadcast NumPy-style, every extent is static.

use crate::dtype::DType;
use crate::op::{BinaryOp, Op, ReduceKind};
use crate::types::TensorType;

/// Why an op cannot be applied to the given operand types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TypeError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, TypeError> {
    Err(TypeError(msg.into()))
}

fn expect_arity(op: &Op, operands: &[&TensorType], n: usize) -> Result<(), TypeError> {
    if operands.len() != n {
        return err(format!(
            "`{}` takes {n} operand(s), got {}",
            op.name(),
            operands.len()
        ));
    }
    Ok(())
}

fn expect_float(what: &str, t: &TensorType) -> Result<(), TypeError> {
    if !t.dtype.is_float() {
        return err(format!("{what} must be floating point, got {t}"));
    }
    Ok(())
}

fn expect_same_dtype(a: &TensorType, b: &TensorType) -> Result<(), TypeError> {
    if a.dtype != b.dtype {
        return err(format!(
            "operand element types differ: {a} vs {b} (insert a cast)"
        ));
    }
    Ok(())
}

fn broadcast(a: &TensorType, b: &TensorType) -> Result<Vec<usize>, TypeError> {
    crate::types::broadcast_shapes(&a.shape, &b.shape)
        .ok_or_else(|| TypeError(format!("shapes {a} and {b} do not broadcast")))
}

fn expect_axis(axis: usize, t: &TensorType) -> Result<(), TypeError> {
    if axis >= t.rank() {
        return err(format!("axis {axis} out of range for {t}"));
    }
    Ok(())
}

impl Op {
    /// Infers the result type from the operand types, or says why the op does not apply.
    pub fn infer(&self, operands: &[&TensorType]) -> Result<TensorType, TypeError> {
        match self {
            Op::Input { ty, .. } | Op::Param { ty, .. } | Op::Full { ty, .. } => {
                expect_arity(self, operands, 0)?;
                Ok(ty.clone())
            }
            Op::Iota { axis, ty } => {
                expect_arity(self, operands, 0)?;
                expect_axis(*axis, ty)?;
                Ok(ty.clone())
            }
            Op::Unary(_) => {
                expect_arity(self, operands, 1)?;
                expect_float("operand", operands[0])?;
                Ok(operands[0].clone())
            }
            Op::Binary(b) => {
                expect_arity(self, operands, 2)?;
                let (x, y) = (operands[0], operands[1]);
                expect_same_dtype(x, y)?;
                if x.dtype == DType::Bool {
                    return err("arithmetic on bool operands (cast first)");
                }
                if *b == BinaryOp::Pow {
                    expect_float("operand", x)?;
                }
                Ok(TensorType::new(x.dtype, broadcast(x, y)?))
            }
            Op::Compare(_) => {
                expect_arity(self, operands, 2)?;
                expect_same_dtype(operands[0], operands[1])?;
                Ok(TensorType::new(
                    DType::Bool,
                    broadcast(operands[0], operands[1])?,
                ))
            }
            Op::Select => {
                expect_arity(self, operands, 3)?;
                let (c, a, b) = (operands[0], operands[1], operands[2]);
                if c.dtype != DType::Bool {
                    return err(format!("select condition must be bool, got {c}"));
                }
                expect_same_dtype(a, b)?;
                let ab = broadcast(a, b)?;
                let shape = crate::types::broadcast_shapes(&c.shape, &ab).ok_or_else(|| {
                    TypeError(format!("condition {c} does not broadcast with {a} and {b}"))
                })?;
                Ok(TensorType::new(a.dtype, shape))
            }
            Op::MatMul {
                transpose_a,
                transpose_b,
                ..
            } => {
                expect_arity(self, operands, 2)?;
                let (a, b) = (operands[0], operands[1]);
                expect_float("matmul operand", a)?;
                expect_same_dtype(a, b)?;
                if a.rank() < 2 || b.rank() < 2 {
                    return err(format!("matmul operands need rank >= 2, got {a} and {b}"));
                }
                let (ra, rb) = (a.rank(), b.rank());
                let (m, ka) = if *transpose_a {
                    (a.shape[ra - 1], a.shape[ra - 2])
                } else {
                    (a.shape[ra - 2], a.shape[ra - 1])
                };
                let (kb, n) = if *transpose_b {
                    (b.shape[rb - 1], b.shape[rb - 2])
                } else {
                    (b.shape[rb - 2], b.shape[rb - 1])
                };
                if ka != kb {
                    return err(format!(
                        "matmul contraction extents differ: {ka} (of {a}) vs {kb} (of {b})"
                    ));
                }
                let batch = crate::types::broadcast_shapes(&a.shape[..ra - 2], &b.shape[..rb - 2])
                    .ok_or_else(|| {
                        TypeError(format!("matmul batch axes of {a} and {b} do not broadcast"))
                    })?;
                let mut shape = batch;
                shape.push(m);
                shape.push(n);
                Ok(TensorType::new(a.dtype, shape))
            }
            Op::Gather { padding_idx } => {
                expect_arity(self, operands, 2)?;
                let (table, idx) = (operands[0], operands[1]);
                if table.rank() < 1 {
                    return err("gather table must have rank >= 1");
                }
                if let Some(p) = padding_idx {
                    if *p >= table.shape[0] {
                        return err(format!("gather padding_idx {p} out of range for {table}"));
                    }
                }
                if idx.dtype != DType::I64 {
                    return err(format!("gather indices must be i64, got {idx}"));
                }
                let mut shape = idx.shape.clone();
                shape.extend_from_slice(&table.shape[1..]);
                Ok(TensorType::new(table.dtype, shape))
            }
            Op::ScatterAdd { rows } => {
                expect_arity(self, operands, 2)?;
                let (idx, upd) = (operands[0], operands[1]);
                if idx.dtype != DType::I64 {
                    return err(format!("scatter_add indices must be i64, got {idx}"));
                }
                expect_float("scatter_add updates", upd)?;
                if upd.rank() < idx.rank() || upd.shape[..idx.rank()] != idx.shape[..] {
                    return err(format!(
                        "scatter_add updates {upd} must start with the indices' shape {idx}"
                    ));
                }
                let mut shape = vec![*rows];
                shape.extend_from_slice(&upd.shape[idx.rank()..]);
                Ok(TensorType::new(upd.dtype, shape))
            }
            Op::OneHot { depth, dtype } => {
                expect_arity(self, operands, 1)?;
                if operands[0].dtype != DType::I64 {
                    return err(format!("one_hot indices must be i64, got {}", operands[0]));
                }
                if !dtype.is_float() {
                    return err("one_hot result must be floating point");
                }
                let mut shape = operands[0].shape.clone();
                shape.push(*depth);
                Ok(TensorType::new(*dtype, shape))
            }
            Op::Softmax => {
                expect_arity(self, operands, 1)?;
                expect_float("softmax operand", operands[0])?;
                if operands[0].rank() == 0 {
                    return err("softmax needs rank >= 1");
                }
                Ok(operands[0].clone())
            }
            Op::LayerNorm { eps } => {
                expect_arity(self, operands, 3)?;
                let (x, g, b) = (operands[0], operands[1], operands[2]);
                expect_float("layer_norm input", x)?;
                if eps.is_nan() || *eps < 0.0 {
                    return err(format!("layer_norm eps must be >= 0, got {eps}"));
                }
                let h = *x
                    .shape
                    .last()
                    .ok_or_else(|| TypeError("layer_norm needs rank >= 1".into()))?;
                for (what, t) in [("gamma", g), ("beta", b)] {
                    expect_same_dtype(x, t)?;
                    if t.shape != [h] {
                        return err(format!("layer_norm {what} must be [{h}], got {t}"));
                    }
                }
                Ok(x.clone())
            }
            Op::Reduce {
                kind,
                axes,
                keep_dims,
            } => {
                expect_arity(self, operands, 1)?;
                let x = operands[0];
                if *kind == ReduceKind::Mean {
                    expect_float("reduce_mean operand", x)?;
                }
                if x.dtype == DType::Bool {
                    return err("reduction of bool operand");
                }
                if axes.windows(2).any(|w| w[0] >= w[1]) {
                    return err(format!("reduce axes {axes:?} must be ascending and unique"));
                }
                for &a in axes {
                    expect_axis(a, x)?;
                }
                let shape = x
                    .shape
                    .iter()
                    .enumerate()
                    .filter_map(|(i, &d)| match (axes.contains(&i), keep_dims) {
                        (false, _) => Some(d),
                        (true, true) => Some(1),
                        (true, false) => None,
                    })
                    .collect::<Vec<_>>();
                Ok(TensorType::new(x.dtype, shape))
            }
            Op::Reshape { shape } => {
                expect_arity(self, operands, 1)?;
                let x = operands[0];
                let n = shape
                    .iter()
                    .try_fold(1usize, |a, &d| a.checked_mul(d))
                    .ok_or_else(|| TypeError("reshape target has too many elements".into()))?;
                if n != x.num_elements() {
                    return err(format!(
                        "reshape of {x} ({} elements) to {} ({n} elements)",
                        x.num_elements(),
                        crate::types::shape_string(shape)
                    ));
                }
                Ok(TensorType::new(x.dtype, shape.clone()))
            }
            Op::Transpose { perm } => {
                expect_arity(self, operands, 1)?;
                let x = operands[0];
                let mut seen = vec![false; x.rank()];
                if perm.len() != x.rank() {
                    return err(format!("transpose perm {perm:?} does not fit {x}"));
                }
                for &p in perm {
                    if p >= x.rank() || seen[p] {
                        return err(format!("transpose perm {perm:?} is not a permutation"));
                    }
                    seen[p] = true;
                }
                Ok(TensorType::new(
                    x.dtype,
                    perm.iter().map(|&p| x.shape[p]).collect::<Vec<_>>(),
                ))
            }
            Op::BroadcastTo { shape } => {
                expect_arity(self, operands, 1)?;
                let x = operands[0];
                if !crate::types::broadcasts_to(&x.shape, shape) {
                    return err(format!(
                        "{x} does not broadcast to {}",
                        crate::types::shape_string(shape)
                    ));
                }
                Ok(TensorType::new(x.dtype, shape.clone()))
            }
            Op::Slice { axis, start, end } => {
                expect_arity(self, operands, 1)?;
                let x = operands[0];
                expect_axis(*axis, x)?;
                if start >= end || *end > x.shape[*axis] {
                    return err(format!(
                        "slice {start}..{end} out of range for axis {axis} of {x}"
                    ));
                }
                let mut shape = x.shape.clone();
                shape[*axis] = end - start;
                Ok(TensorType::new(x.dtype, shape))
            }
            Op::Pad {
                axis,
                before,
                after,
            } => {
                expect_arity(self, operands, 1)?;
                let x = operands[0];
                expect_axis(*axis, x)?;
                let mut shape = x.shape.clone();
                shape[*axis] = before
                    .checked_add(*after)
                    .and_then(|p| p.checked_add(shape[*axis]))
                    .ok_or_else(|| TypeError("pad extent overflows".into()))?;
                Ok(TensorType::new(x.dtype, shape))
            }
            Op::Concat { axis } => {
                if operands.is_empty() {
                    return err("concat needs at least one operand");
                }
                let first = operands[0];
                expect_axis(*axis, first)?;
                let mut shape = first.shape.clone();
                for t in &operands[1..] {
                    expect_same_dtype(first, t)?;
                    let compatible = t.rank() == first.rank()
                        && (0..t.rank()).all(|i| i == *axis || t.shape[i] == first.shape[i]);
                    if !compatible {
                        return err(format!(
                            "concat operands {first} and {t} differ off axis {axis}"
                        ));
                    }
                    shape[*axis] = shape[*axis]
                        .checked_add(t.shape[*axis])
                        .ok_or_else(|| TypeError("concat extent overflows".into()))?;
                }
                Ok(TensorType::new(first.dtype, shape))
            }
            Op::Cast { to } => {
                expect_arity(self, operands, 1)?;
                Ok(operands[0].with_dtype(*to))
            }
        }
    }
}

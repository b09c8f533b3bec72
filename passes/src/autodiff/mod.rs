//! Reverse-mode automatic differentiation of a scalar loss, emitted as IR nodes.
//!
//! [`autodiff`] takes a forward graph with a scalar floating-point output (the loss) and
//! returns a graph that computes the loss and the gradient of the loss with respect to
//! every parameter from which it is reachable. The backward computation is made of
//! ordinary IR ops, added through [`Graph::add`] so that every backward node is
//! type-checked when it is built; the result passes [`tessera_ir::verify()`], and every later
//! pass (mixed precision, recomputation, pipelining, lowering) sees one plain graph.
//!
//! How it works:
//! 1. Only the loss output is kept: the forward graph's other outputs are dropped, and the
//!    nodes that fed only them are removed at the end ([`Graph::remove_dead`]). Forward
//!    nodes keep their ids.
//! 2. A forward sweep in topological order marks the values that depend on a
//!    floating-point parameter through floating-point values ("needs a gradient"). Inputs,
//!    constants and integer/boolean values never need one, so nothing flows through
//!    indices, masks or comparisons.
//! 3. A reverse sweep seeds `d loss = seed_scale` (the hook for static loss scaling) and,
//!    for every node that needs a gradient, sums the gradient contributions of its users
//!    and applies the node's rule (module `rules`: one per op, matched exhaustively) to get
//!    contributions for its operands. A parameter used several times gets the sum. A
//!    `gather {padding_idx=p}` gives row `p` of its table no gradient, as torch's
//!    `nn.Embedding(padding_idx)` does (the attribute is part of the op, so the graph says it).
//! 4. The outputs become `loss` (the loss output, under its own name) followed by
//!    `grad.<param name>` for every parameter that received a gradient, in parameter
//!    creation order; dead nodes are removed (debug builds also verify the result).
//!
//! Backward nodes are scoped under their forward node's scope with a trailing
//! `backward` component ([`is_backward_scope`]). The pass is linear in the graph size.

mod error;
mod options;
mod rules;
#[cfg(test)]
mod tests;

pub use error::AutodiffError;
pub use options::AutodiffOptions;

use crate::emit::Emitter;
use error::{build_error, printed_name, rule_error};
use rules::{RuleError, Site};
use std::collections::{HashMap, HashSet};
use tessera_ir::{Graph, IrError, NodeId, Op, Output};

/// The scope component that marks backward nodes.
pub const BACKWARD: &str = "backward";

/// The prefix of gradient output names (`grad.<param name>`).
pub const GRAD_PREFIX: &str = "grad.";

/// True when `scope` is the scope of a backward node (its last component is `backward`).
pub fn is_backward_scope(scope: &str) -> bool {
    scope.rsplit('.').next() == Some(BACKWARD)
}

/// The scope of the backward nodes of a forward node in `scope`.
pub fn backward_scope(scope: &str) -> String {
    if scope.is_empty() {
        BACKWARD.to_string()
    } else {
        format!("{scope}.{BACKWARD}")
    }
}

/// Differentiates the loss output of `graph` with respect to every parameter it depends
/// on; see the module documentation for the resulting graph's outputs.
pub fn autodiff(graph: &Graph, opts: &AutodiffOptions) -> Result<Graph, AutodiffError> {
    opts.check()?;
    let loss = graph
        .output(&opts.loss)
        .map_err(|_| AutodiffError::NoLoss {
            graph: graph.name.clone(),
            name: opts.loss.clone(),
            available: graph
                .outputs()
                .iter()
                .map(|o| o.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    if !graph.contains(loss) {
        return Err(AutodiffError::DanglingLoss {
            graph: graph.name.clone(),
            name: opts.loss.clone(),
        });
    }
    let loss_node = graph.node(loss);
    if loss_node.ty.rank() != 0 || !loss_node.ty.dtype.is_float() {
        return Err(AutodiffError::LossNotScalar {
            name: opts.loss.clone(),
            node: printed_name(graph, loss),
            scope: loss_node.scope.clone(),
            ty: loss_node.ty.clone(),
        });
    }

    let mut g = graph.clone();
    g.set_outputs(vec![Output {
        name: opts.loss.clone(),
        node: loss,
    }]);
    // Dead forward nodes are removed only at the end, so that backward nodes never reuse
    // their ids: forward nodes keep their ids and come first in creation order.
    let live = g.live_set();
    let order: Vec<NodeId> = g
        .topo_order()
        .into_iter()
        .filter(|n| live.contains(n))
        .collect();
    let operands: HashMap<NodeId, Vec<NodeId>> =
        order.iter().map(|&n| (n, g.operands(n))).collect();
    let needs = needs_gradient(&g, &order, &operands);

    let mut pending: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    let mut param_grads: HashMap<NodeId, NodeId> = HashMap::new();
    if needs.contains(&loss) {
        let scope = backward_scope(&g.node(loss).scope);
        let seed = Emitter::new(&mut g, scope)
            .full(opts.seed_scale, loss_node.ty.clone())
            .map_err(|e| build_error(graph, loss, e))?;
        pending.insert(loss, vec![seed]);
    }
    for &n in order.iter().rev() {
        let Some(contributions) = pending.remove(&n) else {
            continue;
        };
        let node = g.node(n);
        let scope = backward_scope(&node.scope);
        let is_param = matches!(node.op, Op::Param { .. });
        let dy = sum_all(&mut g, &scope, &contributions).map_err(|e| build_error(graph, n, e))?;
        if is_param {
            param_grads.insert(n, dy);
            continue;
        }
        let xs = operands.get(&n).cloned().unwrap_or_default();
        let site = Site::new(&g, n, xs, dy, |x| needs.contains(&x));
        let mut em = Emitter::new(&mut g, scope);
        let grads = rules::vjp(&mut em, &site).map_err(|e| match e {
            RuleError::Ir(source) => build_error(graph, n, source),
            RuleError::Unsupported(reason) => rule_error(graph, n, reason),
        })?;
        for (i, (&x, grad)) in site.xs.iter().zip(grads).enumerate() {
            let Some(grad) = grad else { continue };
            let (want, got) = (&g.node(x).ty, &g.node(grad).ty);
            if want != got {
                let reason = format!("gradient of operand {i} has type {got}, expected {want}");
                return Err(rule_error(graph, n, reason));
            }
            pending.entry(x).or_default().push(grad);
        }
    }

    let mut outputs = vec![Output {
        name: opts.loss.clone(),
        node: loss,
    }];
    for p in g.params() {
        if let (Some(&grad), Op::Param { name, .. }) = (param_grads.get(&p), &g.node(p).op) {
            outputs.push(Output {
                name: format!("{GRAD_PREFIX}{name}"),
                node: grad,
            });
        }
    }
    g.set_outputs(outputs);
    g.remove_dead();
    // Every node was added through `Graph::add`, so the result is well-typed by
    // construction; debug builds (and so every test) verify it anyway. In release builds
    // the pass manager's verification after each pass is not duplicated here (it would
    // double the pass's time on LXMERT-base).
    #[cfg(debug_assertions)]
    tessera_ir::verify(&g)?;
    Ok(g)
}

/// The nodes that need a gradient: floating-point parameters and floating-point values
/// computed from one.
fn needs_gradient(
    g: &Graph,
    order: &[NodeId],
    operands: &HashMap<NodeId, Vec<NodeId>>,
) -> HashSet<NodeId> {
    let mut needs = HashSet::new();
    for &n in order {
        let node = g.node(n);
        if !node.ty.dtype.is_float() {
            continue;
        }
        let from_param = matches!(node.op, Op::Param { .. })
            || operands
                .get(&n)
                .is_some_and(|xs| xs.iter().any(|x| needs.contains(x)));
        if from_param {
            needs.insert(n);
        }
    }
    needs
}

/// Adds the gradient contributions of a node's users (one node per extra contribution).
fn sum_all(g: &mut Graph, scope: &str, contributions: &[NodeId]) -> Result<NodeId, IrError> {
    let mut em = Emitter::new(g, scope);
    let mut iter = contributions.iter().copied();
    let Some(mut acc) = iter.next() else {
        return Err(IrError::DanglingOperand {
            op: "add",
            scope: scope.to_string(),
        });
    };
    for c in iter {
        acc = em.add(acc, c)?;
    }
    Ok(acc)
}

//! The graph builder: resolves the names of a [`GraphDecl`] and creates its nodes in
//! textual order through the checked API ([`Graph::input`], [`Graph::add`]; parameters get
//! the same checks with a hash set for their names, see `add_node`).
//!
//! Every node's declared result type must equal the type its op infers; the builder also
//! rejects redefinitions, uses of unknown values and uses before the definition, and result
//! types too large to be safe (see [`check_shape`]). Each error points at the offending
//! token.

use super::ast::{GraphDecl, NodeDecl, Trailer, ValueKey};
use super::attrs::build_op;
use super::lex::Pos;
use super::parse::check_shape;
use super::ParseError;
use crate::error::IrError;
use crate::graph::{Annotations, Graph, NodeId};
use crate::op::Op;
use std::collections::{HashMap, HashSet};

fn annotations(t: &Trailer<'_>) -> Annotations {
    Annotations {
        stage: t.stage,
        recompute: t.recompute,
    }
}

/// Checks that `key` is not yet defined.
fn check_fresh(
    values: &HashMap<ValueKey<'_>, NodeId>,
    key: &ValueKey<'_>,
    pos: Pos,
) -> Result<(), ParseError> {
    if values.contains_key(key) {
        return Err(pos.error(format!("redefinition of {}", key.display())));
    }
    Ok(())
}

/// Adds a node through [`Graph::add`]; a parameter is checked the same way (its type by
/// [`crate::Op::infer`], its name for uniqueness) but against a hash set of the names seen
/// so far, since `Graph::add` scans every node for a name clash, which is quadratic over a
/// whole file.
fn add_node(
    g: &mut Graph,
    params: &mut HashSet<String>,
    op: Op,
    operands: &[NodeId],
    node: &NodeDecl<'_>,
) -> Result<NodeId, ParseError> {
    let scope = node.trailer.scope.to_string();
    let Op::Param { name, .. } = &op else {
        return g
            .add(op, operands, scope)
            .map_err(|e| node.op_pos.error(e.to_string()));
    };
    let pos = node.literal.as_ref().map_or(node.op_pos, |(_, p)| *p);
    let operand_types: Vec<_> = operands.iter().map(|&o| &g.node(o).ty).collect();
    let ty = op.infer(&operand_types).map_err(|source| {
        let e = IrError::IllTyped {
            op: op.name(),
            scope: scope.clone(),
            source,
        };
        node.op_pos.error(e.to_string())
    })?;
    if !params.insert(name.clone()) {
        let e = IrError::DuplicateName {
            kind: "param",
            name: name.clone(),
        };
        return Err(pos.error(e.to_string()));
    }
    Ok(g.add_unchecked(op, &[], ty, scope))
}

/// Builds the graph a syntax tree describes.
pub(crate) fn build(decl: &GraphDecl<'_>) -> Result<Graph, ParseError> {
    let mut g = Graph::new(decl.name.as_ref());
    let mut values: HashMap<ValueKey<'_>, NodeId> = HashMap::with_capacity(decl.nodes.len());

    for input in &decl.inputs {
        let key = ValueKey::Named(input.name.clone());
        check_fresh(&values, &key, input.pos)?;
        let id = g
            .input(&input.name, input.ty.clone())
            .map_err(|e| input.pos.error(e.to_string()))?;
        let node = g.node_mut(id);
        node.scope = input.trailer.scope.to_string();
        node.annot = annotations(&input.trailer);
        values.insert(key, id);
    }

    let mut params = HashSet::new();
    let mut first_def: HashMap<&ValueKey<'_>, Pos> = HashMap::with_capacity(decl.nodes.len());
    for node in &decl.nodes {
        first_def.entry(&node.result).or_insert(node.pos);
    }
    let lookup = |values: &HashMap<ValueKey<'_>, NodeId>, key: &ValueKey<'_>, pos: Pos| {
        values
            .get(key)
            .copied()
            .ok_or_else(|| match first_def.get(key) {
                Some(def) => pos.error(format!(
                    "{} is used before its definition on line {}",
                    key.display(),
                    def.line
                )),
                None => pos.error(format!("unknown value {}", key.display())),
            })
    };

    for node in &decl.nodes {
        check_fresh(&values, &node.result, node.pos)?;
        let mut operands = Vec::with_capacity(node.operands.len());
        for (key, pos) in &node.operands {
            operands.push(lookup(&values, key, *pos)?);
        }
        let op = build_op(
            node.op,
            node.op_pos,
            &node.attrs,
            node.literal.as_ref(),
            &node.ty,
        )?;
        let id = add_node(&mut g, &mut params, op, &operands, node)?;
        let inferred = &g.node(id).ty;
        check_shape(&inferred.shape, "inferred result type", node.op_pos)?;
        if *inferred != node.ty {
            return Err(node.ty_pos.error(format!(
                "declared type {} differs from inferred type {inferred}",
                node.ty
            )));
        }
        g.node_mut(id).annot = annotations(&node.trailer);
        values.insert(node.result.clone(), id);
    }

    for out in &decl.outputs {
        let id = lookup(&values, &out.value, out.value_pos)?;
        g.set_output(&out.name, id)
            .map_err(|e| out.pos.error(e.to_string()))?;
    }
    Ok(g)
}

//! Planning the products whose weights are laid out for them, before anything is allocated:
//! which products are fused, which share a weight layout, and their splits.
//!
//! - **Sibling products** — `Linear` layers on one chip reading the same activation `A`
//!   with transposed weights `[N_j, K]`, such as an attention layer's query, key and value —
//!   are fused (XLA's horizontal fusion of sibling dots): one product of `A` by the weights
//!   concatenated along `N`, so that `A` is broadcast to the tiles once rather than once per
//!   product, and the tiles share one split. Each product keeps its own result value (and
//!   liveness); all are computed when the first of them is lowered.
//! - **Shared weights.** A weight read by several products (LXMERT's cross-attention runs in
//!   both directions with one set of weights) is laid out once, on one grid of blocks (the
//!   same column and contraction blocks) chosen for all of its readers together, so that
//!   each reads it in place; each keeps its own row blocks. Fused groups whose weights are
//!   read by other fused groups (the cross-attention's query of one direction with the key
//!   and value of the other read one activation) share the grid the same way when the
//!   groups read the same set of weights; otherwise their products are planned one by one.
//!
//! [`crate::lower::program::LowerOptions::fuse_matmuls`] turns both off: then only a weight
//! read by one product is laid out for it.

use super::split::choose_shared;
use super::weights::{Member, MmPlan, PlannedWeight};
use super::{MmShape, Split};
use crate::lower::error::LowerError;
use crate::lower::program::lowering::Ctx;
use tessera_ir::{NodeId, Op};
use tessera_runtime::vertex::Elem;

/// An eligible product: the matmul and its shape.
type Product = (NodeId, MmShape);

/// What makes products siblings: the same `A`, chip, sizes and element types.
type SiblingKey = (NodeId, u32, u64, u64, Elem, Elem, Elem);

/// The weights of a group, sorted.
fn weight_set(group: &[Product]) -> Vec<NodeId> {
    let mut v: Vec<NodeId> = group.iter().map(|p| p.1.b).collect();
    v.sort();
    v
}

/// Groups that share weights, transitively (indices into `sets`, in order of first group).
fn components(sets: &[Vec<NodeId>]) -> Vec<Vec<usize>> {
    let mut seen = vec![false; sets.len()];
    let mut out = Vec::new();
    for first in 0..sets.len() {
        if seen[first] {
            continue;
        }
        seen[first] = true;
        let mut comp = vec![first];
        let mut at = 0;
        while let Some(&g) = comp.get(at) {
            at += 1;
            for (h, set) in sets.iter().enumerate() {
                if !seen[h] && set.iter().any(|w| sets[g].contains(w)) {
                    seen[h] = true;
                    comp.push(h);
                }
            }
        }
        comp.sort_unstable();
        out.push(comp);
    }
    out
}

/// Splits `groups` into clusters planned together: the groups of each component that all
/// read the same weights, each group's products in its first group's weight order; a
/// component whose groups read different weight sets is planned product by product.
fn clusters(groups: Vec<Vec<Product>>) -> Vec<Vec<Vec<Product>>> {
    let sets: Vec<Vec<NodeId>> = groups.iter().map(|g| weight_set(g)).collect();
    let comps = components(&sets);
    let mut slots: Vec<Option<Vec<Product>>> = groups.into_iter().map(Some).collect();
    let mut out = Vec::new();
    for comp in comps {
        let mut taken: Vec<Vec<Product>> = comp
            .iter()
            .filter_map(|&g| slots.get_mut(g).and_then(Option::take))
            .collect();
        let uniform = comp.iter().all(|&g| sets[g] == sets[comp[0]]);
        if uniform {
            let order: Vec<NodeId> = taken
                .first()
                .map(|g| g.iter().map(|p| p.1.b).collect())
                .unwrap_or_default();
            for g in &mut taken {
                g.sort_by_key(|p| order.iter().position(|&w| w == p.1.b));
            }
            out.push(taken);
        } else {
            // Product by product: the readers of each weight share its grid.
            let singles: Vec<Vec<Product>> = taken.into_iter().flatten().map(|p| vec![p]).collect();
            out.extend(clusters(singles));
        }
    }
    out
}

/// Columns of a fused group so far: the next member's first column.
fn next_col(cols: &[Member]) -> u64 {
    cols.last().map_or(0, |m| m.col + m.n)
}

impl Ctx<'_> {
    /// Plans every eligible matmul (fusing siblings, sharing weight grids) and lays out its
    /// weights; returns the weights' layouts and blocks by parameter node. Must run before
    /// any other allocation.
    pub(crate) fn plan_weights(
        &mut self,
        order: &[NodeId],
        gather_tables: &[NodeId],
    ) -> Result<Vec<PlannedWeight>, LowerError> {
        let mut groups: Vec<(Option<SiblingKey>, Vec<Product>)> = Vec::new();
        for &id in order {
            if !matches!(self.graph.node(id).op, Op::MatMul { .. }) {
                continue;
            }
            let sh = self.mm_shape(id)?;
            if !self.weight_eligible(id, &sh, gather_tables)? {
                continue;
            }
            let key = (self.opts.fuse_matmuls && sh.tb && sh.dims.batches == 1).then_some((
                sh.a,
                self.chip(id)?,
                sh.dims.m,
                sh.dims.k,
                sh.input,
                sh.partials,
                sh.out,
            ));
            // A group reads each weight once (a repeated product stays apart).
            let found = groups
                .iter_mut()
                .find(|g| key.is_some() && g.0 == key && g.1.iter().all(|p| p.1.b != sh.b))
                .map(|g| &mut g.1);
            match found {
                Some(members) => members.push((id, sh)),
                None => groups.push((key, vec![(id, sh)])),
            }
        }
        let mut out = Vec::new();
        for cluster in clusters(groups.into_iter().map(|g| g.1).collect()) {
            out.extend(self.plan_cluster(&cluster)?);
        }
        Ok(out)
    }

    /// Whether the weight `sh.b` of product `id` can be laid out for its readers: a
    /// parameter (not a gather table or an output) read once as the right operand of
    /// `Linear`-style products only — one, or with fusion on, several on `id`'s chip with
    /// `id`'s transpose and element types.
    fn weight_eligible(
        &self,
        id: NodeId,
        sh: &MmShape,
        gather_tables: &[NodeId],
    ) -> Result<bool, LowerError> {
        let w = sh.b;
        let linear = |s: &MmShape| s.b == w && s.a != w && s.fold && s.b_batch.is_empty();
        let param = matches!(self.graph.node(w).op, Op::Param { .. });
        if !param || !linear(sh) || gather_tables.contains(&w) || self.is_output(w) {
            return Ok(false);
        }
        let users = self.graph.users(w);
        if self.use_count(w) != users.len() {
            return Ok(false);
        }
        if users.len() == 1 {
            return Ok(true);
        }
        if !self.opts.fuse_matmuls {
            return Ok(false);
        }
        let chip = self.chip(id)?;
        for &u in &users {
            if !matches!(self.graph.node(u).op, Op::MatMul { .. }) {
                return Ok(false);
            }
            let s = self.mm_shape(u)?;
            if !(linear(&s)
                && s.tb == sh.tb
                && (s.input, s.partials, s.out) == (sh.input, sh.partials, sh.out)
                && self.chip(u)? == chip)
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Plans a cluster: groups of products reading the same weights (in the same order), on
    /// one grid of weight blocks chosen for all of them, laid out for the first group; when
    /// no grid fits every group, the first group's split lays out the weights and the
    /// others fetch their blocks.
    fn plan_cluster(&mut self, groups: &[Vec<Product>]) -> Result<Vec<PlannedWeight>, LowerError> {
        // Each group as one product over its weights concatenated (the same ones, in the
        // same order, for every group of the cluster).
        let planned: Vec<(Vec<Member>, MmShape)> = groups
            .iter()
            .filter_map(|g| {
                let mut sh = g.first()?.1.clone();
                let mut cols = Vec::with_capacity(g.len());
                for (id, s) in g {
                    cols.push(Member {
                        id: *id,
                        col: next_col(&cols),
                        n: s.dims.n,
                    });
                }
                sh.dims.n = next_col(&cols);
                Some((cols, sh))
            })
            .collect();
        let Some((cols, sh)) = planned.first().cloned() else {
            return Ok(Vec::new());
        };
        let Some(lead) = cols.first().map(|m| m.id) else {
            return Ok(Vec::new());
        };
        let splits: Vec<Split> = if groups.len() > 1 {
            let dims: Vec<_> = planned.iter().map(|(_, s)| s.dims).collect();
            choose_shared(&dims, &self.costing(&sh))
        } else {
            None
        }
        .unwrap_or_else(|| vec![self.choose(&sh, true)]);
        let chip = self.chip(lead)?;
        let items = planned
            .iter()
            .zip(&splits)
            .map(|((_, s), sp)| {
                let (cm, cn, ck) = sp.counts(&s.dims);
                s.dims.batches * cm * cn * ck
            })
            .max()
            .unwrap_or(1);
        let start = u64::from(
            self.b
                .reserve_tiles(chip, items.min(u64::from(self.b.tiles))),
        );
        for (i, (members, _)) in planned.iter().enumerate() {
            if let (Some(split), Some(m)) = (splits.get(i), members.first()) {
                let plan = MmPlan {
                    split: *split,
                    start,
                };
                self.mm_plans.insert(m.id, plan);
            }
            if members.len() > 1 {
                for m in members {
                    self.mm_groups.insert(m.id, members.clone());
                }
            }
        }
        let weights: Vec<(NodeId, String)> = groups
            .iter()
            .take(1)
            .flatten()
            .map(|(_, s)| (s.b, self.label(s.b)))
            .collect();
        let split = splits.first().copied().unwrap_or(Split {
            bm: 1,
            bn: 1,
            bk: 1,
        });
        self.weight_blocks(&sh, &split, chip, start, &cols, &weights)
    }
}

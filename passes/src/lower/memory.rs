//! Static per-tile memory planning with liveness.
//!
//! Every value of the graph is mapped linearly over the tiles of its chip (its pipeline
//! stage, `annot.stage`, default 0). Values that live for the whole program — graph
//! inputs, parameters, constants and graph outputs — are *always-live*: each tile gives
//! them fixed offsets from 0 up, in topological order. Every other value is
//! *not-always-live*: it is allocated when its node runs (in [`Graph::topo_order`]) and its
//! bytes are freed after its last user has run, so later values reuse them (first-fit on a
//! per-tile free list above the always-live region). Each tile's peak is its always-live
//! bytes plus the high-water mark of its not-always-live region; a tile whose peak exceeds
//! the target's `bytes_per_tile` is out of memory.
//!
//! This is bookkeeping only: no tensor memory is allocated.

use super::alloc::FirstFit;
use super::error::{LowerError, OutOfMemory, TileTensor};
use super::mapping::{default_grain, default_min_elements, map_linearly_with_offset, TileMapping};
use super::PlanOptions;
use std::collections::{HashMap, HashSet};
use tessera_ir::{Graph, NodeId, Op};
use tessera_target::Target;

/// One value's piece on one tile, with its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// The tile, numbered within the value's chip.
    pub tile: u32,
    /// First element of the flattened value held here.
    pub start: u64,
    /// One past the last element held here.
    pub end: u64,
    /// Byte offset of the piece in the tile's memory.
    pub offset: u64,
    /// Bytes reserved for the piece (its elements' bytes rounded up to the alignment).
    pub bytes: u64,
}

/// Where one value lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuePlan {
    /// The node that defines the value.
    pub node: NodeId,
    /// Its printed name (`%k` or `%feed`).
    pub name: String,
    /// The chip it lives on.
    pub chip: u32,
    /// Whether it lives for the whole program.
    pub always_live: bool,
    /// Topological position of its definition.
    pub def: usize,
    /// Topological position of its last use (its definition when it has no user).
    pub last_use: usize,
    /// Its linear tile mapping.
    pub mapping: TileMapping,
    /// Its pieces with their offsets, in element order.
    pub pieces: Vec<Piece>,
}

/// Memory use of one tile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TileUsage {
    /// Bytes of always-live values.
    pub always_live: u64,
    /// High-water mark of the not-always-live region (what it must reserve).
    pub not_always_live: u64,
    /// Largest sum of simultaneously live not-always-live bytes (≤ `not_always_live`;
    /// the difference is fragmentation).
    pub peak_live: u64,
    /// Peak total: `always_live + not_always_live`.
    pub peak: u64,
}

/// The static memory plan of a graph on a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryPlan {
    /// Bytes per tile of the target.
    pub capacity: u64,
    /// Per chip, per tile usage: `tiles[chip][tile]`.
    pub tiles: Vec<Vec<TileUsage>>,
    /// Every value, in topological order.
    pub values: Vec<ValuePlan>,
    /// The worst out-of-memory tile, when `allow_oom` let the plan through.
    pub oom: Option<OutOfMemory>,
}

impl MemoryPlan {
    /// The value defined by `node`, if planned.
    pub fn value(&self, node: NodeId) -> Option<&ValuePlan> {
        self.values.iter().find(|v| v.node == node)
    }

    /// Usage of `tile` on `chip`, if both exist.
    pub fn tile(&self, chip: u32, tile: u32) -> Option<&TileUsage> {
        self.tiles.get(chip as usize)?.get(tile as usize)
    }

    /// The largest peak of any tile: `(chip, tile, usage)`.
    pub fn max_tile(&self) -> Option<(u32, u32, TileUsage)> {
        let mut best: Option<(u32, u32, TileUsage)> = None;
        for (c, tiles) in self.tiles.iter().enumerate() {
            for (t, u) in tiles.iter().enumerate() {
                if best.is_none_or(|(_, _, b)| u.peak > b.peak) {
                    best = Some((c as u32, t as u32, *u));
                }
            }
        }
        best
    }
}

fn is_always_live(op: &Op) -> bool {
    matches!(
        op,
        Op::Input { .. } | Op::Param { .. } | Op::Full { .. } | Op::Iota { .. }
    )
}

fn align(bytes: u64, alignment: u64) -> u64 {
    bytes.div_ceil(alignment).saturating_mul(alignment)
}

/// Plans every tile's static memory for `graph` on `target` (see the module docs).
///
/// Errors: [`LowerError::NoTiles`] for a target without tiles,
/// [`LowerError::InvalidOption`] for a zero alignment, and [`LowerError::OutOfMemory`] for
/// the tile with the largest peak when it exceeds `bytes_per_tile`, unless
/// `opts.allow_oom`, in which case the plan is returned with [`MemoryPlan::oom`] set.
pub fn plan_memory(
    graph: &Graph,
    target: &Target,
    opts: &PlanOptions,
) -> Result<MemoryPlan, LowerError> {
    let tiles = target.tiles_per_chip;
    if tiles == 0 {
        return Err(LowerError::NoTiles {
            target: target.name.clone(),
        });
    }
    if opts.alignment == 0 {
        return Err(LowerError::InvalidOption {
            option: "alignment",
            reason: "must be at least 1 byte".into(),
        });
    }
    let order = graph.topo_order();
    let pos: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let names = graph.value_names();
    let outputs: HashSet<NodeId> = graph.outputs().iter().map(|o| o.node).collect();
    let num_chips = order
        .iter()
        .map(|&n| graph.node(n).annot.stage.unwrap_or(0))
        .max()
        .map_or(1, |s| s as usize + 1);

    // Map every value and record its liveness.
    let mut next_tile = vec![0u32; num_chips];
    let mut values = Vec::with_capacity(order.len());
    for (def, &id) in order.iter().enumerate() {
        let node = graph.node(id);
        let chip = node.annot.stage.unwrap_or(0);
        let elem_bytes = node.ty.dtype.size_bytes() as u64;
        let grain = default_grain(&node.ty.shape, elem_bytes, tiles);
        let start_tile = next_tile.get(chip as usize).copied().unwrap_or(0);
        let mapping = map_linearly_with_offset(
            node.ty.num_elements() as u64,
            elem_bytes,
            tiles,
            grain,
            default_min_elements(elem_bytes),
            if opts.rotate { start_tile } else { 0 },
        );
        if let (Some(last), Some(slot)) =
            (mapping.intervals.last(), next_tile.get_mut(chip as usize))
        {
            *slot = (last.tile + 1) % tiles;
        }
        let last_use = graph
            .users(id)
            .iter()
            .filter_map(|u| pos.get(u).copied())
            .max()
            .unwrap_or(def)
            .max(def);
        let pieces = mapping
            .intervals
            .iter()
            .map(|i| Piece {
                tile: i.tile,
                start: i.start,
                end: i.end,
                offset: 0,
                bytes: align(i.len().saturating_mul(elem_bytes), opts.alignment),
            })
            .collect();
        values.push(ValuePlan {
            node: id,
            name: names.get(&id).cloned().unwrap_or_else(|| format!("{id:?}")),
            chip,
            always_live: is_always_live(&node.op) || outputs.contains(&id),
            def,
            last_use,
            mapping,
            pieces,
        });
    }

    let mut usage = vec![vec![TileUsage::default(); tiles as usize]; num_chips];
    // Always-live values: fixed offsets, bumped per tile.
    for v in values.iter_mut().filter(|v| v.always_live) {
        let Some(chip) = usage.get_mut(v.chip as usize) else {
            continue;
        };
        for p in &mut v.pieces {
            if let Some(u) = chip.get_mut(p.tile as usize) {
                p.offset = u.always_live;
                u.always_live = u.always_live.saturating_add(p.bytes);
            }
        }
    }
    // Not-always-live values: liveness scan with a first-fit allocator per tile.
    let mut arenas = vec![vec![FirstFit::default(); tiles as usize]; num_chips];
    let mut dies_at: Vec<Vec<usize>> = vec![Vec::new(); order.len()];
    for (i, v) in values.iter().enumerate() {
        if !v.always_live {
            if let Some(d) = dies_at.get_mut(v.last_use) {
                d.push(i);
            }
        }
    }
    for step in 0..values.len() {
        if let Some(v) = values.get_mut(step).filter(|v| !v.always_live) {
            let (Some(arena), Some(chip)) =
                (arenas.get_mut(v.chip as usize), usage.get(v.chip as usize))
            else {
                continue;
            };
            for p in &mut v.pieces {
                if let (Some(a), Some(u)) =
                    (arena.get_mut(p.tile as usize), chip.get(p.tile as usize))
                {
                    p.offset = u.always_live.saturating_add(a.alloc(p.bytes));
                }
            }
        }
        // Operands whose last use is this step, and this value if it has no user, die now.
        for &dead in dies_at.get(step).map(Vec::as_slice).unwrap_or(&[]) {
            let Some(v) = values.get(dead) else { continue };
            let (Some(arena), Some(chip)) =
                (arenas.get_mut(v.chip as usize), usage.get(v.chip as usize))
            else {
                continue;
            };
            for p in &v.pieces {
                if let (Some(a), Some(u)) =
                    (arena.get_mut(p.tile as usize), chip.get(p.tile as usize))
                {
                    a.free(p.offset.saturating_sub(u.always_live), p.bytes);
                }
            }
        }
    }
    for (chip, arena) in usage.iter_mut().zip(&arenas) {
        for (u, a) in chip.iter_mut().zip(arena) {
            u.not_always_live = a.peak_end;
            u.peak_live = a.peak_live;
            u.peak = u.always_live.saturating_add(a.peak_end);
        }
    }

    let mut plan = MemoryPlan {
        capacity: target.bytes_per_tile,
        tiles: usage,
        values,
        oom: None,
    };
    if let Some((chip, tile, u)) = plan.max_tile() {
        if u.peak > target.bytes_per_tile {
            let oom = OutOfMemory {
                chip,
                tile,
                used: u.peak,
                capacity: target.bytes_per_tile,
                code_bytes: 0,
                vertex_state_bytes: 0,
                largest: largest_on(&plan, graph, chip, tile, opts.report_largest),
                largest_vertices: Vec::new(),
                at_peak: Vec::new(),
            };
            if !opts.allow_oom {
                return Err(LowerError::OutOfMemory(Box::new(oom)));
            }
            plan.oom = Some(oom);
        }
    }
    Ok(plan)
}

/// The `n` largest values on `tile` of `chip`, largest first (ties by topological order).
fn largest_on(plan: &MemoryPlan, graph: &Graph, chip: u32, tile: u32, n: usize) -> Vec<TileTensor> {
    let mut on: Vec<TileTensor> = plan
        .values
        .iter()
        .filter(|v| v.chip == chip)
        .filter_map(|v| {
            let bytes: u64 = v
                .pieces
                .iter()
                .filter(|p| p.tile == tile)
                .map(|p| p.bytes)
                .sum();
            (bytes > 0).then(|| TileTensor {
                name: v.name.clone(),
                scope: graph.node(v.node).scope.clone(),
                bytes,
            })
        })
        .collect();
    on.sort_by_key(|t| std::cmp::Reverse(t.bytes));
    on.truncate(n);
    on
}

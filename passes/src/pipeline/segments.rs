//! What a stage would cost if it held units `a..b`: the figures automatic placement
//! searches over.
//!
//! **Per unit.** The graph is costed once by `tessera-cost` with every unit on a stage of
//! its own ([`unit_costs`]): forward and backward cycles (recomputation and gradient
//! accumulation included), the optimizer step, weights, gradients, on-chip optimizer
//! state, code and vertex state (less the per-tile code every chip carries once), the
//! stash of one micro-batch and the peak of temporaries.
//!
//! **Per segment** ([`Table`]): sums of the units' figures, except the temporaries (the
//! largest unit's peak: units of a stage run one after the other) and the code every
//! chip carries once; a segment on stage `s` of `P` keeps its stash for
//! `min(2(P−1−s)+1, G)` micro-batches (the cost model's `stash_copies`). Its inter-chip
//! traffic is recomputed from the graph's edges: a value produced outside the segment and
//! read inside is received once per micro-batch (as an activation if a forward node reads
//! it, else as a gradient), a value produced inside and read outside is sent once.
//!
//! **Time** ([`Table::step_s`]): the terms of `tessera_cost::predict_throughput`, per
//! segment — compute plus copies over the IPU-Links and their syncs per micro-batch; the
//! optimizer step (sharded with replicated tensor sharding, plus streaming its state with
//! `optimizer_state_offchip`); the ring all-reduce of the segment's gradients across
//! replicas — combined as `(G+P−1)·max t + max t_opt + max t_allreduce`. A test checks this
//! against `predict_throughput` itself; the chosen placement is then costed on the real
//! placed graph, so these sums only need to rank candidates.

use super::traffic::{traffic, Transfer};
use super::PipelineError;
use crate::layers::Units;
use tessera_cost::graph::stash_copies;
use tessera_cost::{graph_cost, CostOptions};
use tessera_ir::Graph;
use tessera_target::Target;

/// Per-unit figures (index = unit).
#[derive(Debug, Clone, Default)]
pub(crate) struct UnitCosts {
    /// Forward + backward cycles per micro-batch.
    pub cycles: Vec<u64>,
    /// FLOPs per micro-batch (forward + backward).
    pub flops: Vec<u64>,
    /// Optimizer compute + exchange cycles.
    pub opt_work: Vec<u64>,
    /// Optimizer sync cycles.
    pub opt_sync: Vec<u64>,
    /// Optimizer state bytes before sharding.
    pub state: Vec<u64>,
    /// Gradient bytes of trained parameters.
    pub grads: Vec<u64>,
    /// Trained weight bytes.
    pub weights: Vec<u64>,
    /// Always-live bytes: weights, gradients, on-chip state, the unit's code and vertex state.
    pub fixed: Vec<u64>,
    /// Stash of one micro-batch.
    pub stash: Vec<u64>,
    /// Peak temporaries.
    pub temp: Vec<u64>,
    /// Per-tile code every chip carries once, bytes.
    pub chip_code: u64,
}

/// Costs every unit as a stage of its own.
pub(crate) fn unit_costs(
    graph: &Graph,
    units: &Units,
    target: &Target,
    opts: &CostOptions,
) -> Result<UnitCosts, PipelineError> {
    let mut g = graph.clone();
    for id in graph.node_ids() {
        g.node_mut(id).annot.stage = units.unit_of(id).map(|u| u as u32);
    }
    let n = units.len().max(1);
    let mut o = opts.clone();
    o.pipeline.stages = n as u32;
    let cost = graph_cost(&g, target, &o)?;
    let chip_code = opts
        .assumptions
        .code_bytes_per_tile
        .saturating_mul(u64::from(target.tiles_per_chip));
    let mut c = UnitCosts {
        chip_code,
        ..UnitCosts::default()
    };
    for s in cost.stages.iter().take(units.len()) {
        let m = &s.memory;
        c.cycles.push(
            s.forward
                .cycles
                .total()
                .saturating_add(s.backward.cycles.total()),
        );
        c.flops
            .push(s.forward.flops.saturating_add(s.backward.flops));
        c.opt_work.push(
            s.optimizer
                .cycles
                .compute
                .saturating_add(s.optimizer.cycles.exchange),
        );
        c.opt_sync.push(s.optimizer.cycles.sync);
        c.state.push(s.optimizer_state_bytes);
        c.grads.push(s.gradient_bytes);
        c.weights.push(s.trained_weight_bytes);
        let code = m.code_and_vertex_state.saturating_sub(chip_code);
        c.fixed.push(
            m.weights
                .saturating_add(m.gradients)
                .saturating_add(m.optimizer_state)
                .saturating_add(code),
        );
        c.stash.push(m.stash_per_micro_batch);
        c.temp.push(m.temporaries_peak);
    }
    Ok(c)
}

/// Per-segment figures for every segment `a..b` of `n` units, and the settings that turn
/// them into times.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    /// Units.
    pub n: usize,
    /// Stages.
    pub p: u32,
    /// Seconds per micro-batch (compute and copies), per segment.
    time: Vec<f64>,
    /// Optimizer step seconds, per segment.
    opt: Vec<f64>,
    /// All-reduce seconds, per segment.
    allreduce: Vec<f64>,
    /// Always-live bytes plus peak temporaries plus chip code, per segment.
    base: Vec<u64>,
    /// Stash of one micro-batch, per segment.
    stash: Vec<u64>,
    /// Pipeline cycles per step, `G + P − 1`.
    pub pipeline_cycles: f64,
    /// Samples per step `B·G·R`.
    pub samples_per_step: f64,
    /// Micro-batches per step.
    grad_accum: u32,
    /// Chip capacity, bytes.
    pub capacity: u64,
}

impl Table {
    /// Builds the table for `p` stages.
    pub fn new(
        costs: &UnitCosts,
        transfers: &[Transfer],
        target: &Target,
        opts: &CostOptions,
    ) -> Table {
        let n = costs.cycles.len();
        let cfg = &opts.pipeline;
        let p = cfg.stages.max(1);
        let r = cfg.replicas.max(1);
        let shards = if cfg.replicated_tensor_sharding && r > 1 {
            f64::from(r)
        } else {
            1.0
        };
        let secs = |cycles: f64| target.cycles_to_seconds(cycles);
        let link = target.link_bytes_per_s * f64::from(opts.assumptions.links_per_copy.max(1));
        let overhead = f64::from(target.exchange_overhead_cycles);
        let copy_sync = if p > 1 {
            2.0 * secs(target.inter_chip_sync_cycles(p) as f64 + overhead)
        } else {
            0.0
        };
        let ar_sync = if r > 1 {
            2.0 * f64::from(r - 1) * secs(target.inter_chip_sync_cycles(p * r) as f64 + overhead)
        } else {
            0.0
        };
        let prefix = |v: &[u64]| {
            let mut out = vec![0u64; v.len() + 1];
            for (i, x) in v.iter().enumerate() {
                out[i + 1] = out[i].saturating_add(*x);
            }
            out
        };
        let (cyc, ow, os, st, gr, wt, fx, sh) = (
            prefix(&costs.cycles),
            prefix(&costs.opt_work),
            prefix(&costs.opt_sync),
            prefix(&costs.state),
            prefix(&costs.grads),
            prefix(&costs.weights),
            prefix(&costs.fixed),
            prefix(&costs.stash),
        );
        let size = (n + 1) * (n + 1);
        let mut t = Table {
            n,
            p,
            time: vec![0.0; size],
            opt: vec![0.0; size],
            allreduce: vec![0.0; size],
            base: vec![0; size],
            stash: vec![0; size],
            pipeline_cycles: cfg.pipeline_cycles() as f64,
            samples_per_step: cfg.samples_per_step() as f64,
            grad_accum: cfg.grad_accum,
            capacity: target.bytes_per_chip(),
        };
        for a in 0..n {
            let mut temp = 0u64;
            for b in a + 1..=n {
                temp = temp.max(costs.temp.get(b - 1).copied().unwrap_or(0));
                let i = a * (n + 1) + b;
                let sum = |v: &[u64]| v[b].saturating_sub(v[a]);
                let (rf, rb, sf, sb) = traffic(transfers, a as u32, b as u32);
                let copy_s = if p > 1 {
                    (rf.max(sf) + rb.max(sb)) as f64 / link + copy_sync
                } else {
                    0.0
                };
                t.time[i] = secs(sum(&cyc) as f64) + copy_s;
                let mut opt = secs(sum(&ow) as f64 / shards + sum(&os) as f64);
                if cfg.optimizer_state_offchip && sum(&st) > 0 && target.streaming_bytes_per_s > 0.0
                {
                    opt += 2.0 * (sum(&st) as f64 / shards).ceil() / target.streaming_bytes_per_s;
                }
                t.opt[i] = opt;
                t.allreduce[i] = if r > 1 {
                    let rf = f64::from(r);
                    let moved = if shards > 1.0 {
                        (rf - 1.0) / rf * (sum(&gr) + sum(&wt)) as f64
                    } else {
                        2.0 * (rf - 1.0) / rf * sum(&gr) as f64
                    };
                    moved / link + ar_sync
                } else {
                    0.0
                };
                t.base[i] = sum(&fx)
                    .saturating_add(temp)
                    .saturating_add(costs.chip_code);
                t.stash[i] = sum(&sh);
            }
        }
        t
    }

    fn idx(&self, a: usize, b: usize) -> usize {
        a * (self.n + 1) + b
    }

    /// Seconds per micro-batch of segment `a..b`.
    pub fn time(&self, a: usize, b: usize) -> f64 {
        self.time
            .get(self.idx(a, b))
            .copied()
            .unwrap_or(f64::INFINITY)
    }

    /// Optimizer seconds of segment `a..b`.
    pub fn opt(&self, a: usize, b: usize) -> f64 {
        self.opt
            .get(self.idx(a, b))
            .copied()
            .unwrap_or(f64::INFINITY)
    }

    /// All-reduce seconds of segment `a..b`.
    pub fn allreduce(&self, a: usize, b: usize) -> f64 {
        self.allreduce
            .get(self.idx(a, b))
            .copied()
            .unwrap_or(f64::INFINITY)
    }

    /// Bytes segment `a..b` needs on stage `s`.
    pub fn memory(&self, a: usize, b: usize, s: u32) -> u64 {
        let i = self.idx(a, b);
        let copies = stash_copies(s, self.p, self.grad_accum);
        match (self.base.get(i), self.stash.get(i)) {
            (Some(&base), Some(&stash)) => base.saturating_add(stash.saturating_mul(copies)),
            _ => u64::MAX,
        }
    }

    /// Step seconds from the maxima of the three terms.
    pub fn step_s(&self, max_time: f64, max_opt: f64, max_allreduce: f64) -> f64 {
        self.pipeline_cycles * max_time + max_opt + max_allreduce
    }

    /// Predicted samples per second for a step of `step_s` seconds.
    pub fn samples_per_s(&self, step_s: f64) -> f64 {
        if step_s > 0.0 {
            self.samples_per_step / step_s
        } else {
            f64::INFINITY
        }
    }

    /// Step seconds of the partition starting its stages at `starts` (first 0).
    pub fn evaluate(&self, starts: &[usize]) -> f64 {
        let (mut t, mut o, mut r) = (0.0f64, 0.0f64, 0.0f64);
        for (s, &a) in starts.iter().enumerate() {
            let b = starts.get(s + 1).copied().unwrap_or(self.n);
            t = t.max(self.time(a, b));
            o = o.max(self.opt(a, b));
            r = r.max(self.allreduce(a, b));
        }
        self.step_s(t, o, r)
    }
}

//! Criterion benchmarks of the tile lowering and the emulator on LXMERT:
//!
//! - `lower/lxmert-base-fwd-4chips`: graph → tile programs for lxmert-base forward (batch 1,
//!   seq 20, 36 objects, f32) on 4 Mk2 chips;
//! - `run/lxmert-base-fwd-4chips`: one execution of that plan on the emulator (weights already
//!   in tile memory), to compare with PyTorch's ≈ 0.25 s for the same forward on this machine
//!   (`../shared/fixtures/README.md`); the target is at most 2× that;
//! - `run/lxmert-tiny-fwd-1chip`: the same for lxmert-tiny, `...-traced` with the
//!   per-superstep trace on (`TraceMode::On`) and `...-tile-times` with per-tile times
//!   (`TraceMode::Tiles`).
//!
//! What tracing costs is too small for criterion's separate, back-to-back groups to resolve
//! on a shared machine (their noise is larger); `TILES_TRACE_COST=N` instead runs each plan N
//! times in each mode, interleaved (Off, On, Tiles, rotating which goes first), and prints
//! the min and median per mode before timing, e.g.
//! `TILES_TRACE_COST=200 cargo bench -p tessera-passes --bench tiles -- nothing`. It also
//! prints the calibration of the fused phase's split (`TraceMode::On` divides a fused
//! exchange + compute phase by estimated work: the measured nanoseconds per delivered byte
//! over those per unit of compute work, summed over the per-tile times). `TILES_SKIP_BASE=1`
//! skips lxmert-base (its lowering needs ~3 GB and a minute). With `TILES_TRACE_COST`, the
//! fullest tile by data alone and with its code and vertex state (what the lowering's memory
//! check counts) is printed too.
//!
//! Before timing, each plan's outputs are checked against the reference evaluator (1e-5
//! relative), so the benchmark never times a wrong program.
//!
//! Profiling (nothing is timed by criterion differently): with `TILES_PROFILE=N` set, each
//! plan's shape (vertices by kind, exchange copies) and the per-phase times of N traced runs
//! (the fastest of each phase) and the process CPU time per run are printed before timing, e.g.
//! `TILES_PROFILE=5 cargo bench -p tessera-passes --bench tiles -- nothing`; with
//! `TILES_DUMP=/tmp/out` also every output's bytes to `/tmp/out.<plan>`, to compare two builds
//! bit for bit.
//!
//! Stages are assigned by a simple balance of matmul FLOPs in topological order (the pipeline
//! pass's placement needs the compile driver; any placement exercises the same emulator).

use criterion::{criterion_group, criterion_main, Criterion};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tessera_ir::{Graph, NodeId, Op, Tensor};
use tessera_passes::lower::program::{
    code_state, lower_program, LowerOptions, TilePlan, TileSession,
};
use tessera_runtime::TraceMode;

fn build(preset: &str) -> (Graph, HashMap<String, Tensor>, HashMap<String, Tensor>) {
    let config = tessera_lxmert::LxmertConfig::preset(preset).unwrap();
    let shapes = tessera_lxmert::Shapes {
        batch: 1,
        seq_len: 20,
        num_objects: 36,
    };
    let g =
        tessera_lxmert::build(&config, &shapes, &tessera_lxmert::BuildOptions::default()).unwrap();
    let params: HashMap<String, Tensor> = tessera_lxmert::init_weights(&config, 0)
        .into_iter()
        .collect();
    let mut inputs = HashMap::new();
    for id in g.inputs() {
        if let Op::Input { name, ty } = &g.node(id).op {
            let n = ty.num_elements();
            let t = match ty.dtype {
                tessera_ir::DType::I64 => Tensor::from_i64(
                    ty.shape.to_vec(),
                    (0..n as i64).map(|i| (i * 7 + 1) % 2).collect(),
                ),
                _ => Tensor::from_f32(
                    ty.shape.to_vec(),
                    (0..n).map(|i| ((i * 37 % 101) as f32) / 101.0).collect(),
                ),
            }
            .unwrap();
            inputs.insert(name.clone(), t);
        }
    }
    (g, params, inputs)
}

/// Stages by cumulative matmul FLOPs in topological order; sources follow their first user.
fn place(g: &mut Graph, stages: u32) {
    let order = g.topo_order();
    let cost = |g: &Graph, n: NodeId| -> u64 {
        match g.node(n).op {
            Op::MatMul { .. } => g.node(n).ty.num_elements() as u64 * 64,
            _ => g.node(n).ty.num_elements() as u64,
        }
    };
    let total: u64 = order.iter().map(|&n| cost(g, n)).sum();
    let mut acc = 0;
    for &n in &order {
        acc += cost(g, n);
        let s = ((acc * u64::from(stages)) / total.max(1)).min(u64::from(stages) - 1) as u32;
        g.node_mut(n).annot.stage = Some(s);
    }
    for &n in &order {
        if g.operands(n).is_empty() {
            let first = g
                .users(n)
                .iter()
                .filter_map(|&u| g.node(u).annot.stage)
                .min()
                .unwrap_or(0);
            g.node_mut(n).annot.stage = Some(first);
        }
    }
}

fn session(
    plan: &TilePlan,
    g: &Graph,
    params: &HashMap<String, Tensor>,
    inputs: &HashMap<String, Tensor>,
) -> TileSession {
    let start = std::time::Instant::now();
    let mut s = TileSession::new(plan).unwrap();
    if std::env::var_os("TILES_PROFILE").is_some() {
        println!("session (validation and schedule): {:?}", start.elapsed());
    }
    s.load(params).unwrap();
    let (got, _) = s.run(inputs, TraceMode::Off).unwrap();
    let want = tessera_ir::eval::evaluate(g, inputs, params).unwrap();
    for (name, w) in &want {
        let e = got[name].rel_max_err(w).unwrap();
        assert!(e < 1e-5, "{name}: relative error {e}");
    }
    s
}

/// With `TILES_PROFILE` set: the plan's shape (vertices by kind, exchange copies) and the
/// per-phase time of a few traced runs (the fastest of each phase), printed before timing;
/// with `TILES_DUMP`, the outputs' bytes written to a file (see the module docs).
fn profile(name: &str, plan: &TilePlan, s: &mut TileSession, inputs: &HashMap<String, Tensor>) {
    if std::env::var_os("TILES_PROFILE").is_none() {
        return;
    }
    let p = &plan.step;
    let mut kinds: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    let (mut copies, mut bytes, mut small) = (0u64, 0u64, 0u64);
    for step in &p.supersteps {
        for tc in &step.compute {
            for v in &tc.vertices {
                let e = kinds.entry(v.kind()).or_default();
                e.0 += 1;
                e.1 += v.flops();
            }
        }
        for x in &step.exchange {
            copies += 1;
            bytes += u64::from(x.src.region.len);
            small += u64::from(x.src.region.len <= 64);
        }
    }
    println!("{name}: {} supersteps", p.supersteps.len());
    for (k, (n, f)) in &kinds {
        println!("  {k:>12}: {n:>8} vertices, {:>8.3} GFLOP", *f as f64 / 1e9);
    }
    println!("  exchange: {copies} copies ({small} of <= 64 B), {bytes} bytes");
    if let Some(path) = std::env::var_os("TILES_DUMP") {
        // Every output's bytes, in name order, for a bit-for-bit comparison between builds.
        let (out, _) = s.run(inputs, TraceMode::Off).unwrap();
        let mut names: Vec<&String> = out.keys().collect();
        names.sort();
        let mut bytes = Vec::new();
        for n in names {
            bytes.extend(tessera_passes::lower::program::tensor_bytes(&out[n]));
        }
        std::fs::write(std::path::Path::new(&path).with_extension(name), bytes).unwrap();
    }
    let runs: usize = std::env::var("TILES_PROFILE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut best = [Duration::MAX; 5];
    let cpu0 = cpu_ticks();
    for _ in 0..runs {
        let start = std::time::Instant::now();
        let (_, t) = s.run(inputs, TraceMode::On).unwrap();
        let total = start.elapsed();
        let sum = |f: fn(&tessera_runtime::SuperstepTrace) -> Duration| {
            t.supersteps.iter().map(f).sum::<Duration>()
        };
        let phases = [
            total,
            sum(|x| x.host_to_tile),
            sum(|x| x.compute),
            sum(|x| x.exchange),
            sum(|x| x.tile_to_host),
        ];
        for (b, p) in best.iter_mut().zip(phases) {
            *b = (*b).min(p);
        }
    }
    if let (Some(a), Some(b)) = (cpu0, cpu_ticks()) {
        let ms = (b - a) as f64 * 10.0 / runs as f64;
        println!("  process cpu: {ms:.0} ms per run (user + system, all threads)");
    }
    let names = [
        "total",
        "host_to_tile",
        "compute",
        "exchange",
        "tile_to_host",
    ];
    for (n, b) in names.iter().zip(best) {
        println!(
            "  {n:>12}: {:>9.3} ms (best of {runs})",
            b.as_secs_f64() * 1e3
        );
    }
}

/// With `TILES_TRACE_COST=N`: N interleaved runs per trace mode, min and median printed,
/// then the fused phases' calibration (see the module docs).
fn trace_cost(name: &str, plan: &TilePlan, s: &mut TileSession, inputs: &HashMap<String, Tensor>) {
    let Some(n) = std::env::var("TILES_TRACE_COST")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return;
    };
    let modes = [TraceMode::Off, TraceMode::On, TraceMode::Tiles];
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(n); modes.len()];
    // Per recording mode: the fastest run's phase sums (compute, exchange, streams).
    let mut phases = [[Duration::MAX; 3]; 3];
    let mut last = None;
    for round in 0..n {
        for k in 0..modes.len() {
            let m = (round + k) % modes.len();
            let start = std::time::Instant::now();
            let (_, t) = s.run(inputs, modes[m]).unwrap();
            let wall = start.elapsed();
            if times[m].iter().all(|&b| wall < b) {
                let streams = t.supersteps.iter().map(|x| x.host_to_tile + x.tile_to_host);
                phases[m] = [t.compute_time(), t.exchange_time(), streams.sum()];
            }
            times[m].push(wall);
            if modes[m] == TraceMode::Tiles {
                last = Some(t);
            }
        }
    }
    // The memory check's view: the fullest tile by data alone (before code and vertex state
    // were counted) and with them.
    let code = code_state(&[&plan.load, &plan.step], plan.memory.len());
    let per_chip = plan.step.tiles_per_chip.max(1) as usize;
    let at = |i: usize| format!("tile {} of chip {}", i % per_chip, i / per_chip);
    let (data_i, data) = plan
        .memory
        .iter()
        .enumerate()
        .max_by_key(|(i, m)| (m.peak, std::cmp::Reverse(*i)))
        .map(|(i, m)| (i, m.peak))
        .unwrap_or((0, 0));
    let (all_i, all) = plan
        .memory
        .iter()
        .zip(&code)
        .enumerate()
        .max_by_key(|(i, (m, c))| (m.peak + c.total(), std::cmp::Reverse(*i)))
        .map(|(i, (m, c))| (i, m.peak + c.total()))
        .unwrap_or((0, 0));
    let c = code.get(all_i).copied().unwrap_or_default();
    println!(
        "{name}: fullest tile by data {data} bytes ({}); with code and vertex state {all} bytes ({}: {} of code for {} codelets, {} of vertex state)",
        at(data_i),
        at(all_i),
        c.code,
        c.codelets,
        c.vertex_state
    );
    println!("{name}: trace cost, {n} interleaved runs per mode");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut base = (0.0, 0.0);
    // Paired: each round's On and Tiles run against the same round's Off run (drift in the
    // machine's load cancels), median of the ratios.
    let paired: Vec<f64> = (1..modes.len())
        .map(|m| {
            let mut r: Vec<f64> = times[m]
                .iter()
                .zip(&times[0])
                .map(|(x, off)| x.as_secs_f64() / off.as_secs_f64())
                .collect();
            r.sort_by(f64::total_cmp);
            r.get(r.len() / 2).copied().unwrap_or(1.0)
        })
        .collect();
    for ((mode, t), ph) in modes.iter().zip(&mut times).zip(phases) {
        t.sort();
        let (min, med) = (ms(t[0]), ms(t[t.len() / 2]));
        if *mode == TraceMode::Off {
            base = (min, med);
        }
        let split = if mode.records() {
            format!(
                "; fastest run: compute {:.3}, exchange {:.3}, streams {:.3} ms",
                ms(ph[0]),
                ms(ph[1]),
                ms(ph[2])
            )
        } else {
            String::new()
        };
        let pair = match modes.iter().position(|m| m == mode) {
            Some(i) if i > 0 => paired.get(i - 1).map_or(String::new(), |r| {
                format!(", paired median {:+.1} %", (r - 1.0) * 100.0)
            }),
            _ => String::new(),
        };
        println!(
            "  {:>6}: min {min:>9.3} ms ({:+.1} %), median {med:>9.3} ms ({:+.1} %){pair}{split}",
            format!("{mode:?}"),
            (min / base.0 - 1.0) * 100.0,
            (med / base.1 - 1.0) * 100.0
        );
    }
    let Some(trace) = last else { return };
    let records: usize = trace.supersteps.iter().map(|x| x.tiles.len()).sum();
    let fused = trace.supersteps.iter().filter(|x| x.fused).count();
    let exchanging: usize = trace
        .supersteps
        .iter()
        .filter(|x| x.exchange_bytes > 0)
        .count();
    println!(
        "  {} supersteps ({exchanging} with exchange, {fused} of them fused with the next compute), {records} per-tile records",
        trace.supersteps.len()
    );
    // Fused phases: delivery ns per byte against compute ns per work unit (the runtime's
    // units: flops + written bytes + 1024 per vertex).
    let (mut d_ns, mut d_bytes, mut c_ns, mut c_work) = (0u64, 0u64, 0u64, 0u64);
    let (mut d_n, mut c_n) = (0u64, 0u64);
    let steps = &plan.step.supersteps;
    for (i, rec) in trace.supersteps.iter().enumerate() {
        let (Some(next), Some(next_step)) = (trace.supersteps.get(i + 1), steps.get(i + 1)) else {
            continue;
        };
        if !rec.fused {
            continue;
        }
        d_ns += rec
            .tiles
            .iter()
            .map(|t| u64::from(t.exchange_ns))
            .sum::<u64>();
        d_n += rec.tiles.iter().filter(|t| t.exchange_ns > 0).count() as u64;
        d_bytes += rec.exchange_bytes;
        c_ns += next
            .tiles
            .iter()
            .map(|t| u64::from(t.compute_ns))
            .sum::<u64>();
        c_n += next.tiles.iter().filter(|t| t.compute_ns > 0).count() as u64;
        for tc in &next_step.compute {
            for v in &tc.vertices {
                c_work += v.flops() + written(v) + 1024;
            }
        }
    }
    if d_bytes > 0 && c_work > 0 {
        // Every measured interval holds one clock read: take its cost off.
        let clock = clock_read_ns();
        let per_byte = (d_ns as f64 - clock * d_n as f64).max(0.0) / d_bytes as f64;
        let per_unit = (c_ns as f64 - clock * c_n as f64).max(0.0) / c_work as f64;
        println!(
            "  fused phases ({d_n} deliveries, {c_n} compute sets; {clock:.1} ns per clock read taken off each): delivery {per_byte:.4} ns/byte, compute {per_unit:.4} ns/unit: {:.2} units per delivered byte",
            per_byte / per_unit
        );
    }
}

/// The cost of one `Instant::now()` on this machine, ns (the best of a few batches).
fn clock_read_ns() -> f64 {
    (0..5)
        .map(|_| {
            let n = 100_000;
            let start = std::time::Instant::now();
            let mut last = start;
            for _ in 0..n {
                last = std::hint::black_box(std::time::Instant::now());
            }
            (last - start).as_nanos() as f64 / n as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// Bytes a vertex writes (as the runtime's work estimate counts them).
fn written(v: &tessera_runtime::Vertex) -> u64 {
    use tessera_runtime::Vertex as V;
    let r = match v {
        V::MatMul(mm) => mm.c,
        V::Unary { dst, .. }
        | V::Binary { dst, .. }
        | V::AddPartials { dst, .. }
        | V::Cast { dst, .. }
        | V::Fill { dst, .. }
        | V::Copy { dst, .. }
        | V::Softmax { dst, .. }
        | V::LayerNorm { dst, .. }
        | V::Gather { dst, .. }
        | V::Compare { dst, .. }
        | V::Select { dst, .. }
        | V::ReduceRows { dst, .. }
        | V::ReduceCols { dst, .. }
        | V::ScatterAdd { dst, .. }
        | V::Expand { dst, .. } => *dst,
    };
    u64::from(r.len)
}

/// User + system CPU ticks (1/100 s) of this process so far, from `/proc/self/stat`.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn bench(c: &mut Criterion) {
    let mk2 = tessera_target::target::presets::mk2();
    let mut group = c.benchmark_group("tiles");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));

    let (g, params, inputs) = build("lxmert-tiny");
    let plan = lower_program(&g, &mk2, &LowerOptions::default()).unwrap();
    let mut s = session(&plan, &g, &params, &inputs);
    profile("lxmert-tiny-fwd-1chip", &plan, &mut s, &inputs);
    trace_cost("lxmert-tiny-fwd-1chip", &plan, &mut s, &inputs);
    group.bench_function("run/lxmert-tiny-fwd-1chip", |b| {
        b.iter(|| s.run(&inputs, TraceMode::Off).unwrap())
    });
    // The same with the per-superstep trace on (the profiler's input): its cost.
    group.bench_function("run/lxmert-tiny-fwd-1chip-traced", |b| {
        b.iter(|| s.run(&inputs, TraceMode::On).unwrap())
    });
    group.bench_function("run/lxmert-tiny-fwd-1chip-tile-times", |b| {
        b.iter(|| s.run(&inputs, TraceMode::Tiles).unwrap())
    });
    if std::env::var_os("TILES_SKIP_BASE").is_some() {
        group.finish();
        return;
    }

    let (mut g, params, inputs) = build("lxmert-base");
    place(&mut g, 4);
    let opts = LowerOptions {
        chips: 4,
        ..LowerOptions::default()
    };
    group.bench_function("lower/lxmert-base-fwd-4chips", |b| {
        b.iter(|| lower_program(&g, &mk2, &opts).unwrap())
    });
    let plan = lower_program(&g, &mk2, &opts).unwrap();
    let mut s = session(&plan, &g, &params, &inputs);
    profile("lxmert-base-fwd-4chips", &plan, &mut s, &inputs);
    trace_cost("lxmert-base-fwd-4chips", &plan, &mut s, &inputs);
    group.bench_function("run/lxmert-base-fwd-4chips", |b| {
        b.iter(|| s.run(&inputs, TraceMode::Off).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The human-readable summary (`summary.txt`): aligned tables of totals, throughput, the
//! pipeline schedule of a pipelined plan ([`pipeline`]), top compute sets, vertex kinds and
//! labels, per-chip memory ([`memory`]), busiest tiles and, with per-tile times, the measured
//! tile balance ([`tiles`]). It depends only on the profile, and
//! shows wall-clock figures only when the profile holds measurements, so the summary of a
//! plan is deterministic (golden-testable).

mod memory;
mod pipeline;
mod tiles;

use crate::fmt::{bytes, clip, pct, seconds, thousands, Table};
use crate::model::Profile;
use std::fmt::Write;

/// Longest label printed in a table cell.
const LABEL_WIDTH: usize = 60;

/// Renders the summary of `p`.
pub fn summary_text(p: &Profile) -> String {
    let mut s = String::new();
    header(p, &mut s);
    totals(p, &mut s);
    pipeline::section(p, &mut s);
    tops(p, &mut s);
    memory::section(p, &mut s);
    tiles(p, &mut s);
    tiles::section(p, &mut s);
    s
}

fn header(p: &Profile, s: &mut String) {
    let m = &p.machine;
    let _ = writeln!(
        s,
        "Tessera profile: {} on {} ({} chip(s) x {} tiles, {} per tile, {:.3} GHz)",
        if p.meta.model.is_empty() {
            "(unnamed model)"
        } else {
            &p.meta.model
        },
        m.target,
        m.chips,
        m.tiles_per_chip,
        bytes(m.bytes_per_tile as f64),
        m.clock_hz / 1e9
    );
    let mut settings = vec![format!("batch={}", p.meta.batch)];
    settings.extend(p.meta.settings.iter().map(|(k, v)| format!("{k}={v}")));
    let _ = writeln!(s, "settings: {}", settings.join(", "));
    if let Some(o) = &p.oom {
        let _ = writeln!(
            s,
            "OUT OF MEMORY: chip {} tile {} needs {} bytes (of which code and vertex state {}), capacity {} bytes",
            o.chip,
            o.tile,
            thousands(o.used_bytes),
            thousands(o.code_vertex_state_bytes),
            thousands(o.capacity_bytes)
        );
    }
}

fn totals(p: &Profile, s: &mut String) {
    let t = &p.totals;
    let clock = p.machine.clock_hz;
    let time = |c: u64| seconds(if clock > 0.0 { c as f64 / clock } else { 0.0 });
    if p.pipeline.is_some() {
        let _ = writeln!(
            s,
            "\nEstimated pass of one micro-batch through every segment, one after another (cost model, {} supersteps; the pipelined step is below)",
            t.supersteps
        );
    } else {
        let _ = writeln!(
            s,
            "\nEstimated step (cost model, {} supersteps)",
            t.supersteps
        );
    }
    let mut tab = Table::new(&["phase", "cycles", "share", "time"]);
    for (name, c, sh) in [
        ("compute", t.compute_cycles, t.compute_share),
        ("exchange", t.exchange_cycles, t.exchange_share),
        ("sync", t.sync_cycles, t.sync_share),
    ] {
        tab.row(vec![name.into(), thousands(c), pct(sh), time(c)]);
    }
    tab.row(vec![
        "total".into(),
        thousands(t.total_cycles),
        pct(1.0),
        time(t.total_cycles),
    ]);
    s.push_str(&tab.render());
    let kinds: Vec<String> = t
        .vertices_by_kind
        .iter()
        .map(|(k, n)| format!("{k} {}", thousands(*n)))
        .collect();
    let _ = writeln!(
        s,
        "  vertices: {} ({})",
        thousands(t.vertices),
        kinds.join(", ")
    );
    let _ = writeln!(s, "  flops: {}", thousands(t.flops));
    let _ = writeln!(
        s,
        "  exchange: {} bytes, of which inter-chip {} bytes; host streams: {} bytes in, {} bytes out",
        thousands(t.exchange_bytes),
        thousands(t.inter_chip_bytes),
        thousands(t.host_to_tile_bytes),
        thousands(t.tile_to_host_bytes)
    );
    let th = &p.throughput;
    match (&p.pipeline, th.samples_per_second) {
        (Some(_), _) => {
            let _ = writeln!(s, "  throughput: see the pipeline schedule below");
        }
        (None, Some(sps)) => {
            let _ = writeln!(
                s,
                "  throughput: batch {} per step of {} = {:.1} samples/s (predicted)",
                th.batch,
                seconds(th.step_seconds),
                sps
            );
        }
        (None, None) => {
            let _ = writeln!(s, "  throughput: no cycles in the step, no prediction");
        }
    }
    if p.pipeline.is_none() {
        let _ = writeln!(s, "  pipeline utilisation: no pipeline schedule in this plan (chips run their stages one after another)");
    }
    if let Some(m) = &t.measured {
        let what = if p.pipeline.is_some() {
            "every segment run of the step, summed; "
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "\nMeasured on the emulator ({what}host wall time, not target time)"
        );
        let mut tab = Table::new(&["phase", "time"]);
        for (name, v) in [
            ("host to tile", m.host_to_tile_seconds),
            ("compute", m.compute_seconds),
            ("exchange", m.exchange_seconds),
            ("tile to host", m.tile_to_host_seconds),
            ("total", m.total_seconds),
        ] {
            tab.row(vec![name.into(), seconds(v)]);
        }
        s.push_str(&tab.render());
    }
}

fn tops(p: &Profile, s: &mut String) {
    let _ = writeln!(
        s,
        "\nTop compute sets (supersteps by busiest-tile compute cycles)"
    );
    let mut tab = Table::new(&[
        "step",
        "label",
        "cycles",
        "of compute",
        "tiles",
        "balance",
        "chips",
    ])
    .left(1);
    for t in &p.top_compute_sets {
        let st = p.supersteps.get(t.index as usize);
        let (tiles, bal, chips) = st.map_or((0, 0.0, String::new()), |st| {
            let c: Vec<String> = st.chips.iter().map(u32::to_string).collect();
            (
                st.balance.computing_tiles,
                st.balance.efficiency_computing,
                c.join(","),
            )
        });
        tab.row(vec![
            t.index.to_string(),
            clip(&t.label, LABEL_WIDTH),
            thousands(t.compute_cycles),
            pct(t.share_of_compute),
            thousands(tiles),
            pct(bal),
            chips,
        ]);
    }
    s.push_str(&tab.render());
    s.push_str("  (balance = mean / max compute cycles over the tiles that compute)\n");
    for (title, groups) in [
        (
            "Vertex kinds by cycles summed over tiles",
            &p.top_vertex_kinds,
        ),
        ("Labels by cycles summed over tiles", &p.top_labels),
    ] {
        let _ = writeln!(s, "\n{title}");
        let mut tab = Table::new(&["name", "vertices", "tile cycles", "share"]);
        for g in groups {
            tab.row(vec![
                clip(&g.name, LABEL_WIDTH),
                thousands(g.vertices),
                thousands(g.tile_cycles),
                pct(g.share),
            ]);
        }
        s.push_str(&tab.render());
    }
}

fn tiles(p: &Profile, s: &mut String) {
    let _ = writeln!(s, "\nBusiest tiles (compute cycles summed over the step)");
    let mut tab = Table::new(&[
        "chip",
        "tile",
        "compute cycles",
        "of step compute",
        "receive cycles",
        "vertices",
    ]);
    for t in &p.busiest_tiles {
        tab.row(vec![
            t.chip.to_string(),
            t.tile.to_string(),
            thousands(t.compute_cycles),
            pct(t.share_of_compute),
            thousands(t.receive_cycles),
            thousands(t.vertices),
        ]);
    }
    s.push_str(&tab.render());
    let h = &p.heatmap;
    let _ = writeln!(
        s,
        "\nPer-superstep detail: profile.json, trace.json (chrome://tracing, ui.perfetto.dev); heatmap buckets: {} tile(s) x {} superstep(s) per cell",
        h.tiles_per_bucket, h.steps_per_bucket
    );
}

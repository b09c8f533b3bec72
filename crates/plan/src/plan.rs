//! [`Plan`] and its (de)serialisation.

use crate::format::{header, seal, split, Fnv1a64, FORMAT_VERSION, HEADER_LEN};
use crate::{CompileReport, PlanError};
use serde::{Deserialize, Serialize};
use std::path::Path;
use tessera_ir::Graph;
use tessera_passes::lower::program::TilePlan;
use tessera_target::{IpuConfig, Target};

/// The model a plan was compiled from, so that a run of the plan can get the model's
/// default weights (a model directory's `model.safetensors`, or the seeded initialisation
/// of a preset or `config.json`) the way a run of the model does.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The MODEL argument: a preset name, or a path (made absolute when it existed).
    pub model: String,
    /// The seed of the random initialisation used when no weights are given.
    pub seed: u64,
}

/// A compiled plan (see the crate documentation).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// The format version the plan was made with ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// The placed graph.
    pub graph: Graph,
    /// The chip.
    pub target: Target,
    /// The IPU configuration as JSON (its `matmul_proportion` is a number or a list, which
    /// postcard cannot tell apart; JSON can).
    ipu_config_json: String,
    /// The compile report.
    pub report: CompileReport,
    /// What the plan was compiled from.
    pub source: Source,
    /// The tile program (forward plans; `None` for training plans, which the tile lowering
    /// does not cover yet).
    pub tiles: Option<TilePlan>,
}

impl Plan {
    /// A plan of the current format version, with no tile program and the source
    /// `report.settings.model` with seed 0 (set [`Plan::source`] and [`Plan::tiles`] after).
    pub fn new(
        graph: Graph,
        target: Target,
        ipu_config: &IpuConfig,
        report: CompileReport,
    ) -> Result<Plan, PlanError> {
        let ipu_config_json =
            serde_json::to_string(ipu_config).map_err(|e| PlanError::IpuConfig(e.to_string()))?;
        Ok(Plan {
            format_version: FORMAT_VERSION,
            graph,
            target,
            ipu_config_json,
            source: Source {
                model: report.settings.model.clone(),
                seed: 0,
            },
            report,
            tiles: None,
        })
    }

    /// The IPU configuration the plan was compiled with.
    pub fn ipu_config(&self) -> Result<IpuConfig, PlanError> {
        serde_json::from_str(&self.ipu_config_json).map_err(|e| PlanError::IpuConfig(e.to_string()))
    }

    /// The plan file's bytes: header and postcard payload.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PlanError> {
        let mut file = postcard::to_extend(self, vec![0u8; HEADER_LEN])
            .map_err(|e| PlanError::Encode(e.to_string()))?;
        seal(&mut file);
        Ok(file)
    }

    /// A plan from a plan file's bytes; `origin` names the file in errors.
    pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Plan, PlanError> {
        let payload = split(bytes, origin)?;
        let plan: Plan = postcard::from_bytes(payload).map_err(|e| PlanError::Decode {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        if plan.format_version != FORMAT_VERSION {
            return Err(PlanError::Version {
                origin: origin.to_string(),
                found: plan.format_version,
                supported: FORMAT_VERSION,
            });
        }
        Ok(plan)
    }

    /// Writes the plan to `path` atomically. The payload is encoded straight into the file
    /// (hashed on the way) and the header written last, so that a plan of several GB is
    /// never held in memory twice.
    pub fn save(&self, path: &Path) -> Result<(), PlanError> {
        tessera_ir::io::write_atomic_with(path, |file| {
            use std::io::{Seek, SeekFrom, Write};
            file.write_all(&[0u8; HEADER_LEN])?;
            let (len, sum) =
                self.encode_hashed(std::io::BufWriter::with_capacity(1 << 20, &mut *file))?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(&header(len, sum))
        })?;
        Ok(())
    }

    /// Encodes the payload into `out`, flushed; gives its length and checksum. A failed write
    /// is returned as itself (postcard alone would call any failure "the buffer is full").
    fn encode_hashed<W: std::io::Write>(&self, out: W) -> std::io::Result<(u64, u64)> {
        use std::io::Write;
        let mut w = HashingWriter {
            inner: out,
            hash: Fnv1a64::default(),
            len: 0,
            failure: None,
        };
        if let Err(e) = postcard::to_io(self, &mut w) {
            return Err(w
                .failure
                .take()
                .unwrap_or_else(|| std::io::Error::other(format!("encoding the plan: {e}"))));
        }
        w.flush()?;
        Ok((w.len, w.hash.finish()))
    }

    /// Reads the plan at `path`.
    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        let bytes = std::fs::read(path).map_err(|source| PlanError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Plan::from_bytes(&bytes, &path.display().to_string())
    }
}

/// A writer that counts and hashes what passes through it, and keeps the first write error
/// (postcard's encoder replaces it by one of its own).
struct HashingWriter<W> {
    inner: W,
    hash: Fnv1a64,
    len: u64,
    failure: Option<std::io::Error>,
}

impl<W: std::io::Write> std::io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = match self.inner.write(buf) {
            Ok(n) => n,
            Err(e) => {
                let kept = std::io::Error::new(e.kind(), e.to_string());
                self.failure.get_or_insert(e);
                return Err(kept);
            }
        };
        let done = buf.get(..n).unwrap_or(buf);
        self.hash.update(done);
        self.len += done.len() as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryRow, RunSettings, StageRow};
    use tessera_ir::{BinaryOp, DType, Op, TensorType};
    use tessera_target::MatmulProportion;

    fn sample() -> Plan {
        let mut g = Graph::new("p");
        let t = TensorType::new(DType::F16, vec![2, 3]);
        let x = g.input("x", t.clone()).unwrap();
        let w = g.param("m.w", t).unwrap();
        let y = g.add(Op::Binary(BinaryOp::Mul), &[x, w], "m").unwrap();
        g.node_mut(y).annot.stage = Some(1);
        g.node_mut(y).annot.recompute = true;
        g.set_output("y", y).unwrap();
        let cfg = IpuConfig {
            ipus_per_replica: 4,
            layers_per_ipu: vec![0, 9, 5, 5],
            matmul_proportion: MatmulProportion::PerIpu(vec![0.25, 0.3, 0.3, 0.3]),
            ..IpuConfig::default()
        };
        let report = CompileReport {
            settings: RunSettings {
                model: "toy".into(),
                train: true,
                shapes: vec![("seq_len".into(), 512)],
                ..RunSettings::default()
            },
            predicted_samples_per_second: 123.5,
            compile_seconds: 0.25,
            passes: Vec::new(),
            stages: vec![StageRow {
                stage: 0,
                contents: "m".into(),
                flops: 12,
                forward_flops: 6,
                backward_flops: 6,
                recompute_flops: 0,
                cycles: 100,
                time_s: 1e-6,
                memory_bytes: 10,
                capacity_bytes: 20,
                fits: true,
                memory: MemoryRow::default(),
            }],
            bottleneck_stage: 0,
            bottleneck_s: 1e-6,
            lower_bound_s: 1e-6,
            optimizer_s: 0.0,
            all_reduce_s: 0.0,
            step_s: 1e-5,
            hand_placement: None,
            recompute: None,
            nodes: 3,
            copies: 0,
            stashes: 0,
            warnings: vec!["w".into()],
        };
        Plan::new(g, Target::preset("mk2").unwrap(), &cfg, report).unwrap()
    }

    #[test]
    fn round_trips_through_bytes_and_files() {
        let plan = sample();
        let bytes = plan.to_bytes().unwrap();
        let back = Plan::from_bytes(&bytes, "<bytes>").unwrap();
        assert_eq!(
            tessera_ir::text::print(&back.graph),
            tessera_ir::text::print(&plan.graph)
        );
        assert_eq!(back.target, plan.target);
        assert_eq!(back.report, plan.report);
        assert_eq!(back.ipu_config().unwrap(), plan.ipu_config().unwrap());
        assert_eq!(
            back.ipu_config().unwrap().matmul_proportion,
            MatmulProportion::PerIpu(vec![0.25, 0.3, 0.3, 0.3])
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tsp");
        plan.save(&path).unwrap();
        // The streamed file (hashed while written, header last) is the in-memory encoding.
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        let loaded = Plan::load(&path).unwrap();
        assert_eq!(loaded.to_bytes().unwrap(), bytes);
        // Nothing but the plan is left in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn tile_program_and_source_round_trip() {
        let mut g = Graph::new("t");
        let t = TensorType::new(DType::F32, vec![4, 8]);
        let x = g.input("x", t.clone()).unwrap();
        let w = g.param("w", t).unwrap();
        let y = g.add(Op::Binary(BinaryOp::Add), &[x, w], "m").unwrap();
        g.set_output("y", y).unwrap();
        let target = Target::preset("mk2").unwrap();
        let tiles = tessera_passes::lower::program::lower_for(&g, &target, 1).unwrap();
        let mut plan = sample();
        assert_eq!(plan.source.model, "toy");
        assert!(plan.tiles.is_none());
        plan.source.seed = 42;
        plan.tiles = Some(tiles.clone());
        let back = Plan::from_bytes(&plan.to_bytes().unwrap(), "<bytes>").unwrap();
        assert_eq!(back.tiles, Some(tiles));
        assert_eq!(
            back.source,
            Source {
                model: "toy".into(),
                seed: 42
            }
        );
    }

    /// A writer that takes `room` bytes and then fails as a full disk does.
    struct FullDisk {
        room: usize,
    }

    impl std::io::Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.room == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_is_reported_as_such() {
        let plan = sample();
        let e = plan.encode_hashed(FullDisk { room: 10 }).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
        let (len, _) = plan.encode_hashed(FullDisk { room: usize::MAX }).unwrap();
        assert_eq!(len as usize, plan.to_bytes().unwrap().len() - HEADER_LEN);
    }

    #[test]
    fn plans_of_the_previous_format_are_refused_with_a_hint() {
        let mut bytes = sample().to_bytes().unwrap();
        bytes[7..11].copy_from_slice(&1u32.to_le_bytes());
        let e = Plan::from_bytes(&bytes, "v1.tsp").unwrap_err();
        assert!(matches!(e, PlanError::Version { found: 1, .. }), "{e}");
        assert!(e.to_string().contains("recompile"), "{e}");
    }

    #[test]
    fn bad_files_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.tsp");
        let e = Plan::load(&missing).unwrap_err();
        assert!(e.to_string().contains("none.tsp"), "{e}");
        let bytes = sample().to_bytes().unwrap();
        let cut = dir.path().join("cut.tsp");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let e = Plan::load(&cut).unwrap_err();
        assert!(matches!(e, PlanError::Truncated { .. }), "{e}");
        assert!(e.to_string().contains("cut.tsp: truncated plan"), "{e}");
        // A payload with a valid header and checksum that is not a plan.
        let junk = crate::format::join(&[0xff; 16]);
        let e = Plan::from_bytes(&junk, "junk.tsp").unwrap_err();
        assert!(matches!(e, PlanError::Decode { .. }), "{e}");
    }
}

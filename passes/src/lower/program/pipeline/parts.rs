//! What the pipelined lowering collects while it walks the segments, for assembling the
//! programs: boundary buffers, accumulators, each segment's stages and streams, the
//! optimizer's host tensors and the host buffer groups.

use crate::lower::program::builder::Stage;
use crate::lower::program::layout::Layout;
use crate::lower::program::HostTensor;
use tessera_ir::{NodeId, TensorType};
use tessera_runtime::program::{Exchange, StreamCopy};

/// Step-long buffers of one crossing value: one boundary buffer, or the stash ring.
pub(super) struct Boundary {
    /// Buffer ids (in the lowering's buffer table), one per slot.
    pub(super) bufs: Vec<usize>,
    pub(super) layouts: Vec<Layout>,
    pub(super) elem_bytes: u64,
}

/// A gradient output and its accumulator.
pub(super) struct Accumulator {
    pub(super) name: String,
    pub(super) node: NodeId,
    pub(super) seg: usize,
    pub(super) layout: Layout,
    pub(super) ty: TensorType,
    pub(super) buffer: u32,
}

/// What the segment loop collects for building the programs.
#[derive(Default)]
pub(super) struct SegmentParts {
    pub(super) stages: Vec<Stage>,
    pub(super) timeline: Vec<Vec<u64>>,
    pub(super) stream_in: Vec<StreamCopy>,
    pub(super) stream_out: Vec<StreamCopy>,
    /// Restore copies per producing segment, per slot.
    pub(super) restores: Vec<(usize, Vec<Vec<Exchange>>)>,
    /// Save copies per slot.
    pub(super) saves: Vec<Vec<Exchange>>,
}

/// The step program's host side: accumulators, per-micro-batch outputs, every output's host
/// tensor, and the host buffer groups.
pub(super) struct StepIo {
    pub(super) accs: Vec<Accumulator>,
    pub(super) per_micro: Vec<(String, NodeId, u32)>,
    pub(super) out_tensors: Vec<HostTensor>,
    pub(super) groups: HostGroups,
}

/// The optimizer's host tensors (streamed state in, results out) and the graph values that
/// stream from and to them.
#[derive(Default)]
pub(super) struct OptimizerParts {
    /// The state's host tensors, whole (a sharded state's shards are row ranges of one).
    pub(super) state: Vec<HostTensor>,
    /// Every state input: its node, name and type, from which host buffer and byte offset.
    pub(super) inputs: Vec<HostSlice>,
    /// Every optimizer output: its name and node, into which host buffer and byte offset.
    pub(super) outputs: Vec<HostSlice>,
    /// The results' host tensors' names, whole, in order.
    pub(super) output_names: Vec<String>,
}

/// A graph value streamed from or to bytes `offset..` of a host buffer.
pub(super) struct HostSlice {
    pub(super) name: String,
    pub(super) node: NodeId,
    pub(super) ty: TensorType,
    pub(super) buffer: u32,
    pub(super) offset: u64,
}

/// Where `step`'s host buffers split: per micro-batch `[0, micro)`, gradients
/// `[micro, grads)`, optimizer state and results after.
pub(super) struct HostGroups {
    pub(super) micro: u32,
    pub(super) grads: u32,
}

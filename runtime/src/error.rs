//! Errors of the runtime: [`ProgramError`] when a program is loaded (each names the superstep,
//! tile, vertex or copy and the offending byte range) and [`RunError`] when it is run.

use crate::program::{Region, TileRef};
use crate::vertex::Elem;
use thiserror::Error;

/// What is wrong with one operand, copy or compute set.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Problem {
    /// The tile does not exist on the machine.
    #[error("tile outside the machine ({chips} chips × {tiles_per_chip} tiles)")]
    TileOutsideMachine {
        /// Chips of the machine.
        chips: u32,
        /// Tiles per chip.
        tiles_per_chip: u32,
    },
    /// A range reaches past the tile's memory.
    #[error("{what} {region} is outside the tile's {bytes_per_tile} bytes")]
    OutOfTile {
        /// Which operand.
        what: &'static str,
        /// The range.
        region: Region,
        /// The tile's size.
        bytes_per_tile: u32,
    },
    /// A range does not start on its element size.
    #[error("{what} {region} is not aligned to {align} bytes")]
    Misaligned {
        /// Which operand.
        what: &'static str,
        /// The range.
        region: Region,
        /// Required alignment.
        align: u32,
    },
    /// A range has the wrong length for the vertex's shape.
    #[error("{what} {region} has {} bytes, expected {expected}", region.len)]
    Length {
        /// Which operand.
        what: &'static str,
        /// The range.
        region: Region,
        /// Expected length in bytes.
        expected: u64,
    },
    /// Two ranges that must be disjoint (or identical) overlap.
    #[error("{what_a} {a} overlaps {what_b} {b}")]
    Overlap {
        /// First operand.
        what_a: &'static str,
        /// Its range.
        a: Region,
        /// Second operand.
        what_b: &'static str,
        /// Its range.
        b: Region,
    },
    /// Two compute sets for the same tile in one superstep.
    #[error("tile has two compute sets in this superstep")]
    DuplicateTile,
    /// A stream copy names a host buffer that does not exist.
    #[error("host buffer {buffer} does not exist ({count} declared)")]
    UnknownBuffer {
        /// The index used.
        buffer: u32,
        /// Number of declared buffers.
        count: usize,
    },
    /// A stream copy reaches past its host buffer.
    #[error("host buffer `{name}` bytes [{offset}, {end}) outside its {size} bytes")]
    HostOutOfRange {
        /// The buffer's name.
        name: String,
        /// First byte.
        offset: u64,
        /// One past the last byte.
        end: u64,
        /// The buffer's size.
        size: u64,
    },
    /// An operand has an element type the vertex does not accept (e.g. i64 arithmetic).
    #[error("{what} of type {} is not accepted here ({expected})", elem.name())]
    ElemType {
        /// Which operand.
        what: &'static str,
        /// Its element type.
        elem: Elem,
        /// What the vertex accepts.
        expected: &'static str,
    },
    /// A row length or row count that must be positive is zero.
    #[error("{what} is zero")]
    Zero {
        /// Which dimension.
        what: &'static str,
    },
    /// A range's length is not a whole number of units (rows, or a broadcast operand's
    /// repetitions).
    #[error("{what} {region} has {} bytes, not a multiple of {unit}", region.len)]
    NotMultiple {
        /// Which operand.
        what: &'static str,
        /// The range.
        region: Region,
        /// The unit in bytes.
        unit: u64,
    },
    /// A tile → host stream copy with `row_bytes > 0` (only host → tile copies may be strided).
    #[error("tile-to-host copies must be contiguous, got row_bytes = {row_bytes}")]
    StridedToHost {
        /// The copy's row length.
        row_bytes: u32,
    },
    /// Two tile → host copies write the same host bytes.
    #[error("host buffer `{name}` bytes written twice (stream copy {other} also writes them)")]
    HostOverlap {
        /// The buffer's name.
        name: String,
        /// The index of the other copy.
        other: usize,
    },
}

/// Where in the program a [`Problem`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    /// A vertex of a tile's compute set.
    Vertex {
        /// Vertex index within the compute set.
        index: usize,
        /// Vertex kind.
        kind: &'static str,
    },
    /// A tile's compute set as a whole.
    Compute,
    /// An exchange copy (index within the superstep's exchange list).
    Exchange(usize),
    /// A host → tile stream copy.
    HostToTile(usize),
    /// A tile → host stream copy.
    TileToHost(usize),
}

impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Site::Vertex { index, kind } => write!(f, "vertex {index} ({kind})"),
            Site::Compute => write!(f, "compute set"),
            Site::Exchange(i) => write!(f, "exchange copy {i}"),
            Site::HostToTile(i) => write!(f, "host-to-tile copy {i}"),
            Site::TileToHost(i) => write!(f, "tile-to-host copy {i}"),
        }
    }
}

/// A program that cannot be loaded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProgramError {
    /// The machine description itself is unusable.
    #[error("machine {chips} chips × {tiles_per_chip} tiles × {bytes_per_tile} bytes: {reason}")]
    Machine {
        /// Chips.
        chips: u32,
        /// Tiles per chip.
        tiles_per_chip: u32,
        /// Bytes per tile.
        bytes_per_tile: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// Something inside a superstep.
    #[error("superstep {superstep}, {tile}, {site}: {problem}")]
    At {
        /// Superstep index.
        superstep: usize,
        /// The tile concerned (the destination tile for copies).
        tile: TileRef,
        /// The vertex or copy.
        site: Site,
        /// What is wrong.
        problem: Problem,
    },
}

/// A failure while running a loaded program.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RunError {
    /// The host buffers handed in do not match the program's declarations.
    #[error("expected {expected} host buffers, got {got}")]
    HostBufferCount {
        /// Declared.
        expected: usize,
        /// Given.
        got: usize,
    },
    /// A host buffer has the wrong size.
    #[error("host buffer {index} `{name}` has {got} bytes, the program declares {expected}")]
    HostBufferSize {
        /// Index.
        index: usize,
        /// Name.
        name: String,
        /// Declared size.
        expected: u64,
        /// Given size.
        got: u64,
    },
    /// The machine is not the one the program was loaded for.
    #[error("program is for {expected}, machine is {got}")]
    MachineMismatch {
        /// The program's machine, as `chips×tiles×bytes`.
        expected: String,
        /// The machine's.
        got: String,
    },
    /// A kernel found an operand outside its tile (only possible if validation was bypassed).
    #[error("superstep {superstep}, {tile}, vertex {vertex}: {detail}")]
    Kernel {
        /// Superstep index.
        superstep: usize,
        /// Tile.
        tile: TileRef,
        /// Vertex index.
        vertex: usize,
        /// What went wrong.
        detail: String,
    },
    /// A gather or scatter-add index outside its table.
    #[error("superstep {superstep}, {tile}, vertex {vertex}: index {index} out of range for a table of {rows} rows")]
    IndexOutOfRange {
        /// Superstep index.
        superstep: usize,
        /// Tile.
        tile: TileRef,
        /// Vertex index.
        vertex: usize,
        /// The offending index.
        index: i64,
        /// Rows in the table.
        rows: u32,
    },
    /// A copy's range was outside memory (only possible if validation was bypassed).
    #[error("superstep {superstep}: {site} out of range")]
    Copy {
        /// Superstep index.
        superstep: usize,
        /// Which copy.
        site: Site,
    },
}

//! Errors of the lowering pass, with the out-of-memory report in the form Poplar users
//! know (`Out of memory on tile 17 of chip 2: 701,344 bytes used but tiles only have
//! 638,976 bytes`) followed by the largest tensors on that tile.

use std::fmt;
use thiserror::Error;

/// One tensor's share of a tile, for the out-of-memory report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TileTensor {
    /// The value's printed name (`%k`, or `%feed` for a graph input).
    pub name: String,
    /// The scope of the node that defines it.
    pub scope: String,
    /// Bytes of it on the tile.
    pub bytes: u64,
}

/// A tile whose static allocation exceeds its memory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OutOfMemory {
    /// The chip (pipeline stage).
    pub chip: u32,
    /// The tile, numbered within its chip.
    pub tile: u32,
    /// Bytes the plan needs on the tile: its peak of tensors and buffers plus its code and
    /// vertex state.
    pub used: u64,
    /// Of `used`: machine code of the tile's codelets (always live; 0 when only tensors were
    /// planned).
    pub code_bytes: u64,
    /// Of `used`: the state of every vertex on the tile (always live; 0 when only tensors
    /// were planned).
    pub vertex_state_bytes: u64,
    /// Bytes per tile of the target.
    pub capacity: u64,
    /// The largest tensors on the tile, largest first.
    pub largest: Vec<TileTensor>,
    /// The vertices with the most operand bytes on the tile, largest first (empty when only
    /// tensors were planned).
    pub largest_vertices: Vec<TileTensor>,
    /// Bytes live when the tile reached its peak, by what they hold (`weights`,
    /// `optimizer state`, ...; categories with none left out; empty when not tracked).
    pub at_peak: Vec<(String, u64)>,
}

impl fmt::Display for OutOfMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Out of memory on tile {} of chip {}: {} bytes used but tiles only have {} bytes",
            self.tile,
            self.chip,
            thousands(self.used),
            thousands(self.capacity)
        )?;
        let code = self.code_bytes + self.vertex_state_bytes;
        if code > 0 {
            write!(
                f,
                "\n  tensors and buffers at peak: {} bytes\n  code and vertex state (always live): {} bytes ({} of code, {} of vertex state)",
                thousands(self.used.saturating_sub(code)),
                thousands(code),
                thousands(self.code_bytes),
                thousands(self.vertex_state_bytes)
            )?;
        }
        if !self.at_peak.is_empty() {
            let parts: Vec<String> = self
                .at_peak
                .iter()
                .map(|(what, bytes)| format!("{what} {}", thousands(*bytes)))
                .collect();
            write!(f, "\n  live at the peak: {}", parts.join(", "))?;
        }
        if !self.largest.is_empty() {
            write!(f, "\nlargest tensors on tile {}:", self.tile)?;
            for t in &self.largest {
                if t.scope.is_empty() {
                    write!(f, "\n  {}: {} bytes", t.name, thousands(t.bytes))?;
                } else {
                    write!(
                        f,
                        "\n  {} ({}): {} bytes",
                        t.name,
                        t.scope,
                        thousands(t.bytes)
                    )?;
                }
            }
        }
        if !self.largest_vertices.is_empty() {
            write!(f, "\nlargest vertices on tile {}:", self.tile)?;
            for v in &self.largest_vertices {
                write!(
                    f,
                    "\n  {}: {} bytes of operands",
                    v.name,
                    thousands(v.bytes)
                )?;
            }
        }
        Ok(())
    }
}

/// Errors of the lowering pass.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LowerError {
    /// A tile needs more memory than it has (see [`OutOfMemory`]).
    #[error("{0}")]
    OutOfMemory(Box<OutOfMemory>),
    /// The target has no tiles to map anything onto.
    #[error("target `{target}` has no tiles per chip")]
    NoTiles {
        /// The target's name.
        target: String,
    },
    /// A planning option is out of range.
    #[error("invalid lowering option `{option}`: {reason}")]
    InvalidOption {
        /// The option's field name.
        option: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// The graph has an op the tile lowering has no vertices for.
    #[error("cannot lower {node} (`{op}` @{scope}) to tiles: {reason}")]
    Unsupported {
        /// The value's name (`%12`).
        node: String,
        /// The op's name.
        op: &'static str,
        /// The node's scope.
        scope: String,
        /// What is missing.
        reason: String,
    },
    /// A node is placed on a chip the machine does not have.
    #[error("{node} (@{scope}) is placed on pipeline stage {stage}, but the machine has {chips} chip(s)")]
    StageOutOfRange {
        /// The value's name.
        node: String,
        /// The node's scope.
        scope: String,
        /// Its stage.
        stage: u32,
        /// Chips available.
        chips: u32,
    },
    /// The graph cannot run as a pipeline (e.g. a value flows from a later segment of the
    /// schedule to an earlier one).
    #[error("cannot pipeline {node} (@{scope}): {reason}")]
    Pipeline {
        /// The value's name.
        node: String,
        /// The node's scope.
        scope: String,
        /// Why.
        reason: String,
    },
}

/// `n` with a comma every three digits: `701344` → `701,344`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(701_344), "701,344");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn oom_message_matches_poplar() {
        let e = LowerError::OutOfMemory(Box::new(OutOfMemory {
            chip: 2,
            tile: 17,
            used: 701_344,
            capacity: 638_976,
            code_bytes: 0,
            vertex_state_bytes: 0,
            largest: vec![TileTensor {
                name: "%5".into(),
                scope: "enc".into(),
                bytes: 4096,
            }],
            largest_vertices: vec![],
            at_peak: vec![],
        }));
        assert_eq!(
            e.to_string(),
            "Out of memory on tile 17 of chip 2: 701,344 bytes used but tiles only have \
             638,976 bytes\nlargest tensors on tile 17:\n  %5 (enc): 4,096 bytes"
        );
        // With code and vertex state: its own line, and the data that is the rest.
        let e = OutOfMemory {
            chip: 0,
            tile: 3,
            used: 650_000,
            capacity: 638_976,
            code_bytes: 9_216,
            vertex_state_bytes: 1_784,
            largest: vec![],
            largest_vertices: vec![],
            at_peak: vec![
                ("weights".into(), 600_000),
                ("optimizer state".into(), 39_000),
            ],
        };
        assert_eq!(
            e.to_string(),
            "Out of memory on tile 3 of chip 0: 650,000 bytes used but tiles only have \
             638,976 bytes\n  tensors and buffers at peak: 639,000 bytes\n  code and vertex \
             state (always live): 11,000 bytes (9,216 of code, 1,784 of vertex state)\n  \
             live at the peak: weights 600,000, optimizer state 39,000"
        );
    }
}

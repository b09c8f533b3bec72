//! The plan file layout and its checksum.
//!
//! ```text
//! offset  size  field
//! 0       7     magic `TSPLAN\0`
//! 7       4     format version, u32 little-endian
//! 11      8     payload length in bytes, u64 little-endian
//! 19      8     FNV-1a 64-bit hash of the payload, u64 little-endian
//! 27      n     payload: the plan, postcard-encoded
//! ```
//!
//! [`split`] checks magic, version, length and checksum in that order, so each kind of bad
//! file gets its own error. The checksum guards against corruption, not tampering.

use crate::PlanError;

/// The first bytes of every plan file.
pub const MAGIC: &[u8; 7] = b"TSPLAN\0";

/// The format version this build writes and reads. Bump it whenever [`crate::Plan`] or
/// anything it contains changes its serialised form.
/// Version 2 added the tile program ([`crate::Plan::tiles`]) and the model source
/// ([`crate::Plan::source`]). Version 4 added the column-reduction vertex
/// (`Vertex::ReduceCols`). Version 5 added the live bytes by category to the out-of-memory
/// record of a plan written with `--allow-oom`.
pub const FORMAT_VERSION: u32 = 5;

/// Bytes before the payload.
pub const HEADER_LEN: usize = 7 + 4 + 8 + 8;

/// FNV-1a, 64 bits (offset basis `0xcbf29ce484222325`, prime `0x100000001b3`).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv1a64::default();
    h.update(bytes);
    h.finish()
}

/// FNV-1a fed piece by piece, equal to [`fnv1a64`] of the concatenation.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a64(u64);

impl Default for Fnv1a64 {
    fn default() -> Self {
        Fnv1a64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a64 {
    /// Hashes `bytes` after everything so far.
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash of everything fed.
    pub fn finish(self) -> u64 {
        self.0
    }
}

/// The header of a payload of `len` bytes hashing to `sum`.
pub fn header(len: u64, sum: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..7].copy_from_slice(MAGIC);
    h[7..11].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[11..19].copy_from_slice(&len.to_le_bytes());
    h[19..27].copy_from_slice(&sum.to_le_bytes());
    h
}

/// Header plus `payload`.
pub fn join(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    out.extend_from_slice(payload);
    seal(&mut out);
    out
}

/// Writes the header into the first [`HEADER_LEN`] bytes of `file`, whose payload follows
/// them: the plan is encoded straight after a reserved header, so that the payload (GBs for
/// a large training plan) is never copied. `file` shorter than the header is left as is.
pub fn seal(file: &mut [u8]) {
    let Some((head, payload)) = file.split_at_mut_checked(HEADER_LEN) else {
        return;
    };
    head.copy_from_slice(&header(payload.len() as u64, fnv1a64(payload)));
}

/// Reads a little-endian integer field at `at`.
fn field<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at + N)?.try_into().ok()
}

/// The checked payload of a plan file's bytes; `origin` names the file in errors.
pub fn split<'b>(bytes: &'b [u8], origin: &str) -> Result<&'b [u8], PlanError> {
    let found = bytes.len() as u64;
    if bytes.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
        // A prefix of the magic is a truncated plan; anything else is not a plan.
        if !bytes.is_empty() && MAGIC.starts_with(bytes) {
            return Err(PlanError::Truncated {
                origin: origin.to_string(),
                expected: HEADER_LEN as u64,
                found,
            });
        }
        return Err(PlanError::NotAPlan {
            origin: origin.to_string(),
        });
    }
    let truncated = |expected: u64| PlanError::Truncated {
        origin: origin.to_string(),
        expected,
        found,
    };
    let version = field::<4>(bytes, 7)
        .map(u32::from_le_bytes)
        .ok_or_else(|| truncated(HEADER_LEN as u64))?;
    if version != FORMAT_VERSION {
        return Err(PlanError::Version {
            origin: origin.to_string(),
            found: version,
            supported: FORMAT_VERSION,
        });
    }
    let (len, sum) = match (field::<8>(bytes, 11), field::<8>(bytes, 19)) {
        (Some(l), Some(s)) => (u64::from_le_bytes(l), u64::from_le_bytes(s)),
        _ => return Err(truncated(HEADER_LEN as u64)),
    };
    let expected = (HEADER_LEN as u64).saturating_add(len);
    if found < expected {
        return Err(truncated(expected));
    }
    if found > expected {
        return Err(PlanError::TrailingBytes {
            origin: origin.to_string(),
            extra: found - expected,
        });
    }
    let payload = bytes.get(HEADER_LEN..).unwrap_or(&[]);
    let actual = fnv1a64(payload);
    if actual != sum {
        return Err(PlanError::Checksum {
            origin: origin.to_string(),
            expected: sum,
            found: actual,
        });
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_reference_values() {
        // Published FNV-1a 64 test vectors (Fowler/Noll/Vo reference implementation).
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn header_layout() {
        let file = join(b"xyz");
        assert_eq!(&file[..7], b"TSPLAN\0");
        assert_eq!(&file[7..11], &FORMAT_VERSION.to_le_bytes());
        assert_eq!(&file[11..19], &3u64.to_le_bytes());
        assert_eq!(&file[19..27], &fnv1a64(b"xyz").to_le_bytes());
        assert_eq!(split(&file, "f").unwrap(), b"xyz");
    }

    #[test]
    fn every_kind_of_bad_file_has_its_error() {
        let file = join(b"payload");
        let e = split(b"PK\x03\x04 zip", "a.zip").unwrap_err();
        assert!(matches!(e, PlanError::NotAPlan { .. }), "{e}");
        let e = split(&file[..4], "f").unwrap_err();
        assert!(matches!(e, PlanError::Truncated { .. }), "{e}");
        let e = split(&file[..20], "f").unwrap_err();
        assert!(
            matches!(
                e,
                PlanError::Truncated {
                    expected: 27,
                    found: 20,
                    ..
                }
            ),
            "{e}"
        );
        let e = split(&file[..file.len() - 1], "f").unwrap_err();
        assert!(
            matches!(
                e,
                PlanError::Truncated {
                    expected: 34,
                    found: 33,
                    ..
                }
            ),
            "{e}"
        );
        let mut longer = file.clone();
        longer.push(0);
        assert!(matches!(
            split(&longer, "f"),
            Err(PlanError::TrailingBytes { extra: 1, .. })
        ));
        let mut other = file.clone();
        other[7..11].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let e = split(&other, "old.tsp").unwrap_err();
        assert!(matches!(e, PlanError::Version { .. }));
        let want = format!("old.tsp: plan format version {}", FORMAT_VERSION + 1);
        assert!(e.to_string().contains(&want), "{e}");
        let mut flipped = file;
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let e = split(&flipped, "f").unwrap_err();
        assert!(matches!(e, PlanError::Checksum { .. }), "{e}");
    }
}

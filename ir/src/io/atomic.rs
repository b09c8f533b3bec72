//! Atomic file writes: a temporary file in the target's directory, written, fsynced and
//! renamed over the target (rename within one file system is atomic), then the directory
//! fsynced so the rename itself is durable. On any failure the temporary file is removed
//! and the target is left as it was.

use super::IoError;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically: readers see the old file or the whole new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// As [`write_atomic`], with the bytes written by `write` into the temporary file (which it
/// may seek in): for files too large to build in memory first. An error of `write` leaves
/// `path` untouched.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> Result<(), IoError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let os = |action: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| IoError::Os {
            path: p,
            action,
            source,
        }
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tessera-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(os("creating a temporary file in", dir))?;
    let written = write(tmp.as_file_mut());
    written.map_err(os("writing", tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(os("syncing", tmp.path()))?;
    tmp.persist(path).map_err(|e| IoError::Os {
        path: path.to_path_buf(),
        action: "renaming the temporary file onto",
        source: e.error,
    })?;
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(os("syncing directory", dir))?;
    Ok(())
}

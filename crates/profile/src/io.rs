//! Files: `profile.json` writing and loading, and [`write_all`], which writes a whole report
//! directory. Every file is written atomically (a temporary file in the same directory, then
//! a rename), so a reader never sees half a report file.

use crate::error::{ProfileError, Result};
use crate::model::{Profile, FORMAT_VERSION};
use crate::{
    chrome_trace, heatmap_svg, measured_heatmap_svg, memory_svg, pipeline_svg, summary_text,
    timeline_svg,
};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file [`write_all`] adds after [`FILE_NAMES`] for a profile with pipeline figures.
pub const PIPELINE_FILE: &str = "pipeline.svg";

/// The file [`write_all`] adds for a profile with measured per-tile times: the measured
/// heatmap, next to `heatmap.svg`.
pub const MEASURED_HEATMAP_FILE: &str = "heatmap_measured.svg";

/// The files [`write_all`] always writes, in order.
pub const FILE_NAMES: [&str; 6] = [
    "summary.txt",
    "profile.json",
    "trace.json",
    "memory.svg",
    "heatmap.svg",
    "timeline.svg",
];

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let io = |action, source| ProfileError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).map_err(|e| io("creating a temporary file for", e))?;
    tmp.write_all(bytes).map_err(|e| io("writing", e))?;
    tmp.flush().map_err(|e| io("writing", e))?;
    // Temporary files are private (0600); a report is for reading like any other file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| io("setting permissions of", e))?;
    }
    tmp.persist(path)
        .map_err(|e| io("renaming into", e.error))?;
    Ok(())
}

fn to_json(value: &impl serde::Serialize, path: &Path) -> Result<Vec<u8>> {
    let mut v = serde_json::to_vec(value).map_err(|source| ProfileError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    v.push(b'\n');
    Ok(v)
}

/// Writes `profile` as compact JSON (one line: the heatmap would make pretty-printed JSON
/// several times larger) to `path` (atomically).
pub fn write_json(profile: &Profile, path: &Path) -> Result<()> {
    write_atomic(path, &to_json(profile, path)?)
}

/// Writes the report directory `dir` (created if missing): the files of [`FILE_NAMES`]
/// (summary text, profile JSON, Chrome trace, memory / heatmap / timeline SVGs), for a
/// profile with pipeline figures [`PIPELINE_FILE`], and for one with measured per-tile times
/// [`MEASURED_HEATMAP_FILE`], each atomically. Returns their paths in that order.
pub fn write_all(profile: &Profile, dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|source| ProfileError::Io {
        action: "creating directory",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::with_capacity(FILE_NAMES.len());
    for name in FILE_NAMES {
        let path = dir.join(name);
        let bytes = match name {
            "summary.txt" => summary_text(profile).into_bytes(),
            "profile.json" => to_json(profile, &path)?,
            "trace.json" => to_json(&chrome_trace(profile), &path)?,
            "memory.svg" => memory_svg(profile).into_bytes(),
            "heatmap.svg" => heatmap_svg(profile).into_bytes(),
            _ => timeline_svg(profile).into_bytes(),
        };
        write_atomic(&path, &bytes)?;
        written.push(path);
    }
    let optional = [
        (PIPELINE_FILE, pipeline_svg(profile)),
        (MEASURED_HEATMAP_FILE, measured_heatmap_svg(profile)),
    ];
    for (name, svg) in optional {
        if let Some(svg) = svg {
            let path = dir.join(name);
            write_atomic(&path, svg.as_bytes())?;
            written.push(path);
        }
    }
    Ok(written)
}

impl Profile {
    /// Reads a profile written by [`write_json`] / [`write_all`]: `path` is a `profile.json`
    /// file or a report directory containing one.
    pub fn load(path: &Path) -> Result<Profile> {
        let file = if path.is_dir() {
            path.join("profile.json")
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file).map_err(|source| ProfileError::Io {
            action: "reading",
            path: file.clone(),
            source,
        })?;
        let json = |source| ProfileError::Json {
            path: file.clone(),
            source,
        };
        let value: serde_json::Value = serde_json::from_str(&text).map_err(json)?;
        let found = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        if found != u64::from(FORMAT_VERSION) {
            return Err(ProfileError::Version {
                path: file,
                found: u32::try_from(found).unwrap_or(u32::MAX),
                expected: FORMAT_VERSION,
            });
        }
        serde_json::from_value(value).map_err(json)
    }
}

//! Loading, saving, resolving and checking target descriptions.
//!
//! A target file is the JSON form of [`Target`] (unknown fields are rejected, so a misspelt
//! field is an error rather than a silently used default). Syntax and shape errors carry the
//! file name and serde_json's line and column; values no chip can have (zero tiles, a zero or
//! non-finite clock, ...) are rejected by [`Target::validate`] with the field's name.

use std::path::Path;

use super::presets::PRESET_NAMES;
use super::Target;
use crate::TargetError;

/// Converts a serde_json error into [`TargetError::Json`] for `origin`.
fn json_error(origin: &str, e: &serde_json::Error) -> TargetError {
    let (line, column) = (e.line(), e.column());
    let full = e.to_string();
    let suffix = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    TargetError::Json {
        origin: origin.to_string(),
        line,
        column,
        message,
    }
}

/// `Ok` if `value` is finite and positive (or, with `allow_zero`, zero).
fn check_f64(
    origin: &str,
    field: &'static str,
    value: f64,
    allow_zero: bool,
) -> Result<(), TargetError> {
    let ok = value.is_finite() && (value > 0.0 || (allow_zero && value == 0.0));
    if ok {
        return Ok(());
    }
    let wanted = if allow_zero {
        "a finite number ≥ 0"
    } else {
        "a finite number > 0"
    };
    Err(TargetError::InvalidField {
        origin: origin.to_string(),
        field,
        reason: format!("must be {wanted}, found {value}"),
    })
}

/// `Ok` if `value` is at least 1.
fn check_count(origin: &str, field: &'static str, value: u64) -> Result<(), TargetError> {
    if value >= 1 {
        return Ok(());
    }
    Err(TargetError::InvalidField {
        origin: origin.to_string(),
        field,
        reason: "must be at least 1, found 0".to_string(),
    })
}

impl Target {
    /// Parses and checks a target description held in a string (errors say `<string>`).
    pub fn from_json_str(text: &str) -> Result<Target, TargetError> {
        Self::parse(text, "<string>")
    }

    /// Reads, parses and checks the target description in the JSON file at `path`.
    pub fn from_json_file(path: impl AsRef<Path>) -> Result<Target, TargetError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TargetError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// A preset (see [`PRESET_NAMES`]) if `arg` names one; otherwise the JSON file at `arg`,
    /// provided `arg` ends in `.json`, contains a path separator, or exists.
    pub fn resolve(arg: &str) -> Result<Target, TargetError> {
        if PRESET_NAMES.contains(&arg) {
            return Self::preset(arg);
        }
        let path = Path::new(arg);
        let looks_like_path = arg.ends_with(".json")
            || arg.contains('/')
            || arg.contains(std::path::MAIN_SEPARATOR)
            || path.exists();
        if looks_like_path {
            return Self::from_json_file(path);
        }
        Self::preset(arg)
    }

    /// The description as pretty-printed JSON, loadable by [`Target::from_json_str`].
    pub fn to_json(&self) -> Result<String, TargetError> {
        serde_json::to_string_pretty(self).map_err(|e| TargetError::Serialize {
            name: self.name.clone(),
            message: e.to_string(),
        })
    }

    /// Checks that every field has a value a chip can have; errors name the field.
    pub fn validate(&self) -> Result<(), TargetError> {
        self.validate_from(&format!("target `{}`", self.name))
    }

    fn parse(text: &str, origin: &str) -> Result<Target, TargetError> {
        let target: Target = serde_json::from_str(text).map_err(|e| json_error(origin, &e))?;
        target.validate_from(origin)?;
        Ok(target)
    }

    fn validate_from(&self, origin: &str) -> Result<(), TargetError> {
        if self.name.trim().is_empty() {
            return Err(TargetError::InvalidField {
                origin: origin.to_string(),
                field: "name",
                reason: "must not be empty".to_string(),
            });
        }
        check_count(origin, "tiles_per_chip", self.tiles_per_chip.into())?;
        check_count(origin, "bytes_per_tile", self.bytes_per_tile)?;
        check_count(
            origin,
            "worker_threads_per_tile",
            self.worker_threads_per_tile.into(),
        )?;
        check_f64(origin, "clock_hz", self.clock_hz, false)?;
        check_count(
            origin,
            "macs_per_cycle_f16_f16_partials",
            self.macs_per_cycle_f16_f16_partials.into(),
        )?;
        check_count(
            origin,
            "macs_per_cycle_f16_f32_partials",
            self.macs_per_cycle_f16_f32_partials.into(),
        )?;
        check_count(origin, "macs_per_cycle_f32", self.macs_per_cycle_f32.into())?;
        check_f64(
            origin,
            "load_store_bytes_per_cycle_per_worker",
            self.load_store_bytes_per_cycle_per_worker,
            false,
        )?;
        check_f64(
            origin,
            "exchange_bytes_per_cycle_per_tile",
            self.exchange_bytes_per_cycle_per_tile,
            false,
        )?;
        check_f64(
            origin,
            "exchange_bytes_per_s",
            self.exchange_bytes_per_s,
            false,
        )?;
        // A chip without links (a single-chip system) may leave the link bandwidth at zero.
        let links = self.links_per_chip > 0;
        check_f64(origin, "link_bytes_per_s", self.link_bytes_per_s, !links)?;
        check_f64(
            origin,
            "inter_chip_sync_latency_per_hop_s",
            self.inter_chip_sync_latency_per_hop_s,
            true,
        )?;
        // Likewise a chip without streaming memory may leave its bandwidth at zero.
        let streaming = self.streaming_bytes > 0;
        check_f64(
            origin,
            "streaming_bytes_per_s",
            self.streaming_bytes_per_s,
            !streaming,
        )?;
        if u64::from(self.tiles_per_chip)
            .checked_mul(self.bytes_per_tile)
            .is_none()
        {
            return Err(TargetError::InvalidField {
                origin: origin.to_string(),
                field: "bytes_per_tile",
                reason: format!(
                    "{} tiles × {} bytes overflows a 64-bit byte count",
                    self.tiles_per_chip, self.bytes_per_tile
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::presets::{mk1, mk2};
    use super::*;

    /// mk2's JSON with `field`'s value replaced by `value` (a JSON literal).
    fn mk2_json_with(field: &str, value: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(&mk2().to_json().unwrap()).unwrap();
        v[field] = serde_json::from_str(value).unwrap();
        serde_json::to_string_pretty(&v).unwrap()
    }

    #[test]
    fn json_round_trip_of_every_preset() {
        for t in [mk1(), mk2()] {
            let back = Target::from_json_str(&t.to_json().unwrap()).unwrap();
            assert_eq!(back, t);
        }
    }

    #[test]
    fn file_round_trip_and_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chip.json");
        let mut t = mk2();
        t.name = "my-chip".into();
        t.tiles_per_chip = 736;
        std::fs::write(&path, t.to_json().unwrap()).unwrap();
        assert_eq!(Target::from_json_file(&path).unwrap(), t);
        assert_eq!(Target::resolve(path.to_str().unwrap()).unwrap(), t);
        assert_eq!(Target::resolve("mk1").unwrap(), mk1());
    }

    #[test]
    fn resolve_rejects_an_unknown_name_and_a_missing_file() {
        let e = Target::resolve("gc300").unwrap_err();
        assert!(matches!(e, TargetError::UnknownPreset { .. }), "{e}");
        let e = Target::resolve("no/such/target.json").unwrap_err();
        assert!(e.to_string().contains("no/such/target.json"), "{e}");
        assert!(matches!(e, TargetError::Io { .. }));
    }

    #[test]
    fn malformed_json_names_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.json");
        std::fs::write(&path, "{\n  \"name\": \"x\",\n  \"tiles_per_chip\": ,\n}").unwrap();
        let e = Target::from_json_file(&path).unwrap_err();
        match &e {
            TargetError::Json {
                origin,
                line,
                column,
                ..
            } => {
                assert_eq!(origin, &path.display().to_string());
                assert_eq!((*line, *column), (3, 21));
            }
            other => panic!("expected a JSON error, got {other}"),
        }
        assert!(e
            .to_string()
            .starts_with(&format!("{}:3:21: ", path.display())));
    }

    #[test]
    fn unknown_and_missing_fields_are_errors() {
        let text = mk2_json_with("tiles_per_chp", "1472");
        let e = Target::from_json_str(&text).unwrap_err();
        assert!(e.to_string().contains("tiles_per_chp"), "{e}");
        let mut v: serde_json::Value = serde_json::from_str(&mk2().to_json().unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("clock_hz");
        let e = Target::from_json_str(&v.to_string()).unwrap_err();
        assert!(e.to_string().contains("clock_hz"), "{e}");
    }

    #[test]
    fn impossible_values_name_their_field() {
        for (field, value) in [
            ("tiles_per_chip", "0"),
            ("bytes_per_tile", "0"),
            ("worker_threads_per_tile", "0"),
            ("clock_hz", "0.0"),
            ("clock_hz", "-1.33e9"),
            ("macs_per_cycle_f32", "0"),
            ("exchange_bytes_per_s", "0"),
            ("link_bytes_per_s", "0"),
            ("streaming_bytes_per_s", "0"),
            ("name", "\"\""),
        ] {
            let e = Target::from_json_str(&mk2_json_with(field, value)).unwrap_err();
            match &e {
                TargetError::InvalidField { field: f, .. } => assert_eq!(*f, field, "{e}"),
                other => panic!("{field}={value}: expected InvalidField, got {other}"),
            }
        }
    }

    #[test]
    fn non_finite_clock_is_rejected() {
        for clock in [f64::NAN, f64::INFINITY] {
            let mut t = mk2();
            t.clock_hz = clock;
            let e = t.validate().unwrap_err();
            assert!(e.to_string().contains("`clock_hz`"), "{e}");
        }
    }

    #[test]
    fn zero_links_or_streaming_memory_may_have_zero_bandwidth() {
        let mut t = mk1();
        t.streaming_bytes_per_s = 0.0;
        t.links_per_chip = 0;
        t.link_bytes_per_s = 0.0;
        t.validate().unwrap();
    }

    #[test]
    fn chip_memory_overflow_is_rejected() {
        let mut t = mk2();
        t.bytes_per_tile = u64::MAX / 2;
        let e = t.validate().unwrap_err();
        assert!(e.to_string().contains("bytes_per_tile"), "{e}");
    }
}

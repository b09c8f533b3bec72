//! Tests of safetensors I/O: round trips, conversions from hand-built files, the real
//! fixture file (copied into `ir/tests/data/`), and damaged files that must fail cleanly.

use super::*;
use crate::tensor::TensorData;
use half::f16;
use proptest::prelude::*;

/// The LXMERT-tiny fixture `inputs.safetensors` (1504 bytes), copied into the crate.
const INPUTS: &[u8] = include_bytes!("../../tests/data/inputs.safetensors");

/// A safetensors file built by hand: header JSON, padded with spaces to a multiple of 8,
/// then the data bytes.
fn build(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

fn tensor(shape: &[usize], data: TensorData) -> Tensor {
    Tensor::new(shape.to_vec(), data).unwrap()
}

/// Bit patterns of the elements, so NaN payloads and -0.0 compare exactly.
fn bits(t: &Tensor) -> Vec<u64> {
    match t.data() {
        TensorData::F32(v) => v.iter().map(|x| x.to_bits() as u64).collect(),
        TensorData::F16(v) => v.iter().map(|x| x.to_bits() as u64).collect(),
        TensorData::I64(v) => v.iter().map(|&x| x as u64).collect(),
        TensorData::Bool(v) => v.iter().map(|&x| x as u64).collect(),
    }
}

#[test]
fn round_trip_every_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.safetensors");
    let h: Vec<f16> = [0x0001u16, 0x7bff, 0x8000, 0x7e01, 0x3c00]
        .into_iter()
        .map(f16::from_bits)
        .collect();
    let mut tensors = BTreeMap::new();
    let f = vec![
        -0.0,
        f32::from_bits(0x7fc0_1234),
        f32::INFINITY,
        1e-45,
        3.25,
        -7.5,
    ];
    tensors.insert("a.f32".to_string(), tensor(&[2, 3], TensorData::F32(f)));
    tensors.insert("b.f16".to_string(), tensor(&[5], TensorData::F16(h)));
    let ints = vec![i64::MIN, -1, 0, i64::MAX];
    tensors.insert(
        "c.i64".to_string(),
        tensor(&[2, 1, 2], TensorData::I64(ints)),
    );
    let bools = vec![true, false, true];
    tensors.insert("d.bool".to_string(), tensor(&[3], TensorData::Bool(bools)));
    tensors.insert(
        "e.scalar".to_string(),
        tensor(&[], TensorData::F32(vec![0.5])),
    );
    tensors.insert(
        "f.empty".to_string(),
        tensor(&[0, 3], TensorData::I64(vec![])),
    );
    save_safetensors(&path, &tensors).unwrap();
    let back = load_safetensors(&path).unwrap();
    assert_eq!(
        back.keys().collect::<Vec<_>>(),
        tensors.keys().collect::<Vec<_>>()
    );
    for (name, t) in &tensors {
        let b = &back[name];
        assert_eq!((b.dtype(), b.shape()), (t.dtype(), t.shape()), "{name}");
        assert_eq!(bits(b), bits(t), "{name}");
    }
    // No temporary file is left beside the result.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn loads_the_fixture_file() {
    // Expected values read from the file with Python's json and struct modules.
    let t = read_safetensors_bytes(INPUTS, "inputs.safetensors").unwrap();
    let names: Vec<_> = t.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "attention_mask",
            "input_ids",
            "token_type_ids",
            "visual_feats",
            "visual_pos"
        ]
    );
    assert_eq!(t["input_ids"].ty().to_string(), "i64[2,7]");
    assert_eq!(
        t["input_ids"].as_i64().unwrap(),
        [23, 15, 28, 78, 26, 2, 39, 24, 45, 1, 21, 13, 0, 0]
    );
    assert_eq!(
        t["attention_mask"].as_i64().unwrap(),
        [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    );
    let feats = &t["visual_feats"];
    assert_eq!(feats.ty().to_string(), "f32[2,5,16]");
    // f32 values widened exactly to f64 for comparison with Python's printout.
    let v = feats.to_f64_vec();
    let head = [0.9648520350456238, 0.2358119785785675, 0.6969724297523499];
    assert_eq!(v[..3], head);
    assert_eq!(v[159], 0.959145188331604);
    assert_eq!(t["visual_pos"].ty().to_string(), "f32[2,5,4]");
}

#[test]
fn converts_f64_bf16_and_i32() {
    let mut data = Vec::new();
    for x in [0.1f64, -2.5, 1e300] {
        data.extend(x.to_le_bytes());
    }
    for x in [-7i32, i32::MAX] {
        data.extend(x.to_le_bytes());
    }
    for b in [0x3fc0u16, 0xc2f7] {
        data.extend(b.to_le_bytes()); // bf16 1.5 and -123.5
    }
    let header = r#"{"__metadata__":{"format":"pt"},"d":{"dtype":"F64","shape":[3],"data_offsets":[0,24]},"i":{"dtype":"I32","shape":[2],"data_offsets":[24,32]},"b":{"dtype":"BF16","shape":[2,1],"data_offsets":[32,36]}}"#;
    let t = read_safetensors_bytes(&build(header, &data), "mixed").unwrap();
    // 0.1 rounds to the f32 nearest it; 1e300 overflows to infinity.
    assert_eq!(t["d"].as_f32().unwrap(), [0.1f32, -2.5, f32::INFINITY]);
    assert_eq!(t["i"].as_i64().unwrap(), [-7, 2147483647]);
    assert_eq!(t["b"].ty().to_string(), "f32[2,1]");
    assert_eq!(t["b"].as_f32().unwrap(), [1.5, -123.5]);
}

#[test]
fn unsupported_dtypes_and_bad_bools_name_the_tensor() {
    let header = r#"{"ok":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"u":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}"#;
    let e = read_safetensors_bytes(&build(header, &[0; 6]), "u8.st").unwrap_err();
    assert!(
        matches!(&e, IoError::UnsupportedDtype { tensor, .. } if tensor == "u"),
        "{e}"
    );
    assert!(
        e.to_string().contains("u8.st") && e.to_string().contains("U8"),
        "{e}"
    );
    // A dtype the safetensors crate does not know at all.
    let header = r#"{"c":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}}"#;
    let e = read_safetensors_bytes(&build(header, &[0; 8]), "c.st").unwrap_err();
    assert!(
        matches!(&e, IoError::UnsupportedDtype { tensor, dtype, .. } if tensor == "c" && dtype == "C64"),
        "{e}"
    );
    let header = r#"{"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}}"#;
    let e = read_safetensors_bytes(&build(header, &[1, 0, 2]), "b.st").unwrap_err();
    assert!(
        e.to_string().contains("`m`") && e.to_string().contains("byte 2"),
        "{e}"
    );
}

#[test]
fn damaged_files_are_errors_naming_file_and_tensor() {
    // Cut inside the data: the header is intact, the data section too short.
    let e = read_safetensors_bytes(&INPUTS[..1000], "cut.st").unwrap_err();
    assert!(matches!(e, IoError::Truncated { .. }), "{e}");
    assert!(
        e.to_string().contains("cut.st") && e.to_string().contains("visual_feats"),
        "{e}"
    );
    // Cut inside the header.
    let e = read_safetensors_bytes(&INPUTS[..100], "cut.st").unwrap_err();
    assert!(matches!(e, IoError::Truncated { .. }), "{e}");
    let e = read_safetensors_bytes(&INPUTS[..5], "cut.st").unwrap_err();
    assert!(matches!(e, IoError::Truncated { .. }), "{e}");
    // A shape that does not match the byte range.
    let header = r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#;
    let e = read_safetensors_bytes(&build(header, &[0; 8]), "len.st").unwrap_err();
    match &e {
        IoError::LengthMismatch {
            file,
            tensor,
            expected,
            actual,
        } => assert_eq!(
            (file.as_str(), tensor.as_str(), *expected, *actual),
            ("len.st", "w", 12, 8)
        ),
        other => panic!("{other}"),
    }
    // Trailing bytes, a gap between tensors, JSON garbage, a non-object header.
    let header = r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
    assert!(read_safetensors_bytes(&build(header, &[0; 9]), "x").is_err());
    let header = r#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#;
    let e = read_safetensors_bytes(&build(header, &[0; 8]), "gap.st").unwrap_err();
    assert!(e.to_string().contains("`w`"), "{e}");
    let e = read_safetensors_bytes(&build("{\"w\": [1, 2", &[]), "json.st").unwrap_err();
    assert!(matches!(e, IoError::CorruptHeader { .. }), "{e}");
    assert!(read_safetensors_bytes(&build("[1, 2]", &[]), "x").is_err());
    let mut huge = u64::MAX.to_le_bytes().to_vec();
    huge.extend(b"{}");
    assert!(read_safetensors_bytes(&huge, "x").is_err());
}

#[test]
fn every_prefix_of_a_real_file_fails_cleanly() {
    for len in 0..INPUTS.len() {
        let r = read_safetensors_bytes(&INPUTS[..len], "prefix");
        assert!(r.is_err(), "prefix of {len} bytes loaded");
    }
}

#[test]
fn load_reports_missing_file_and_write_failures() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.safetensors");
    let e = load_safetensors(&missing).unwrap_err();
    assert!(matches!(e, IoError::NotFound { .. }));
    assert!(e.to_string().contains("nope.safetensors"), "{e}");
    let e = write_atomic(&dir.path().join("no_dir/x.bin"), b"abc").unwrap_err();
    assert!(e.to_string().contains("no_dir"), "{e}");
    // Renaming onto a non-empty directory fails; nothing else is left behind.
    let target = dir.path().join("occupied");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"1").unwrap();
    assert!(write_atomic(&target, b"abc").is_err());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // Overwriting an existing file replaces it whole.
    let file = dir.path().join("f.bin");
    write_atomic(&file, b"first version").unwrap();
    write_atomic(&file, b"2nd").unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"2nd");
}

proptest! {
    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = read_safetensors_bytes(&bytes, "garbage");
    }

    #[test]
    fn corrupted_real_file_never_panics(pos in 0usize..1504, byte in any::<u8>()) {
        let mut b = INPUTS.to_vec();
        b[pos] = byte;
        let _ = read_safetensors_bytes(&b, "flipped");
    }
}

#[test]
fn garbage_bytes_are_rejected() {
    let mut state = 99u64;
    let garbage: Vec<u8> = (0..512)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
            (state >> 56) as u8
        })
        .collect();
    assert!(read_safetensors_bytes(&garbage, "g").is_err());
    // A plausible length prefix followed by garbage.
    let mut g = 16u64.to_le_bytes().to_vec();
    g.extend(&garbage[..40]);
    assert!(read_safetensors_bytes(&g, "g").is_err());
}

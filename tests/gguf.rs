//! GGUF reader and writer: a fixture written by an independent implementation (the `gguf` PyPI
//! package), writer → reader round trips, and one test per class of malformed file. Malformed files
//! are encoded here by hand, byte by byte, so the reader is checked against the format itself and
//! not against rawrxd's own writer.

use rawrxd::gguf::{GgufError, GgufFile, GgufWriter, MetaValue, TensorPlan, ValueType};
use rawrxd::quant::GgmlType;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gguf")
        .join(name)
}

#[test]
fn reads_every_value_of_a_gguf_py_fixture() {
    let f = GgufFile::open(fixture("tiny_v3.gguf")).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.architecture().unwrap(), "llama");
    assert_eq!(f.get_str("general.name").unwrap(), "tiny fixture");
    assert_eq!(f.get("test.u32"), Some(&MetaValue::U32(4_000_000_000)));
    assert_eq!(f.get("test.i32"), Some(&MetaValue::I32(-7)));
    assert_eq!(f.get("test.f32"), Some(&MetaValue::F32(0.25)));
    assert_eq!(f.get("test.u64"), Some(&MetaValue::U64(1 << 40)));
    assert_eq!(f.get("test.i8"), Some(&MetaValue::I8(-3)));
    assert_eq!(f.get("test.u16"), Some(&MetaValue::U16(65535)));
    assert_eq!(f.get("test.f64"), Some(&MetaValue::F64(-1.5)));
    assert!(f.get_bool("test.bool").unwrap());
    assert_eq!(f.get_str("test.utf8").unwrap(), "héllo wörld ✓");
    let ints: Vec<i64> = f
        .get_array("test.arr_i32")
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(ints, [1, -2, 3]);
    let strs: Vec<&str> = f
        .get_array("test.arr_str")
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(strs, ["a", "bc", ""]);

    let t = f.tensor("t.f32").unwrap();
    assert_eq!((t.ty, t.dims.clone()), (GgmlType::F32, vec![8, 3]));
    let want = std::fs::read(fixture("tiny_v3_f32.bin")).unwrap();
    assert_eq!(f.tensor_data(t), &want[..]);
    let t = f.tensor("t.f16").unwrap();
    assert_eq!(
        (t.ty, t.dims.clone(), t.n_bytes),
        (GgmlType::F16, vec![5], 10)
    );
    let t = f.tensor("t.q8_0").unwrap();
    assert_eq!(
        (t.ty, t.dims.clone(), t.n_bytes),
        (GgmlType::Q8_0, vec![64, 2], 4 * 34)
    );
    assert_eq!(f.n_params(), 24 + 5 + 128);
    // gguf-py aligns every tensor to 32 bytes.
    assert!(f.tensors().iter().all(|t| t.offset % 32 == 0));
}

#[test]
fn writer_output_reads_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rt.gguf");
    let meta = vec![
        (
            "general.architecture".to_string(),
            MetaValue::String("llama".into()),
        ),
        ("general.alignment".to_string(), MetaValue::U32(64)),
        (
            "a.nested".to_string(),
            MetaValue::Array(
                ValueType::Array,
                vec![
                    MetaValue::Array(ValueType::U8, vec![MetaValue::U8(1), MetaValue::U8(2)]),
                    MetaValue::Array(ValueType::String, vec![MetaValue::String("x".into())]),
                ],
            ),
        ),
        ("a.bool".to_string(), MetaValue::Bool(false)),
    ];
    let plans = vec![
        TensorPlan {
            name: "x".into(),
            dims: vec![32, 3],
            ty: GgmlType::Q8_0,
        },
        TensorPlan {
            name: "y".into(),
            dims: vec![7],
            ty: GgmlType::F32,
        },
    ];
    let xb: Vec<u8> = (0..3 * 34).map(|i| i as u8).collect();
    let yb: Vec<u8> = (0..28).map(|i| (i * 3) as u8).collect();
    let mut w = GgufWriter::create(&path, &meta, plans).unwrap();
    assert!(!path.exists(), "the file appears only when finished");
    w.write_tensor("x", &xb).unwrap();
    assert!(w.write_tensor("x", &xb).is_err(), "out of plan order");
    w.write_tensor("y", &yb).unwrap();
    w.finish().unwrap();
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.metadata(), &meta[..]);
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.tensor_data(f.tensor("x").unwrap()), &xb[..]);
    assert_eq!(f.tensor_data(f.tensor("y").unwrap()), &yb[..]);
    assert_eq!(f.data_offset() % 64, 0);
    assert_eq!(f.tensor("y").unwrap().offset % 64, 0);
}

#[test]
fn writer_rejects_wrong_sizes_and_unfinished_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.gguf");
    let plans = vec![TensorPlan {
        name: "x".into(),
        dims: vec![33],
        ty: GgmlType::Q8_0,
    }];
    assert!(
        GgufWriter::create(&path, &[], plans).is_err(),
        "33 is not whole Q8_0 blocks"
    );
    let plans = vec![TensorPlan {
        name: "x".into(),
        dims: vec![4],
        ty: GgmlType::F32,
    }];
    let mut w = GgufWriter::create(&path, &[], plans.clone()).unwrap();
    assert!(w.write_tensor("x", &[0u8; 15]).is_err());
    let w = GgufWriter::create(&path, &[], plans).unwrap();
    assert!(w.finish().is_err(), "a planned tensor was never written");
    assert!(!path.exists());
}

/// A hand-rolled GGUF encoder for building malformed files field by field.
#[derive(Default)]
struct Raw(Vec<u8>);

impl Raw {
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn str(self, s: &[u8]) -> Self {
        self.u64(s.len() as u64).bytes(s)
    }
    fn header(n_tensors: u64, n_kv: u64) -> Self {
        Raw::default()
            .bytes(b"GGUF")
            .u32(3)
            .u64(n_tensors)
            .u64(n_kv)
    }
    /// A tensor info: name, dims, type id, offset.
    fn tensor(self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
        let mut r = self.str(name.as_bytes()).u32(dims.len() as u32);
        for d in dims {
            r = r.u64(*d);
        }
        r.u32(ty).u64(offset)
    }
    /// Pads to 32 bytes and appends `n` data bytes.
    fn data(mut self, n: usize) -> Self {
        let pad = self.0.len().next_multiple_of(32);
        self.0.resize(pad + n, 0xAB);
        self
    }
    fn parse(self) -> Result<GgufFile, GgufError> {
        GgufFile::from_bytes("bad.gguf", self.0)
    }
}

fn err(r: Raw) -> String {
    let e = r.parse().expect_err("must be rejected");
    let s = e.to_string();
    assert!(s.starts_with("bad.gguf: "), "error names the file: {s}");
    s
}

#[test]
fn a_minimal_hand_encoded_file_is_accepted() {
    let f = Raw::header(2, 0)
        .tensor("a", &[4, 2], 0, 0)
        .tensor("b", &[32], 8, 32)
        .data(32 + 34)
        .parse()
        .unwrap();
    assert_eq!(f.tensors().len(), 2);
    assert_eq!(f.tensor_data(f.tensor("b").unwrap()).len(), 34);
}

#[test]
fn bad_magic() {
    let e = err(Raw::default().bytes(b"GGML").u32(3).u64(0).u64(0));
    assert!(e.contains("not a GGUF file"), "{e}");
}

#[test]
fn bad_version() {
    for v in [1u32, 4, 0x0300_0000] {
        let e = err(Raw::default().bytes(b"GGUF").u32(v).u64(0).u64(0));
        assert!(e.contains(&format!("unsupported GGUF version {v}")), "{e}");
    }
}

#[test]
fn truncated_header() {
    let full = Raw::header(1, 1)
        .str(b"general.architecture")
        .u32(8)
        .str(b"llama")
        .tensor("t", &[4], 0, 0)
        .data(16);
    let n = full.0.len();
    // Every cut inside the header or the data is rejected with an error, never a panic.
    for cut in 0..n {
        let r = Raw(full.0[..cut].to_vec());
        let e = err(r);
        assert!(
            e.contains("truncated") || e.contains("impossible") || e.contains("past the end"),
            "cut at {cut}: {e}"
        );
    }
    let e = err(Raw(full.0[..10].to_vec()));
    assert!(e.contains("truncated at byte 8: tensor count"), "{e}");
}

#[test]
fn truncated_data() {
    let e = err(Raw::header(1, 0).tensor("w", &[8, 2], 0, 0).data(63));
    assert!(
        e.contains("tensor 'w'") && e.contains("past the end"),
        "{e}"
    );
}

#[test]
fn unknown_tensor_type() {
    let e = err(Raw::header(1, 0).tensor("w", &[8], 16, 0).data(64));
    assert!(
        e.contains("tensor 'w' has unknown or unsupported ggml type 16"),
        "{e}"
    );
    let e = err(Raw::header(1, 0).tensor("w", &[8], 999, 0).data(64));
    assert!(e.contains("type 999"), "{e}");
}

#[test]
fn unknown_metadata_value_type() {
    let e = err(Raw::header(0, 1).str(b"k").u32(13).u32(0));
    assert!(e.contains("metadata 'k' has unknown value type 13"), "{e}");
    let e = err(Raw::header(0, 1).str(b"k").u32(9).u32(77).u64(0));
    assert!(e.contains("unknown value type 77"), "{e}");
}

#[test]
fn tensor_data_past_the_end() {
    let e = err(Raw::header(1, 0).tensor("w", &[4], 0, 1 << 40).data(16));
    assert!(
        e.contains("tensor 'w'") && e.contains("past the end"),
        "{e}"
    );
    // Offset + size overflowing u64 is caught too.
    let e = err(Raw::header(1, 0)
        .tensor("w", &[4], 0, u64::MAX - 31)
        .data(16));
    assert!(e.contains("past the end"), "{e}");
}

#[test]
fn overlapping_tensors() {
    let e = err(Raw::header(2, 0)
        .tensor("a", &[16], 0, 0)
        .tensor("b", &[16], 0, 32)
        .data(128));
    assert!(e.contains("overlaps tensor 'a'"), "{e}");
}

#[test]
fn misaligned_tensor_offset() {
    let e = err(Raw::header(1, 0).tensor("w", &[4], 0, 4).data(64));
    assert!(e.contains("not a multiple of the alignment 32"), "{e}");
    let e = err(Raw::header(0, 1).str(b"general.alignment").u32(4).u32(3));
    assert!(
        e.contains("general.alignment") && e.contains("power of two"),
        "{e}"
    );
}

#[test]
fn absurd_counts_do_not_allocate() {
    // Each of these would ask for petabytes if trusted; the reader rejects them from the file size.
    let e = err(Raw::header(1 << 60, 0));
    assert!(
        e.contains("tensor count = 1152921504606846976 is impossible"),
        "{e}"
    );
    let e = err(Raw::header(0, u64::MAX));
    assert!(e.contains("metadata count"), "{e}");
    let e = err(Raw::header(0, 1).u64(1 << 62).bytes(&[0; 16]));
    assert!(
        e.contains("length of metadata key") && e.contains("impossible"),
        "{e}"
    );
    let e = err(Raw::header(0, 1).str(b"k").u32(9).u32(4).u64(1 << 61));
    assert!(
        e.contains("element count of 'k'") && e.contains("impossible"),
        "{e}"
    );
    let e = err(Raw::header(0, 1).str(b"k").u32(9).u32(8).u64(u64::MAX));
    assert!(e.contains("element count of 'k'"), "{e}");
}

#[test]
fn absurd_dimensions() {
    let e = err(Raw::header(1, 0)
        .tensor("w", &[1 << 32, 1 << 32], 0, 0)
        .data(0));
    assert!(e.contains("tensor 'w'") && e.contains("overflow"), "{e}");
    let e = err(Raw::header(1, 0)
        .tensor("w", &[1, 1, 1, 1, 1], 0, 0)
        .data(4));
    assert!(e.contains("5 dimensions"), "{e}");
    let e = err(Raw::header(1, 0).tensor("w", &[4, 0], 0, 0).data(4));
    assert!(e.contains("zero dimension"), "{e}");
    let e = err(Raw::header(1, 0).tensor("w", &[33], 8, 0).data(64));
    assert!(e.contains("not a multiple of q8_0's block size 32"), "{e}");
}

#[test]
fn invalid_utf8() {
    let e = err(Raw::header(0, 1).str(b"bad\xff").u32(4).u32(1));
    // The key's bytes start after the 24-byte header and its 8-byte length.
    assert!(
        e.contains("at byte 32: metadata key is not valid UTF-8"),
        "{e}"
    );
    let e = err(Raw::header(0, 1).str(b"k").u32(8).str(b"\xc3\x28"));
    assert!(e.contains("value of 'k' is not valid UTF-8"), "{e}");
    let e = err(Raw::header(1, 0)
        .str(b"w\xff")
        .u32(1)
        .u64(4)
        .u32(0)
        .u64(0)
        .data(16));
    assert!(e.contains("tensor name is not valid UTF-8"), "{e}");
}

#[test]
fn duplicates() {
    let e = err(Raw::header(0, 2)
        .str(b"k")
        .u32(4)
        .u32(1)
        .str(b"k")
        .u32(4)
        .u32(2));
    assert!(e.contains("duplicate metadata key 'k'"), "{e}");
    let e = err(Raw::header(2, 0)
        .tensor("w", &[4], 0, 0)
        .tensor("w", &[4], 0, 32)
        .data(64));
    assert!(e.contains("duplicate tensor 'w'"), "{e}");
}

#[test]
fn bad_bool_value() {
    let e = err(Raw::header(0, 1).str(b"k").u32(7).bytes(&[2]));
    assert!(e.contains("a bool must be 0 or 1"), "{e}");
}

#[test]
fn open_reports_missing_files_with_their_path() {
    let e = GgufFile::open("/nonexistent/model.gguf")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("/nonexistent/model.gguf: "), "{e}");
}

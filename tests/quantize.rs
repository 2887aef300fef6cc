//! Mixes, conversion and synthetic models against llama.cpp's own llama-quantize: the per-tensor
//! types, `general.file_type`, file sizes and the hash of every converted tensor recorded from the
//! real tool (tests/fixtures/llama_cpp/README.md); plus round-trip error on the test model and,
//! where the llama.cpp binaries are present, loading our files with llama-simple.

use std::path::{Path, PathBuf};

use rawrxd::gguf::{GgufFile, TensorInfo};
use rawrxd::model::synth::{builtin_vocab, write_synthetic, SynthShape};
use rawrxd::model::LlamaHParams;
use rawrxd::quant::convert::{quantize_file, ConvertOptions};
use rawrxd::quant::mix::mix_types;
use rawrxd::quant::{dequantize_rows, GgmlType, Mix, MixModel};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn fixture(name: &str) -> Value {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/fixtures/llama_cpp", name]
        .iter()
        .collect();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The test model, or `None` when it is missing and RAWRXD_ALLOW_MISSING_MODEL=1.
fn test_model() -> Option<PathBuf> {
    let path = std::env::var_os("RAWRXD_TEST_MODEL").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf"),
        PathBuf::from,
    );
    if path.exists() {
        return Some(path);
    }
    if std::env::var("RAWRXD_ALLOW_MISSING_MODEL").as_deref() == Ok("1") {
        eprintln!("skipping: {} missing", path.display());
        return None;
    }
    panic!(
        "test model {} is missing (set RAWRXD_TEST_MODEL, or RAWRXD_ALLOW_MISSING_MODEL=1 to skip)",
        path.display()
    );
}

/// llama.cpp's bin folder, when its tools are built.
fn llama_bin(tool: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("LLAMA_BIN").map_or_else(
        || PathBuf::from("/work/llama/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin"),
        PathBuf::from,
    );
    let p = dir.join(tool);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "skipping the llama.cpp check: {} not found (set LLAMA_BIN)",
            p.display()
        );
        None
    }
}

fn type_names(types: &[GgmlType]) -> Vec<String> {
    types.iter().map(|t| t.ggml_name().to_string()).collect()
}

fn fixture_types(entry: &Value) -> Vec<String> {
    entry["types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

/// Asserts that `mix_types` equals llama-quantize's choice for every tensor and mix.
fn check_recipe(fx: &Value, tensors: &[TensorInfo], model: &MixModel) {
    let names: Vec<&str> = fx["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let ours: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(ours, names, "tensor lists differ");
    let mixes = fx["mixes"].as_object().unwrap();
    assert_eq!(mixes.len(), Mix::ALL.len());
    for mix in Mix::ALL {
        let entry = &mixes[mix.name()];
        let got = type_names(&mix_types(mix, model, tensors));
        let want = fixture_types(entry);
        for ((name, g), w) in names.iter().zip(&got).zip(&want) {
            assert_eq!(g, w, "{mix}: tensor {name}");
        }
        assert_eq!(
            mix.file_type() as u64,
            entry["file_type"].as_u64().unwrap(),
            "{mix}"
        );
    }
}

const SYNTH_FIXTURES: [&str; 2] = [
    "quantize_types_synth_gqa4.json",
    "quantize_types_synth_tied_ff288.json",
];

fn synth_shape(fx: &Value) -> (SynthShape, u64) {
    let shape = SynthShape::parse(fx["shape"].as_str().unwrap()).unwrap();
    (shape, fx["seed"].as_u64().unwrap())
}

#[test]
fn mix_recipe_matches_llama_quantize_on_synthetic_models() {
    for name in SYNTH_FIXTURES {
        let fx = fixture(name);
        let (shape, _) = synth_shape(&fx);
        check_recipe(
            &fx,
            &shape.tensors(),
            &MixModel::from_hparams(&shape.hparams()),
        );
    }
}

#[test]
fn mix_recipe_matches_llama_quantize_on_smollm2() {
    let Some(path) = test_model() else { return };
    let f = GgufFile::open(&path).unwrap();
    let hp = LlamaHParams::from_gguf(&f).unwrap();
    let fx = fixture("quantize_types_smollm2_q4_1.json");
    check_recipe(&fx, f.tensors(), &MixModel::from_file(&f, &hp));
    // the fallbacks show: its Q4_K_M file holds q5_0, q8_0, q4_K and q6_K weights
    let t = mix_types(Mix::Q4KM, &MixModel::from_hparams(&hp), f.tensors());
    for ty in [GgmlType::Q5_0, GgmlType::Q8_0, GgmlType::Q4K, GgmlType::Q6K] {
        assert!(t.contains(&ty), "{ty}");
    }
}

/// The data hash the fixture script records: every tensor in name order, name then bytes.
fn data_hash(f: &GgufFile) -> String {
    let mut ts: Vec<&TensorInfo> = f.tensors().iter().collect();
    ts.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h = Sha256::new();
    for t in ts {
        h.update(t.name.as_bytes());
        h.update(f.tensor_data(t));
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes the F16 synthetic model a fixture was made from.
fn synth_f16(fx: &Value, dir: &Path) -> PathBuf {
    let (shape, seed) = synth_shape(fx);
    let path = dir.join("source.f16.gguf");
    let types = mix_types(
        Mix::F16,
        &MixModel::from_hparams(&shape.hparams()),
        &shape.tensors(),
    );
    let vocab = builtin_vocab(shape.n_vocab).unwrap();
    write_synthetic(
        &path,
        &shape,
        &types,
        Mix::F16.file_type(),
        vocab,
        seed,
        |_| {},
    )
    .unwrap();
    path
}

/// rawrxd's conversion of an F16 model equals llama-quantize's output byte for byte (every
/// tensor's data) and in file size, for every mix.
#[test]
fn quantize_output_is_identical_to_llama_quantize() {
    for name in SYNTH_FIXTURES {
        let fx = fixture(name);
        let dir = tempfile::tempdir().unwrap();
        let src = GgufFile::open(synth_f16(&fx, dir.path())).unwrap();
        let hp = LlamaHParams::from_gguf(&src).unwrap();
        for mix in Mix::ALL {
            let entry = &fx["mixes"][mix.name()];
            let out = dir.path().join(format!("{mix}.gguf"));
            let types = mix_types(mix, &MixModel::from_file(&src, &hp), src.tensors());
            let opts = ConvertOptions {
                allow_requantize: false,
                file_type: mix.file_type(),
            };
            let summary = quantize_file(&src, &out, &types, &opts, |_| {}).unwrap();
            let q = GgufFile::open(&out).unwrap();
            assert_eq!(
                summary.file_size_out,
                entry["file_size"].as_u64().unwrap(),
                "{name} {mix}: file size"
            );
            assert_eq!(
                data_hash(&q),
                entry["data_sha256"].as_str().unwrap(),
                "{name} {mix}: tensor data differ from llama-quantize's"
            );
            assert_eq!(
                q.get("general.file_type").and_then(|v| v.as_u64()),
                Some(mix.file_type() as u64)
            );
            assert_eq!(
                q.get("general.quantization_version")
                    .and_then(|v| v.as_u64()),
                Some(2)
            );
            std::fs::remove_file(&out).unwrap();
        }
    }
}

/// A model synthesized straight to a mix has the size llama-quantize gives the same shape, and
/// that size is the header plus every tensor's `row_bytes × rows`, padded to the alignment.
#[test]
fn synth_files_have_llama_quantize_sizes() {
    let fx = fixture(SYNTH_FIXTURES[1]);
    let (shape, seed) = synth_shape(&fx);
    let dir = tempfile::tempdir().unwrap();
    for mix in [
        Mix::Q2K,
        Mix::Q3KM,
        Mix::Q4KM,
        Mix::Q5KS,
        Mix::Q6K,
        Mix::Q8_0,
        Mix::Q4_1,
    ] {
        let path = dir.path().join(format!("{mix}.gguf"));
        let types = mix_types(
            mix,
            &MixModel::from_hparams(&shape.hparams()),
            &shape.tensors(),
        );
        let vocab = builtin_vocab(shape.n_vocab).unwrap();
        let s =
            write_synthetic(&path, &shape, &types, mix.file_type(), vocab, seed, |_| {}).unwrap();
        let f = GgufFile::open(&path).unwrap();
        let mut expected = f.data_offset();
        for (t, ty) in f.tensors().iter().zip(&types) {
            assert_eq!(t.ty, *ty);
            let bytes = (ty.row_bytes(t.row_len()).unwrap() * t.n_rows()) as u64;
            assert_eq!(t.n_bytes, bytes, "{}", t.name);
            expected = (expected + bytes).next_multiple_of(f.alignment());
        }
        assert_eq!(s.file_size, expected, "{mix}");
        assert_eq!(
            s.file_size,
            fx["mixes"][mix.name()]["file_size"].as_u64().unwrap(),
            "{mix}: differs from llama-quantize's file of this shape"
        );
    }
}

/// Dequantized output stays within the target format's step of the source values.
#[test]
fn quantizing_the_test_model_to_q8_0_and_f16_round_trips() {
    let Some(path) = test_model() else { return };
    let src = GgufFile::open(&path).unwrap();
    let hp = LlamaHParams::from_gguf(&src).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let model = MixModel::from_file(&src, &hp);
    let refused = quantize_file(
        &src,
        &dir.path().join("x.gguf"),
        &mix_types(Mix::Q8_0, &model, src.tensors()),
        &ConvertOptions {
            allow_requantize: false,
            file_type: 7,
        },
        |_| {},
    );
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains("--allow-requantize"));
    for mix in [Mix::Q8_0, Mix::F16] {
        let out = dir.path().join(format!("{mix}.gguf"));
        let types = mix_types(mix, &model, src.tensors());
        let opts = ConvertOptions {
            allow_requantize: true,
            file_type: mix.file_type(),
        };
        quantize_file(&src, &out, &types, &opts, |_| {}).unwrap();
        let q = GgufFile::open(&out).unwrap();
        assert_eq!(q.tensors().len(), src.tensors().len());
        for (a, b) in src.tensors().iter().zip(q.tensors()) {
            assert_eq!((&a.name, &a.dims), (&b.name, &b.dims));
            let x = dequantize_rows(a.ty, src.tensor_data(a), a.row_len()).unwrap();
            let y = dequantize_rows(b.ty, q.tensor_data(b), b.row_len()).unwrap();
            for (bx, by) in x.chunks(32).zip(y.chunks(32)) {
                let amax = bx.iter().fold(0f32, |m, v| m.max(v.abs()));
                // Q8_0: half a step of amax/127 plus the f16 scale's rounding; F16: 2^-11 relative
                let tol = match b.ty {
                    GgmlType::Q8_0 => amax / 127.0 * 0.5 + amax * 1e-3,
                    GgmlType::F16 => amax * 4.9e-4 + 1e-7,
                    _ => 0.0,
                };
                for (u, v) in bx.iter().zip(by) {
                    assert!((u - v).abs() <= tol, "{} ({}): {u} vs {v}", b.name, b.ty);
                }
            }
        }
    }
    // metadata other than the two quantization keys is carried over unchanged
    let q = GgufFile::open(dir.path().join("Q8_0.gguf")).unwrap();
    for (k, v) in src.metadata() {
        if k != "general.file_type" && k != "general.quantization_version" {
            assert_eq!(q.get(k), Some(v), "{k}");
        }
    }
}

/// llama.cpp loads and runs what rawrxd writes (skipped, with a message, without its binaries).
#[test]
fn llama_cpp_runs_synthetic_and_quantized_files() {
    let Some(simple) = llama_bin("llama-simple") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let shape = SynthShape::parse("n_embd=256,n_layer=2,n_head=4,n_head_kv=2,n_ff=512,n_vocab=400")
        .unwrap();
    let mut files = Vec::new();
    for mix in [Mix::Q4KM, Mix::Q2K, Mix::Q8_0] {
        let path = dir.path().join(format!("{mix}.gguf"));
        let types = mix_types(
            mix,
            &MixModel::from_hparams(&shape.hparams()),
            &shape.tensors(),
        );
        let vocab = builtin_vocab(shape.n_vocab).unwrap();
        write_synthetic(&path, &shape, &types, mix.file_type(), vocab, 1, |_| {}).unwrap();
        files.push(path);
    }
    // and a file converted by `quantize` from one of them
    let src = GgufFile::open(&files[2]).unwrap();
    let hp = LlamaHParams::from_gguf(&src).unwrap();
    let out = dir.path().join("requant.Q5_K_M.gguf");
    let types = mix_types(Mix::Q5KM, &MixModel::from_file(&src, &hp), src.tensors());
    let opts = ConvertOptions {
        allow_requantize: true,
        file_type: Mix::Q5KM.file_type(),
    };
    quantize_file(&src, &out, &types, &opts, |_| {}).unwrap();
    files.push(out);
    for f in files {
        let run = std::process::Command::new(&simple)
            .arg("-m")
            .arg(&f)
            .args(["-n", "4", "hi"])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{}: {log}", f.display());
        assert!(log.contains("decoded 4 tokens"), "{}: {log}", f.display());
    }
}

/// `--vocab-from`: the donor's tokenizer is copied whole, and a size mismatch is refused.
#[test]
fn synth_takes_a_donor_vocabulary() {
    let Some(path) = test_model() else { return };
    let donor = GgufFile::open(&path).unwrap();
    let shape = SynthShape::parse("smollm-135m,n_layer=1").unwrap();
    let vocab = rawrxd::model::synth::donor_vocab(&donor, shape.n_vocab).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("donor.gguf");
    let types = mix_types(
        Mix::Q8_0,
        &MixModel::from_hparams(&shape.hparams()),
        &shape.tensors(),
    );
    write_synthetic(&out, &shape, &types, 7, vocab, 5, |_| {}).unwrap();
    let f = GgufFile::open(&out).unwrap();
    for (k, v) in donor.metadata() {
        if k.starts_with("tokenizer.") {
            assert_eq!(f.get(k), Some(v), "{k}");
        }
    }
    let err = rawrxd::model::synth::donor_vocab(&donor, 32000).unwrap_err();
    assert!(err.to_string().contains("49152"), "{err}");
    if let Some(simple) = llama_bin("llama-simple") {
        let run = std::process::Command::new(simple)
            .arg("-m")
            .arg(&out)
            .args(["-n", "4", "hi"])
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
}

/// The two commands end to end: per-tensor lines, totals, a scheme, and errors with locations.
#[test]
fn quantize_and_synth_commands() {
    let exe = env!("CARGO_BIN_EXE_rawrxd");
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(exe)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let p = |name: &str| dir.path().join(name).to_string_lossy().to_string();
    let shape = "n_embd=256,n_layer=4,n_head=4,n_head_kv=1,n_ff=512,n_vocab=300";
    let (code, stdout, stderr) = run(&[
        "synth",
        "--shape",
        shape,
        "--type",
        "q4_0",
        "-o",
        &p("a.gguf"),
        "-t",
        "2",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 1 + 4 * 9 + 2 + 1, "{stdout}");
    assert!(stdout.contains("blk.3.ffn_down.weight") && stdout.contains("f32 → q4_0"));

    // Q4_0 is quantized: converting it needs --allow-requantize
    let (code, _, stderr) = run(&["quantize", &p("a.gguf"), &p("b.gguf"), "Q8_0"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("--allow-requantize"), "{stderr}");

    let scheme = concat!(env!("CARGO_MANIFEST_DIR"), "/schemes/hybrid_example.lua");
    let (code, stdout, stderr) = run(&[
        "quantize",
        &p("a.gguf"),
        &p("b.gguf"),
        "--scheme",
        scheme,
        "--allow-requantize",
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("requantizing"), "{stderr}");
    assert!(
        stdout.contains("q4_0 → q6_K") && stdout.contains("q4_0 → q4_K"),
        "{stdout}"
    );
    let last = stdout.lines().last().unwrap();
    assert!(last.contains("39 tensors") && last.contains(" s"), "{last}");
    let f = GgufFile::open(p("b.gguf")).unwrap();
    let ty = |n: &str| f.tensor(n).unwrap().ty;
    assert_eq!(ty("token_embd.weight"), GgmlType::Q8_0);
    assert_eq!(ty("blk.0.ffn_down.weight"), GgmlType::Q6K);
    assert_eq!(ty("blk.2.ffn_down.weight"), GgmlType::Q6K);
    assert_eq!(ty("blk.2.attn_q.weight"), GgmlType::Q4K);

    let bad = p("bad.lua");
    std::fs::write(
        &bad,
        "return {\n  default = 'q4_k',\n  { role = 'attn_v' type = 'q6_k' },\n}\n",
    )
    .unwrap();
    let (code, _, stderr) = run(&["quantize", &p("a.gguf"), &p("c.gguf"), "--scheme", &bad]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains(&format!("{bad}:3:")), "{stderr}");
    assert!(!dir.path().join("c.gguf").exists());

    let (code, _, stderr) = run(&[
        "synth",
        "--shape",
        "llama-2b",
        "--type",
        "Q8_0",
        "-o",
        &p("d.gguf"),
    ]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("llama-2b") && stderr.contains("llama-7b"),
        "{stderr}"
    );
}

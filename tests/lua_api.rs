//! Whole flows of the Lua API on the CPU engine and the test model: a hybrid scheme edited while
//! a script runs (hot swap into the loaded engine), quality numbers against a fresh load, the
//! quant and model APIs.
//!
//! The model is models/SmolLM2-135M-Instruct.Q4_1.gguf (or `$RAWRXD_TEST_MODEL`); these tests fail
//! when it is missing unless `RAWRXD_ALLOW_MISSING_MODEL=1`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rawrxd::lua::Host;

/// The test model, or `None` when it is missing and that is allowed.
fn test_model() -> Option<PathBuf> {
    let p = match std::env::var_os("RAWRXD_TEST_MODEL") {
        Some(p) => PathBuf::from(p),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
        }
    };
    if p.is_file() {
        return Some(p);
    }
    assert!(
        std::env::var_os("RAWRXD_ALLOW_MISSING_MODEL").is_some_and(|v| v == "1"),
        "test model missing: {} (run scripts/setup.sh)",
        p.display()
    );
    None
}

/// A cache directory shared by the tests of this binary (quantized variants are reused).
fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("rawrxd-lua-api-cache")
}

fn eval_text() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/eval.txt")
}

/// Writes `text` to `path` the way editors do: a new file renamed over the old one.
fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("lua.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

const SCHEME_V1: &str = "return {\n  default = \"q8_0\",\n}\n";
const SCHEME_V2: &str =
    "return {\n  default = \"q8_0\",\n  { role = \"ffn_down\", type = \"q4_0\" },\n}\n";
const SCHEME_BROKEN: &str =
    "return {\n  default = \"q8_0\",\n  { role = \"ffn_down\", type = \"q4_0\" }\n  { role = \"attn_v\" },\n}\n";

#[test]
fn scheme_edit_while_running_swaps_tensors_into_the_engine() {
    let Some(model) = test_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let scheme = dir.path().join("scheme.lua");
    std::fs::write(&scheme, SCHEME_V1).unwrap();
    let ready = dir.path().join("ready");
    let script = dir.path().join("plan.lua");
    std::fs::write(
        &script,
        r#"
        local rx = require "rawrxd"
        local a = rx.args
        local eng = rx.engine.load { model = a.model, scheme = a.scheme, backend = "cpu",
                                     ctx = 32, cache = a.cache, quiet = true, progress = false }
        local function ppl() return eng:perplexity { text = a.text, ctx = 32, chunks = 1,
                                                     progress = false }.ppl end
        -- Waits (bounded) for the generation to move or a reload error, benching meanwhile.
        local function wait(g0)
          for _ = 1, 400 do
            rx.bench.run(eng, { prompt = 4, gen = 2, repeats = 1, warmup = 0, progress = false })
            if rx.generation() ~= g0 or rx.reload_error() then return end
            rx.time.sleep(0.05)
          end
          error("the scheme edit was never picked up")
        end
        types1 = eng:types()["blk.0.ffn_down.weight"]
        ppl1 = ppl()
        gen1 = rx.generation()
        io.open(a.ready, "w"):close()
        wait(gen1)
        gen2 = rx.generation()
        types2 = eng:types()["blk.0.ffn_down.weight"]
        attn2 = eng:types()["blk.0.attn_q.weight"]
        ppl2 = ppl()
        engine_gen2 = eng:info().generation
        weights2 = eng:memory().weights
        decode2 = eng:bench { prompt = 0, gen = 1, repeats = 1, warmup = 0,
                              progress = false }.decode_weight_bytes
        io.open(a.ready .. "2", "w"):close()
        wait(gen2)
        gen3 = rx.generation()
        err3 = rx.reload_error()
        types3 = eng:types()["blk.0.ffn_down.weight"]
        ppl3 = ppl()
        -- The oracle: the same scheme loaded from scratch into a new engine.
        local fresh = rx.engine.load { model = a.model, scheme = a.fresh, backend = "cpu",
                                       ctx = 32, cache = a.cache, quiet = true, progress = false }
        ppl_fresh = fresh:perplexity { text = a.text, ctx = 32, chunks = 1, progress = false }.ppl
        weights_fresh = fresh:memory().weights
        decode_fresh = fresh:bench { prompt = 0, gen = 1, repeats = 1, warmup = 0,
                                     progress = false }.decode_weight_bytes
        "#,
    )
    .unwrap();
    let fresh = dir.path().join("fresh.lua");
    std::fs::write(&fresh, SCHEME_V2).unwrap();
    let arg = |k: &str, v: &Path| [format!("--{k}"), v.to_string_lossy().into_owned()];
    let args: Vec<String> = [
        arg("model", &model),
        arg("scheme", &scheme),
        arg("cache", &cache_dir()),
        arg("text", &eval_text()),
        arg("ready", &ready),
        arg("fresh", &fresh),
    ]
    .concat();

    let editor = {
        let (scheme, ready) = (scheme.clone(), ready.clone());
        std::thread::spawn(move || {
            let wait_for = |p: &Path| {
                let deadline = Instant::now() + Duration::from_secs(600);
                while !p.exists() {
                    assert!(Instant::now() < deadline, "the script never got ready");
                    std::thread::sleep(Duration::from_millis(20));
                }
            };
            wait_for(&ready);
            save(&scheme, SCHEME_V2);
            wait_for(&ready.with_file_name("ready2"));
            save(&scheme, SCHEME_BROKEN);
        })
    };
    let host = Host::with_debounce(&script, &args, Duration::from_millis(50)).unwrap();
    let run = host.run();
    editor.join().unwrap();
    run.unwrap();

    let lua = host.lua();
    let get_s = |k: &str| lua.globals().get::<String>(k).unwrap();
    let get_f = |k: &str| lua.globals().get::<f64>(k).unwrap();
    let get_i = |k: &str| lua.globals().get::<i64>(k).unwrap();
    // The edit re-typed ffn_down only, and the generation moved.
    assert_eq!(get_s("types1"), "q8_0");
    assert_eq!(get_s("types2"), "q4_0");
    assert_eq!(get_s("attn2"), "q8_0");
    assert_eq!(get_i("gen2"), get_i("gen1") + 1);
    assert_eq!(get_i("engine_gen2"), get_i("gen2"));
    // The swapped engine computes exactly what a fresh load of the new scheme computes, and that
    // differs from the old scheme's.
    let (ppl1, ppl2, ppl3, fresh) = (
        get_f("ppl1"),
        get_f("ppl2"),
        get_f("ppl3"),
        get_f("ppl_fresh"),
    );
    assert_eq!(ppl2, fresh, "swapped engine vs fresh load");
    assert_ne!(ppl1, ppl2);
    // Its memory accounting follows the swap: the same as the fresh engine's.
    assert_eq!(get_i("weights2"), get_i("weights_fresh"));
    assert_eq!(get_i("decode2"), get_i("decode_fresh"));
    // The broken edit is reported with file and line; the engine keeps the last good scheme.
    let err = get_s("err3");
    assert!(err.contains("scheme.lua:4:"), "{err}");
    assert_eq!(get_i("gen3"), get_i("gen2"));
    assert_eq!(get_s("types3"), "q4_0");
    assert_eq!(ppl3, ppl2);
}

#[test]
fn quant_scheme_and_model_apis() {
    let Some(model) = test_model() else { return };
    let dir = tempfile::tempdir().unwrap();
    let scheme = dir.path().join("s.lua");
    std::fs::write(&scheme, SCHEME_V2).unwrap();
    let script = dir.path().join("plan.lua");
    std::fs::write(
        &script,
        r#"
        local rx = require "rawrxd"
        local a = rx.args
        local r = rx.quant.scheme(a.scheme, a.model)
        down, q, norm, n = r.types["blk.3.ffn_down.weight"], r.types["blk.3.attn_q.weight"],
                           r.types["blk.3.attn_norm.weight"], #r.tensors
        rule = r.tensors[1].rule
        local out = a.dir .. "/q8.gguf"
        local s = rx.quant.quantize { input = a.model, output = out, type = "q8_0",
                                      allow_requantize = true, progress = false }
        size, info_size = s.file_size_out, rx.model.open(out):info().file_size
        local ok, e = pcall(rx.quant.quantize, { input = a.model, output = out, type = "q8_0",
                                                 progress = false })
        requant_err = tostring(e)
        mixes = table.concat(rx.quant.mixes(), ",")
        local m = rx.model.synth { shape = "n_embd=256,n_layer=2,n_head=4,n_ff=512,n_vocab=300",
                                   type = "q4_k_m", out = a.dir .. "/syn.gguf", progress = false }
        synth_layers = m:info().hparams.n_layer
        synth_types = m:info().types
        "#,
    )
    .unwrap();
    let args: Vec<String> = [
        "--model".into(),
        model.to_string_lossy().into_owned(),
        "--scheme".into(),
        scheme.to_string_lossy().into_owned(),
        "--dir".into(),
        dir.path().to_string_lossy().into_owned(),
    ]
    .to_vec();
    let host = Host::new(&script, &args).unwrap();
    host.run().unwrap();
    let g = host.lua().globals();
    assert_eq!(g.get::<String>("down").unwrap(), "q4_0");
    assert_eq!(g.get::<String>("q").unwrap(), "q8_0");
    assert_eq!(g.get::<String>("norm").unwrap(), "f32");
    let f = rawrxd::gguf::GgufFile::open(&model).unwrap();
    assert_eq!(g.get::<usize>("n").unwrap(), f.tensors().len());
    // The file quantize reports is the file on disk, and it holds Q8_0 weights.
    let out = dir.path().join("q8.gguf");
    let size = std::fs::metadata(&out).unwrap().len();
    assert_eq!(g.get::<u64>("size").unwrap(), size);
    assert_eq!(g.get::<u64>("info_size").unwrap(), size);
    let q8 = rawrxd::gguf::GgufFile::open(&out).unwrap();
    let ffn = q8.tensor("blk.0.ffn_up.weight").unwrap();
    assert_eq!(ffn.ty, rawrxd::quant::GgmlType::Q8_0);
    assert!(
        g.get::<String>("requant_err")
            .unwrap()
            .contains("requantizing is disabled"),
        "{}",
        g.get::<String>("requant_err").unwrap()
    );
    assert!(g.get::<String>("mixes").unwrap().contains("Q4_K_M"));
    assert_eq!(g.get::<usize>("synth_layers").unwrap(), 2);
    let syn = rawrxd::gguf::GgufFile::open(dir.path().join("syn.gguf")).unwrap();
    assert!(syn
        .tensors()
        .iter()
        .any(|t| t.ty == rawrxd::quant::GgmlType::Q4K));
}

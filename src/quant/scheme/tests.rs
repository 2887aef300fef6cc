use super::*;
use crate::model::RopeMode;

/// A llama-shaped tensor list: `n_layer` layers of width `n_embd` (KV width `n_kv`).
fn model(n_layer: usize, n_embd: u64, n_kv: u64, tied: bool) -> (Vec<TensorInfo>, LlamaHParams) {
    let t = |name: String, dims: &[u64]| TensorInfo {
        name,
        dims: dims.to_vec(),
        ty: GgmlType::F32,
        offset: 0,
        n_bytes: 0,
    };
    let mut v = vec![t("token_embd.weight".into(), &[n_embd, 1000])];
    for l in 0..n_layer {
        let b = |s: &str| format!("blk.{l}.{s}.weight");
        v.push(t(b("attn_norm"), &[n_embd]));
        v.push(t(b("attn_q"), &[n_embd, n_embd]));
        v.push(t(b("attn_k"), &[n_embd, n_kv]));
        v.push(t(b("attn_v"), &[n_embd, n_kv]));
        v.push(t(b("attn_output"), &[n_embd, n_embd]));
        v.push(t(b("ffn_norm"), &[n_embd]));
        v.push(t(b("ffn_gate"), &[n_embd, 2 * n_embd]));
        v.push(t(b("ffn_up"), &[n_embd, 2 * n_embd]));
        v.push(t(b("ffn_down"), &[2 * n_embd, n_embd]));
    }
    v.push(t("output_norm.weight".into(), &[n_embd]));
    if !tied {
        v.push(t("output.weight".into(), &[n_embd, 1000]));
    }
    let hp = LlamaHParams {
        arch: "llama".into(),
        n_vocab: 1000,
        n_embd: n_embd as usize,
        n_layer,
        n_head: 4,
        n_head_kv: (4 * n_kv / n_embd) as usize,
        head_dim: n_embd as usize / 4,
        n_ff: 2 * n_embd as usize,
        n_ctx_train: 2048,
        rms_norm_eps: 1e-5,
        rope_freq_base: 10000.0,
        n_rot: n_embd as usize / 4,
        rope_mode: RopeMode::Normal,
        tied_embeddings: tied,
    };
    (v, hp)
}

fn ty_of(r: &Resolution, name: &str) -> GgmlType {
    r.assignments
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no tensor {name}"))
        .ty
}

fn load(src: &str) -> Result<Scheme> {
    Scheme::from_source("schemes/test.lua", src)
}

#[test]
fn roles_ranges_names_and_later_rules_override_earlier() {
    let s = load(
        r#"
        return {
          default = "q4_k",
          { role = "token_embd", type = "q8_0" },
          { role = "attn_v", type = "q6_k" },
          { layers = "0-1", type = "q5_k" },
          { layers = "6-", role = { "ffn_up", "ffn_gate" }, type = "q2_k" },
          { layers = { 3, 5 }, type = "q3_k" },
          { name = "blk%.4%.ffn_down", type = "f16" },
        }"#,
    )
    .unwrap();
    let (tensors, hp) = model(8, 256, 256, false);
    let r = s.resolve_tensors(&tensors, &hp).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(ty_of(&r, "token_embd.weight"), GgmlType::Q8_0);
    assert_eq!(ty_of(&r, "output.weight"), GgmlType::Q4K);
    assert_eq!(ty_of(&r, "blk.2.attn_v.weight"), GgmlType::Q6K);
    // layers 0-1 come after the attn_v rule, so they win there
    assert_eq!(ty_of(&r, "blk.0.attn_v.weight"), GgmlType::Q5K);
    assert_eq!(ty_of(&r, "blk.1.ffn_down.weight"), GgmlType::Q5K);
    assert_eq!(ty_of(&r, "blk.7.ffn_up.weight"), GgmlType::Q2K);
    assert_eq!(ty_of(&r, "blk.7.ffn_gate.weight"), GgmlType::Q2K);
    assert_eq!(ty_of(&r, "blk.7.ffn_down.weight"), GgmlType::Q4K);
    assert_eq!(ty_of(&r, "blk.3.attn_q.weight"), GgmlType::Q3K);
    assert_eq!(ty_of(&r, "blk.4.attn_q.weight"), GgmlType::Q4K);
    assert_eq!(ty_of(&r, "blk.4.ffn_down.weight"), GgmlType::F16);
    // norms are never touched, not even by a layer rule that covers them
    assert_eq!(ty_of(&r, "blk.0.attn_norm.weight"), GgmlType::F32);
    let a = r
        .assignments
        .iter()
        .find(|a| a.name == "blk.3.attn_v.weight")
        .unwrap();
    assert_eq!(a.rule_index, Some(5));
    let a = r
        .assignments
        .iter()
        .find(|a| a.name == "blk.4.attn_q.weight")
        .unwrap();
    assert_eq!(a.rule_index, None);
}

#[test]
fn functions_receive_layer_count_and_tensor() {
    let s = load(
        r#"
        return {
          default = "q4_k",
          { role = "ffn_down", type = function(layer, n, t)
              assert(t.role == "ffn_down" and t.layer == layer and t.shape[1] == 512)
              assert(t.n_elements == 512 * 256 and n == 8)
              return layer % 4 == 0 and "q5_k" or nil
            end },
          { type = function(layer, n, t) if layer == nil then return "q8_0" end end },
        }"#,
    )
    .unwrap();
    let (tensors, hp) = model(8, 256, 64, false);
    let r = s.resolve_tensors(&tensors, &hp).unwrap();
    assert_eq!(ty_of(&r, "blk.0.ffn_down.weight"), GgmlType::Q5K);
    assert_eq!(ty_of(&r, "blk.4.ffn_down.weight"), GgmlType::Q5K);
    assert_eq!(ty_of(&r, "blk.5.ffn_down.weight"), GgmlType::Q4K);
    assert_eq!(ty_of(&r, "token_embd.weight"), GgmlType::Q8_0);
    assert_eq!(ty_of(&r, "output.weight"), GgmlType::Q8_0);
    assert_eq!(r.file_type, Mix::Q4KM.file_type());
}

#[test]
fn mix_default_starts_from_the_recipe() {
    let s = load(r#"return { default = "q4_k_m", { role = "attn_q", type = "q8_0" } }"#).unwrap();
    let (tensors, hp) = model(8, 256, 256, false);
    let r = s.resolve_tensors(&tensors, &hp).unwrap();
    let recipe = mix_types(Mix::Q4KM, &MixModel::from_hparams(&hp), &tensors);
    for ((t, a), want) in tensors.iter().zip(&r.assignments).zip(recipe) {
        let want = if t.name.ends_with("attn_q.weight") {
            GgmlType::Q8_0
        } else {
            want
        };
        assert_eq!(a.ty, want, "{}", t.name);
    }
    assert_eq!(ty_of(&r, "output.weight"), GgmlType::Q6K);
    assert_eq!(r.file_type, 15);
}

#[test]
fn unmatched_rules_are_reported() {
    let s = load(
        r#"return { default = "q4_k",
                    { layers = "40-", type = "q6_k" },
                    { name = "nothing_like_this", type = "q6_k" },
                    { role = "attn_v", type = "q6_k" } }"#,
    )
    .unwrap();
    let (tensors, hp) = model(4, 256, 256, false);
    let r = s.resolve_tensors(&tensors, &hp).unwrap();
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    assert!(
        r.warnings[0].contains("rule 1 (layers=40-)"),
        "{}",
        r.warnings[0]
    );
    assert!(r.warnings[1].contains("rule 2"), "{}", r.warnings[1]);
}

#[test]
fn a_type_that_does_not_fit_names_tensor_and_rule_unless_fallback() {
    let src = r#"return { default = "q8_0", { role = "attn_v", type = "q4_k" } }"#;
    let (tensors, hp) = model(2, 576, 192, true);
    let e = load(src)
        .unwrap()
        .resolve_tensors(&tensors, &hp)
        .unwrap_err()
        .to_string();
    assert!(e.contains("blk.0.attn_v.weight"), "{e}");
    assert!(e.contains("rule 1 (role=\"attn_v\")"), "{e}");
    assert!(e.contains("576"), "{e}");

    let src = r#"return { default = "q8_0", { role = "attn_v", type = "q4_k", fallback = true } }"#;
    let r = load(src).unwrap().resolve_tensors(&tensors, &hp).unwrap();
    assert_eq!(ty_of(&r, "blk.0.attn_v.weight"), GgmlType::Q5_0);

    let e = load(r#"return { default = "q6_k" }"#)
        .unwrap()
        .resolve_tensors(&tensors, &hp)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the default") && e.contains("token_embd.weight"),
        "{e}"
    );
    let r = load(r#"return { default = "q6_k", fallback = true }"#)
        .unwrap()
        .resolve_tensors(&tensors, &hp)
        .unwrap();
    assert_eq!(ty_of(&r, "blk.1.ffn_up.weight"), GgmlType::Q8_0);
}

#[test]
fn bad_types_are_errors() {
    let e = load(r#"return { default = "q4_k", { role = "attn_v", type = "q9_k" } }"#)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("schemes/test.lua") && e.contains("rule 1") && e.contains("q9_k"),
        "{e}"
    );
    let e = load(r#"return { default = "q4_k_x" }"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("q4_k_x"), "{e}");
    let e = load(r#"return { default = "q4_k", { role = "attn_vv", type = "q4_k" } }"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("attn_vv"), "{e}");
    let e = load(r#"return { default = "q4_k", { rol = "attn_v", type = "q4_k" } }"#)
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown key 'rol'"), "{e}");

    let s = load(
        r#"return { default = "q4_k", { role = "attn_v", type = function() return "q7" end } }"#,
    )
    .unwrap();
    let (tensors, hp) = model(2, 256, 256, false);
    let e = s.resolve_tensors(&tensors, &hp).unwrap_err().to_string();
    assert!(
        e.contains("blk.0.attn_v.weight") && e.contains("rule 1") && e.contains("q7"),
        "{e}"
    );
}

#[test]
fn lua_errors_carry_file_and_line() {
    let e = load("return {\n  default = \"q4_k\",\n  { role = \"attn_v\" type = \"q6_k\" },\n}")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("schemes/test.lua:3:"), "{e}");

    let e = load("local x = nil\n\nreturn { default = x.y }")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("schemes/test.lua:3:"), "{e}");

    let s = load(
        "return {\n  default = \"q4_k\",\n  { role = \"attn_v\", type = function(l)\n    return l + nil\n  end },\n}",
    )
    .unwrap();
    let (tensors, hp) = model(2, 256, 256, false);
    let e = s.resolve_tensors(&tensors, &hp).unwrap_err().to_string();
    assert!(e.starts_with("schemes/test.lua:4:"), "{e}");
    assert!(e.contains("blk.0.attn_v.weight"), "{e}");
}

#[test]
fn load_reads_files_and_names_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.lua");
    std::fs::write(&p, "return { default = 'q8_0' }").unwrap();
    let s = Scheme::load(&p).unwrap();
    assert_eq!(s.default_spec(), SchemeDefault::Type(GgmlType::Q8_0));
    let e = Scheme::load(dir.path().join("missing.lua"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.lua"), "{e}");
}

#[test]
fn the_shipped_example_resolves_on_a_256_wide_model() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schemes/hybrid_example.lua");
    let s = Scheme::load(path).unwrap();
    let (tensors, hp) = model(12, 256, 64, false);
    let r = s.resolve_tensors(&tensors, &hp).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(ty_of(&r, "token_embd.weight"), GgmlType::Q8_0);
    assert_eq!(ty_of(&r, "blk.5.attn_v.weight"), GgmlType::Q6K);
    assert_eq!(ty_of(&r, "blk.1.ffn_down.weight"), GgmlType::Q6K);
    assert_eq!(ty_of(&r, "blk.10.ffn_down.weight"), GgmlType::Q6K);
    assert_eq!(ty_of(&r, "blk.5.ffn_down.weight"), GgmlType::Q4K);
    assert_eq!(ty_of(&r, "blk.5.attn_q.weight"), GgmlType::Q4K);
}

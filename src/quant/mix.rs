//! The standard quantization mixes (llama-quantize's `Q4_K_M`, `Q6_K`, `Q8_0`, ...) and the
//! per-tensor recipe that turns a mix into one type per tensor.
//!
//! The recipe is llama.cpp's `llama_tensor_get_type` (src/llama-quant.cpp) restricted to the mixes
//! rawrxd can write: which tensors may be quantized at all (`tensor_allows_quantization`), the
//! output / tied-embedding rule, the attn_v and ffn_down bumps with their `use_more_bits` layer
//! pattern, the GQA and 70B special cases and the fallback to a 32-block type when a row is not a
//! whole number of 256-element super-blocks (`tensor_type_fallback`).
//!
//! Invariants: [`mix_types`] depends only on tensor names, shapes and source types plus the few
//! hyper-parameters in [`MixModel`], never on weight values; it returns exactly the type
//! llama-quantize (without imatrix or overrides) picks for every tensor of a llama-family model
//! (checked against fixtures recorded from the real tool). llama.cpp walks tensors in its own
//! order (non-block tensors first, then by layer number, then by name) and its attn_v counter
//! depends on that order, so the recipe sorts a copy the same way; results come back in the
//! caller's order.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use super::GgmlType;
use crate::gguf::{GgufFile, TensorInfo};
use crate::model::LlamaHParams;

/// A standard mix, named as llama-quantize names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mix {
    Q2K,
    Q3KS,
    Q3KM,
    Q3KL,
    Q4KS,
    Q4KM,
    Q5KS,
    Q5KM,
    Q6K,
    Q8_0,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    F16,
    BF16,
    F32,
}

impl Mix {
    /// Every mix rawrxd can make.
    pub const ALL: [Mix; 17] = [
        Mix::Q2K,
        Mix::Q3KS,
        Mix::Q3KM,
        Mix::Q3KL,
        Mix::Q4KS,
        Mix::Q4KM,
        Mix::Q5KS,
        Mix::Q5KM,
        Mix::Q6K,
        Mix::Q8_0,
        Mix::Q4_0,
        Mix::Q4_1,
        Mix::Q5_0,
        Mix::Q5_1,
        Mix::F16,
        Mix::BF16,
        Mix::F32,
    ];

    /// llama-quantize's name for this mix ("Q4_K_M").
    pub fn name(self) -> &'static str {
        match self {
            Mix::Q2K => "Q2_K",
            Mix::Q3KS => "Q3_K_S",
            Mix::Q3KM => "Q3_K_M",
            Mix::Q3KL => "Q3_K_L",
            Mix::Q4KS => "Q4_K_S",
            Mix::Q4KM => "Q4_K_M",
            Mix::Q5KS => "Q5_K_S",
            Mix::Q5KM => "Q5_K_M",
            Mix::Q6K => "Q6_K",
            Mix::Q8_0 => "Q8_0",
            Mix::Q4_0 => "Q4_0",
            Mix::Q4_1 => "Q4_1",
            Mix::Q5_0 => "Q5_0",
            Mix::Q5_1 => "Q5_1",
            Mix::F16 => "F16",
            Mix::BF16 => "BF16",
            Mix::F32 => "F32",
        }
    }

    /// llama.cpp's `LLAMA_FTYPE_*` id, what `general.file_type` holds for a file of this mix.
    pub fn file_type(self) -> u32 {
        match self {
            Mix::F32 => 0,
            Mix::F16 => 1,
            Mix::Q4_0 => 2,
            Mix::Q4_1 => 3,
            Mix::Q8_0 => 7,
            Mix::Q5_0 => 8,
            Mix::Q5_1 => 9,
            Mix::Q2K => 10,
            Mix::Q3KS => 11,
            Mix::Q3KM => 12,
            Mix::Q3KL => 13,
            Mix::Q4KS => 14,
            Mix::Q4KM => 15,
            Mix::Q5KS => 16,
            Mix::Q5KM => 17,
            Mix::Q6K => 18,
            Mix::BF16 => 32,
        }
    }

    /// The mix whose `general.file_type` is `id`.
    pub fn from_file_type(id: u32) -> Option<Mix> {
        Self::ALL.iter().copied().find(|m| m.file_type() == id)
    }

    /// The type most tensors get (llama.cpp's `llama_ftype_get_default_type`).
    pub fn default_type(self) -> GgmlType {
        match self {
            Mix::Q2K => GgmlType::Q2K,
            Mix::Q3KS | Mix::Q3KM | Mix::Q3KL => GgmlType::Q3K,
            Mix::Q4KS | Mix::Q4KM => GgmlType::Q4K,
            Mix::Q5KS | Mix::Q5KM => GgmlType::Q5K,
            Mix::Q6K => GgmlType::Q6K,
            Mix::Q8_0 => GgmlType::Q8_0,
            Mix::Q4_0 => GgmlType::Q4_0,
            Mix::Q4_1 => GgmlType::Q4_1,
            Mix::Q5_0 => GgmlType::Q5_0,
            Mix::Q5_1 => GgmlType::Q5_1,
            Mix::F16 => GgmlType::F16,
            Mix::BF16 => GgmlType::BF16,
            Mix::F32 => GgmlType::F32,
        }
    }

    /// The mix llama.cpp's loader reports for a file whose most common weight type is `ty`
    /// (`llama_model_loader`'s guess when `general.file_type` is absent).
    pub fn guess_from_type(ty: GgmlType) -> Option<Mix> {
        Some(match ty {
            GgmlType::F32 => Mix::F32,
            GgmlType::F16 => Mix::F16,
            GgmlType::BF16 => Mix::BF16,
            GgmlType::Q4_0 => Mix::Q4_0,
            GgmlType::Q4_1 => Mix::Q4_1,
            GgmlType::Q5_0 => Mix::Q5_0,
            GgmlType::Q5_1 => Mix::Q5_1,
            GgmlType::Q8_0 => Mix::Q8_0,
            GgmlType::Q2K => Mix::Q2K,
            GgmlType::Q3K => Mix::Q3KM,
            GgmlType::Q4K => Mix::Q4KM,
            GgmlType::Q5K => Mix::Q5KM,
            GgmlType::Q6K => Mix::Q6K,
            GgmlType::Q8_1 | GgmlType::Q8K => return None,
        })
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Mix {
    type Err = String;

    /// Parses llama-quantize's names case-insensitively, with its aliases: `Q3_K`, `Q4_K` and
    /// `Q5_K` mean the `_M` mixes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.to_ascii_uppercase();
        let alias = match upper.as_str() {
            "Q3_K" => Some(Mix::Q3KM),
            "Q4_K" => Some(Mix::Q4KM),
            "Q5_K" => Some(Mix::Q5KM),
            _ => None,
        };
        alias
            .or_else(|| Self::ALL.iter().copied().find(|m| m.name() == upper))
            .ok_or_else(|| {
                format!(
                    "unknown mix '{s}' (expected one of: {})",
                    Self::ALL.map(|m| m.name()).join(", ")
                )
            })
    }
}

/// The hyper-parameters the recipe looks at.
#[derive(Clone, Debug, PartialEq)]
pub struct MixModel {
    /// `general.architecture`.
    pub arch: String,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    /// `{arch}.expert_count` (0 for dense models).
    pub n_expert: usize,
}

impl MixModel {
    /// A dense model with the shape of `hp`.
    pub fn from_hparams(hp: &LlamaHParams) -> MixModel {
        MixModel {
            arch: hp.arch.clone(),
            n_layer: hp.n_layer,
            n_head: hp.n_head,
            n_head_kv: hp.n_head_kv,
            n_expert: 0,
        }
    }

    /// The shape of `hp` with the expert count `file` declares (`{arch}.expert_count`).
    pub fn from_file(file: &GgufFile, hp: &LlamaHParams) -> MixModel {
        let mut m = MixModel::from_hparams(hp);
        if let Some(n) = file
            .get(&format!("{}.expert_count", hp.arch))
            .and_then(|v| v.as_u64())
        {
            m.n_expert = n as usize;
        }
        m
    }

    /// llama.cpp's `n_gqa()`: query heads per KV head.
    fn n_gqa(&self) -> usize {
        self.n_head.checked_div(self.n_head_kv).unwrap_or(0)
    }

    /// llama.cpp's `LLM_TYPE_70B` for the architectures rawrxd knows.
    fn is_70b(&self) -> bool {
        match self.arch.as_str() {
            "llama" => self.n_layer == 80 && self.n_head != self.n_head_kv,
            "qwen2" => self.n_layer == 80,
            _ => false,
        }
    }

    fn is_falcon(&self) -> bool {
        self.arch == "falcon"
    }
}

/// Coarse tensor categories, matched on name substrings exactly as `tensor_get_category` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    TokenEmbd,
    AttnQ,
    AttnV,
    AttnK,
    AttnQkv,
    AttnKvB,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Output,
    Other,
}

impl Category {
    fn of(name: &str) -> Category {
        if name == "output.weight" {
            return Category::Output;
        }
        if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
            return Category::TokenEmbd;
        }
        const SUBSTRINGS: [(&str, Category); 10] = [
            ("attn_qkv.weight", Category::AttnQkv),
            ("attn_kv_b.weight", Category::AttnKvB),
            ("attn_v.weight", Category::AttnV),
            ("attn_k.weight", Category::AttnK),
            ("attn_q.weight", Category::AttnQ),
            ("attn_output.weight", Category::AttnOutput),
            ("ffn_up", Category::FfnUp),
            ("ffn_gate", Category::FfnGate),
            ("ffn_down", Category::FfnDown),
            ("", Category::Other),
        ];
        SUBSTRINGS
            .iter()
            .find(|(s, _)| name.contains(s))
            .map_or(Category::Other, |(_, c)| *c)
    }

    /// attn_v-like tensors (the most quantization-sensitive ones).
    fn is_attn_v(self) -> bool {
        matches!(
            self,
            Category::AttnV | Category::AttnQkv | Category::AttnKvB
        )
    }
}

/// ggml's `ggml_n_dims`: the number of dimensions, not counting trailing ones of size 1.
pub fn n_dims(dims: &[u64]) -> usize {
    dims.iter().rposition(|&d| d != 1).map_or(1, |i| i + 1)
}

/// Whether llama-quantize would quantize this tensor at all (`tensor_allows_quantization`): only
/// 2-D and higher weights that are not norms, gating tables or a few small special tensors.
/// Everything else keeps its source type.
pub fn allows_quantization(name: &str, dims: &[u64]) -> bool {
    if n_dims(dims) < 2 || !name.ends_with("weight") {
        return false;
    }
    const KEEP: [&str; 20] = [
        "_norm.weight",
        "ffn_gate_inp.weight",
        "ffn_gate_tid2eid.weight",
        "altup",
        "laurel",
        "per_layer_model_proj",
        "ssm_conv1d",
        "shortconv.conv.weight",
        "indexer.k_proj.weight",
        "indexer.q_proj.weight",
        "attn_rel_b.weight",
        ".position_embd",
        "sam.pos_embd",
        "sam.neck.",
        "sam.net_",
        ".rel_pos",
        ".patch_embd",
        ".patch_merger",
        "a.rvq.codebook",
        "mm.a.code_embd",
    ];
    !KEEP.iter().any(|k| name.contains(k))
        && name != "position_embd.weight"
        && name != "token_types.weight"
        && !TIME_MIX.iter().any(|k| name.contains(k))
}

/// RWKV's small 2-D weights that llama.cpp leaves unquantized.
const TIME_MIX: [&str; 15] = [
    "time_mix_first.weight",
    "time_mix_w0.weight",
    "time_mix_w1.weight",
    "time_mix_w2.weight",
    "time_mix_v0.weight",
    "time_mix_v1.weight",
    "time_mix_v2.weight",
    "time_mix_a0.weight",
    "time_mix_a1.weight",
    "time_mix_a2.weight",
    "time_mix_g1.weight",
    "time_mix_g2.weight",
    "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight",
];

/// llama.cpp's `tensor_type_fallback`: the type to use when rows of `ncols` elements are not a
/// whole number of `target`'s blocks (K-quants fall back to a 32-block type of about as many bits;
/// if even that does not fit, F16). Returns `target` when it fits.
pub fn fallback_type(target: GgmlType, ncols: u64) -> GgmlType {
    if ncols % target.block_size() as u64 == 0 {
        return target;
    }
    let fb = match target {
        GgmlType::Q2K | GgmlType::Q3K => GgmlType::Q4_0,
        GgmlType::Q4K => GgmlType::Q5_0,
        GgmlType::Q5K => GgmlType::Q5_1,
        GgmlType::Q6K => GgmlType::Q8_0,
        other => other,
    };
    if ncols % fb.block_size() as u64 != 0 {
        GgmlType::F16
    } else {
        fb
    }
}

/// The layer of a `blk.N.` tensor, as llama.cpp's `sscanf(name, "blk.%d.")` reads it.
fn blk_layer(name: &str) -> Option<i64> {
    let rest = name.strip_prefix("blk.")?;
    let end = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(rest.len(), |(i, _)| i);
    rest[..end].parse().ok()
}

/// llama.cpp's `weight_name_comparer`: by layer (non-block tensors first), then by name.
fn llama_order(a: &str, b: &str) -> Ordering {
    let la = blk_layer(a).unwrap_or(-1);
    let lb = blk_layer(b).unwrap_or(-1);
    la.cmp(&lb).then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

/// The walk state of `quantize_state_impl` that the recipe reads.
struct Walk {
    n_attention_wv: usize,
    i_attention_wv: usize,
    n_ffn_down: usize,
    i_ffn_down: usize,
    tied_embeddings: bool,
}

/// llama.cpp's `use_more_bits`: the first and last eighth of layers and every third in between.
fn use_more_bits(i_layer: usize, n_layers: usize) -> bool {
    let eighth = n_layers / 8;
    i_layer < eighth || i_layer >= 7 * n_layers / 8 || (i_layer - eighth) % 3 == 2
}

/// `llama_tensor_get_type_impl` for the mixes of [`Mix`]: the mix-specific type of one
/// quantizable tensor before the fallback.
fn recipe_type(
    mix: Mix,
    model: &MixModel,
    walk: &mut Walk,
    t: &TensorInfo,
    cat: Category,
) -> GgmlType {
    use GgmlType as T;
    let mut new = mix.default_type();
    let falcon = model.is_falcon();
    if cat == Category::Output || (walk.tied_embeddings && cat == Category::TokenEmbd) {
        let nx = t.dims[0];
        if falcon || nx % new.block_size() as u64 != 0 {
            new = T::Q8_0;
        } else if new != T::Q8_0 {
            new = T::Q6K;
        }
    } else if cat == Category::TokenEmbd {
        // untied embeddings keep the default type in every mix rawrxd makes
    } else if cat.is_attn_v() {
        let i = walk.i_attention_wv;
        let gqa4 = model.n_gqa() >= 4;
        match mix {
            Mix::Q2K => new = if gqa4 { T::Q4K } else { T::Q3K },
            Mix::Q3KM => new = if i < 2 { T::Q5K } else { T::Q4K },
            Mix::Q3KL => new = T::Q5K,
            Mix::Q4KM | Mix::Q5KM if use_more_bits(i, walk.n_attention_wv) => new = T::Q6K,
            Mix::Q4KS if i < 4 => new = T::Q5K,
            _ => {}
        }
        if model.is_70b() && (new == T::Q3K || new == T::Q4K) {
            new = T::Q5K;
        }
        if model.n_expert == 8 {
            new = T::Q8_0;
        }
        walk.i_attention_wv += 1;
    } else if cat == Category::AttnK {
        if model.n_expert == 8 {
            new = T::Q8_0;
        }
    } else if cat == Category::FfnDown {
        let (i, n) = if model.n_expert > 1 {
            let layer = blk_layer(&t.name).unwrap_or(0).max(0) as usize;
            (layer, walk.n_ffn_down)
        } else {
            (walk.i_ffn_down, walk.n_ffn_down)
        };
        let more = use_more_bits(i, n);
        match mix {
            Mix::Q2K => new = T::Q3K,
            Mix::Q3KM => {
                new = if i < n / 16 {
                    T::Q5K
                } else if !falcon || more {
                    T::Q4K
                } else {
                    T::Q3K
                }
            }
            Mix::Q3KL => new = if falcon { T::Q4K } else { T::Q5K },
            Mix::Q4KM => {
                if falcon {
                    new = if i < n / 16 {
                        T::Q6K
                    } else if more {
                        T::Q5K
                    } else {
                        T::Q4K
                    };
                } else if more {
                    new = T::Q6K;
                }
            }
            Mix::Q5KM if more => new = T::Q6K,
            Mix::Q4KS if !falcon && i < n / 8 => new = T::Q5K,
            _ => {}
        }
        walk.i_ffn_down += 1;
    } else if cat == Category::AttnOutput {
        if !falcon {
            if model.n_expert == 8 {
                if matches!(
                    mix,
                    Mix::Q2K | Mix::Q3KS | Mix::Q3KM | Mix::Q4KS | Mix::Q4KM
                ) {
                    new = T::Q5K;
                }
            } else {
                match mix {
                    Mix::Q2K => new = T::Q3K,
                    Mix::Q3KM => new = T::Q4K,
                    Mix::Q3KL => new = T::Q5K,
                    _ => {}
                }
            }
        } else if mix == Mix::Q3KL {
            new = T::Q4K;
        }
    }
    new
}

/// The type llama-quantize picks for every tensor of `tensors` (a whole model, in any order)
/// under `mix`; element `i` is the type of `tensors[i]`. Tensors that may not be quantized
/// (norms, 1-D tensors, ...) keep their source type; the float mixes turn every other tensor into
/// their type; the quantized mixes follow llama.cpp's recipe and its fallback for rows that are
/// not a whole number of blocks.
pub fn mix_types(mix: Mix, model: &MixModel, tensors: &[TensorInfo]) -> Vec<GgmlType> {
    let mut out: Vec<GgmlType> = tensors.iter().map(|t| t.ty).collect();
    let mut order: Vec<usize> = (0..tensors.len()).collect();
    order.sort_by(|&a, &b| llama_order(&tensors[a].name, &tensors[b].name));
    let cats: Vec<Category> = tensors.iter().map(|t| Category::of(&t.name)).collect();
    let mut walk = Walk {
        n_attention_wv: cats.iter().filter(|c| c.is_attn_v()).count(),
        i_attention_wv: 0,
        n_ffn_down: model.n_layer,
        i_ffn_down: 0,
        tied_embeddings: !cats.contains(&Category::Output),
    };
    let quantized = !mix.default_type().is_float();
    for i in order {
        let t = &tensors[i];
        if !allows_quantization(&t.name, &t.dims) {
            continue;
        }
        out[i] = if quantized {
            let ty = recipe_type(mix, model, &mut walk, t, cats[i]);
            fallback_type(ty, t.dims[0])
        } else {
            mix.default_type()
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, dims: &[u64]) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            dims: dims.to_vec(),
            ty: GgmlType::F32,
            offset: 0,
            n_bytes: 0,
        }
    }

    #[test]
    fn names_and_file_types_match_llama_h() {
        assert_eq!("q4_k_m".parse::<Mix>(), Ok(Mix::Q4KM));
        assert_eq!("Q4_K".parse::<Mix>(), Ok(Mix::Q4KM));
        assert_eq!("bf16".parse::<Mix>(), Ok(Mix::BF16));
        assert!("q4_k_x".parse::<Mix>().is_err());
        assert_eq!(Mix::Q4KM.file_type(), 15);
        assert_eq!(Mix::Q8_0.file_type(), 7);
        assert_eq!(Mix::BF16.file_type(), 32);
        for m in Mix::ALL {
            assert_eq!(Mix::from_file_type(m.file_type()), Some(m));
            assert_eq!(m.name().parse::<Mix>(), Ok(m));
        }
    }

    #[test]
    fn use_more_bits_matches_the_c_expression() {
        // n = 32: layers 0-3 and 28-31, plus (i - 4) % 3 == 2 → 6, 9, 12, ...
        let picked: Vec<usize> = (0..32).filter(|&i| use_more_bits(i, 32)).collect();
        assert_eq!(
            picked,
            [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]
        );
    }

    #[test]
    fn fallback_follows_tensor_type_fallback() {
        assert_eq!(fallback_type(GgmlType::Q4K, 576), GgmlType::Q5_0);
        assert_eq!(fallback_type(GgmlType::Q6K, 576), GgmlType::Q8_0);
        assert_eq!(fallback_type(GgmlType::Q2K, 576), GgmlType::Q4_0);
        assert_eq!(fallback_type(GgmlType::Q5K, 576), GgmlType::Q5_1);
        assert_eq!(fallback_type(GgmlType::Q4K, 512), GgmlType::Q4K);
        assert_eq!(fallback_type(GgmlType::Q4K, 100), GgmlType::F16);
        assert_eq!(fallback_type(GgmlType::Q8_0, 100), GgmlType::F16);
    }

    #[test]
    fn llama_order_sorts_by_layer_number_not_text() {
        let mut v = vec![
            "blk.10.attn_v.weight",
            "blk.2.attn_v.weight",
            "token_embd.weight",
            "blk.2.attn_k.weight",
            "output.weight",
        ];
        v.sort_by(|a, b| llama_order(a, b));
        assert_eq!(
            v,
            [
                "output.weight",
                "token_embd.weight",
                "blk.2.attn_k.weight",
                "blk.2.attn_v.weight",
                "blk.10.attn_v.weight"
            ]
        );
    }

    #[test]
    fn norms_and_1d_tensors_keep_their_type() {
        assert!(!allows_quantization("blk.0.attn_norm.weight", &[4096]));
        assert!(!allows_quantization("blk.0.attn_q.weight", &[4096, 1]));
        assert!(!allows_quantization("blk.0.attn_q.bias", &[4096, 4096]));
        assert!(allows_quantization("output.weight", &[4096, 32000]));
        let t = vec![
            info("blk.0.attn_norm.weight", &[256]),
            info("token_embd.weight", &[256, 1000]),
        ];
        let m = MixModel {
            arch: "llama".into(),
            n_layer: 1,
            n_head: 4,
            n_head_kv: 4,
            n_expert: 0,
        };
        assert_eq!(mix_types(Mix::Q4KM, &m, &t), [GgmlType::F32, GgmlType::Q6K]);
        assert_eq!(mix_types(Mix::F16, &m, &t), [GgmlType::F32, GgmlType::F16]);
    }
}

-- A hybrid per-layer scheme: mostly Q4_K, more bits where quantization hurts most.
--
-- Use it with `rawrxd quantize IN OUT --scheme schemes/hybrid_example.lua` or
-- `rawrxd synth --shape llama-7b --scheme schemes/hybrid_example.lua -o out.gguf`.
-- Rules are applied in order; a later rule that matches a tensor overrides an earlier one.
-- Norms and other 1-D tensors always keep their source type (F32).
return {
  default = "q4_k",
  -- Models whose rows are not a multiple of 256 (SmolLM2: 576) cannot hold K-quants; fall back
  -- to llama.cpp's 32-block equivalents there (q4_k -> q5_0, q6_k -> q8_0) instead of failing.
  fallback = true,

  { role = "token_embd", type = "q8_0" },
  { role = "output", type = "q6_k" },
  -- attention values are small and sensitive
  { role = "attn_v", type = "q6_k" },
  -- the first and last two layers' ffn_down, whatever the depth of the model
  { role = "ffn_down", type = function(layer, n_layers)
      if layer < 2 or layer >= n_layers - 2 then return "q6_k" end
      return nil -- no opinion: keep what earlier rules chose
    end },
}

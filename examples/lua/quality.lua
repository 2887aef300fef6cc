-- engine:perplexity: perplexity of a text and KL divergence against the source model.
--     rawrxd examples/lua/quality.lua [--variant q4_k_m] [--ctx 512] [--chunks N]
local rx = require "rawrxd"
local a = rx.args

local source = rx.model.open(a.model or rx.model.default())
local eng = rx.engine.load { model = source, backend = a.backend or "auto",
                             variant = a.variant or "q4_k_m", ctx = a.ctx or 512 }
local q = eng:perplexity { text = a.text or "data/eval.txt", ctx = a.ctx or 512,
                           chunks = a.chunks, kld_base = source }
print(("%s: PPL %.4f ± %.4f (source %.4f), KLD %.6f, same top token %.1f %%"):format(
  eng.variant, q.ppl, q.ppl_err, q.base_ppl, q.kld, q.same_top * 100))

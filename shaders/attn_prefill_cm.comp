#version 450
// Causal attention for a prompt chunk on tensor cores (GL_NV_cooperative_matrix, 16x16x16 f16 ->
// f32): attn_prefill.comp's flash-attention walk with both products as cooperative matrices.
// Workgroup (h, b) takes query head h of the TQ = 64 token rows b*64 .. b*64+63, one subgroup of
// 32 lanes per 16 rows (the host picks this kernel only when the subgroup size is 32), and walks
// the cache in blocks of TK = 32 positions:
//   1. the block's keys and values are copied into shared memory once for all four subgroups;
//   2. each subgroup multiplies its 16 query rows (f16 fragments held in registers from the start)
//      by the keys: S = Q K^T, 16 x 32, stored to its own shared rows;
//   3. two lanes a row take the online softmax (running max m and sum l, kept in those lanes),
//      write P = exp(S * scale - m) as f16 and the factor corr = exp(m_old - m_new);
//   4. the output accumulators (16 x head_dim, f32) are scaled row by row by corr (an element's
//      row is read once from a matrix of row numbers, since the fragment layout is the
//      driver's), then O += P V.
// The output is O / l, written once. Positions past a row's own are masked (causal); a block that
// no row of a subgroup sees is skipped by that subgroup.
//
// Numerics: queries and probabilities are rounded to f16 (keys and values are f16 in the cache),
// products sum in f32 - as llama.cpp's cooperative-matrix flash attention does. Results differ
// from attn_prefill.comp's by that rounding.
//
// Rows: rows[t] = (position, slot), one sequence (one slot) at increasing positions, as in
// attn_prefill.comp. Cache layout [slot][head_kv][n_ctx][head_dim] f16, two per u32 word. Needs
// head_dim a multiple of 16 and <= 16 * MAX_HF (the host checks), a workgroup of 128.
//
// Bindings: 0 q (f32), 1 k cache, 2 v cache, 3 rows (uvec2 per token row), 4 out (f32).
// Push constants: `AttnPrefillPush` in src/engine/vulkan/kernels/attention.rs, as attn_prefill.comp.
#extension GL_GOOGLE_include_directive : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_shuffle : require
#include "common.glsl"

layout(local_size_x = 128) in;

layout(binding = 0) readonly restrict buffer Q { float q[]; };
layout(binding = 1) readonly restrict buffer KCache { uvec4 kc[]; };
layout(binding = 2) readonly restrict buffer VCache { uvec4 vc[]; };
layout(binding = 3) readonly restrict buffer Rows { uvec2 rows[]; };
layout(binding = 4) writeonly restrict buffer Out { float o[]; };

layout(push_constant) uniform Push {
    uint n_head;
    uint n_head_kv;
    uint head_dim;
    uint n_ctx;
    uint ntok;
    uint q_off;
    uint q_stride;
    float scale;
    uint out_off;
    uint out_stride;
} pc;

#define TQ 64u
#define TK 32u
#define NSG 4u
#define MAX_HF 8u          // 16-column fragments of a head at most (head_dim <= 128)
// Row stride of the staged queries, keys and values in uvec2 (4 halves): 128 + 8 halves.
#define LD4 (MAX_HF * 4u + 2u)
// Row stride of a subgroup's scores (f32) and probabilities (uvec2).
#define SLD (TK + 4u)
#define PLD (TK / 4u + 2u)
#define NEG_BIG -1.0e30

#define ACC fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>
#define HALF fcoopmatNV<16, gl_ScopeSubgroup, 16, 16>

// Queries at the start (TQ rows), then keys (rows 0 .. TK-1) and values (rows TK .. 2TK-1).
shared uvec2 kvs[TQ * LD4];
shared float ss[NSG * 16u * SLD];
shared uvec2 ps[NSG * 16u * PLD];

void main() {
    const uint h = gl_WorkGroupID.x;
    const uint t0 = gl_WorkGroupID.y * TQ;
    const uint tid = gl_LocalInvocationID.x;
    const uint sg = tid / 32u;
    const uint lane = tid % 32u;
    const uint hd8 = pc.head_dim / 8u;
    const uint hf = pc.head_dim / 16u;
    const uint hk = h / (pc.n_head / pc.n_head_kv);
    const uint nrows = min(TQ, pc.ntok - t0);
    const uint slot = rows[t0].y;
    // The last row of the tile sees the most positions.
    const uint n_kv = rows[t0 + nrows - 1u].x + 1u;
    // In uvec4 (8 halves) units.
    const uint kvbase = (slot * pc.n_head_kv + hk) * pc.n_ctx * hd8;

    // This subgroup's rows t0 + 16 sg .., and the positions its last live row sees.
    const uint r0 = sg * 16u;
    const uint sg_rows = r0 < nrows ? min(16u, nrows - r0) : 0u;
    const uint sg_kv = sg_rows > 0u ? rows[t0 + r0 + sg_rows - 1u].x + 1u : 0u;
    // The softmax lanes: row lane / 2, columns (lane % 2) * 16 .. + 15 of a block.
    const uint sr = lane / 2u;
    const uint shalf = lane % 2u;
    const bool s_live = sr < sg_rows;
    const uint s_pos = s_live ? rows[t0 + r0 + sr].x : 0u;

    // Queries as f16 rows, zero past the chunk and past head_dim.
    for (uint i = tid; i < TQ * MAX_HF * 4u; i += 128u) {
        const uint qr = i / (MAX_HF * 4u);
        const uint c = (i % (MAX_HF * 4u)) * 4u;
        vec4 v = vec4(0.0);
        if (qr < nrows && c < pc.head_dim) {
            const uint b = pc.q_off + (t0 + qr) * pc.q_stride + h * pc.head_dim + c;
            v = vec4(q[b], q[b + 1u], q[b + 2u], q[b + 3u]);
        }
        kvs[qr * LD4 + c / 4u] = uvec2(packHalf2x16(v.xy), packHalf2x16(v.zw));
    }
    // The row of each accumulator element this lane holds: a matrix of row numbers, loaded.
    const uint sbase = sg * 16u * SLD;
    for (uint e = lane; e < 256u; e += 32u) {
        ss[sbase + (e / 16u) * SLD + e % 16u] = float(e / 16u);
    }
    barrier();
    HALF qa[MAX_HF];
    [[unroll]] for (uint f = 0u; f < MAX_HF; ++f) {
        if (f < hf) {
            coopMatLoadNV(qa[f], kvs, (r0 * LD4) + f * 4u, LD4, false);
        }
    }
    ACC rowm;
    coopMatLoadNV(rowm, ss, sbase, SLD, false);
    uint elem_row[16];
    [[unroll]] for (uint k = 0u; k < 16u; ++k) {
        elem_row[k] = k < uint(rowm.length()) ? uint(rowm[k]) : 0u;
    }
    ACC acc[MAX_HF];
    [[unroll]] for (uint f = 0u; f < MAX_HF; ++f) {
        acc[f] = ACC(0.0);
    }
    float m = NEG_BIG;
    float l = 0.0;
    barrier();

    const uint pbase = sg * 16u * PLD;
    for (uint blk = 0u; blk < n_kv; blk += TK) {
        const uint nk = min(TK, n_kv - blk);
        // Keys and values of the block, 16-byte runs; zero past the last position.
        for (uint i = tid; i < TK * hd8; i += 128u) {
            const uint kr = i / hd8;
            const uint c = i % hd8;
            uvec4 kv = uvec4(0u);
            uvec4 vv = uvec4(0u);
            if (kr < nk) {
                kv = kc[kvbase + (blk + kr) * hd8 + c];
                vv = vc[kvbase + (blk + kr) * hd8 + c];
            }
            kvs[kr * LD4 + 2u * c] = kv.xy;
            kvs[kr * LD4 + 2u * c + 1u] = kv.zw;
            kvs[(TK + kr) * LD4 + 2u * c] = vv.xy;
            kvs[(TK + kr) * LD4 + 2u * c + 1u] = vv.zw;
        }
        barrier();
        if (blk < sg_kv) {
            // S = Q K^T: K's rows are key-major, so K^T is column-major.
            [[unroll]] for (uint j = 0u; j < TK / 16u; ++j) {
                ACC s = ACC(0.0);
                [[unroll]] for (uint f = 0u; f < MAX_HF; ++f) {
                    if (f < hf) {
                        HALF kb;
                        coopMatLoadNV(kb, kvs, j * 16u * LD4 + f * 4u, LD4, true);
                        s = coopMatMulAddNV(qa[f], kb, s);
                    }
                }
                coopMatStoreNV(s, ss, sbase + j * 16u, SLD, false);
            }
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            // Online softmax: two lanes a row, 16 scores each.
            float sv[16];
            float bm = NEG_BIG;
            [[unroll]] for (uint c = 0u; c < 16u; ++c) {
                const uint k = shalf * 16u + c;
                const bool seen = s_live && k < nk && blk + k <= s_pos;
                sv[c] = seen ? ss[sbase + sr * SLD + k] * pc.scale : NEG_BIG;
                bm = max(bm, sv[c]);
            }
            bm = max(bm, subgroupShuffleXor(bm, 1u));
            const float m_new = max(m, bm);
            float sum = 0.0;
            [[unroll]] for (uint c = 0u; c < 16u; c += 2u) {
                // Masked scores give exactly 0; a row with no score yet keeps l = 0.
                const float e0 = sv[c] <= NEG_BIG ? 0.0 : exp(sv[c] - m_new);
                const float e1 = sv[c + 1u] <= NEG_BIG ? 0.0 : exp(sv[c + 1u] - m_new);
                sum += e0 + e1;
                sv[c] = e0;
                sv[c + 1u] = e1;
            }
            [[unroll]] for (uint c = 0u; c < 16u; c += 4u) {
                ps[pbase + sr * PLD + shalf * 4u + c / 4u] =
                    uvec2(packHalf2x16(vec2(sv[c], sv[c + 1u])),
                          packHalf2x16(vec2(sv[c + 2u], sv[c + 3u])));
            }
            sum += subgroupShuffleXor(sum, 1u);
            const float corr = exp(m - m_new);
            l = l * corr + sum;
            m = m_new;
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            // O = O * corr (row by row) + P V.
            [[unroll]] for (uint k = 0u; k < 16u; ++k) {
                if (k < uint(acc[0].length())) {
                    const float ck = subgroupShuffle(corr, 2u * elem_row[k]);
                    [[unroll]] for (uint f = 0u; f < MAX_HF; ++f) {
                        acc[f][k] *= ck;
                    }
                }
            }
            [[unroll]] for (uint kk = 0u; kk < TK / 16u; ++kk) {
                HALF pa;
                coopMatLoadNV(pa, ps, pbase + kk * 4u, PLD, false);
                [[unroll]] for (uint f = 0u; f < MAX_HF; ++f) {
                    if (f < hf) {
                        HALF vb;
                        coopMatLoadNV(vb, kvs, (TK + kk * 16u) * LD4 + f * 4u, LD4, false);
                        acc[f] = coopMatMulAddNV(pa, vb, acc[f]);
                    }
                }
            }
        }
        barrier();
    }

    // O / l, row by row; whole 16-row tiles straight to out, the last partial one element-wise.
    [[unroll]] for (uint k = 0u; k < 16u; ++k) {
        if (k < uint(acc[0].length())) {
            const float lk = subgroupShuffle(l, 2u * elem_row[k]);
            const float inv = lk > 0.0 ? 1.0 / lk : 0.0;
            [[unroll]] for (uint f = 0u; f < MAX_HF; ++f) {
                acc[f][k] *= inv;
            }
        }
    }
    const bool direct = sg_rows == 16u && pc.out_off % 4u == 0u && pc.out_stride % 4u == 0u;
    const uint ob = pc.out_off + (t0 + r0) * pc.out_stride + h * pc.head_dim;
    [[unroll]] for (uint f = 0u; f < MAX_HF; ++f) {
        if (f < hf && sg_rows > 0u) {
            if (direct) {
                coopMatStoreNV(acc[f], o, ob + f * 16u, pc.out_stride, false);
            } else {
                coopMatStoreNV(acc[f], ss, sbase, SLD, false);
                subgroupMemoryBarrierShared();
                subgroupBarrier();
                for (uint e = lane; e < 256u; e += 32u) {
                    const uint r = e / 16u;
                    if (r < sg_rows) {
                        o[ob + r * pc.out_stride + f * 16u + e % 16u] = ss[sbase + r * SLD + e % 16u];
                    }
                }
                subgroupBarrier();
            }
        }
    }
}

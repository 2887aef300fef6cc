#version 450
// Causal attention for a prompt chunk, tiled in the manner of flash attention: workgroup (h, b)
// takes query head h of the TQ token rows b*TQ .. b*TQ+TQ-1 and walks the cache in blocks of TK
// positions. Each block of keys and values is loaded into shared memory once for all TQ rows; the
// softmax is online (running max m and sum l per row), so scores never leave shared memory and
// the output is written once, normalised.
//
// Rows: rows[t] = (position, slot). The rows of one dispatch are one sequence (one slot) at
// increasing positions, as a prefill chunk is; row t sees positions 0 ..= rows[t].x of that slot.
// Cache layout [slot][head_kv][n_ctx][head_dim] f16, two per u32 word. Needs head_dim even and
// <= 2 * MAX_HD2 (the host checks) and a workgroup of exactly TQ * 8 invocations.
//
// Bindings: 0 q (f32), 1 k cache, 2 v cache, 3 rows (uvec2 per token row), 4 out (f32).
// Push constants: the same as attn.comp's (`AttnPush`; n_split unused) plus out offset/stride,
// mirrored by `AttnPrefillPush` in src/engine/vulkan/kernels/attention.rs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 128) in;

layout(binding = 0) readonly restrict buffer Q { float q[]; };
layout(binding = 1) readonly restrict buffer KCache { uint kc[]; };
layout(binding = 2) readonly restrict buffer VCache { uint vc[]; };
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

#define TQ 16u
#define TK 32u
#define LANES 8u          // invocations per query row
#define MAX_HD2 64u       // head_dim / 2 at most (head_dim <= 128)
#define NEG_BIG -1.0e30

shared vec2 qs[TQ][MAX_HD2];
shared uint ks[TK][MAX_HD2];
shared uint vs[TK][MAX_HD2];
shared float sc[TQ][TK];
shared float row_m[TQ];
shared float row_l[TQ];
shared float row_corr[TQ];

void main() {
    const uint h = gl_WorkGroupID.x;
    const uint t0 = gl_WorkGroupID.y * TQ;
    const uint tid = gl_LocalInvocationID.x;
    const uint hd2 = pc.head_dim / 2u;
    const uint hk = h / (pc.n_head / pc.n_head_kv);
    const uint nrows = min(TQ, pc.ntok - t0);
    const uint slot = rows[t0].y;
    // The last row of the tile sees the most positions.
    const uint n_kv = rows[t0 + nrows - 1u].x + 1u;
    const uint kvbase = (slot * pc.n_head_kv + hk) * pc.n_ctx * hd2;

    // This invocation's query row (for scores and outputs) and its lane within the row.
    const uint r = tid / LANES;
    const uint lane = tid % LANES;
    const bool live = r < nrows;
    const uint my_pos = live ? rows[t0 + r].x : 0u;

    for (uint i = tid; i < TQ * hd2; i += gl_WorkGroupSize.x) {
        const uint qr = i / hd2;
        const uint c = i % hd2;
        vec2 v = vec2(0.0);
        if (qr < nrows) {
            const uint b = pc.q_off + (t0 + qr) * pc.q_stride + h * pc.head_dim + 2u * c;
            v = vec2(q[b], q[b + 1u]);
        }
        qs[qr][c] = v;
    }
    if (tid < TQ) {
        row_m[tid] = NEG_BIG;
        row_l[tid] = 0.0;
    }
    // Output pairs owned by this invocation: c = lane + LANES * j.
    vec2 acc[MAX_HD2 / LANES];
    [[unroll]] for (uint j = 0u; j < MAX_HD2 / LANES; ++j) {
        acc[j] = vec2(0.0);
    }
    barrier();

    for (uint blk = 0u; blk < n_kv; blk += TK) {
        const uint nk = min(TK, n_kv - blk);
        for (uint i = tid; i < TK * hd2; i += gl_WorkGroupSize.x) {
            const uint kr = i / hd2;
            const uint c = i % hd2;
            const bool in_range = kr < nk;
            const uint at = kvbase + (blk + kr) * hd2 + c;
            ks[kr][c] = in_range ? kc[at] : 0u;
            vs[kr][c] = in_range ? vc[at] : 0u;
        }
        barrier();
        // Scores: lane handles keys lane, lane + LANES, ... of the block for row r.
        for (uint k = lane; k < TK; k += LANES) {
            float d = NEG_BIG;
            if (live && k < nk && blk + k <= my_pos) {
                d = 0.0;
                for (uint c = 0u; c < hd2; ++c) {
                    d += dot(qs[r][c], unpackHalf2x16(ks[k][c]));
                }
                d *= pc.scale;
            }
            sc[r][k] = d;
        }
        barrier();
        // Online softmax, one invocation per row.
        if (tid < TQ) {
            float bm = NEG_BIG;
            for (uint k = 0u; k < TK; ++k) {
                bm = max(bm, sc[tid][k]);
            }
            const float m_old = row_m[tid];
            const float m_new = max(m_old, bm);
            float s = 0.0;
            for (uint k = 0u; k < TK; ++k) {
                // Masked scores (NEG_BIG) give exactly 0 once a real score set the maximum;
                // a row with no real score yet keeps l = 0 and is rescaled away later.
                const float e = sc[tid][k] <= NEG_BIG ? 0.0 : exp(sc[tid][k] - m_new);
                sc[tid][k] = e;
                s += e;
            }
            const float corr = exp(m_old - m_new);
            row_corr[tid] = corr;
            row_l[tid] = row_l[tid] * corr + s;
            row_m[tid] = m_new;
        }
        barrier();
        const float corr = row_corr[r];
        [[unroll]] for (uint j = 0u; j < MAX_HD2 / LANES; ++j) {
            const uint c = lane + LANES * j;
            if (c < hd2) {
                vec2 a = acc[j] * corr;
                for (uint k = 0u; k < nk; ++k) {
                    a += sc[r][k] * unpackHalf2x16(vs[k][c]);
                }
                acc[j] = a;
            }
        }
        barrier();
    }

    if (live) {
        const float inv_l = 1.0 / row_l[r];
        const uint ob = pc.out_off + (t0 + r) * pc.out_stride + h * pc.head_dim;
        [[unroll]] for (uint j = 0u; j < MAX_HD2 / LANES; ++j) {
            const uint c = lane + LANES * j;
            if (c < hd2) {
                o[ob + 2u * c] = acc[j].x * inv_l;
                o[ob + 2u * c + 1u] = acc[j].y * inv_l;
            }
        }
    }
}

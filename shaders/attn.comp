#version 450
// Attention over the f16 KV cache, split over the cache length (flash-decoding). Workgroup
// (h, s, t): query head h of token row t, positions of split s out of n_split. Row t sits at
// position rows[t].x of cache slot rows[t].y and sees positions 0 ..= rows[t].x of that slot
// (causal); split s covers the s-th of n_split equal chunks of that range. Rows are independent:
// a row's result does not depend on which other rows share the dispatch. Output per (t, h, s): unnormalised sum_p e_p * v_p (head_dim f32),
// then m = max score (scaled) and l = sum_p e_p with e_p = exp(score_p - m); attn_combine merges.
//
// Scores: one subgroup per position, lanes over the head's f16 pairs. Softmax is online over
// blocks of BLK positions. Values: invocation i owns f16 pair (i % hd2) for positions
// congruent to i / hd2, reduced through shared memory at the end. Needs WG >= head_dim / 2 and
// head_dim <= 256 (the host checks).
//
// Bindings: 0 q (f32), 1 k cache, 2 v cache ([slot][head_kv][n_ctx][head_dim] f16 pairs),
// 3 partials (f32, [t][h][s][head_dim + 2]), 4 rows (uvec2 per token row: position, slot).
// Mirrored by `AttnPush` in src/engine/vulkan/kernels/attention.rs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(binding = 0) readonly restrict buffer Q { float q[]; };
layout(binding = 1) readonly restrict buffer KCache { uint kc[]; };
layout(binding = 2) readonly restrict buffer VCache { uint vc[]; };
layout(binding = 3) writeonly restrict buffer Part { float part[]; };
layout(binding = 4) readonly restrict buffer Rows { uvec2 rows[]; };

layout(push_constant) uniform Push {
    uint n_head;
    uint n_head_kv;
    uint head_dim;
    uint n_ctx;
    uint n_split;
    uint q_off;
    uint q_stride;
    float scale;
} pc;

#define BLK 128u
#define NEG_BIG -1.0e30

shared vec2 qs[128];
shared float sc[BLK];
shared float red[MAX_SUBGROUPS];
shared vec2 accs[1024];

// Sum (or max) of one value per invocation over the workgroup; every invocation gets the result.
float wg_reduce(float v, bool is_max) {
    v = is_max ? subgroupMax(v) : subgroupAdd(v);
    barrier();
    if (gl_SubgroupInvocationID == 0u) {
        red[gl_SubgroupID] = v;
    }
    barrier();
    float r = red[0];
    for (uint s = 1u; s < gl_NumSubgroups; ++s) {
        r = is_max ? max(r, red[s]) : r + red[s];
    }
    return r;
}

void main() {
    const uint h = gl_WorkGroupID.x;
    const uint s = gl_WorkGroupID.y;
    const uint t = gl_WorkGroupID.z;
    const uint tid = gl_LocalInvocationID.x;
    const uint wg = gl_WorkGroupSize.x;
    const uint hd2 = pc.head_dim / 2u;
    const uint hk = h / (pc.n_head / pc.n_head_kv);

    const uvec2 row_info = rows[t];
    const uint n_kv = row_info.x + 1u;
    const uint chunk = (n_kv + pc.n_split - 1u) / pc.n_split;
    const uint p0 = min(s * chunk, n_kv);
    const uint p1 = min(p0 + chunk, n_kv);

    const uint qb = pc.q_off + t * pc.q_stride + h * pc.head_dim;
    for (uint i = tid; i < hd2; i += wg) {
        qs[i] = vec2(q[qb + 2u * i], q[qb + 2u * i + 1u]);
    }
    barrier();

    const uint kvbase = (row_info.y * pc.n_head_kv + hk) * pc.n_ctx * hd2;
    const uint my_pair = tid % hd2;
    const uint my_group = tid / hd2;
    const uint n_groups = wg / hd2;
    float m = NEG_BIG;
    float l = 0.0;
    vec2 acc = vec2(0.0);

    for (uint blk = p0; blk < p1; blk += BLK) {
        const uint n = min(BLK, p1 - blk);
        for (uint i = gl_SubgroupID; i < n; i += gl_NumSubgroups) {
            const uint row = kvbase + (blk + i) * hd2;
            float d = 0.0;
            for (uint c = gl_SubgroupInvocationID; c < hd2; c += gl_SubgroupSize) {
                d += dot(unpackHalf2x16(kc[row + c]), qs[c]);
            }
            d = subgroupAdd(d);
            if (gl_SubgroupInvocationID == 0u) {
                sc[i] = d * pc.scale;
            }
        }
        barrier();
        float bm = NEG_BIG;
        for (uint i = tid; i < n; i += wg) {
            bm = max(bm, sc[i]);
        }
        const float m_new = max(m, wg_reduce(bm, true));
        const float corr = exp(m - m_new);
        float es = 0.0;
        for (uint i = tid; i < n; i += wg) {
            const float e = exp(sc[i] - m_new);
            sc[i] = e;
            es += e;
        }
        // wg_reduce's barriers also publish the exponentials written to sc.
        l = l * corr + wg_reduce(es, false);
        m = m_new;
        acc *= corr;
        if (my_group < n_groups) {
            for (uint i = my_group; i < n; i += n_groups) {
                acc += sc[i] * unpackHalf2x16(vc[kvbase + (blk + i) * hd2 + my_pair]);
            }
        }
        barrier();
    }

    accs[tid] = acc;
    barrier();
    const uint ob = ((t * pc.n_head + h) * pc.n_split + s) * (pc.head_dim + 2u);
    if (tid < hd2) {
        vec2 o = vec2(0.0);
        for (uint g = 0u; g < n_groups; ++g) {
            o += accs[g * hd2 + tid];
        }
        part[ob + 2u * tid] = o.x;
        part[ob + 2u * tid + 1u] = o.y;
    }
    if (tid == 0u) {
        part[ob + pc.head_dim] = m;
        part[ob + pc.head_dim + 1u] = l;
    }
}

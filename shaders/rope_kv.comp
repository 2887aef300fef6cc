#version 450
// RoPE fused with the KV-cache write. For token row t at position rows[t].x of cache slot
// rows[t].y: query heads are rotated into qdst (f32); key heads are rotated and stored, and value
// heads copied, into that slot's f16 caches at that position. Each invocation produces one pair of adjacent
// output elements (2j, 2j+1), so every f16 pair is written as one word by one invocation.
//
// Modes (ggml's rope mode): 0 "normal" rotates (x[2i], x[2i+1]); 2 "neox" rotates (x[i], x[i+n_rot/2]).
// Angle table: cs[p][i] = (cos, sin)(p * theta_i) for i < n_rot/2, computed by the host, so any
// frequency scheme is a host-side table. Dimensions at or past n_rot pass through unrotated.
// Cache layout: [slot][head_kv][n_ctx][head_dim] f16, two per u32 word.
//
// Bindings: 0 src (f32 q, k and v of each token, at offsets/strides given per part), 1 qdst (f32), 2 k cache, 3 v cache,
// 4 angle table (f32 pairs), 5 rows (uvec2 per token row: position, slot).
// Grid: (ceil(head_dim/2 / WG), n_head + n_head_kv, ntok).
// Mirrored by `RopeKvPush` in src/engine/vulkan/kernels/rope.rs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(binding = 0) readonly restrict buffer Src { float src[]; };
layout(binding = 1) writeonly restrict buffer QDst { float qdst[]; };
layout(binding = 2) writeonly restrict buffer KCache { uint kc[]; };
layout(binding = 3) writeonly restrict buffer VCache { uint vc[]; };
layout(binding = 4) readonly restrict buffer Angles { vec2 cs[]; };
layout(binding = 5) readonly restrict buffer Rows { uvec2 rows[]; };

layout(push_constant) uniform Push {
    uint n_head;
    uint n_head_kv;
    uint head_dim;
    uint n_rot;
    uint mode;
    uint n_ctx;
    uint q_off;
    uint q_stride;
    uint k_off;
    uint k_stride;
    uint v_off;
    uint v_stride;
    uint qdst_off;
    uint qdst_stride;
} pc;

#include "rope.glsl"

void main() {
    const uint j = gl_GlobalInvocationID.x;
    const uint hd2 = pc.head_dim / 2u;
    if (j >= hd2) {
        return;
    }
    const uint h = gl_WorkGroupID.y;
    const uint t = gl_WorkGroupID.z;
    const uvec2 row_info = rows[t];
    const uint p = row_info.x;
    if (h < pc.n_head) {
        const uint base = pc.q_off + t * pc.q_stride + h * pc.head_dim;
        const uint o = pc.qdst_off + t * pc.qdst_stride + h * pc.head_dim + 2u * j;
        qdst[o] = rotated(base, 2u * j, p);
        qdst[o + 1u] = rotated(base, 2u * j + 1u, p);
    } else {
        const uint hk = h - pc.n_head;
        const uint kbase = pc.k_off + t * pc.k_stride + hk * pc.head_dim;
        const uint vbase = pc.v_off + t * pc.v_stride + hk * pc.head_dim;
        const uint word = ((row_info.y * pc.n_head_kv + hk) * pc.n_ctx + p) * hd2 + j;
        kc[word] = packHalf2x16(vec2(rotated(kbase, 2u * j, p), rotated(kbase, 2u * j + 1u, p)));
        vc[word] = packHalf2x16(vec2(src[vbase + 2u * j], src[vbase + 2u * j + 1u]));
    }
}

#version 450
// Merges attn's per-split partials: out[t][h*head_dim + d] = sum_s o_s[d] * exp(m_s - M) / L with
// M = max_s m_s, L = sum_s l_s * exp(m_s - M). Empty splits carry m = -1e30, l = 0 and drop out.
//
// Bindings: 0 partials (f32, [t][h][s][head_dim + 2]), 1 out (f32).
// Built with Q8_OUT (variant attn_combine_q8; head_dim a multiple of 32), binding 2 also receives
// the output as Q8 activations for matvec_q8.comp, as quantize_q8.comp lays them out (row t is
// vector t of n_head * head_dim elements; same rounding), so the output projection needs no
// quantize pass.
// Grid: (n_head, ntok). Mirrored by `AttnCombinePush` in src/engine/vulkan/kernels/attention.rs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(binding = 0) readonly restrict buffer Part { float part[]; };
layout(binding = 1) writeonly restrict buffer Out { float o[]; };
#ifdef Q8_OUT
layout(binding = 2) writeonly restrict buffer XQ { uint xq[]; };
layout(binding = 2) writeonly restrict buffer XD { vec2 xd[]; };
#include "q8_block.glsl"
shared float vals[256];
#endif

layout(push_constant) uniform Push {
    uint n_head;
    uint head_dim;
    uint n_split;
    uint out_off;
    uint out_stride;
    uint nblocks;
    uint ds_base;
} pc;

void main() {
    const uint h = gl_WorkGroupID.x;
    const uint t = gl_WorkGroupID.y;
    const uint stride = pc.head_dim + 2u;
    const uint base = (t * pc.n_head + h) * pc.n_split * stride;
    float big_m = -1.0e30;
    for (uint s = 0u; s < pc.n_split; ++s) {
        big_m = max(big_m, part[base + s * stride + pc.head_dim]);
    }
    float big_l = 0.0;
    for (uint s = 0u; s < pc.n_split; ++s) {
        big_l += part[base + s * stride + pc.head_dim + 1u] * exp(part[base + s * stride + pc.head_dim] - big_m);
    }
    const float inv_l = 1.0 / big_l;
    for (uint d = gl_LocalInvocationID.x; d < pc.head_dim; d += gl_WorkGroupSize.x) {
        float acc = 0.0;
        for (uint s = 0u; s < pc.n_split; ++s) {
            acc += part[base + s * stride + d] * exp(part[base + s * stride + pc.head_dim] - big_m);
        }
        o[pc.out_off + t * pc.out_stride + h * pc.head_dim + d] = acc * inv_l;
#ifdef Q8_OUT
        vals[d] = acc * inv_l;
#endif
    }
#ifdef Q8_OUT
    barrier();
    // The head's blocks of 32: one invocation each.
    const uint bph = pc.head_dim / 32u;
    for (uint i = gl_LocalInvocationID.x; i < bph; i += gl_WorkGroupSize.x) {
        float v[32];
        [[unroll]] for (uint k = 0u; k < 32u; ++k) {
            v[k] = vals[32u * i + k];
        }
        const uint blk = t * pc.nblocks + h * bph + i;
        store_q8_block(v, blk * 8u, pc.ds_base + blk);
    }
#endif
}

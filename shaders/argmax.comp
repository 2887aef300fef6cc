#version 450
// out[t] = index of the largest x[t][i] (the lowest such index on ties, as ggml_argmax).
//
// Bindings: 0 x (f32), 1 out (u32). Grid: (rows). Mirrored by `ArgmaxPush` in
// src/engine/vulkan/kernels/argmax.rs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(binding = 0) readonly restrict buffer X { float x[]; };
layout(binding = 1) writeonly restrict buffer Out { uint o[]; };

layout(push_constant) uniform Push {
    uint n;
    uint x_off;
    uint x_stride;
    uint out_off;
} pc;

shared float best_v[MAX_SUBGROUPS];
shared uint best_i[MAX_SUBGROUPS];

void main() {
    const uint t = gl_WorkGroupID.x;
    const uint xb = pc.x_off + t * pc.x_stride;
    float bv = -1.0 / 0.0;
    uint bi = 0xFFFFFFFFu;
    for (uint i = gl_LocalInvocationID.x; i < pc.n; i += gl_WorkGroupSize.x) {
        const float v = x[xb + i];
        if (v > bv || bi == 0xFFFFFFFFu) {
            bv = v;
            bi = i;
        }
    }
    const float sm = subgroupMax(bv);
    const uint si = subgroupMin(bv == sm ? bi : 0xFFFFFFFFu);
    if (gl_SubgroupInvocationID == 0u) {
        best_v[gl_SubgroupID] = sm;
        best_i[gl_SubgroupID] = si;
    }
    barrier();
    if (gl_LocalInvocationID.x == 0u) {
        float v = best_v[0];
        uint idx = best_i[0];
        for (uint s = 1u; s < gl_NumSubgroups; ++s) {
            if (best_v[s] > v || (best_v[s] == v && best_i[s] < idx)) {
                v = best_v[s];
                idx = best_i[s];
            }
        }
        o[pc.out_off + t] = idx;
    }
}

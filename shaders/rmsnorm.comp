#version 450
// y[t][i] = x[t][i] / sqrt(mean_i(x[t]^2) + eps) * w[i]  (ggml_rms_norm followed by ggml_mul with
// the norm weight, fused). One workgroup per row; subgroup sums, then one shared-memory pass.
//
// Bindings: 0 x (f32), 1 w (f32, n values), 2 y (f32; may alias x's buffer at another offset).
// Mirrored by `RmsNormPush` in src/engine/vulkan/kernels/norm.rs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(binding = 0) readonly restrict buffer X { float x[]; };
layout(binding = 1) readonly restrict buffer W { float nw[]; };
layout(binding = 2) writeonly restrict buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint n;
    uint x_off;
    uint x_stride;
    uint y_off;
    uint y_stride;
    float eps;
} pc;

shared float partial[MAX_SUBGROUPS];

void main() {
    const uint t = gl_WorkGroupID.x;
    const uint xb = pc.x_off + t * pc.x_stride;
    float ss = 0.0;
    for (uint i = gl_LocalInvocationID.x; i < pc.n; i += gl_WorkGroupSize.x) {
        const float v = x[xb + i];
        ss = fma(v, v, ss);
    }
    ss = subgroupAdd(ss);
    if (gl_SubgroupInvocationID == 0u) {
        partial[gl_SubgroupID] = ss;
    }
    barrier();
    float total = 0.0;
    for (uint s = 0u; s < gl_NumSubgroups; ++s) {
        total += partial[s];
    }
    const float scale = 1.0 / sqrt(total / float(pc.n) + pc.eps);
    const uint yb = pc.y_off + t * pc.y_stride;
    for (uint i = gl_LocalInvocationID.x; i < pc.n; i += gl_WorkGroupSize.x) {
        y[yb + i] = x[xb + i] * scale * nw[i];
    }
}

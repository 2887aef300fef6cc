#version 450
// y[t][i] = x[t][i] / sqrt(mean_i(x[t]^2) + eps) * w[i]  (ggml_rms_norm followed by ggml_mul with
// the norm weight, fused). One workgroup per row; subgroup sums, then one shared-memory pass.
//
// Bindings: 0 x (f32), 1 w (f32, n values), 2 y (f32; may alias x's buffer at another offset).
// Built with Q8_OUT (variant rmsnorm_q8), binding 3 also receives y as Q8 activations for
// matvec_q8.comp, laid out as quantize_q8.comp writes them (row t is vector t; same rounding),
// so the product after the norm needs no quantize pass.
// Mirrored by `RmsNormPush` in src/engine/vulkan/kernels/norm.rs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(binding = 0) readonly restrict buffer X { float x[]; };
layout(binding = 1) readonly restrict buffer W { float nw[]; };
layout(binding = 2) writeonly restrict buffer Y { float y[]; };
#ifdef Q8_OUT
layout(binding = 3) writeonly restrict buffer XQ { uint xq[]; };
layout(binding = 3) writeonly restrict buffer XD { vec2 xd[]; };
#include "q8_block.glsl"
#endif

layout(push_constant) uniform Push {
    uint n;
    uint x_off;
    uint x_stride;
    uint y_off;
    uint y_stride;
    float eps;
    uint nblocks;
    uint ds_base;
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
#ifdef Q8_OUT
    // One invocation per 32-element block: y, then its quants and (d, d * sum(q)).
    for (uint blk = gl_LocalInvocationID.x; blk < pc.nblocks; blk += gl_WorkGroupSize.x) {
        float v[32];
        [[unroll]] for (uint k = 0u; k < 32u; ++k) {
            const uint i = 32u * blk + k;
            v[k] = i < pc.n ? x[xb + i] * scale * nw[i] : 0.0;
            if (i < pc.n) {
                y[yb + i] = v[k];
            }
        }
        store_q8_block(v, (t * pc.nblocks + blk) * 8u, pc.ds_base + t * pc.nblocks + blk);
    }
#else
    for (uint i = gl_LocalInvocationID.x; i < pc.n; i += gl_WorkGroupSize.x) {
        y[yb + i] = x[xb + i] * scale * nw[i];
    }
#endif
}

#version 450
// y[t][i] = x[t][i] / sqrt(mean_i(x[t]^2) + eps) * w[i]  (ggml_rms_norm followed by ggml_mul with
// the norm weight, fused). One workgroup per row; subgroup sums, then one shared-memory pass.
//
// Bindings: 0 x (f32), 1 w (f32, n values), 2 y (f32; may alias x's buffer at another offset).
// Built with Q8_OUT (variant rmsnorm_q8), binding 3 also receives y as Q8 activations for
// matvec_q8.comp, laid out as quantize_q8.comp writes them (row t is vector t; same rounding),
// so the product after the norm needs no quantize pass; specialization constant 1 is its word
// order (q8_block.glsl).
// Mirrored by `RmsNormPush` in src/engine/vulkan/kernels/norm.rs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint Q8_ORDER = 0;

layout(binding = 0) readonly restrict buffer X { float x[]; };
layout(binding = 1) readonly restrict buffer W { float nw[]; };
layout(binding = 2) writeonly restrict buffer Y { float y[]; };
#ifdef Q8_OUT
layout(binding = 3) writeonly restrict buffer XQ { uint xq[]; };
layout(binding = 3) writeonly restrict buffer XD { vec2 xd[]; };
#include "q8_block.glsl"
shared float red[1024];
shared int ired[1024];
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
    // Eight invocations per 32-element block, four elements each (one quant word): y, then the
    // block's max |y| and quant sum through shared memory, as q8_block.glsl rounds them.
    const uint tid = gl_LocalInvocationID.x;
    const uint per_pass = gl_WorkGroupSize.x / 8u;
    for (uint b0 = 0u; b0 < pc.nblocks; b0 += per_pass) {
        const uint blk = b0 + tid / 8u;
        const uint e0 = 32u * blk + 4u * (tid % 8u);
        vec4 v = vec4(0.0);
        [[unroll]] for (uint k = 0u; k < 4u; ++k) {
            const uint i = e0 + k;
            if (blk < pc.nblocks && i < pc.n) {
                v[k] = x[xb + i] * scale * nw[i];
                y[yb + i] = v[k];
            }
        }
        const vec4 av = abs(v);
        red[tid] = max(max(av.x, av.y), max(av.z, av.w));
        barrier();
        const uint g = tid & ~7u;
        float amax = 0.0;
        [[unroll]] for (uint k = 0u; k < 8u; ++k) {
            amax = max(amax, red[g + k]);
        }
        const vec2 did = q8_scale(amax);
        const float d = did.x;
        const float id = did.y;
        uint word = 0u;
        int sum = 0;
        [[unroll]] for (uint k = 0u; k < 4u; ++k) {
            const int q = q8_round(v[k] * id);
            sum += q;
            word |= (uint(q) & 0xFFu) << (8u * k);
        }
        barrier();
        ired[tid] = sum;
        if (blk < pc.nblocks) {
            xq[t * pc.nblocks * 8u + q8_word_pos(Q8_ORDER, pc.nblocks, blk, tid % 8u)] = word;
        }
        barrier();
        if (blk < pc.nblocks && tid % 8u == 0u) {
            int total_q = 0;
            [[unroll]] for (uint k = 0u; k < 8u; ++k) {
                total_q += ired[g + k];
            }
            xd[pc.ds_base + t * pc.nblocks + blk] = vec2(d, d * float(total_q));
        }
    }
#else
    for (uint i = gl_LocalInvocationID.x; i < pc.n; i += gl_WorkGroupSize.x) {
        y[yb + i] = x[xb + i] * scale * nw[i];
    }
#endif
}

#version 450
// y[c][row] (+)= dot(W[row], x[c]) for c < batch: the decode matrix-vector product, dequantizing
// the weights' raw blocks on the fly. One subgroup per row; its lanes stride over the row's
// 32-element units and finish with a subgroup reduction.
//
// Bindings: 0 weights (raw GGUF bytes + 16 bytes padding), 1 x (f32), 2 y (f32).
// Flags: bit 0 accumulate (y += ...), bit 1 GLU: y = silu(dot(W[row], x)) * dot(W'[row], x) where
// W' starts glu_off bytes after W (gate and up rows of one fused tensor).
// Mirrored by `MatvecPush` in src/engine/vulkan/kernels/matvec.rs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint ROWS_PER_WG = 1;

layout(binding = 0) readonly restrict buffer Weights { uint w[]; };
layout(binding = 1) readonly restrict buffer X { float x[]; };
layout(binding = 2) restrict buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint ncols;
    uint nrows;
    uint row_bytes;
    uint batch;
    uint x_off;
    uint x_stride;
    uint y_off;
    uint y_stride;
    uint flags;
    uint glu_off;
} pc;

#include "dequant.glsl"

#define MAX_BATCH 8u

void main() {
    const uint lane = gl_SubgroupInvocationID;
    const uint nunits = (pc.ncols + 31u) / 32u;
    const bool glu = (pc.flags & 2u) != 0u;
    const uint row0 = linear_group() * ROWS_PER_WG;

    for (uint r = gl_SubgroupID; r < ROWS_PER_WG; r += gl_NumSubgroups) {
        const uint row = row0 + r;
        if (row >= pc.nrows) {
            break;
        }
        float acc[MAX_BATCH];
        float acc2[MAX_BATCH];
        [[unroll]] for (uint c = 0u; c < MAX_BATCH; ++c) {
            acc[c] = 0.0;
            acc2[c] = 0.0;
        }
        const uint rb = row * pc.row_bytes;
        for (uint u = lane; u < nunits; u += gl_SubgroupSize) {
            vec4 v[8];
            dq_unit(rb, u, pc.ncols, v);
            vec4 g[8];
            if (glu) {
                dq_unit(rb + pc.glu_off, u, pc.ncols, g);
            }
            const bool full = FLOAT_FMT == 0 || u * 32u + 32u <= pc.ncols;
            [[unroll]] for (uint c = 0u; c < MAX_BATCH; ++c) {
                if (c < pc.batch) {
                    const uint xb = pc.x_off + c * pc.x_stride + u * 32u;
                    float s = 0.0, s2 = 0.0;
                    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
                        vec4 xv;
                        if (full) {
                            xv = vec4(x[xb + 4u * k], x[xb + 4u * k + 1u], x[xb + 4u * k + 2u], x[xb + 4u * k + 3u]);
                        } else {
                            [[unroll]] for (uint e = 0u; e < 4u; ++e) {
                                xv[e] = u * 32u + 4u * k + e < pc.ncols ? x[xb + 4u * k + e] : 0.0;
                            }
                        }
                        s += dot(v[k], xv);
                        if (glu) {
                            s2 += dot(g[k], xv);
                        }
                    }
                    acc[c] += s;
                    acc2[c] += s2;
                }
            }
        }
        [[unroll]] for (uint c = 0u; c < MAX_BATCH; ++c) {
            if (c < pc.batch) {
                float s = subgroupAdd(acc[c]);
                if (glu) {
                    s = silu(s) * subgroupAdd(acc2[c]);
                }
                if (lane == 0u) {
                    const uint yi = pc.y_off + c * pc.y_stride + row;
                    y[yi] = (pc.flags & 1u) != 0u ? y[yi] + s : s;
                }
            }
        }
    }
}

#version 450
// y[c][row] (+)= dot(W[row], x[c]) for c < BATCH: the decode matrix-vector product, dequantizing
// the weights' raw blocks on the fly. One subgroup per group of NR rows: its lanes stride over the
// row's 32-element units, reusing each unit of x for all NR rows; subgroup reductions finish each
// row.
//
// Bindings: 0 weights (raw GGUF bytes + 16 bytes padding), 1 x (f32; also viewed as vec4 when
// X_VEC4, which the host sets only if x_off and x_stride are multiples of 4), 2 y (f32).
// Specialization: 0 workgroup size, 1 rows per workgroup, 2 NR rows per subgroup pass (<= 4),
// 3 BATCH vectors (<= 8), 4 GLU, 5 X_VEC4, 6 UNROLL units per lane per loop iteration (their
// loads are independent, so more bytes are in flight per subgroup).
// Flags: bit 0 accumulate (y += ...). GLU: y = silu(dot(W[row], x)) * dot(W'[row], x), W' starting
// glu_off bytes after W (gate and up rows of one fused tensor).
// Mirrored by `MatvecPush` in src/engine/vulkan/kernels/matvec.rs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint ROWS_PER_WG = 1;
layout(constant_id = 2) const uint NR = 1;
layout(constant_id = 3) const uint BATCH = 1;
layout(constant_id = 4) const bool GLU = false;
layout(constant_id = 5) const bool X_VEC4 = false;
layout(constant_id = 6) const uint UNROLL = 1;

layout(binding = 0) readonly restrict buffer Weights { uint w[]; };
layout(binding = 1) readonly restrict buffer X { float x[]; };
layout(binding = 1) readonly restrict buffer X4 { vec4 x4[]; };
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

#define MAX_NR 4u
#define MAX_BATCH 8u

void load_x(uint xb, uint u, out vec4 xv[8]) {
    const bool full = FLOAT_FMT == 0 || u * 32u + 32u <= pc.ncols;
    if (X_VEC4 && full) {
        [[unroll]] for (uint k = 0u; k < 8u; ++k) {
            xv[k] = x4[(xb >> 2) + k];
        }
    } else {
        [[unroll]] for (uint k = 0u; k < 8u; ++k) {
            [[unroll]] for (uint e = 0u; e < 4u; ++e) {
                xv[k][e] = (full || u * 32u + 4u * k + e < pc.ncols) ? x[xb + 4u * k + e] : 0.0;
            }
        }
    }
}

float dot8(vec4 a[8], vec4 b[8]) {
    float s = 0.0;
    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        s += dot(a[k], b[k]);
    }
    return s;
}

void main() {
    const uint lane = gl_SubgroupInvocationID;
    const uint nunits = (pc.ncols + 31u) / 32u;
    const uint row_base = linear_group() * ROWS_PER_WG;

    for (uint r0 = gl_SubgroupID * NR; r0 < ROWS_PER_WG; r0 += gl_NumSubgroups * NR) {
        const uint row0 = row_base + r0;
        if (row0 >= pc.nrows) {
            break;
        }
        float acc[MAX_BATCH][MAX_NR];
        float acc2[MAX_BATCH][MAX_NR];
        [[unroll]] for (uint c = 0u; c < MAX_BATCH; ++c) {
            [[unroll]] for (uint r = 0u; r < MAX_NR; ++r) {
                acc[c][r] = 0.0;
                acc2[c][r] = 0.0;
            }
        }
        for (uint u0 = lane; u0 < nunits; u0 += gl_SubgroupSize * UNROLL) {
            [[unroll]] for (uint i = 0u; i < UNROLL; ++i) {
                // Past the row's end a lane recomputes its last unit and discards the result
                // (branch-free, so the loads of all UNROLL units can be issued together).
                const uint uraw = u0 + i * gl_SubgroupSize;
                const bool live = uraw < nunits;
                const uint u = live ? uraw : nunits - 1u;
                // Weights are dequantized once per row (NR copies of the code); x is loaded per
                // row and column, and the compiler keeps one column's x in registers across rows.
                [[unroll]] for (uint r = 0u; r < NR; ++r) {
                    // Rows past the end read row0's data again and are not stored.
                    const uint row = row0 + r < pc.nrows ? row0 + r : row0;
                    vec4 v[8];
                    dq_unit(row * pc.row_bytes, u, pc.ncols, v);
                    vec4 g[8];
                    if (GLU) {
                        dq_unit(row * pc.row_bytes + pc.glu_off, u, pc.ncols, g);
                    }
                    [[unroll]] for (uint c = 0u; c < BATCH; ++c) {
                        vec4 xv[8];
                        load_x(pc.x_off + c * pc.x_stride + u * 32u, u, xv);
                        const float d = dot8(v, xv);
                        acc[c][r] += live ? d : 0.0;
                        if (GLU) {
                            const float d2 = dot8(g, xv);
                            acc2[c][r] += live ? d2 : 0.0;
                        }
                    }
                }
            }
        }
        [[unroll]] for (uint c = 0u; c < BATCH; ++c) {
            [[unroll]] for (uint r = 0u; r < NR; ++r) {
                float s = subgroupAdd(acc[c][r]);
                if (GLU) {
                    s = silu(s) * subgroupAdd(acc2[c][r]);
                }
                if (lane == 0u && row0 + r < pc.nrows && r0 + r < ROWS_PER_WG) {
                    const uint yi = pc.y_off + c * pc.y_stride + row0 + r;
                    y[yi] = (pc.flags & 1u) != 0u ? y[yi] + s : s;
                }
            }
        }
    }
}

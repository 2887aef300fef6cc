#version 450
// y[c][row] (+)= dot(W[row], x[c]) for c < BATCH: the decode matrix-vector product, dequantizing
// the weights' raw blocks on the fly. One subgroup per group of NR rows: its lanes stride over the
// row's pieces in memory order (piece.glsl), so a subgroup's loads of a row are coalesced; each
// piece of x is loaded once for all NR rows; subgroup reductions finish each row.
//
// Bindings: 0 weights (raw GGUF bytes + 16 bytes padding; also viewed as uvec4 for aligned 16-byte
// loads), 1 x (f32; also viewed as vec4 when
// X_VEC4, which the host sets only if x_off and x_stride are multiples of 4), 2 y (f32).
// Specialization: 0 workgroup size, 1 rows per workgroup, 2 NR rows per subgroup pass (<= 4),
// 3 BATCH vectors (<= 16), 4 GLU, 5 X_VEC4, 6 UNROLL pieces per lane per loop iteration (their
// loads are independent, so more bytes are in flight per subgroup).
//
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
layout(binding = 0) readonly restrict buffer Weights4 { uvec4 w4[]; };
layout(binding = 2) restrict buffer Y { float y[]; };
#define W4_VIEW

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

#include "piece.glsl"

#define MAX_NR 4u
#define MAX_BATCH 16u

// x[xb + e .. xb + e + 3]; elements at or past ncols read as 0 (only float formats have them).
vec4 load_x4(uint xb, uint e) {
    if (X_VEC4 && (FLOAT_FMT == 0 || e + 4u <= pc.ncols)) {
        return x4[(xb + e) >> 2];
    }
    vec4 r;
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        r[k] = (FLOAT_FMT == 0 || e + k < pc.ncols) ? x[xb + e + k] : 0.0;
    }
    return r;
}

void main() {
    const uint lane = gl_SubgroupInvocationID;
    const uint npieces = row_pieces(pc.ncols);
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
        for (uint p0 = lane; p0 < npieces; p0 += gl_SubgroupSize * UNROLL) {
            [[unroll]] for (uint i = 0u; i < UNROLL; ++i) {
                // Past the row's end a lane recomputes its last piece and discards the result
                // (branch-free, so the loads of all UNROLL pieces can be issued together).
                const uint praw = p0 + i * gl_SubgroupSize;
                const bool live = praw < npieces;
                const uint p = live ? praw : npieces - 1u;
                vec4 v[MAX_NR][PV];
                vec4 g[MAX_NR][PV];
                uint e[PV];
                [[unroll]] for (uint r = 0u; r < NR; ++r) {
                    // Rows past the end read row0's data again and are not stored.
                    const uint row = row0 + r < pc.nrows ? row0 + r : row0;
                    dq_piece(row * pc.row_bytes, p, pc.ncols, v[r], e);
                    if (GLU) {
                        dq_piece(row * pc.row_bytes + pc.glu_off, p, pc.ncols, g[r], e);
                    }
                }
                [[unroll]] for (uint c = 0u; c < BATCH; ++c) {
                    const uint xb = pc.x_off + c * pc.x_stride;
                    vec4 xv[PV];
                    [[unroll]] for (uint k = 0u; k < PV; ++k) {
                        xv[k] = load_x4(xb, e[k]);
                    }
                    [[unroll]] for (uint r = 0u; r < NR; ++r) {
                        float d = 0.0;
                        float d2 = 0.0;
                        [[unroll]] for (uint k = 0u; k < PV; ++k) {
                            d += dot(v[r][k], xv[k]);
                            if (GLU) {
                                d2 += dot(g[r][k], xv[k]);
                            }
                        }
                        acc[c][r] += live ? d : 0.0;
                        if (GLU) {
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

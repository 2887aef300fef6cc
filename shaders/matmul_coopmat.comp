#version 450
// Y[t][row] (+)= dot(W[row], X[t]) for t < ntok on tensor cores (GL_NV_cooperative_matrix): the
// prefill and batched-decode matrix product where the device offers VK_NV_cooperative_matrix.
//
// A workgroup owns BM rows x BN tokens and is WM x WN subgroups of 32 lanes (the host only picks
// these variants when the subgroup size is 32); each subgroup owns TM x TN 16x16 output tiles. A
// step dequantizes BK columns of the BM rows (BK / 32 units of dequant.glsl per row) and loads the
// same BK columns of the BN tokens, both as f16 into shared memory; every subgroup then multiplies
// its tiles 16 columns at a time, accumulating in f32. Whole output tiles go straight to Y (with
// accumulation, the sum starts from Y's tile); tiles that cross the last row or token go through a
// per-subgroup 16x16 buffer in shared memory and are written element by element, so nothing past
// the end is touched. Staged tiles are f16 packed four to a uvec2 (64-bit shared stores).
//
// Numerics: weights and activations are rounded to f16 before the product (as llama.cpp's
// cooperative-matrix path does); sums are f32. Results differ from matmul.comp by that rounding.
//
// Bindings: 0 weights (raw GGUF bytes + 16 bytes padding), 1 X (f32), 2 Y (f32).
// Flags: bit 0 accumulate. Compile-time shape: WM, WN, TM, TN, BK.
// Mirrored by `MatmulPush` in src/engine/vulkan/kernels/matvec.rs.
#extension GL_GOOGLE_include_directive : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#include "common.glsl"

#define BM (WM * TM * 16u)
#define BN (WN * TN * 16u)
#define NSG (WM * WN)
#define WG (NSG * 32u)
#define UK (BK / 32u)
// Row stride of the staged tiles in uvec2 (4 halves): BK + 8 halves, a 16-byte multiple.
#define LDA4 (BK / 4u + 2u)

layout(local_size_x = WG) in;

layout(binding = 0) readonly restrict buffer Weights { uint w[]; };
layout(binding = 1) readonly restrict buffer X { float x[]; };
layout(binding = 1) readonly restrict buffer X4 { vec4 x4[]; };
layout(binding = 2) restrict buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint ncols;
    uint nrows;
    uint row_bytes;
    uint ntok;
    uint x_off;
    uint x_stride;
    uint y_off;
    uint y_stride;
    uint flags;
} pc;

#include "dequant.glsl"

shared uvec2 ws[BM * LDA4];
shared uvec2 xs[BN * LDA4];
shared float cs[NSG * 256u];

uvec2 pack4(vec4 v) { return uvec2(packHalf2x16(v.xy), packHalf2x16(v.zw)); }

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint sg = tid / 32u;
    const uint lane = tid % 32u;
    const uint sm = sg % WM;
    const uint sn = sg / WM;
    const uint row0 = gl_WorkGroupID.x * BM;
    const uint tok0 = gl_WorkGroupID.y * BN;
    const uint nunits = (pc.ncols + 31u) / 32u;
    const bool accumulate = (pc.flags & 1u) != 0u;
    // Whole tiles move between Y and the accumulators directly when they are 16-byte aligned.
    const bool y_direct = pc.y_off % 4u == 0u && pc.y_stride % 4u == 0u;
    const bool x_vec4 = pc.x_off % 4u == 0u && pc.x_stride % 4u == 0u;

    fcoopmatNV<32, gl_ScopeSubgroup, 16, 16> acc[TM][TN];
    [[unroll]] for (uint i = 0u; i < TM; ++i) {
        [[unroll]] for (uint j = 0u; j < TN; ++j) {
            const uint r = row0 + (sm * TM + i) * 16u;
            const uint t = tok0 + (sn * TN + j) * 16u;
            if (accumulate && y_direct && r + 16u <= pc.nrows && t + 16u <= pc.ntok) {
                coopMatLoadNV(acc[i][j], y, pc.y_off + t * pc.y_stride + r, pc.y_stride, true);
            } else {
                acc[i][j] = fcoopmatNV<32, gl_ScopeSubgroup, 16, 16>(0.0);
            }
        }
    }

    for (uint u0 = 0u; u0 < nunits; u0 += UK) {
        // Neighbouring invocations take neighbouring units of one row: nearby bytes.
        for (uint i = tid; i < BM * UK; i += WG) {
            const uint r = i / UK;
            const uint uu = i % UK;
            const uint row = row0 + r;
            vec4 v[8];
            if (row < pc.nrows && u0 + uu < nunits) {
                dq_unit(row * pc.row_bytes, u0 + uu, pc.ncols, v);
            } else {
                [[unroll]] for (uint k = 0u; k < 8u; ++k) {
                    v[k] = vec4(0.0);
                }
            }
            const uint base = r * LDA4 + uu * 8u;
            [[unroll]] for (uint k = 0u; k < 8u; ++k) {
                ws[base + k] = pack4(v[k]);
            }
        }
        for (uint i = tid; i < BN * (BK / 4u); i += WG) {
            const uint t = i / (BK / 4u);
            const uint k4 = i % (BK / 4u);
            const uint tok = tok0 + t;
            const uint col = u0 * 32u + 4u * k4;
            vec4 v = vec4(0.0);
            if (tok < pc.ntok) {
                const uint xi = pc.x_off + tok * pc.x_stride + col;
                if (x_vec4 && col + 4u <= pc.ncols) {
                    v = x4[xi / 4u];
                } else {
                    [[unroll]] for (uint c = 0u; c < 4u; ++c) {
                        v[c] = col + c < pc.ncols ? x[xi + c] : 0.0;
                    }
                }
            }
            xs[t * LDA4 + k4] = pack4(v);
        }
        barrier();
        [[unroll]] for (uint kk = 0u; kk < BK / 4u; kk += 4u) {
            fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> a[TM];
            fcoopmatNV<16, gl_ScopeSubgroup, 16, 16> b[TN];
            [[unroll]] for (uint i = 0u; i < TM; ++i) {
                // A = 16 rows x 16 columns of W, row-major in ws.
                coopMatLoadNV(a[i], ws, (sm * TM + i) * 16u * LDA4 + kk, LDA4, false);
            }
            [[unroll]] for (uint j = 0u; j < TN; ++j) {
                // B = 16 columns x 16 tokens: token-major in xs, so column-major.
                coopMatLoadNV(b[j], xs, (sn * TN + j) * 16u * LDA4 + kk, LDA4, true);
            }
            [[unroll]] for (uint i = 0u; i < TM; ++i) {
                [[unroll]] for (uint j = 0u; j < TN; ++j) {
                    acc[i][j] = coopMatMulAddNV(a[i], b[j], acc[i][j]);
                }
            }
        }
        barrier();
    }

    // C = rows x tokens, stored token-major (column-major C), as Y is.
    [[unroll]] for (uint i = 0u; i < TM; ++i) {
        [[unroll]] for (uint j = 0u; j < TN; ++j) {
            const uint r = row0 + (sm * TM + i) * 16u;
            const uint t = tok0 + (sn * TN + j) * 16u;
            if (y_direct && r + 16u <= pc.nrows && t + 16u <= pc.ntok) {
                coopMatStoreNV(acc[i][j], y, pc.y_off + t * pc.y_stride + r, pc.y_stride, true);
            } else if (r < pc.nrows && t < pc.ntok) {
                coopMatStoreNV(acc[i][j], cs, sg * 256u, 16u, true);
                subgroupMemoryBarrierShared();
                subgroupBarrier();
                for (uint e = lane; e < 256u; e += 32u) {
                    const uint tok = t + e / 16u;
                    const uint row = r + e % 16u;
                    if (tok < pc.ntok && row < pc.nrows) {
                        const uint yi = pc.y_off + tok * pc.y_stride + row;
                        y[yi] = accumulate ? y[yi] + cs[sg * 256u + e] : cs[sg * 256u + e];
                    }
                }
                subgroupBarrier();
            }
        }
    }
}

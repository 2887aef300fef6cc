#version 450
// Y[t][row] (+)= dot(W[row], X[t]) for t < ntok on tensor cores (GL_NV_cooperative_matrix): the
// prefill and batched-decode matrix product where the device offers VK_NV_cooperative_matrix.
//
// A workgroup owns BM rows x BN tokens and is WM x WN subgroups of 32 lanes (the host only picks
// these variants when the subgroup size is 32); each subgroup owns TM x TN 16x16 output tiles. A
// step dequantizes BK columns of the BM rows (BK / 32 units of dequant.glsl per row) and loads the
// same BK columns of the BN tokens, both as f16 into shared memory (the next step's are fetched
// into registers while this step's tiles are multiplied); every subgroup then multiplies its
// tiles 16 columns at a time, accumulating in f32. Whole output tiles go straight to Y (with
// accumulation, the sum starts from Y's tile); tiles that cross the last row or token go through a
// per-subgroup 16x16 buffer in shared memory and are written element by element, so nothing past
// the end is touched. Staged tiles are f16 packed four to a uvec2 (64-bit shared stores).
//
// Numerics: weights and activations are rounded to f16 before the product (as llama.cpp's
// cooperative-matrix path does); sums are f32. Results differ from matmul.comp by that rounding.
//
// With STAGED_F16 both operands are instead f16 rows in memory, copied in coalesced 16-byte runs:
// the weights dequantized by dequant_f16.comp (row_bytes = 2 x their padded length, a multiple of
// 2 x BK), so the dequantization happens once per matrix, not once per token tile, and the
// activations converted by f16_rows.comp (x_stride is their row length, the same padded length;
// x_off is 0), so a step's activations take half the loads and registers and no conversion.
//
// Bindings: 0 weights (raw GGUF bytes + 16 bytes padding, or staged f16), 1 X (f32, or staged
// f16), 2 Y (f32).
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

#ifdef STAGED_F16
layout(binding = 0) readonly restrict buffer W16 { uvec4 w16[]; };
layout(binding = 1) readonly restrict buffer X16 { uvec4 x16[]; };
#else
layout(binding = 0) readonly restrict buffer Weights { uint w[]; };
layout(binding = 1) readonly restrict buffer X { float x[]; };
layout(binding = 1) readonly restrict buffer X4 { vec4 x4[]; };
#endif
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

#ifndef STAGED_F16
#include "dequant.glsl"
#endif

shared uvec2 ws[BM * LDA4];
shared uvec2 xs[BN * LDA4];
shared float cs[NSG * 256u];

uvec2 pack4(vec4 v) { return uvec2(packHalf2x16(v.xy), packHalf2x16(v.zw)); }

#ifdef STAGED_F16
// Staged f16 weights (dequant_f16.comp): rows of row_bytes / 2 elements, zero past ncols. A step
// copies BM rows x BK columns as 16-byte runs, BK / 8 consecutive invocations per row.
#define WT ((BM * (BK / 8u) + WG - 1u) / WG)
#define WREG uvec4
// Activation octets (16-byte runs) each invocation stages per step.
#define XT ((BN * (BK / 8u) + WG - 1u) / WG)
#define XREG uvec4

void fetch_w(uint u0, uint nunits, uint tid, uint row0, out uvec4 v[WT]) {
    [[unroll]] for (uint q = 0u; q < WT; ++q) {
        const uint i = tid + q * WG;
        const uint row = row0 + i / (BK / 8u);
        const bool ok = i < BM * (BK / 8u) && row < pc.nrows;
        v[q] = ok ? w16[row * (pc.row_bytes / 16u) + u0 * 4u + i % (BK / 8u)] : uvec4(0u);
    }
}

void stage_w(uint tid, uvec4 v[WT]) {
    [[unroll]] for (uint q = 0u; q < WT; ++q) {
        const uint i = tid + q * WG;
        if (i < BM * (BK / 8u)) {
            const uint at = (i / (BK / 8u)) * LDA4 + 2u * (i % (BK / 8u));
            ws[at] = v[q].xy;
            ws[at + 1u] = v[q].zw;
        }
    }
}
#else
// Dequant units each invocation stages per step.
#define WT ((BM * UK + WG - 1u) / WG)
#define WREG vec4[8]
// Activation vec4s each invocation stages per step.
#define XT ((BN * (BK / 4u) + WG - 1u) / WG)
#define XREG vec4

// The weights of the step at unit u0: invocation tid takes units tid, tid + WG, ... of the
// BM x UK grid (neighbouring invocations, neighbouring units of one row: nearby bytes).
void fetch_w(uint u0, uint nunits, uint tid, uint row0, out vec4 v[WT][8]) {
    [[unroll]] for (uint q = 0u; q < WT; ++q) {
        const uint i = tid + q * WG;
        const uint row = row0 + i / UK;
        const uint u = u0 + i % UK;
        if (i < BM * UK && row < pc.nrows && u < nunits) {
            dq_unit(row * pc.row_bytes, u, pc.ncols, v[q]);
        } else {
            [[unroll]] for (uint k = 0u; k < 8u; ++k) {
                v[q][k] = vec4(0.0);
            }
        }
    }
}

void stage_w(uint tid, vec4 v[WT][8]) {
    [[unroll]] for (uint q = 0u; q < WT; ++q) {
        const uint i = tid + q * WG;
        if (i < BM * UK) {
            const uint base = (i / UK) * LDA4 + (i % UK) * 8u;
            [[unroll]] for (uint k = 0u; k < 8u; ++k) {
                ws[base + k] = pack4(v[q][k]);
            }
        }
    }
}
#endif

#ifdef STAGED_F16
// The activations of the step at unit u0 from f16 rows (f16_rows.comp; x_stride is their length
// ld, a multiple of 128, zero past ncols): octet i of the BN x BK/8 grid, token-major.
void fetch_x(uint u0, uint tid, uint tok0, bool x_vec4, out uvec4 xr[XT]) {
    [[unroll]] for (uint q = 0u; q < XT; ++q) {
        const uint i = tid + q * WG;
        const uint tok = tok0 + i / (BK / 8u);
        const bool ok = i < BN * (BK / 8u) && tok < pc.ntok;
        xr[q] = ok ? x16[(tok * pc.x_stride) / 8u + u0 * 4u + i % (BK / 8u)] : uvec4(0u);
    }
}

void stage_x(uint tid, uvec4 xr[XT]) {
    [[unroll]] for (uint q = 0u; q < XT; ++q) {
        const uint i = tid + q * WG;
        if (i < BN * (BK / 8u)) {
            const uint at = (i / (BK / 8u)) * LDA4 + 2u * (i % (BK / 8u));
            xs[at] = xr[q].xy;
            xs[at + 1u] = xr[q].zw;
        }
    }
}
#else
// The activations of the step at unit u0: vec4 i of the BN x BK/4 grid, token-major.
void fetch_x(uint u0, uint tid, uint tok0, bool x_vec4, out vec4 xr[XT]) {
    [[unroll]] for (uint q = 0u; q < XT; ++q) {
        const uint i = tid + q * WG;
        const uint tok = tok0 + i / (BK / 4u);
        const uint col = u0 * 32u + 4u * (i % (BK / 4u));
        vec4 r = vec4(0.0);
        if (i < BN * (BK / 4u) && tok < pc.ntok) {
            const uint xi = pc.x_off + tok * pc.x_stride + col;
            if (x_vec4 && col + 4u <= pc.ncols) {
                r = x4[xi / 4u];
            } else {
                [[unroll]] for (uint c = 0u; c < 4u; ++c) {
                    r[c] = col + c < pc.ncols ? x[xi + c] : 0.0;
                }
            }
        }
        xr[q] = r;
    }
}

void stage_x(uint tid, vec4 xr[XT]) {
    [[unroll]] for (uint q = 0u; q < XT; ++q) {
        const uint i = tid + q * WG;
        if (i < BN * (BK / 4u)) {
            xs[(i / (BK / 4u)) * LDA4 + i % (BK / 4u)] = pack4(xr[q]);
        }
    }
}
#endif

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

    // Software pipeline: step s+1's weights and activations are fetched into registers while
    // step s's tiles are multiplied, so their memory latency overlaps the tensor-core work.
    WREG v[WT];
    XREG xr[XT];
    fetch_w(0u, nunits, tid, row0, v);
    fetch_x(0u, tid, tok0, x_vec4, xr);
    for (uint u0 = 0u; u0 < nunits; u0 += UK) {
        stage_w(tid, v);
        stage_x(tid, xr);
        barrier();
        const bool more = u0 + UK < nunits;
        if (more) {
            fetch_x(u0 + UK, tid, tok0, x_vec4, xr);
        }
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
        if (more) {
            fetch_w(u0 + UK, nunits, tid, row0, v);
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

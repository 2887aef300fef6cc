#version 450
// Y[t][row] (+)= dot(W[row], X[t]) for t < ntok: the prefill matrix-matrix product. Tiles of BM
// rows x BN tokens; each step dequantizes one 32-element unit of BM rows into shared memory, loads
// the matching 32 columns of BN tokens, and every invocation accumulates a TM x TN micro-tile
// (rows strided by BM/TM, tokens by BN/TN, so shared reads are conflict-free).
//
// Bindings: 0 weights (raw GGUF bytes + 16 bytes padding), 1 X (f32), 2 Y (f32).
// Flags: bit 0 accumulate. Compile-time shape: BM, BN (TM = TN = 4, WG = BM*BN/16).
// Mirrored by `MatmulPush` in src/engine/vulkan/kernels/matmul.rs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

#define TM 4u
#define TN 4u
#define WG (BM * BN / (TM * TN))

layout(local_size_x = WG) in;

layout(binding = 0) readonly restrict buffer Weights { uint w[]; };
layout(binding = 1) readonly restrict buffer X { float x[]; };
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

shared float ws[BM][33];
shared float xs[BN][33];

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint row0 = gl_WorkGroupID.x * BM;
    const uint tok0 = gl_WorkGroupID.y * BN;
    const uint tr = tid % (BM / TM);
    const uint tc = tid / (BM / TM);
    const uint nunits = (pc.ncols + 31u) / 32u;

    float acc[TM][TN];
    [[unroll]] for (uint i = 0u; i < TM; ++i) {
        [[unroll]] for (uint j = 0u; j < TN; ++j) {
            acc[i][j] = 0.0;
        }
    }

    for (uint u = 0u; u < nunits; ++u) {
        for (uint r = tid; r < BM; r += WG) {
            const uint row = row0 + r;
            vec4 v[8];
            if (row < pc.nrows) {
                dq_unit(row * pc.row_bytes, u, pc.ncols, v);
            } else {
                [[unroll]] for (uint k = 0u; k < 8u; ++k) {
                    v[k] = vec4(0.0);
                }
            }
            [[unroll]] for (uint k = 0u; k < 8u; ++k) {
                ws[r][4u * k] = v[k].x;
                ws[r][4u * k + 1u] = v[k].y;
                ws[r][4u * k + 2u] = v[k].z;
                ws[r][4u * k + 3u] = v[k].w;
            }
        }
        for (uint i = tid; i < BN * 32u; i += WG) {
            const uint t = i / 32u;
            const uint k = i % 32u;
            const uint tok = tok0 + t;
            const uint col = u * 32u + k;
            xs[t][k] = tok < pc.ntok && col < pc.ncols ? x[pc.x_off + tok * pc.x_stride + col] : 0.0;
        }
        barrier();
        [[unroll]] for (uint k = 0u; k < 32u; ++k) {
            float a[TM];
            float b[TN];
            [[unroll]] for (uint i = 0u; i < TM; ++i) {
                a[i] = ws[tr + i * (BM / TM)][k];
            }
            [[unroll]] for (uint j = 0u; j < TN; ++j) {
                b[j] = xs[tc + j * (BN / TN)][k];
            }
            [[unroll]] for (uint i = 0u; i < TM; ++i) {
                [[unroll]] for (uint j = 0u; j < TN; ++j) {
                    acc[i][j] = fma(a[i], b[j], acc[i][j]);
                }
            }
        }
        barrier();
    }

    [[unroll]] for (uint j = 0u; j < TN; ++j) {
        const uint tok = tok0 + tc + j * (BN / TN);
        [[unroll]] for (uint i = 0u; i < TM; ++i) {
            const uint row = row0 + tr + i * (BM / TM);
            if (tok < pc.ntok && row < pc.nrows) {
                const uint yi = pc.y_off + tok * pc.y_stride + row;
                y[yi] = (pc.flags & 1u) != 0u ? y[yi] + acc[i][j] : acc[i][j];
            }
        }
    }
}

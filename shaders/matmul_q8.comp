#version 450
// Y[c][row] (+)= dot(W[row], x[c]) for c < BATCH (2 .. 16), with x as Q8 activations
// (quantize_q8.comp) and the integer products on tensor cores (GL_NV_integer_cooperative_matrix,
// 16x8x32 signed 8-bit tiles with 32-bit sums): the batched decode product where the device
// has them. The weights' integer values come from piece_q8.glsl, as in matvec_q8.comp, and meet
// the activations' quants in exact int32 sums; each sum is scaled in f32 by its group's weight
// scale and its block's activation scale.
//
// Work split. A workgroup owns one tile of 16 rows (GLU: 16 gate and the matching 16 up rows)
// and is KS warps of 32 lanes; warp k takes every KS-th step of SB activation blocks (4 or 8:
// 128 or 256 columns) of the rows, so the K dimension is split KS ways inside the workgroup,
// and the warps' partial sums are added in warp order at the end (deterministic). A step: the
// warp copies the SB blocks of every vector into its own shared tile (token-major, each
// block's quants as 32 bytes; formats whose scales cover 16 elements get each half block as
// its own 32-byte column with the other half zero), decodes its 16 rows' pieces of those
// columns into a row-major int8 tile and their scales, then per block (and half) and per 8
// vectors multiplies a 16x32 by a 32x8 tile into a 16x8 int32 tile, whose elements each lane
// scales into its f32 sums.
//
// Which (row, vector) each lane's tile element is: NV cooperative matrices do not publish their
// layout, so each warp loads a tile of the element indices once and reads its own elements.
// With EMULATE_MMA (the build for devices without the extension, lavapipe: tests only) the tile
// products are computed lane by lane from the same shared tiles, element e = i * 32 + lane.
//
// Numerics: each block's (or half block's) integer sum is exact; the f32 scaling and the order
// of the sums differ from matvec_q8.comp's, so results are close to, not bit-equal with, the
// single-vector product (the batched tests allow for it).
//
// Bindings: 0 weights (raw GGUF bytes + 16 bytes padding; also uvec4), 1 activations (quants
// as uvec4, (d, s) pairs as vec2 from ds_base), 2 y (f32). Push constants: matvec_q8.comp's
// (`MatvecQ8Push`; the Q8-output fields unused). Specialization: 0 workgroup size (KS * 32),
// 1 KS, 2 BATCH, 3 GLU, 4 IN_ORDER (the activations' word order, q8_block.glsl), 5 SB (4 or 8;
// a K-quant step is then half or all of a superblock).
// Flags: bit 0 accumulate.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_spirv_intrinsics : require
#ifndef EMULATE_MMA
#extension GL_NV_cooperative_matrix : require
#extension GL_NV_integer_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types : require
#endif
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint KS = 1;
layout(constant_id = 2) const uint BATCH = 2;
layout(constant_id = 3) const bool GLU = false;
layout(constant_id = 4) const uint IN_ORDER = 0;
layout(constant_id = 5) const uint SB = 4;

layout(binding = 0) readonly restrict buffer Weights { uint w[]; };
layout(binding = 0) readonly restrict buffer Weights4 { uvec4 w4[]; };
layout(binding = 1) readonly restrict buffer XQ4 { uvec4 xq4[]; };
layout(binding = 1) readonly restrict buffer XD { vec2 xd[]; };
layout(binding = 2) restrict buffer Y { float y[]; };
#define W4_VIEW

layout(push_constant) uniform Push {
    uint ncols;
    uint nrows;
    uint row_bytes;
    uint batch;
    uint nblocks;
    uint ds_base;
    uint y_off;
    uint y_stride;
    uint flags;
    uint glu_off;
    uint oq_nblocks;
    uint oq_ds_base;
} pc;

// OpSDot (4450) with PackedVectorFormat4x8Bit (0), as matvec_q8.comp.
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot_packed(uint a, uint b, spirv_literal int fmt);
int sdot4(uint a, uint b) { return sdot_packed(a, b, 0); }

// q8_block.glsl's word orders (its block store is not used here: it gets unused targets).
shared uint unused_q[1];
shared vec2 unused_d[1];
#define Q8B_Q unused_q
#define Q8B_D unused_d
#include "q8_block.glsl"
#include "piece_q8.glsl"

#if defined(FMT_Q2_K) || defined(FMT_Q3_K) || defined(FMT_Q6_K)
// Scales cover 16 elements: every half block is its own product.
#define HALVES 2u
#else
#define HALVES 1u
#endif

// The weight tile's row stride in uvec4, pieces of a row per step, vectors padded to whole
// 8-vector tiles.
#define AW (SB * 2u)
#define PPS (SB * 32u * Q8_LPB / Q8_QK)
#define NT ((BATCH + 7u) / 8u)
#define NV (NT * 8u)
#define MATS (GLU ? 2u : 1u)
// A vector's step in uvec4: SB blocks x HALVES columns of 32 bytes.
#define XW4 (SB * HALVES * 2u)

// Per warp: the int8 weight tile(s) (16 rows x SB blocks, row-major, 8 uvec4 a row), the
// activation tile (NV vectors x XW4 uvec4), the weight scales per row and slice (f; and the
// block min m, or Q2_K's word min, per row and slice), the activation pairs per vector and
// block, Q2_K's per-slice quant sums, and the warp's partial sums for the final reduction.
shared uvec4 as4[KS * MATS * 16u * AW];
shared uvec4 xs4[KS * NV * XW4];
shared float fs[KS * MATS * 16u * SB * 2u];
shared float ms[KS * MATS * 16u * SB * 2u];
shared vec2 xds[KS * NV * SB];
#ifdef Q8_WORD_MIN
shared float xso[KS * NV * SB * 2u];
#endif
shared float red[KS * MATS * 16u * 16u];
shared int probe[128];

#ifdef EMULATE_MMA
#define WARP_SYNC() memoryBarrierShared(); barrier()
#else
#define WARP_SYNC() subgroupMemoryBarrierShared(); subgroupBarrier()
#endif

// Most activation quads (16 vectors x SB blocks x 2 halves) and pairs a lane copies per step,
// and most weight pieces (16 rows x PPS).
#define XL ((16u * SB * 2u + 31u) / 32u)
#define DL ((16u * SB + 31u) / 32u)
#define WL ((16u * PPS + 31u) / 32u)

// Copies step `st`'s activation blocks of every vector into warp k's tile, with their pairs;
// blocks past the vector's end (and vectors past BATCH: never written) stay zero. Every load
// is issued before the first store (one memory round trip a step).
void stage_x(uint k, uint lane, uint st) {
    const uint b0 = st * SB;
    uvec4 q[XL];
    vec2 d[DL];
    [[unroll]] for (uint i = 0u; i < XL; ++i) {
        const uint t = lane + 32u * i;
        const uint c = t / (SB * 2u);
        const uint blk = b0 + (t / 2u) % SB;
        q[i] = uvec4(0u);
        if (t < BATCH * SB * 2u && blk < pc.nblocks) {
            q[i] = xq4[(c * pc.nblocks * 8u + q8_word_pos(IN_ORDER, pc.nblocks, blk, 4u * (t % 2u))) >> 2];
        }
    }
    [[unroll]] for (uint i = 0u; i < DL; ++i) {
        const uint t = lane + 32u * i;
        const uint blk = b0 + t % SB;
        d[i] = vec2(0.0);
        if (t < BATCH * SB && blk < pc.nblocks) {
            d[i] = xd[pc.ds_base + (t / SB) * pc.nblocks + blk];
        }
    }
    [[unroll]] for (uint i = 0u; i < XL; ++i) {
        const uint t = lane + 32u * i;
        if (t < BATCH * SB * 2u) {
            const uint c = t / (SB * 2u);
            const uint bl = (t / 2u) % SB;
            const uint h = t % 2u;
            // Column (bl, h) of HALVES == 2 holds only half h; with one column per block both
            // halves.
            const uint at = (k * NV + c) * XW4 + (HALVES == 2u ? (bl * 2u + h) * 2u + h : bl * 2u + h);
            xs4[at] = q[i];
#ifdef Q8_WORD_MIN
            xso[((k * NV + c) * SB + bl) * 2u + h] = float(sdot4(0x01010101u, q[i].x)
                + sdot4(0x01010101u, q[i].y) + sdot4(0x01010101u, q[i].z) + sdot4(0x01010101u, q[i].w));
#endif
        }
    }
    [[unroll]] for (uint i = 0u; i < DL; ++i) {
        const uint t = lane + 32u * i;
        if (t < BATCH * SB) {
            xds[(k * NV + t / SB) * SB + t % SB] = d[i];
        }
    }
}

// Decodes step `st`'s pieces of the tile's rows (and with GLU of the up rows) into warp k's
// int8 tiles and scales. Rows past the end repeat the last row (never stored). Every piece is
// decoded (its loads issued) before the first store.
void stage_w(uint k, uint lane, uint st, uint row0) {
    const uint b0 = st * SB;
    const uint npieces = q8_row_pieces(pc.ncols);
    Q8Piece P[2][WL];
    [[unroll]] for (uint m = 0u; m < 2u; ++m) {
        [[unroll]] for (uint i = 0u; i < WL; ++i) {
            const uint t = lane + 32u * i;
            const uint p = st * PPS + t % PPS;
            if (m < MATS && t < 16u * PPS && p < npieces) {
                const uint row = min(row0 + t / PPS, pc.nrows - 1u);
                q8_piece(row * pc.row_bytes + m * pc.glu_off, p, P[m][i]);
            }
        }
    }
    [[unroll]] for (uint m = 0u; m < 2u; ++m) {
        [[unroll]] for (uint i = 0u; i < WL; ++i) {
            const uint t = lane + 32u * i;
            const uint p = st * PPS + t % PPS;
            if (m < MATS && t < 16u * PPS && p < npieces) {
                const uint base = (k * MATS + m) * 16u + t / PPS;
                [[unroll]] for (uint g = 0u; g < Q8_G; ++g) {
                    const uint bl = P[m][i].xb[g] - b0;
                    const uint h = P[m][i].xw[g] / 4u;
                    as4[base * AW + bl * 2u + h] =
                        uvec4(P[m][i].q[g][0], P[m][i].q[g][1], P[m][i].q[g][2], P[m][i].q[g][3]);
                    // One column per block: the first half's group carries the block's scale
                    // and min (the second half's scale is the same; its min is zero).
                    if (HALVES == 2u || h == 0u) {
                        const uint si = base * SB * 2u + bl * 2u + (HALVES == 2u ? h : 0u);
#ifdef Q8_WORD_MIN
                        ms[si] = P[m][i].mw[g];
#else
                        ms[si] = P[m][i].m[g];
#endif
                        fs[si] = P[m][i].f[g];
                    }
                }
            }
        }
    }
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint k = tid / 32u;
    const uint lane = tid % 32u;
    const uint row0 = linear_group() * 16u;
    const uint nsteps = (pc.nblocks + SB - 1u) / SB;

    for (uint t = tid; t < KS * NV * XW4; t += gl_WorkGroupSize.x) {
        xs4[t] = uvec4(0u);
    }
    for (uint t = tid; t < KS * MATS * 16u * SB * 2u; t += gl_WorkGroupSize.x) {
        fs[t] = 0.0;
        ms[t] = 0.0;
    }
    for (uint t = tid; t < 128u; t += gl_WorkGroupSize.x) {
        probe[t] = int(t);
    }
    memoryBarrierShared();
    barrier();

    // The (row, vector) of this lane's elements of a 16x8 tile.
    uint er[4], ec[4];
#ifdef EMULATE_MMA
    [[unroll]] for (uint i = 0u; i < 4u; ++i) {
        er[i] = (i * 32u + lane) / 8u;
        ec[i] = (i * 32u + lane) % 8u;
    }
#else
    {
        icoopmatNV<32, gl_ScopeSubgroup, 16, 8> pm;
        coopMatLoadNV(pm, probe, 0, 8, false);
        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
            const uint e = uint(pm[i]);
            er[i] = e / 8u;
            ec[i] = e % 8u;
        }
    }
#endif

    float acc[2][2][4];
    [[unroll]] for (uint m = 0u; m < 2u; ++m) {
        [[unroll]] for (uint j = 0u; j < 2u; ++j) {
            [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                acc[m][j][i] = 0.0;
            }
        }
    }

    // Uniform across the workgroup (the emulation's barriers): a warp past the last step
    // stages and multiplies nothing.
    for (uint s0 = 0u; s0 < nsteps; s0 += KS) {
        const uint st = s0 + k;
        const bool live = st < nsteps;
        if (live) {
            stage_x(k, lane, st);
            stage_w(k, lane, st, row0);
        }
        WARP_SYNC();
        if (live) {
            [[unroll]] for (uint bl = 0u; bl < SB; ++bl) {
#ifndef EMULATE_MMA
                // The weight tiles of the block (a1: the GLU's up rows).
                icoopmatNV<8, gl_ScopeSubgroup, 16, 32> a0;
                icoopmatNV<8, gl_ScopeSubgroup, 16, 32> a1;
                coopMatLoadNV(a0, as4, (k * MATS * 16u) * AW + bl * 2u, AW, false);
                if (GLU) {
                    coopMatLoadNV(a1, as4, ((k * MATS + 1u) * 16u) * AW + bl * 2u, AW, false);
                }
#endif
                [[unroll]] for (uint h = 0u; h < HALVES; ++h) {
                    [[unroll]] for (uint j = 0u; j < NT; ++j) {
                        const uint xcol = (k * NV + j * 8u) * XW4 + (bl * HALVES + h) * 2u;
                        int si[2][4];
#ifdef EMULATE_MMA
                        [[unroll]] for (uint m = 0u; m < MATS; ++m) {
                            [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                                const uvec4 a0 = as4[((k * MATS + m) * 16u + er[i]) * AW + bl * 2u];
                                const uvec4 a1 = as4[((k * MATS + m) * 16u + er[i]) * AW + bl * 2u + 1u];
                                const uvec4 x0 = xs4[xcol + ec[i] * XW4];
                                const uvec4 x1 = xs4[xcol + ec[i] * XW4 + 1u];
                                int s = 0;
                                [[unroll]] for (uint q = 0u; q < 4u; ++q) {
                                    s += sdot4(a0[q], x0[q]) + sdot4(a1[q], x1[q]);
                                }
                                si[m][i] = s;
                            }
                        }
#else
                        icoopmatNV<8, gl_ScopeSubgroup, 32, 8> b;
                        coopMatLoadNV(b, xs4, xcol, XW4, true);
                        const icoopmatNV<32, gl_ScopeSubgroup, 16, 8> zero = icoopmatNV<32, gl_ScopeSubgroup, 16, 8>(0);
                        const icoopmatNV<32, gl_ScopeSubgroup, 16, 8> c0 = coopMatMulAddNV(a0, b, zero);
                        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                            si[0][i] = c0[i];
                        }
                        if (GLU) {
                            const icoopmatNV<32, gl_ScopeSubgroup, 16, 8> c1 = coopMatMulAddNV(a1, b, zero);
                            [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                                si[1][i] = c1[i];
                            }
                        }
#endif
                        [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                            const uint c = j * 8u + ec[i];
                            const vec2 ds = xds[(k * NV + c) * SB + bl];
#ifdef Q8_WORD_MIN
                            const float so = xso[((k * NV + c) * SB + bl) * 2u + h];
#endif
                            [[unroll]] for (uint m = 0u; m < MATS; ++m) {
                                const uint sc = ((k * MATS + m) * 16u + er[i]) * SB * 2u + bl * 2u + h;
#ifdef Q8_WORD_MIN
                                acc[m][j][i] += ds.x * (fs[sc] * float(si[m][i]) - ms[sc] * so);
#else
                                acc[m][j][i] += ds.x * fs[sc] * float(si[m][i]);
#ifdef Q8_BLOCK_MIN
                                acc[m][j][i] -= ms[sc] * ds.y;
#endif
#endif
                            }
                        }
                    }
                }
            }
        }
        WARP_SYNC();
    }

    // The warps' partial sums, added in warp order.
    [[unroll]] for (uint m = 0u; m < MATS; ++m) {
        [[unroll]] for (uint j = 0u; j < NT; ++j) {
            [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                red[((k * MATS + m) * 16u + er[i]) * 16u + j * 8u + ec[i]] = acc[m][j][i];
            }
        }
    }
    memoryBarrierShared();
    barrier();
    for (uint t = tid; t < 16u * BATCH; t += gl_WorkGroupSize.x) {
        const uint r = t % 16u;
        const uint c = t / 16u;
        float s = 0.0;
        float u = 0.0;
        for (uint kk = 0u; kk < KS; ++kk) {
            s += red[((kk * MATS) * 16u + r) * 16u + c];
            if (GLU) {
                u += red[((kk * MATS + 1u) * 16u + r) * 16u + c];
            }
        }
        if (GLU) {
            s = silu(s) * u;
        }
        if (row0 + r < pc.nrows) {
            const uint yi = pc.y_off + c * pc.y_stride + row0 + r;
            y[yi] = (pc.flags & 1u) != 0u ? y[yi] + s : s;
        }
    }
}

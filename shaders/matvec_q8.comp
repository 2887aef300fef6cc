#version 450
// y[c][row] (+)= dot(W[row], x[c]) for c < BATCH, with x as Q8 activations (quantize_q8.comp) and
// 4x8-bit integer dot products: the weights' integer values meet x's quants in int32 sums, scaled
// per group in f32 (piece_q8.glsl). Same work split as matvec.comp: one subgroup per group of NR
// rows, lanes striding over the row's pieces in memory order, each piece decoded once for all
// BATCH vectors and all NR rows of the pass sharing each activation load; subgroup reductions
// finish each row. A row's sum does not depend on BATCH, so batched results equal single ones.
//
// The dot product is OpSDot (SPV_KHR_integer_dot_product) through GL_EXT_spirv_intrinsics: the
// glslc rawrxd builds with has no GL_EXT_integer_dot_product. The device must enable the
// shaderIntegerDotProduct feature (Vulkan 1.3).
//
// Bindings: 0 weights (raw GGUF bytes + 16 bytes padding; also uvec4), 1 activations (quants as
// uint and uvec4, (d, s) pairs as vec2 from ds_base, two at a time as vec4 for Q4_K/Q5_K),
// 2 y (f32), 3 Q8 output, 4 counters (u32, zeroed by the host once; every dispatch leaves them
// zeroed).
// The activations' quant words are in word order 8 IN_ORDER (q8_block.glsl; the host passes the
// order its producer wrote, `Q8Order::for_product`).
// Specialization: 0 workgroup size, 1 rows per workgroup (gl_NumSubgroups * NR), 2 NR rows per
// subgroup pass (<= 4), 3 BATCH vectors (<= 16), 4 GLU, 5 UNROLL pieces per lane per loop
// iteration, 6 Q8_OUT, 7 OQ_ORDER, 8 IN_ORDER, 9 STAGE: with STAGE > 0 the workgroup copies
// each pass's activations (STAGE blocks of every vector: the pass's pieces, whole chunks of
// IN_ORDER) into shared memory between barriers and its subgroups read them there; the passes
// are then uniform across the workgroup. With Q8_OUT (GLU only), binding 3 also receives y as
// Q8 activations (quantize_q8.comp's layout for vectors of nrows, in word order OQ_ORDER, from
// oq_ds_base) for the next product: each workgroup counts itself done on the counter of every
// 32-row output block it wrote (counter index = block), and the workgroup that completes a
// block quantizes it, an invocation per element (rows per workgroup must divide 32, the
// workgroup size must be a multiple of 32).
// Counting follows a single-pass reduction: y and the counters are coherent, and a workgroup's
// stores are made visible (memoryBarrierBuffer) before it counts; no workgroup waits.
// Flags: bit 0 accumulate. GLU as matvec.comp. Mirrored by `MatvecQ8Push` in
// src/engine/vulkan/kernels/matvec_q8.rs.
//
// NORM_IN variants (one vector, BATCH 1, STAGE 0) take the product's input before its RMS norm:
// binding 5 the residual x (f32, from x_off), binding 6 the norm weight, and every workgroup first
// computes the Q8 activations of rms_norm(x) * w into shared memory itself, exactly as
// rmsnorm_q8 would write them (the sum of squares reduced in rmsnorm.comp's order for its
// workgroup of NORM_WG invocations, specialization constant 10: lanes stand in for its lanes
// subgroup by subgroup; the same element and block arithmetic), so the norm needs no dispatch of
// its own and a vector rounds the same alone as in a batch. Binding 1 is then not read. Vectors of
// up to NORM_MAX_BLOCKS blocks.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_spirv_intrinsics : require
#ifdef NORM_IN
#extension GL_KHR_shader_subgroup_shuffle : require
#endif
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint ROWS_PER_WG = 1;
layout(constant_id = 2) const uint NR = 1;
layout(constant_id = 3) const uint BATCH = 1;
layout(constant_id = 4) const bool GLU = false;
layout(constant_id = 5) const uint UNROLL = 1;
layout(constant_id = 6) const bool Q8_OUT = false;
layout(constant_id = 7) const uint OQ_ORDER = 0;
layout(constant_id = 8) const uint IN_ORDER = 0;
layout(constant_id = 9) const uint STAGE = 0;
layout(constant_id = 10) const uint NORM_WG = 1024;

layout(binding = 0) readonly restrict buffer Weights { uint w[]; };
layout(binding = 0) readonly restrict buffer Weights4 { uvec4 w4[]; };
layout(binding = 1) readonly restrict buffer XQ { uint xq[]; };
layout(binding = 1) readonly restrict buffer XQ4 { uvec4 xq4[]; };
layout(binding = 1) readonly restrict buffer XD { vec2 xd[]; };
layout(binding = 1) readonly restrict buffer XD4 { vec4 xd4[]; };
layout(binding = 2) coherent restrict buffer Y { float y[]; };
layout(binding = 3) writeonly restrict buffer XQO { uint xqo[]; };
layout(binding = 3) writeonly restrict buffer XDO { vec2 xdo[]; };
layout(binding = 4) coherent restrict buffer Counters { uint cnt[]; };
#ifdef NORM_IN
layout(binding = 5) readonly restrict buffer XR { float xr[]; };
layout(binding = 6) readonly restrict buffer NW { float nw[]; };
#endif
#define Q8B_Q xqo
#define Q8B_D xdo
#include "q8_block.glsl"
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
    uint x_off;
    float eps;
} pc;

// OpSDot (4450) with PackedVectorFormat4x8Bit (0): capabilities DotProduct (6019) and
// DotProductInput4x8BitPacked (6018).
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot_packed(uint a, uint b, spirv_literal int fmt);
int sdot4(uint a, uint b) { return sdot_packed(a, b, 0); }

#include "piece_q8.glsl"

#define MAX_NR 4u
#define MAX_BATCH 16u

// Whether this workgroup completed a 32-row output block (Q8_OUT).
shared bool completes;
// The completed block of each vector, an element per invocation, and each block's (d, 1/d).
shared float blk_v[Q8_OUT ? 1024u : 1u];
shared int blk_q[Q8_OUT ? 1024u : 1u];
shared vec2 blk_did[32];

#if defined(FMT_Q4_K) || defined(FMT_Q5_K)
// A piece's two groups read activation blocks xb[0] (even) and xb[0] + 1, and a vector has a
// multiple of 8 blocks (K-quant rows are whole 256-element blocks; ds_base is even), so their
// (d, s) pairs are one 16-byte load.
#define Q8_DS_PAIR 1
#endif

// Where word xw of activation block xb lies in a vector (q8_word_pos in IN_ORDER; K-quant
// vectors have only whole 8-block chunks).
uint in_word(uint xb, uint xw) {
#ifdef Q8_WHOLE_CHUNKS8
    if (IN_ORDER != 4u) {
        return q8_chunk_pos(IN_ORDER, xb, xw);
    }
#endif
    return q8_word_pos(IN_ORDER, pc.nblocks, xb, xw);
}

// The activations of the workgroup's current pass (STAGE > 0): for every vector, the quant
// words of STAGE blocks from block b0 (as they lie in the vector: chunks of every order are
// whole within a stage) and their (d, s) pairs.
shared uvec4 st_q[STAGE > 0u ? BATCH * STAGE * 2u : 1u];
shared vec2 st_d[STAGE > 0u ? BATCH * STAGE : 1u];

// Copies the activations of blocks b0 .. b0 + STAGE (those below nblocks) of every vector into
// the stage, between barriers (the previous pass's reads are done; the copy is visible).
void stage_activations(uint b0) {
    const uint nb = min(STAGE, pc.nblocks - b0);
    memoryBarrierShared();
    barrier();
    for (uint t = gl_LocalInvocationID.x; t < BATCH * STAGE * 2u; t += gl_WorkGroupSize.x) {
        const uint c = t / (STAGE * 2u);
        const uint u = t % (STAGE * 2u);
        if (u < nb * 2u) {
            st_q[t] = xq4[(c * pc.nblocks + b0) * 2u + u];
        }
    }
    for (uint t = gl_LocalInvocationID.x; t < BATCH * STAGE; t += gl_WorkGroupSize.x) {
        const uint c = t / STAGE;
        const uint u = t % STAGE;
        if (u < nb) {
            st_d[t] = xd[pc.ds_base + c * pc.nblocks + b0 + u];
        }
    }
    memoryBarrierShared();
    barrier();
}

#ifdef NORM_IN
#define NORM_MAX_BLOCKS 128u
// The residual vector (staged once, coalesced), the normed vector's quant words (at
// q8_word_pos in IN_ORDER) and (d, s) pairs, and the sum of squares of each of rmsnorm's
// subgroups.
shared float nx[NORM_MAX_BLOCKS * 32u];
shared uvec4 nq4[NORM_MAX_BLOCKS * 2u];
shared vec2 nd[NORM_MAX_BLOCKS];
shared float npart[256];

// Writes the Q8 activations of rms_norm(xr) * nw into nq4 / nd, between barriers.
void norm_prologue() {
    const uint n = pc.ncols;
    for (uint i = gl_LocalInvocationID.x; i < n; i += gl_WorkGroupSize.x) {
        nx[i] = xr[pc.x_off + i];
    }
    barrier();
    const uint sz = gl_SubgroupSize;
    // rmsnorm.comp's invocation v * sz + lane of subgroup v sums elements v * sz + lane + m *
    // NORM_WG; this workgroup's subgroup j takes its subgroups j, j + gl_NumSubgroups, ...
    const uint vsg = NORM_WG / sz;
    for (uint v = gl_SubgroupID; v < vsg; v += gl_NumSubgroups) {
        float ss = 0.0;
        for (uint i = v * sz + gl_SubgroupInvocationID; i < n; i += NORM_WG) {
            const float a = nx[i];
            ss = fma(a, a, ss);
        }
        ss = subgroupAdd(ss);
        if (gl_SubgroupInvocationID == 0u) {
            npart[v] = ss;
        }
    }
    barrier();
    float total = 0.0;
    for (uint s = 0u; s < vsg; ++s) {
        total += npart[s];
    }
    const float scale = 1.0 / sqrt(total / float(n) + pc.eps);
    // Eight invocations a 32-element block, four elements (one quant word) each: the values,
    // the block's max |v| and quant sum through xor shuffles inside each group of eight lanes
    // (a max and an integer sum: the same in any order), as rmsnorm_q8 computes them.
    const uint tid = gl_LocalInvocationID.x;
    for (uint b0 = 0u; b0 < pc.nblocks; b0 += gl_WorkGroupSize.x / 8u) {
        const uint blk = b0 + tid / 8u;
        const uint wd = tid % 8u;
        const uint e0 = 32u * blk + 4u * wd;
        vec4 v = vec4(0.0);
        [[unroll]] for (uint k = 0u; k < 4u; ++k) {
            const uint i = e0 + k;
            if (blk < pc.nblocks && i < n) {
                v[k] = nx[i] * scale * nw[i];
            }
        }
        const vec4 av = abs(v);
        float amax = max(max(av.x, av.y), max(av.z, av.w));
        amax = max(amax, subgroupShuffleXor(amax, 1u));
        amax = max(amax, subgroupShuffleXor(amax, 2u));
        amax = max(amax, subgroupShuffleXor(amax, 4u));
        const vec2 did = q8_scale(amax);
        uint word = 0u;
        int sum = 0;
        [[unroll]] for (uint k = 0u; k < 4u; ++k) {
            const int q = q8_round(v[k] * did.y);
            sum += q;
            word |= (uint(q) & 0xFFu) << (8u * k);
        }
        sum += subgroupShuffleXor(sum, 1u);
        sum += subgroupShuffleXor(sum, 2u);
        sum += subgroupShuffleXor(sum, 4u);
        if (blk < pc.nblocks) {
            const uint pos = q8_word_pos(IN_ORDER, pc.nblocks, blk, wd);
            nq4[pos >> 2][pos & 3u] = word;
            if (wd == 0u) {
                nd[blk] = vec2(did.x, did.x * float(sum));
            }
        }
    }
    memoryBarrierShared();
    barrier();
}
#endif

// Vector c's quant words xi .. xi + 3 (xi counted in the vector, a multiple of 4), from the
// stage (first block b0) or memory.
uvec4 act_q4(uint c, uint xi, uint b0) {
#ifdef NORM_IN
    return nq4[xi >> 2];
#else
    if (STAGE > 0u) {
        return st_q[(c * STAGE * 8u + xi - b0 * 8u) >> 2];
    }
    return xq4[(c * pc.nblocks * 8u + xi) >> 2];
#endif
}

// Vector c's (d, s) pair of block xb.
vec2 act_ds(uint c, uint xb, uint b0) {
#ifdef NORM_IN
    return nd[xb];
#else
    if (STAGE > 0u) {
        return st_d[c * STAGE + xb - b0];
    }
    return xd[pc.ds_base + c * pc.nblocks + xb];
#endif
}

// Piece P times vector c's activations (b0: the stage's first block, with STAGE).
float piece_dot(Q8Piece P, uint c, uint b0) {
    float r = 0.0;
#ifdef Q8_DS_PAIR
    vec2 dsp[2];
#ifdef NORM_IN
    const bool from_shared = true;
#else
    const bool from_shared = STAGE > 0u;
#endif
    if (from_shared) {
        dsp[0] = act_ds(c, P.xb[0], b0);
        dsp[1] = act_ds(c, P.xb[0] + 1u, b0);
    } else {
        const vec4 d4 = xd4[(pc.ds_base + c * pc.nblocks + P.xb[0]) >> 1];
        dsp[0] = d4.xy;
        dsp[1] = d4.zw;
    }
#endif
    [[unroll]] for (uint g = 0u; g < Q8_G; ++g) {
        const uint xi = in_word(P.xb[g], P.xw[g]);
        int si = 0;
#ifdef Q8_WORD_MIN
        int so = 0;
#endif
        if (Q8_W == 4u) {
            const uvec4 xv = act_q4(c, xi, b0);
            [[unroll]] for (uint k = 0u; k < 4u; ++k) {
                si += sdot4(P.q[g][k % Q8_W], xv[k]);
#ifdef Q8_WORD_MIN
                so += sdot4(0x01010101u, xv[k]);
#endif
            }
        } else {
            [[unroll]] for (uint k = 0u; k < Q8_W; ++k) {
#ifdef NORM_IN
                const uint xw = nq4[(xi + k) >> 2][(xi + k) & 3u];
#else
                const uint xw = xq[c * pc.nblocks * 8u + xi + k];
#endif
                si += sdot4(P.q[g][k], xw);
#ifdef Q8_WORD_MIN
                so += sdot4(0x01010101u, xw);
#endif
            }
        }
#ifdef Q8_DS_PAIR
        const vec2 ds = dsp[g];
#else
        const vec2 ds = act_ds(c, P.xb[g], b0);
#endif
#ifdef Q8_WORD_MIN
        r += ds.x * (P.f[g] * float(si) - P.mw[g] * float(so));
#else
        r += ds.x * P.f[g] * float(si);
#endif
#ifdef Q8_BLOCK_MIN
        r -= P.m[g] * ds.y;
#endif
    }
    return r;
}

void main() {
    const uint lane = gl_SubgroupInvocationID;
    const uint npieces = q8_row_pieces(pc.ncols);
    const uint row_base = linear_group() * ROWS_PER_WG;
#ifdef NORM_IN
    norm_prologue();
#endif

    // ROWS_PER_WG is gl_NumSubgroups * NR: one pass of this loop per subgroup. Its loops are
    // uniform across the workgroup (the stage's barriers): a subgroup past the matrix's end
    // computes its last row again and stores nothing.
    for (uint r0 = gl_SubgroupID * NR; r0 < ROWS_PER_WG; r0 += gl_NumSubgroups * NR) {
        const uint row0 = min(row_base + r0, pc.nrows - 1u);
        const bool rows_live = row_base + r0 < pc.nrows;
        float acc[MAX_BATCH][MAX_NR];
        float acc2[MAX_BATCH][MAX_NR];
        [[unroll]] for (uint c = 0u; c < MAX_BATCH; ++c) {
            [[unroll]] for (uint r = 0u; r < MAX_NR; ++r) {
                acc[c][r] = 0.0;
                acc2[c][r] = 0.0;
            }
        }
        for (uint base = 0u; base < npieces; base += gl_SubgroupSize * UNROLL) {
            // The pass's first activation block (passes are whole blocks of pieces).
            const uint b0 = base / Q8_LPB * (Q8_QK / 32u);
            if (STAGE > 0u) {
                stage_activations(b0);
            }
            [[unroll]] for (uint i = 0u; i < UNROLL; ++i) {
                // Past the row's end a lane recomputes its last piece and discards the result.
                const uint praw = base + lane + i * gl_SubgroupSize;
                const bool live = praw < npieces;
                const uint p = live ? praw : npieces - 1u;
                Q8Piece P[MAX_NR];
                Q8Piece G[MAX_NR];
                [[unroll]] for (uint r = 0u; r < NR; ++r) {
                    // Rows past the end read row0's data again and are not stored.
                    const uint row = row0 + r < pc.nrows ? row0 + r : row0;
                    q8_piece(row * pc.row_bytes, p, P[r]);
                    if (GLU) {
                        q8_piece(row * pc.row_bytes + pc.glu_off, p, G[r]);
                    }
                }
                [[unroll]] for (uint c = 0u; c < BATCH; ++c) {
                    [[unroll]] for (uint r = 0u; r < NR; ++r) {
                        acc[c][r] += live ? piece_dot(P[r], c, b0) : 0.0;
                        if (GLU) {
                            acc2[c][r] += live ? piece_dot(G[r], c, b0) : 0.0;
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
                if (lane == 0u && rows_live && row0 + r < pc.nrows) {
                    const uint yi = pc.y_off + c * pc.y_stride + row0 + r;
                    y[yi] = (pc.flags & 1u) != 0u ? y[yi] + s : s;
                }
            }
        }
    }
    if (Q8_OUT) {
        // Publish y, count this workgroup on its 32-row block (rows per workgroup divide 32,
        // so a workgroup lies in one block); the one completing the block quantizes it.
        memoryBarrierBuffer();
        barrier();
        const uint blk = row_base / 32u;
        if (gl_LocalInvocationID.x == 0u) {
            const uint block_rows = min(32u, pc.nrows - min(pc.nrows, blk * 32u));
            const uint need = (block_rows + ROWS_PER_WG - 1u) / ROWS_PER_WG;
            completes = row_base < pc.nrows && atomicAdd(cnt[blk], 1u) == need - 1u;
            if (completes) {
                atomicExchange(cnt[blk], 0u);
            }
        }
        barrier();
        if (completes) {
            // The block of every vector, one invocation per element (the workgroup size is a
            // multiple of 32, so each 32-element block lies in 32 consecutive invocations):
            // q8_block.glsl's rounding, the block's max and quant sum taken by its first
            // invocation through shared memory.
            memoryBarrierBuffer();
            const uint tid = gl_LocalInvocationID.x;
            const uint r0 = blk * 32u;
            for (uint base = 0u; base < BATCH * 32u; base += gl_WorkGroupSize.x) {
                const uint t = base + tid;
                const bool live = t < BATCH * 32u;
                const uint c = t / 32u;
                const uint k = t % 32u;
                const float v = live && r0 + k < pc.nrows ? y[pc.y_off + c * pc.y_stride + r0 + k] : 0.0;
                blk_v[tid] = v;
                barrier();
                if (live && k == 0u) {
                    float amax = 0.0;
                    for (uint j = 0u; j < 32u; ++j) {
                        amax = max(amax, abs(blk_v[tid + j]));
                    }
                    blk_did[tid / 32u] = q8_scale(amax);
                }
                barrier();
                const vec2 did = blk_did[tid / 32u];
                blk_q[tid] = q8_round(v * did.y);
                barrier();
                if (live) {
                    const uint i = c * pc.oq_nblocks + blk;
                    if (k % 4u == 0u) {
                        uint word = 0u;
                        [[unroll]] for (uint j = 0u; j < 4u; ++j) {
                            word |= (uint(blk_q[tid + j]) & 0xFFu) << (8u * j);
                        }
                        xqo[c * pc.oq_nblocks * 8u + q8_word_pos(OQ_ORDER, pc.oq_nblocks, blk, k / 4u)] = word;
                    }
                    if (k == 0u) {
                        int sum = 0;
                        for (uint j = 0u; j < 32u; ++j) {
                            sum += blk_q[tid + j];
                        }
                        xdo[pc.oq_ds_base + i] = vec2(did.x, did.x * float(sum));
                    }
                }
                barrier();
            }
        }
    }
}

#version 450
// Y[c][row] (+)= dot(W[row], x[c]) for c < BATCH (2 .. 16), with x as Q8 activations
// (quantize_q8.comp) and the integer products on tensor cores (GL_NV_integer_cooperative_matrix,
// 16x8x32 signed 8-bit tiles with 32-bit sums): the batched decode product where the device
// has them, in the shape of llama.cpp's CUDA mmq kernels. Each block's (32 elements') integer
// sums are exact; each is scaled in f32 by its weight scale and its activation block's scale.
//
// Fragments in registers. Each lane builds its own parts of the tiles from memory, with no
// shared-memory staging: lane (g, t) = (lane / 4, lane % 4) of a warp holds, of the 16x32
// weight tile, rows g and g + 8 at tile columns (k-slots) 4t .. 4t + 3 ("lo") and 16 + 4t ..
// 16 + 4t + 3 ("hi"), and of the 32x8 activation tile, vector g at the same k-slots; its
// elements of the 16x8 sum are rows g and g + 8 of vectors 2t and 2t + 1. Those are the lanes'
// elements in PTX's mma.m16n8k32 s8 (NVIDIA's driver 580 orders the weight tile's words within
// a lane differently from PTX; `mma` follows the driver). NVIDIA does not publish the Vulkan
// layout, so the host checks it once (PROBE, `matmul_q8::layout_matches`) and does not use
// these tiles where it differs.
// A product sums over k-slots, so which of a block's elements a slot holds is free as long as
// weights and activations agree: each format puts in lane t's slots the 8 elements one or two
// aligned loads give it (`frag`; FRAG_AW0/1 name the activation words they meet). Formats
// whose scales cover 16 elements (Q3_K, Q6_K) take two products per block, each with the other
// half's activation words zeroed. Q2_K folds each half's 4-bit scale into its weights (scale x
// 2-bit value <= 45 fits a signed byte), so one product gives a block's scaled sum, and takes its
// 16-element mins from a second product whose weight tile holds, at each slot, the min of the
// half the slot lies in: both sums are exact integers, scaled by d and dmin.
//
// Work split. A workgroup owns 16 rows (GLU: 16 gate and the matching 16 up rows) and is KS
// warps; warp k takes every KS-th step of 8 blocks (256 columns), and the warps' sums are added
// in warp order at the end (deterministic; not bit-equal to matvec_q8's single-vector sums, so
// the batched tests allow for the difference). A step is 4 pairs of blocks whose weights the
// same loads give (`pair_block`: a K-quant's low and high nibbles share bytes, so a lane's one
// 8-byte load of a Q4_K sub-block pair fills both blocks' fragments); a warp issues the loads of
// PG pairs (`raw`) before decoding any (`frag2`), so that several are in flight.
//
// With EMULATE_MMA (devices without the extension, lavapipe: tests) the tile products are
// computed from the same fragments through shared memory, in the layout above; the loops are
// then uniform across the workgroup (its barriers).
//
// Bindings: 0 weights (raw GGUF bytes + 16 bytes padding; also uvec4 and uvec2), 1 activations
// (quants as uint and uvec2, (d, s) pairs as vec2 from ds_base), 2 y (f32). Push constants:
// matvec_q8.comp's (`MatvecQ8Push`; the Q8-output fields unused). Specialization: 0 workgroup
// size (KS * 32), 1 KS, 2 BATCH, 3 GLU, 4 IN_ORDER (the activations' word order,
// q8_block.glsl), 5 PROBE: one warp writes, per lane, the (row, column) of each of its tile
// elements into y (32 floats a lane: 16 of the weight tile as row * 32 + k, 8 of the activation
// tile as k * 8 + vector, 4 of the sum as row * 8 + vector) and nothing else runs; 6 PG (1, 2
// or 4), 7 ALIGNED: rows (and the GLU's up rows) start at multiples of 16 bytes, 8 TILED
// (K-quants): the weights are in 16-row tile order (weights.rs `tile16`): the 16 rows of a
// workgroup's tile lie together, each superblock column's 16 x SBB bytes ordered so that each
// lane's 16-byte load is at lane * 16 of a 512-byte run one warp load reads whole (`unit`),
// where row-major loads read 32 bytes from each of 8 rows; the GLU's up rows are whole tiles
// glu_off after the gate rows.
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
layout(constant_id = 5) const bool PROBE = false;
layout(constant_id = 6) const uint PG = 1;
layout(constant_id = 7) const bool ALIGNED = false;
layout(constant_id = 8) const bool TILED = false;

layout(binding = 0) readonly restrict buffer Weights { uint w[]; };
layout(binding = 0) readonly restrict buffer Weights4 { uvec4 w4[]; };
layout(binding = 0) readonly restrict buffer Weights2 { uvec2 w2[]; };
layout(binding = 1) readonly restrict buffer XQ { uint xq[]; };
layout(binding = 1) readonly restrict buffer XQ2 { uvec2 xq2[]; };
layout(binding = 1) readonly restrict buffer XD { vec2 xd[]; };
layout(binding = 2) restrict buffer Y { float y[]; };
#define W4_VIEW
// Every superblock header w_chunk reads starts 16-byte aligned where ALIGNED.
#define W4_ALIGNED ALIGNED

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

#if defined(FMT_Q2_K)
// A block's mins come from a second tile product (`Frag.mq`).
#define Q8_TILE_MIN 1
#endif

#if defined(FMT_Q3_K) || defined(FMT_Q6_K)
// Scales cover 16 elements: two products per block.
#define HALVES 2u
#else
#define HALVES 1u
#endif

#if defined(FMT_Q4_0) || defined(FMT_Q4_1) || defined(FMT_Q5_0) || defined(FMT_Q5_1)
// Slot t: qs bytes 4t .. 4t + 3, whose low nibbles are elements 4t .. (activation word t) and
// high nibbles 16 + 4t .. (word 4 + t).
#define FRAG_AW0(t) (t)
#define FRAG_AW1(t) (4u + (t))
#else
// Slot t: elements 8t .. 8t + 7 (activation words 2t and 2t + 1; half t / 2). In these formats'
// word orders (0, 1, 2) a block's words are consecutive, so the two are one 8-byte load.
#define FRAG_AW0(t) (2u * (t))
#define FRAG_AW1(t) (2u * (t) + 1u)
#define FRAG_AW_PAIR 1
#endif

#if defined(FMT_Q2_K) || defined(FMT_Q3_K) || defined(FMT_Q4_K) || defined(FMT_Q5_K) || defined(FMT_Q6_K)
// Rows are whole 8-block superblocks, so every step is whole.
#define WHOLE_STEPS 1
#endif

#define NT ((BATCH + 7u) / 8u)
#define MATS (GLU ? 2u : 1u)
// Blocks per step.
#define SB 8u

// Slot t of block j (32 elements, counted from the row start) of the row at byte rb: its two
// words of signed bytes, the weight scale of each half (f[1] only with HALVES == 2) and the
// block's min m (the product subtracts m * s_x; with Q8_TILE_MIN m is the min's scale and mq
// the slot's four min bytes, whose tile product with the activations is subtracted times m).
struct Frag {
    uint lo;
    uint hi;
    float f[2];
    float m;
    uint mq;
};

#ifndef WHOLE_STEPS
// (The K-quants build theirs two blocks at a time: frag2.)
void frag(uint rb, uint j, uint t, out Frag F) {
    F.m = 0.0;
    F.f[1] = 0.0;
#if defined(FMT_Q8_0)
    // block_q8_0 {f16 d; int8 qs[32]} (2-byte aligned).
    const uint b = rb + j * 34u;
    F.lo = w_u32(b + 2u + 8u * t);
    F.hi = w_u32(b + 6u + 8u * t);
    F.f[0] = h2f(w_u16(b));
#elif defined(FMT_Q4_0)
    const uint b = rb + j * 18u;
    const uint q = w_u32(b + 2u + 4u * t);
    F.lo = offset_bytes(q & 0x0F0F0F0Fu, 4u);
    F.hi = offset_bytes((q >> 4) & 0x0F0F0F0Fu, 4u);
    F.f[0] = h2f(w_u16(b));
#elif defined(FMT_Q4_1)
    const uint b = rb + j * 20u;
    const vec2 dm = unpackHalf2x16(w[b >> 2]);
    const uint q = w[(b >> 2) + 1u + t];
    F.lo = q & 0x0F0F0F0Fu;
    F.hi = (q >> 4) & 0x0F0F0F0Fu;
    F.f[0] = dm.x;
    F.m = -dm.y;
#elif defined(FMT_Q5_0)
    const uint b = rb + j * 22u;
    const uint qh = w_u32(b + 2u);
    const uint q = w_u32(b + 6u + 4u * t);
    F.lo = offset_bytes((q & 0x0F0F0F0Fu) | spread4(qh, 4u * t), 5u);
    F.hi = offset_bytes(((q >> 4) & 0x0F0F0F0Fu) | spread4(qh, 16u + 4u * t), 5u);
    F.f[0] = h2f(w_u16(b));
#elif defined(FMT_Q5_1)
    const uint b = rb + j * 24u;
    const vec2 dm = unpackHalf2x16(w[b >> 2]);
    const uint qh = w[(b >> 2) + 1u];
    const uint q = w[(b >> 2) + 2u + t];
    F.lo = (q & 0x0F0F0F0Fu) | spread4(qh, 4u * t);
    F.hi = ((q >> 4) & 0x0F0F0F0Fu) | spread4(qh, 16u + 4u * t);
    F.f[0] = dm.x;
    F.m = -dm.y;
#endif
}
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

// Pair p's blocks (e = 0, 1), counted from its 8-block step's first block: two blocks whose
// weights one set of loads gives (Q4_K, Q5_K: the low and high nibbles of sub-block pair p;
// Q6_K, p = 2n + h: sub-blocks 4n + h and 4n + h + 2, the low and high nibbles of one ql run;
// Q2_K and Q3_K, p = 2n + q: blocks 4n + 2q and 4n + 2q + 1, bit pairs 2q and 2q + 1 of one qs
// run).
uint pair_block(uint p, uint e) {
#if defined(FMT_Q6_K)
    return 4u * (p >> 1) + (p & 1u) + 2u * e;
#else
    return 2u * p + e;
#endif
}

// What slot t's loads of pair p of a row give, before decoding (`raw`, then `frag2`): the loads
// of several pairs are issued before any is decoded, so that a warp has several in flight.
//   Q4_K: q.xy bytes 8t .. 8t + 7 of sub-block pair p (both blocks: low, high nibbles), s the
//         superblock header; Q5_K: the same, and q.zw the qh bytes 8t .. 8t + 7.
//   Q6_K: q the ql words (l0, l1) and qh words (h0, h1) both blocks read, s.xy the scale bytes
//         8n + 2h .. 8n + 2h + 7, s.z the f16 d.
//   Q3_K: q.xy qs bytes 32n + 8t .. 32n + 8t + 7 (p = 2n + q), q.zw hmask bytes 8t .. 8t + 7,
//         s.xyz the 12 scale bytes, s.w the f16 d.
//   Q2_K: q.xy qs bytes 32n + 8t .. 32n + 8t + 7 (p = 2n + q); s.x bits 0..7 and 16..23 the
//         scale-and-min bytes of half t / 2 of the pair's two blocks; s.y the f16 pair (d, dmin).
//   Other formats (one block a fragment): the two fragments, already decoded (q: lo, hi of
//         each; s: the bits of f[0], m of each).
struct Raw {
    uvec4 q;
    uvec4 s;
};

// The 8 bytes at byte b (a multiple of 4): one load where 8-byte aligned (always, with ALIGNED:
// no branch then stands between a warp's loads).
uvec2 w_8(uint b) {
    if (ALIGNED || (b & 7u) == 0u) {
        return w2[b >> 3];
    }
    return uvec2(w[b >> 2], w[(b >> 2) + 1u]);
}

#if defined(FMT_Q2_K)
#define SBB 84u
#elif defined(FMT_Q3_K)
#define SBB 110u
#elif defined(FMT_Q4_K)
#define SBB 144u
#elif defined(FMT_Q5_K)
#define SBB 176u
#elif defined(FMT_Q6_K)
#define SBB 210u
#endif

#ifdef SBB
// TILED: the 16 bytes of 512-byte unit k of the chunk at c that lane L reads (weights.rs
// `tile16_pos`).
uvec4 unit(uint c, uint k, uint lane) { return w4[(c + 512u * k + 16u * lane) >> 4]; }
#endif

#if defined(FMT_Q3_K) || defined(FMT_Q6_K)
// The 8 bytes at an even byte b: three word loads (Q6_K blocks are 210 bytes, Q3_K's 110: 2-byte
// aligned).
uvec2 w_8u(uint b) {
    const uint i = b >> 2;
    const uint s = (b & 2u) << 3;
    const uint a0 = w[i];
    const uint a1 = w[i + 1u];
    const uint a2 = w[i + 2u];
    return uvec2(fsh(a0, a1, s), fsh(a1, a2, s));
}
#endif

// The loads of pair p of step st of the row at byte rb, for slot t; the second block is only
// read where live1 (it lies in the row).
Raw raw(uint rb, uint rr, uint st, uint p, uint t, bool live1) {
    Raw R;
    R.q = uvec4(0u);
    R.s = uvec4(0u);
#ifdef SBB
    // TILED: rb is the tile's first row, rr this row in it (lane 4 (rr % 8) + t, half rr / 8).
    const uint c = rb + st * 16u * SBB;
    const uint hi = rr >> 3;
    const uint lane = 4u * (rr & 7u) + t;
#endif
#if defined(FMT_Q4_K) || defined(FMT_Q5_K)
#if defined(FMT_Q4_K)
    const uint qs = 16u;
    const uint qsu = 256u;
#else
    const uint qs = 48u;
    const uint qsu = 768u;
#endif
    if (TILED) {
        const uvec4 u = unit(c + qsu, 2u * hi + (p >> 1), lane);
        R.q.xy = (p & 1u) == 0u ? u.xy : u.zw;
#if defined(FMT_Q5_K)
        const uvec4 v = unit(c + 256u, 0u, lane);
        R.q.zw = hi == 0u ? v.xy : v.zw;
#endif
        R.s = w4[(c + 16u * rr) >> 4];
    } else {
        const uint b = rb + st * SBB;
        R.q.xy = w_8(b + qs + 32u * p + 8u * t);
#if defined(FMT_Q5_K)
        R.q.zw = w_8(b + 16u + 8u * t);
#endif
        R.s = w_chunk(b);
    }
#elif defined(FMT_Q6_K)
    // p = 2n + h: sub-blocks 4n + h and 4n + h + 2 (pair_block) read ql[64n + 32h + l] and
    // qh[32n + l], l = 8t .. 8t + 7.
    const uint n = p >> 1;
    const uint h = p & 1u;
    if (TILED) {
        const uvec4 l = unit(c, 2u * hi + n, lane);
        const uvec4 q = unit(c + 2048u, hi, lane);
        const uvec4 sc = w4[(c + 3072u + 16u * rr) >> 4];
        R.q.xy = h == 0u ? l.xy : l.zw;
        R.q.zw = n == 0u ? q.xy : q.zw;
        R.s.xy = (n == 0u ? sc.xy : sc.zw) >> (16u * h);
        R.s.z = w_u16(c + 3328u + 2u * rr);
    } else {
        const uint b = rb + st * SBB;
        R.q.xy = w_8u(b + 64u * n + 32u * h + 8u * t);
        R.q.zw = w_8u(b + 128u + 32u * n + 8u * t);
        R.s.xy = w_8u(b + 192u + 8u * n + 2u * h);
        R.s.z = w_u16(b + 208u);
    }
#elif defined(FMT_Q3_K)
    // block_q3_K {hmask[32], qs[64], scales[12], f16 d}: blocks 4n + j read qs[32n + l] (bits
    // 2j) and hmask[l] (bit 4n + j), l = 8t .. 8t + 7.
    if (TILED) {
        const uvec4 hm = unit(c, 0u, lane);
        const uvec4 q = unit(c + 512u, hi, lane);
        R.q.xy = (p >> 1) == 0u ? q.xy : q.zw;
        R.q.zw = hi == 0u ? hm.xy : hm.zw;
        const uint sw = (c + 1536u + 12u * rr) >> 2;
        R.s.xyz = uvec3(w[sw], w[sw + 1u], w[sw + 2u]);
        R.s.w = w_u16(c + 1728u + 2u * rr);
    } else {
        const uint b = rb + st * 110u;
        R.q.xy = w_8u(b + 32u + 32u * (p >> 1) + 8u * t);
        R.q.zw = w_8u(b + 8u * t);
        R.s.xy = w_8u(b + 96u);
        R.s.z = w_u32(b + 104u);
        R.s.w = w_u16(b + 108u);
    }
#elif defined(FMT_Q2_K)
    // block_q2_K {scales[16], qs[64], f16 d, f16 dmin} (84 bytes, 4-aligned): blocks 4n + j read
    // qs[32n + l] (bits 2j); half h of block 4n + j has scale byte 8n + 2j + h, so the pair's
    // four are word p of the scales.
    if (TILED) {
        // qs units at 0 (rows g) and 512 (rows g + 8), scales at 1024, (d, dmin) at 1280.
        const uvec4 q = unit(c, hi, lane);
        R.q.xy = (p >> 1) == 0u ? q.xy : q.zw;
        R.s.x = (w[((c + 1024u + 16u * rr) >> 2) + p] >> (8u * (t >> 1))) & 0x00FF00FFu;
        R.s.y = w[(c + 1280u + 4u * rr) >> 2];
    } else {
        // (Two word loads: 84-byte blocks leave every other one off 8-byte alignment, also
        // where rows are 16-aligned, so `w_8`'s ALIGNED shortcut does not hold for them.)
        const uint b = rb + st * 84u;
        const uint qw = (b + 16u + 32u * (p >> 1) + 8u * t) >> 2;
        R.q.xy = uvec2(w[qw], w[qw + 1u]);
        R.s.x = (w[(b >> 2) + p] >> (8u * (t >> 1))) & 0x00FF00FFu;
        R.s.y = w[(b >> 2) + 20u];
    }
#else
    Frag F;
    frag(rb, st * SB + pair_block(p, 0u), t, F);
    R.q.xy = uvec2(F.lo, F.hi);
    R.s.xy = floatBitsToUint(vec2(F.f[0], F.m));
    if (live1) {
        frag(rb, st * SB + pair_block(p, 1u), t, F);
        R.q.zw = uvec2(F.lo, F.hi);
        R.s.zw = floatBitsToUint(vec2(F.f[0], F.m));
    }
#endif
    return R;
}

// Slot t's fragments F[e] of the blocks pair_block(p, e), from the pair's loads.
void frag2(Raw R, uint p, out Frag F[2]) {
    [[unroll]] for (uint e = 0u; e < 2u; ++e) {
        F[e].f[1] = 0.0;
        F[e].m = 0.0;
        F[e].mq = 0u;
#if defined(FMT_Q4_K) || defined(FMT_Q5_K)
        const uint jj = 2u * p + e;
        F[e].lo = (R.q.x >> (4u * e)) & 0x0F0F0F0Fu;
        F[e].hi = (R.q.y >> (4u * e)) & 0x0F0F0F0Fu;
#if defined(FMT_Q5_K)
        F[e].lo |= ((R.q.z >> jj) & 0x01010101u) << 4;
        F[e].hi |= ((R.q.w >> jj) & 0x01010101u) << 4;
#endif
        const vec2 dm = unpackHalf2x16(R.s.x);
        float sc, mn;
        unpack_scale_min_k4(R.s.y, R.s.z, R.s.w, jj, sc, mn);
        F[e].f[0] = dm.x * sc;
        F[e].m = dm.y * mn;
#elif defined(FMT_Q6_K)
        // Sub-block 4n + q, q = h + 2e: the low (e = 0) or high nibbles, bits 2q of qh above
        // them; its scales are bytes 2q, 2q + 1 of s.xy (counted from 8n).
        const uint q = (p & 1u) + 2u * e;
        const uint ls = 4u * e;
        const uint hs = 2u * q;
        F[e].lo = offset_bytes(((R.q.x >> ls) & 0x0F0F0F0Fu) | (((R.q.z >> hs) & 0x03030303u) << 4), 6u);
        F[e].hi = offset_bytes(((R.q.y >> ls) & 0x0F0F0F0Fu) | (((R.q.w >> hs) & 0x03030303u) << 4), 6u);
        const float d = h2f(R.s.z);
        const uint sw = e == 0u ? R.s.x : R.s.y;
        F[e].f[0] = d * float(bitfieldExtract(int(sw), 0, 8));
        F[e].f[1] = d * float(bitfieldExtract(int(sw), 8, 8));
#elif defined(FMT_Q3_K)
        // Block 4n + j, j = 2q + e: bits 2j of qs, bit 4n + j of hmask above them (clear
        // meaning -4: the 3-bit value less 4); half h's scale is scale 8n + 2j + h (6 bits, less
        // 32): low nibble n of byte 2j + h, two bits 2(2n + q) of byte 8 + 2e + h.
        const uint n = p >> 1;
        const uint q = p & 1u;
        const uint j = 2u * q + e;
        F[e].lo = offset_bytes(((R.q.x >> (2u * j)) & 0x03030303u) | (((R.q.z >> (4u * n + j)) & 0x01010101u) << 2), 3u);
        F[e].hi = offset_bytes(((R.q.y >> (2u * j)) & 0x03030303u) | (((R.q.w >> (4u * n + j)) & 0x01010101u) << 2), 3u);
        const float d = h2f(R.s.w);
        const uint sw = q == 0u ? R.s.x : R.s.y;
        [[unroll]] for (uint h = 0u; h < 2u; ++h) {
            const uint bb = 8u * (2u * e + h);
            const uint lo = (sw >> (bb + 4u * n)) & 0xFu;
            const uint hi = (R.s.z >> (bb + 2u * (2u * n + q))) & 3u;
            F[e].f[h] = d * float(int(lo | (hi << 4)) - 32);
        }
#elif defined(FMT_Q2_K)
        // Block 4n + j, j = 2q + e: bits 2j of qs; this lane's half's scale (low nibble) times
        // each 2-bit value (<= 45: no carry between bytes), and its min (high nibble).
        const uint j = 2u * (p & 1u) + e;
        const uint sm = (R.s.x >> (16u * e)) & 0xFFu;
        F[e].lo = ((R.q.x >> (2u * j)) & 0x03030303u) * (sm & 0xFu);
        F[e].hi = ((R.q.y >> (2u * j)) & 0x03030303u) * (sm & 0xFu);
        F[e].mq = (sm >> 4) * 0x01010101u;
        const vec2 dm = unpackHalf2x16(R.s.y);
        F[e].f[0] = dm.x;
        F[e].m = dm.y;
#else
        F[e].lo = e == 0u ? R.q.x : R.q.z;
        F[e].hi = e == 0u ? R.q.y : R.q.w;
        const vec2 fm = uintBitsToFloat(e == 0u ? R.s.xy : R.s.zw);
        F[e].f[0] = fm.x;
        F[e].m = fm.y;
#endif
    }
}

// The warps' sums for the final reduction.
shared float red[KS * MATS * 16u * 16u];

#ifdef EMULATE_MMA
// Each warp's fragments, for the emulated products.
shared uvec4 ea[KS * 32u];
shared uvec2 eb[KS * 32u];

// The 16x8 tile product of the layout above, from the lanes' fragments through shared memory.
// a: rows g, g + 8 at slots lo, then at slots hi; b: vector g at lo, hi. Called in uniform
// control flow (barriers).
ivec4 mma(uint k, uint lane, uvec4 a, uvec2 b) {
    ea[k * 32u + lane] = a;
    eb[k * 32u + lane] = b;
    memoryBarrierShared();
    barrier();
    const uint g = lane / 4u;
    const uint t = lane % 4u;
    ivec4 c;
    [[unroll]] for (uint i = 0u; i < 4u; ++i) {
        const uint rh = i / 2u;
        const uint n = 2u * t + i % 2u;
        int s = 0;
        [[unroll]] for (uint tt = 0u; tt < 4u; ++tt) {
            const uvec4 av = ea[k * 32u + 4u * g + tt];
            const uvec2 bv = eb[k * 32u + 4u * n + tt];
            s += sdot4(av[rh], bv.x) + sdot4(av[2u + rh], bv.y);
        }
        c[i] = s;
    }
    memoryBarrierShared();
    barrier();
    return c;
}
#else
// The same product on the tensor cores: the fragments' bytes become the tiles' elements in the
// checked layout (weight-tile elements 4R + byte: row g lo, row g hi, row g + 8 lo, row g + 8
// hi; activation-tile elements 4R + byte: lo, hi).
ivec4 mma(uint k, uint lane, uvec4 a, uvec2 b) {
    icoopmatNV<8, gl_ScopeSubgroup, 16, 32> am;
    icoopmatNV<8, gl_ScopeSubgroup, 32, 8> bm;
    // Each word as a vector of four bytes (a bit cast: the compiler can keep the tile's
    // elements in the words' registers).
    const uvec4 ar = a.xzyw;
    [[unroll]] for (uint r = 0u; r < 4u; ++r) {
        const i8vec4 v = unpack8(int(ar[r]));
        am[4u * r] = v.x;
        am[4u * r + 1u] = v.y;
        am[4u * r + 2u] = v.z;
        am[4u * r + 3u] = v.w;
    }
    [[unroll]] for (uint r = 0u; r < 2u; ++r) {
        const i8vec4 v = unpack8(int(b[r]));
        bm[4u * r] = v.x;
        bm[4u * r + 1u] = v.y;
        bm[4u * r + 2u] = v.z;
        bm[4u * r + 3u] = v.w;
    }
    icoopmatNV<32, gl_ScopeSubgroup, 16, 8> c = icoopmatNV<32, gl_ScopeSubgroup, 16, 8>(0);
    c = coopMatMulAddNV(am, bm, c);
    ivec4 r;
    [[unroll]] for (uint i = 0u; i < 4u; ++i) {
        r[i] = c[i];
    }
    return r;
}

// PROBE: the tiles' element positions (see the header).
shared uint pq[128];
shared int pidx[128];

void probe(uint lane) {
    icoopmatNV<8, gl_ScopeSubgroup, 16, 32> ar;
    icoopmatNV<8, gl_ScopeSubgroup, 16, 32> ak;
    icoopmatNV<8, gl_ScopeSubgroup, 32, 8> bk;
    icoopmatNV<8, gl_ScopeSubgroup, 32, 8> bn;
    icoopmatNV<32, gl_ScopeSubgroup, 16, 8> c;
    // Byte e of a 512-byte tile: a row-major 16x32 A has row e / 32, column e % 32; a
    // column-major 32x8 B (256 bytes) has vector e / 32, row e % 32.
    for (uint wi = lane; wi < 128u; wi += 32u) {
        pq[wi] = (4u * wi / 32u) * 0x01010101u;
    }
    subgroupMemoryBarrierShared();
    subgroupBarrier();
    coopMatLoadNV(ar, pq, 0, 8, false);
    coopMatLoadNV(bn, pq, 0, 8, true);
    subgroupBarrier();
    for (uint wi = lane; wi < 128u; wi += 32u) {
        const uint k0 = (4u * wi) % 32u;
        pq[wi] = k0 | ((k0 + 1u) << 8) | ((k0 + 2u) << 16) | ((k0 + 3u) << 24);
        pidx[wi] = int(wi);
    }
    subgroupMemoryBarrierShared();
    subgroupBarrier();
    coopMatLoadNV(ak, pq, 0, 8, false);
    coopMatLoadNV(bk, pq, 0, 8, true);
    coopMatLoadNV(c, pidx, 0, 8, false);
    [[unroll]] for (uint i = 0u; i < 16u; ++i) {
        y[lane * 32u + i] = float(int(ar[i]) * 32 + int(ak[i]));
    }
    [[unroll]] for (uint i = 0u; i < 8u; ++i) {
        y[lane * 32u + 16u + i] = float(int(bk[i]) * 8 + int(bn[i]));
    }
    [[unroll]] for (uint i = 0u; i < 4u; ++i) {
        y[lane * 32u + 24u + i] = float(c[i]);
    }
}
#endif

// Pair p of step st: its two blocks' tile products for this lane's rows (g, g + 8; R their
// loads) into acc[matrix][vector tile][sum element]. live: the pair's first block lies in the
// row (the second is checked here); the emulation's idle warps pass false and multiply zeros.
void pair(uint k, uint lane, uint st, uint p, bool live, Raw R[2][2], inout float acc[2][2][4]) {
    const uint g = lane / 4u;
    const uint t = lane % 4u;
    const uint j0 = st * SB + pair_block(p, 0u);
    const uint j1 = st * SB + pair_block(p, 1u);
    const bool live1 = live && j1 < pc.nblocks;
    // The weight fragments of each matrix, row and block.
    Frag F[2][2][2];
    [[unroll]] for (uint m = 0u; m < 2u; ++m) {
        [[unroll]] for (uint r = 0u; r < 2u; ++r) {
            frag2(R[m][r], p, F[m][r]);
        }
    }
    // (The emulation keeps its loops: lavapipe compiles it for each test case.)
#ifdef EMULATE_MMA
    [[dont_unroll]]
#else
    [[unroll]]
#endif
    for (uint e = 0u; e < 2u; ++e) {
        const uint j = e == 0u ? j0 : j1;
        const bool le = e == 0u ? live : live1;
        [[unroll]] for (uint jt = 0u; jt < NT; ++jt) {
            // This lane's activation fragment (vector 8jt + g) and the pairs of the vectors
            // of its sums (8jt + 2t, + 1).
            const uint cv = jt * 8u + g;
            uvec2 b = uvec2(0u);
            if (le && cv < BATCH) {
                const uint vb = cv * pc.nblocks * 8u;
#ifdef FRAG_AW_PAIR
                b = xq2[(vb + in_word(j, FRAG_AW0(t))) >> 1];
#else
                b = uvec2(xq[vb + in_word(j, FRAG_AW0(t))], xq[vb + in_word(j, FRAG_AW1(t))]);
#endif
            }
            vec2 ds[2];
            [[unroll]] for (uint i = 0u; i < 2u; ++i) {
                const uint c = jt * 8u + 2u * t + i;
                ds[i] = le && c < BATCH ? xd[pc.ds_base + c * pc.nblocks + j] : vec2(0.0);
            }
            [[unroll]] for (uint h = 0u; h < HALVES; ++h) {
                const uvec2 bh = HALVES == 1u || t / 2u == h ? b : uvec2(0u);
                [[unroll]] for (uint m = 0u; m < MATS; ++m) {
                    const uvec4 a = uvec4(F[m][0][e].lo, F[m][1][e].lo, F[m][0][e].hi, F[m][1][e].hi);
                    const ivec4 c = mma(k, lane, a, bh);
                    [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                        const uint r = i / 2u;
                        const vec2 dv = ds[i % 2u];
                        acc[m][jt][i] += dv.x * (F[m][r][e].f[h] * float(c[i]));
#ifdef Q8_BLOCK_MIN
                        if (h == 0u) {
                            acc[m][jt][i] -= F[m][r][e].m * dv.y;
                        }
#endif
                    }
#ifdef Q8_TILE_MIN
                    const uvec4 am = uvec4(F[m][0][e].mq, F[m][1][e].mq, F[m][0][e].mq, F[m][1][e].mq);
                    const ivec4 cm = mma(k, lane, am, bh);
                    [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                        acc[m][jt][i] -= ds[i % 2u].x * (F[m][i / 2u][e].m * float(cm[i]));
                    }
#endif
                }
            }
        }
    }
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint k = tid / 32u;
    const uint lane = tid % 32u;
    const uint g = lane / 4u;
    const uint t = lane % 4u;
#ifndef EMULATE_MMA
    if (PROBE) {
        if (k == 0u) {
            probe(lane);
        }
        return;
    }
#endif
    const uint row0 = linear_group() * 16u;
    const uint nsteps = (pc.nblocks + SB - 1u) / SB;
    // Rows past the end repeat the last row (never stored).
    // TILED: both rows' tile, and their rows in it.
    const uint rbase[2] = TILED ? uint[2](row0 * pc.row_bytes, row0 * pc.row_bytes)
                                : uint[2](min(row0 + g, pc.nrows - 1u) * pc.row_bytes,
                                          min(row0 + g + 8u, pc.nrows - 1u) * pc.row_bytes);
    const uint rrow[2] = uint[2](g, g + 8u);

    float acc[2][2][4];
    [[unroll]] for (uint m = 0u; m < 2u; ++m) {
        [[unroll]] for (uint j = 0u; j < 2u; ++j) {
            [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                acc[m][j][i] = 0.0;
            }
        }
    }

#ifdef EMULATE_MMA
    // Uniform across the workgroup (the emulation's barriers): a warp past the last step
    // multiplies zeros there.
    for (uint s0 = 0u; s0 < nsteps; s0 += KS) {
        const uint st = s0 + k;
        [[dont_unroll]] for (uint p = 0u; p < SB / 2u; ++p) {
            const bool live = st < nsteps && st * SB + pair_block(p, 0u) < pc.nblocks;
            const bool live1 = live && st * SB + pair_block(p, 1u) < pc.nblocks;
            Raw R[2][2];
            [[unroll]] for (uint m = 0u; m < 2u; ++m) {
                [[unroll]] for (uint r = 0u; r < 2u; ++r) {
                    R[m][r].q = uvec4(0u);
                    R[m][r].s = uvec4(0u);
                    if (m < MATS && live) {
                        R[m][r] = raw(rbase[r] + m * pc.glu_off, rrow[r], st, p, t, live1);
                    }
                }
            }
            pair(k, lane, st, p, live, R, acc);
        }
    }
#else
    // A step's pairs in groups of PG: the group's loads first, then its products.
    for (uint st = k; st < nsteps; st += KS) {
        [[unroll]] for (uint p0 = 0u; p0 < SB / 2u; p0 += PG) {
            Raw R[4][2][2];
            [[unroll]] for (uint pp = 0u; pp < PG; ++pp) {
                const uint p = p0 + pp;
                const bool live = st * SB + pair_block(p, 0u) < pc.nblocks;
                const bool live1 = st * SB + pair_block(p, 1u) < pc.nblocks;
                [[unroll]] for (uint m = 0u; m < 2u; ++m) {
                    [[unroll]] for (uint r = 0u; r < 2u; ++r) {
                        R[pp][m][r].q = uvec4(0u);
                        R[pp][m][r].s = uvec4(0u);
#ifdef WHOLE_STEPS
                        if (m < MATS) {
#else
                        if (m < MATS && live) {
#endif
                            R[pp][m][r] = raw(rbase[r] + m * pc.glu_off, rrow[r], st, p, t, live1);
                        }
                    }
                }
            }
            [[unroll]] for (uint pp = 0u; pp < PG; ++pp) {
                const uint p = p0 + pp;
#ifndef WHOLE_STEPS
                if (st * SB + pair_block(p, 0u) >= pc.nblocks) {
                    continue;
                }
#endif
                pair(k, lane, st, p, true, R[pp], acc);
            }
        }
    }
#endif

    // The warps' partial sums, added in warp order.
    [[unroll]] for (uint m = 0u; m < MATS; ++m) {
        [[unroll]] for (uint jt = 0u; jt < NT; ++jt) {
            [[unroll]] for (uint i = 0u; i < 4u; ++i) {
                red[((k * MATS + m) * 16u + g + 8u * (i / 2u)) * 16u + jt * 8u + 2u * t + i % 2u] = acc[m][jt][i];
            }
        }
    }
    memoryBarrierShared();
    barrier();
    for (uint e = tid; e < 16u * BATCH; e += gl_WorkGroupSize.x) {
        const uint r = e % 16u;
        const uint c = e / 16u;
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

// Dequantization in memory order, for kernels whose neighbouring lanes must read neighbouring
// bytes (coalesced loads): the matrix-vector product of decode.
//
// A row is a sequence of blocks; each block is split into LPB "pieces", one 32-bit word of its
// packed quants (or 8 elements of a float format) each. Piece p of a row is piece p % LPB of block
// p / LPB, so consecutive pieces are consecutive words in the file: lanes that take consecutive
// pieces issue one coalesced load. `dq_piece(rb, p, ncols, v, e)` writes the PV vec4s the piece
// holds into v[k] and the row element index of v[k].x into e[k] (a multiple of 4); elements are
// not consecutive across k (a word's low and high nibbles are 32 elements apart, for example).
//
// Contract with the including shader: as dequant.glsl (which it includes): `uint w[]` with 16
// bytes of readable padding and exactly one FMT_* macro. Float formats may end in a partial piece:
// elements at or past ncols read as 0 and the caller must not load x past ncols.
//
// Each branch names the ggml reference function (ggml-quants.c) whose element order it follows.

#ifndef PIECE_GLSL
#define PIECE_GLSL

#include "dequant.glsl"

// Q3_K keeps dequant.glsl's 32-element units as pieces ("unit order": measured faster on an H100
// than word pieces, whose per-word scale work dominates); Q4_K, Q5_K and Q6_K read 16-byte chunks
// of their quants (32 elements, both nibbles of each byte), Q4_K and Q5_K with 16-byte loads when
// the including shader provides the `uvec4 w4[]` view (W4_VIEW) and the block is 16-byte aligned.
#if defined(FMT_Q3_K)
#define UNIT_ORDER 1
#define PV 8u
#elif defined(FMT_Q4_K) || defined(FMT_Q5_K) || defined(FMT_Q6_K)
#define PV 8u
#elif defined(FMT_Q2_K)
#define PV 4u
#else
#define PV 2u
#endif

#if FLOAT_FMT
#define QK 8u
#define LPB 1u
#elif defined(UNIT_ORDER)
#define QK 256u
#define LPB 8u
#elif defined(FMT_Q2_K)
#define QK 256u
#define LPB 16u
#elif defined(FMT_Q4_K) || defined(FMT_Q5_K) || defined(FMT_Q6_K)
#define QK 256u
#define LPB 8u
#else
#define QK 32u
#define LPB 4u
#endif

// Pieces in a row of ncols elements.
uint row_pieces(uint ncols) { return ((ncols + QK - 1u) / QK) * LPB; }

#if defined(FMT_Q6_K) || defined(FMT_Q3_K)
// Signed byte at any offset.
int w_i8(uint b) { return bitfieldExtract(int(w_u8(b)), 0, 8); }
#endif

#if defined(FMT_Q3_K)
// Scale number s (0..15) of a Q3_K block whose 12 packed scale bytes start at byte sb, minus 32.
float q3k_scale(uint sb, uint s) {
    uint lo = (w_u8(sb + (s & 7u)) >> (4u * (s >> 3))) & 0xFu;
    uint hi = (w_u8(sb + 8u + (s & 3u)) >> (2u * (s >> 2))) & 3u;
    return float(int(lo | (hi << 4)) - 32);
}
#endif

#if defined(FMT_Q4_K) || defined(FMT_Q5_K)
// A shader that knows every b it passes to w_chunk is 16-byte aligned defines W4_ALIGNED (an
// expression, e.g. a specialization constant) so that the test folds away.
#ifndef W4_ALIGNED
#define W4_ALIGNED false
#endif

// The 16 bytes at byte b (a multiple of 4): through the uvec4 view when 16-byte aligned.
uvec4 w_chunk(uint b) {
#ifdef W4_VIEW
    if (W4_ALIGNED || (b & 15u) == 0u) {
        return w4[b >> 4];
    }
#endif
    return w_a128(b);
}

// get_scale_min_k4 for j = 2h and 2h + 1 from a Q4_K/Q5_K block header {f16 d, f16 dmin,
// scales[12]}, times d and dmin.
void k4_scales(uvec4 hdr, uint h, out float sc[2], out float mn[2]) {
    const vec2 dm = unpackHalf2x16(hdr.x);
    [[unroll]] for (uint i = 0u; i < 2u; ++i) {
        unpack_scale_min_k4(hdr.y, hdr.z, hdr.w, 2u * h + i, sc[i], mn[i]);
        sc[i] *= dm.x;
        mn[i] *= dm.y;
    }
}
#endif

void dq_piece(uint rb, uint p, uint ncols, out vec4 v[PV], out uint e[PV]) {
    const uint blk = p / LPB;
    const uint s = p % LPB;
#if defined(UNIT_ORDER)
    // Piece p is dequant.glsl's unit p: elements 32p .. 32p + 31.
    dq_unit(rb, p, ncols, v);
    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        e[k] = 32u * p + 4u * k;
    }
#elif FLOAT_FMT
    // 8 consecutive elements.
    const uint e0 = 8u * p;
    e[0] = e0;
    e[1] = e0 + 4u;
#if defined(FMT_F32)
    const uint i0 = (rb >> 2) + e0;
    if (e0 + 8u <= ncols) {
        v[0] = uintBitsToFloat(uvec4(w[i0], w[i0 + 1u], w[i0 + 2u], w[i0 + 3u]));
        v[1] = uintBitsToFloat(uvec4(w[i0 + 4u], w[i0 + 5u], w[i0 + 6u], w[i0 + 7u]));
    } else {
        [[unroll]] for (uint k = 0u; k < 2u; ++k) {
            [[unroll]] for (uint c = 0u; c < 4u; ++c) {
                v[k][c] = e0 + 4u * k + c < ncols ? uintBitsToFloat(w[i0 + 4u * k + c]) : 0.0;
            }
        }
    }
#else
    const uint b = rb + 2u * e0;
    if (e0 + 8u <= ncols) {
        const uvec4 q = (b & 3u) == 0u ? w_a128(b) : w_u128(b);
#if defined(FMT_F16)
        v[0] = vec4(unpackHalf2x16(q.x), unpackHalf2x16(q.y));
        v[1] = vec4(unpackHalf2x16(q.z), unpackHalf2x16(q.w));
#else
        v[0] = uintBitsToFloat(uvec4(q.x << 16, q.x & 0xFFFF0000u, q.y << 16, q.y & 0xFFFF0000u));
        v[1] = uintBitsToFloat(uvec4(q.z << 16, q.z & 0xFFFF0000u, q.w << 16, q.w & 0xFFFF0000u));
#endif
    } else {
        [[unroll]] for (uint k = 0u; k < 2u; ++k) {
            [[unroll]] for (uint c = 0u; c < 4u; ++c) {
                const uint el = e0 + 4u * k + c;
#if defined(FMT_F16)
                v[k][c] = el < ncols ? h2f(w_u16(rb + 2u * el)) : 0.0;
#else
                v[k][c] = el < ncols ? uintBitsToFloat(w_u16(rb + 2u * el) << 16) : 0.0;
#endif
            }
        }
    }
#endif
#elif defined(FMT_Q4_0)
    // dequantize_row_q4_0: word s of qs holds elements 4s.. (low nibbles) and 16+4s.. (high).
    const uint b = rb + blk * 18u;
    const float d = h2f(w_u16(b));
    const uint q = w_u32(b + 2u + 4u * s);
    e[0] = 32u * blk + 4u * s;
    e[1] = e[0] + 16u;
    v[0] = (nib_lo(q) - 8.0) * d;
    v[1] = (nib_hi(q) - 8.0) * d;
#elif defined(FMT_Q4_1)
    // dequantize_row_q4_1: as Q4_0, x = q * d + m.
    const uint b = rb + blk * 20u;
    const vec2 dm = unpackHalf2x16(w[b >> 2]);
    const uint q = w[(b >> 2) + 1u + s];
    e[0] = 32u * blk + 4u * s;
    e[1] = e[0] + 16u;
    v[0] = nib_lo(q) * dm.x + dm.y;
    v[1] = nib_hi(q) * dm.x + dm.y;
#elif defined(FMT_Q5_0)
    // dequantize_row_q5_0: element e takes bit e of qh as its bit 4.
    const uint b = rb + blk * 22u;
    const float d = h2f(w_u16(b));
    const uint qh = w_u32(b + 2u);
    const uint q = w_u32(b + 6u + 4u * s);
    e[0] = 32u * blk + 4u * s;
    e[1] = e[0] + 16u;
    v[0] = (nib_lo(q) + 16.0 * bits4(qh, 4u * s) - 16.0) * d;
    v[1] = (nib_hi(q) + 16.0 * bits4(qh, 16u + 4u * s) - 16.0) * d;
#elif defined(FMT_Q5_1)
    // dequantize_row_q5_1: as Q5_0, x = q * d + m.
    const uint b = rb + blk * 24u;
    const vec2 dm = unpackHalf2x16(w[b >> 2]);
    const uint qh = w[(b >> 2) + 1u];
    const uint q = w[(b >> 2) + 2u + s];
    e[0] = 32u * blk + 4u * s;
    e[1] = e[0] + 16u;
    v[0] = (nib_lo(q) + 16.0 * bits4(qh, 4u * s)) * dm.x + dm.y;
    v[1] = (nib_hi(q) + 16.0 * bits4(qh, 16u + 4u * s)) * dm.x + dm.y;
#elif defined(FMT_Q8_0)
    // dequantize_row_q8_0: piece s is elements 8s .. 8s+7.
    const uint b = rb + blk * 34u;
    const float d = h2f(w_u16(b));
    const uint q0 = w_u32(b + 2u + 8u * s);
    const uint q1 = w_u32(b + 6u + 8u * s);
    e[0] = 32u * blk + 8u * s;
    e[1] = e[0] + 4u;
    v[0] = i8x4(q0) * d;
    v[1] = i8x4(q1) * d;
#elif defined(FMT_Q2_K)
    // dequantize_row_q2_K: qs word s: half n = s/8, bytes l = 4(s%8) ..; crumb j (bits 2j) is
    // element 128n + 32j + l with scale byte 8n + 2j + l/16 (low nibble scale, high nibble min).
    const uint b = rb + blk * 84u;
    const uint n = s >> 3;
    const uint l = 4u * (s & 7u);
    const vec2 dm = unpackHalf2x16(w[(b + 80u) >> 2]);
    const uint q = w[(b + 16u + 32u * n + l) >> 2];
    // Scale bytes 8n + (l/16) + {0, 2, 4, 6}: bytes (l/16) and (l/16)+2 of two words.
    const uint sw0 = w[(b >> 2) + 2u * n];
    const uint sw1 = w[(b >> 2) + 2u * n + 1u];
    const uint hb = (l >> 4) * 8u;
    [[unroll]] for (uint j = 0u; j < 4u; ++j) {
        const uint sw = j < 2u ? sw0 : sw1;
        const uint sc = (sw >> (hb + 16u * (j & 1u))) & 0xFFu;
        e[j] = 256u * blk + 128u * n + 32u * j + l;
        v[j] = (dm.x * float(sc & 0xFu)) * crumb_at(q, 2u * j) - dm.y * float(sc >> 4);
    }
#elif defined(FMT_Q3_K)
    // dequantize_row_q3_K: qs word s: half n = s/8, bytes l = 4(s%8) ..; crumb j is element
    // 128n + 32j + l with scale 8n + 2j + l/16, high bit (4n + j) of hmask[l], clear means -4.
    const uint b = rb + blk * 110u;
    const uint n = s >> 3;
    const uint l = 4u * (s & 7u);
    const float d = h2f(w_u16(b + 108u));
    const uint q = w_u32(b + 32u + 32u * n + l);
    const uint hm = w_u32(b + l);
    [[unroll]] for (uint j = 0u; j < 4u; ++j) {
        const float dl = d * q3k_scale(b + 96u, 8u * n + 2u * j + (l >> 4));
        e[j] = 256u * blk + 128u * n + 32u * j + l;
        v[j] = dl * (crumb_at(q, 2u * j) - 4.0 + 4.0 * bit_at(hm, 4u * n + j));
    }
#elif defined(FMT_Q4_K)
    // dequantize_row_q4_K: 16-byte chunk s of qs: group h = s/2 of 64 elements, bytes
    // l = 16(s%2) ..; low nibbles are elements 64h + l .. (scale/min 2h), high nibbles
    // 64h + 32 + l .. (2h + 1). The header {d, dmin, scales[12]} is the block's first 16 bytes.
    const uint b = rb + blk * 144u;
    const uint h = s >> 1;
    const uint l = 16u * (s & 1u);
    const uvec4 q = w_chunk(b + 16u + 16u * s);
    float sc[2], mn[2];
    k4_scales(w_chunk(b), h, sc, mn);
    const uint e0 = 256u * blk + 64u * h + l;
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        e[k] = e0 + 4u * k;
        e[k + 4u] = e0 + 32u + 4u * k;
        v[k] = sc[0] * nib_lo(q[k]) - mn[0];
        v[k + 4u] = sc[1] * nib_hi(q[k]) - mn[1];
    }
#elif defined(FMT_Q5_K)
    // dequantize_row_q5_K: as Q4_K (qs at byte 48); bit 2h (low nibble) or 2h + 1 (high) of
    // qh[l + i] (qh at byte 16) adds 16.
    const uint b = rb + blk * 176u;
    const uint h = s >> 1;
    const uint l = 16u * (s & 1u);
    const uvec4 q = w_chunk(b + 48u + 16u * s);
    const uvec4 qh = w_chunk(b + 16u + l);
    float sc[2], mn[2];
    k4_scales(w_chunk(b), h, sc, mn);
    const uint e0 = 256u * blk + 64u * h + l;
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        e[k] = e0 + 4u * k;
        e[k + 4u] = e0 + 32u + 4u * k;
        v[k] = sc[0] * (nib_lo(q[k]) + 16.0 * bit_at(qh[k], 2u * h)) - mn[0];
        v[k + 4u] = sc[1] * (nib_hi(q[k]) + 16.0 * bit_at(qh[k], 2u * h + 1u)) - mn[1];
    }
#elif defined(FMT_Q6_K)
    // dequantize_row_q6_K: chunk s: half n = s/4, hi = (s/2)%2, bytes l = 16(s%2) .. of
    // ql[64n + 32hi ..] and qh[32n ..]. Low nibbles are elements 128n + 32hi + l .. (qh bits 2hi,
    // scale 8n + l/16 + 2hi), high nibbles 64 further (qh bits 4 + 2hi, scale + 4). Blocks are
    // only 2-byte aligned (210 bytes), so the chunks are unaligned loads.
    const uint b = rb + blk * 210u;
    const uint n = s >> 2;
    const uint hi = (s >> 1) & 1u;
    const uint l = 16u * (s & 1u);
    const float d = h2f(w_u16(b + 208u));
    const uvec4 ql = w_u128(b + 64u * n + 32u * hi + l);
    const uvec4 qh = w_u128(b + 128u + 32u * n + l);
    const uint si = b + 192u + 8u * n + (s & 1u) + 2u * hi;
    const float s0 = d * float(w_i8(si));
    const float s1 = d * float(w_i8(si + 4u));
    const uint e0 = 256u * blk + 128u * n + 32u * hi + l;
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        e[k] = e0 + 4u * k;
        e[k + 4u] = e0 + 64u + 4u * k;
        v[k] = s0 * (nib_lo(ql[k]) + 16.0 * crumb_at(qh[k], 2u * hi) - 32.0);
        v[k + 4u] = s1 * (nib_hi(ql[k]) + 16.0 * crumb_at(qh[k], 4u + 2u * hi) - 32.0);
    }
#endif
}

#endif // PIECE_GLSL

// Quantized weights against Q8 activations (quantize_q8.comp), with 4x8-bit integer dot products:
// the decode matrix-vector product of matvec_q8.comp.
//
// As in piece.glsl, a row is split into pieces that lanes take in memory order (Q8_LPB pieces per
// block of Q8_QK elements). `q8_piece(rb, p, P)` decodes piece p of the row at byte rb into
// Q8_G groups of Q8_W words of packed *signed* bytes (each byte one weight's integer value, the
// format's offset already subtracted); group g multiplies the activation words xw[g] ..
// xw[g] + Q8_W - 1 of activation block xb[g] (32 elements a block, counted from the row start),
// scaled by f[g]:
//
//   piece . x  =  sum_g  d_x[xb[g]] * (f[g] * idot(q[g], xq) - mw[g] * idot(0x01010101, xq))
//               - sum_g  m[g] * s_x[xb[g]]
//
// where (d_x, s_x) are the activation block's scale and d_x * sum of its quants. mw (per-group
// mins, Q2_K only: its mins cover 16 elements) and m (whole-block mins: Q4_1, Q5_1, Q4_K, Q5_K;
// only one piece of each block carries it) are zero for the other formats.
//
// Contract with the including shader: as piece.glsl (which it includes for the block helpers),
// and `int sdot4(uint a, uint b)` (signed 4x8-bit dot product) declared before the include.
// Float formats are not handled (matvec.comp serves them).

#ifndef PIECE_Q8_GLSL
#define PIECE_Q8_GLSL

#include "piece.glsl"

#if defined(FMT_Q8_0)
#define Q8_QK 32u
#define Q8_LPB 2u
#define Q8_G 1u
#define Q8_W 4u
#elif defined(FMT_Q4_0) || defined(FMT_Q4_1) || defined(FMT_Q5_0) || defined(FMT_Q5_1)
#define Q8_QK 32u
#define Q8_LPB 1u
#define Q8_G 2u
#define Q8_W 4u
#elif defined(FMT_Q2_K) || defined(FMT_Q3_K)
#define Q8_QK 256u
#define Q8_LPB 4u
#define Q8_G 4u
#define Q8_W 4u
#elif defined(FMT_Q4_K) || defined(FMT_Q5_K) || defined(FMT_Q6_K)
#define Q8_QK 256u
#define Q8_LPB 8u
#define Q8_G 2u
#define Q8_W 4u
#else
#error "piece_q8.glsl: no Q8 form for this format"
#endif

#if defined(FMT_Q2_K) || defined(FMT_Q3_K) || defined(FMT_Q4_K) || defined(FMT_Q5_K) || defined(FMT_Q6_K)
// Rows are whole 256-element superblocks: a vector's blocks are whole 8-block chunks.
#define Q8_WHOLE_CHUNKS8 1
#endif

#if defined(FMT_Q4_1) || defined(FMT_Q5_1) || defined(FMT_Q4_K) || defined(FMT_Q5_K)
#define Q8_BLOCK_MIN 1
#endif
#if defined(FMT_Q2_K)
#define Q8_WORD_MIN 1
#endif

// One decoded piece.
struct Q8Piece {
    uint q[Q8_G][Q8_W];
    uint xb[Q8_G];
    uint xw[Q8_G];
    float f[Q8_G];
    float mw[Q8_G];
    float m[Q8_G];
};

// Pieces in a row of ncols elements.
uint q8_row_pieces(uint ncols) { return ((ncols + Q8_QK - 1u) / Q8_QK) * Q8_LPB; }

// Each byte of u holds a `bits`-bit two's complement value: the bytes sign-extended.
uint sext_bytes(uint u, uint bits) {
    const uint sb = 0x01010101u << (bits - 1u);
    const uint t = u & sb;
    // t * (2^(9 - bits) - 2): copies of each sign bit into bits `bits` .. 7 of its byte.
    return u | (t * ((1u << (9u - bits)) - 2u));
}
// Bytes holding `bits`-bit unsigned values v: v - 2^(bits-1) as signed bytes.
uint offset_bytes(uint v, uint bits) { return sext_bytes(v ^ (0x01010101u << (bits - 1u)), bits); }

#if defined(FMT_Q5_0) || defined(FMT_Q5_1)
// Bits sh .. sh + 3 of x, one per byte at bit 4.
uint spread4(uint x, uint sh) {
    const uint b = x >> sh;
    return ((b & 1u) | ((b & 2u) << 7) | ((b & 4u) << 14) | ((b & 8u) << 21)) << 4;
}
#endif

void q8_piece(uint rb, uint p, out Q8Piece P) {
    const uint blk = p / Q8_LPB;
    const uint s = p % Q8_LPB;
    [[unroll]] for (uint g = 0u; g < Q8_G; ++g) {
        P.mw[g] = 0.0;
        P.m[g] = 0.0;
    }
#if defined(FMT_Q8_0)
    // block_q8_0 {f16 d; int8 qs[32]}: piece s is bytes 16s .. 16s + 15 (2-byte aligned).
    const uint b = rb + blk * 34u;
    const uvec4 q = w_u128(b + 2u + 16u * s);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        P.q[0][k] = q[k];
    }
    P.xb[0] = blk;
    P.xw[0] = 4u * s;
    P.f[0] = h2f(w_u16(b));
#elif defined(FMT_Q4_0) || defined(FMT_Q4_1) || defined(FMT_Q5_0) || defined(FMT_Q5_1)
    // One piece per block, its 16 bytes of qs: word k's low nibbles are elements 4k .. 4k + 3,
    // its high nibbles 16 + 4k ..: group 0 (activation words 0..3) and group 1 (words 4..7).
#if defined(FMT_Q4_0)
    const uint b = rb + blk * 18u;
    const float d = h2f(w_u16(b));
    const uvec4 q = w_u128(b + 2u);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        P.q[0][k] = offset_bytes(q[k] & 0x0F0F0F0Fu, 4u);
        P.q[1][k] = offset_bytes((q[k] >> 4) & 0x0F0F0F0Fu, 4u);
    }
#elif defined(FMT_Q4_1)
    const uint b = rb + blk * 20u;
    const vec2 dm = unpackHalf2x16(w[b >> 2]);
    const float d = dm.x;
    const uvec4 q = w_a128(b + 4u);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        P.q[0][k] = q[k] & 0x0F0F0F0Fu;
        P.q[1][k] = (q[k] >> 4) & 0x0F0F0F0Fu;
    }
    P.m[0] = -dm.y;
#elif defined(FMT_Q5_0)
    const uint b = rb + blk * 22u;
    const float d = h2f(w_u16(b));
    const uint qh = w_u32(b + 2u);
    const uvec4 q = w_u128(b + 6u);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        P.q[0][k] = offset_bytes((q[k] & 0x0F0F0F0Fu) | spread4(qh, 4u * k), 5u);
        P.q[1][k] = offset_bytes(((q[k] >> 4) & 0x0F0F0F0Fu) | spread4(qh, 16u + 4u * k), 5u);
    }
#else
    const uint b = rb + blk * 24u;
    const vec2 dm = unpackHalf2x16(w[b >> 2]);
    const float d = dm.x;
    const uint qh = w[(b >> 2) + 1u];
    const uvec4 q = w_a128(b + 8u);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        P.q[0][k] = (q[k] & 0x0F0F0F0Fu) | spread4(qh, 4u * k);
        P.q[1][k] = ((q[k] >> 4) & 0x0F0F0F0Fu) | spread4(qh, 16u + 4u * k);
    }
    P.m[0] = -dm.y;
#endif
    P.xb[0] = blk;
    P.xb[1] = blk;
    P.xw[0] = 0u;
    P.xw[1] = 4u;
    P.f[0] = d;
    P.f[1] = d;
#elif defined(FMT_Q2_K)
    // 16-byte chunk s of qs: half n = s/2, bytes l = 16(s%2) ..; crumb j of its words is
    // elements 128n + 32j + l .. l + 15, all with scale byte 8n + 2j + l/16 (low nibble scale,
    // high nibble min): one group per crumb.
    const uint b = rb + blk * 84u;
    const uint n = s >> 1;
    const uint l = 16u * (s & 1u);
    const vec2 dm = unpackHalf2x16(w[(b + 80u) >> 2]);
    const uvec4 q = w_a128(b + 16u + 32u * n + l);
    [[unroll]] for (uint j = 0u; j < 4u; ++j) {
        const uint sc = w_u8(b + 8u * n + 2u * j + (l >> 4));
        [[unroll]] for (uint k = 0u; k < 4u; ++k) {
            P.q[j][k] = (q[k] >> (2u * j)) & 0x03030303u;
        }
        P.xb[j] = 8u * blk + 4u * n + j;
        P.xw[j] = l >> 2;
        P.f[j] = dm.x * float(sc & 0xFu);
        P.mw[j] = dm.y * float(sc >> 4);
    }
#elif defined(FMT_Q3_K)
    // 16-byte chunk s of qs: half n = s/2, bytes l = 16(s%2) ..; crumb j of its words is
    // elements 128n + 32j + l .. l + 15 (scale 8n + 2j + l/16), high bit 4n + j of hmask bytes
    // l .., clear meaning -4: one group per crumb. Blocks are 2-byte aligned.
    const uint b = rb + blk * 110u;
    const uint n = s >> 1;
    const uint l = 16u * (s & 1u);
    const float d = h2f(w_u16(b + 108u));
    const uvec4 q = w_u128(b + 32u + 32u * n + l);
    const uvec4 hm = w_u128(b + l);
    [[unroll]] for (uint j = 0u; j < 4u; ++j) {
        [[unroll]] for (uint k = 0u; k < 4u; ++k) {
            const uint v = ((q[k] >> (2u * j)) & 0x03030303u) | (((hm[k] >> (4u * n + j)) & 0x01010101u) << 2);
            P.q[j][k] = offset_bytes(v, 3u);
        }
        P.xb[j] = 8u * blk + 4u * n + j;
        P.xw[j] = l >> 2;
        P.f[j] = d * q3k_scale(b + 96u, 8u * n + 2u * j + (l >> 4));
    }
#elif defined(FMT_Q4_K) || defined(FMT_Q5_K)
    // As piece.glsl: 16-byte chunk s of qs, low nibbles in sub-block 2h, high in 2h + 1. The
    // sub-blocks' mins go with the even chunk of each pair.
    const uint h = s >> 1;
    const uint l = 16u * (s & 1u);
#if defined(FMT_Q4_K)
    const uint b = rb + blk * 144u;
    const uvec4 q = w_chunk(b + 16u + 16u * s);
#else
    const uint b = rb + blk * 176u;
    const uvec4 q = w_chunk(b + 48u + 16u * s);
    const uvec4 qh = w_chunk(b + 16u + l);
#endif
    float sc[2], mn[2];
    k4_scales(w_chunk(b), h, sc, mn);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        P.q[0][k] = q[k] & 0x0F0F0F0Fu;
        P.q[1][k] = (q[k] >> 4) & 0x0F0F0F0Fu;
#if defined(FMT_Q5_K)
        P.q[0][k] |= ((qh[k] >> (2u * h)) & 0x01010101u) << 4;
        P.q[1][k] |= ((qh[k] >> (2u * h + 1u)) & 0x01010101u) << 4;
#endif
    }
    [[unroll]] for (uint g = 0u; g < 2u; ++g) {
        P.xb[g] = 8u * blk + 2u * h + g;
        P.xw[g] = l >> 2;
        P.f[g] = sc[g];
        P.m[g] = (s & 1u) == 0u ? mn[g] : 0.0;
    }
#elif defined(FMT_Q6_K)
    // As piece.glsl: chunk s of ql/qh; low nibbles are sub-block 4n + hi, high nibbles 4n + hi + 2.
    const uint b = rb + blk * 210u;
    const uint n = s >> 2;
    const uint hi = (s >> 1) & 1u;
    const uint l = 16u * (s & 1u);
    const float d = h2f(w_u16(b + 208u));
    const uvec4 ql = w_u128(b + 64u * n + 32u * hi + l);
    const uvec4 qh = w_u128(b + 128u + 32u * n + l);
    const uint si = b + 192u + 8u * n + (s & 1u) + 2u * hi;
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        P.q[0][k] = offset_bytes((ql[k] & 0x0F0F0F0Fu) | (((qh[k] >> (2u * hi)) & 0x03030303u) << 4), 6u);
        P.q[1][k] = offset_bytes(((ql[k] >> 4) & 0x0F0F0F0Fu) | (((qh[k] >> (4u + 2u * hi)) & 0x03030303u) << 4), 6u);
    }
    P.xb[0] = 8u * blk + 4u * n + hi;
    P.xb[1] = P.xb[0] + 2u;
    P.xw[0] = l >> 2;
    P.xw[1] = l >> 2;
    P.f[0] = d * float(w_i8(si));
    P.f[1] = d * float(w_i8(si + 4u));
#endif
}

#endif // PIECE_Q8_GLSL

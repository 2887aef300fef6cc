// Block layouts and dequantization of every ggml weight format, read from raw GGUF bytes.
//
// Contract with the including shader:
// - it declares `uint w[]` in a readonly storage buffer holding the tensor's raw bytes exactly as
//   GGUF stores them, followed by at least 16 bytes of readable padding (unaligned loads read one
//   word past the bytes they return);
// - it defines exactly one FMT_* macro (FMT_F32, FMT_F16, FMT_BF16, FMT_Q4_0, FMT_Q4_1, FMT_Q5_0,
//   FMT_Q5_1, FMT_Q8_0, FMT_Q2_K, FMT_Q3_K, FMT_Q4_K, FMT_Q5_K, FMT_Q6_K).
//
// The unit of work is 32 consecutive elements of a row ("unit" u covers elements 32u .. 32u+31).
// Every quantized format packs a whole number of units per block, so a unit never straddles a
// block. `dq_unit(rb, u, ncols, v)` writes elements 32u+4k .. 32u+4k+3 into v[k]; rb is the byte
// offset of the row's first block (even for every format; a multiple of 4 where the format's block
// size is). Float formats may have a partial last unit: elements at or past ncols read as 0.
//
// Each routine names the ggml reference function (ggml-quants.c) whose output it reproduces.

#ifndef DEQUANT_GLSL
#define DEQUANT_GLSL

// ---- byte access on a word array -------------------------------------------------------------

// Funnel shift: the 32 bits starting at bit s (0 or 16) of the 64-bit value hi:lo.
uint fsh(uint lo, uint hi, uint s) { return (lo >> s) | ((hi << 1) << (31u - s)); }

// Byte b (any alignment).
uint w_u8(uint b) { return (w[b >> 2] >> ((b & 3u) << 3)) & 0xFFu; }
// 16-bit little-endian value at an even byte offset.
uint w_u16(uint b) { return (w[b >> 2] >> ((b & 2u) << 3)) & 0xFFFFu; }
// 32-bit value at an even byte offset.
uint w_u32(uint b) { uint i = b >> 2; return fsh(w[i], w[i + 1u], (b & 2u) << 3); }
// 16 bytes at an even byte offset.
uvec4 w_u128(uint b) {
    uint i = b >> 2;
    uint s = (b & 2u) << 3;
    uint a0 = w[i], a1 = w[i + 1u], a2 = w[i + 2u], a3 = w[i + 3u], a4 = w[i + 4u];
    return uvec4(fsh(a0, a1, s), fsh(a1, a2, s), fsh(a2, a3, s), fsh(a3, a4, s));
}
// 16 bytes at a byte offset that is a multiple of 4.
uvec4 w_a128(uint b) { uint i = b >> 2; return uvec4(w[i], w[i + 1u], w[i + 2u], w[i + 3u]); }

float h2f(uint h) { return unpackHalf2x16(h).x; }

// The four bytes of q as separate lanes.
uvec4 bytes4(uint q) { return uvec4(q, q >> 8, q >> 16, q >> 24) & 0xFFu; }
// Low / high nibbles of the four bytes of q.
vec4 nib_lo(uint q) { return vec4(bytes4(q) & 0xFu); }
vec4 nib_hi(uint q) { return vec4(bytes4(q) >> 4); }
// Nibble at bit `sh` (0 or 4) of each byte.
vec4 nib_at(uint q, uint sh) { return vec4((bytes4(q) >> sh) & 0xFu); }
// 2-bit field at bit `sh` of each byte.
vec4 crumb_at(uint q, uint sh) { return vec4((bytes4(q) >> sh) & 3u); }
// Bit `sh` of each byte.
vec4 bit_at(uint q, uint sh) { return vec4((bytes4(q) >> sh) & 1u); }
// Bits sh, sh+1, sh+2, sh+3 of a 32-bit word, one per lane.
vec4 bits4(uint x, uint sh) { return vec4(uvec4(x >> sh, x >> (sh + 1u), x >> (sh + 2u), x >> (sh + 3u)) & 1u); }
// The four bytes of q as signed values.
vec4 i8x4(uint q) {
    int s = int(q);
    return vec4(bitfieldExtract(s, 0, 8), bitfieldExtract(s, 8, 8), bitfieldExtract(s, 16, 8), bitfieldExtract(s, 24, 8));
}

// ---- per-format geometry -----------------------------------------------------------------------

#if defined(FMT_F32)
#define BLOCK_BYTES 4u
#define FLOAT_FMT 1
#elif defined(FMT_F16) || defined(FMT_BF16)
#define BLOCK_BYTES 2u
#define FLOAT_FMT 1
#elif defined(FMT_Q4_0)
#define BLOCK_BYTES 18u
#elif defined(FMT_Q4_1)
#define BLOCK_BYTES 20u
#elif defined(FMT_Q5_0)
#define BLOCK_BYTES 22u
#elif defined(FMT_Q5_1)
#define BLOCK_BYTES 24u
#elif defined(FMT_Q8_0)
#define BLOCK_BYTES 34u
#elif defined(FMT_Q2_K)
#define BLOCK_BYTES 84u
#elif defined(FMT_Q3_K)
#define BLOCK_BYTES 110u
#elif defined(FMT_Q4_K)
#define BLOCK_BYTES 144u
#elif defined(FMT_Q5_K)
#define BLOCK_BYTES 176u
#elif defined(FMT_Q6_K)
#define BLOCK_BYTES 210u
#else
#error "dequant.glsl: define one FMT_* macro"
#endif

#ifndef FLOAT_FMT
#define FLOAT_FMT 0
#endif

// ---- K-quant helpers ----------------------------------------------------------------------------

#if defined(FMT_Q4_K) || defined(FMT_Q5_K)
// get_scale_min_k4: 6-bit scale and min number j (0..7) from the 12 packed scale bytes held in the
// words s0, s1, s2. Branch-free: lanes of a subgroup take different j.
void unpack_scale_min_k4(uint s0, uint s1, uint s2, uint j, out float sc, out float mn) {
    const uint sh = (j & 3u) * 8u;
    const uint a = (s0 >> sh) & 0xFFu;   // byte j & 3
    const uint m4 = (s1 >> sh) & 0xFFu;  // byte (j & 3) + 4
    const uint c = (s2 >> sh) & 0xFFu;   // byte (j & 3) + 8
    const bool lo = j < 4u;
    sc = float(lo ? (a & 63u) : ((c & 0xFu) | ((a >> 6) << 4)));
    mn = float(lo ? (m4 & 63u) : ((c >> 4) | ((m4 >> 6) << 4)));
}

// The same, from the 12 bytes at byte b (a multiple of 4).
void scale_min_k4(uint b, uint j, out float sc, out float mn) {
    const uint i = b >> 2;
    unpack_scale_min_k4(w[i], w[i + 1u], w[i + 2u], j, sc, mn);
}
#endif

// ---- dq_unit ---------------------------------------------------------------------------------

void dq_unit(uint rb, uint u, uint ncols, out vec4 v[8]) {
#if defined(FMT_F32)
    uint e0 = u * 32u;
    uint i0 = (rb >> 2) + e0;
    if (e0 + 32u <= ncols) {
        [[unroll]] for (uint k = 0u; k < 8u; ++k) {
            v[k] = uintBitsToFloat(uvec4(w[i0 + 4u * k], w[i0 + 4u * k + 1u], w[i0 + 4u * k + 2u], w[i0 + 4u * k + 3u]));
        }
    } else {
        [[unroll]] for (uint k = 0u; k < 8u; ++k) {
            [[unroll]] for (uint c = 0u; c < 4u; ++c) {
                uint e = e0 + 4u * k + c;
                v[k][c] = e < ncols ? uintBitsToFloat(w[i0 + 4u * k + c]) : 0.0;
            }
        }
    }
#elif defined(FMT_F16) || defined(FMT_BF16)
    uint e0 = u * 32u;
    uint b = rb + e0 * 2u;
    if (e0 + 32u <= ncols) {
        [[unroll]] for (uint h = 0u; h < 4u; ++h) {
            uvec4 q = w_u128(b + 16u * h);
#if defined(FMT_F16)
            v[2u * h] = vec4(unpackHalf2x16(q.x), unpackHalf2x16(q.y));
            v[2u * h + 1u] = vec4(unpackHalf2x16(q.z), unpackHalf2x16(q.w));
#else
            v[2u * h] = uintBitsToFloat(uvec4(q.x << 16, q.x & 0xFFFF0000u, q.y << 16, q.y & 0xFFFF0000u));
            v[2u * h + 1u] = uintBitsToFloat(uvec4(q.z << 16, q.z & 0xFFFF0000u, q.w << 16, q.w & 0xFFFF0000u));
#endif
        }
    } else {
        [[unroll]] for (uint k = 0u; k < 8u; ++k) {
            [[unroll]] for (uint c = 0u; c < 4u; ++c) {
                uint e = e0 + 4u * k + c;
#if defined(FMT_F16)
                v[k][c] = e < ncols ? h2f(w_u16(rb + 2u * e)) : 0.0;
#else
                v[k][c] = e < ncols ? uintBitsToFloat(w_u16(rb + 2u * e) << 16) : 0.0;
#endif
            }
        }
    }
#elif defined(FMT_Q4_0)
    // dequantize_row_q4_0: {f16 d; u8 qs[16]}, x = (nibble - 8) * d, low nibbles first.
    uint b = rb + u * 18u;
    float d = h2f(w_u16(b));
    uvec4 q = w_u128(b + 2u);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        v[k] = (nib_lo(q[k]) - 8.0) * d;
        v[k + 4u] = (nib_hi(q[k]) - 8.0) * d;
    }
#elif defined(FMT_Q4_1)
    // dequantize_row_q4_1: {f16 d; f16 m; u8 qs[16]}, x = nibble * d + m.
    uint b = rb + u * 20u;
    vec2 dm = unpackHalf2x16(w[b >> 2]);
    uvec4 q = w_a128(b + 4u);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        v[k] = nib_lo(q[k]) * dm.x + dm.y;
        v[k + 4u] = nib_hi(q[k]) * dm.x + dm.y;
    }
#elif defined(FMT_Q5_0)
    // dequantize_row_q5_0: {f16 d; u8 qh[4]; u8 qs[16]}, element e takes bit e of qh as bit 4.
    uint b = rb + u * 22u;
    float d = h2f(w_u16(b));
    uint qh = w_u32(b + 2u);
    uvec4 q = w_u128(b + 6u);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        v[k] = (nib_lo(q[k]) + 16.0 * bits4(qh, 4u * k) - 16.0) * d;
        v[k + 4u] = (nib_hi(q[k]) + 16.0 * bits4(qh, 16u + 4u * k) - 16.0) * d;
    }
#elif defined(FMT_Q5_1)
    // dequantize_row_q5_1: {f16 d; f16 m; u8 qh[4]; u8 qs[16]}, x = q * d + m.
    uint b = rb + u * 24u;
    vec2 dm = unpackHalf2x16(w[b >> 2]);
    uint qh = w[(b >> 2) + 1u];
    uvec4 q = w_a128(b + 8u);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        v[k] = (nib_lo(q[k]) + 16.0 * bits4(qh, 4u * k)) * dm.x + dm.y;
        v[k + 4u] = (nib_hi(q[k]) + 16.0 * bits4(qh, 16u + 4u * k)) * dm.x + dm.y;
    }
#elif defined(FMT_Q8_0)
    // dequantize_row_q8_0: {f16 d; i8 qs[32]}, x = q * d.
    uint b = rb + u * 34u;
    float d = h2f(w_u16(b));
    uvec4 q0 = w_u128(b + 2u);
    uvec4 q1 = w_u128(b + 18u);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        v[k] = i8x4(q0[k]) * d;
        v[k + 4u] = i8x4(q1[k]) * d;
    }
#elif defined(FMT_Q2_K)
    // dequantize_row_q2_K: {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin}. Unit su of the super-block:
    // half h = su/4 uses qs[32h .. 32h+32] at bit 2*(su%4); sub-blocks of 16 take scales[2su], [2su+1].
    uint b = rb + (u >> 3) * 84u;
    uint su = u & 7u;
    uint shift = 2u * (su & 3u);
    vec2 dm = unpackHalf2x16(w[(b + 80u) >> 2]);
    uint scw = w[(b >> 2) + (su >> 1)];
    uint sc0 = (scw >> ((su & 1u) * 16u)) & 0xFFu;
    uint sc1 = (scw >> ((su & 1u) * 16u + 8u)) & 0xFFu;
    uvec4 qa = w_a128(b + 16u + (su >> 2) * 32u);
    uvec4 qb = w_a128(b + 32u + (su >> 2) * 32u);
    float dl0 = dm.x * float(sc0 & 0xFu), ml0 = dm.y * float(sc0 >> 4);
    float dl1 = dm.x * float(sc1 & 0xFu), ml1 = dm.y * float(sc1 >> 4);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        v[k] = dl0 * crumb_at(qa[k], shift) - ml0;
        v[k + 4u] = dl1 * crumb_at(qb[k], shift) - ml1;
    }
#elif defined(FMT_Q3_K)
    // dequantize_row_q3_K: {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}. Unit su: h = su/4,
    // j = su%4; 2-bit q at bit 2j of qs[32h + l]; high bit (h*4+j) of hmask[l], clear means -4;
    // 6-bit scales 2su and 2su+1 (low nibble from byte s%8, top 2 bits from byte 8 + s%4).
    uint b = rb + (u >> 3) * 110u;
    uint su = u & 7u;
    uint j = su & 3u;
    float d = h2f(w_u16(b + 108u));
    float sc[2];
    [[unroll]] for (uint i = 0u; i < 2u; ++i) {
        uint s = 2u * su + i;
        uint lo = (w_u8(b + 96u + (s & 7u)) >> (4u * (s >> 3))) & 0xFu;
        uint hi = (w_u8(b + 104u + (s & 3u)) >> (2u * (s >> 2))) & 3u;
        sc[i] = d * float(int(lo | (hi << 4)) - 32);
    }
    uvec4 qa = w_u128(b + 32u + (su >> 2) * 32u);
    uvec4 qb = w_u128(b + 48u + (su >> 2) * 32u);
    uvec4 ha = w_u128(b);
    uvec4 hb = w_u128(b + 16u);
    uint mbit = su;
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        v[k] = sc[0] * (crumb_at(qa[k], 2u * j) - 4.0 + 4.0 * bit_at(ha[k], mbit));
        v[k + 4u] = sc[1] * (crumb_at(qb[k], 2u * j) - 4.0 + 4.0 * bit_at(hb[k], mbit));
    }
#elif defined(FMT_Q4_K)
    // dequantize_row_q4_K: {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}. Unit su uses
    // qs[32(su/2) ..] nibble su%2, scale/min number su (get_scale_min_k4).
    uint b = rb + (u >> 3) * 144u;
    uint su = u & 7u;
    vec2 dm = unpackHalf2x16(w[b >> 2]);
    float sc, mn;
    scale_min_k4(b + 4u, su, sc, mn);
    float dl = dm.x * sc, ml = dm.y * mn;
    uint sh = (su & 1u) * 4u;
    uvec4 qa = w_a128(b + 16u + (su >> 1) * 32u);
    uvec4 qb = w_a128(b + 32u + (su >> 1) * 32u);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        v[k] = dl * nib_at(qa[k], sh) - ml;
        v[k + 4u] = dl * nib_at(qb[k], sh) - ml;
    }
#elif defined(FMT_Q5_K)
    // dequantize_row_q5_K: {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}. As Q4_K, with
    // bit su of qh[l] adding 16.
    uint b = rb + (u >> 3) * 176u;
    uint su = u & 7u;
    vec2 dm = unpackHalf2x16(w[b >> 2]);
    float sc, mn;
    scale_min_k4(b + 4u, su, sc, mn);
    float dl = dm.x * sc, ml = dm.y * mn;
    uint sh = (su & 1u) * 4u;
    uvec4 qa = w_a128(b + 48u + (su >> 1) * 32u);
    uvec4 qb = w_a128(b + 64u + (su >> 1) * 32u);
    uvec4 ha = w_a128(b + 16u);
    uvec4 hb = w_a128(b + 32u);
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        v[k] = dl * (nib_at(qa[k], sh) + 16.0 * bit_at(ha[k], su)) - ml;
        v[k + 4u] = dl * (nib_at(qb[k], sh) + 16.0 * bit_at(hb[k], su)) - ml;
    }
#elif defined(FMT_Q6_K)
    // dequantize_row_q6_K: {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}. Unit su: h = su/4,
    // k = su%4; low nibble (k/2) of ql[64h + 32(k%2) + l], 2 bits at 2k of qh[32h + l], minus 32;
    // scales[8h + 2k] for l < 16, [8h + 2k + 1] after.
    uint b = rb + (u >> 3) * 210u;
    uint su = u & 7u;
    uint h = su >> 2;
    uint kq = su & 3u;
    float d = h2f(w_u16(b + 208u));
    uint scp = w_u16(b + 192u + 8u * h + 2u * kq);
    float s0 = d * float(bitfieldExtract(int(scp), 0, 8));
    float s1 = d * float(bitfieldExtract(int(scp), 8, 8));
    uint lb = b + 64u * h + 32u * (kq & 1u);
    uvec4 la = w_u128(lb);
    uvec4 lbq = w_u128(lb + 16u);
    uvec4 ha = w_u128(b + 128u + 32u * h);
    uvec4 hb = w_u128(b + 144u + 32u * h);
    uint nsh = (kq >> 1) * 4u;
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        v[k] = s0 * (nib_at(la[k], nsh) + 16.0 * crumb_at(ha[k], 2u * kq) - 32.0);
        v[k + 4u] = s1 * (nib_at(lbq[k], nsh) + 16.0 * crumb_at(hb[k], 2u * kq) - 32.0);
    }
#endif
}

#endif // DEQUANT_GLSL

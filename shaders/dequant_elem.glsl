// Elements of a quantized block, dequantized one or four at a time: the decode functions of a
// cooperative-matrix load (matmul_cm2.comp's DECODE variants) and their check on every device
// (dequant_f16.comp's ELEM variants). Formats: Q4_K, Q6_K, Q8_0 (FMT_*).
//
// Contract with the including shader: it includes dequant.glsl first (the byte helpers), and
// defines how a block is reached:
// - BLK_PARAM: the declaration of the block's handle as a parameter, BLK_ARG: the same handle
//   passed on;
// - BLK_U16(i): 16-bit word i of the block (a uint, bits 0..15), i < BLOCK_BYTES / 2;
// - for Q4_K (blocks 16-byte aligned): BLK_U32(i), 32-bit word i, and BLK_HEAD, the first 16
//   bytes as a uvec4.
// `dq_elem(h, e)` returns element e (0 .. QK-1) and `dq_elem4(h, e)` elements e .. e+3 (e a
// multiple of 4), computed with the same f32 operations in the same order as dequant.glsl's
// `dq_unit`, so their f16 equals dequant_f16.comp's where the driver contracts neither or both
// into fused multiply-adds. Each format names the ggml reference function (ggml-quants.c).
//
// The loads are the cost of a decode function (each call loads what it reads, and the driver
// calls it per element or per four): every form reads the fewest, widest words it can.

#ifndef DEQUANT_ELEM_GLSL
#define DEQUANT_ELEM_GLSL

#if defined(FMT_Q4_K) || defined(FMT_Q6_K)
#define QK 256u
#elif defined(FMT_Q8_0)
#define QK 32u
#else
#error "dequant_elem.glsl: Q4_K, Q6_K or Q8_0"
#endif

// The four bytes from byte k of the block (k even), from two 16-bit words.
uint blk_bytes4(BLK_PARAM, uint k) {
    return BLK_U16(k >> 1) | (BLK_U16((k >> 1) + 1u) << 16);
}

// Byte k of the block.
uint blk_byte(BLK_PARAM, uint k) {
    return (BLK_U16(k >> 1) >> ((k & 1u) * 8u)) & 0xFFu;
}

#if defined(FMT_Q4_K)
// dequantize_row_q4_K: {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}. Element e: unit su = e/32
// with scale/min number su (get_scale_min_k4), nibble su%2 of qs[32(su/2) + e%32].
// (d * sc, dmin * mn) of unit su.
vec2 q4k_scale_min(BLK_PARAM, uint su) {
    const uvec4 hd = BLK_HEAD;
    const vec2 dm = unpackHalf2x16(hd.x);
    float sc, mn;
    unpack_scale_min_k4(hd.y, hd.z, hd.w, su, sc, mn);
    return vec2(dm.x * sc, dm.y * mn);
}

// The 32-bit word of qs holding elements e & ~3 .. (e & ~3) + 3 (one nibble plane).
uint q4k_word(BLK_PARAM, uint e) {
    return BLK_U32(4u + (e >> 6) * 8u + ((e & 31u) >> 2));
}

float dq_elem(BLK_PARAM, uint e) {
    const uint su = e >> 5;
    const vec2 s = q4k_scale_min(BLK_ARG, su);
    const float q = float((q4k_word(BLK_ARG, e) >> (8u * (e & 3u) + (su & 1u) * 4u)) & 0xFu);
    return s.x * q - s.y;
}

vec4 dq_elem4(BLK_PARAM, uint e) {
    const uint su = e >> 5;
    const vec2 s = q4k_scale_min(BLK_ARG, su);
    return s.x * nib_at(q4k_word(BLK_ARG, e), (su & 1u) * 4u) - s.y;
}
#elif defined(FMT_Q6_K)
// dequantize_row_q6_K: {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}. Element e: unit su = e/32,
// h = su/4, k = su%4, l = e%32; nibble k/2 of ql[64h + 32(k%2) + l], 2 bits at 2k of
// qh[32h + l], minus 32; times d * scales[8h + 2k + l/16].
float q6k_scale(BLK_PARAM, uint e) {
    const uint su = e >> 5;
    const float d = unpackHalf2x16(BLK_U16(104u)).x;
    const uint sb = blk_byte(BLK_ARG, 192u + 8u * (su >> 2) + 2u * (su & 3u) + ((e & 31u) >> 4));
    return d * float(bitfieldExtract(int(sb), 0, 8));
}

// Byte offsets of element e's low bits (ql) and high bits (qh).
uvec2 q6k_at(uint e) {
    const uint su = e >> 5, h = su >> 2, kq = su & 3u, l = e & 31u;
    return uvec2(64u * h + 32u * (kq & 1u) + l, 128u + 32u * h + l);
}

float dq_elem(BLK_PARAM, uint e) {
    const uint kq = (e >> 5) & 3u;
    const uvec2 at = q6k_at(e);
    const float q = float((blk_byte(BLK_ARG, at.x) >> ((kq >> 1) * 4u)) & 0xFu);
    const float hi = float((blk_byte(BLK_ARG, at.y) >> (2u * kq)) & 3u);
    return q6k_scale(BLK_ARG, e) * (q + 16.0 * hi - 32.0);
}

vec4 dq_elem4(BLK_PARAM, uint e) {
    const uint kq = (e >> 5) & 3u;
    const uvec2 at = q6k_at(e);
    const vec4 q = nib_at(blk_bytes4(BLK_ARG, at.x), (kq >> 1) * 4u);
    const vec4 hi = crumb_at(blk_bytes4(BLK_ARG, at.y), 2u * kq);
    return q6k_scale(BLK_ARG, e) * (q + 16.0 * hi - 32.0);
}
#elif defined(FMT_Q8_0)
// dequantize_row_q8_0: {f16 d; i8 qs[32]}, x = q * d.
float dq_elem(BLK_PARAM, uint e) {
    const float d = unpackHalf2x16(BLK_U16(0u)).x;
    return float(bitfieldExtract(int(blk_byte(BLK_ARG, 2u + e)), 0, 8)) * d;
}

vec4 dq_elem4(BLK_PARAM, uint e) {
    const float d = unpackHalf2x16(BLK_U16(0u)).x;
    return i8x4(blk_bytes4(BLK_ARG, 2u + e)) * d;
}
#endif

#endif // DEQUANT_ELEM_GLSL

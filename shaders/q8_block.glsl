// One 32-element block of Q8 activations (matvec_q8.comp's input): signed bytes q = round(v / d)
// (half away from zero, as ggml's quantize_row_q8_1), d = max|v| / 127, and the pair
// (d, d * sum(q)). Contract: the including shader declares `uint xq[]` and `vec2 xd[]` (views of
// one buffer), or names others in Q8B_Q and Q8B_D; `store_q8_block(v, qv, order, nblocks, blk,
// di)` writes block blk's quants among the words of a vector starting at word qv (as
// `q8_word_pos` places them) and the pair at index di.
//
// Word order. A vector's quant words are stored in one of five orders (`Q8Order` in
// src/engine/vulkan/kernels/matvec_q8.rs mirrors them), chosen for the weight format of the
// product that reads them: matvec_q8.comp's lanes take pieces in memory order, and each of its
// 16-byte activation loads then covers whole 128-byte lines instead of halves of twice as many.
// The (d, s) pairs always stay in block order. Orders permute the blocks of whole chunks (8
// blocks, 16 for order 4); a vector's last, partial chunk stays in block order.
//   0  block order (Q8_0 and float formats; the quantize default)
//   1  Q4_K, Q5_K: blocks 0 2 4 6 1 3 5 7 of each 8 (a piece reads blocks 2h and 2h + 1)
//   2  Q6_K: blocks 0 1 4 5 2 3 6 7 (a piece reads 4n + h and 4n + h + 2)
//   3  Q4_0, Q4_1, Q5_0, Q5_1: words 0-3 of 8 blocks, then their words 4-7 (a piece is a block,
//      its two groups its halves)
//   4  Q2_K, Q3_K: of each two 8-block superblocks, blocks j and 4 + j of the first, then of the
//      second, for j = 0 .. 3 (a piece reads blocks j of one half of a superblock)

#ifndef Q8_BLOCK_GLSL
#define Q8_BLOCK_GLSL

#ifndef Q8B_Q
#define Q8B_Q xq
#define Q8B_D xd
#endif

// round(f), halves away from zero (C's roundf), as an int.
int q8_round(float f) { return int(sign(f) * floor(abs(f) + 0.5)); }

// The scale d of a block whose largest magnitude is amax, and the 1/d its values are multiplied
// by before rounding (0 for an all-zero block).
vec2 q8_scale(float amax) {
    const float d = amax / 127.0;
    return vec2(d, d != 0.0 ? 1.0 / d : 0.0);
}

// Where word wd (0 .. 7) of block blk lies among a vector's quant words in `order`, when blk's
// chunk is whole.
uint q8_chunk_pos(uint order, uint blk, uint wd) {
    if (order == 4u) {
        const uint k = blk & 15u;
        const uint j = k & 7u;
        return ((blk & ~15u) + (((j & 3u) << 2) | ((k >> 3) << 1) | (j >> 2))) * 8u + wd;
    }
    const uint base = (blk & ~7u) * 8u;
    const uint k = blk & 7u;
    if (order == 1u) {
        return base + ((k >> 1) | ((k & 1u) << 2)) * 8u + wd;
    }
    if (order == 2u) {
        return base + ((k & 1u) | (((k >> 2) & 1u) << 1) | (((k >> 1) & 1u) << 2)) * 8u + wd;
    }
    if (order == 3u) {
        return base + (wd >> 2) * 32u + k * 4u + (wd & 3u);
    }
    return blk * 8u + wd;
}

// Where word wd (0 .. 7) of block blk lies among the quant words of a vector of nblocks blocks
// stored in `order`.
uint q8_word_pos(uint order, uint nblocks, uint blk, uint wd) {
    const uint chunk = order == 4u ? 16u : 8u;
    return blk < nblocks - nblocks % chunk ? q8_chunk_pos(order, blk, wd) : blk * 8u + wd;
}

void store_q8_block(float v[32], uint qv, uint order, uint nblocks, uint blk, uint di) {
    float amax = 0.0;
    [[unroll]] for (uint k = 0u; k < 32u; ++k) {
        amax = max(amax, abs(v[k]));
    }
    const vec2 did = q8_scale(amax);
    const float d = did.x;
    const float id = did.y;
    int sum = 0;
    [[unroll]] for (uint wd = 0u; wd < 8u; ++wd) {
        uint word = 0u;
        [[unroll]] for (uint j = 0u; j < 4u; ++j) {
            const float f = v[4u * wd + j] * id;
            const int q = q8_round(f);
            sum += q;
            word |= (uint(q) & 0xFFu) << (8u * j);
        }
        Q8B_Q[qv + q8_word_pos(order, nblocks, blk, wd)] = word;
    }
    Q8B_D[di] = vec2(d, d * float(sum));
}

#endif // Q8_BLOCK_GLSL

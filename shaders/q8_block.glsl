// One 32-element block of Q8 activations (matvec_q8.comp's input): signed bytes q = round(v / d)
// (half away from zero, as ggml's quantize_row_q8_1), d = max|v| / 127, and the pair
// (d, d * sum(q)). Contract: the including shader declares `uint xq[]` and `vec2 xd[]` (views of
// one buffer), or names others in Q8B_Q and Q8B_D; `store_q8_block(v, qb, di)` writes the quants
// at words qb .. qb + 7 and the pair at index di.

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

void store_q8_block(float v[32], uint qb, uint di) {
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
        Q8B_Q[qb + wd] = word;
    }
    Q8B_D[di] = vec2(d, d * float(sum));
}

#endif // Q8_BLOCK_GLSL

// RoPE of one element, shared by rope_kv.comp and attn.comp (the decode attention rotates its
// query and the current key itself). Contract: the including shader declares `float src[]` (the
// unrotated rows), `vec2 cs[]` (the angle table: cs[p][i] = (cos, sin)(p * theta_i) for
// i < n_rot / 2) and push constants `n_rot` and `mode` (ggml's: 0 normal, rotating
// (x[2i], x[2i+1]); 2 neox, rotating (x[i], x[i + n_rot/2])). Elements at or past n_rot pass
// through.

#ifndef ROPE_GLSL
#define ROPE_GLSL

// Element e of the row starting at src[base], rotated for position p.
float rotated(uint base, uint e, uint p) {
    if (e >= pc.n_rot) {
        return src[base + e];
    }
    const uint half_rot = pc.n_rot / 2u;
    if (pc.mode == 2u) {
        const uint i = e % half_rot;
        const vec2 a = cs[p * half_rot + i];
        const float x0 = src[base + i];
        const float x1 = src[base + i + half_rot];
        return e < half_rot ? x0 * a.x - x1 * a.y : x0 * a.y + x1 * a.x;
    }
    const uint i = e / 2u;
    const vec2 a = cs[p * half_rot + i];
    const float x0 = src[base + 2u * i];
    const float x1 = src[base + 2u * i + 1u];
    return (e & 1u) == 0u ? x0 * a.x - x1 * a.y : x0 * a.y + x1 * a.x;
}

#endif // ROPE_GLSL

#version 450
// x (f32) -> Q8 activations for matvec_q8.comp: each 32-element block of each vector becomes 32
// signed bytes and a scale pair (q8_block.glsl). Elements at or past ncols quantize as 0.
//
// Layout in the output buffer (uints): the quants of vector c at c * nblocks * 8 (8 words a
// block, in the word order Q8_ORDER, see q8_block.glsl), then, from vec2 index ds_base, (d, s) of
// vector c's block i at ds_base + c * nblocks + i.
// Specialization: 1 Q8_ORDER.
// One invocation per block (the work is tiny next to the products that read it).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(constant_id = 1) const uint Q8_ORDER = 0;

layout(binding = 0) readonly restrict buffer X { float x[]; };
layout(binding = 1) writeonly restrict buffer XQ { uint xq[]; };
layout(binding = 1) writeonly restrict buffer XD { vec2 xd[]; };
#include "q8_block.glsl"

layout(push_constant) uniform Push {
    uint ncols;
    uint nblocks;
    uint batch;
    uint x_off;
    uint x_stride;
    uint ds_base;
} pc;

void main() {
    const uint i = gl_GlobalInvocationID.x;
    const uint c = gl_GlobalInvocationID.y;
    if (i >= pc.nblocks || c >= pc.batch) {
        return;
    }
    const uint xb = pc.x_off + c * pc.x_stride + 32u * i;
    float v[32];
    [[unroll]] for (uint k = 0u; k < 32u; ++k) {
        v[k] = 32u * i + k < pc.ncols ? x[xb + k] : 0.0;
    }
    store_q8_block(v, c * pc.nblocks * 8u, Q8_ORDER, pc.nblocks, i, pc.ds_base + c * pc.nblocks + i);
}

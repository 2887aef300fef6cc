#version 450
// X16[t][c] = f16(x[x_off + t * x_stride + c]) for c < ncols, and 0 for ncols <= c < ld, t < nrows:
// activation rows as f16 rows of ld elements (a multiple of 8), the operand the staged
// tensor-core matmul (matmul_coopmat.comp with STAGED_F16) copies in 16-byte runs, converted once
// per product instead of in every workgroup that reads it.
//
// One invocation per 8 columns (one 16-byte store); a workgroup takes 64 consecutive runs of a row.
// Bindings: 0 x (f32), 1 X16 (f16 octets, written).
// Mirrored by `F16RowsPush` in src/engine/vulkan/kernels/matvec.rs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;

layout(binding = 0) readonly restrict buffer X { float x[]; };
layout(binding = 1) writeonly restrict buffer X16 { uvec4 o[]; };

layout(push_constant) uniform Push {
    uint ncols;
    uint nrows;
    uint x_off;
    uint x_stride;
    uint ld;
} pc;

void main() {
    const uint runs = pc.ld / 8u;
    const uint chunks = (runs + 63u) / 64u;
    const uint g = linear_group();
    const uint t = g / chunks;
    const uint r = (g % chunks) * 64u + gl_LocalInvocationID.x;
    if (t >= pc.nrows || r >= runs) {
        return;
    }
    float v[8];
    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        const uint c = r * 8u + k;
        v[k] = c < pc.ncols ? x[pc.x_off + t * pc.x_stride + c] : 0.0;
    }
    o[t * runs + r] = uvec4(packHalf2x16(vec2(v[0], v[1])), packHalf2x16(vec2(v[2], v[3])),
                            packHalf2x16(vec2(v[4], v[5])), packHalf2x16(vec2(v[6], v[7])));
}

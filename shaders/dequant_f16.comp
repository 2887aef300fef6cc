#version 450
// W16[row][c] = f16(dequantized W[row][c]) for c < ncols, and 0 for ncols <= c < ld: a weight
// matrix (or one piece of it) as f16 rows of ld elements, for the tensor-core matmul's staged path
// (matmul_coopmat.comp with STAGED_F16), which then loads whole 16-byte runs of a row instead of
// dequantizing 32-element units row by row in every token tile.
//
// A lane dequantizes UPT 32-element units; neighbouring invocations read neighbouring bytes and
// write neighbouring 64-byte runs.
// Bindings: 0 weights (raw GGUF bytes + 16 bytes padding), 1 W16 (f16 pairs, written).
// Mirrored by `DequantF16Push` in src/engine/vulkan/kernels/matvec.rs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

// WG lanes a workgroup (specialization constant 0), UPT units a lane (constant 1): a workgroup
// takes WG x UPT consecutive units of one row, lane l the units l, l + WG, ...
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint UPT = 1u;

layout(binding = 0) readonly restrict buffer Weights { uint w[]; };
layout(binding = 1) writeonly restrict buffer W16 { uvec4 o[]; };

layout(push_constant) uniform Push {
    uint ncols;
    uint nrows;
    uint row_bytes;
    uint ld;
} pc;

#include "dequant.glsl"

void main() {
    const uint wg = gl_WorkGroupSize.x;
    const uint units = pc.ld / 32u;
    const uint per = wg * UPT;
    const uint chunks = (units + per - 1u) / per;
    const uint g = linear_group();
    const uint row = g / chunks;
    if (row >= pc.nrows) {
        return;
    }
    const uint first = (g % chunks) * per + gl_LocalInvocationID.x;
    vec4 v[UPT][8];
    [[unroll]] for (uint j = 0u; j < UPT; ++j) {
        const uint u = first + j * wg;
        if (u < units && u * 32u < pc.ncols) {
            dq_unit(row * pc.row_bytes, u, pc.ncols, v[j]);
        } else {
            [[unroll]] for (uint k = 0u; k < 8u; ++k) {
                v[j][k] = vec4(0.0);
            }
        }
    }
    [[unroll]] for (uint j = 0u; j < UPT; ++j) {
        const uint u = first + j * wg;
        if (u < units) {
            const uint base = (row * pc.ld + u * 32u) / 8u;
            [[unroll]] for (uint k = 0u; k < 4u; ++k) {
                o[base + k] = uvec4(packHalf2x16(v[j][2u * k].xy), packHalf2x16(v[j][2u * k].zw),
                                    packHalf2x16(v[j][2u * k + 1u].xy),
                                    packHalf2x16(v[j][2u * k + 1u].zw));
            }
        }
    }
}

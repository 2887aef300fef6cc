#version 450
// W16[row][c] = f16(dequantized W[row][c]) for c < ncols, and 0 for ncols <= c < ld: a weight
// matrix (or one piece of it) as f16 rows of ld elements, for the tensor-core matmul's staged path
// (matmul_coopmat.comp with STAGED_F16), which then loads whole 16-byte runs of a row instead of
// dequantizing 32-element units row by row in every token tile.
//
// One invocation per 32-element unit; a workgroup takes 64 consecutive units of one row, so
// neighbouring invocations read neighbouring bytes and write neighbouring 64-byte runs.
// Bindings: 0 weights (raw GGUF bytes + 16 bytes padding), 1 W16 (f16 pairs, written).
// Mirrored by `DequantF16Push` in src/engine/vulkan/kernels/matvec.rs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;

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
    const uint units = pc.ld / 32u;
    const uint chunks = (units + 63u) / 64u;
    const uint g = linear_group();
    const uint row = g / chunks;
    const uint u = (g % chunks) * 64u + gl_LocalInvocationID.x;
    if (row >= pc.nrows || u >= units) {
        return;
    }
    vec4 v[8];
    if (u * 32u < pc.ncols) {
        dq_unit(row * pc.row_bytes, u, pc.ncols, v);
    } else {
        [[unroll]] for (uint k = 0u; k < 8u; ++k) {
            v[k] = vec4(0.0);
        }
    }
    const uint base = (row * pc.ld + u * 32u) / 8u;
    [[unroll]] for (uint k = 0u; k < 4u; ++k) {
        o[base + k] = uvec4(packHalf2x16(v[2u * k].xy), packHalf2x16(v[2u * k].zw),
                            packHalf2x16(v[2u * k + 1u].xy), packHalf2x16(v[2u * k + 1u].zw));
    }
}

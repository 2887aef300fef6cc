#version 450
// y[t][:] = dequantized row ids[t] of W: the embedding lookup. W may be one piece of a tensor
// split by rows (rows row_start .. row_start + nrows); ids outside the piece are left to the
// dispatch of the piece that holds them.
//
// Bindings: 0 weights (raw bytes + padding), 1 ids (u32), 2 y (f32).
// Mirrored by `GetRowsPush` in src/engine/vulkan/kernels/get_rows.rs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(binding = 0) readonly restrict buffer Weights { uint w[]; };
layout(binding = 1) readonly restrict buffer Ids { uint ids[]; };
layout(binding = 2) writeonly restrict buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint ncols;
    uint row_bytes;
    uint row_start;
    uint nrows;
    uint ids_off;
    uint y_off;
    uint y_stride;
} pc;

#include "dequant.glsl"

void main() {
    const uint t = gl_WorkGroupID.y;
    const uint id = ids[pc.ids_off + t];
    if (id < pc.row_start || id - pc.row_start >= pc.nrows) {
        return;
    }
    const uint u = gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (u * 32u >= pc.ncols) {
        return;
    }
    vec4 v[8];
    dq_unit((id - pc.row_start) * pc.row_bytes, u, pc.ncols, v);
    const uint yb = pc.y_off + t * pc.y_stride + u * 32u;
    [[unroll]] for (uint k = 0u; k < 8u; ++k) {
        [[unroll]] for (uint e = 0u; e < 4u; ++e) {
            if (u * 32u + 4u * k + e < pc.ncols) {
                y[yb + 4u * k + e] = v[k][e];
            }
        }
    }
}

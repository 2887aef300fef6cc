#version 450
// Element-wise ops over rows: y[r][i] = op(a[r][i], b[r][i]) for i < n.
// Ops: 0 add, 1 mul, 2 swiglu (silu(a) * b, ggml_swiglu_split), 3 copy (y = a).
//
// Bindings: 0 a (f32), 1 b (f32), 2 y (f32); y may alias a or b (in place; no `restrict`).
// A stride of 0 broadcasts a row (bias add). Grid: (ceil(n / WG), rows).
// Mirrored by `EltwisePush` in src/engine/vulkan/kernels/eltwise.rs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint n;
    uint op;
    uint a_off;
    uint a_stride;
    uint b_off;
    uint b_stride;
    uint y_off;
    uint y_stride;
} pc;

void main() {
    const uint i = gl_GlobalInvocationID.x;
    if (i >= pc.n) {
        return;
    }
    const uint r = gl_WorkGroupID.y;
    const float av = a[pc.a_off + r * pc.a_stride + i];
    float v;
    if (pc.op == 0u) {
        v = av + b[pc.b_off + r * pc.b_stride + i];
    } else if (pc.op == 1u) {
        v = av * b[pc.b_off + r * pc.b_stride + i];
    } else if (pc.op == 2u) {
        v = silu(av) * b[pc.b_off + r * pc.b_stride + i];
    } else {
        v = av;
    }
    y[pc.y_off + r * pc.y_stride + i] = v;
}

#version 450
// Y[t][row] (+)= dot(W[row], X[t]) for t < ntok on tensor cores through workgroup-scope
// cooperative matrices (GL_NV_cooperative_matrix2): the staged prefill product where the device
// offers VK_NV_cooperative_matrix2. Same inputs and push constants as matmul_coopmat.comp's
// STAGED_F16 variant (MatmulPush in src/engine/vulkan/kernels/matvec.rs); only the tiling differs.
//
// A workgroup of WG lanes owns BM rows x BN tokens as one accumulator matrix and walks the
// columns BK at a time: A = BM x BK of W, B = BK x BN of X (X's rows are tokens, so B is read
// through a transposed view), acc += A B. The driver stages both through shared memory and
// schedules the tensor-core work; the kernel only states the tiles through tensor layouts.
//
// Invariants the host keeps:
// - W is f16 rows of ld = row_bytes / 2 elements (dequant_f16.comp), ld a multiple of 128 (so of
//   BK), zero past ncols; X is f16 rows of x_stride = ld elements (f16_rows.comp), x_off = 0.
// - Y is f32, token-major: Y[y_off + t * y_stride + row].
// Tiles that reach past nrows or ntok read zeros there and write nothing there (constant-clamped
// tensor layouts); whole tiles use unclamped layouts.
//
// Numerics: as the staged matmul_coopmat: f16 operands, f32 sums (in the driver's order).
// Compile-time shape: BM, BN, BK, WG.
#extension GL_EXT_control_flow_attributes : enable
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_cooperative_matrix : require
#extension GL_NV_cooperative_matrix2 : require

layout(local_size_x = WG) in;

layout(binding = 0) readonly restrict buffer W16 { float16_t w16[]; };
layout(binding = 1) readonly restrict buffer X16 { float16_t x16[]; };
layout(binding = 2) restrict buffer Y { float y[]; };

layout(push_constant) uniform Push {
    uint ncols;
    uint nrows;
    uint row_bytes;
    uint ntok;
    uint x_off;
    uint x_stride;
    uint y_off;
    uint y_stride;
    uint flags;
} pc;

#define ACC coopmat<float, gl_ScopeWorkgroup, BM, BN, gl_MatrixUseAccumulator>
#define MAT_A coopmat<float16_t, gl_ScopeWorkgroup, BM, BK, gl_MatrixUseA>
#define MAT_B coopmat<float16_t, gl_ScopeWorkgroup, BK, BN, gl_MatrixUseB>

// The column loop, for either kind of layout (clamped or not).
#define PRODUCT(TW, TX)                                                                        \
    for (uint k = 0u; k < ld; k += BK) {                                                       \
        MAT_A a;                                                                               \
        MAT_B b;                                                                               \
        coopMatLoadTensorNV(a, w16, 0u, sliceTensorLayoutNV(TW, row0, BM, k, BK));             \
        coopMatLoadTensorNV(b, x16, pc.x_off, sliceTensorLayoutNV(TX, tok0, BN, k, BK), tr);   \
        acc = coopMatMulAdd(a, b, acc);                                                        \
    }

void main() {
    const uint row0 = gl_WorkGroupID.x * BM;
    const uint tok0 = gl_WorkGroupID.y * BN;
    // Multiples of 128 elements (the staging pads rows to 128): stated so the compiler may
    // assume 16-byte aligned rows.
    const uint ld = (pc.row_bytes / 2u) & ~127u;
    const uint xs = pc.x_stride & ~127u;
    const bool accumulate = (pc.flags & 1u) != 0u;

    tensorViewNV<2, false, 1, 0> tr = createTensorViewNV(2, false, 1, 0);
    tensorLayoutNV<2, gl_CooperativeMatrixClampModeConstantNV> ty =
        createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
    ty = setTensorLayoutDimensionNV(ty, pc.ntok, pc.nrows);
    ty = setTensorLayoutStrideNV(ty, pc.y_stride, 1);

    ACC acc = ACC(0.0);
    if (accumulate) {
        coopMatLoadTensorNV(acc, y, pc.y_off, sliceTensorLayoutNV(ty, tok0, BN, row0, BM), tr);
    }

    if (row0 + BM <= pc.nrows && tok0 + BN <= pc.ntok) {
        tensorLayoutNV<2> tw = createTensorLayoutNV(2);
        tw = setTensorLayoutDimensionNV(tw, pc.nrows, ld);
        tw = setTensorLayoutStrideNV(tw, ld, 1);
        tensorLayoutNV<2> tx = createTensorLayoutNV(2);
        tx = setTensorLayoutDimensionNV(tx, pc.ntok, ld);
        tx = setTensorLayoutStrideNV(tx, xs, 1);
        PRODUCT(tw, tx)
    } else {
        tensorLayoutNV<2, gl_CooperativeMatrixClampModeConstantNV> tw =
            createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
        tw = setTensorLayoutDimensionNV(tw, pc.nrows, ld);
        tw = setTensorLayoutStrideNV(tw, ld, 1);
        tensorLayoutNV<2, gl_CooperativeMatrixClampModeConstantNV> tx =
            createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
        tx = setTensorLayoutDimensionNV(tx, pc.ntok, ld);
        tx = setTensorLayoutStrideNV(tx, xs, 1);
        PRODUCT(tw, tx)
    }

    coopMatStoreTensorNV(acc, y, pc.y_off, sliceTensorLayoutNV(ty, tok0, BN, row0, BM), tr);
}

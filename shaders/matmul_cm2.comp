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
//
// DECODE variants (one per quantized format, FMT_*) read W as raw GGUF rows instead: binding 0
// is the weight piece (row_bytes a row, 16 bytes of padding after it), and the A tiles are loaded
// through a decode function (dequant_elem.glsl: each element dequantized on its own, in f32, then
// rounded to f16 as dequant_f16.comp rounds it), so no dequantization pass and no f16 copy of W
// come first. The tensor layout counts W in blocks of QK elements (setTensorLayoutBlockSizeNV);
// the decode function finds its block's bytes from the block coordinates it is given
// (row * row_bytes + block * BLOCK_BYTES) and ignores the block pointer. Columns from ncols up
// read zeros (a clamped layout where ncols is not a multiple of BK). X as above (f16 rows of
// x_stride elements, at least ncols rounded up to BK, zero past ncols).
#extension GL_EXT_control_flow_attributes : enable
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_cooperative_matrix : require
#extension GL_NV_cooperative_matrix2 : require
#ifdef DECODE
#extension GL_EXT_buffer_reference : require
#extension GL_GOOGLE_include_directive : require
#endif
#ifdef VECTOR
#extension GL_NV_cooperative_matrix_decode_vector : require
#endif

layout(local_size_x = WG) in;

#ifdef DECODE
// dequant.glsl's byte helpers read w[] (unused here: the decode functions read through the
// block pointer they are given, which costs far fewer instructions than addressing w[]).
layout(binding = 0) readonly restrict buffer W { uint w[]; };
#include "dequant.glsl"
// The weights as an array of blocks: the buffer the A loads name (their addressing unit).
struct Block { float16_t h[BLOCK_BYTES / 2u]; };
layout(binding = 0) readonly restrict buffer WB { Block wb[]; };
// A decode function's block pointer: a struct of exactly BLOCK_BYTES (the driver steps it by
// that size), read in the widest words the format's alignment allows.
#if defined(FMT_Q4_K)
layout(buffer_reference, std430, buffer_reference_align = 16) buffer BlockRef { uint u[BLOCK_BYTES / 4u]; };
layout(buffer_reference, std430, buffer_reference_align = 16) buffer BlockHead { uvec4 hd; };
#define BLK_U32(i) bl.u[i]
#define BLK_U16(i) ((bl.u[(i) >> 1] >> (((i) & 1u) * 16u)) & 0xFFFFu)
#define BLK_HEAD BlockHead(bl).hd
#else
layout(buffer_reference, std430, buffer_reference_align = 2) buffer BlockRef { float16_t h[BLOCK_BYTES / 2u]; };
#define BLK_U16(i) packFloat2x16(f16vec2(bl.h[i], float16_t(0.0)))
#endif
#define BLK_PARAM BlockRef bl
#define BLK_ARG bl
#include "dequant_elem.glsl"
#else
layout(binding = 0) readonly restrict buffer W16 { float16_t w16[]; };
#endif
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

#ifdef DECODE
// Element (row, QK * block + e) of W, and elements e .. e + 3, for the A loads.
float16_t decode_w(const in BlockRef bl, const in uint blockCoords[2], const in uint coordInBlock[2]) {
    return float16_t(dq_elem(bl, coordInBlock[1]));
}
#ifdef VECTOR
f16vec4 decode_w4(const in BlockRef bl, const in uint blockCoords[2], const in uint coordInBlock[2]) {
    return f16vec4(dq_elem4(bl, coordInBlock[1]));
}
#define LOAD_A(TW, k) coopMatLoadTensorNV(a, wb, 0u, sliceTensorLayoutNV(TW, row0, BM, k, BK), decode_w, decode_w4)
#else
#define LOAD_A(TW, k) coopMatLoadTensorNV(a, wb, 0u, sliceTensorLayoutNV(TW, row0, BM, k, BK), decode_w)
#endif
#else
#define LOAD_A(TW, k) coopMatLoadTensorNV(a, w16, 0u, sliceTensorLayoutNV(TW, row0, BM, k, BK))
#endif

// The column loop, for either kind of layout (clamped or not).
#define PRODUCT(TW, TX)                                                                        \
    for (uint k = 0u; k < ld; k += BK) {                                                       \
        MAT_A a;                                                                               \
        MAT_B b;                                                                               \
        LOAD_A(TW, k);                                                                         \
        coopMatLoadTensorNV(b, x16, pc.x_off, sliceTensorLayoutNV(TX, tok0, BN, k, BK), tr);   \
        acc = coopMatMulAdd(a, b, acc);                                                        \
    }

void main() {
    const uint row0 = gl_WorkGroupID.x * BM;
    const uint tok0 = gl_WorkGroupID.y * BN;
    const uint xs = pc.x_stride & ~127u;
#ifdef DECODE
    // The columns the loop walks: ncols rounded up to BK (X is zero past ncols, and so is W's
    // clamped layout); W's layout counts whole blocks, with rows of row_bytes / BLOCK_BYTES.
    const uint ld = (pc.ncols + BK - 1u) / BK * BK;
    const uint wstride = pc.row_bytes / BLOCK_BYTES;
    const bool whole_k = pc.ncols % BK == 0u;
#else
    // Multiples of 128 elements (the staging pads rows to 128): stated so the compiler may
    // assume 16-byte aligned rows.
    const uint ld = (pc.row_bytes / 2u) & ~127u;
    const bool whole_k = true;
#endif
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

    if (row0 + BM <= pc.nrows && tok0 + BN <= pc.ntok && whole_k) {
        tensorLayoutNV<2> tw = createTensorLayoutNV(2);
#ifdef DECODE
        tw = setTensorLayoutBlockSizeNV(tw, 1, QK);
        tw = setTensorLayoutDimensionNV(tw, pc.nrows, pc.ncols);
        tw = setTensorLayoutStrideNV(tw, wstride, 1);
#else
        tw = setTensorLayoutDimensionNV(tw, pc.nrows, ld);
        tw = setTensorLayoutStrideNV(tw, ld, 1);
#endif
        tensorLayoutNV<2> tx = createTensorLayoutNV(2);
        tx = setTensorLayoutDimensionNV(tx, pc.ntok, ld);
        tx = setTensorLayoutStrideNV(tx, xs, 1);
        PRODUCT(tw, tx)
    } else {
        tensorLayoutNV<2, gl_CooperativeMatrixClampModeConstantNV> tw =
            createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
#ifdef DECODE
        tw = setTensorLayoutBlockSizeNV(tw, 1, QK);
        tw = setTensorLayoutDimensionNV(tw, pc.nrows, pc.ncols);
        tw = setTensorLayoutStrideNV(tw, wstride, 1);
#else
        tw = setTensorLayoutDimensionNV(tw, pc.nrows, ld);
        tw = setTensorLayoutStrideNV(tw, ld, 1);
#endif
        tensorLayoutNV<2, gl_CooperativeMatrixClampModeConstantNV> tx =
            createTensorLayoutNV(2, gl_CooperativeMatrixClampModeConstantNV);
        tx = setTensorLayoutDimensionNV(tx, pc.ntok, ld);
        tx = setTensorLayoutStrideNV(tx, xs, 1);
        PRODUCT(tw, tx)
    }

    coopMatStoreTensorNV(acc, y, pc.y_off, sliceTensorLayoutNV(ty, tok0, BN, row0, BM), tr);
}

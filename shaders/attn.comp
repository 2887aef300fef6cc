#version 450
// Attention over the f16 KV cache, split over the cache length (flash-decoding), with the splits
// merged in the same dispatch. Workgroup (h, s, t): query head h of token row t, positions of
// split s out of n_split. Row t sits at position rows[t].x of cache slot rows[t].y and sees
// positions 0 ..= rows[t].x of that slot (causal); split s covers the s-th of ns equal chunks
// of that range, ns = n_split, or with split_chunk > 0 ceil(n_kv / split_chunk) clamped to
// 1 ..= n_split (the row's own length decides; workgroups of splits past ns exit at once).
// Rows are independent: a row's result does not depend on which other rows share the
// dispatch.
//
// Each workgroup writes its unnormalised sum_p e_p * v_p (head_dim f32), m = max score (scaled)
// and l = sum_p e_p with e_p = exp(score_p - m) to the partials, then counts itself done on the
// (t, h) counter; the last of the ns workgroups merges them: out[d] = sum_s o_s[d] *
// exp(m_s - M) / L with M = max_s m_s, L = sum_s l_s * exp(m_s - M) (empty splits carry
// m = -1e30, l = 0 and drop out), and resets the counter to 0 for the next dispatch (the host
// zeroes the counters once). Partials and counters are coherent: a workgroup's writes are made
// visible (memoryBarrierBuffer) before its count, as in a single-pass reduction; no workgroup
// waits on another. A row of one split (ns = 1: every row shorter than split_chunk) writes its
// output directly, out[d] = o[d] / l, what merging its one split gives, with no partials.
//
// ROPE (specialization constant 1; decode steps only, every row one sequence's single new token
// in its own slot): src holds the unrotated q, k and v of each row (rope.glsl's arithmetic, as
// rope_kv.comp). Each workgroup rotates its query head; the split holding the row's position
// takes that position's key and value from src (rotated, rounded to f16 as the cache holds them)
// instead of the cache, and for the first query head of each KV head also stores them into the
// cache. Without ROPE, q is already rotated and the cache already holds the position.
//
// Scores: one invocation per position (16-byte loads of its key when head_dim / 2 is a multiple
// of 4), blocks of WG positions with the softmax online across blocks. Values: where head_dim
// is a multiple of 8, invocation i owns the 8 elements of octet (i % oct) (one 16-byte load,
// oct = head_dim / 8 invocations a position) for positions congruent to i / oct, four
// positions' loads in flight; otherwise f16 pair (i % hd2) for positions congruent to i / hd2.
// The groups' sums are reduced through shared memory at the end. Needs WG >= head_dim / 2 and
// head_dim <= 256 (the host checks).
//
// Bindings: 0 src (f32: q, and with ROPE also k and v), 1 k cache, 2 v cache
// ([slot][head_kv][n_ctx][head_dim] f16 pairs), 3 partials (f32, [t][h][s][head_dim + 2]),
// 4 rows (uvec2 per token row: position, slot), 5 counters (u32 per (t, h)), 6 out (f32),
// 7 angle table (rope.glsl; read with ROPE only). Built with Q8_OUT (variant attn_q8; head_dim a
// multiple of 32), binding 8 also receives the output as Q8 activations for matvec_q8.comp, as
// quantize_q8.comp lays them out (row t is vector t of n_head * head_dim elements; same
// rounding; specialization constant 2 is the word order, q8_block.glsl), so the output
// projection needs no quantize pass.
// Mirrored by `AttnPush` in src/engine/vulkan/kernels/attention.rs.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const bool ROPE = false;
layout(constant_id = 2) const uint Q8_ORDER = 0;

layout(binding = 0) readonly restrict buffer Src { float src[]; };
layout(binding = 1) buffer KCache { uint kc[]; };
layout(binding = 1) buffer KCache4 { uvec4 kc4[]; };
layout(binding = 2) restrict buffer VCache { uint vc[]; };
layout(binding = 2) restrict buffer VCache4 { uvec4 vc4[]; };
layout(binding = 3) coherent restrict buffer Part { float part[]; };
layout(binding = 4) readonly restrict buffer Rows { uvec2 rows[]; };
layout(binding = 5) coherent restrict buffer Counters { uint cnt[]; };
layout(binding = 6) writeonly restrict buffer Out { float o[]; };
layout(binding = 7) readonly restrict buffer Angles { vec2 cs[]; };
#ifdef Q8_OUT
layout(binding = 8) writeonly restrict buffer XQ { uint xq[]; };
layout(binding = 8) writeonly restrict buffer XD { vec2 xd[]; };
#include "q8_block.glsl"
#endif

layout(push_constant) uniform Push {
    uint n_head;
    uint n_head_kv;
    uint head_dim;
    uint n_ctx;
    uint n_split;
    uint q_off;
    uint q_stride;
    float scale;
    uint k_off;
    uint k_stride;
    uint v_off;
    uint v_stride;
    uint n_rot;
    uint mode;
    uint out_off;
    uint out_stride;
    uint nblocks;
    uint ds_base;
    uint split_chunk;
} pc;

#include "rope.glsl"

#define NEG_BIG -1.0e30

shared vec2 qs[128];
shared uint kcur[128];
shared uint vcur[128];
shared float sc[WG];
shared float red[MAX_SUBGROUPS];
// Value sums to reduce: WG f16-pair sums (pairs), or WG x 4 (octets).
shared vec2 accs[4u * WG];
shared bool merge_here;
#ifdef Q8_OUT
shared float vals[256];
#endif

// Sum (or max) of one value per invocation over the workgroup; every invocation gets the result.
float wg_reduce(float v, bool is_max) {
    v = is_max ? subgroupMax(v) : subgroupAdd(v);
    barrier();
    if (gl_SubgroupInvocationID == 0u) {
        red[gl_SubgroupID] = v;
    }
    barrier();
    float r = red[0];
    for (uint s = 1u; s < gl_NumSubgroups; ++s) {
        r = is_max ? max(r, red[s]) : r + red[s];
    }
    return r;
}

// Octet o (8 f16 values) of the new position's value (ROPE; vcur holds f16 pairs).
uvec4 vcur_octet(uint o) {
    return uvec4(vcur[4u * o], vcur[4u * o + 1u], vcur[4u * o + 2u], vcur[4u * o + 3u]);
}

// Key f16 pairs c .. c + 3 of the new position (ROPE; kcur holds f16 pairs).
uvec4 kcur_words(uint c) {
    return uvec4(kcur[c], kcur[c + 1u], kcur[c + 2u], kcur[c + 3u]);
}

// acc (8 f32 elements) += e * the octet w of f16 values.
void add_octet(inout vec4 acc[2], float e, uvec4 w) {
    acc[0] += e * vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y));
    acc[1] += e * vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w));
}

// Element d of head h's output for row t (also kept for its Q8 blocks).
void put_out(uint t, uint h, uint d, float v) {
    o[pc.out_off + t * pc.out_stride + h * pc.head_dim + d] = v;
#ifdef Q8_OUT
    vals[d] = v;
#endif
}

// After every element of head h's output was put (the whole workgroup calls it): its Q8 blocks,
// one invocation each.
void q8_head(uint t, uint h) {
#ifdef Q8_OUT
    barrier();
    const uint bph = pc.head_dim / 32u;
    for (uint i = gl_LocalInvocationID.x; i < bph; i += gl_WorkGroupSize.x) {
        float v[32];
        [[unroll]] for (uint k = 0u; k < 32u; ++k) {
            v[k] = vals[32u * i + k];
        }
        const uint blk = h * bph + i;
        store_q8_block(v, t * pc.nblocks * 8u, Q8_ORDER, pc.nblocks, blk, pc.ds_base + t * pc.nblocks + blk);
    }
#endif
}

// The last workgroup of (t, h): merges the ns partials into out (and its Q8 form).
void merge_splits(uint t, uint h, uint ns) {
    const uint stride = pc.head_dim + 2u;
    const uint base = (t * pc.n_head + h) * pc.n_split * stride;
    float big_m = NEG_BIG;
    for (uint s = 0u; s < ns; ++s) {
        big_m = max(big_m, part[base + s * stride + pc.head_dim]);
    }
    float big_l = 0.0;
    for (uint s = 0u; s < ns; ++s) {
        big_l += part[base + s * stride + pc.head_dim + 1u] * exp(part[base + s * stride + pc.head_dim] - big_m);
    }
    const float inv_l = 1.0 / big_l;
    for (uint d = gl_LocalInvocationID.x; d < pc.head_dim; d += gl_WorkGroupSize.x) {
        float acc = 0.0;
        for (uint s = 0u; s < ns; ++s) {
            acc += part[base + s * stride + d] * exp(part[base + s * stride + pc.head_dim] - big_m);
        }
        put_out(t, h, d, acc * inv_l);
    }
    q8_head(t, h);
}

void main() {
    const uint h = gl_WorkGroupID.x;
    const uint s = gl_WorkGroupID.y;
    const uint t = gl_WorkGroupID.z;
    const uint tid = gl_LocalInvocationID.x;
    const uint wg = gl_WorkGroupSize.x;
    const uint hd2 = pc.head_dim / 2u;
    const uint group = pc.n_head / pc.n_head_kv;
    const uint hk = h / group;

    const uvec2 row_info = rows[t];
    const uint pos = row_info.x;
    const uint n_kv = pos + 1u;
    // This row's splits: by its own length where split_chunk is set (uniform per workgroup).
    const uint ns = pc.split_chunk == 0u
        ? pc.n_split
        : clamp((n_kv + pc.split_chunk - 1u) / pc.split_chunk, 1u, pc.n_split);
    if (s >= ns) {
        return;
    }
    const uint chunk = (n_kv + ns - 1u) / ns;
    const uint p0 = min(s * chunk, n_kv);
    const uint p1 = min(p0 + chunk, n_kv);
    const uint kvbase = (row_info.y * pc.n_head_kv + hk) * pc.n_ctx * hd2;
    // With ROPE, this split holds the row's own (new) position.
    const bool holds_pos = ROPE && p0 <= pos && pos < p1;

    const uint qb = pc.q_off + t * pc.q_stride + h * pc.head_dim;
    for (uint i = tid; i < hd2; i += wg) {
        if (ROPE) {
            qs[i] = vec2(rotated(qb, 2u * i, pos), rotated(qb, 2u * i + 1u, pos));
        } else {
            qs[i] = vec2(src[qb + 2u * i], src[qb + 2u * i + 1u]);
        }
        if (holds_pos) {
            const uint kb = pc.k_off + t * pc.k_stride + hk * pc.head_dim;
            const uint vb = pc.v_off + t * pc.v_stride + hk * pc.head_dim;
            const uint kw = packHalf2x16(vec2(rotated(kb, 2u * i, pos), rotated(kb, 2u * i + 1u, pos)));
            const uint vw = packHalf2x16(vec2(src[vb + 2u * i], src[vb + 2u * i + 1u]));
            kcur[i] = kw;
            vcur[i] = vw;
            if (h % group == 0u) {
                kc[kvbase + pos * hd2 + i] = kw;
                vc[kvbase + pos * hd2 + i] = vw;
            }
        }
    }
    barrier();

    // Octets (16-byte value loads) where head_dim is a multiple of 8, else f16 pairs.
    const bool octets = (hd2 & 3u) == 0u;
    const uint lanes = octets ? hd2 / 4u : hd2;
    const uint my_pair = tid % lanes;
    const uint my_group = tid / lanes;
    const uint n_groups = wg / lanes;
    float m = NEG_BIG;
    float l = 0.0;
    // Pairs: acc[0].xy; octets: elements 8 my_pair .. + 7.
    vec4 acc[2] = vec4[2](vec4(0.0), vec4(0.0));

    for (uint blk = p0; blk < p1; blk += wg) {
        const uint n = min(wg, p1 - blk);
        float sv = NEG_BIG;
        if (tid < n) {
            const uint p = blk + tid;
            const uint row = kvbase + p * hd2;
            float d = 0.0;
            const bool cur = holds_pos && p == pos;
            if (octets) {
                // The new position's key (from kcur) through the same arithmetic as the cache's:
                // compilers contract the sums of two loops differently.
                for (uint c = 0u; c < hd2; c += 4u) {
                    const uvec4 k4 = cur ? kcur_words(c) : kc4[(row + c) / 4u];
                    d += dot(unpackHalf2x16(k4.x), qs[c]);
                    d += dot(unpackHalf2x16(k4.y), qs[c + 1u]);
                    d += dot(unpackHalf2x16(k4.z), qs[c + 2u]);
                    d += dot(unpackHalf2x16(k4.w), qs[c + 3u]);
                }
            } else if (cur) {
                for (uint c = 0u; c < hd2; ++c) {
                    d += dot(unpackHalf2x16(kcur[c]), qs[c]);
                }
            } else {
                for (uint c = 0u; c < hd2; ++c) {
                    d += dot(unpackHalf2x16(kc[row + c]), qs[c]);
                }
            }
            sv = d * pc.scale;
        }
        const float m_new = max(m, wg_reduce(sv, true));
        const float corr = exp(m - m_new);
        const float e = tid < n ? exp(sv - m_new) : 0.0;
        sc[tid] = e;
        // wg_reduce's barriers also publish the exponentials written to sc.
        l = l * corr + wg_reduce(e, false);
        m = m_new;
        acc[0] *= corr;
        acc[1] *= corr;
        if (octets && my_group < n_groups) {
            // uvec4 index of this octet at the block's first position; a position is `lanes`.
            const uint vb = (kvbase + blk * hd2) / 4u + my_pair;
            uint i = my_group;
            for (; i + 3u * n_groups < n; i += 4u * n_groups) {
                uvec4 w[4];
                [[unroll]] for (uint u = 0u; u < 4u; ++u) {
                    w[u] = vc4[vb + (i + u * n_groups) * lanes];
                }
                [[unroll]] for (uint u = 0u; u < 4u; ++u) {
                    const uint iu = i + u * n_groups;
                    const bool cur = holds_pos && blk + iu == pos;
                    add_octet(acc, sc[iu], cur ? vcur_octet(my_pair) : w[u]);
                }
            }
            for (; i < n; i += n_groups) {
                const uvec4 w0 = vc4[vb + i * lanes];
                add_octet(acc, sc[i], holds_pos && blk + i == pos ? vcur_octet(my_pair) : w0);
            }
        } else if (my_group < n_groups) {
            const uint vb = kvbase + blk * hd2 + my_pair;
            const uint step = n_groups * hd2;
            vec2 a2 = acc[0].xy;
            uint i = my_group;
            for (; i + 3u * n_groups < n; i += 4u * n_groups) {
                uint w0 = vc[vb + i * hd2];
                uint w1 = vc[vb + i * hd2 + step];
                uint w2 = vc[vb + i * hd2 + 2u * step];
                uint w3 = vc[vb + i * hd2 + 3u * step];
                if (holds_pos) {
                    const uint k = pos - blk;
                    w0 = i == k ? vcur[my_pair] : w0;
                    w1 = i + n_groups == k ? vcur[my_pair] : w1;
                    w2 = i + 2u * n_groups == k ? vcur[my_pair] : w2;
                    w3 = i + 3u * n_groups == k ? vcur[my_pair] : w3;
                }
                a2 += sc[i] * unpackHalf2x16(w0);
                a2 += sc[i + n_groups] * unpackHalf2x16(w1);
                a2 += sc[i + 2u * n_groups] * unpackHalf2x16(w2);
                a2 += sc[i + 3u * n_groups] * unpackHalf2x16(w3);
            }
            for (; i < n; i += n_groups) {
                uint w0 = vc[vb + i * hd2];
                if (holds_pos && blk + i == pos) {
                    w0 = vcur[my_pair];
                }
                a2 += sc[i] * unpackHalf2x16(w0);
            }
            acc[0].xy = a2;
        }
        barrier();
    }

    // Group g's sum of f16 pair c at accs[g * hd2 + c].
    if (my_group < n_groups) {
        if (octets) {
            const uint a = my_group * hd2 + 4u * my_pair;
            accs[a] = acc[0].xy;
            accs[a + 1u] = acc[0].zw;
            accs[a + 2u] = acc[1].xy;
            accs[a + 3u] = acc[1].zw;
        } else {
            accs[my_group * hd2 + my_pair] = acc[0].xy;
        }
    }
    barrier();
    vec2 ov = vec2(0.0);
    if (tid < hd2) {
        for (uint g = 0u; g < n_groups; ++g) {
            ov += accs[g * hd2 + tid];
        }
    }
    if (ns == 1u) {
        // The row's only split: its output directly (what merging one split gives), without
        // the partials' round trip through memory.
        const float inv_l = 1.0 / l;
        if (tid < hd2) {
            put_out(t, h, 2u * tid, ov.x * inv_l);
            put_out(t, h, 2u * tid + 1u, ov.y * inv_l);
        }
        q8_head(t, h);
        return;
    }
    const uint ob = ((t * pc.n_head + h) * pc.n_split + s) * (pc.head_dim + 2u);
    if (tid < hd2) {
        part[ob + 2u * tid] = ov.x;
        part[ob + 2u * tid + 1u] = ov.y;
    }
    if (tid == 0u) {
        part[ob + pc.head_dim] = m;
        part[ob + pc.head_dim + 1u] = l;
    }
    // Publish this split's partials, then count it; the last split of (t, h) merges.
    memoryBarrierBuffer();
    barrier();
    if (tid == 0u) {
        const uint ci = t * pc.n_head + h;
        merge_here = atomicAdd(cnt[ci], 1u) == ns - 1u;
        if (merge_here) {
            atomicExchange(cnt[ci], 0u);
        }
    }
    barrier();
    if (!merge_here) {
        return;
    }
    memoryBarrierBuffer();
    merge_splits(t, h, ns);
}

// What the AVX2 and the AVX-512 attention tiles share: the decode tile's walk over key blocks
// and KV heads, its work on one key block (each build's products plugged in), the online-softmax
// step of one query's block of scores, and the many-query tile's scratch, query transpose and
// write-back. Each build includes it into its own
// translation unit with internal linkage, so neither's copy runs on a CPU the other targets.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <vector>

#include "../attention.h"

#include "math_avx2.h"
#include "simd_helpers.h"

namespace cromwell::avx2 {
namespace {

constexpr int64_t kKeyBlock = 64;  // keys a tile takes at a time

// Asks for every 64-byte line of one key row and one value row of a head (hd elements each).
template <typename T>
inline void prefetch_kv_row(const T* k, const T* v, int64_t hd) {
  const int64_t bytes = hd * int64_t(sizeof(T));
  for (int64_t b = 0; b < bytes; b += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(k) + b, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(v) + b, _MM_HINT_T0);
  }
}

// Asks for the lines of the n elements at p (a block ahead), into L2 (T1): a block of a long cache
// is more than L1 holds, and the L1 takes the lines from L2 in time when they are used.
template <typename T>
inline void prefetch_ahead(const T* p, int64_t n) {
  const char* first = reinterpret_cast<const char*>(p);
  const char* last = reinterpret_cast<const char*>(p + n) - 1;
  for (const char* b = first; b <= last; b += 64) _mm_prefetch(b, _MM_HINT_T1);
  if ((reinterpret_cast<uintptr_t>(first) & 63) > (reinterpret_cast<uintptr_t>(last) & 63)) {
    _mm_prefetch(last, _MM_HINT_T1);  // the span ends in a line the steps of 64 skipped
  }
}

// A decode tile (a few queries a KV head): resets the queries' results, then walks the key
// blocks, every KV head of a block in turn while its rows are in L1/L2, handing block(idx,
// take, t0, nb, krows, vrows) each group of `take` = group_size(left) of a head's queries
// (query indices idx[0 .. take)); krows is padded past nb with the last row (score padding).
// Rows are read in place (half rows converted as they are loaded): each row is used by one
// group of queries, so converting into a buffer first would cost an extra store and load.
template <typename T, class GroupSize, class Block>
inline void few_query_tile(const AttnTile& t, GroupSize group_size, Block block) {
  const int64_t hd = t.head_dim;
  const T* krows[kKeyBlock + 8];
  const T* vrows[kKeyBlock];
  const T* kbase = static_cast<const T*>(t.k);
  const T* vbase = static_cast<const T*>(t.v);
  int64_t end_all = t.t_begin;
  for (int64_t j = 0; j < t.nq; ++j) {
    t.m[j] = -INFINITY;
    t.l[j] = 0.0f;
    std::fill(t.acc + j * hd, t.acc + (j + 1) * hd, 0.0f);
    end_all = std::max(end_all, std::min(t.t_end, t.key_end[j]));
  }
  // The first block's rows (every head's, when the tile has several), requested before the
  // first scores; the blocks ask for each next block while they work on the current one.
  const int64_t heads = t.kv_heads > 1 ? t.kv_heads : 1;
  const int64_t per_head = heads > 1 ? t.group : t.nq;  // queries per KV head
  for (int64_t r = t.t_begin; r < std::min(end_all, t.t_begin + kKeyBlock); ++r) {
    prefetch_kv_row(kbase + r * t.kv_stride, vbase + r * t.kv_stride, heads * hd);
  }
  int64_t idx[64];  // a tile holds at most 64 queries (attention.cpp's kMaxTileQueries)
  for (int64_t t0 = t.t_begin; t0 < end_all; t0 += kKeyBlock) {
    const int64_t nb = std::min(kKeyBlock, end_all - t0);
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t r = 0; r < nb; ++r) {
        krows[r] = kbase + (t0 + r) * t.kv_stride + h * hd;
        vrows[r] = vbase + (t0 + r) * t.kv_stride + h * hd;
      }
      for (int64_t r = nb; r < kKeyBlock + 8; ++r) krows[r] = krows[nb - 1];
      for (int64_t i = 0; i < per_head; ++i) idx[i] = h * per_head + i;
      for (int64_t j = 0; j < per_head;) {
        const int64_t take = group_size(per_head - j);
        block(idx + j, take, t0, nb, krows, vrows);
        j += take;
      }
    }
  }
}


// The vector operations online_softmax_block needs, on 8 lanes; the AVX-512 tile passes its
// own 16-lane set.
struct Lanes8 {
  using V = __m256;
  static constexpr int64_t kWidth = 8;
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static V exp(V x) { return exp_ps(x); }
  static float reduce_max(V v) { return hmax_float_8(v); }
  static float reduce_add(V v) { return hsum_float_8(v); }
};

// sc[0 .. padded) holds the block's raw scores of one query, of which the first `cnt` are keys
// it may see (padded: cnt_max of the group rounded up to S::kWidth lanes, the rest padding).
// Scales them, masks the rest, and turns them into e^(s - m_new); updates the query's running
// max *m and sum *l; returns alpha = e^(m_old - m_new), the factor its accumulated values are
// rescaled by.
template <class S>
inline float online_softmax_block(float* sc, int64_t cnt, int64_t padded, float scale, float* m, float* l) {
  using V = typename S::V;
  for (int64_t r = cnt; r < padded; ++r) sc[r] = -INFINITY;  // past this query's limit
  const V vscale = S::set1(scale);
  V vmax = S::set1(-INFINITY);
  for (int64_t r = 0; r < padded; r += S::kWidth) {
    const V sv = S::mul(S::load(sc + r), vscale);
    S::store(sc + r, sv);
    vmax = S::max(vmax, sv);
  }
  const float m_old = *m;
  const float m_new = std::max(m_old, S::reduce_max(vmax));
  // Subtract 0 rather than -inf while a query has seen no key, so e^(s - m) is 0, not NaN.
  const float m_sub = m_new == -INFINITY ? 0.0f : m_new;
  const float alpha = std::exp(m_old - m_sub);
  const V vm = S::set1(m_sub);
  V vsum = S::set1(0.0f);
  for (int64_t r = 0; r < padded; r += S::kWidth) {
    const V pr = S::exp(S::sub(S::load(sc + r), vm));
    S::store(sc + r, pr);
    vsum = S::add(vsum, pr);
  }
  *l = *l * alpha + S::reduce_add(vsum);
  *m = m_new;
  return alpha;
}

// One key block for a group of JQ queries of a decode tile: scores KR key rows at a time
// (Isa::qk_group<JQ, KR, T>(q, rows, hd, sc): sc[j][0 .. 4) = q_j . rows[r]), the online-softmax
// update (online_softmax_block on the Isa's vector operations, Isa::Lanes, the scores padded
// to a multiple of its width), value accumulation (Isa::pv_columns<JQ, T>(acc, alpha, p,
// vrows, cnt, hd, ahead), which also requests the value rows `ahead` elements on). `scores`
// holds JQ rows of kKeyBlock + 8 floats.
template <class Isa, int JQ, int KR, typename T>
void few_block(const AttnTile& t, const int64_t* qidx, int64_t t0, int64_t nb, const T* const* krows,
               const T* const* vrows, float* scores) {
  const int64_t hd = t.head_dim;
  const float* q[JQ];
  float* sc[JQ];
  float* acc[JQ];
  int64_t cnt[JQ];
  int64_t cnt_max = 0;
  for (int j = 0; j < JQ; ++j) {
    q[j] = t.q[qidx[j]];
    sc[j] = scores + j * (kKeyBlock + 8);
    acc[j] = t.acc + qidx[j] * hd;
    cnt[j] = std::max<int64_t>(0, std::min(nb, std::min(t.t_end, t.key_end[qidx[j]]) - t0));
    cnt_max = std::max(cnt_max, cnt[j]);
  }
  if (cnt_max == 0) return;
  float* out[JQ];
  // The next block's rows of this head are requested while this block is worked on, a few
  // lines per step: its key rows while the scores are computed, its value rows while the values
  // are summed (Isa::pv_columns, given `ahead`), so requests go out at an even pace through
  // the block instead of in bursts that fill the core's miss buffers and stall it. At long
  // contexts the rows come from memory, and strided as they are (the other heads' rows lie
  // between them) the hardware prefetcher does not fetch them in time. Past the cache's end a
  // prefetch is harmless: it never faults.
  const int64_t ahead = kKeyBlock * t.kv_stride;
  for (int64_t r = 0; r < cnt_max; r += KR) {  // rows past the block end are padded valid rows
    for (int64_t i = r; i < r + KR && i < cnt_max; ++i) prefetch_ahead(krows[i] + ahead, hd);
    for (int j = 0; j < JQ; ++j) out[j] = sc[j] + r;
    Isa::template qk_group<JQ, KR, T>(q, krows + r, hd, out);
  }
  using Lanes = typename Isa::Lanes;
  const int64_t padded = (cnt_max + Lanes::kWidth - 1) / Lanes::kWidth * Lanes::kWidth;
  float alpha[JQ];
  for (int j = 0; j < JQ; ++j) {
    const int64_t qi = qidx[j];
    alpha[j] = online_softmax_block<Lanes>(sc[j], cnt[j], padded, t.scale, t.m + qi, t.l + qi);
  }
  const float* p[JQ];
  for (int j = 0; j < JQ; ++j) p[j] = sc[j];
  Isa::template pv_columns<JQ, T>(acc, alpha, p, vrows, cnt_max, hd, ahead);
}

// ---- many queries (prefill, windows) --------------------------------------------------------
//
// Laid out query-minor: the scaled queries transposed QT[hd][nqp], the block's scores
// ST[key][nqp], the output OT[hd][nqp], nqp the queries padded to whole vectors.
struct BlockedScratch {
  std::vector<float> qt, st, ot, m, l, alpha, k, v;
  std::vector<int32_t> kend;  // each query's key limit, relative to t_begin
};

// Sizes `s` for a tile of nqp padded queries and fills QT (the scale folded in; padded queries
// zero: their results are dropped), kend, m = -inf, l = 0 and OT = 0. Returns the end of the
// keys any query sees; *kend_min is the least real query's limit (blocks wholly below it need
// no mask).
inline int64_t start_many(const AttnTile& t, int64_t nqp, BlockedScratch& s, int32_t* kend_min) {
  const int64_t hd = t.head_dim, nq = t.nq;
  auto grow = [](auto& vec, int64_t n) {
    if (int64_t(vec.size()) < n) vec.resize(size_t(n));
  };
  grow(s.qt, hd * nqp);
  grow(s.st, kKeyBlock * nqp);
  grow(s.ot, hd * nqp);
  grow(s.m, nqp);
  grow(s.l, nqp);
  grow(s.alpha, nqp);
  grow(s.kend, nqp);
  if (t.f16) {
    grow(s.k, kKeyBlock * hd);
    grow(s.v, kKeyBlock * hd);
  }
  float* qt = s.qt.data();
  int64_t end_all = t.t_begin;
  for (int64_t j = 0; j < nqp; ++j) {
    const bool real = j < nq;
    if (j + 4 < nq) {  // query rows may be scattered (window tokens): fetch a few ahead
      const char* ahead = reinterpret_cast<const char*>(t.q[j + 4]);
      for (int64_t d = 0; d < hd; d += 16) _mm_prefetch(ahead + 4 * d, _MM_HINT_T0);
    }
    const float* qj = real ? t.q[j] : nullptr;
    for (int64_t d = 0; d < hd; ++d) qt[d * nqp + j] = real ? qj[d] * t.scale : 0.0f;
    const int64_t end = real ? std::min(t.t_end, t.key_end[j]) : 0;
    s.kend[size_t(j)] = int32_t(std::max<int64_t>(end - t.t_begin, 0));
    end_all = std::max(end_all, end);
    s.m[size_t(j)] = -INFINITY;
    s.l[size_t(j)] = 0.0f;
  }
  std::fill(s.ot.data(), s.ot.data() + hd * nqp, 0.0f);
  *kend_min = INT32_MAX;
  for (int64_t j = 0; j < nq; ++j) *kend_min = std::min(*kend_min, s.kend[size_t(j)]);
  return end_all;
}

// The tile's results from the scratch: m, l and the transposed-back output rows.
inline void finish_many(const AttnTile& t, int64_t nqp, const BlockedScratch& s) {
  const int64_t hd = t.head_dim;
  for (int64_t j = 0; j < t.nq; ++j) {
    t.m[j] = s.m[size_t(j)];
    t.l[j] = s.l[size_t(j)];
    float* acc = t.acc + j * hd;
    for (int64_t d = 0; d < hd; ++d) acc[d] = s.ot[size_t(d * nqp + j)];
  }
}

}  // namespace

}  // namespace cromwell::avx2

// AVX-512 attention tile (see attention.h), the AVX2 tile's two shapes of work on 16-lane
// vectors and 32 registers, keys in blocks of kKeyBlock with one online-softmax rescale per
// query per block:
// - a few queries a KV head (decode): every query of a KV head in one group (up to 8: Qwen2.5's
//   6 and 7, Llama's 4 and 8), so each key and value row, half rows converted on the fly, is
//   loaded once for all of them. At a long context the AVX2 tile is bound by its multiply-adds
//   and half conversions, not by the memory it reads.
// - many queries (prefill): both products as register-blocked GEMMs over 16 queries a vector.
// Head sizes that are not a multiple of 16 (decode) go to the AVX2 tile.
#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <vector>

#include "../attention.h"
#include "../avx2/attention_shared.h"
#include "../avx2/math_avx2.h"
#include "../avx2/simd_helpers.h"

namespace cromwell::avx512 {
namespace {

using avx2::BlockedScratch;
using avx2::few_query_tile;
using avx2::finish_many;
using avx2::kKeyBlock;
using avx2::start_many;

constexpr int kMaxGroup = 8;  // queries of one KV head taken together

inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// One query's four key sums, folded to 4 lanes each: [a0's 4 partial sums | a1's | a2's | a3's]
// (each 128-bit quarter sums to that key's score). Blends and 128-bit shuffles: about half the
// shuffles of summing each vector's 16 lanes on its own.
inline __m512 fold4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  // s01: lanes 0-7 hold a0's partial sums, lanes 8-15 a1's; s23 likewise.
  const __m512 s01 = _mm512_add_ps(_mm512_mask_blend_ps(0xFF00, a0, a1),
                                   _mm512_shuffle_f32x4(a0, a1, _MM_SHUFFLE(1, 0, 3, 2)));
  const __m512 s23 = _mm512_add_ps(_mm512_mask_blend_ps(0xFF00, a2, a3),
                                   _mm512_shuffle_f32x4(a2, a3, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(3, 1, 3, 1)));
}

// Two queries' folded sums (fold4) to their 4 scores each: sc0[0 .. 4) from u, sc1 from w.
inline void store_scores2(__m512 u, __m512 w, float* sc0, float* sc1) {
  // Per quarter (one key): u's two partial sums, then w's; then each pair summed.
  const __m512 v = _mm512_add_ps(_mm512_shuffle_ps(u, w, _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_ps(u, w, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 z = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m256 r = _mm512_castps512_ps256(_mm512_permutexvar_ps(idx, z));
  _mm_storeu_ps(sc0, _mm256_castps256_ps128(r));
  _mm_storeu_ps(sc1, _mm256_extractf128_ps(r, 1));
}

// One query's folded sums to its 4 scores.
inline void store_scores1(__m512 u, float* sc) {
  const __m512 v = _mm512_add_ps(u, _mm512_permute_ps(u, _MM_SHUFFLE(1, 0, 3, 2)));
  const __m512 z = _mm512_add_ps(v, _mm512_permute_ps(v, _MM_SHUFFLE(2, 3, 0, 1)));
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
  _mm_storeu_ps(sc, _mm512_castps512_ps128(_mm512_permutexvar_ps(idx, z)));
}

// sc[j][0 .. 4) = q_j . rows[r] for KR (<= 4) rows and JQ queries (lanes >= KR: 0); hd a
// multiple of 16.
template <int JQ, int KR, typename T>
inline void qk_group(const float* const* q, const T* const* rows, int64_t hd, float* const* sc) {
  __m512 acc[JQ][4];
  for (int j = 0; j < JQ; ++j)
    for (int r = 0; r < 4; ++r) acc[j][r] = _mm512_setzero_ps();
  for (int64_t i = 0; i < hd; i += 16) {
    __m512 k[KR];
    for (int r = 0; r < KR; ++r) k[r] = load16(rows[r] + i);
    for (int j = 0; j < JQ; ++j) {
      const __m512 qv = _mm512_loadu_ps(q[j] + i);
      for (int r = 0; r < KR; ++r) acc[j][r] = _mm512_fmadd_ps(qv, k[r], acc[j][r]);
    }
  }
  int j = 0;
  for (; j + 2 <= JQ; j += 2) {
    store_scores2(fold4(acc[j][0], acc[j][1], acc[j][2], acc[j][3]),
                  fold4(acc[j + 1][0], acc[j + 1][1], acc[j + 1][2], acc[j + 1][3]), sc[j], sc[j + 1]);
  }
  if (j < JQ) store_scores1(fold4(acc[j][0], acc[j][1], acc[j][2], acc[j][3]), sc[j]);
}

// acc_j[d .. d + 16 DV) = acc_j * alpha_j + sum_t p_j[t] * vrows[t][d ..], for JQ queries;
// requests the same columns of the rows `ahead` elements on.
template <int JQ, int DV, typename T>
inline void pv_group(float* const* acc, const float* alpha, const float* const* p,
                     const T* const* vrows, int64_t cnt, int64_t d, int64_t ahead) {
  __m512 c[JQ][DV];
  for (int j = 0; j < JQ; ++j) {
    const __m512 a = _mm512_set1_ps(alpha[j]);
    for (int v = 0; v < DV; ++v) c[j][v] = _mm512_mul_ps(_mm512_loadu_ps(acc[j] + d + 16 * v), a);
  }
  for (int64_t t = 0; t < cnt; ++t) {
    __m512 vv[DV];
    for (int v = 0; v < DV; ++v) vv[v] = load16(vrows[t] + d + 16 * v);
    avx2::prefetch_ahead(vrows[t] + ahead + d, 16 * DV);
    for (int j = 0; j < JQ; ++j) {
      const __m512 w = _mm512_set1_ps(p[j][t]);
      for (int v = 0; v < DV; ++v) c[j][v] = _mm512_fmadd_ps(w, vv[v], c[j][v]);
    }
  }
  for (int j = 0; j < JQ; ++j)
    for (int v = 0; v < DV; ++v) _mm512_storeu_ps(acc[j] + d + 16 * v, c[j][v]);
}

// The value columns in passes of DV vectors: accumulators and value vectors within 32 registers.
template <int JQ, typename T>
inline void pv_columns(float* const* acc, const float* alpha, const float* const* p,
                       const T* const* vrows, int64_t cnt, int64_t hd, int64_t ahead) {
  constexpr int DV = JQ <= 6 ? 4 : 3;
  int64_t d = 0;
  for (; d + 16 * DV <= hd; d += 16 * DV) pv_group<JQ, DV, T>(acc, alpha, p, vrows, cnt, d, ahead);
  switch ((hd - d) / 16) {
    case 3: pv_group<JQ, 3, T>(acc, alpha, p, vrows, cnt, d, ahead); break;
    case 2: pv_group<JQ, 2, T>(acc, alpha, p, vrows, cnt, d, ahead); break;
    case 1: pv_group<JQ, 1, T>(acc, alpha, p, vrows, cnt, d, ahead); break;
    default: break;
  }
}

inline __m512 exp16(__m512 x);

// online_softmax_block's vector operations on 16 lanes.
struct Lanes16 {
  using V = __m512;
  static constexpr int64_t kWidth = 16;
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static V exp(V x) { return exp16(x); }
  static float reduce_max(V v) { return _mm512_reduce_max_ps(v); }
  static float reduce_add(V v) { return _mm512_reduce_add_ps(v); }
};

// The decode products and softmax on 16 lanes, for few_block.
struct Few {
  using Lanes = Lanes16;  // the softmax's vector operations
  template <int JQ, int KR, typename T>
  static void qk_group(const float* const* q, const T* const* rows, int64_t hd, float* const* sc) {
    avx512::qk_group<JQ, KR, T>(q, rows, hd, sc);
  }
  template <int JQ, typename T>
  static void pv_columns(float* const* acc, const float* alpha, const float* const* p, const T* const* vrows,
                         int64_t cnt, int64_t hd, int64_t ahead) {
    avx512::pv_columns<JQ, T>(acc, alpha, p, vrows, cnt, hd, ahead);
  }
};

// A group of JQ (1-8) queries: KR key rows at a time keep the accumulators and key rows in 32
// registers.
template <int JQ, typename T>
void few_block(const AttnTile& t, const int64_t* qidx, int64_t t0, int64_t nb, const T* const* krows,
               const T* const* vrows, float* scores) {
  avx2::few_block<Few, JQ, JQ <= 6 ? 4 : 3, T>(t, qidx, t0, nb, krows, vrows, scores);
}

template <typename T>
void tile_few_queries(const AttnTile& t) {
  thread_local std::vector<float> scores(kMaxGroup * (kKeyBlock + 8));
  auto group_size = [](int64_t left) { return std::min<int64_t>(left, kMaxGroup); };
  few_query_tile<T>(t, group_size, [&](const int64_t* idx, int64_t take, int64_t t0, int64_t nb,
                                        const T* const* krows, const T* const* vrows) {
    switch (take) {
      case 8: few_block<8, T>(t, idx, t0, nb, krows, vrows, scores.data()); break;
      case 7: few_block<7, T>(t, idx, t0, nb, krows, vrows, scores.data()); break;
      case 6: few_block<6, T>(t, idx, t0, nb, krows, vrows, scores.data()); break;
      case 5: few_block<5, T>(t, idx, t0, nb, krows, vrows, scores.data()); break;
      case 4: few_block<4, T>(t, idx, t0, nb, krows, vrows, scores.data()); break;
      case 3: few_block<3, T>(t, idx, t0, nb, krows, vrows, scores.data()); break;
      case 2: few_block<2, T>(t, idx, t0, nb, krows, vrows, scores.data()); break;
      default: few_block<1, T>(t, idx, t0, nb, krows, vrows, scores.data()); break;
    }
  });
}

// ---- many queries (prefill, windows) ---------------------------------------------------------
//
// Laid out query-minor as in the AVX2 tile: the scaled queries transposed QT[hd][nqp], the
// block's scores ST[key][nqp], the output OT[hd][nqp], nqp a multiple of 16; the online softmax
// works down columns, and each product broadcasts one key or value element against 16-32
// queries held in registers.

// e^x, as avx2::exp_ps on 16 lanes.
inline __m512 exp16(__m512 x) {
  const __m512 lo = _mm512_set1_ps(-87.3365479f);
  const __mmask16 underflow = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
  x = _mm512_min_ps(_mm512_max_ps(x, lo), _mm512_set1_ps(88.0f));
  const __m512 magic = _mm512_set1_ps(12582912.0f);
  const __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.44269504088896341f), magic);
  const __m512 n = _mm512_sub_ps(t, magic);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512i bits = _mm512_slli_epi32(_mm512_castps_si512(t), 23);
  const __m512 pow2n = _mm512_castsi512_ps(_mm512_add_epi32(bits, _mm512_set1_epi32(127 << 23)));
  return _mm512_maskz_mul_ps(_knot_mask16(underflow), p, pow2n);
}

// ST[k][j .. j + 16 JV) = QT[:, j ..]^T k_k, for KT keys.
template <int KT, int JV>
inline void qk_micro(const float* qt, int64_t nqp, int64_t hd, const float* const* krows, float* st) {
  __m512 acc[KT][JV];
  for (int k = 0; k < KT; ++k)
    for (int v = 0; v < JV; ++v) acc[k][v] = _mm512_setzero_ps();
  for (int64_t d = 0; d < hd; ++d) {
    __m512 qv[JV];
    for (int v = 0; v < JV; ++v) qv[v] = _mm512_loadu_ps(qt + d * nqp + 16 * v);
    for (int k = 0; k < KT; ++k) {
      const __m512 kb = _mm512_set1_ps(krows[k][d]);
      for (int v = 0; v < JV; ++v) acc[k][v] = _mm512_fmadd_ps(kb, qv[v], acc[k][v]);
    }
  }
  for (int k = 0; k < KT; ++k)
    for (int v = 0; v < JV; ++v) _mm512_storeu_ps(st + k * nqp + 16 * v, acc[k][v]);
}

template <int JV>
inline void qk_columns(const float* qt, int64_t nqp, int64_t hd, const float* const* krows, int64_t nb,
                       float* st) {
  constexpr int KT = 12;
  int64_t t = 0;
  for (; t + KT <= nb; t += KT) qk_micro<KT, JV>(qt, nqp, hd, krows + t, st + t * nqp);
  for (; t + 4 <= nb; t += 4) qk_micro<4, JV>(qt, nqp, hd, krows + t, st + t * nqp);
  for (; t < nb; ++t) qk_micro<1, JV>(qt, nqp, hd, krows + t, st + t * nqp);
}

// OT[d + i][j ..] = OT[d + i][j ..] * alpha[j ..] + sum_t vrows[t][d + i] * PT[t][j ..].
template <int DT, int JV>
inline void pv_micro(float* ot, int64_t nqp, const float* alpha, const float* pt, int64_t nb,
                     const float* const* vrows, int64_t d) {
  __m512 acc[DT][JV];
  for (int v = 0; v < JV; ++v) {
    const __m512 a = _mm512_loadu_ps(alpha + 16 * v);
    for (int i = 0; i < DT; ++i) acc[i][v] = _mm512_mul_ps(_mm512_loadu_ps(ot + i * nqp + 16 * v), a);
  }
  for (int64_t t = 0; t < nb; ++t) {
    __m512 pv[JV];
    for (int v = 0; v < JV; ++v) pv[v] = _mm512_loadu_ps(pt + t * nqp + 16 * v);
    const float* vr = vrows[t] + d;
    for (int i = 0; i < DT; ++i) {
      const __m512 vb = _mm512_set1_ps(vr[i]);
      for (int v = 0; v < JV; ++v) acc[i][v] = _mm512_fmadd_ps(vb, pv[v], acc[i][v]);
    }
  }
  for (int i = 0; i < DT; ++i)
    for (int v = 0; v < JV; ++v) _mm512_storeu_ps(ot + i * nqp + 16 * v, acc[i][v]);
}

template <int JV>
inline void pv_columns(float* ot, int64_t nqp, int64_t hd, const float* alpha, const float* pt, int64_t nb,
                       const float* const* vrows) {
  constexpr int DT = 12;
  int64_t d = 0;
  for (; d + DT <= hd; d += DT) pv_micro<DT, JV>(ot + d * nqp, nqp, alpha, pt, nb, vrows, d);
  for (; d + 4 <= hd; d += 4) pv_micro<4, JV>(ot + d * nqp, nqp, alpha, pt, nb, vrows, d);
  for (; d < hd; ++d) pv_micro<1, JV>(ot + d * nqp, nqp, alpha, pt, nb, vrows, d);
}

// Row pointers for keys [t0, t0 + nb): straight into a float cache, or into `buf` after
// converting half rows.
inline void block_rows(const AttnTile& t, const void* base, int64_t t0, int64_t nb, float* buf,
                       const float** rows) {
  const int64_t hd = t.head_dim;
  if (!t.f16) {
    const float* p = static_cast<const float*>(base);
    for (int64_t r = 0; r < nb; ++r) rows[r] = p + (t0 + r) * t.kv_stride;
    return;
  }
  const uint16_t* p = static_cast<const uint16_t*>(base);
  for (int64_t r = 0; r < nb; ++r) {
    const uint16_t* src = p + (t0 + r) * t.kv_stride;
    float* dst = buf + r * hd;
    int64_t i = 0;
    for (; i + 16 <= hd; i += 16) _mm512_storeu_ps(dst + i, load16(src + i));
    for (; i < hd; ++i) dst[i] = _cvtsh_ss(src[i]);
    rows[r] = dst;
  }
}

void tile_many_queries(const AttnTile& t) {
  const int64_t hd = t.head_dim;
  const int64_t nqp = (t.nq + 15) / 16 * 16;  // queries padded to whole vectors
  thread_local BlockedScratch s;
  int32_t kend_min;
  const int64_t end_all = start_many(t, nqp, s, &kend_min);
  float* qt = s.qt.data();
  float* st = s.st.data();
  float* ot = s.ot.data();
  const float* krows[kKeyBlock];
  const float* vrows[kKeyBlock];
  const __m512 neg_inf = _mm512_set1_ps(-INFINITY);

  for (int64_t t0 = t.t_begin; t0 < end_all; t0 += kKeyBlock) {
    const int64_t nb = std::min(kKeyBlock, end_all - t0);
    block_rows(t, t.k, t0, nb, s.k.data(), krows);
    block_rows(t, t.v, t0, nb, s.v.data(), vrows);
    int64_t j = 0;
    for (; j + 32 <= nqp; j += 32) qk_columns<2>(qt + j, nqp, hd, krows, nb, st + j);
    if (j < nqp) qk_columns<1>(qt + j, nqp, hd, krows, nb, st + j);

    // Online softmax down each column of 16 queries: mask, block max, rescale, exponentiate.
    const int32_t rel0 = int32_t(t0 - t.t_begin);
    for (j = 0; j < nqp; j += 16) {
      const __m512i kend = _mm512_loadu_si512(s.kend.data() + j);
      __m512 vmax = neg_inf;
      if (rel0 + int32_t(nb) <= kend_min) {  // every key of the block is visible to every query
        for (int64_t r = 0; r < nb; ++r) vmax = _mm512_max_ps(vmax, _mm512_loadu_ps(st + r * nqp + j));
      } else {
        for (int64_t r = 0; r < nb; ++r) {
          float* row = st + r * nqp + j;
          const __mmask16 keep = _mm512_cmpgt_epi32_mask(kend, _mm512_set1_epi32(rel0 + int32_t(r)));
          const __m512 sv = _mm512_mask_blend_ps(keep, neg_inf, _mm512_loadu_ps(row));
          _mm512_storeu_ps(row, sv);
          vmax = _mm512_max_ps(vmax, sv);
        }
      }
      const __m512 m_old = _mm512_loadu_ps(s.m.data() + j);
      const __m512 m_new = _mm512_max_ps(m_old, vmax);
      // A column that has seen no key yet keeps m = -inf; subtract 0 there, not -inf, so the
      // exponentials are e^-inf = 0 rather than NaN.
      const __mmask16 unseen = _mm512_cmp_ps_mask(m_new, neg_inf, _CMP_EQ_OQ);
      const __m512 m_sub = _mm512_mask_blend_ps(unseen, m_new, _mm512_setzero_ps());
      const __m512 alpha = exp16(_mm512_sub_ps(m_old, m_sub));
      __m512 sum = _mm512_setzero_ps();
      for (int64_t r = 0; r < nb; ++r) {
        float* row = st + r * nqp + j;
        const __m512 p = exp16(_mm512_sub_ps(_mm512_loadu_ps(row), m_sub));
        _mm512_storeu_ps(row, p);
        sum = _mm512_add_ps(sum, p);
      }
      const __m512 l_old = _mm512_loadu_ps(s.l.data() + j);
      _mm512_storeu_ps(s.l.data() + j, _mm512_fmadd_ps(l_old, alpha, sum));
      _mm512_storeu_ps(s.m.data() + j, m_new);
      _mm512_storeu_ps(s.alpha.data() + j, alpha);
    }

    const float* alpha = s.alpha.data();
    for (j = 0; j + 32 <= nqp; j += 32) pv_columns<2>(ot + j, nqp, hd, alpha + j, st + j, nb, vrows);
    if (j < nqp) pv_columns<1>(ot + j, nqp, hd, alpha + j, st + j, nb, vrows);
  }

  finish_many(t, nqp, s);
}

}  // namespace

// Prefill and window tiles (many queries) and decode tiles whose head size is a multiple of 16
// on 16-lane vectors; other decode tiles on the AVX2 tile.
void attn_tile(const AttnTile& t) {
  if (t.nq >= 16 && t.kv_heads <= 1) return tile_many_queries(t);
  if (t.nq >= 8 && t.kv_heads <= 1) return avx2::attn_tile(t);  // under a 16-lane column
  if (t.head_dim % 16 != 0) return avx2::attn_tile(t);
  if (t.f16) return tile_few_queries<uint16_t>(t);
  tile_few_queries<float>(t);
}

}  // namespace cromwell::avx512

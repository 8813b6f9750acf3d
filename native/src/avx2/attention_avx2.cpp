// AVX2 attention tile (see attention.h): keys in blocks of kKeyBlock, one online-softmax
// rescale per query per block. Two shapes of work: a few query heads against a long cache
// (decode) and many queries against each key block (prefill, windows).
#include <algorithm>
#include <climits>
#include <cmath>
#include <vector>

#include "../attention.h"
#include "attention_shared.h"
#include "math_avx2.h"
#include "simd_helpers.h"

namespace cromwell::avx2 {
namespace {

// Row pointers for keys [t0, t0 + nb): straight into a float cache, or into `buf` after
// converting half rows with F16C.
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
    for (; i + 8 <= hd; i += 8) _mm256_storeu_ps(dst + i, load_f16_ps(src + i));
    for (; i < hd; ++i) dst[i] = _cvtsh_ss(src[i]);
    rows[r] = dst;
  }
}

// ---- few queries (decode): the 1-7 query heads that share a KV head, in groups of up to 3 ---
//
// Each key and value row is loaded once per group and used against every query of the group,
// so the products do fewer loads per multiply-add than one query at a time would.

// Sum of the lanes of up to 4 vectors, as the low lanes of one 4-lane vector.
inline __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// 8 cache elements as floats: float rows directly, half rows through F16C on the fly.
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) { return load_f16_ps(p); }
inline float load1(const float* p) { return *p; }
inline float load1(const uint16_t* p) { return _cvtsh_ss(*p); }

// sc[j][0 .. 4) = q_j . rows[r] for KR (<= 4) rows and JQ queries (lanes >= KR: junk).
template <int JQ, int KR, typename T>
inline void qk_group(const float* const* q, const T* const* rows, int64_t hd, float* const* sc) {
  __m256 acc[JQ][4];
  for (int j = 0; j < JQ; ++j)
    for (int r = 0; r < 4; ++r) acc[j][r] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= hd; i += 8) {
    __m256 k[KR];
    for (int r = 0; r < KR; ++r) k[r] = load8(rows[r] + i);
    for (int j = 0; j < JQ; ++j) {
      const __m256 qv = _mm256_loadu_ps(q[j] + i);
      for (int r = 0; r < KR; ++r) acc[j][r] = _mm256_fmadd_ps(qv, k[r], acc[j][r]);
    }
  }
  for (int j = 0; j < JQ; ++j) {
    __m128 sums = hsum4(acc[j][0], acc[j][1], acc[j][2], acc[j][3]);
    if (i < hd) {  // head_dim not a multiple of 8: the last few products, scalar
      alignas(16) float tail[4] = {0.0f, 0.0f, 0.0f, 0.0f};
      for (int r = 0; r < KR; ++r)
        for (int64_t c = i; c < hd; ++c) tail[r] += q[j][c] * load1(rows[r] + c);
      sums = _mm_add_ps(sums, _mm_load_ps(tail));
    }
    _mm_storeu_ps(sc[j], sums);
  }
}

// acc_j[d .. d + 8 DV) = acc_j * alpha_j + sum_t p_j[t] * vrows[t][d ..], for JQ queries;
// requests the same columns of the rows `ahead` elements on.
template <int JQ, int DV, typename T>
inline void pv_group(float* const* acc, const float* alpha, const float* const* p,
                     const T* const* vrows, int64_t cnt, int64_t d, int64_t ahead) {
  __m256 c[JQ][DV];
  for (int j = 0; j < JQ; ++j) {
    const __m256 a = _mm256_set1_ps(alpha[j]);
    for (int v = 0; v < DV; ++v) c[j][v] = _mm256_mul_ps(_mm256_loadu_ps(acc[j] + d + 8 * v), a);
  }
  for (int64_t t = 0; t < cnt; ++t) {
    __m256 vv[DV];
    for (int v = 0; v < DV; ++v) vv[v] = load8(vrows[t] + d + 8 * v);
    prefetch_ahead(vrows[t] + ahead + d, 8 * DV);
    for (int j = 0; j < JQ; ++j) {
      const __m256 w = _mm256_broadcast_ss(p[j] + t);
      for (int v = 0; v < DV; ++v) c[j][v] = _mm256_fmadd_ps(w, vv[v], c[j][v]);
    }
  }
  for (int j = 0; j < JQ; ++j)
    for (int v = 0; v < DV; ++v) _mm256_storeu_ps(acc[j] + d + 8 * v, c[j][v]);
}

// The decode products on 8 lanes, for few_block. Value columns 24 at a time (the accumulators
// of 3 queries and the value vectors within 16 registers), a head size short of 8 scalar.
struct Few {
  using Lanes = Lanes8;  // the softmax's vector operations
  template <int JQ, int KR, typename T>
  static void qk_group(const float* const* q, const T* const* rows, int64_t hd, float* const* sc) {
    avx2::qk_group<JQ, KR, T>(q, rows, hd, sc);
  }
  template <int JQ, typename T>
  static void pv_columns(float* const* acc, const float* alpha, const float* const* p, const T* const* vrows,
                         int64_t cnt, int64_t hd, int64_t ahead) {
    const int64_t hd8 = hd / 8 * 8;
    int64_t d = 0;
    for (; d + 24 <= hd8; d += 24) pv_group<JQ, 3, T>(acc, alpha, p, vrows, cnt, d, ahead);
    if (hd8 - d == 16) pv_group<JQ, 2, T>(acc, alpha, p, vrows, cnt, d, ahead);
    if (hd8 - d == 8) pv_group<JQ, 1, T>(acc, alpha, p, vrows, cnt, d, ahead);
    for (d = hd8; d < hd; ++d) {
      for (int j = 0; j < JQ; ++j) {
        float c = acc[j][d] * alpha[j];
        for (int64_t r = 0; r < cnt; ++r) c += p[j][r] * load1(vrows[r] + d);
        acc[j][d] = c;
      }
    }
  }
};

// A group of JQ (1-3) queries: KR key rows at a time keep the accumulators and key rows in 16
// registers.
template <int JQ, typename T>
void few_block(const AttnTile& t, const int64_t* qidx, int64_t t0, int64_t nb, const T* const* krows,
               const T* const* vrows, float* scores) {
  avx2::few_block<Few, JQ, JQ == 3 ? 3 : 4, T>(t, qidx, t0, nb, krows, vrows, scores);
}

template <typename T>
void tile_few_queries(const AttnTile& t) {
  thread_local std::vector<float> scores(3 * (kKeyBlock + 8));
  // A head's queries in groups of 3, except that 4 left over go as 2 + 2 rather than 3 + a
  // lone query: the accumulators and key rows of 3 fit in 16 registers.
  auto group_size = [](int64_t left) { return left == 4 ? int64_t(2) : std::min<int64_t>(left, 3); };
  few_query_tile<T>(t, group_size, [&](const int64_t* idx, int64_t take, int64_t t0, int64_t nb,
                                        const T* const* krows, const T* const* vrows) {
    if (take == 3) few_block<3, T>(t, idx, t0, nb, krows, vrows, scores.data());
    if (take == 2) few_block<2, T>(t, idx, t0, nb, krows, vrows, scores.data());
    if (take == 1) few_block<1, T>(t, idx, t0, nb, krows, vrows, scores.data());
  });
}

// ---- many queries (prefill, windows): both products as small register-blocked GEMMs --------
//
// Everything is laid out query-minor, so vectors run over 8 queries: the scaled queries
// transposed QT[hd][nqp], the block's scores ST[key][nqp], the output OT[hd][nqp]. The online
// softmax (max, rescale, exp, sums) then works down columns with no horizontal reductions, and
// each product broadcasts one key or value element against 8-16 queries held in registers.

// ST[t + k][j .. j + 8 JV) = QT[:, j ..]^T k_{t + k}, for KT keys.
template <int KT, int JV>
inline void qk_micro(const float* qt, int64_t nqp, int64_t hd, const float* const* krows,
                     float* st) {
  __m256 acc[KT][JV];
  for (int k = 0; k < KT; ++k)
    for (int v = 0; v < JV; ++v) acc[k][v] = _mm256_setzero_ps();
  for (int64_t d = 0; d < hd; ++d) {
    __m256 qv[JV];
    for (int v = 0; v < JV; ++v) qv[v] = _mm256_loadu_ps(qt + d * nqp + 8 * v);
    for (int k = 0; k < KT; ++k) {
      const __m256 kb = _mm256_broadcast_ss(krows[k] + d);
      for (int v = 0; v < JV; ++v) acc[k][v] = _mm256_fmadd_ps(kb, qv[v], acc[k][v]);
    }
  }
  for (int k = 0; k < KT; ++k)
    for (int v = 0; v < JV; ++v) _mm256_storeu_ps(st + k * nqp + 8 * v, acc[k][v]);
}

template <int JV>
inline void qk_columns(const float* qt, int64_t nqp, int64_t hd, const float* const* krows,
                       int64_t nb, float* st) {
  int64_t t = 0;
  for (; t + 6 <= nb; t += 6) qk_micro<6, JV>(qt, nqp, hd, krows + t, st + t * nqp);
  switch (nb - t) {
    case 5: qk_micro<5, JV>(qt, nqp, hd, krows + t, st + t * nqp); break;
    case 4: qk_micro<4, JV>(qt, nqp, hd, krows + t, st + t * nqp); break;
    case 3: qk_micro<3, JV>(qt, nqp, hd, krows + t, st + t * nqp); break;
    case 2: qk_micro<2, JV>(qt, nqp, hd, krows + t, st + t * nqp); break;
    case 1: qk_micro<1, JV>(qt, nqp, hd, krows + t, st + t * nqp); break;
    default: break;
  }
}

// OT[d + i][j ..] = OT[d + i][j ..] * alpha[j ..] + sum_t vrows[t][d + i] * PT[t][j ..].
template <int DT, int JV>
inline void pv_micro(float* ot, int64_t nqp, const float* alpha, const float* pt, int64_t nb,
                     const float* const* vrows, int64_t d) {
  __m256 acc[DT][JV];
  for (int v = 0; v < JV; ++v) {
    const __m256 a = _mm256_loadu_ps(alpha + 8 * v);
    for (int i = 0; i < DT; ++i) {
      acc[i][v] = _mm256_mul_ps(_mm256_loadu_ps(ot + i * nqp + 8 * v), a);
    }
  }
  for (int64_t t = 0; t < nb; ++t) {
    __m256 pv[JV];
    for (int v = 0; v < JV; ++v) pv[v] = _mm256_loadu_ps(pt + t * nqp + 8 * v);
    const float* vr = vrows[t] + d;
    for (int i = 0; i < DT; ++i) {
      const __m256 vb = _mm256_broadcast_ss(vr + i);
      for (int v = 0; v < JV; ++v) acc[i][v] = _mm256_fmadd_ps(vb, pv[v], acc[i][v]);
    }
  }
  for (int i = 0; i < DT; ++i)
    for (int v = 0; v < JV; ++v) _mm256_storeu_ps(ot + i * nqp + 8 * v, acc[i][v]);
}

template <int JV>
inline void pv_columns(float* ot, int64_t nqp, int64_t hd, const float* alpha, const float* pt,
                       int64_t nb, const float* const* vrows) {
  int64_t d = 0;
  for (; d + 6 <= hd; d += 6) pv_micro<6, JV>(ot + d * nqp, nqp, alpha, pt, nb, vrows, d);
  switch (hd - d) {
    case 5: pv_micro<5, JV>(ot + d * nqp, nqp, alpha, pt, nb, vrows, d); break;
    case 4: pv_micro<4, JV>(ot + d * nqp, nqp, alpha, pt, nb, vrows, d); break;
    case 3: pv_micro<3, JV>(ot + d * nqp, nqp, alpha, pt, nb, vrows, d); break;
    case 2: pv_micro<2, JV>(ot + d * nqp, nqp, alpha, pt, nb, vrows, d); break;
    case 1: pv_micro<1, JV>(ot + d * nqp, nqp, alpha, pt, nb, vrows, d); break;
    default: break;
  }
}

void tile_many_queries(const AttnTile& t) {
  const int64_t hd = t.head_dim;
  const int64_t nqp = (t.nq + 7) / 8 * 8;  // queries padded to whole vectors
  thread_local BlockedScratch s;
  int32_t kend_min;
  const int64_t end_all = start_many(t, nqp, s, &kend_min);
  float* qt = s.qt.data();
  float* st = s.st.data();
  float* ot = s.ot.data();
  const float* krows[kKeyBlock];
  const float* vrows[kKeyBlock];
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY);

  for (int64_t t0 = t.t_begin; t0 < end_all; t0 += kKeyBlock) {
    const int64_t nb = std::min(kKeyBlock, end_all - t0);
    block_rows(t, t.k, t0, nb, s.k.data(), krows);
    block_rows(t, t.v, t0, nb, s.v.data(), vrows);
    int64_t j = 0;
    for (; j + 16 <= nqp; j += 16) qk_columns<2>(qt + j, nqp, hd, krows, nb, st + j);
    if (j < nqp) qk_columns<1>(qt + j, nqp, hd, krows, nb, st + j);

    // Online softmax down each column of 8 queries: mask, block max, rescale, exponentiate.
    const int32_t rel0 = int32_t(t0 - t.t_begin);
    for (j = 0; j < nqp; j += 8) {
      const __m256i kend = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s.kend.data() + j));
      __m256 vmax = neg_inf;
      if (rel0 + int32_t(nb) <= kend_min) {  // every key of the block is visible to every query
        for (int64_t r = 0; r < nb; ++r) {
          vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(st + r * nqp + j));
        }
      } else {
        for (int64_t r = 0; r < nb; ++r) {
          float* row = st + r * nqp + j;
          const __m256i key = _mm256_set1_epi32(rel0 + int32_t(r));
          const __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(kend, key));
          const __m256 sv = _mm256_blendv_ps(neg_inf, _mm256_loadu_ps(row), keep);
          _mm256_storeu_ps(row, sv);
          vmax = _mm256_max_ps(vmax, sv);
        }
      }
      const __m256 m_old = _mm256_loadu_ps(s.m.data() + j);
      const __m256 m_new = _mm256_max_ps(m_old, vmax);
      // A column that has seen no key yet keeps m = -inf; subtract 0 there, not -inf, so the
      // exponentials are e^-inf = 0 rather than NaN.
      const __m256 unseen = _mm256_cmp_ps(m_new, neg_inf, _CMP_EQ_OQ);
      const __m256 m_sub = _mm256_blendv_ps(m_new, _mm256_setzero_ps(), unseen);
      const __m256 alpha = exp_ps(_mm256_sub_ps(m_old, m_sub));
      __m256 sum = _mm256_setzero_ps();
      for (int64_t r = 0; r < nb; ++r) {
        float* row = st + r * nqp + j;
        const __m256 p = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(row), m_sub));
        _mm256_storeu_ps(row, p);
        sum = _mm256_add_ps(sum, p);
      }
      const __m256 l_old = _mm256_loadu_ps(s.l.data() + j);
      _mm256_storeu_ps(s.l.data() + j, _mm256_fmadd_ps(l_old, alpha, sum));
      _mm256_storeu_ps(s.m.data() + j, m_new);
      _mm256_storeu_ps(s.alpha.data() + j, alpha);
    }

    const float* alpha = s.alpha.data();
    for (j = 0; j + 16 <= nqp; j += 16) {
      pv_columns<2>(ot + j, nqp, hd, alpha + j, st + j, nb, vrows);
    }
    if (j < nqp) pv_columns<1>(ot + j, nqp, hd, alpha + j, st + j, nb, vrows);
  }

  finish_many(t, nqp, s);
}

}  // namespace

// Register-blocked GEMMs pay off once a tile has a vector's worth of queries; decode tiles
// (a few query heads per KV head) take the dot-product path.
void attn_tile(const AttnTile& t) {
  if (t.nq >= 8 && t.kv_heads <= 1) {
    tile_many_queries(t);
  } else if (t.f16) {
    tile_few_queries<uint16_t>(t);
  } else {
    tile_few_queries<float>(t);
  }
}

}  // namespace cromwell::avx2

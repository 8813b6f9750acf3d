// AVX2 attention tile (see attention.h): keys in blocks of kKeyBlock, each block's scores for
// all the tile's queries computed 8 keys at a time, one online-softmax rescale per query per
// block, and the value rows accumulated with the accumulator held in registers.
#include <algorithm>
#include <climits>
#include <cmath>
#include <vector>

#include "../attention.h"
#include "math_avx2.h"
#include "simd_helpers.h"

namespace cromwell::avx2 {
namespace {

constexpr int64_t kKeyBlock = 64;

struct Scratch {
  std::vector<float> k, v, scores;
};

// q . k_r for the 8 key rows r, as one vector of 8 scores.
inline __m256 dot8(const float* q, const float* const* rows, int64_t hd) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
         a3 = _mm256_setzero_ps(), a4 = _mm256_setzero_ps(), a5 = _mm256_setzero_ps(),
         a6 = _mm256_setzero_ps(), a7 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= hd; i += 8) {
    const __m256 qv = _mm256_loadu_ps(q + i);
    a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(rows[0] + i), a0);
    a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(rows[1] + i), a1);
    a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(rows[2] + i), a2);
    a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(rows[3] + i), a3);
    a4 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(rows[4] + i), a4);
    a5 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(rows[5] + i), a5);
    a6 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(rows[6] + i), a6);
    a7 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(rows[7] + i), a7);
  }
  __m256 s = hsum8_transposed(a0, a1, a2, a3, a4, a5, a6, a7);
  if (i < hd) {  // head_dim not a multiple of 8: the last few products, scalar
    alignas(32) float tail[8];
    for (int r = 0; r < 8; ++r) {
      float t = 0.0f;
      for (int64_t c = i; c < hd; ++c) t += q[c] * rows[r][c];
      tail[r] = t;
    }
    s = _mm256_add_ps(s, _mm256_load_ps(tail));
  }
  return s;
}

// acc[0..hd) = acc * alpha + sum_t p[t] * rows[t], for cnt rows.
inline void accumulate(float* acc, float alpha, const float* p, const float* const* rows,
                       int64_t cnt, int64_t hd) {
  const __m256 va = _mm256_set1_ps(alpha);
  int64_t i = 0;
  for (; i + 32 <= hd; i += 32) {  // 4 registers of accumulator per pass over the rows
    __m256 c0 = _mm256_mul_ps(_mm256_loadu_ps(acc + i), va);
    __m256 c1 = _mm256_mul_ps(_mm256_loadu_ps(acc + i + 8), va);
    __m256 c2 = _mm256_mul_ps(_mm256_loadu_ps(acc + i + 16), va);
    __m256 c3 = _mm256_mul_ps(_mm256_loadu_ps(acc + i + 24), va);
    for (int64_t t = 0; t < cnt; ++t) {
      const __m256 w = _mm256_broadcast_ss(p + t);
      const float* r = rows[t] + i;
      c0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(r), c0);
      c1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(r + 8), c1);
      c2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(r + 16), c2);
      c3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(r + 24), c3);
    }
    _mm256_storeu_ps(acc + i, c0);
    _mm256_storeu_ps(acc + i + 8, c1);
    _mm256_storeu_ps(acc + i + 16, c2);
    _mm256_storeu_ps(acc + i + 24, c3);
  }
  for (; i + 8 <= hd; i += 8) {
    __m256 c0 = _mm256_mul_ps(_mm256_loadu_ps(acc + i), va);
    for (int64_t t = 0; t < cnt; ++t) {
      c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + t), _mm256_loadu_ps(rows[t] + i), c0);
    }
    _mm256_storeu_ps(acc + i, c0);
  }
  for (; i < hd; ++i) {
    float c = acc[i] * alpha;
    for (int64_t t = 0; t < cnt; ++t) c += p[t] * rows[t][i];
    acc[i] = c;
  }
}

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

// ---- few queries (decode): scores 8 keys at a time by dot products over head_dim ------------

void tile_few_queries(const AttnTile& t) {
  const int64_t hd = t.head_dim;
  thread_local Scratch s;
  if (t.f16 && int64_t(s.k.size()) < kKeyBlock * hd) {
    s.k.resize(kKeyBlock * hd);
    s.v.resize(kKeyBlock * hd);
  }
  if (s.scores.size() < size_t(kKeyBlock)) s.scores.resize(kKeyBlock);
  const float* krows[kKeyBlock];
  const float* vrows[kKeyBlock];
  float* sc = s.scores.data();

  int64_t end_all = t.t_begin;
  for (int64_t j = 0; j < t.nq; ++j) {
    t.m[j] = -INFINITY;
    t.l[j] = 0.0f;
    std::fill(t.acc + j * hd, t.acc + (j + 1) * hd, 0.0f);
    end_all = std::max(end_all, std::min(t.t_end, t.key_end[j]));
  }
  const __m256 vscale = _mm256_set1_ps(t.scale);
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY);

  for (int64_t t0 = t.t_begin; t0 < end_all; t0 += kKeyBlock) {
    const int64_t nb = std::min(kKeyBlock, end_all - t0);
    block_rows(t, t.k, t0, nb, s.k.data(), krows);
    block_rows(t, t.v, t0, nb, s.v.data(), vrows);
    // Pad the last group of 8 with a valid row; those lanes are masked to -inf below.
    const int64_t nb8 = (nb + 7) / 8 * 8;
    for (int64_t r = nb; r < nb8; ++r) krows[r] = krows[nb - 1];

    for (int64_t j = 0; j < t.nq; ++j) {
      const int64_t cnt = std::min(nb, std::min(t.t_end, t.key_end[j]) - t0);
      if (cnt <= 0) continue;
      const float* q = t.q[j];
      __m256 vmax = neg_inf;
      for (int64_t r = 0; r < cnt; r += 8) {
        __m256 sv = _mm256_mul_ps(dot8(q, krows + r, hd), vscale);
        if (cnt - r < 8) {  // keys past this query's limit (or the block) score -inf
          const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
          const __m256 keep = _mm256_castsi256_ps(
              _mm256_cmpgt_epi32(_mm256_set1_epi32(int(cnt - r)), lane));
          sv = _mm256_blendv_ps(neg_inf, sv, keep);
        }
        _mm256_storeu_ps(sc + r, sv);
        vmax = _mm256_max_ps(vmax, sv);
      }
      const float m_old = t.m[j];
      const float m_new = std::max(m_old, hmax_float_8(vmax));
      const float alpha = std::exp(m_old - m_new);  // 0 on the first block (m_old = -inf)
      const __m256 vm = _mm256_set1_ps(m_new);
      __m256 vsum = _mm256_setzero_ps();
      for (int64_t r = 0; r < cnt; r += 8) {
        const __m256 p = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(sc + r), vm));
        _mm256_storeu_ps(sc + r, p);
        vsum = _mm256_add_ps(vsum, p);
      }
      t.l[j] = t.l[j] * alpha + hsum_float_8(vsum);
      t.m[j] = m_new;
      accumulate(t.acc + j * hd, alpha, sc, vrows, cnt, hd);
    }
  }
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
    for (int i = 0; i < DT; ++i) acc[i][v] = _mm256_mul_ps(_mm256_loadu_ps(ot + i * nqp + 8 * v), a);
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

struct BlockedScratch {
  std::vector<float> qt, st, ot, m, l, alpha, k, v;
  std::vector<int32_t> kend;
};

void tile_many_queries(const AttnTile& t) {
  const int64_t hd = t.head_dim;
  const int64_t nq = t.nq;
  const int64_t nqp = (nq + 7) / 8 * 8;  // queries padded to whole vectors
  thread_local BlockedScratch s;
  auto grow = [](auto& vec, int64_t n) {
    if (int64_t(vec.size()) < n) vec.resize(n);
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
  float* st = s.st.data();
  float* ot = s.ot.data();
  // The scale is folded into the queries; padded queries are zero and see no key.
  int64_t end_all = t.t_begin;
  for (int64_t j = 0; j < nqp; ++j) {
    const bool real = j < nq;
    for (int64_t d = 0; d < hd; ++d) qt[d * nqp + j] = real ? t.q[j][d] * t.scale : 0.0f;
    const int64_t end = real ? std::min(t.t_end, t.key_end[j]) : 0;
    s.kend[j] = int32_t(std::max<int64_t>(end - t.t_begin, 0));  // relative to t_begin
    end_all = std::max(end_all, end);
    s.m[j] = -INFINITY;
    s.l[j] = 0.0f;
  }
  std::fill(ot, ot + hd * nqp, 0.0f);
  // Blocks wholly below every real query's limit need no mask (padded queries may score
  // anything: their results are dropped).
  int32_t kend_min = INT32_MAX;
  for (int64_t j = 0; j < nq; ++j) kend_min = std::min(kend_min, s.kend[j]);
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
        for (int64_t r = 0; r < nb; ++r) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(st + r * nqp + j));
      } else {
        for (int64_t r = 0; r < nb; ++r) {
          float* row = st + r * nqp + j;
          const __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(kend, _mm256_set1_epi32(rel0 + int32_t(r))));
          const __m256 sv = _mm256_blendv_ps(neg_inf, _mm256_loadu_ps(row), keep);
          _mm256_storeu_ps(row, sv);
          vmax = _mm256_max_ps(vmax, sv);
        }
      }
      const __m256 m_old = _mm256_loadu_ps(s.m.data() + j);
      const __m256 m_new = _mm256_max_ps(m_old, vmax);
      // A column that has seen no key yet keeps m = -inf; subtract 0 there, not -inf, so the
      // exponentials are e^-inf = 0 rather than NaN.
      const __m256 m_sub = _mm256_blendv_ps(m_new, _mm256_setzero_ps(), _mm256_cmp_ps(m_new, neg_inf, _CMP_EQ_OQ));
      const __m256 alpha = exp_ps(_mm256_sub_ps(m_old, m_sub));
      __m256 sum = _mm256_setzero_ps();
      for (int64_t r = 0; r < nb; ++r) {
        float* row = st + r * nqp + j;
        const __m256 p = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(row), m_sub));
        _mm256_storeu_ps(row, p);
        sum = _mm256_add_ps(sum, p);
      }
      _mm256_storeu_ps(s.l.data() + j, _mm256_fmadd_ps(_mm256_loadu_ps(s.l.data() + j), alpha, sum));
      _mm256_storeu_ps(s.m.data() + j, m_new);
      _mm256_storeu_ps(s.alpha.data() + j, alpha);
    }

    for (j = 0; j + 16 <= nqp; j += 16) pv_columns<2>(ot + j, nqp, hd, s.alpha.data() + j, st + j, nb, vrows);
    if (j < nqp) pv_columns<1>(ot + j, nqp, hd, s.alpha.data() + j, st + j, nb, vrows);
  }

  for (int64_t j = 0; j < nq; ++j) {
    t.m[j] = s.m[j];
    t.l[j] = s.l[j];
    float* acc = t.acc + j * hd;
    for (int64_t d = 0; d < hd; ++d) acc[d] = ot[d * nqp + j];
  }
}

}  // namespace

// Register-blocked GEMMs pay off once a tile has a vector's worth of queries; decode tiles
// (a few query heads per KV head) take the dot-product path.
void attn_tile(const AttnTile& t) {
  if (t.nq >= 8) {
    tile_many_queries(t);
  } else {
    tile_few_queries(t);
  }
}

}  // namespace cromwell::avx2

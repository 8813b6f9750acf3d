// AVX2 attention tile (see attention.h): keys in blocks of kKeyBlock, each block's scores for
// all the tile's queries computed 8 keys at a time, one online-softmax rescale per query per
// block, and the value rows accumulated with the accumulator held in registers.
#include <algorithm>
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

}  // namespace

void attn_tile(const AttnTile& t) {
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

}  // namespace cromwell::avx2

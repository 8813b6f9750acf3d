// AVX-512 attention tile for decode (see attention.h): the few query heads that share a KV
// head against a long cache, as the AVX2 tile does it (keys in blocks of kKeyBlock, one
// online-softmax rescale per query per block) with 16-lane vectors and the 32 registers to
// take every query of a KV head in one group (up to 8: Qwen2.5's 6 and 7, Llama's 4 and 8), so
// each key and value row, half rows converted on the fly, is loaded once for all of them. At a
// long context the AVX2 tile is bound by its multiply-adds and half conversions, not by the
// memory it reads. Tiles of many queries (prefill), or head sizes that are not a multiple of 16,
// go to the AVX2 tile.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../attention.h"
#include "../avx2/math_avx2.h"
#include "../avx2/simd_helpers.h"

namespace cromwell::avx512 {
namespace {

using avx2::exp_ps;
using avx2::hmax_float_8;
using avx2::hsum_float_8;

constexpr int64_t kKeyBlock = 64;
constexpr int kMaxGroup = 8;  // queries of one KV head taken together

inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// Sum of the lanes of up to 4 vectors, as the 4 lanes of one 128-bit vector.
inline __m128 hsum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3) {
  auto half = [](__m512 a) {
    return _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
  };
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(half(a0), half(a1)), _mm256_hadd_ps(half(a2), half(a3)));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// sc[j][0 .. 4) = q_j . rows[r] for KR (<= 4) rows and JQ queries (lanes >= KR: junk); hd a
// multiple of 16.
template <int JQ, int KR, typename T>
inline void qk_group(const float* const* q, const T* const* rows, int64_t hd, float* const* sc) {
  __m512 acc[JQ][KR];
  for (int j = 0; j < JQ; ++j)
    for (int r = 0; r < KR; ++r) acc[j][r] = _mm512_setzero_ps();
  for (int64_t i = 0; i < hd; i += 16) {
    __m512 k[KR];
    for (int r = 0; r < KR; ++r) k[r] = load16(rows[r] + i);
    for (int j = 0; j < JQ; ++j) {
      const __m512 qv = _mm512_loadu_ps(q[j] + i);
      for (int r = 0; r < KR; ++r) acc[j][r] = _mm512_fmadd_ps(qv, k[r], acc[j][r]);
    }
  }
  const __m512 zero = _mm512_setzero_ps();
  for (int j = 0; j < JQ; ++j) {
    _mm_storeu_ps(sc[j], hsum4(acc[j][0], KR > 1 ? acc[j][KR > 1 ? 1 : 0] : zero,
                               KR > 2 ? acc[j][KR > 2 ? 2 : 0] : zero, KR > 3 ? acc[j][KR > 3 ? 3 : 0] : zero));
  }
}

// acc_j[d .. d + 16 DV) = acc_j * alpha_j + sum_t p_j[t] * vrows[t][d ..], for JQ queries.
template <int JQ, int DV, typename T>
inline void pv_group(float* const* acc, const float* alpha, const float* const* p,
                     const T* const* vrows, int64_t cnt, int64_t d) {
  __m512 c[JQ][DV];
  for (int j = 0; j < JQ; ++j) {
    const __m512 a = _mm512_set1_ps(alpha[j]);
    for (int v = 0; v < DV; ++v) c[j][v] = _mm512_mul_ps(_mm512_loadu_ps(acc[j] + d + 16 * v), a);
  }
  for (int64_t t = 0; t < cnt; ++t) {
    __m512 vv[DV];
    for (int v = 0; v < DV; ++v) vv[v] = load16(vrows[t] + d + 16 * v);
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
                       const T* const* vrows, int64_t cnt, int64_t hd) {
  constexpr int DV = JQ <= 6 ? 4 : 3;
  int64_t d = 0;
  for (; d + 16 * DV <= hd; d += 16 * DV) pv_group<JQ, DV, T>(acc, alpha, p, vrows, cnt, d);
  switch ((hd - d) / 16) {
    case 3: pv_group<JQ, 3, T>(acc, alpha, p, vrows, cnt, d); break;
    case 2: pv_group<JQ, 2, T>(acc, alpha, p, vrows, cnt, d); break;
    case 1: pv_group<JQ, 1, T>(acc, alpha, p, vrows, cnt, d); break;
    default: break;
  }
}

template <typename T>
inline void prefetch_kv_row(const T* k, const T* v, int64_t hd) {
  const int64_t bytes = hd * int64_t(sizeof(T));
  for (int64_t b = 0; b < bytes; b += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(k) + b, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(v) + b, _MM_HINT_T0);
  }
}

// One key block for a group of JQ queries: scores, online-softmax update, value accumulation.
template <int JQ, typename T>
void few_block(const AttnTile& t, const int64_t* qidx, int64_t t0, int64_t nb, const T* const* krows,
               const T* const* vrows, float* scores) {
  constexpr int KR = JQ <= 6 ? 4 : 3;
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
  // The next block's rows of this head are requested while this block's scores are computed:
  // strided as they are (the other heads' rows lie between them), the hardware prefetcher
  // does not fetch them in time. Past the cache's end a prefetch never faults.
  const int64_t ahead = kKeyBlock * t.kv_stride;
  float* out[JQ];
  for (int64_t r = 0; r < cnt_max; r += KR) {  // rows past the block end are padded valid rows
    for (int64_t i = r; i < r + KR && i < cnt_max; ++i) prefetch_kv_row(krows[i] + ahead, vrows[i] + ahead, hd);
    for (int j = 0; j < JQ; ++j) out[j] = sc[j] + r;
    qk_group<JQ, KR, T>(q, krows + r, hd, out);
  }
  const int64_t cnt8 = (cnt_max + 7) / 8 * 8;
  const __m256 vscale = _mm256_set1_ps(t.scale);
  float alpha[JQ];
  for (int j = 0; j < JQ; ++j) {
    for (int64_t r = cnt[j]; r < cnt8; ++r) sc[j][r] = -INFINITY;  // past this query's limit
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    for (int64_t r = 0; r < cnt8; r += 8) {
      const __m256 sv = _mm256_mul_ps(_mm256_loadu_ps(sc[j] + r), vscale);
      _mm256_storeu_ps(sc[j] + r, sv);
      vmax = _mm256_max_ps(vmax, sv);
    }
    const int64_t qi = qidx[j];
    const float m_old = t.m[qi];
    const float m_new = std::max(m_old, hmax_float_8(vmax));
    // Subtract 0 rather than -inf while a query has seen no key, so e^(s - m) is 0, not NaN.
    const float m_sub = m_new == -INFINITY ? 0.0f : m_new;
    alpha[j] = std::exp(m_old - m_sub);
    const __m256 vm = _mm256_set1_ps(m_sub);
    __m256 vsum = _mm256_setzero_ps();
    for (int64_t r = 0; r < cnt8; r += 8) {
      const __m256 pr = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(sc[j] + r), vm));
      _mm256_storeu_ps(sc[j] + r, pr);
      vsum = _mm256_add_ps(vsum, pr);
    }
    t.l[qi] = t.l[qi] * alpha[j] + hsum_float_8(vsum);
    t.m[qi] = m_new;
  }
  const float* p[JQ];
  for (int j = 0; j < JQ; ++j) p[j] = sc[j];
  pv_columns<JQ, T>(acc, alpha, p, vrows, cnt_max, hd);
}

template <typename T>
void tile_few_queries(const AttnTile& t) {
  const int64_t hd = t.head_dim;
  thread_local std::vector<float> scores(kMaxGroup * (kKeyBlock + 8));
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
  const int64_t heads = t.kv_heads > 1 ? t.kv_heads : 1;
  const int64_t per_head = heads > 1 ? t.group : t.nq;  // queries per KV head
  for (int64_t r = t.t_begin; r < std::min(end_all, t.t_begin + kKeyBlock); ++r) {
    prefetch_kv_row(kbase + r * t.kv_stride, vbase + r * t.kv_stride, heads * hd);
  }
  for (int64_t t0 = t.t_begin; t0 < end_all; t0 += kKeyBlock) {
    const int64_t nb = std::min(kKeyBlock, end_all - t0);
    for (int64_t h = 0; h < heads; ++h) {  // every KV head of this block while its rows are near
      for (int64_t r = 0; r < nb; ++r) {
        krows[r] = kbase + (t0 + r) * t.kv_stride + h * hd;
        vrows[r] = vbase + (t0 + r) * t.kv_stride + h * hd;
      }
      for (int64_t r = nb; r < kKeyBlock + 8; ++r) krows[r] = krows[nb - 1];  // score padding
      int64_t idx[kMaxGroup];
      for (int64_t j = 0; j < per_head; j += kMaxGroup) {
        const int64_t take = std::min<int64_t>(kMaxGroup, per_head - j);
        for (int64_t i = 0; i < take; ++i) idx[i] = h * per_head + j + i;
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
      }
    }
  }
}

}  // namespace

// The decode shape (a few queries a KV head) on 16-lane vectors; the rest on the AVX2 tile.
void attn_tile(const AttnTile& t) {
  const bool many = t.nq >= 8 && t.kv_heads <= 1;
  if (many || t.head_dim % 16 != 0) return avx2::attn_tile(t);
  if (t.f16) return tile_few_queries<uint16_t>(t);
  tile_few_queries<float>(t);
}

}  // namespace cromwell::avx512

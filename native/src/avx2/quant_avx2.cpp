// AVX2 row conversions: weights to float (the matrix-matrix kernel unpacks weight tiles with
// these) and activations to the 8-bit blocks the integer dot products consume.
#include <cmath>

#include "../quant.h"
#include "quant_simd.h"
#include "simd_helpers.h"

namespace cromwell::avx2 {
namespace {

__m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

float max_abs(const float* x, int n) {  // n a multiple of 8
  __m256 m = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 8) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(x + i)));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

void dequant_f16(const uint16_t* x, float* y, int64_t k) {
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  }
  for (; i < k; ++i) y[i] = half_to_float(x[i]);
}

void dequant_bf16(const uint16_t* x, float* y, int64_t k) {
  int64_t i = 0;
  for (; i + 8 <= k; i += 8) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
  for (; i < k; ++i) y[i] = bf16_to_fp32(x[i]);
}

// 32 signed bytes -> floats q d + m, stored in order; the first 16 with d_first, the rest with
// d_second (q6_K's scales change every 16 values).
void store_scaled_i8(__m256i q, __m256 d_first, __m256 d_second, __m256 m, float* y) {
  const __m128i lo = _mm256_castsi256_si128(q);
  const __m128i hi = _mm256_extracti128_si256(q, 1);
  _mm256_storeu_ps(y + 0, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d_first, m));
  _mm256_storeu_ps(y + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), d_first, m));
  _mm256_storeu_ps(y + 16, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d_second, m));
  _mm256_storeu_ps(y + 24, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), d_second, m));
}

void store_scaled_i8(__m256i q, __m256 d, __m256 m, float* y) { store_scaled_i8(q, d, d, m, y); }

void dequant_q8_0(const block_q8_0* x, float* y, int64_t k) {
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t b = 0; b < k / QK; ++b, y += QK) {
    store_scaled_i8(load_256(x[b].qs), _mm256_set1_ps(half_to_float(x[b].d)), zero, y);
  }
}

void dequant_q4_0(const block_q4_0* x, float* y, int64_t k) {
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t b = 0; b < k / QK; ++b, y += QK) {
    const __m256i q = _mm256_sub_epi8(nibbles_lo_then_hi(x[b].qs), _mm256_set1_epi8(8));
    store_scaled_i8(q, _mm256_set1_ps(half_to_float(x[b].d)), zero, y);
  }
}

void dequant_q4_1(const block_q4_1* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK; ++b, y += QK) {
    store_scaled_i8(nibbles_lo_then_hi(x[b].qs), _mm256_set1_ps(half_to_float(x[b].d)),
                    _mm256_set1_ps(half_to_float(x[b].m)), y);
  }
}

void dequant_q5_0(const block_q5_0* x, float* y, int64_t k) {
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t b = 0; b < k / QK; ++b, y += QK) {
    const __m256i q = _mm256_sub_epi8(q5_values(x[b].qs, x[b].qh), _mm256_set1_epi8(16));
    store_scaled_i8(q, _mm256_set1_ps(half_to_float(x[b].d)), zero, y);
  }
}

void dequant_q5_1(const block_q5_1* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK; ++b, y += QK) {
    store_scaled_i8(q5_values(x[b].qs, x[b].qh), _mm256_set1_ps(half_to_float(x[b].d)),
                    _mm256_set1_ps(half_to_float(x[b].m)), y);
  }
}

// q4_K / q5_K: per group of 64 (q45_K_group), each value d scale_j q - dmin min_j.
template <bool kQ5>
void dequant_q45_K(const void* blocks, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK_K; ++b) {
    const uint8_t *q, *scales;
    fp16_t d16, dmin16;
    __m256i qh = _mm256_setzero_si256();
    if constexpr (kQ5) {
      const block_q5_K& blk = static_cast<const block_q5_K*>(blocks)[b];
      q = blk.qs, scales = blk.scales, d16 = blk.d, dmin16 = blk.dmin;
      qh = load_256(blk.qh);
    } else {
      const block_q4_K& blk = static_cast<const block_q4_K*>(blocks)[b];
      q = blk.qs, scales = blk.scales, d16 = blk.d, dmin16 = blk.dmin;
    }
    const float d = half_to_float(d16), dmin = half_to_float(dmin16);
    for (int g = 0; g < 4; ++g, q += 32, y += 64) {
      __m256i lo, hi;
      q45_K_group<kQ5>(q, &qh, &lo, &hi);
      uint8_t sc, m;
      k_scale_min(2 * g, scales, &sc, &m);
      store_scaled_i8(lo, _mm256_set1_ps(d * float(sc)), _mm256_set1_ps(-(dmin * float(m))), y);
      k_scale_min(2 * g + 1, scales, &sc, &m);
      store_scaled_i8(hi, _mm256_set1_ps(d * float(sc)), _mm256_set1_ps(-(dmin * float(m))), y + 32);
    }
  }
}

// q6_K: per half of 128, four runs of 32 (q6_K_runs), each value d scale (q - 32); a run's first
// 16 values take scale 2 s, the next 16 scale 2 s + 1.
void dequant_q6_K(const block_q6_K* x, float* y, int64_t k) {
  const __m256i offset = _mm256_set1_epi8(32);
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t b = 0; b < k / QK_K; ++b) {
    const float d = half_to_float(x[b].d);
    const uint8_t* ql = x[b].ql;
    const uint8_t* qh = x[b].qh;
    const int8_t* sc = x[b].scales;
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, y += 128) {
      __m256i q[4];
      q6_K_runs(ql, qh, q);
      for (int s = 0; s < 4; ++s) {
        store_scaled_i8(_mm256_sub_epi8(q[s], offset), _mm256_set1_ps(d * float(sc[2 * s])),
                        _mm256_set1_ps(d * float(sc[2 * s + 1])), zero, y + 32 * s);
      }
    }
  }
}

}  // namespace

void dequantize_row(Format f, const void* x, float* y, int64_t k) {
  switch (f) {
    case Format::F16: dequant_f16(static_cast<const uint16_t*>(x), y, k); return;
    case Format::BF16: dequant_bf16(static_cast<const uint16_t*>(x), y, k); return;
    case Format::Q8_0: dequant_q8_0(static_cast<const block_q8_0*>(x), y, k); return;
    case Format::Q4_0: dequant_q4_0(static_cast<const block_q4_0*>(x), y, k); return;
    case Format::Q4_1: dequant_q4_1(static_cast<const block_q4_1*>(x), y, k); return;
    case Format::Q5_0: dequant_q5_0(static_cast<const block_q5_0*>(x), y, k); return;
    case Format::Q5_1: dequant_q5_1(static_cast<const block_q5_1*>(x), y, k); return;
    case Format::Q4_K: dequant_q45_K<false>(x, y, k); return;
    case Format::Q5_K: dequant_q45_K<true>(x, y, k); return;
    case Format::Q6_K: dequant_q6_K(static_cast<const block_q6_K*>(x), y, k); return;
    default: ref::dequantize_row(f, x, y, k); return;  // F32: a copy
  }
}

void quantize_row_q8a(const float* x, block_q8a* y, int64_t k) {
  for (int64_t b = 0; b < k / QK; ++b, x += QK) {
    const float d = max_abs(x, QK) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m256 vid = _mm256_set1_ps(id);
    __m256i sum32;
    const __m256i q = round_pack_i8(
        _mm256_mul_ps(_mm256_loadu_ps(x), vid), _mm256_mul_ps(_mm256_loadu_ps(x + 8), vid),
        _mm256_mul_ps(_mm256_loadu_ps(x + 16), vid), _mm256_mul_ps(_mm256_loadu_ps(x + 24), vid),
        &sum32);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs), q);
    y[b].d = d;
    y[b].s = d * float(hsum_i32_8(sum32));
  }
}

void quantize_row_q8_K(const float* x, block_q8_K* y, int64_t k) {
  for (int64_t b = 0; b < k / QK_K; ++b, x += QK_K) {
    const float d = max_abs(x, QK_K) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m256 vid = _mm256_set1_ps(id);
    for (int j = 0; j < QK_K; j += 32) {
      __m256i sum32;
      const float* xj = x + j;
      const __m256i q = round_pack_i8(
          _mm256_mul_ps(_mm256_loadu_ps(xj), vid), _mm256_mul_ps(_mm256_loadu_ps(xj + 8), vid),
          _mm256_mul_ps(_mm256_loadu_ps(xj + 16), vid), _mm256_mul_ps(_mm256_loadu_ps(xj + 24), vid),
          &sum32);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs + j), q);
    }
    for (int j = 0; j < QK_K / 16; ++j) {
      // sum of 16 bytes: widen to int16 and add pairs
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(y[b].qs + 16 * j));
      y[b].bsums[j] = int16_t(hsum_i32_8(sum_pairs_i16(_mm256_cvtepi8_epi16(v))));
    }
    y[b].d = d;
  }
}

}  // namespace cromwell::avx2

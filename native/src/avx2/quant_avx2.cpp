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

// Signed bytes -> 4 x 8 floats scaled by d, stored in order.
void store_scaled_i8(__m256i q, __m256 d, __m256 m, float* y) {
  const __m128i lo = _mm256_castsi256_si128(q);
  const __m128i hi = _mm256_extracti128_si256(q, 1);
  _mm256_storeu_ps(y + 0, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d, m));
  _mm256_storeu_ps(y + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), d, m));
  _mm256_storeu_ps(y + 16, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d, m));
  _mm256_storeu_ps(y + 24, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), d, m));
}

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
    default: ref::dequantize_row(f, x, y, k); return;  // F32 is a copy; k-quants: scalar unpack
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

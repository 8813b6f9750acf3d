// Small named AVX2 helpers. Include only from translation units under avx2/: they are compiled
// with -mavx2 -mfma -mf16c, and everything here is static inline so no AVX2 instruction can leak
// into the portable code through a shared inline definition.
#pragma once
#include <immintrin.h>

namespace cromwell::avx2 {

// Sum of the 8 lanes.
static inline float hsum_float_8(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  const __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  __m128 shuf = _mm_movehdup_ps(lo);
  __m128 sums = _mm_add_ps(lo, shuf);
  shuf = _mm_movehl_ps(shuf, sums);
  sums = _mm_add_ss(sums, shuf);
  return _mm_cvtss_f32(sums);
}

}  // namespace cromwell::avx2

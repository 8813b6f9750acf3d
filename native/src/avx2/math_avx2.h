// Vectorised transcendental helpers for the AVX2 kernels (softmax, SiLU, GELU, attention).
// Include only from translation units under avx2/; everything is static inline (see
// simd_helpers.h for why).
#pragma once
#include <immintrin.h>

namespace cromwell::avx2 {

// e^x on 8 lanes, Cephes-style: x = n ln2 + r with |r| <= ln2/2 (ln2 split in a high and a low
// part so r is exact), e^r by a degree-6 polynomial, 2^n built in the exponent bits. Relative
// error <= 2 ulp over [-87.3, 88] (checked against exp in the tests); below -87.3 the result
// is 0 (so -inf gives 0), above 88 it saturates at e^88 ~ 1.7e38 instead of overflowing.
static inline __m256 exp_ps(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.0f);
  const __m256 lo = _mm256_set1_ps(-87.3365479f);  // smallest x whose e^x is a normal float
  const __m256 underflow = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  // n = round(x / ln2) by the 1.5 * 2^23 trick: adding it leaves n in the low mantissa bits,
  // which also gives 2^n below by one shift of the same bits.
  const __m256 magic = _mm256_set1_ps(12582912.0f);
  const __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
  const __m256 n = _mm256_sub_ps(t, magic);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 r2 = _mm256_mul_ps(r, r);
  p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // n is in [-126, 127] after the clamps, so (n + 127) << 23 is a valid exponent field.
  const __m256i bits = _mm256_slli_epi32(_mm256_castps_si256(t), 23);
  const __m256 pow2n = _mm256_castsi256_ps(_mm256_add_epi32(bits, _mm256_set1_epi32(127 << 23)));
  return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, pow2n));
}

// 1 / d for d >= 1 (finite): the 12-bit hardware estimate and one Newton step, ~1 ulp - a
// third of the cost of a division, which is what bounds the activations otherwise.
static inline __m256 recip_ge1_ps(__m256 d) {
  const __m256 r = _mm256_rcp_ps(d);
  return _mm256_mul_ps(r, _mm256_fnmadd_ps(d, r, _mm256_set1_ps(2.0f)));
}

// SiLU x * sigmoid(x) = x / (1 + e^-x); for very negative x, e^-x saturates (~2^127, never
// inf) and the quotient goes smoothly to -0.
static inline __m256 silu_ps(__m256 x) {
  const __m256 e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), x));
  return _mm256_mul_ps(x, recip_ge1_ps(_mm256_add_ps(_mm256_set1_ps(1.0f), e)));
}

// Exact (erf) GELU: x * Phi(x), Phi(x) = erfc(-x / sqrt2) / 2. erfc(|z|) by Abramowitz & Stegun
// 7.1.26 (|error| <= 1.5e-7 absolute), so Phi is accurate to ~1e-7 absolute and the tail x < 0
// is computed directly as erfc/2 rather than as 1 - (something close to 1).
static inline __m256 gelu_ps(__m256 x) {
  const __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 az = _mm256_andnot_ps(sign_mask, z);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 t = recip_ge1_ps(_mm256_fmadd_ps(_mm256_set1_ps(0.3275911f), az, one));
  __m256 p = _mm256_set1_ps(1.061405429f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.453152027f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.421413741f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.284496736f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.254829592f));
  p = _mm256_mul_ps(p, t);
  const __m256 minus_z2 = _mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(az, az));
  const __m256 half_erfc = _mm256_mul_ps(_mm256_set1_ps(0.5f), _mm256_mul_ps(p, exp_ps(minus_z2)));
  // x >= 0: Phi = 1 - erfc(|z|)/2; x < 0: Phi = erfc(|z|)/2.
  const __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
  const __m256 phi = _mm256_blendv_ps(_mm256_sub_ps(one, half_erfc), half_erfc, neg);
  return _mm256_mul_ps(x, phi);
}

// Largest of the 8 lanes.
static inline float hmax_float_8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// The 8 lane sums of 8 vectors, as one vector: out[i] = sum of the lanes of v[i].
static inline __m256 hsum8_transposed(__m256 v0, __m256 v1, __m256 v2, __m256 v3, __m256 v4,
                                      __m256 v5, __m256 v6, __m256 v7) {
  const __m256 s01 = _mm256_hadd_ps(v0, v1);
  const __m256 s23 = _mm256_hadd_ps(v2, v3);
  const __m256 s45 = _mm256_hadd_ps(v4, v5);
  const __m256 s67 = _mm256_hadd_ps(v6, v7);
  const __m256 s0123 = _mm256_hadd_ps(s01, s23);  // [0 1 2 3 | 0 1 2 3] (low / high halves)
  const __m256 s4567 = _mm256_hadd_ps(s45, s67);
  return _mm256_add_ps(_mm256_permute2f128_ps(s0123, s4567, 0x20),
                       _mm256_permute2f128_ps(s0123, s4567, 0x31));
}

// Loads of the first n (< 8) floats, the rest of the lanes being `fill`.
static inline __m256 load_partial_ps(const float* p, int n, float fill) {
  alignas(32) float buf[8];
  for (int i = 0; i < 8; ++i) buf[i] = i < n ? p[i] : fill;
  return _mm256_load_ps(buf);
}

static inline void store_partial_ps(float* p, __m256 v, int n) {
  alignas(32) float buf[8];
  _mm256_store_ps(buf, v);
  for (int i = 0; i < n; ++i) p[i] = buf[i];
}

// 8 halves -> 8 floats (F16C).
static inline __m256 load_f16_ps(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

}  // namespace cromwell::avx2

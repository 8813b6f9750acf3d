// AVX2 matrix kernels: the per-format kernel tables behind matrix-vector (float dot products
// here; the integer formats' rows kernels against quantized activations, as llama.cpp computes
// them, in matvec_rows.h and kquant_dot.h), and a cache-blocked 6x16 FMA kernel for
// matrix-matrix products, which unpacks each tile of weights to float once and reuses it across
// every activation row.
#include <cstring>

#include "../matmul.h"
#include "gemm_tiles.h"
#include "kquant_dot.h"
#include "quant_simd.h"
#include "simd_helpers.h"

namespace cromwell::avx2 {
namespace {

// --- float weights against float activations ---

float dot_f32_w(int64_t k, const void* w, const void* x) {
  const float* a = static_cast<const float*>(w);
  const float* b = static_cast<const float*>(x);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    for (int u = 0; u < 4; ++u) {
      acc[u] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * u), _mm256_loadu_ps(b + i + 8 * u), acc[u]);
    }
  }
  for (; i + 8 <= k; i += 8) acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc[0]);
  float sum = hsum_float_8(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < k; ++i) sum += a[i] * b[i];
  return sum;
}

static inline __m256 load_f16_8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
static inline __m256 load_bf16_8(const uint16_t* p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

template <bool kBf16>
float dot_half_w(int64_t k, const void* w, const void* x) {
  const uint16_t* a = static_cast<const uint16_t*>(w);
  const float* b = static_cast<const float*>(x);
  auto load = [](const uint16_t* p) { return kBf16 ? load_bf16_8(p) : load_f16_8(p); };
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    for (int u = 0; u < 4; ++u) {
      acc[u] = _mm256_fmadd_ps(load(a + i + 8 * u), _mm256_loadu_ps(b + i + 8 * u), acc[u]);
    }
  }
  for (; i + 8 <= k; i += 8) acc[0] = _mm256_fmadd_ps(load(a + i), _mm256_loadu_ps(b + i), acc[0]);
  float sum = hsum_float_8(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < k; ++i) sum += (kBf16 ? bf16_to_fp32(a[i]) : half_to_float(a[i])) * b[i];
  return sum;
}

// --- matrix-matrix: a cache-blocked kernel over weights unpacked to float ---

constexpr int kMR = 6;     // activation rows per micro-tile
constexpr int kNR = 16;    // weight rows per micro-tile (low2 registers of 8)

// C[MR x nr] (+)= A[MR x kc] B[kc x 16]: A rows lda apart, B packed as 16 weight rows per k.
// Every loop over the MR rows is unrolled so the 2 * MR accumulators live in registers.
template <int MR>
void micro_kernel(int64_t kc, const float* a, int64_t lda, const float* bp, float* c,
                  int64_t ldc, bool accumulate, int nr) {
  __m256 c0[MR], c1[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    c0[i] = _mm256_setzero_ps();
    c1[i] = _mm256_setzero_ps();
  }
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(bp + kNR * p);
    const __m256 b1 = _mm256_load_ps(bp + kNR * p + 8);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i * lda + p);
      c0[i] = _mm256_fmadd_ps(av, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(av, b1, c1[i]);
    }
  }
  if (nr == kNR) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      float* ci = c + i * ldc;
      __m256 lo = c0[i], hi = c1[i];
      if (accumulate) {
        lo = _mm256_add_ps(lo, _mm256_loadu_ps(ci));
        hi = _mm256_add_ps(hi, _mm256_loadu_ps(ci + 8));
      }
      _mm256_storeu_ps(ci, lo);
      _mm256_storeu_ps(ci + 8, hi);
    }
    return;
  }
  alignas(32) float tile[MR * kNR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    _mm256_store_ps(tile + i * kNR, c0[i]);
    _mm256_store_ps(tile + i * kNR + 8, c1[i]);
  }
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    for (int j = 0; j < nr; ++j) ci[j] = accumulate ? ci[j] + tile[i * kNR + j] : tile[i * kNR + j];
  }
}

constexpr gemm::MicroKernel kMicroKernels[kMR + 1] = {
    nullptr, micro_kernel<1>, micro_kernel<2>, micro_kernel<3>, micro_kernel<4>, micro_kernel<5>,
    micro_kernel<6>};

}  // namespace

const FormatKernels& kernels(Format f) {
  static const FormatKernels f32 = {ActFormat::F32, dot_f32_w};
  static const FormatKernels f16 = {ActFormat::F32, dot_half_w<false>};
  static const FormatKernels bf16 = {ActFormat::F32, dot_half_w<true>};
  // The integer formats take their rows through a rows kernel only (vec_dot is never reached).
  static const FormatKernels q8_0 = {ActFormat::Q8A, nullptr, rows_dot_kernel(Format::Q8_0)};
  static const FormatKernels q4_0 = {ActFormat::Q8A, nullptr, rows_dot_kernel(Format::Q4_0)};
  static const FormatKernels q4_1 = {ActFormat::Q8A, nullptr, rows_dot_kernel(Format::Q4_1)};
  static const FormatKernels q5_0 = {ActFormat::Q8A, nullptr, rows_dot_kernel(Format::Q5_0)};
  static const FormatKernels q5_1 = {ActFormat::Q8A, nullptr, rows_dot_kernel(Format::Q5_1)};
  static const FormatKernels q4_K = {ActFormat::Q8K, nullptr, kquant_rows_kernel(Format::Q4_K)};
  static const FormatKernels q5_K = {ActFormat::Q8K, nullptr, kquant_rows_kernel(Format::Q5_K)};
  static const FormatKernels q6_K = {ActFormat::Q8K, nullptr, kquant_rows_kernel(Format::Q6_K)};
  switch (f) {
    case Format::F32: return f32;
    case Format::F16: return f16;
    case Format::BF16: return bf16;
    case Format::Q8_0: return q8_0;
    case Format::Q4_0: return q4_0;
    case Format::Q4_1: return q4_1;
    case Format::Q5_0: return q5_0;
    case Format::Q5_1: return q5_1;
    case Format::Q4_K: return q4_K;
    case Format::Q5_K: return q5_K;
    case Format::Q6_K: return q6_K;
  }
  return f32;
}

void matmul(Format f, const void* w, int64_t rows, int64_t k, const float* x, int64_t n, float* y) {
  gemm::matmul_tiles<kMR, kNR>(kMicroKernels, f, w, rows, k, x, n, y);
}

uint64_t stream_read(const uint8_t* p, int64_t n_bytes) {
  __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                    _mm256_setzero_si256()};
  int64_t i = 0;
  for (; i + 128 <= n_bytes; i += 128) {
    for (int u = 0; u < 4; ++u) acc[u] = _mm256_xor_si256(acc[u], load_256(p + i + 32 * u));
  }
  const __m256i all = _mm256_xor_si256(_mm256_xor_si256(acc[0], acc[1]), _mm256_xor_si256(acc[2], acc[3]));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), all);
  uint64_t r = lanes[0] ^ lanes[1] ^ lanes[2] ^ lanes[3];
  for (; i + 8 <= n_bytes; i += 8) {  // the same tail as the scalar version: words, then bytes
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    r ^= v;
  }
  for (; i < n_bytes; ++i) r ^= p[i];
  return r;
}

}  // namespace cromwell::avx2

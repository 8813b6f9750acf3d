// AVX-512 matrix-matrix kernel (prefill, vision): the AVX2 tiled driver (avx2/gemm_tiles.h) with
// a 12 x 32 micro-kernel, 24 accumulators of 16 floats: twice the floats per multiply-add of
// the AVX2 6 x 16 kernel. Chosen at run time only where CPUID and the OS allow AVX-512
// (use_avx512); matrix-vector products stay on AVX2, where memory, not arithmetic, bounds them.
#include <immintrin.h>

#include "../avx2/gemm_tiles.h"
#include "../matmul.h"

namespace cromwell::avx512 {
namespace {

constexpr int kMR = 12;  // activation rows per micro-tile
constexpr int kNR = 32;  // weight rows per micro-tile (two registers of 16)

// C[MR x nr] (+)= A[MR x kc] B[kc x 32] (see gemm::MicroKernel). Every loop over the MR rows is
// unrolled so the 2 * MR accumulators stay in registers; each A element is broadcast straight
// from memory into its multiply-add.
template <int MR>
void micro_kernel(int64_t kc, const float* a, int64_t lda, const float* bp, float* c, int64_t ldc,
                  bool accumulate, int nr) {
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    c0[i] = _mm512_setzero_ps();
    c1[i] = _mm512_setzero_ps();
  }
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(bp + kNR * p);
    const __m512 b1 = _mm512_load_ps(bp + kNR * p + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 av = _mm512_set1_ps(a[i * lda + p]);
      c0[i] = _mm512_fmadd_ps(av, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(av, b1, c1[i]);
    }
  }
  // Columns past nr are masked off: the last panel of a tile may be narrower than 32.
  const __mmask16 m0 = nr >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << nr) - 1);
  const __mmask16 m1 = nr >= 32 ? __mmask16(0xFFFF) : nr <= 16 ? __mmask16(0) : __mmask16((1u << (nr - 16)) - 1);
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    __m512 lo = c0[i], hi = c1[i];
    if (accumulate) {
      lo = _mm512_add_ps(lo, _mm512_maskz_loadu_ps(m0, ci));
      hi = _mm512_add_ps(hi, _mm512_maskz_loadu_ps(m1, ci + 16));
    }
    _mm512_mask_storeu_ps(ci, m0, lo);
    _mm512_mask_storeu_ps(ci + 16, m1, hi);
  }
}

constexpr gemm::MicroKernel kMicroKernels[kMR + 1] = {
    nullptr,          micro_kernel<1>, micro_kernel<2>, micro_kernel<3>,  micro_kernel<4>,
    micro_kernel<5>,  micro_kernel<6>, micro_kernel<7>, micro_kernel<8>,  micro_kernel<9>,
    micro_kernel<10>, micro_kernel<11>, micro_kernel<12>};

}  // namespace

void matmul(Format f, const void* w, int64_t rows, int64_t k, const float* x, int64_t n, float* y) {
  gemm::matmul_tiles<kMR, kNR>(kMicroKernels, f, w, rows, k, x, n, y);
}

}  // namespace cromwell::avx512

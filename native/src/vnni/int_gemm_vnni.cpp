// The integer matrix-matrix product (avx2/int_gemm.h) built with VNNI, each byte multiply-and-sum
// one vpdpbusd. CMake compiles this file twice, as rows_vnni.cpp: with -mavxvnni into namespace
// avxvnni (VEX: 16 registers of 256 bits, so panels of 8 weight rows) and with AVX-512 VNNI into
// avx512vnni (panels of 16 rows in 512-bit registers, 32 of them).
#include "../avx2/int_gemm.h"

#if !CROMWELL_VNNI
#error "int_gemm_vnni.cpp must be built with -mavxvnni or with -mavx512vnni -mavx512vl"
#endif

namespace cromwell::CROMWELL_VNNI_NAMESPACE {

IntGemmKernel int_gemm_kernel() {
#if defined(__AVX512F__)
  // Two panels (32 weight rows) against four activation rows a step (six for the 32-element
  // formats: int_gemm.h's step_rows): each broadcast activation load feeds two
  // multiply-and-sums. Measured on one core of a model-106 Xeon (a loop of the multiplies
  // alone, L1-resident): one panel x 4 rows 110-120 GMAC/s, x 8 rows 130-170, two panels x 4
  // rows about 200; six rows fit the 32 registers only without the per-block float sums, where
  // the scales fold. (One panel x 8 rows in the GEMM itself: Q4_K and Q8_0 1.13-1.3x, but Q6_K
  // 0.88x, whose sub-blocks of 16 leave four multiply steps between two float conversions.)
  return {avx2::int_gemm::gemm_rows_for<avx2::int_gemm::V16, 4, avx2::int_gemm::NoWideRows, 2>, 16};
#else
  return {avx2::int_gemm::gemm_rows_for<avx2::int_gemm::V8, 4>, 8};
#endif
}

}  // namespace cromwell::CROMWELL_VNNI_NAMESPACE

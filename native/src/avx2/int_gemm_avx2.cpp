// The integer matrix-matrix product (avx2/int_gemm.h) on plain AVX2: panels of 8 weight rows,
// each byte multiply-and-sum a vpmaddubsw and a vpmaddwd.
#include "int_gemm.h"

namespace cromwell::avx2 {

IntGemmKernel int_gemm_kernel() { return {int_gemm::gemm_rows_for<int_gemm::V8, 4>, 8}; }

}  // namespace cromwell::avx2

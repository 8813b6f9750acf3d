// The matrix-vector rows kernels (avx2/matvec_rows.h: four rows at a time for the 32-element
// block formats; avx2/kquant_dot.h: the k-quants) built with -mavxvnni: AVX2 with each 8-bit
// multiply-and-sum one vpdpbusd and each 16-bit one vpdpwssd (Intel Alder Lake and Sapphire
// Rapids onwards, AMD Zen 5). Reached only through use_avx_vnni() at run time.
#include "../avx2/kquant_dot.h"
#include "../avx2/matvec_rows.h"

namespace cromwell::avxvnni {

RowsDotFn rows_dot_kernel(Format f) {
  if (RowsDotFn rows = avx2::rows4_kernel(f)) return rows;
  return avx2::kquant_rows_kernel(f);
}

}  // namespace cromwell::avxvnni

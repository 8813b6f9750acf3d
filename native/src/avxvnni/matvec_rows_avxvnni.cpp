// The four-row matrix-vector kernels (avx2/matvec_rows.h) built with -mavxvnni: AVX2 with each
// 8-bit multiply-and-sum one vpdpbusd (Intel Alder Lake and Sapphire Rapids onwards, AMD Zen 5).
// Reached only through use_avx_vnni() at run time.
#include "../avx2/matvec_rows.h"

namespace cromwell::avxvnni {

RowsDotFn rows_dot_kernel(Format f) { return avx2::rows4_kernel(f); }

}  // namespace cromwell::avxvnni

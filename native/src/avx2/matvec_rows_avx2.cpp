// The four-row matrix-vector kernels (matvec_rows.h), built for AVX2.
#include "matvec_rows.h"

namespace cromwell::avx2 {

RowsDotFn rows_dot_kernel(Format f) { return rows4_kernel(f); }

}  // namespace cromwell::avx2

// The matrix-vector rows kernels (avx2/matvec_rows.h: four rows at a time for the 32-element
// block formats; avx2/kquant_dot.h: the k-quants) built with VNNI: AVX2 with each 8-bit
// multiply-and-sum one vpdpbusd and each 16-bit one vpdpwssd. CMake compiles this file twice:
// with -mavxvnni into namespace avxvnni (the VEX form: Intel Alder Lake and Sapphire Rapids
// onwards, AMD Zen 5), and with -mavx512vnni -mavx512vl into avx512vnni (the EVEX form on 256-bit
// registers: Intel Ice Lake and Cascade Lake, AMD Zen 4). Each is reached only through its use_*()
// at run time.
#include "../avx2/kquant_dot.h"
#include "../avx2/matvec_rows.h"

#if !CROMWELL_VNNI
#error "rows_vnni.cpp must be built with -mavxvnni or with -mavx512vnni -mavx512vl"
#endif

namespace cromwell::CROMWELL_VNNI_NAMESPACE {

RowsDotFn rows_dot_kernel(Format f) {
  if (RowsDotFn rows = avx2::rows4_kernel(f)) return rows;
  return avx2::kquant_rows_kernel(f);
}

}  // namespace cromwell::CROMWELL_VNNI_NAMESPACE

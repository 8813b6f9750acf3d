// CPU detection: which instruction sets this machine has, read once with CPUID.
#pragma once
#include <cstdint>

namespace cromwell {

struct CpuFeatures {
  bool sse42 = false;
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool bmi2 = false;
  bool avx512f = false;
  bool avx512vnni = false;
  bool avx_vnni = false;  // the VEX-encoded vpdpbusd on 256-bit registers
  bool amx_int8 = false;  // AMX tiles with the int8 tile multiply (tdpbusd)
  bool os_saves_ymm = false;  // XGETBV: the OS preserves the upper halves of YMM registers
  bool os_saves_zmm = false;  // XGETBV: ... and the opmask and ZMM registers
  int64_t l1d_bytes = 0;
  int64_t l2_bytes = 0;
  int64_t l3_bytes = 0;
  int physical_cores = 1;
  int logical_cores = 1;
};

// Detected once, on first use; the same object afterwards.
const CpuFeatures& cpu_features();

// True when the AVX2+FMA+F16C kernels may run: the CPU has them, the OS saves YMM state and the
// scalar path has not been forced (set_force_scalar, or CROMWELL_FORCE_SCALAR=1 at import).
bool use_avx2();
void set_force_scalar(bool force);
bool force_scalar();

// True where the AVX-512 matrix-matrix kernel may run: use_avx2(), AVX-512 F/BW/DQ/VL on the CPU,
// ZMM state saved by the OS, and not held to AVX2 (set_force_avx2, or CROMWELL_FORCE_AVX2=1 at
// import: to compare with, or to test, the plain AVX2 kernels on such a machine).
bool use_avx512();
void set_force_avx2(bool force);
bool force_avx2();
// True where the matrix-vector kernels may use AVX-VNNI: use_avx2(), AVX-VNNI on the CPU, not
// held to AVX2 (the same switch as for AVX-512), and not turned off (set_no_avx_vnni, or
// CROMWELL_NO_AVX_VNNI=1 at import: to run the AVX-512 VNNI build on a CPU that has both).
bool use_avx_vnni();
void set_no_avx_vnni(bool off);
bool no_avx_vnni();
// True where they may use AVX-512 VNNI instead (on 256-bit registers): use_avx2(), AVX-512
// F/BW/DQ/VL and VNNI on the CPU, ZMM state saved by the OS, not held to AVX2, and not turned
// off (set_no_avx512_vnni, or CROMWELL_NO_AVX512_VNNI=1 at import: to run the AVX-VNNI build of
// the integer matrix-matrix product, where AVX-512 VNNI goes first). AVX-VNNI goes first for
// the matrix-vector kernels where both are there.
bool use_avx512_vnni();
void set_no_avx512_vnni(bool off);
bool no_avx512_vnni();
// True where the integer matrix-matrix product may run on AMX tiles: use_avx512_vnni() (its
// packing and its short tails are that build's), AMX-TILE and AMX-INT8 on the CPU, the tile
// state enabled in XCR0 and granted to this process by the kernel (Linux hands it out on
// request, arch_prctl ARCH_REQ_XCOMP_PERM, made once here), and not turned off (set_no_amx,
// or CROMWELL_NO_AMX=1 at import: to compare with, or to test, the AVX-512 VNNI build).
bool use_amx();
// AMX-INT8 on the CPU and the tile state granted to this process, whatever the switches say.
bool amx_granted();
void set_no_amx(bool off);
bool no_amx();
// True where matrix-matrix products of the quantized formats take the integer kernels (activations
// rounded to 8 bits per block, as in a decode step); false after set_no_int_gemm(true), or with
// CROMWELL_NO_INT_GEMM=1 at import, which sends them through the float kernels over unpacked
// weights instead (to compare with).
bool use_int_gemm();
void set_no_int_gemm(bool off);
// The integer matrix-matrix kernels in use: "amx" (tiles, where use_amx()), "avx512-vnni" (on 512-bit registers, which pays
// here, unlike in the memory-bound matrix-vector kernels), "avx-vnni", "avx2", "scalar", or
// "off" (set_no_int_gemm).
const char* int_gemm_kernel_set();
// The kernel set in use: "avx512" (AVX2 with the AVX-512 matrix-matrix kernel), "avx2" or
// "scalar".
const char* kernel_set();
// The matrix-vector kernels in use: "avx-vnni" or "avx512-vnni" (AVX2 with the rows kernels
// built with that VNNI), "avx2" or "scalar".
const char* matvec_kernel_set();

}  // namespace cromwell

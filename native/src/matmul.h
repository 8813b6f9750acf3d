// Matrix kernels over weights in any Format: matrix-vector (decode), matrix-matrix (prefill,
// vision), row gathers (embeddings), and a streaming read used to measure memory bandwidth.
//
// A weight matrix is `rows` rows of k elements, each row row_bytes(f, k) bytes, back to back.
// Quantized formats multiply against activations quantized once per call to 8-bit blocks
// (block_q8a for Q8_0/Q4_0/Q4_1/Q5_0/Q5_1, block_q8_K for the k-quants), with integer dot products.
#pragma once
#include <cstdint>

#include "quant.h"

namespace cromwell {

// Activation format a weight format's dot product consumes.
enum class ActFormat { F32, Q8A, Q8K };

// One row of weights (k elements) dotted with activations already in the act format.
using VecDotFn = float (*)(int64_t k, const void* w, const void* x);
// n_rows rows of weights, row_stride bytes apart, each dotted with the same activations:
// y[r] = W_r . x. Sharing the activations and the per-block scale work across rows is what
// makes it faster than vec_dot per row; every row's result must not depend on its neighbours.
using RowsDotFn = void (*)(int64_t k, const void* w, int64_t row_stride, int64_t n_rows,
                           const void* x, float* y);

// The kernels for one weight format. Four tables (scalar, AVX2, and AVX2 with the rows kernels
// built with AVX-VNNI or with AVX-512 VNNI) are filled once; kernels_for() returns the one the
// CPU and the force-scalar and force-AVX2 switches allow.
struct FormatKernels {
  ActFormat act;
  VecDotFn vec_dot;  // null where there is a rows kernel: it is then never called
  RowsDotFn vec_dot_rows = nullptr;  // where the format has one; vec_dot per row otherwise
};

// The integer matrix-matrix product (prefill) over weight rows [r0, r1) of a matrix in format f
// (rows row_bytes apart) against n activation rows quantized to the format's act format, every
// quant byte stored plus 128 (xq + i * act_bytes): y[i * ldy + r] = W_r . x_i. One call per
// thread's share of the rows; r0 is a multiple of the kernel's panel_rows. `prepared` is what the
// kernel's prepare made of the same activations (null where it takes none for f and n).
using IntGemmFn = void (*)(Format f, const uint8_t* w, int64_t row_bytes, int64_t k, int64_t r0,
                           int64_t r1, const uint8_t* xq, int64_t act_bytes, int64_t n,
                           const uint8_t* prepared, float* y, int64_t ldy);
// Work on the activations that every thread's share of the rows would otherwise redo (the AMX
// build's regrouped A tiles): its bytes for format f and n rows of k (0: none), and the work for
// activation rows [i0, i1), i0 a multiple of 16, into `out`. The work depends on the
// activations only: every format of one act format that takes it reads the same bytes
// (matmul_group prepares once for all of them).
using IntGemmPreparedBytesFn = int64_t (*)(Format f, int64_t k, int64_t n);
using IntGemmPrepareFn = void (*)(Format f, int64_t k, const uint8_t* xq, int64_t act_bytes, int64_t n,
                                  int64_t i0, int64_t i1, uint8_t* out);
struct IntGemmKernel {
  IntGemmFn rows;
  int64_t panel_rows;  // weight rows the kernel takes at once
  IntGemmPreparedBytesFn prepared_bytes = nullptr;  // null: the kernel prepares nothing
  IntGemmPrepareFn prepare = nullptr;
};
// True for the formats the integer matrix-matrix product takes (those with integer dot products).
bool has_int_gemm(Format f);

namespace ref {
const FormatKernels& kernels(Format f);
// The scalar integer matrix-matrix product: each entry the format's vec_dot, as matvec computes it.
IntGemmKernel int_gemm_kernel();
// y[rows] = W x
void matvec(Format f, const void* w, int64_t rows, int64_t k, const float* x, float* y);
// y[n, rows] = x[n, k] W^T
void matmul(Format f, const void* w, int64_t rows, int64_t k, const float* x, int64_t n, float* y);
uint64_t stream_read(const uint8_t* p, int64_t n_bytes);
}  // namespace ref

namespace avx2 {
const FormatKernels& kernels(Format f);
IntGemmKernel int_gemm_kernel();  // panels of 8 rows, vpmaddubsw
RowsDotFn rows_dot_kernel(Format f);  // null for formats without a multi-row kernel
void matmul(Format f, const void* w, int64_t rows, int64_t k, const float* x, int64_t n, float* y);
uint64_t stream_read(const uint8_t* p, int64_t n_bytes);
}  // namespace avx2

// avx2's rows kernels built with VNNI (vnni/rows_vnni.cpp): with AVX-VNNI, and with AVX-512 VNNI.
// Each also builds the integer matrix-matrix product (vnni/int_gemm_vnni.cpp): with AVX-VNNI on
// panels of 8 rows in 256-bit registers, with AVX-512 VNNI on panels of 16 in 512-bit ones.
namespace avxvnni {
RowsDotFn rows_dot_kernel(Format f);
IntGemmKernel int_gemm_kernel();
}  // namespace avxvnni
namespace avx512vnni {
RowsDotFn rows_dot_kernel(Format f);
IntGemmKernel int_gemm_kernel();
}  // namespace avx512vnni

// The integer matrix-matrix product with its multiply-and-sums on AMX tiles
// (amx/int_gemm_amx.cpp): the AVX-512 VNNI build's panels of 16 rows, 16 activation rows a tile.
namespace avx512amx {
IntGemmKernel int_gemm_kernel();
}  // namespace avx512amx

namespace avx512 {
// The matrix-matrix product on AVX-512 (where use_avx512() allows it); everything else is AVX2.
void matmul(Format f, const void* w, int64_t rows, int64_t k, const float* x, int64_t n, float* y);
}  // namespace avx512

const FormatKernels& kernels_for(Format f);
// The integer matrix-matrix kernel the CPU and the switches allow (see int_gemm_kernel_set).
IntGemmKernel int_gemm_kernel_for();
// Bytes one row of k activations takes in act format a (k a multiple of the block size).
int64_t act_row_bytes(ActFormat a, int64_t k);
// Quantizes one row of activations into act format a (a copy for F32).
void quantize_act_row(ActFormat a, const float* x, void* y, int64_t k);

// The most activation rows `matmul` computes with the decode step's own kernels: each weight
// row read once and dotted with every activation row while in L1, each result bit for bit what
// matvec gives for that row. From one row more, unpacking the weights into the GEMM tiles pays
// (measured crossover for the float tiles: 6 to 10 rows), and their sums differ in the last
// bits. The runtime verifies a speculative draft in chunks of this many rows so that its
// logits are those of decode steps; it reads the number from the extension
// (engine._native.MATMUL_DECODE_ROWS), so this is the only place it is defined.
constexpr int64_t kMatmulDecodeRows = 7;

// Dispatching entry points; they use the shared thread pool and never touch Python.
void matvec(Format f, const void* w, int64_t rows, int64_t k, const float* x, float* y);
void matmul(Format f, const void* w, int64_t rows, int64_t k, const float* x, int64_t n, float* y);
void get_rows(Format f, const void* w, int64_t rows, int64_t k, const int32_t* ids, int64_t n,
              float* y);

// One matrix of a matmul_shared_input call: y[n, rows] = x[n, k] W^T, W in format f.
struct SharedInputMatrix {
  Format f;
  const void* w;
  int64_t rows;
  float* y;
};
// Matrices one matmul_shared_input job covers (more are taken in groups of this many).
constexpr int kMaxSharedInput = 8;
// y_i = x W_i^T for matrices of k columns that read the same n activation
// rows (a layer's query, key and value projections; its gate and up projections), formats mixed
// freely. Every result row is bit for bit what matvec gives for that activation row, whatever n
// (the integer dot products for every n, as a decode step computes them: a speculative draft's
// few tokens are verified exactly as decoding would compute them, each weight row dotted with
// all n rows while in L1). x is quantized once per activation format and one pool job covers
// all the matrices' rows, where a matvec per matrix quantizes x and hands the threads a job
// once per matrix.
void matmul_shared_input(const SharedInputMatrix* m, int count, int64_t k, const float* x,
                         int64_t n);
// y_i = x W_i^T for up to kMaxSharedInput matrices that read the same n activation rows, each
// result exactly what `matmul` gives for that matrix alone (prefill: a layer's query, key and
// value projections; its gate and up projections). On the integer kernels x is quantized and
// prepared once per activation format and one pool job covers every matrix's panels, where a
// matmul per matrix repeats both and hands the threads a short job for a small matrix (a key
// projection of 256 rows is 16 panels).
void matmul_group(const SharedInputMatrix* m, int count, int64_t k, const float* x, int64_t n);
// Reads n_bytes with wide loads split over the pool; returns a checksum so nothing is elided.
uint64_t stream_read(const uint8_t* p, int64_t n_bytes);

}  // namespace cromwell

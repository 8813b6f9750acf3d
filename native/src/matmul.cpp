// Scalar reference dot products for every weight format, the drivers that split matrix work
// over the thread pool, and the dispatch between the scalar and AVX2 tables.
#include "matmul.h"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstring>
#include <vector>

#include "cpu_features.h"
#include "threadpool.h"

namespace cromwell {
namespace {

// --- scalar dot products: integer sums per block, as the SIMD versions compute them ---

float dot_f32_w(int64_t k, const void* w, const void* x) {
  const float* a = static_cast<const float*>(w);
  const float* b = static_cast<const float*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < k; ++i) sum += a[i] * b[i];
  return sum;
}

float dot_f16_w(int64_t k, const void* w, const void* x) {
  const fp16_t* a = static_cast<const fp16_t*>(w);
  const float* b = static_cast<const float*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < k; ++i) sum += fp16_to_fp32(a[i]) * b[i];
  return sum;
}

float dot_bf16_w(int64_t k, const void* w, const void* x) {
  const bf16_t* a = static_cast<const bf16_t*>(w);
  const float* b = static_cast<const float*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < k; ++i) sum += bf16_to_fp32(a[i]) * b[i];
  return sum;
}

float dot_q8_0(int64_t k, const void* w, const void* x) {
  const block_q8_0* a = static_cast<const block_q8_0*>(w);
  const block_q8a* b = static_cast<const block_q8a*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < k / QK; ++i) {
    int s = 0;
    for (int j = 0; j < QK; ++j) s += int(a[i].qs[j]) * int(b[i].qs[j]);
    sum += fp16_to_fp32(a[i].d) * b[i].d * float(s);
  }
  return sum;
}

float dot_q4_0(int64_t k, const void* w, const void* x) {
  const block_q4_0* a = static_cast<const block_q4_0*>(w);
  const block_q8a* b = static_cast<const block_q8a*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < k / QK; ++i) {
    int s = 0;
    for (int j = 0; j < QK / 2; ++j) {
      s += (int(a[i].qs[j] & 0x0f) - 8) * int(b[i].qs[j]);
      s += (int(a[i].qs[j] >> 4) - 8) * int(b[i].qs[j + QK / 2]);
    }
    sum += fp16_to_fp32(a[i].d) * b[i].d * float(s);
  }
  return sum;
}

float dot_q4_1(int64_t k, const void* w, const void* x) {
  const block_q4_1* a = static_cast<const block_q4_1*>(w);
  const block_q8a* b = static_cast<const block_q8a*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < k / QK; ++i) {
    int s = 0;
    for (int j = 0; j < QK / 2; ++j) {
      s += int(a[i].qs[j] & 0x0f) * int(b[i].qs[j]);
      s += int(a[i].qs[j] >> 4) * int(b[i].qs[j + QK / 2]);
    }
    // (q d + m) . x = d dx sum(q qx) + m (dx sum(qx)), the last factor precomputed as s
    sum += fp16_to_fp32(a[i].d) * b[i].d * float(s) + fp16_to_fp32(a[i].m) * b[i].s;
  }
  return sum;
}

float dot_q5_0(int64_t k, const void* w, const void* x) {
  const block_q5_0* a = static_cast<const block_q5_0*>(w);
  const block_q8a* b = static_cast<const block_q8a*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < k / QK; ++i) {
    uint32_t qh;
    std::memcpy(&qh, a[i].qh, 4);
    int s = 0;
    for (int j = 0; j < QK / 2; ++j) {
      const int q0 = (a[i].qs[j] & 0x0f) | int(((qh >> j) & 1u) << 4);
      const int q1 = (a[i].qs[j] >> 4) | int(((qh >> (j + QK / 2)) & 1u) << 4);
      s += (q0 - 16) * int(b[i].qs[j]) + (q1 - 16) * int(b[i].qs[j + QK / 2]);
    }
    sum += fp16_to_fp32(a[i].d) * b[i].d * float(s);
  }
  return sum;
}

float dot_q5_1(int64_t k, const void* w, const void* x) {
  const block_q5_1* a = static_cast<const block_q5_1*>(w);
  const block_q8a* b = static_cast<const block_q8a*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < k / QK; ++i) {
    uint32_t qh;
    std::memcpy(&qh, a[i].qh, 4);
    int s = 0;
    for (int j = 0; j < QK / 2; ++j) {
      const int q0 = (a[i].qs[j] & 0x0f) | int(((qh >> j) & 1u) << 4);
      const int q1 = (a[i].qs[j] >> 4) | int(((qh >> (j + QK / 2)) & 1u) << 4);
      s += q0 * int(b[i].qs[j]) + q1 * int(b[i].qs[j + QK / 2]);
    }
    // as q4_1: the offset m multiplies the activation block's precomputed sum
    sum += fp16_to_fp32(a[i].d) * b[i].d * float(s) + fp16_to_fp32(a[i].m) * b[i].s;
  }
  return sum;
}

// Sum over the eight sub-blocks of min_j * (sum of the 32 activations of sub-block j).
int k_mins_dot(const uint8_t* scales, const int16_t* bsums) {
  int s = 0;
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    k_scale_min(j, scales, &sc, &m);
    s += int(m) * (int(bsums[2 * j]) + int(bsums[2 * j + 1]));
  }
  return s;
}

float dot_q4_K(int64_t k, const void* w, const void* x) {
  const block_q4_K* a = static_cast<const block_q4_K*>(w);
  const block_q8_K* b = static_cast<const block_q8_K*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < k / QK_K; ++i) {
    const uint8_t* q = a[i].qs;
    const int8_t* qx = b[i].qs;
    int s = 0;
    for (int g = 0; g < 4; ++g, q += 32, qx += 64) {
      uint8_t sc1, sc2, m;
      k_scale_min(2 * g, a[i].scales, &sc1, &m);
      k_scale_min(2 * g + 1, a[i].scales, &sc2, &m);
      int s1 = 0, s2 = 0;
      for (int l = 0; l < 32; ++l) {
        s1 += int(q[l] & 0x0f) * int(qx[l]);
        s2 += int(q[l] >> 4) * int(qx[l + 32]);
      }
      s += int(sc1) * s1 + int(sc2) * s2;
    }
    const int mins = k_mins_dot(a[i].scales, b[i].bsums);
    sum += b[i].d * (fp16_to_fp32(a[i].d) * float(s) - fp16_to_fp32(a[i].dmin) * float(mins));
  }
  return sum;
}

float dot_q5_K(int64_t k, const void* w, const void* x) {
  const block_q5_K* a = static_cast<const block_q5_K*>(w);
  const block_q8_K* b = static_cast<const block_q8_K*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < k / QK_K; ++i) {
    const uint8_t* q = a[i].qs;
    const uint8_t* qh = a[i].qh;
    const int8_t* qx = b[i].qs;
    int s = 0;
    for (int g = 0; g < 4; ++g, q += 32, qx += 64) {
      uint8_t sc1, sc2, m;
      k_scale_min(2 * g, a[i].scales, &sc1, &m);
      k_scale_min(2 * g + 1, a[i].scales, &sc2, &m);
      int s1 = 0, s2 = 0;
      for (int l = 0; l < 32; ++l) {
        const int lo = (q[l] & 0x0f) | (((qh[l] >> (2 * g)) & 1) << 4);
        const int hi = (q[l] >> 4) | (((qh[l] >> (2 * g + 1)) & 1) << 4);
        s1 += lo * int(qx[l]);
        s2 += hi * int(qx[l + 32]);
      }
      s += int(sc1) * s1 + int(sc2) * s2;
    }
    const int mins = k_mins_dot(a[i].scales, b[i].bsums);
    sum += b[i].d * (fp16_to_fp32(a[i].d) * float(s) - fp16_to_fp32(a[i].dmin) * float(mins));
  }
  return sum;
}

float dot_q6_K(int64_t k, const void* w, const void* x) {
  const block_q6_K* a = static_cast<const block_q6_K*>(w);
  const block_q8_K* b = static_cast<const block_q8_K*>(x);
  float sum = 0.0f;
  for (int64_t i = 0; i < k / QK_K; ++i) {
    const uint8_t* ql = a[i].ql;
    const uint8_t* qh = a[i].qh;
    const int8_t* sc = a[i].scales;
    const int8_t* qx = b[i].qs;
    int s = 0;
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, qx += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = (ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4);
        const int q2 = (ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4);
        const int q3 = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
        const int q4 = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
        s += int(sc[is]) * q1 * int(qx[l]) + int(sc[is + 2]) * q2 * int(qx[l + 32]) +
             int(sc[is + 4]) * q3 * int(qx[l + 64]) + int(sc[is + 6]) * q4 * int(qx[l + 96]);
      }
    }
    // the -32 offset of every q, through the sums of 16 activations
    int offset = 0;
    for (int j = 0; j < QK_K / 16; ++j) offset += int(a[i].scales[j]) * int(b[i].bsums[j]);
    sum += b[i].d * fp16_to_fp32(a[i].d) * float(s - 32 * offset);
  }
  return sum;
}

const FormatKernels* table_entry(const FormatKernels* table, Format f) {
  switch (f) {
    case Format::F32: return &table[0];
    case Format::F16: return &table[1];
    case Format::BF16: return &table[2];
    case Format::Q8_0: return &table[3];
    case Format::Q4_0: return &table[4];
    case Format::Q4_1: return &table[5];
    case Format::Q4_K: return &table[6];
    case Format::Q5_K: return &table[7];
    case Format::Q6_K: return &table[8];
    case Format::Q5_0: return &table[9];
    case Format::Q5_1: return &table[10];
  }
  return &table[0];
}

}  // namespace

const FormatKernels& ref::kernels(Format f) {
  static const FormatKernels table[] = {
      {ActFormat::F32, dot_f32_w}, {ActFormat::F32, dot_f16_w}, {ActFormat::F32, dot_bf16_w},
      {ActFormat::Q8A, dot_q8_0},  {ActFormat::Q8A, dot_q4_0},  {ActFormat::Q8A, dot_q4_1},
      {ActFormat::Q8K, dot_q4_K},  {ActFormat::Q8K, dot_q5_K},  {ActFormat::Q8K, dot_q6_K},
      {ActFormat::Q8A, dot_q5_0},  {ActFormat::Q8A, dot_q5_1},
  };
  return *table_entry(table, f);
}

namespace {

// The AVX2 table with a VNNI build of each rows kernel (VnniRows) in place of the AVX2 one.
template <RowsDotFn (*VnniRows)(Format)>
FormatKernels with_vnni_rows(Format f) {
  FormatKernels t = avx2::kernels(f);
  if (RowsDotFn rows = VnniRows(f)) t.vec_dot_rows = rows;
  return t;
}

template <RowsDotFn (*VnniRows)(Format)>
const FormatKernels& vnni_kernels(Format f) {
  constexpr auto row = with_vnni_rows<VnniRows>;
  static const FormatKernels table[] = {  // in table_entry's order
      row(Format::F32),  row(Format::F16),  row(Format::BF16), row(Format::Q8_0),
      row(Format::Q4_0), row(Format::Q4_1), row(Format::Q4_K), row(Format::Q5_K),
      row(Format::Q6_K), row(Format::Q5_0), row(Format::Q5_1),
  };
  return *table_entry(table, f);
}

}  // namespace

const FormatKernels& kernels_for(Format f) {
  if (!use_avx2()) return ref::kernels(f);
  if (use_avx_vnni()) return vnni_kernels<avxvnni::rows_dot_kernel>(f);
  if (use_avx512_vnni()) return vnni_kernels<avx512vnni::rows_dot_kernel>(f);
  return avx2::kernels(f);
}

int64_t act_row_bytes(ActFormat a, int64_t k) {
  switch (a) {
    case ActFormat::F32: return k * int64_t(sizeof(float));
    case ActFormat::Q8A: return k / QK * int64_t(sizeof(block_q8a));
    case ActFormat::Q8K: return k / QK_K * int64_t(sizeof(block_q8_K));
  }
  return 0;
}

void quantize_act_row(ActFormat a, const float* x, void* y, int64_t k) {
  const bool simd = use_avx2();
  switch (a) {
    case ActFormat::F32: std::memcpy(y, x, size_t(k) * sizeof(float)); return;
    case ActFormat::Q8A:
      if (simd) {
        avx2::quantize_row_q8a(x, static_cast<block_q8a*>(y), k);
      } else {
        ref::quantize_row_q8a(x, static_cast<block_q8a*>(y), k);
      }
      return;
    case ActFormat::Q8K:
      if (simd) {
        avx2::quantize_row_q8_K(x, static_cast<block_q8_K*>(y), k);
      } else {
        ref::quantize_row_q8_K(x, static_cast<block_q8_K*>(y), k);
      }
      return;
  }
}

namespace {

// Weights stream from memory once per call. The integer dot products spend enough time per
// byte that the hardware prefetcher alone falls behind, so each row also asks for the bytes
// kPrefetchBytes past it; the float formats are light enough per byte not to need it. (Only the
// scalar tables come this way for the integer formats: the AVX2 tables have a rows kernel for
// each, which asks for a steady few lines per step instead.)
constexpr int64_t kPrefetchBytes = 1024;
// Rows a multi-row kernel takes per call: the group stays in L1 across the n activation rows.
constexpr int64_t kRowGroup = 4;

// Into every cache level (T0): with the non-temporal hint the same requests left these kernels at
// 0.33-0.38 of read bandwidth on 768x3072 (Q4_K, Q6_K, Q5_0, one thread), against 0.51-0.64.
inline void prefetch_range(const uint8_t* p, const uint8_t* stop) {
  for (; p < stop; p += 64) __builtin_prefetch(p, 0, 3);
}

// Weight rows [begin, end) of one matrix (rows rb bytes apart from wb) against n activation rows
// already in the table's act format: y[i * ldy + r] = W_r . x_i.
void dot_row_range(const FormatKernels& kt, const uint8_t* wb, int64_t rb, int64_t k, int64_t begin,
                   int64_t end, const uint8_t* xb, int64_t act_bytes, int64_t n, float* y,
                   int64_t ldy) {
  if (kt.vec_dot_rows != nullptr) {
    // (the multi-row kernels prefetch for themselves, spread over their loop)
    for (int64_t r = begin; r < end; r += kRowGroup) {
      const int64_t nr = std::min(kRowGroup, end - r);
      const uint8_t* wr = wb + r * rb;
      for (int64_t i = 0; i < n; ++i) {
        kt.vec_dot_rows(k, wr, rb, nr, xb + i * act_bytes, y + i * ldy + r);
      }
    }
    return;
  }
  const uint8_t* range_end = wb + end * rb;
  const bool prefetch = kt.act != ActFormat::F32;
  for (int64_t r = begin; r < end; ++r) {
    const uint8_t* wr = wb + r * rb;
    if (prefetch) prefetch_range(wr + kPrefetchBytes, std::min(range_end, wr + rb + kPrefetchBytes));
    for (int64_t i = 0; i < n; ++i) y[i * ldy + r] = kt.vec_dot(k, wr, xb + i * act_bytes);
  }
}

// About this many bytes of weights per chunk of work and activation row: below it, handing the
// chunk to another thread costs more than it saves.
constexpr int64_t kMinChunkBytes = int64_t(32) << 10;

// y_i[n, m[i].rows] = x[n, k] W_i^T for count <= kMaxSharedInput matrices, matrix i on
// kernel table kt[i]: x quantized once per activation format the tables consume (for F32,
// read in place), then one job over all the matrices' rows, each weight row, once read, used
// for all n activation rows.
void shared_input_products(const FormatKernels* const* kt, const SharedInputMatrix* m, int count,
                           int64_t k, const float* x, int64_t n) {
  if (n <= 0) return;
  // Reused across calls (decode makes hundreds per token); one set per calling thread.
  thread_local std::vector<uint8_t> xq[3];
  const uint8_t* act_for[3] = {reinterpret_cast<const uint8_t*>(x), nullptr, nullptr};
  int64_t first_row[kMaxSharedInput + 1];
  int64_t weight_bytes = 0;
  first_row[0] = 0;
  for (int i = 0; i < count; ++i) {
    const ActFormat a = kt[i]->act;
    if (act_for[size_t(a)] == nullptr) {
      const int64_t ab = act_row_bytes(a, k);
      std::vector<uint8_t>& buf = xq[size_t(a)];
      if (buf.size() < size_t(ab * n)) buf.resize(size_t(ab * n));
      // The pool threads write the calling thread's buffer: inside the job, `xq` would name
      // each thread's own (empty) one.
      uint8_t* const rows_q = buf.data();
      parallel_for(n, 16, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) quantize_act_row(a, x + r * k, rows_q + r * ab, k);
      });
      act_for[size_t(a)] = rows_q;
    }
    first_row[i + 1] = first_row[i] + m[i].rows;
    weight_bytes += m[i].rows * row_bytes(m[i].f, k);
  }
  const int64_t total = first_row[count];
  if (total == 0) return;
  const int64_t min_rows =
      std::max<int64_t>(1, kMinChunkBytes * total / std::max<int64_t>(1, weight_bytes) / n);
  parallel_for(total, min_rows, [&](int64_t begin, int64_t end) {
    for (int i = 0; i < count; ++i) {
      const int64_t lo = std::max(begin, first_row[i]) - first_row[i];
      const int64_t hi = std::min(end, first_row[i + 1]) - first_row[i];
      if (lo >= hi) continue;
      const ActFormat a = kt[i]->act;
      dot_row_range(*kt[i], static_cast<const uint8_t*>(m[i].w), row_bytes(m[i].f, k), k, lo, hi,
                    act_for[size_t(a)], act_row_bytes(a, k), n, m[i].y, m[i].rows);
    }
  });
}

// y[n, rows] = x W^T on kernel table kt.
void matmul_with_table(const FormatKernels& kt, Format f, const void* w, int64_t rows, int64_t k,
                       const float* x, int64_t n, float* y) {
  const FormatKernels* table = &kt;
  const SharedInputMatrix one{f, w, rows, y};
  shared_input_products(&table, &one, 1, k, x, n);
}

}  // namespace

void ref::matvec(Format f, const void* w, int64_t rows, int64_t k, const float* x, float* y) {
  matmul_with_table(ref::kernels(f), f, w, rows, k, x, 1, y);
}

void ref::matmul(Format f, const void* w, int64_t rows, int64_t k, const float* x, int64_t n,
                 float* y) {
  matmul_with_table(ref::kernels(f), f, w, rows, k, x, n, y);
}

namespace {

// The quant bytes of one activation row in act format a, plus 128 (or back: the same xor).
void shift_quants(ActFormat a, uint8_t* row, int64_t k) {
  const bool q8k = a == ActFormat::Q8K;
  const int64_t block = q8k ? int64_t(sizeof(block_q8_K)) : int64_t(sizeof(block_q8a));
  const int64_t at = q8k ? int64_t(offsetof(block_q8_K, qs)) : int64_t(offsetof(block_q8a, qs));
  const int64_t elems = q8k ? QK_K : QK;
  for (int64_t b = 0; b < k / elems; ++b) {
    uint8_t* qs = row + b * block + at;
    for (int64_t j = 0; j < elems; ++j) qs[j] ^= 0x80;
  }
}

// The scalar integer matrix-matrix product: each activation row taken back to its quant bytes,
// then every entry the format's reference vec_dot.
void int_gemm_rows_ref(Format f, const uint8_t* w, int64_t rb, int64_t k, int64_t r0, int64_t r1,
                       const uint8_t* xq, int64_t act_bytes, int64_t n, const uint8_t*, float* y,
                       int64_t ldy) {
  const FormatKernels& kt = ref::kernels(f);
  std::vector<uint8_t> row(static_cast<size_t>(act_bytes));
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(row.data(), xq + i * act_bytes, size_t(act_bytes));
    shift_quants(kt.act, row.data(), k);
    for (int64_t r = r0; r < r1; ++r) y[i * ldy + r] = kt.vec_dot(k, w + r * rb, row.data());
  }
}

}  // namespace

IntGemmKernel ref::int_gemm_kernel() { return {int_gemm_rows_ref, 1}; }

bool has_int_gemm(Format f) { return ref::kernels(f).act != ActFormat::F32; }

IntGemmKernel int_gemm_kernel_for() {
  // (in int_gemm_kernel_set's order)
  if (!use_avx2()) return ref::int_gemm_kernel();
  if (use_amx()) return avx512amx::int_gemm_kernel();
  if (use_avx512_vnni()) return avx512vnni::int_gemm_kernel();
  if (use_avx_vnni()) return avxvnni::int_gemm_kernel();
  return avx2::int_gemm_kernel();
}

namespace {

// The activations of an integer product, quantized once (every quant byte plus 128, as the
// kernels take it) and, where the kernel asks, prepared once, both into the calling thread's
// buffers for the act format (the pool threads write them: inside a job, a thread_local would
// name each thread's own).
struct IntActivations {
  int64_t act_bytes;
  const uint8_t* xq;
  const uint8_t* prepared;  // null where the kernel prepares nothing for this format and n
};

IntActivations int_activations(const IntGemmKernel& g, Format f, int64_t k, const float* x, int64_t n) {
  thread_local std::vector<uint8_t> xq_bufs[3], prep_bufs[3];  // per ActFormat
  const ActFormat a = ref::kernels(f).act;
  const int64_t ab = act_row_bytes(a, k);
  std::vector<uint8_t>& xq = xq_bufs[size_t(a)];
  if (xq.size() < size_t(ab * n)) xq.resize(size_t(ab * n));
  uint8_t* const rows_q = xq.data();
  parallel_for(n, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      quantize_act_row(a, x + r * k, rows_q + r * ab, k);
      shift_quants(a, rows_q + r * ab, k);
    }
  });
  const int64_t bytes = g.prepared_bytes == nullptr ? 0 : g.prepared_bytes(f, k, n);
  if (bytes == 0) return {ab, rows_q, nullptr};
  std::vector<uint8_t>& prep = prep_bufs[size_t(a)];
  if (prep.size() < size_t(bytes)) prep.resize(size_t(bytes));
  uint8_t* const out = prep.data();
  parallel_for((n + 15) / 16, 1, [&](int64_t begin, int64_t end) {
    g.prepare(f, k, rows_q, ab, n, begin * 16, std::min(n, end * 16), out);
  });
  return {ab, rows_q, out};
}

// Whether matmul takes the integer kernels for format f and n activation rows.
bool takes_int_gemm(Format f, int64_t n) {
  return !(n <= kMatmulDecodeRows && use_avx2()) && has_int_gemm(f) && use_int_gemm();
}

// y[n, rows] = x W^T with integer dot products: the activations made once, then the weight rows
// split over the pool a panel at a time.
void int_matmul(const IntGemmKernel& g, Format f, const void* w, int64_t rows, int64_t k,
                const float* x, int64_t n, float* y) {
  const IntActivations act = int_activations(g, f, k, x, n);
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  const int64_t rb = row_bytes(f, k);
  const int64_t panels = (rows + g.panel_rows - 1) / g.panel_rows;
  parallel_for(panels, 1, [&](int64_t begin, int64_t end) {
    g.rows(f, wb, rb, k, begin * g.panel_rows, std::min(rows, end * g.panel_rows), act.xq, act.act_bytes, n,
           act.prepared, y, rows);
  });
}

}  // namespace

uint64_t ref::stream_read(const uint8_t* p, int64_t n_bytes) {
  uint64_t acc = 0;
  int64_t i = 0;
  for (; i + 8 <= n_bytes; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    acc ^= v;
  }
  for (; i < n_bytes; ++i) acc ^= p[i];
  return acc;
}

void matvec(Format f, const void* w, int64_t rows, int64_t k, const float* x, float* y) {
  matmul_with_table(kernels_for(f), f, w, rows, k, x, 1, y);
}

void matmul(Format f, const void* w, int64_t rows, int64_t k, const float* x, int64_t n,
            float* y) {
  if (takes_int_gemm(f, n)) {
    int_matmul(int_gemm_kernel_for(), f, w, rows, k, x, n, y);
  } else if (n <= kMatmulDecodeRows && use_avx2()) {
    // Too few activation rows to amortize unpacking the weights: the decode step's kernels,
    // each row's result bit for bit its decode step's (see kMatmulDecodeRows).
    matmul_with_table(kernels_for(f), f, w, rows, k, x, n, y);
  } else if (!use_avx2()) {
    ref::matmul(f, w, rows, k, x, n, y);
  } else if (use_avx512()) {
    avx512::matmul(f, w, rows, k, x, n, y);
  } else {
    avx2::matmul(f, w, rows, k, x, n, y);
  }
}

void matmul_group(const SharedInputMatrix* all, int all_count, int64_t k, const float* x, int64_t n) {
  // The matrices matmul takes to the integer kernels go together; any other goes on its own,
  // first (its own product would reuse the act buffers the group's activations live in).
  SharedInputMatrix m[kMaxSharedInput];
  int count = 0;
  for (int i = 0; i < all_count; ++i) {
    if (all_count <= kMaxSharedInput && takes_int_gemm(all[i].f, n)) {
      m[count++] = all[i];
    } else {
      matmul(all[i].f, all[i].w, all[i].rows, k, x, n, all[i].y);
    }
  }
  if (count == 0) return;
  const IntGemmKernel g = int_gemm_kernel_for();
  // One set of activations per act format, made for a matrix the kernel prepares them for
  // where there is one: the preparation depends on the activations only (IntGemmPrepareFn),
  // so every matrix of that format that takes it finds it made.
  IntActivations acts[3];
  bool made[3] = {};
  for (const bool preparing : {true, false}) {
    for (int i = 0; i < count; ++i) {
      const size_t a = size_t(ref::kernels(m[i].f).act);
      const bool prepares = g.prepared_bytes != nullptr && g.prepared_bytes(m[i].f, k, n) > 0;
      if (!made[a] && prepares == preparing) {
        acts[a] = int_activations(g, m[i].f, k, x, n);
        made[a] = true;
      }
    }
  }
  int64_t first_panel[kMaxSharedInput + 1];
  first_panel[0] = 0;
  for (int i = 0; i < count; ++i) first_panel[i + 1] = first_panel[i] + (m[i].rows + g.panel_rows - 1) / g.panel_rows;
  parallel_for(first_panel[count], 1, [&](int64_t begin, int64_t end) {
    for (int i = 0; i < count; ++i) {
      const int64_t lo = std::max(begin, first_panel[i]) - first_panel[i];
      const int64_t hi = std::min(end, first_panel[i + 1]) - first_panel[i];
      if (lo >= hi) continue;
      const IntActivations& act = acts[size_t(ref::kernels(m[i].f).act)];
      // A kernel that takes no prepared activations for this format and n ignores them.
      g.rows(m[i].f, static_cast<const uint8_t*>(m[i].w), row_bytes(m[i].f, k), k, lo * g.panel_rows,
             std::min(m[i].rows, hi * g.panel_rows), act.xq, act.act_bytes, n, act.prepared, m[i].y, m[i].rows);
    }
  });
}

void matmul_shared_input(const SharedInputMatrix* m, int count, int64_t k, const float* x,
                         int64_t n) {
  for (; count > 0 && n > 0; m += kMaxSharedInput, count -= kMaxSharedInput) {
    const int group = std::min(count, kMaxSharedInput);  // more matrices go in further jobs
    const FormatKernels* kt[kMaxSharedInput];
    for (int i = 0; i < group; ++i) kt[i] = &kernels_for(m[i].f);
    shared_input_products(kt, m, group, k, x, n);
  }
}

void get_rows(Format f, const void* w, int64_t rows, int64_t k, const int32_t* ids, int64_t n,
              float* y) {
  (void)rows;  // ids are checked against rows by the caller, before the GIL is released
  const int64_t rb = row_bytes(f, k);
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  parallel_for(n, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, k)),
               [&](int64_t begin, int64_t end) {
                 for (int64_t i = begin; i < end; ++i) {
                   dequantize_row(f, wb + int64_t(ids[i]) * rb, y + i * k, k);
                 }
               });
}

uint64_t stream_read(const uint8_t* p, int64_t n_bytes) {
  constexpr int64_t kPage = 4096;  // split on page multiples so threads never share a line
  const int64_t pages = (n_bytes + kPage - 1) / kPage;
  const bool simd = use_avx2();
  std::atomic<uint64_t> acc{0};
  // Split like the matrix kernels (dynamic chunks), so the two are measured alike.
  parallel_for(pages, 16, [&](int64_t begin, int64_t end) {
    const int64_t lo = begin * kPage, hi = std::min(n_bytes, end * kPage);
    acc.fetch_xor(simd ? avx2::stream_read(p + lo, hi - lo) : ref::stream_read(p + lo, hi - lo),
                  std::memory_order_relaxed);
  });
  return acc.load();
}

}  // namespace cromwell

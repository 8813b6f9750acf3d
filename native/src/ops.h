// Transformer row ops: norms, softmax, activations, residual add, rotary embedding.
// Each kernel has a portable reference (namespace ref) and an AVX2 version with the same
// signature (namespace avx2, avx2/ops_avx2.cpp). The unqualified entry points at the bottom pick
// one per call and split the rows over the thread pool.
#pragma once
#include <cstdint>

namespace cromwell {

#define CROMWELL_OPS_KERNELS                                                                   \
  /* y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, for `rows` rows of length d */               \
  void rms_norm_rows(const float* x, const float* w, float eps, float* y, int64_t rows,        \
                     int64_t d);                                                               \
  /* y[r] = (x[r] - mean) / sqrt(var + eps) * w + b; w and b may be null (1 and 0) */          \
  void layer_norm_rows(const float* x, const float* w, const float* b, float eps, float* y,    \
                       int64_t rows, int64_t d);                                               \
  /* y[r] = softmax(x[r]) */                                                                   \
  void softmax_rows(const float* x, float* y, int64_t rows, int64_t d);                        \
  void silu(const float* x, float* y, int64_t n);                                              \
  /* exact GELU, x * Phi(x) with Phi the normal CDF (torch's default, approximate="none") */   \
  void gelu(const float* x, float* y, int64_t n);                                              \
  /* y = silu(gate) * up */                                                                    \
  void swiglu(const float* gate, const float* up, float* y, int64_t n);                        \
  void add(const float* a, const float* b, float* y, int64_t n);                               \
  /* Rotates the first n_rot dims of each of `heads` vectors of length head_dim, in place, by  \
     the angles whose cos/sin (n_rot/2 each) are given. interleaved: pairs (2i, 2i+1);        \
     otherwise pairs (i, i + n_rot/2). */                                                      \
  void rope_row(float* x, int64_t heads, int64_t head_dim, int64_t n_rot, const float* cos,   \
                const float* sin, bool interleaved);

namespace ref {
CROMWELL_OPS_KERNELS
}
namespace avx2 {
CROMWELL_OPS_KERNELS
}
CROMWELL_OPS_KERNELS
#undef CROMWELL_OPS_KERNELS

// Rotary embedding over x[n, heads, head_dim] at the given positions: angle of pair i at
// position p is p * freq_scale * base^(-2i / n_rot) / freq_factors[i], as ggml's rope_ext
// computes it: freq_scale is linear scaling's 1 / factor, freq_factors (n_rot/2 values, or
// null for all ones) Llama 3's per-frequency divisors (the `rope_freqs.weight` tensor).
// Angles and their cos/sin are computed in double.
void rope(float* x, const int32_t* positions, int64_t n, int64_t heads, int64_t head_dim,
          int64_t n_rot, double base, bool interleaved, const float* freq_factors = nullptr,
          double freq_scale = 1.0);

}  // namespace cromwell

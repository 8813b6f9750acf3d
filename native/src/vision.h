// Vision encoder ops, NHWC throughout: the patchifying conv stem, 3x3 depthwise conv and the
// global average pool of squeeze-excitation. (1x1 convs are matmuls over the H*W rows.)
// Each kernel computes a range of output rows; ref and avx2 share the signature, and the
// unqualified entry points split the rows over the thread pool.
#pragma once
#include <cstdint>

namespace cromwell {

#define CROMWELL_VISION_KERNELS                                                                \
  /* Output rows [oy0, oy1) of a valid (unpadded) conv: x[H, W, cin], weights transposed to   \
     wt[kh * kw * cin, cout] (row index (ky * kw + kx) * cin + c), b[cout],                   \
     out[(H - kh) / stride + 1, (W - kw) / stride + 1, cout]. */                               \
  void conv_stem_rows(const float* x, int64_t H, int64_t W, int64_t cin, const float* wt,      \
                      const float* b, int64_t cout, int64_t kh, int64_t kw, int64_t stride,    \
                      float* out, int64_t oy0, int64_t oy1);                                   \
  /* Output rows [oy0, oy1) of a 3x3 depthwise conv with zero padding 1: x[H, W, C],           \
     w[3, 3, C], b[C], out[(H - 1) / stride + 1, (W - 1) / stride + 1, C]. */                  \
  void depthwise_conv3x3_rows(const float* x, int64_t H, int64_t W, int64_t C, const float* w, \
                              const float* b, int64_t stride, float* out, int64_t oy0,         \
                              int64_t oy1);                                                    \
  /* out[c] = mean over the hw rows of x[hw, C], for channels [c0, c1). */                      \
  void global_avg_pool(const float* x, int64_t hw, int64_t C, float* out, int64_t c0,          \
                       int64_t c1);

namespace ref {
CROMWELL_VISION_KERNELS
}
namespace avx2 {
CROMWELL_VISION_KERNELS
}
#undef CROMWELL_VISION_KERNELS

// Whole-image entry points (dispatch + threads). conv_stem takes w[cout, kh, kw, cin] as
// torch's conv2d weight permuted to NHWC order.
void conv_stem(const float* x, int64_t H, int64_t W, int64_t cin, const float* w, const float* b,
               int64_t cout, int64_t kh, int64_t kw, int64_t stride, float* out);
void depthwise_conv3x3(const float* x, int64_t H, int64_t W, int64_t C, const float* w,
                       const float* b, int64_t stride, float* out);
void global_avg_pool(const float* x, int64_t hw, int64_t C, float* out);

}  // namespace cromwell

// Scalar references for the vision ops, and the dispatching, multi-threaded entry points.
#include "vision.h"

#include <algorithm>
#include <vector>

#include "cpu_features.h"
#include "threadpool.h"

namespace cromwell {

void ref::conv_stem_rows(const float* x, int64_t H, int64_t W, int64_t cin, const float* wt,
                         const float* b, int64_t cout, int64_t kh, int64_t kw, int64_t stride,
                         float* out, int64_t oy0, int64_t oy1) {
  (void)H;
  const int64_t wo = (W - kw) / stride + 1;
  const int64_t run = kw * cin;  // one kernel row of a patch is contiguous in NHWC
  for (int64_t oy = oy0; oy < oy1; ++oy) {
    for (int64_t ox = 0; ox < wo; ++ox) {
      float* o = out + (oy * wo + ox) * cout;
      for (int64_t co = 0; co < cout; ++co) {
        double acc = b[co];
        for (int64_t ky = 0; ky < kh; ++ky) {
          const float* p = x + ((oy * stride + ky) * W + ox * stride) * cin;
          for (int64_t i = 0; i < run; ++i) acc += double(p[i]) * wt[(ky * run + i) * cout + co];
        }
        o[co] = float(acc);
      }
    }
  }
}

void ref::depthwise_conv3x3_rows(const float* x, int64_t H, int64_t W, int64_t C, const float* w,
                                 const float* b, int64_t stride, float* out, int64_t oy0,
                                 int64_t oy1) {
  const int64_t wo = (W - 1) / stride + 1;
  for (int64_t oy = oy0; oy < oy1; ++oy) {
    for (int64_t ox = 0; ox < wo; ++ox) {
      float* o = out + (oy * wo + ox) * C;
      for (int64_t c = 0; c < C; ++c) {
        double acc = b[c];
        for (int64_t dy = 0; dy < 3; ++dy) {
          const int64_t y = oy * stride + dy - 1;
          if (y < 0 || y >= H) continue;
          for (int64_t dx = 0; dx < 3; ++dx) {
            const int64_t xx = ox * stride + dx - 1;
            if (xx < 0 || xx >= W) continue;
            acc += double(x[(y * W + xx) * C + c]) * w[(dy * 3 + dx) * C + c];
          }
        }
        o[c] = float(acc);
      }
    }
  }
}

void ref::global_avg_pool(const float* x, int64_t hw, int64_t C, float* out, int64_t c0,
                          int64_t c1) {
  for (int64_t c = c0; c < c1; ++c) {
    double s = 0.0;
    for (int64_t i = 0; i < hw; ++i) s += x[i * C + c];
    out[c] = float(s / double(hw));
  }
}

namespace {
// Enough multiply-adds per thread to be worth a wake-up.
constexpr int64_t kMinWorkPerThread = 1 << 16;
}  // namespace

void conv_stem(const float* x, int64_t H, int64_t W, int64_t cin, const float* w, const float* b,
               int64_t cout, int64_t kh, int64_t kw, int64_t stride, float* out) {
  // Transpose the weights to [kh * kw * cin, cout] once, so each input value multiplies a
  // contiguous row of output channels.
  const int64_t K = kh * kw * cin;
  std::vector<float> wt(K * cout);
  for (int64_t co = 0; co < cout; ++co) {
    for (int64_t i = 0; i < K; ++i) wt[i * cout + co] = w[co * K + i];
  }
  const int64_t ho = (H - kh) / stride + 1, wo = (W - kw) / stride + 1;
  const auto k = use_avx2() ? avx2::conv_stem_rows : ref::conv_stem_rows;
  const int64_t row_work = std::max<int64_t>(1, wo * K * cout);
  parallel_for(ho, std::max<int64_t>(1, kMinWorkPerThread / row_work), [&](int64_t y0, int64_t y1) {
    k(x, H, W, cin, wt.data(), b, cout, kh, kw, stride, out, y0, y1);
  });
}

void depthwise_conv3x3(const float* x, int64_t H, int64_t W, int64_t C, const float* w,
                       const float* b, int64_t stride, float* out) {
  const int64_t ho = (H - 1) / stride + 1, wo = (W - 1) / stride + 1;
  const auto k = use_avx2() ? avx2::depthwise_conv3x3_rows : ref::depthwise_conv3x3_rows;
  const int64_t row_work = std::max<int64_t>(1, 9 * wo * C);
  parallel_for(ho, std::max<int64_t>(1, kMinWorkPerThread / row_work), [&](int64_t y0, int64_t y1) {
    k(x, H, W, C, w, b, stride, out, y0, y1);
  });
}

void global_avg_pool(const float* x, int64_t hw, int64_t C, float* out) {
  const auto k = use_avx2() ? avx2::global_avg_pool : ref::global_avg_pool;
  // Threads take channel ranges in multiples of 8, so each reads whole vectors.
  const int64_t groups = (C + 7) / 8;
  const int64_t min_groups = std::max<int64_t>(1, kMinWorkPerThread / std::max<int64_t>(1, 8 * hw));
  parallel_for(groups, min_groups, [&](int64_t g0, int64_t g1) {
    k(x, hw, C, out, g0 * 8, std::min(C, g1 * 8));
  });
}

}  // namespace cromwell

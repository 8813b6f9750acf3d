// Scalar references for the row ops, and the dispatching, multi-threaded entry points.
#include "ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_features.h"
#include "threadpool.h"

namespace cromwell {

// ---- references: plain loops, accumulating in double where a sum is involved ----------------

void ref::rms_norm_rows(const float* x, const float* w, float eps, float* y, int64_t rows,
                        int64_t d) {
  for (int64_t r = 0; r < rows; ++r, x += d, y += d) {
    double ss = 0.0;
    for (int64_t i = 0; i < d; ++i) ss += double(x[i]) * double(x[i]);
    const float inv = float(1.0 / std::sqrt(ss / double(d) + double(eps)));
    for (int64_t i = 0; i < d; ++i) y[i] = x[i] * inv * w[i];
  }
}

void ref::layer_norm_rows(const float* x, const float* w, const float* b, float eps, float* y,
                          int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; ++r, x += d, y += d) {
    double mean = 0.0;
    for (int64_t i = 0; i < d; ++i) mean += x[i];
    mean /= double(d);
    double var = 0.0;
    for (int64_t i = 0; i < d; ++i) var += (x[i] - mean) * (x[i] - mean);
    var /= double(d);
    const double inv = 1.0 / std::sqrt(var + double(eps));
    for (int64_t i = 0; i < d; ++i) {
      const float n = float((x[i] - mean) * inv);
      y[i] = n * (w ? w[i] : 1.0f) + (b ? b[i] : 0.0f);
    }
  }
}

void ref::softmax_rows(const float* x, float* y, int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; ++r, x += d, y += d) {
    float m = -INFINITY;
    for (int64_t i = 0; i < d; ++i) m = std::max(m, x[i]);
    double s = 0.0;
    for (int64_t i = 0; i < d; ++i) {
      y[i] = std::exp(x[i] - m);
      s += y[i];
    }
    const float inv = float(1.0 / s);
    for (int64_t i = 0; i < d; ++i) y[i] *= inv;
  }
}

void ref::silu(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + std::exp(-x[i]));
}

void ref::gelu(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * std::erfc(-x[i] * float(M_SQRT1_2));
}

void ref::swiglu(const float* gate, const float* up, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void ref::add(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void ref::rope_row(float* x, int64_t heads, int64_t head_dim, int64_t n_rot, const float* cos,
                   const float* sin, bool interleaved) {
  const int64_t half = n_rot / 2;
  for (int64_t h = 0; h < heads; ++h, x += head_dim) {
    for (int64_t i = 0; i < half; ++i) {
      float* a = interleaved ? x + 2 * i : x + i;
      float* b = interleaved ? x + 2 * i + 1 : x + i + half;
      const float x0 = *a, x1 = *b;
      *a = x0 * cos[i] - x1 * sin[i];
      *b = x1 * cos[i] + x0 * sin[i];
    }
  }
}

// ---- dispatch + threads -------------------------------------------------------------------

namespace {

// Below this many floats per thread, waking workers costs more than it saves.
constexpr int64_t kMinElementsPerThread = 16384;

int64_t min_rows_per_thread(int64_t d) {
  return std::max<int64_t>(1, kMinElementsPerThread / std::max<int64_t>(1, d));
}

// Elementwise kernels split into chunks that are whole multiples of 64 floats, so every thread
// starts on a cache line boundary relative to the array.
template <typename Fn>
void split_elements(int64_t n, Fn&& fn) {
  const int64_t blocks = (n + 63) / 64;
  parallel_for(blocks, kMinElementsPerThread / 64, [&](int64_t b0, int64_t b1) {
    const int64_t i0 = b0 * 64;
    const int64_t i1 = std::min(n, b1 * 64);
    fn(i0, i1 - i0);
  });
}

}  // namespace

void rms_norm_rows(const float* x, const float* w, float eps, float* y, int64_t rows, int64_t d) {
  const auto k = use_avx2() ? avx2::rms_norm_rows : ref::rms_norm_rows;
  parallel_for(rows, min_rows_per_thread(d), [&](int64_t r0, int64_t r1) {
    k(x + r0 * d, w, eps, y + r0 * d, r1 - r0, d);
  });
}

void layer_norm_rows(const float* x, const float* w, const float* b, float eps, float* y,
                     int64_t rows, int64_t d) {
  const auto k = use_avx2() ? avx2::layer_norm_rows : ref::layer_norm_rows;
  parallel_for(rows, min_rows_per_thread(d), [&](int64_t r0, int64_t r1) {
    k(x + r0 * d, w, b, eps, y + r0 * d, r1 - r0, d);
  });
}

void softmax_rows(const float* x, float* y, int64_t rows, int64_t d) {
  const auto k = use_avx2() ? avx2::softmax_rows : ref::softmax_rows;
  parallel_for(rows, min_rows_per_thread(d), [&](int64_t r0, int64_t r1) {
    k(x + r0 * d, y + r0 * d, r1 - r0, d);
  });
}

void silu(const float* x, float* y, int64_t n) {
  const auto k = use_avx2() ? avx2::silu : ref::silu;
  split_elements(n, [&](int64_t i, int64_t m) { k(x + i, y + i, m); });
}

void gelu(const float* x, float* y, int64_t n) {
  const auto k = use_avx2() ? avx2::gelu : ref::gelu;
  split_elements(n, [&](int64_t i, int64_t m) { k(x + i, y + i, m); });
}

void swiglu(const float* gate, const float* up, float* y, int64_t n) {
  const auto k = use_avx2() ? avx2::swiglu : ref::swiglu;
  split_elements(n, [&](int64_t i, int64_t m) { k(gate + i, up + i, y + i, m); });
}

void add(const float* a, const float* b, float* y, int64_t n) {
  const auto k = use_avx2() ? avx2::add : ref::add;
  split_elements(n, [&](int64_t i, int64_t m) { k(a + i, b + i, y + i, m); });
}

void rope_row(float* x, int64_t heads, int64_t head_dim, int64_t n_rot, const float* cos,
              const float* sin, bool interleaved) {
  (use_avx2() ? avx2::rope_row : ref::rope_row)(x, heads, head_dim, n_rot, cos, sin, interleaved);
}

void rope(float* x, const int32_t* positions, int64_t n, int64_t heads, int64_t head_dim,
          int64_t n_rot, double base, bool interleaved, const float* freq_factors,
          double freq_scale) {
  const int64_t half = n_rot / 2;
  std::vector<double> inv_freq(half);
  for (int64_t i = 0; i < half; ++i) {
    const double divisor = freq_factors != nullptr ? double(freq_factors[i]) : 1.0;
    inv_freq[i] = freq_scale * std::pow(base, -2.0 * double(i) / double(n_rot)) / divisor;
  }
  const auto k = use_avx2() ? avx2::rope_row : ref::rope_row;
  const int64_t row = heads * head_dim;
  parallel_for(n, min_rows_per_thread(row + 8 * half), [&](int64_t r0, int64_t r1) {
    std::vector<float> cs(2 * half);  // one table per thread, reused for its rows
    for (int64_t r = r0; r < r1; ++r) {
      const double pos = positions[r];
      for (int64_t i = 0; i < half; ++i) {
        const double angle = pos * inv_freq[i];
        cs[i] = float(std::cos(angle));
        cs[half + i] = float(std::sin(angle));
      }
      k(x + r * row, heads, head_dim, n_rot, cs.data(), cs.data() + half, interleaved);
    }
  });
}

}  // namespace cromwell

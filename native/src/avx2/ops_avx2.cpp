// AVX2 versions of the row ops (signatures and meaning in ops.h). Every loop has a masked or
// scalar tail, so any length works.
#include <algorithm>
#include <cmath>

#include "../ops.h"
#include "math_avx2.h"
#include "simd_helpers.h"

namespace cromwell::avx2 {

namespace {

// Applies f to 8 lanes at a time over n floats, the tail through a partial load/store.
template <typename F>
inline void map1(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) store_partial_ps(y + i, f(load_partial_ps(x + i, int(n - i), 0.0f)), int(n - i));
}

template <typename F>
inline void map2(const float* a, const float* b, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  }
  if (i < n) {
    const int m = int(n - i);
    store_partial_ps(y + i, f(load_partial_ps(a + i, m, 0.0f), load_partial_ps(b + i, m, 0.0f)), m);
  }
}

// Reductions keep 4 independent accumulators: one would wait on the add latency every step.
// term(v, acc) folds 8 values into an accumulator; scalar(x) is the same for one value (tail).
template <typename F, typename S>
inline float reduce_sum(const float* x, int64_t d, F term, S scalar) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
         a3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= d; i += 32) {
    a0 = term(_mm256_loadu_ps(x + i), a0);
    a1 = term(_mm256_loadu_ps(x + i + 8), a1);
    a2 = term(_mm256_loadu_ps(x + i + 16), a2);
    a3 = term(_mm256_loadu_ps(x + i + 24), a3);
  }
  for (; i + 8 <= d; i += 8) a0 = term(_mm256_loadu_ps(x + i), a0);
  float s = hsum_float_8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; i < d; ++i) s += scalar(x[i]);
  return s;
}

inline float sum_of_squares(const float* x, int64_t d) {
  return reduce_sum(
      x, d, [](__m256 v, __m256 acc) { return _mm256_fmadd_ps(v, v, acc); },
      [](float v) { return v * v; });
}

inline float sum(const float* x, int64_t d) {
  return reduce_sum(
      x, d, [](__m256 v, __m256 acc) { return _mm256_add_ps(v, acc); }, [](float v) { return v; });
}

inline float max_of(const float* x, int64_t d) {
  __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
  int64_t i = 0;
  for (; i + 32 <= d; i += 32) {
    m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
    m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
    m2 = _mm256_max_ps(m2, _mm256_loadu_ps(x + i + 16));
    m3 = _mm256_max_ps(m3, _mm256_loadu_ps(x + i + 24));
  }
  for (; i + 8 <= d; i += 8) m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
  if (i < d) m1 = _mm256_max_ps(m1, load_partial_ps(x + i, int(d - i), -INFINITY));
  return hmax_float_8(_mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
}

}  // namespace

void rms_norm_rows(const float* x, const float* w, float eps, float* y, int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; ++r, x += d, y += d) {
    const float inv = 1.0f / std::sqrt(sum_of_squares(x, d) / float(d) + eps);
    const __m256 vinv = _mm256_set1_ps(inv);
    map2(x, w, y, d, [&](__m256 a, __m256 g) { return _mm256_mul_ps(_mm256_mul_ps(a, vinv), g); });
  }
}

void layer_norm_rows(const float* x, const float* w, const float* b, float eps, float* y,
                     int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; ++r, x += d, y += d) {
    // Two passes (mean, then squared deviations): E[x^2] - mean^2 loses everything when the
    // mean is large against the spread.
    const float mean = sum(x, d) / float(d);
    const __m256 vmean = _mm256_set1_ps(mean);
    const float var = reduce_sum(
        x, d,
        [&](__m256 v, __m256 acc) {
          const __m256 c = _mm256_sub_ps(v, vmean);
          return _mm256_fmadd_ps(c, c, acc);
        },
        [&](float v) { return (v - mean) * (v - mean); });
    int64_t i = 0;
    const __m256 vinv = _mm256_set1_ps(1.0f / std::sqrt(var / float(d) + eps));
    if (w && b) {
      for (i = 0; i + 8 <= d; i += 8) {
        const __m256 n = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmean), vinv);
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(n, _mm256_loadu_ps(w + i), _mm256_loadu_ps(b + i)));
      }
    } else {
      i = 0;
    }
    for (; i < d; ++i) {
      const float n = (x[i] - mean) * _mm256_cvtss_f32(vinv);
      y[i] = n * (w ? w[i] : 1.0f) + (b ? b[i] : 0.0f);
    }
  }
}

void softmax_rows(const float* x, float* y, int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; ++r, x += d, y += d) {
    const __m256 vmax = _mm256_set1_ps(max_of(x, d));
    __m256 vs = _mm256_setzero_ps(), vs1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= d; i += 16) {
      const __m256 e0 = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
      const __m256 e1 = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vmax));
      vs = _mm256_add_ps(vs, e0);
      vs1 = _mm256_add_ps(vs1, e1);
      _mm256_storeu_ps(y + i, e0);
      _mm256_storeu_ps(y + i + 8, e1);
    }
    vs = _mm256_add_ps(vs, vs1);
    for (; i + 8 <= d; i += 8) {
      const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
      vs = _mm256_add_ps(vs, e);
      _mm256_storeu_ps(y + i, e);
    }
    if (i < d) {  // the tail's padding lanes are -inf, so they add e^-inf = 0
      const int k = int(d - i);
      const __m256 e = exp_ps(_mm256_sub_ps(load_partial_ps(x + i, k, -INFINITY), vmax));
      vs = _mm256_add_ps(vs, e);
      store_partial_ps(y + i, e, k);
    }
    const __m256 vinv = _mm256_set1_ps(1.0f / hsum_float_8(vs));
    map1(y, y, d, [&](__m256 v) { return _mm256_mul_ps(v, vinv); });
  }
}

// Lambdas rather than function pointers, so the maps inline the math into their loops.
void silu(const float* x, float* y, int64_t n) {
  map1(x, y, n, [](__m256 v) { return silu_ps(v); });
}

void gelu(const float* x, float* y, int64_t n) {
  map1(x, y, n, [](__m256 v) { return gelu_ps(v); });
}

void swiglu(const float* gate, const float* up, float* y, int64_t n) {
  map2(gate, up, y, n, [](__m256 g, __m256 u) { return _mm256_mul_ps(silu_ps(g), u); });
}

void add(const float* a, const float* b, float* y, int64_t n) {
  map2(a, b, y, n, [](__m256 u, __m256 v) { return _mm256_add_ps(u, v); });
}

void rope_row(float* x, int64_t heads, int64_t head_dim, int64_t n_rot, const float* cos,
              const float* sin, bool interleaved) {
  const int64_t half = n_rot / 2;
  if (interleaved) {
    // 8 floats = 4 pairs (a, b); with c, s duplicated per pair: out = x*c -+ swap(x)*s, the
    // subtraction on even lanes and the addition on odd lanes (fmaddsub).
    for (int64_t h = 0; h < heads; ++h, x += head_dim) {
      int64_t i = 0;
      for (; i + 4 <= half; i += 4) {
        const __m128 c4 = _mm_loadu_ps(cos + i), s4 = _mm_loadu_ps(sin + i);
        const __m256 c = _mm256_set_m128(_mm_unpackhi_ps(c4, c4), _mm_unpacklo_ps(c4, c4));
        const __m256 s = _mm256_set_m128(_mm_unpackhi_ps(s4, s4), _mm_unpacklo_ps(s4, s4));
        const __m256 v = _mm256_loadu_ps(x + 2 * i);
        const __m256 swapped = _mm256_permute_ps(v, 0xB1);
        _mm256_storeu_ps(x + 2 * i, _mm256_fmaddsub_ps(v, c, _mm256_mul_ps(swapped, s)));
      }
      for (; i < half; ++i) {
        const float x0 = x[2 * i], x1 = x[2 * i + 1];
        x[2 * i] = x0 * cos[i] - x1 * sin[i];
        x[2 * i + 1] = x1 * cos[i] + x0 * sin[i];
      }
    }
    return;
  }
  for (int64_t h = 0; h < heads; ++h, x += head_dim) {
    float* a = x;
    float* b = x + half;
    int64_t i = 0;
    for (; i + 8 <= half; i += 8) {
      const __m256 c = _mm256_loadu_ps(cos + i), s = _mm256_loadu_ps(sin + i);
      const __m256 x0 = _mm256_loadu_ps(a + i), x1 = _mm256_loadu_ps(b + i);
      _mm256_storeu_ps(a + i, _mm256_fmsub_ps(x0, c, _mm256_mul_ps(x1, s)));
      _mm256_storeu_ps(b + i, _mm256_fmadd_ps(x1, c, _mm256_mul_ps(x0, s)));
    }
    for (; i < half; ++i) {
      const float x0 = a[i], x1 = b[i];
      a[i] = x0 * cos[i] - x1 * sin[i];
      b[i] = x1 * cos[i] + x0 * sin[i];
    }
  }
}

}  // namespace cromwell::avx2

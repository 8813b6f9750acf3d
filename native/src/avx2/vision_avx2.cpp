// AVX2 vision ops (signatures and meaning in vision.h): vectorised over output channels, with a
// scalar tail for channel counts that are not a multiple of 8.
#include <algorithm>

#include "../vision.h"
#include "math_avx2.h"

namespace cromwell::avx2 {

void conv_stem_rows(const float* x, int64_t H, int64_t W, int64_t cin, const float* wt,
                    const float* b, int64_t cout, int64_t kh, int64_t kw, int64_t stride,
                    float* out, int64_t oy0, int64_t oy1) {
  (void)H;
  const int64_t wo = (W - kw) / stride + 1;
  const int64_t run = kw * cin;
  for (int64_t oy = oy0; oy < oy1; ++oy) {
    for (int64_t ox = 0; ox < wo; ++ox) {
      float* o = out + (oy * wo + ox) * cout;
      const float* patch = x + ((oy * stride) * W + ox * stride) * cin;
      int64_t co = 0;
      // 32 output channels in 4 registers; each patch value is broadcast once per block.
      for (; co + 32 <= cout; co += 32) {
        __m256 a0 = _mm256_loadu_ps(b + co), a1 = _mm256_loadu_ps(b + co + 8),
               a2 = _mm256_loadu_ps(b + co + 16), a3 = _mm256_loadu_ps(b + co + 24);
        for (int64_t ky = 0; ky < kh; ++ky) {
          const float* p = patch + ky * W * cin;
          const float* wr = wt + ky * run * cout + co;
          for (int64_t i = 0; i < run; ++i, wr += cout) {
            const __m256 v = _mm256_broadcast_ss(p + i);
            a0 = _mm256_fmadd_ps(v, _mm256_loadu_ps(wr), a0);
            a1 = _mm256_fmadd_ps(v, _mm256_loadu_ps(wr + 8), a1);
            a2 = _mm256_fmadd_ps(v, _mm256_loadu_ps(wr + 16), a2);
            a3 = _mm256_fmadd_ps(v, _mm256_loadu_ps(wr + 24), a3);
          }
        }
        _mm256_storeu_ps(o + co, a0);
        _mm256_storeu_ps(o + co + 8, a1);
        _mm256_storeu_ps(o + co + 16, a2);
        _mm256_storeu_ps(o + co + 24, a3);
      }
      for (; co + 8 <= cout; co += 8) {
        __m256 a0 = _mm256_loadu_ps(b + co);
        for (int64_t ky = 0; ky < kh; ++ky) {
          const float* p = patch + ky * W * cin;
          const float* wr = wt + ky * run * cout + co;
          for (int64_t i = 0; i < run; ++i, wr += cout) {
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p + i), _mm256_loadu_ps(wr), a0);
          }
        }
        _mm256_storeu_ps(o + co, a0);
      }
      for (; co < cout; ++co) {
        float a = b[co];
        for (int64_t ky = 0; ky < kh; ++ky) {
          const float* p = patch + ky * W * cin;
          for (int64_t i = 0; i < run; ++i) a += p[i] * wt[(ky * run + i) * cout + co];
        }
        o[co] = a;
      }
    }
  }
}

void depthwise_conv3x3_rows(const float* x, int64_t H, int64_t W, int64_t C, const float* w,
                            const float* b, int64_t stride, float* out, int64_t oy0,
                            int64_t oy1) {
  const int64_t wo = (W - 1) / stride + 1;
  for (int64_t oy = oy0; oy < oy1; ++oy) {
    // The taps that fall inside the image (padding contributes zeros: skip those).
    const int64_t dy0 = oy * stride - 1 < 0 ? 1 : 0;
    const int64_t dy1 = std::min<int64_t>(3, H - (oy * stride - 1));
    for (int64_t ox = 0; ox < wo; ++ox) {
      const int64_t dx0 = ox * stride - 1 < 0 ? 1 : 0;
      const int64_t dx1 = std::min<int64_t>(3, W - (ox * stride - 1));
      float* o = out + (oy * wo + ox) * C;
      const float* base = x + ((oy * stride - 1) * W + (ox * stride - 1)) * C;
      int64_t c = 0;
      for (; c + 8 <= C; c += 8) {
        __m256 acc = _mm256_loadu_ps(b + c);
        for (int64_t dy = dy0; dy < dy1; ++dy) {
          for (int64_t dx = dx0; dx < dx1; ++dx) {
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(base + (dy * W + dx) * C + c),
                                  _mm256_loadu_ps(w + (dy * 3 + dx) * C + c), acc);
          }
        }
        _mm256_storeu_ps(o + c, acc);
      }
      for (; c < C; ++c) {
        float acc = b[c];
        for (int64_t dy = dy0; dy < dy1; ++dy) {
          for (int64_t dx = dx0; dx < dx1; ++dx) {
            acc += base[(dy * W + dx) * C + c] * w[(dy * 3 + dx) * C + c];
          }
        }
        o[c] = acc;
      }
    }
  }
}

namespace {

// Column sums of NV vectors of channels, streaming the rows in order (each row's channels are
// contiguous, so every cache line is read once).
template <int NV>
inline void column_means(const float* x, int64_t hw, int64_t C, float inv, float* out) {
  __m256 acc[NV];
  for (int v = 0; v < NV; ++v) acc[v] = _mm256_setzero_ps();
  for (int64_t i = 0; i < hw; ++i) {
    for (int v = 0; v < NV; ++v) acc[v] = _mm256_add_ps(acc[v], _mm256_loadu_ps(x + i * C + 8 * v));
  }
  const __m256 vinv = _mm256_set1_ps(inv);
  for (int v = 0; v < NV; ++v) _mm256_storeu_ps(out + 8 * v, _mm256_mul_ps(acc[v], vinv));
}

}  // namespace

void global_avg_pool(const float* x, int64_t hw, int64_t C, float* out, int64_t c0, int64_t c1) {
  const float inv = 1.0f / float(hw);
  int64_t c = c0;
  for (; c + 64 <= c1; c += 64) column_means<8>(x + c, hw, C, inv, out + c);
  switch ((c1 - c) / 8) {
    case 7: column_means<7>(x + c, hw, C, inv, out + c); break;
    case 6: column_means<6>(x + c, hw, C, inv, out + c); break;
    case 5: column_means<5>(x + c, hw, C, inv, out + c); break;
    case 4: column_means<4>(x + c, hw, C, inv, out + c); break;
    case 3: column_means<3>(x + c, hw, C, inv, out + c); break;
    case 2: column_means<2>(x + c, hw, C, inv, out + c); break;
    case 1: column_means<1>(x + c, hw, C, inv, out + c); break;
    default: break;
  }
  c += (c1 - c) / 8 * 8;
  for (; c < c1; ++c) {
    float s = 0.0f;
    for (int64_t i = 0; i < hw; ++i) s += x[i * C + c];
    out[c] = s * inv;
  }
}

}  // namespace cromwell::avx2

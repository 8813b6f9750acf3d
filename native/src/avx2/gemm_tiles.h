// The cache-blocked matrix-matrix driver shared by the AVX2 and AVX-512 kernels: weights are
// unpacked to float one tile at a time (NR weight rows interleaved per k), and a register-tiled
// micro-kernel of MR activation rows x NR weight rows runs over the whole k range of the tile.
// Only the micro-kernel and the panel width differ between instruction sets.
//
// Include only from translation units under avx2/ or avx512/ (compiled with at least -mavx2
// -mfma -mf16c). Everything here has internal linkage, so each of those translation units gets
// its own copy built with its own instruction set, and none can leak into portable code.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

#include "../cpu_features.h"
#include "../quant.h"
#include "../threadpool.h"

namespace cromwell::gemm {
namespace {

// A 64-byte aligned float buffer that grows on demand.
struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};
struct Buffer {
  std::unique_ptr<float, AlignedFree> data;
  int64_t size = 0;
  float* get(int64_t n) {
    if (n > size) {
      const size_t bytes = (sizeof(float) * size_t(n) + 63) / 64 * 64;
      data.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
      if (!data) throw std::bad_alloc();
      size = n;
    }
    return data.get();
  }
};

// Per-thread scratch: the packed weight tile, NR unpacked rows and a row of zeros; pool threads
// are persistent, so this is allocated once per thread (and grown when needed).
struct Scratch {
  Buffer packed;
  Buffer rows;
  Buffer zeros;
  int64_t zeroed = 0;
};

// In-register transpose of an 8x8 block: r[i] holds row i; afterwards r[j] holds column j.
inline void transpose_8x8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

// Unpacks weight rows [j0, j0 + nc) x k-range [p0, p0 + kc) to float, NR rows interleaved per
// k (rows past nc within the last panel are zero): each panel's rows are unpacked whole, then
// transposed 8x8 at a time, so the packed tile is written sequentially.
template <int NR>
void pack_weights(Format f, const uint8_t* w, int64_t rb, int64_t j0, int64_t nc, int64_t p0,
                  int64_t kc, float* packed, Scratch& s) {
  static_assert(NR % 8 == 0, "panels are whole 8x8 transposes");
  const int64_t be = block_elems(f), bb = block_bytes(f);
  float* unpacked = s.rows.get(NR * kc);
  float* zeros = s.zeros.get(kc);
  if (s.zeroed < kc) {
    std::fill(zeros, zeros + kc, 0.0f);
    s.zeroed = kc;
  }
  for (int64_t jr = 0; jr < nc; jr += NR) {
    const float* src[NR];
    for (int64_t r = 0; r < NR; ++r) {
      if (jr + r >= nc) {
        src[r] = zeros;
        continue;
      }
      const uint8_t* wr = w + (j0 + jr + r) * rb + p0 / be * bb;
      if (f == Format::F32) {
        src[r] = reinterpret_cast<const float*>(wr);
      } else {
        avx2::dequantize_row(f, wr, unpacked + r * kc, kc);
        src[r] = unpacked + r * kc;
      }
    }
    float* dst = packed + jr * kc;
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8) {
      for (int group = 0; group < NR / 8; ++group) {
        __m256 v[8];
        for (int i = 0; i < 8; ++i) v[i] = _mm256_loadu_ps(src[8 * group + i] + p);
        transpose_8x8(v);
        for (int j = 0; j < 8; ++j) _mm256_store_ps(dst + (p + j) * NR + 8 * group, v[j]);
      }
    }
    for (; p < kc; ++p) {
      for (int r = 0; r < NR; ++r) dst[p * NR + r] = src[r][p];
    }
  }
}

constexpr int64_t kMaxKC = 4096;  // k per packed tile when a row is longer (multiple of 256)
constexpr int64_t kMaxNC = 512;   // weight rows per packed tile

// The tile shape: k per tile (all of it, unless rows are very long) and weight rows per tile,
// so that the packed tile fills about half of the L2 cache detected at load: the MR x NR
// accumulators then run over the whole k range in registers and each output is written once,
// while the packed tile is reused from L2 by every strip of activation rows. Fewer rows where
// that would leave a thread without a tile.
struct TileShape {
  int64_t kc;
  int64_t nc;
};

inline TileShape tile_shape(int64_t rows, int64_t k, int nth, int64_t nr) {
  const int64_t l2 = cpu_features().l2_bytes > 0 ? cpu_features().l2_bytes : (int64_t(1) << 20);
  const int64_t budget = std::max<int64_t>(int64_t(256) << 10, l2 / 2) / int64_t(sizeof(float));
  const int64_t kc = (4 * nr * k <= budget) ? k : kMaxKC;
  int64_t nc = std::min<int64_t>(kMaxNC, std::max<int64_t>(nr, budget / kc / nr * nr));
  const int64_t per_thread = (rows + nth - 1) / nth;
  nc = std::min(nc, std::max<int64_t>(nr, (per_thread + nr - 1) / nr * nr));
  return {kc, nc};
}

// C[mr x nr] (+)= A[mr x kc] B[kc x NR]: A rows lda apart, B packed as NR weight rows per k, C
// rows ldc apart; accumulate when an earlier k tile already wrote C; nr <= NR columns are kept.
using MicroKernel = void (*)(int64_t kc, const float* a, int64_t lda, const float* bp, float* c,
                             int64_t ldc, bool accumulate, int nr);

// y[n, rows] = x[n, k] W^T, W in format f; kernels[mr] handles strips of mr <= MR activation
// rows. Threads split the weight tiles.
template <int MR, int NR>
void matmul_tiles(const MicroKernel (&kernels)[MR + 1], Format f, const void* w, int64_t rows,
                  int64_t k, const float* x, int64_t n, float* y) {
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  const int64_t rb = row_bytes(f, k);
  const TileShape shape = tile_shape(rows, k, thread_pool().size(), NR);
  const int64_t n_tiles = (rows + shape.nc - 1) / shape.nc;
  parallel_for(n_tiles, 1, [&](int64_t t_begin, int64_t t_end) {
    thread_local Scratch s;
    float* packed = s.packed.get((shape.nc + NR) * shape.kc);
    for (int64_t t = t_begin; t < t_end; ++t) {
      const int64_t j0 = t * shape.nc;
      const int64_t nc = std::min(shape.nc, rows - j0);
      for (int64_t p0 = 0; p0 < k; p0 += shape.kc) {
        const int64_t kc = std::min(shape.kc, k - p0);
        pack_weights<NR>(f, wb, rb, j0, nc, p0, kc, packed, s);
        for (int64_t i0 = 0; i0 < n; i0 += MR) {
          const int mr = int(std::min<int64_t>(MR, n - i0));
          for (int64_t jr = 0; jr < nc; jr += NR) {
            kernels[mr](kc, x + i0 * k + p0, k, packed + jr * kc, y + i0 * rows + j0 + jr, rows,
                        p0 > 0, int(std::min<int64_t>(NR, nc - jr)));
          }
        }
      }
    }
  });
}

}  // namespace
}  // namespace cromwell::gemm

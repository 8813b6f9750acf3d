// Q6_K on AMX tiles (the scheme of split_tiles.h). Included by int_gemm_amx.cpp only.
//
// A Q6_K weight is d * sc_j * v: v = q - 32 in [-32, 31], sc_j a signed byte per 16-element
// sub-block j, d per 256-element super-block. sc_j is written in three digits of base 8, each
// in [-3, 4] (eight consecutive integers: every sc in [-219, 292] has one such form):
// sc_j = t0 + 8 t1 + 64 t2, and v * t (at least -128, at most 124) is a signed byte, so
//   sum_k a_k sc_j(k) v_k = sum_p 8^p sum_k a_k (v t_p)_k
// over the whole super-block: three tile multiplies a 64-element step, twelve a super-block,
// where one per 16-element sub-block would take sixteen and as many conversions.
#pragma once

#include "split_tiles.h"

namespace cromwell::avx512amx {
namespace {
namespace q6k {

using split::L;
using split::kActBlock;

constexpr int kParts = 3;
constexpr int64_t kCorr = kParts * 4096;  // [16] int32: -128 * sum_k v_k sc_j(k)
constexpr int64_t kD = kCorr + 64;  // [16] float

// sc's digits t_p in [-3, 4] with sc = t0 + 8 t1 + 64 t2, for every signed byte sc (index
// sc + 128).
struct Digits {
  int8_t t[256][kParts];
  constexpr Digits() : t() {
    for (int i = 0; i < 256; ++i) {
      int sc = i - 128;
      for (int p = 0; p < kParts; ++p) {
        const int digit = ((sc + 3) & 7) - 3;
        t[i][p] = int8_t(digit);
        sc = (sc - digit) / 8;
      }
    }
  }
};
constexpr Digits kDigits;

struct Scheme {
  static constexpr int64_t kBlockBytes = kD + 64;
  static_assert(kBlockBytes % 64 == 0, "packed blocks stay 64-byte aligned");
  static constexpr int64_t kTmpBytes = kParts * 16 * 256;
  static constexpr int kGroups = 1;
  static constexpr int64_t kStretchBlocks = 6;
  static constexpr bool kPairs = false;

  // Super-blocks [b0, b0 + nb) of the panel's 16 rows (a short panel repeats its last row).
  // Each 32 values v make v * t for every |t| <= 4 once; each part of each 16 of them is then
  // one of those, its sign set by t's (vpsignb, which also gives 0 for t = 0).
  static void pack(const uint8_t* const* rows, int64_t b0, int64_t nb, uint8_t* pk, uint8_t* tmp) {
    const __m256i offset = _mm256_set1_epi8(32);
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* pb = pk + b * kBlockBytes;
      int32_t* corr = reinterpret_cast<int32_t*>(pb + kCorr);
      float* d = reinterpret_cast<float*>(pb + kD);
      for (int r = 0; r < L; ++r) {
        const block_q6_K* blk = reinterpret_cast<const block_q6_K*>(rows[r]) + b0 + b;
        int64_t total = 0;
        for (int h = 0; h < 2; ++h) {
          __m256i runs[4];  // elements 128 h + 32 s .., values q (0..63)
          avx2::q6_K_runs(blk->ql + 64 * h, blk->qh + 32 * h, runs);
          for (int s = 0; s < 4; ++s) {
            const int j = 8 * h + 2 * s;  // the sub-blocks of the low and high 16 values
            const __m256i v = _mm256_sub_epi8(runs[s], offset);
            const __m256i v2 = _mm256_add_epi8(v, v);
            const __m256i times[5] = {v, v, v2, _mm256_add_epi8(v2, v), _mm256_add_epi8(v2, v2)};
            const int8_t* t_lo = kDigits.t[blk->scales[j] + 128];
            const int8_t* t_hi = kDigits.t[blk->scales[j + 1] + 128];
            uint8_t* out = tmp + r * 256 + 128 * h + 32 * s;
            for (int p = 0; p < kParts; ++p) {
              const __m256i mag = _mm256_blend_epi32(times[std::abs(t_lo[p])], times[std::abs(t_hi[p])], 0xF0);
              const __m256i sign = _mm256_set_m128i(_mm_set1_epi8(t_hi[p]), _mm_set1_epi8(t_lo[p]));
              _mm256_store_si256(reinterpret_cast<__m256i*>(out + p * 16 * 256), _mm256_sign_epi8(mag, sign));
            }
            alignas(32) uint64_t sums[4];  // of q over elements 0-7, 8-15, 16-23, 24-31
            _mm256_store_si256(reinterpret_cast<__m256i*>(sums), _mm256_sad_epu8(runs[s], _mm256_setzero_si256()));
            total += int64_t(blk->scales[j]) * (int64_t(sums[0] + sums[1]) - 32 * 16);
            total += int64_t(blk->scales[j + 1]) * (int64_t(sums[2] + sums[3]) - 32 * 16);
          }
        }
        corr[r] = int32_t(-128 * total);
        d[r] = split::half_to_float(blk->d);
      }
      for (int p = 0; p < kParts; ++p) split::interleave(tmp + p * 16 * 256, pb + p * 4096);
    }
  }

  // 16 activation rows (as q4k's tiles, G = 1) against a packed panel of nb super-blocks.
  // Tiles: C 0-2 (the parts), A 3, B 4-6.
  template <int G>
  static void tiles(const uint8_t* pk, int64_t nb, const uint8_t* a, int64_t, const uint8_t* x,
                    int64_t act_bytes, const int32_t*, int64_t, float* y, int64_t ldy, int nr, int valid,
                    bool accumulate) {
    static_assert(G == 1, "one group of 16 rows: the three parts' tiles leave no room for two");
    constexpr int64_t kAct = sizeof(block_q8_K);
    alignas(64) int32_t c[kParts][16 * L];
    alignas(64) float done[16 * L];  // written by the first super-block, then accumulated
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* pb = pk + b * kBlockBytes;
      const uint8_t* ab = a + b * kActBlock;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      for (int s = 0; s < 4; ++s) {  // 64 elements a step
        _tile_loadd(3, ab + 1024 * s, 64);
        _tile_loadd(4, pb + 1024 * s, 64);
        _tile_loadd(5, pb + 4096 + 1024 * s, 64);
        _tile_loadd(6, pb + 8192 + 1024 * s, 64);
        _tile_dpbusd(0, 3, 4);
        _tile_dpbusd(1, 3, 5);
        _tile_dpbusd(2, 3, 6);
      }
      _tile_stored(0, c[0], 64);
      _tile_stored(1, c[1], 64);
      _tile_stored(2, c[2], 64);
      const __m512i corr = _mm512_load_si512(pb + kCorr);
      const __m512 d = _mm512_load_ps(pb + kD);
      for (int i = 0; i < 16; ++i) {
        __m512i sum = _mm512_add_epi32(_mm512_load_si512(c[0] + i * L), corr);
        sum = _mm512_add_epi32(sum, _mm512_slli_epi32(_mm512_load_si512(c[1] + i * L), 3));
        sum = _mm512_add_epi32(sum, _mm512_slli_epi32(_mm512_load_si512(c[2] + i * L), 6));
        float dx;
        std::memcpy(&dx, x + i * act_bytes + b * kAct, 4);
        const __m512 scaled = _mm512_mul_ps(d, _mm512_set1_ps(dx));
        const __m512 prior = b == 0 ? _mm512_setzero_ps() : _mm512_load_ps(done + i * L);
        _mm512_store_ps(done + i * L, _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), scaled, prior));
      }
    }
    split::store_results<G>(done, valid, y, ldy, nr, accumulate);
  }
};

}  // namespace q6k
}  // namespace
}  // namespace cromwell::avx512amx

// Q4_K on AMX tiles (the scheme of split_tiles.h). Included by int_gemm_amx.cpp only.
//
// A Q4_K weight is d * sc_j * q - dmin * m_j: q 4 bits, sc_j and m_j 6-bit integers per
// 32-element sub-block j, d and dmin per 256-element super-block. sc_j = 8 * hi_j + lo_j with
// hi_j, lo_j <= 7, so q * lo_j and q * hi_j (at most 105) are signed bytes and
//   sum_k a_k sc_j(k) q_k = 8 * sum_k a_k (q hi)_k + sum_k a_k (q lo)_k
// over the whole super-block. Four C tiles (two groups of 16 activation rows, lo and hi)
// accumulate over its four 64-element steps and are stored and converted once; the mins term
// comes from the activations' sums per 32 (block_q8_K's bsums), as in the other builds.
#pragma once

#include "split_tiles.h"

namespace cromwell::avx512amx {
namespace {
namespace q4k {

using split::L;
using split::kActBlock;

constexpr int64_t kLo = 0;  // [64 quads][16 lanes][4] int8: q * lo_j
constexpr int64_t kHi = 4096;  // the same for q * hi_j
constexpr int64_t kCorr = 8192;  // [16] int32: -128 * sum_k q_k sc_j(k)
constexpr int64_t kD = kCorr + 64;  // [16] float
constexpr int64_t kDmin = kD + 64;  // [16] float
constexpr int64_t kMins = kDmin + 64;  // [4][16] int32: pairs of int16 mins (2p, 2p + 1)

struct Scheme {
  static constexpr int64_t kBlockBytes = kMins + 256;  // one packed super-block of a panel
  static_assert(kBlockBytes % 64 == 0, "packed blocks stay 64-byte aligned");
  static constexpr int64_t kTmpBytes = 16 * 256;
  static constexpr int kGroups = 2;
  // 1,536 elements in one stretch: every further stretch reads and writes the results again.
  static constexpr int64_t kStretchBlocks = 8;
  static constexpr bool kPairs = true;

  // Super-blocks [b0, b0 + nb) of the panel's 16 rows (a short panel repeats its last row).
  // The q are unpacked and interleaved once; each 64-byte line of them (four q of each of the
  // 16 rows) then becomes its lo and hi parts by one 16-bit multiply each, by a vector holding
  // every row's lo_j (or hi_j) twice: q * lo_j is at most 105, so no byte carries into the
  // next. The correction sums the parts' bytes per row (a VNNI dot with ones).
  static void pack(const uint8_t* const* rows, int64_t b0, int64_t nb, uint8_t* pk, uint8_t* tmp) {
    const __m512i ones = _mm512_set1_epi8(1);
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* pb = pk + b * kBlockBytes;
      float* d = reinterpret_cast<float*>(pb + kD);
      float* dmin = reinterpret_cast<float*>(pb + kDmin);
      int32_t* mins = reinterpret_cast<int32_t*>(pb + kMins);
      alignas(64) uint32_t lo[8][L], hi[8][L];  // row r's lo_j (hi_j) in both halves of lane r
      for (int r = 0; r < L; ++r) {
        const block_q4_K* blk = reinterpret_cast<const block_q4_K*>(rows[r]) + b0 + b;
        uint8_t sc[8], m[8];
        for (int j = 0; j < 8; ++j) {
          k_scale_min(j, blk->scales, &sc[j], &m[j]);
          lo[j][r] = uint32_t(sc[j] & 7) * 0x10001u;
          hi[j][r] = uint32_t(sc[j] >> 3) * 0x10001u;
        }
        for (int g = 0; g < 4; ++g) {
          __m256i qh = _mm256_setzero_si256(), q_lo, q_hi;  // elements 64g.., 64g + 32..
          avx2::q45_K_group<false>(blk->qs + 32 * g, &qh, &q_lo, &q_hi);
          _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + r * 256 + 64 * g), q_lo);
          _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + r * 256 + 64 * g + 32), q_hi);
        }
        d[r] = split::half_to_float(blk->d);
        dmin[r] = split::half_to_float(blk->dmin);
        for (int p = 0; p < 4; ++p) mins[p * L + r] = int32_t(uint32_t(m[2 * p]) | uint32_t(m[2 * p + 1]) << 16);
      }
      split::interleave(tmp, pb + kLo);  // the q, in the layout of the parts
      __m512i sum_lo = _mm512_setzero_si512(), sum_hi = _mm512_setzero_si512();
      for (int j = 0; j < 8; ++j) {  // sub-block j: quads 8j .. 8j + 7
        const __m512i lo_j = _mm512_load_si512(lo[j]), hi_j = _mm512_load_si512(hi[j]);
        for (int t = 8 * j; t < 8 * j + 8; ++t) {
          const __m512i q = _mm512_load_si512(pb + kLo + 64 * t);
          const __m512i part_lo = _mm512_mullo_epi16(q, lo_j), part_hi = _mm512_mullo_epi16(q, hi_j);
          _mm512_store_si512(pb + kLo + 64 * t, part_lo);
          _mm512_store_si512(pb + kHi + 64 * t, part_hi);
          sum_lo = _mm512_dpbusd_epi32(sum_lo, part_lo, ones);
          sum_hi = _mm512_dpbusd_epi32(sum_hi, part_hi, ones);
        }
      }
      // -128 * sum_k q_k sc_j(k), sc = lo + 8 hi
      _mm512_store_si512(pb + kCorr, _mm512_mullo_epi32(_mm512_add_epi32(sum_lo, _mm512_slli_epi32(sum_hi, 3)),
                                                        _mm512_set1_epi32(-128)));
    }
  }

  // G groups of 16 activation rows (a: their packed quant bytes from the stretch's first
  // super-block, the second group a_group bytes on; x: their blocks, for the scales) against
  // a packed panel of nb super-blocks. Tiles: C 0-3 (group g: lo 2g, hi 2g + 1), A 4-5, B 6
  // (lo) and 7 (hi).
  template <int G>
  static void tiles(const uint8_t* pk, int64_t nb, const uint8_t* a, int64_t a_group, const uint8_t* x,
                    int64_t act_bytes, const int32_t* pairs, int64_t pair_stride, float* y, int64_t ldy,
                    int nr, int valid, bool accumulate) {
    constexpr int64_t kAct = sizeof(block_q8_K);
    alignas(64) int32_t c[4][16 * L];
    alignas(64) float done[G * 16 * L];  // written by the first super-block, then accumulated
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* pb = pk + b * kBlockBytes;
      const uint8_t* ab = a + b * kActBlock;
      _tile_zero(0);
      _tile_zero(1);
      if constexpr (G == 2) {
        _tile_zero(2);
        _tile_zero(3);
      }
      for (int s = 0; s < 4; ++s) {  // 64 elements a step
        _tile_loadd(4, ab + 1024 * s, 64);
        _tile_loadd(6, pb + kLo + 1024 * s, 64);
        _tile_loadd(7, pb + kHi + 1024 * s, 64);
        _tile_dpbusd(0, 4, 6);
        _tile_dpbusd(1, 4, 7);
        if constexpr (G == 2) {
          _tile_loadd(5, ab + a_group + 1024 * s, 64);
          _tile_dpbusd(2, 5, 6);
          _tile_dpbusd(3, 5, 7);
        }
      }
      _tile_stored(0, c[0], 64);
      _tile_stored(1, c[1], 64);
      if constexpr (G == 2) {
        _tile_stored(2, c[2], 64);
        _tile_stored(3, c[3], 64);
      }
      const __m512i corr = _mm512_load_si512(pb + kCorr);
      const __m512 d = _mm512_load_ps(pb + kD);
      const __m512 dmin = _mm512_load_ps(pb + kDmin);
      const __m512i m0 = _mm512_load_si512(pb + kMins), m1 = _mm512_load_si512(pb + kMins + 64);
      const __m512i m2 = _mm512_load_si512(pb + kMins + 128), m3 = _mm512_load_si512(pb + kMins + 192);
      for (int g = 0; g < G; ++g) {
        const int32_t* lo = c[2 * g];
        const int32_t* hi = c[2 * g + 1];
        for (int i = 0; i < 16; ++i) {
          const int row = 16 * g + i;
          const __m512i sum = _mm512_add_epi32(
              _mm512_add_epi32(_mm512_slli_epi32(_mm512_load_si512(hi + i * L), 3), _mm512_load_si512(lo + i * L)),
              corr);
          const int32_t* pr = pairs + row * pair_stride + 4 * b;
          __m512i mins = _mm512_madd_epi16(m0, _mm512_set1_epi32(pr[0]));
          mins = _mm512_dpwssd_epi32(mins, m1, _mm512_set1_epi32(pr[1]));
          mins = _mm512_dpwssd_epi32(mins, m2, _mm512_set1_epi32(pr[2]));
          mins = _mm512_dpwssd_epi32(mins, m3, _mm512_set1_epi32(pr[3]));
          const __m512 block =
              _mm512_fmsub_ps(_mm512_cvtepi32_ps(sum), d, _mm512_mul_ps(_mm512_cvtepi32_ps(mins), dmin));
          float dx;
          std::memcpy(&dx, x + row * act_bytes + b * kAct, 4);
          const __m512 prior = b == 0 ? _mm512_setzero_ps() : _mm512_load_ps(done + row * L);
          _mm512_store_ps(done + row * L, _mm512_fmadd_ps(block, _mm512_set1_ps(dx), prior));
        }
      }
    }
    split::store_results<G>(done, valid, y, ldy, nr, accumulate);
  }
};

}  // namespace q4k
}  // namespace
}  // namespace cromwell::avx512amx

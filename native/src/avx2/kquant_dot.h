// AVX2 dot products of the k-quants (Q4_K, Q5_K, Q6_K: 256-element super-blocks) against
// block_q8_K activations, and the rows kernel matrix-vector products run them in.
//
// Three translation units compile this header: avx2/matmul_avx2.cpp, and vnni/rows_vnni.cpp
// built twice (quant_simd.h's CROMWELL_VNNI), where each vpmaddwd of the 16-bit
// products with their scales and the vpaddd into the running sum is one vpdpwssd. Both are exact
// int32 arithmetic (neither saturates), so the builds give bit-identical results. Everything is
// in an anonymous namespace: each unit has its own copy, compiled for its own instruction set.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "../matmul.h"
#include "quant_simd.h"
#include "simd_helpers.h"

namespace cromwell::avx2 {
namespace {

// sum + a . b over each pair of int16 lanes, in int32 lanes: vpmaddwd and vpaddd, or (in a VNNI
// unit) one vpdpwssd. Both wrap alike, so the results are the same bits.
static inline __m256i add_products_i16(__m256i sum, __m256i a, __m256i b) {
#if CROMWELL_VNNI
  return dpwssd(sum, a, b);
#else
  return _mm256_add_epi32(sum, _mm256_madd_epi16(a, b));
#endif
}

// The eight 6-bit scales and eight 6-bit mins of a q4_K / q5_K super-block as 16 int16, the
// scales in the low 128-bit lane and the mins in the high one. Twelve bytes hold them: bytes 0-3
// the low six bits of scales 0-3 (their top two bits: bits 4-5 of scales 4-7), bytes 4-7 the
// same for mins 0-3 and mins 4-7, bytes 8-11 the low four bits of scales 4-7 (low nibbles) and
// of mins 4-7 (high nibbles). Four bytes at a time, in general-purpose registers: unpacked byte
// by byte into an array, then broadcast one by one, the scales cost as much as the dot products.
static inline __m256i k_scales_mins(const uint8_t* s) {
  uint32_t a, b, c;
  std::memcpy(&a, s, 4);
  std::memcpy(&b, s + 4, 4);
  std::memcpy(&c, s + 8, 4);
  constexpr uint32_t kLow6 = 0x3f3f3f3fu, kLow4 = 0x0f0f0f0fu, kLow2 = 0x03030303u;
  const uint32_t scales_lo = a & kLow6;
  const uint32_t scales_hi = (c & kLow4) | (((a >> 6) & kLow2) << 4);
  const uint32_t mins_lo = b & kLow6;
  const uint32_t mins_hi = ((c >> 4) & kLow4) | (((b >> 6) & kLow2) << 4);
  return _mm256_cvtepu8_epi16(
      _mm_setr_epi32(int(scales_lo), int(scales_hi), int(mins_lo), int(mins_hi)));
}

// pshufb patterns that spread one int16 of a 128-bit lane over all eight of its int16 places:
// kSpreadScale[j] picks scale j.
alignas(32) static const uint8_t kSpreadScale[8][32] = {
#define CROMWELL_SPREAD(j) {2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, \
                            2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, \
                            2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, \
                            2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1, 2 * j, 2 * j + 1}
    CROMWELL_SPREAD(0), CROMWELL_SPREAD(1), CROMWELL_SPREAD(2), CROMWELL_SPREAD(3),
    CROMWELL_SPREAD(4), CROMWELL_SPREAD(5), CROMWELL_SPREAD(6), CROMWELL_SPREAD(7),
#undef CROMWELL_SPREAD
};

// A matrix-vector product streams the weights from memory once, and the k-quant dot products
// spend so much arithmetic per byte that the hardware prefetcher alone falls behind (Q4_K at
// 0.42 of the read bandwidth without help, one thread): as each super-block is read, the
// bytes kAheadBytes past it are asked for, a few lines per step, so the requests overlap the
// arithmetic. Measured on 768x3072 at 2 threads, 2 KiB ahead beat 1, 3 and 4 KiB (further
// ahead, the requests crowd out the loop's own misses), and beat asking for each whole row
// 1 KiB ahead when it starts (0.91 of a per-call read for Q4_K against 0.83, Q6_K 0.95
// against 0.81).
constexpr int64_t kAheadBytes = 2048;

// always_inline: outlined, GCC judged this function free of side effects (a prefetch changes
// no memory) and dropped the calls.
template <int64_t kBytes>
__attribute__((always_inline)) inline void prefetch_ahead(const void* block) {
  const char* p = static_cast<const char*>(block) + kAheadBytes;
  for (int64_t off = 0; off < kBytes; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
}

// A q4_K / q5_K super-block's values are d scale_j q - dmin min_j (q45_K_group unpacks the q of
// sub-blocks 2 g and 2 g + 1), so against 8-bit activations the dot is
// dx (d sum_j scale_j (q . x)_j - dmin sum_j min_j sum(x)_j), the sums of x per 32 coming from
// the activation block's sums per 16.
template <bool kQ5>
float dot_q45_K(int64_t k, const void* w, const void* x) {
  const block_q8_K* b = static_cast<const block_q8_K*>(x);
  __m256 acc = _mm256_setzero_ps();
  __m128 acc_m = _mm_setzero_ps();
  for (int64_t i = 0; i < k / QK_K; ++i) {
    const uint8_t *q, *head;
    __m256i qh = _mm256_setzero_si256();
    if constexpr (kQ5) {
      const block_q5_K& blk = static_cast<const block_q5_K*>(w)[i];
      q = blk.qs;
      head = reinterpret_cast<const uint8_t*>(&blk.d);
      qh = load_256(blk.qh);
      prefetch_ahead<sizeof(block_q5_K)>(&blk);
    } else {
      const block_q4_K& blk = static_cast<const block_q4_K*>(w)[i];
      q = blk.qs;
      head = reinterpret_cast<const uint8_t*>(&blk.d);
      prefetch_ahead<sizeof(block_q4_K)>(&blk);
    }
    // (d, dmin): two halves converted at once, times the activations' scale
    uint32_t halves;
    std::memcpy(&halves, head, 4);
    const __m128 dd = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(int(halves))), _mm_set1_ps(b[i].d));
    const __m256i sm = k_scales_mins(head + 4);
    // mins . (sums of x per 32): the activation sums per 16, added in pairs
    const __m128i sums32 = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].bsums)),
                                          _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].bsums + 8)));
    const __m128i mins_dot = _mm_madd_epi16(_mm256_extracti128_si256(sm, 1), sums32);
    acc_m = _mm_fmadd_ps(_mm_shuffle_ps(dd, dd, _MM_SHUFFLE(1, 1, 1, 1)), _mm_cvtepi32_ps(mins_dot), acc_m);
    const __m256i scales = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(sm));
    const int8_t* qx = b[i].qs;
    // two running sums, so that consecutive vpdpwssd do not wait on each other
    __m256i sum_lo = _mm256_setzero_si256(), sum_hi = _mm256_setzero_si256();
    for (int g = 0; g < 4; ++g, q += 32, qx += 64) {
      __m256i lo, hi;
      q45_K_group<kQ5>(q, &qh, &lo, &hi);
      const __m256i p_lo = _mm256_maddubs_epi16(lo, load_256(qx));
      const __m256i p_hi = _mm256_maddubs_epi16(hi, load_256(qx + 32));
      sum_lo = add_products_i16(sum_lo, p_lo, _mm256_shuffle_epi8(scales, load_256(kSpreadScale[2 * g])));
      sum_hi = add_products_i16(sum_hi, p_hi, _mm256_shuffle_epi8(scales, load_256(kSpreadScale[2 * g + 1])));
    }
    const __m256i sumi = _mm256_add_epi32(sum_lo, sum_hi);
    acc = _mm256_fmadd_ps(_mm256_broadcastss_ps(dd), _mm256_cvtepi32_ps(sumi), acc);
  }
  __m128 m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return hsum_float_8(acc) - _mm_cvtss_f32(m);
}

// pshufb patterns over 8 int16 scales broadcast to both 128-bit lanes: kSpreadPair[s] fills the
// low lane with scale 2 s and the high lane with scale 2 s + 1.
alignas(32) static const uint8_t kSpreadPair[4][32] = {
#define CROMWELL_PAIR(s) {4 * s, 4 * s + 1, 4 * s, 4 * s + 1, 4 * s, 4 * s + 1, 4 * s, 4 * s + 1, \
                          4 * s, 4 * s + 1, 4 * s, 4 * s + 1, 4 * s, 4 * s + 1, 4 * s, 4 * s + 1, \
                          4 * s + 2, 4 * s + 3, 4 * s + 2, 4 * s + 3, 4 * s + 2, 4 * s + 3, 4 * s + 2, 4 * s + 3, \
                          4 * s + 2, 4 * s + 3, 4 * s + 2, 4 * s + 3, 4 * s + 2, 4 * s + 3, 4 * s + 2, 4 * s + 3}
    CROMWELL_PAIR(0), CROMWELL_PAIR(1), CROMWELL_PAIR(2), CROMWELL_PAIR(3),
#undef CROMWELL_PAIR
};

// Each half of a q6_K super-block (128 elements) is four runs of 32 (q6_K_runs); a run's first
// 16 elements have scale 2 s, the next 16 scale 2 s + 1. The stored q is the value + 32: the
// offset comes out as 32 sum_j scale_j sum(x)_j over the sixteen sub-blocks, from the activation
// sums per 16.
float dot_q6_K(int64_t k, const void* w, const void* x) {
  const block_q6_K* a = static_cast<const block_q6_K*>(w);
  const block_q8_K* b = static_cast<const block_q8_K*>(x);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < k / QK_K; ++i) {
    prefetch_ahead<sizeof(block_q6_K)>(a + i);
    const uint8_t* ql = a[i].ql;
    const uint8_t* qh = a[i].qh;
    const int8_t* qx = b[i].qs;
    __m256i sums[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};  // as in dot_q45_K
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, qx += 128) {
      __m256i q[4];
      q6_K_runs(ql, qh, q);
      const __m256i scales = _mm256_broadcastsi128_si256(
          _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a[i].scales + 8 * half))));
      for (int s = 0; s < 4; ++s) {
        const __m256i p = _mm256_maddubs_epi16(q[s], load_256(qx + 32 * s));
        sums[s & 1] = add_products_i16(sums[s & 1], p, _mm256_shuffle_epi8(scales, load_256(kSpreadPair[s])));
      }
    }
    const __m256i sumi = _mm256_add_epi32(sums[0], sums[1]);
    const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a[i].scales)));
    const __m256i offset = _mm256_madd_epi16(s16, load_256(b[i].bsums));
    const __m256i total = _mm256_sub_epi32(sumi, _mm256_slli_epi32(offset, 5));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(b[i].d * half_to_float(a[i].d)), _mm256_cvtepi32_ps(total), acc);
  }
  return hsum_float_8(acc);
}

// Rows of a k-quant matrix one at a time, each dot product prefetching ahead (rows lie back to
// back, so past a row's end it asks for the next row's bytes). The k-quants take each row alone:
// their per-super-block work is already shared by 256 elements.
template <float (*Dot)(int64_t, const void*, const void*)>
void dot_rows_ahead(int64_t k, const void* w, int64_t row_stride, int64_t n_rows, const void* x,
                    float* y) {
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  for (int64_t r = 0; r < n_rows; ++r) y[r] = Dot(k, wb + r * row_stride, x);
}

// The rows kernel of a k-quant format; null for the others.
RowsDotFn kquant_rows_kernel(Format f) {
  switch (f) {
    case Format::Q4_K: return dot_rows_ahead<dot_q45_K<false>>;
    case Format::Q5_K: return dot_rows_ahead<dot_q45_K<true>>;
    case Format::Q6_K: return dot_rows_ahead<dot_q6_K>;
    default: return nullptr;
  }
}

}  // namespace
}  // namespace cromwell::avx2

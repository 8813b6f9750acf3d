// AVX2 matrix-vector kernels that dot four weight rows at once with one block of quantized
// activations (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 against block_q8a).
//
// Three translation units compile this header: avx2/matvec_rows_avx2.cpp, and
// vnni/rows_vnni.cpp built twice (quant_simd.h's CROMWELL_VNNI), where every multiply of unsigned by
// signed bytes summed into 32-bit lanes (vpmaddubsw, then vpmaddwd against ones) is one vpdpbusd.
// The sums are exact either way (no pair of products here reaches the int16 saturation of
// vpmaddubsw), so the builds give bit-identical results. Everything is in an anonymous
// namespace: each unit has its own copy, compiled for its own instruction set.
//
// One row at a time, the work per block besides the integer dot product (two half-to-float
// conversions, a scalar multiply, a broadcast, a scalar multiply-add for the offset term) costs
// as much as the dot product itself, and decode is compute-bound on it. Four rows share:
// - the scales: the four rows' half-float headers are gathered into one vector, converted and
//   multiplied by the activation block's (d, s) in one instruction each;
// - the activation block, loaded once;
// - for the 4- and 5-bit formats, the nibble unpacking of two rows in one 256-bit register: row A's
//   16 packed bytes in the low lane and row B's in the high lane give, masked, [A lo | B lo] and,
//   shifted, [A hi | B hi], which multiply against the activations' first and second 16 bytes
//   broadcast to both lanes; the two 16-bit products are added (4-bit values keep every pair
//   sum under 2 * 2 * 15 * 127) and widened once, leaving A's four partial sums in the low lane
//   and B's in the high lane;
// - the float conversion and multiply-add, once per pair of rows: [A | B] partial sums meet
//   [d_A dx (x4) | d_B dx (x4)].
//
// Every row's result depends only on that row and the activations (each pair's lanes compute
// independently and a short group repeats its last row), so results never depend on how rows
// are grouped or split between threads.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "../matmul.h"
#include "quant_simd.h"
#include "simd_helpers.h"

namespace cromwell::avx2 {
namespace {

static inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

static inline int load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// Four rows' block headers as eight halves [h0 h0' h1 h1' h2 h2' h3 h3']: (d, m) as stored for
// the formats with a min, else (d, d). The single halves go in with 16-bit inserts and are
// doubled by one unpack: assembled as 32-bit values in scalar registers, they took 18 of the
// loop's 45 instructions.
template <bool kWithMin>
static inline __m128i row_headers(const uint8_t* b0, const uint8_t* b1, const uint8_t* b2,
                                  const uint8_t* b3) {
  if constexpr (kWithMin) {
    return _mm_setr_epi32(int(load_u32(b0)), int(load_u32(b1)), int(load_u32(b2)), int(load_u32(b3)));
  } else {
    __m128i v = _mm_cvtsi32_si128(load_u16(b0));
    v = _mm_insert_epi16(v, load_u16(b1), 1);
    v = _mm_insert_epi16(v, load_u16(b2), 2);
    v = _mm_insert_epi16(v, load_u16(b3), 3);
    return _mm_unpacklo_epi16(v, v);
  }
}

// [A's lane sums | B's lane sums]: the two 128-bit lanes of a (row A) and b (row B) added.
static inline __m256i fold_lanes(__m256i a, __m256i b) {
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}

// Two rows' 4-bit blocks (16 packed bytes each: element j in the low nibble of byte j, element
// j + 16 in the high nibble) as [A | B] lanes: *lo the low nibbles, *hi the high ones.
static inline void pair_nibbles(const uint8_t* qa, const uint8_t* qb, __m256i* lo, __m256i* hi) {
  const __m256i packed = _mm256_inserti128_si256(
      _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qa))),
      _mm_loadu_si128(reinterpret_cast<const __m128i*>(qb)), 1);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  *lo = _mm256_and_si256(packed, low4);
  *hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
}

// [A | B] values of elements 0..15 (lo) and 16..31 (hi) against 32 activations given as
// [x0..15 | x0..15] and [x16..31 | x16..31]: four int32 partial sums of row A, then four of B.
// Values up to 31 keep the pair sums under 2 * 2 * 31 * 127.
static inline __m256i pair_sums(__m256i lo, __m256i hi, __m256i x_lo, __m256i x_hi) {
#if CROMWELL_VNNI
  return dpbusd(dpbusd(_mm256_setzero_si256(), lo, x_lo), hi, x_hi);
#else
  return sum_pairs_i16(_mm256_add_epi16(_mm256_maddubs_epi16(lo, x_lo), _mm256_maddubs_epi16(hi, x_hi)));
#endif
}

static inline __m256i q4_pair_dot(const uint8_t* qa, const uint8_t* qb, __m256i x_lo, __m256i x_hi) {
  __m256i lo, hi;
  pair_nibbles(qa, qb, &lo, &hi);
  return pair_sums(lo, hi, x_lo, x_hi);
}

// As q4_pair_dot with each row's 32 fifth bits (bit j of its little-endian qh: element j) set
// as 16 on the values: [A's qh | B's qh] in the low four bytes of each lane, spread so that
// byte j of the lane holds qh byte j / 8 (elements 0..15: qh bytes 0, 1; 16..31: bytes 2, 3).
static inline __m256i q5_pair_dot(const uint8_t* qa, const uint8_t* qb, uint32_t qha, uint32_t qhb,
                                  __m256i x_lo, __m256i x_hi) {
  __m256i lo, hi;
  pair_nibbles(qa, qb, &lo, &hi);
  const __m256i qh = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_cvtsi32_si128(int(qha))),
                                             _mm_cvtsi32_si128(int(qhb)), 1);
  const __m256i spread_lo = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                             0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  const __m256i spread_hi = _mm256_add_epi8(spread_lo, _mm256_set1_epi8(2));
  lo = _mm256_or_si256(lo, fifth_bits_as_16(_mm256_shuffle_epi8(qh, spread_lo)));
  hi = _mm256_or_si256(hi, fifth_bits_as_16(_mm256_shuffle_epi8(qh, spread_hi)));
  return pair_sums(lo, hi, x_lo, x_hi);
}

// Two rows' 8-bit blocks against 32 activations: [A | B] partial sums as pair_sums'.
static inline __m256i q8_pair_dot(const int8_t* qa, const int8_t* qb, __m256i x) {
  return fold_lanes(dot_i8_i8(load_256(qa), x), dot_i8_i8(load_256(qb), x));
}

enum class Rows4 { Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 };

constexpr bool is_q5(Rows4 f) { return f == Rows4::Q5_0 || f == Rows4::Q5_1; }

// What the kernel needs to know of a format: its block's bytes, whether the header is (d, m)
// rather than one d, and the factor of the offset term (d s, or m s for the formats with a min,
// where s = dx sum(qx)).
struct Rows4Format {
  int64_t bytes;
  bool with_min;
  float offset;
};

constexpr Rows4Format rows4_format(Rows4 f) {
  switch (f) {
    case Rows4::Q8_0: return {sizeof(block_q8_0), false, 0.0f};  // no offset
    case Rows4::Q4_0: return {sizeof(block_q4_0), false, -8.0f};  // (q - 8) . x = q . x - 8 sum(x)
    case Rows4::Q4_1: return {sizeof(block_q4_1), true, 1.0f};  // (d q + m) . x = d dx sum(q qx) + m s
    case Rows4::Q5_0: return {sizeof(block_q5_0), false, -16.0f};  // (q - 16) . x, as Q4_0
    case Rows4::Q5_1: return {sizeof(block_q5_1), true, 1.0f};  // as Q4_1
  }
  return {0, false, 0.0f};
}

// y[0..3] = rows r[0..3] . x, k / 32 blocks each; meanwhile the 4 rows' worth of bytes at
// `ahead` are prefetched (see dot_rows).
template <Rows4 F>
void dot_rows4(int64_t k, const uint8_t* const r[4], const uint8_t* ahead, const block_q8a* x,
               float* y) {
  constexpr Rows4Format T = rows4_format(F);
  constexpr int64_t kQs = T.bytes - QK / (F == Rows4::Q8_0 ? 1 : 2);  // header bytes
  const int64_t nb = k / QK;
  const __m256i pick01 = _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2);
  const __m256i pick23 = _mm256_setr_epi32(4, 4, 4, 4, 6, 6, 6, 6);
  __m256 acc01 = _mm256_setzero_ps(), acc23 = _mm256_setzero_ps();
  __m256 offsets = _mm256_setzero_ps();  // odd lanes: row j's offset terms in lane 2j + 1
  const uint8_t* b0 = r[0];
  const uint8_t* b1 = r[1];
  const uint8_t* b2 = r[2];
  const uint8_t* b3 = r[3];
  constexpr int64_t kPrefetchLines = (4 * T.bytes + 63) / 64;
  for (int64_t i = 0; i < nb; ++i, b0 += T.bytes, b1 += T.bytes, b2 += T.bytes, b3 += T.bytes) {
    for (int64_t line = 0; line < kPrefetchLines; ++line) {
      _mm_prefetch(reinterpret_cast<const char*>(ahead + 4 * i * T.bytes + 64 * line), _MM_HINT_T0);
    }
    // [h0 h0' h1 h1' h2 h2' h3 h3'] * [dx s dx s ...]: scales in even lanes, offsets in odd
    const __m128i halves = row_headers<T.with_min>(b0, b1, b2, b3);
    const __m256 ds = _mm256_castpd_ps(_mm256_broadcast_sd(reinterpret_cast<const double*>(&x[i].d)));
    const __m256 scaled = _mm256_mul_ps(_mm256_cvtph_ps(halves), ds);
    if constexpr (F != Rows4::Q8_0) offsets = _mm256_add_ps(offsets, scaled);
    __m256i p01, p23;
    if constexpr (F == Rows4::Q8_0) {
      const __m256i xq = load_256(x[i].qs);
      p01 = q8_pair_dot(reinterpret_cast<const int8_t*>(b0 + kQs), reinterpret_cast<const int8_t*>(b1 + kQs), xq);
      p23 = q8_pair_dot(reinterpret_cast<const int8_t*>(b2 + kQs), reinterpret_cast<const int8_t*>(b3 + kQs), xq);
    } else {
      const __m256i x_lo = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qs)));
      const __m256i x_hi = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].qs + 16)));
      if constexpr (is_q5(F)) {
        constexpr int64_t kQh = kQs - 4;  // the fifth bits sit just before the nibbles
        p01 = q5_pair_dot(b0 + kQs, b1 + kQs, load_u32(b0 + kQh), load_u32(b1 + kQh), x_lo, x_hi);
        p23 = q5_pair_dot(b2 + kQs, b3 + kQs, load_u32(b2 + kQh), load_u32(b3 + kQh), x_lo, x_hi);
      } else {
        p01 = q4_pair_dot(b0 + kQs, b1 + kQs, x_lo, x_hi);
        p23 = q4_pair_dot(b2 + kQs, b3 + kQs, x_lo, x_hi);
      }
    }
    acc01 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(scaled, pick01), _mm256_cvtepi32_ps(p01), acc01);
    acc23 = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(scaled, pick23), _mm256_cvtepi32_ps(p23), acc23);
  }
  // Each row's four lanes, summed as (l0 + l1) + (l2 + l3): acc01 = [row 0 | row 1],
  // acc23 = [row 2 | row 3], so the two hadds leave rows 0, 2 in lanes 0, 1 and rows 1, 3 in
  // lanes 4, 5. The epilogue stays in registers: read back through a stack array, `offsets`
  // was kept in that array for the whole loop, a store and reload on every block's chain.
  const __m256 pairs = _mm256_hadd_ps(acc01, acc23);
  const __m256 sums = _mm256_hadd_ps(pairs, pairs);
  __m128 rows = _mm256_castps256_ps128(_mm256_permutevar8x32_ps(sums, _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0)));
  if constexpr (F != Rows4::Q8_0) {
    const __m128 odd = _mm256_castps256_ps128(
        _mm256_permutevar8x32_ps(offsets, _mm256_setr_epi32(1, 3, 5, 7, 1, 3, 5, 7)));
    rows = _mm_add_ps(rows, _mm_mul_ps(_mm_set1_ps(T.offset), odd));
  }
  _mm_storeu_ps(y, rows);
}

// Rows of one matrix, row_stride bytes apart, n_rows of them, four at a time; a last group of
// fewer than four repeats its last row in the unused places.
//
// The weights stream from memory (or L3) once per call, and the hardware prefetcher alone falls
// behind the arithmetic: it restarts at every 4 KiB page. So while a group computes, the group
// `groups_ahead` further on (at least kPrefetchAheadBytes away: the memory latency at the rate
// the kernel consumes bytes) is requested, a few lines per step at four times the pace the group
// reads, so that its requests overlap the arithmetic. Measured on decode: issued all at once at
// the start of each group, or with the non-temporal hint, the same requests stalled the loop and
// made it slower than none; one group ahead left small rows waiting. Past the end of the rows a
// prefetch is harmless: it never faults.
template <Rows4 F>
void dot_rows(int64_t k, const void* w, int64_t row_stride, int64_t n_rows, const void* x, float* y) {
  constexpr int64_t kPrefetchAheadBytes = 4096;
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  const block_q8a* xb = static_cast<const block_q8a*>(x);
  const int64_t group_bytes = 4 * row_stride;
  const int64_t groups_ahead =
      std::min<int64_t>(4, std::max<int64_t>(1, (kPrefetchAheadBytes + group_bytes - 1) / group_bytes));
  for (int64_t r = 0; r < n_rows; r += 4) {
    const uint8_t* ahead = wb + r * row_stride + groups_ahead * group_bytes;
    const int64_t n = n_rows - r < 4 ? n_rows - r : 4;
    const uint8_t* rows[4];
    for (int64_t j = 0; j < 4; ++j) rows[j] = wb + (r + (j < n ? j : n - 1)) * row_stride;
    if (n == 4) {
      dot_rows4<F>(k, rows, ahead, xb, y + r);
    } else {
      float tail[4];
      dot_rows4<F>(k, rows, ahead, xb, tail);
      for (int64_t j = 0; j < n; ++j) y[r + j] = tail[j];
    }
  }
}

// The four-row kernel for f; null for formats without one.
RowsDotFn rows4_kernel(Format f) {
  switch (f) {
    case Format::Q8_0: return dot_rows<Rows4::Q8_0>;
    case Format::Q4_0: return dot_rows<Rows4::Q4_0>;
    case Format::Q4_1: return dot_rows<Rows4::Q4_1>;
    case Format::Q5_0: return dot_rows<Rows4::Q5_0>;
    case Format::Q5_1: return dot_rows<Rows4::Q5_1>;
    default: return nullptr;
  }
}

}  // namespace
}  // namespace cromwell::avx2

// AVX2 helpers for the block formats: unpacking nibbles, 8-bit integer dot products, halves.
// Include only from translation units under avx2/; everything is static inline (see
// simd_helpers.h for why).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace cromwell::avx2 {

static inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

// 16 bytes of packed nibbles -> 32 bytes: the low nibbles first, then the high nibbles (the
// element order of q4_0 / q4_1 blocks).
static inline __m256i nibbles_lo_then_hi(const uint8_t* p) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// Bytes each holding a copy of a byte of fifth bits -> 16 where byte i's bit i % 8 is set, else 0.
static inline __m256i fifth_bits_as_16(__m256i spread) {
  const __m256i mask = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, mask), mask);
  return _mm256_and_si256(set, _mm256_set1_epi8(16));
}

// The 32 fifth bits of a q5_0 / q5_1 block (bit j of the little-endian uint32 qh belongs to
// element j) -> 32 bytes, 16 where the bit is set and 0 elsewhere, in element order.
static inline __m256i q5_high_bits(const uint8_t* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  // byte i takes qh byte i / 8 (the broadcast puts all four bytes in both 128-bit lanes)
  return fifth_bits_as_16(_mm256_shuffle_epi8(
      _mm256_set1_epi32(int(bits)),
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3,
                       3, 3, 3, 3, 3, 3, 3)));
}

// The 32 five-bit values of a q5_0 / q5_1 block, 0..31, in element order.
static inline __m256i q5_values(const uint8_t* qs, const uint8_t* qh) {
  return _mm256_or_si256(nibbles_lo_then_hi(qs), q5_high_bits(qh));
}

// One group g (64 elements) of a q4_K / q5_K super-block: its 32 bytes of nibbles give sub-block
// 2 g (low nibbles) and 2 g + 1 (high). With kQ5, *qh holds the block's qh shifted right by 2 g:
// bits 0 and 1 of each byte are this group's fifth bits, moved to bit 4 (the 16-bit shifts carry
// bits across bytes, but none that the mask keeps); it is left shifted for the next group.
template <bool kQ5>
static inline void q45_K_group(const uint8_t* q, __m256i* qh, __m256i* lo, __m256i* hi) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i q4 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
  *lo = _mm256_and_si256(q4, low4);
  *hi = _mm256_and_si256(_mm256_srli_epi16(q4, 4), low4);
  if constexpr (kQ5) {
    const __m256i sixteen = _mm256_set1_epi8(16);
    *lo = _mm256_or_si256(*lo, _mm256_and_si256(_mm256_slli_epi16(*qh, 4), sixteen));
    *hi = _mm256_or_si256(*hi, _mm256_and_si256(_mm256_slli_epi16(*qh, 3), sixteen));
    *qh = _mm256_srli_epi16(*qh, 2);
  }
}

// The four runs of 32 values (0..63, the stored q + 32) of one half (128 elements) of a q6_K
// super-block: run s takes its low four bits from ql (runs 0 and 1: the low nibbles of
// ql[0..31] and ql[32..63]; runs 2 and 3: their high nibbles) and its top two from bits 2 s,
// 2 s + 1 of qh[0..31].
static inline void q6_K_runs(const uint8_t* ql, const uint8_t* qh, __m256i q[4]) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i top2 = _mm256_set1_epi8(0x30);
  const __m256i l0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
  const __m256i l1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qh));
  q[0] = _mm256_or_si256(_mm256_and_si256(l0, low4), _mm256_and_si256(_mm256_slli_epi16(h, 4), top2));
  q[1] = _mm256_or_si256(_mm256_and_si256(l1, low4), _mm256_and_si256(_mm256_slli_epi16(h, 2), top2));
  q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4), _mm256_and_si256(h, top2));
  q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                         _mm256_and_si256(_mm256_srli_epi16(h, 2), top2));
}

// 16 int16 -> 8 int32 sums of adjacent pairs.
static inline __m256i sum_pairs_i16(__m256i x) {
  return _mm256_madd_epi16(x, _mm256_set1_epi16(1));
}

// The VNNI multiply-and-sum instructions on 256-bit registers, in the units built with them
// (vnni/rows_vnni.cpp: with -mavxvnni, the VEX form; with -mavx512vnni -mavx512vl, the EVEX form).
// acc + sum of each 4 products u[i] * s[i] (unsigned by signed bytes), and acc + sum of each 2
// products a[i] * b[i] (int16), in int32 lanes, without saturation.
#if defined(__AVXVNNI__)
#define CROMWELL_VNNI 1
static inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }
static inline __m256i dpwssd(__m256i acc, __m256i a, __m256i b) { return _mm256_dpwssd_avx_epi32(acc, a, b); }
#elif defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define CROMWELL_VNNI 1
static inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
static inline __m256i dpwssd(__m256i acc, __m256i a, __m256i b) { return _mm256_dpwssd_epi32(acc, a, b); }
#else
#define CROMWELL_VNNI 0
#endif

// Sum over 32 lanes of u[i] * s[i] (u unsigned bytes, s signed), as 8 int32 partial sums. In a
// VNNI unit one vpdpbusd; elsewhere the pair sums go through int16, exact as long as no two
// adjacent products add past 32767 (true of every caller here).
static inline __m256i dot_u8_i8(__m256i u, __m256i s) {
#if CROMWELL_VNNI
  return dpbusd(_mm256_setzero_si256(), u, s);
#else
  return sum_pairs_i16(_mm256_maddubs_epi16(u, s));
#endif
}

// Sum over 32 lanes of a[i] * b[i], both signed bytes (a never -128), as 8 int32 partial sums:
// maddubs multiplies unsigned by signed, so move a's sign onto b.
static inline __m256i dot_i8_i8(__m256i a, __m256i b) {
  return dot_u8_i8(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
}

static inline __m256i load_256(const void* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

static inline int hsum_i32_8(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// Eight floats rounded to nearest even and narrowed to int8 in order (values fit int8).
static inline __m256i round_pack_i8(__m256 a, __m256 b, __m256 c, __m256 d, __m256i* sum32) {
  const __m256i ia = _mm256_cvtps_epi32(_mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const __m256i ib = _mm256_cvtps_epi32(_mm256_round_ps(b, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const __m256i ic = _mm256_cvtps_epi32(_mm256_round_ps(c, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const __m256i id = _mm256_cvtps_epi32(_mm256_round_ps(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  *sum32 = _mm256_add_epi32(_mm256_add_epi32(ia, ib), _mm256_add_epi32(ic, id));
  // packs work within 128-bit lanes; the permute puts the 32 bytes back in order
  const __m256i ab = _mm256_packs_epi32(ia, ib);
  const __m256i cd = _mm256_packs_epi32(ic, id);
  const __m256i abcd = _mm256_packs_epi16(ab, cd);
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

}  // namespace cromwell::avx2

// AVX2 matrix kernels: the per-format dot products behind matrix-vector (8-bit integer dot
// products against quantized activations, as llama.cpp computes them), and a cache-blocked
// 6x16 FMA kernel for matrix-matrix products, which unpacks each tile of weights to float
// once and reuses it across every activation row.
#include <cstring>

#include "../matmul.h"
#include "gemm_tiles.h"
#include "quant_simd.h"
#include "simd_helpers.h"

namespace cromwell::avx2 {
namespace {

// --- float weights against float activations ---

float dot_f32_w(int64_t k, const void* w, const void* x) {
  const float* a = static_cast<const float*>(w);
  const float* b = static_cast<const float*>(x);
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    for (int u = 0; u < 4; ++u) {
      acc[u] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8 * u), _mm256_loadu_ps(b + i + 8 * u), acc[u]);
    }
  }
  for (; i + 8 <= k; i += 8) acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc[0]);
  float sum = hsum_float_8(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < k; ++i) sum += a[i] * b[i];
  return sum;
}

static inline __m256 load_f16_8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
static inline __m256 load_bf16_8(const uint16_t* p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

template <bool kBf16>
float dot_half_w(int64_t k, const void* w, const void* x) {
  const uint16_t* a = static_cast<const uint16_t*>(w);
  const float* b = static_cast<const float*>(x);
  auto load = [](const uint16_t* p) { return kBf16 ? load_bf16_8(p) : load_f16_8(p); };
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  int64_t i = 0;
  for (; i + 32 <= k; i += 32) {
    for (int u = 0; u < 4; ++u) {
      acc[u] = _mm256_fmadd_ps(load(a + i + 8 * u), _mm256_loadu_ps(b + i + 8 * u), acc[u]);
    }
  }
  for (; i + 8 <= k; i += 8) acc[0] = _mm256_fmadd_ps(load(a + i), _mm256_loadu_ps(b + i), acc[0]);
  float sum = hsum_float_8(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
  for (; i < k; ++i) sum += (kBf16 ? bf16_to_fp32(a[i]) : half_to_float(a[i])) * b[i];
  return sum;
}

// --- 32-element block formats against block_q8a activations ---

float dot_q8_0(int64_t k, const void* w, const void* x) {
  const block_q8_0* a = static_cast<const block_q8_0*>(w);
  const block_q8a* b = static_cast<const block_q8a*>(x);
  const int64_t nb = k / QK;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m256i p0 = dot_i8_i8(load_256(a[i].qs), load_256(b[i].qs));
    const __m256i p1 = dot_i8_i8(load_256(a[i + 1].qs), load_256(b[i + 1].qs));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(a[i].d) * b[i].d), _mm256_cvtepi32_ps(p0), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(a[i + 1].d) * b[i + 1].d), _mm256_cvtepi32_ps(p1), acc1);
  }
  for (; i < nb; ++i) {
    const __m256i p = dot_i8_i8(load_256(a[i].qs), load_256(b[i].qs));
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(a[i].d) * b[i].d), _mm256_cvtepi32_ps(p), acc0);
  }
  return hsum_float_8(_mm256_add_ps(acc0, acc1));
}

// (q - 8) . x = q . x - 8 sum(x): the nibbles multiply as unsigned bytes (no sign juggling), and
// the offset comes from the activation block's precomputed sum.
float dot_q4_0(int64_t k, const void* w, const void* x) {
  const block_q4_0* a = static_cast<const block_q4_0*>(w);
  const block_q8a* b = static_cast<const block_q8a*>(x);
  const int64_t nb = k / QK;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  float offsets = 0.0f;
  int64_t i = 0;
  for (; i + 2 <= nb; i += 2) {
    const __m256i p0 = dot_u8_i8(nibbles_lo_then_hi(a[i].qs), load_256(b[i].qs));
    const __m256i p1 = dot_u8_i8(nibbles_lo_then_hi(a[i + 1].qs), load_256(b[i + 1].qs));
    const float d0 = half_to_float(a[i].d), d1 = half_to_float(a[i + 1].d);
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d0 * b[i].d), _mm256_cvtepi32_ps(p0), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_set1_ps(d1 * b[i + 1].d), _mm256_cvtepi32_ps(p1), acc1);
    offsets += d0 * b[i].s + d1 * b[i + 1].s;
  }
  for (; i < nb; ++i) {
    const __m256i p = dot_u8_i8(nibbles_lo_then_hi(a[i].qs), load_256(b[i].qs));
    const float d = half_to_float(a[i].d);
    acc0 = _mm256_fmadd_ps(_mm256_set1_ps(d * b[i].d), _mm256_cvtepi32_ps(p), acc0);
    offsets += d * b[i].s;
  }
  return hsum_float_8(_mm256_add_ps(acc0, acc1)) - 8.0f * offsets;
}

float dot_q4_1(int64_t k, const void* w, const void* x) {
  const block_q4_1* a = static_cast<const block_q4_1*>(w);
  const block_q8a* b = static_cast<const block_q8a*>(x);
  const int64_t nb = k / QK;
  __m256 acc = _mm256_setzero_ps();
  float offsets = 0.0f;
  for (int64_t i = 0; i < nb; ++i) {
    // unsigned nibbles need no sign trick
    const __m256i p = dot_u8_i8(nibbles_lo_then_hi(a[i].qs), load_256(b[i].qs));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(a[i].d) * b[i].d), _mm256_cvtepi32_ps(p), acc);
    offsets += half_to_float(a[i].m) * b[i].s;
  }
  return hsum_float_8(acc) + offsets;
}

// As q4_0 with five-bit values: (q - 16) . x = q . x - 16 sum(x); q <= 31 keeps maddubs's pair
// sums (at most 2 * 31 * 127) inside int16.
float dot_q5_0(int64_t k, const void* w, const void* x) {
  const block_q5_0* a = static_cast<const block_q5_0*>(w);
  const block_q8a* b = static_cast<const block_q8a*>(x);
  const int64_t nb = k / QK;
  __m256 acc = _mm256_setzero_ps();
  float offsets = 0.0f;
  for (int64_t i = 0; i < nb; ++i) {
    const __m256i p = dot_u8_i8(q5_values(a[i].qs, a[i].qh), load_256(b[i].qs));
    const float d = half_to_float(a[i].d);
    acc = _mm256_fmadd_ps(_mm256_set1_ps(d * b[i].d), _mm256_cvtepi32_ps(p), acc);
    offsets += d * b[i].s;
  }
  return hsum_float_8(acc) - 16.0f * offsets;
}

float dot_q5_1(int64_t k, const void* w, const void* x) {
  const block_q5_1* a = static_cast<const block_q5_1*>(w);
  const block_q8a* b = static_cast<const block_q8a*>(x);
  const int64_t nb = k / QK;
  __m256 acc = _mm256_setzero_ps();
  float offsets = 0.0f;
  for (int64_t i = 0; i < nb; ++i) {
    const __m256i p = dot_u8_i8(q5_values(a[i].qs, a[i].qh), load_256(b[i].qs));
    acc = _mm256_fmadd_ps(_mm256_set1_ps(half_to_float(a[i].d) * b[i].d), _mm256_cvtepi32_ps(p), acc);
    offsets += half_to_float(a[i].m) * b[i].s;
  }
  return hsum_float_8(acc) + offsets;
}

// --- k-quants against block_q8_K activations ---

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
template <bool kQ5, bool kPrefetch = false>
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
      if constexpr (kPrefetch) prefetch_ahead<sizeof(block_q5_K)>(&blk);
    } else {
      const block_q4_K& blk = static_cast<const block_q4_K*>(w)[i];
      q = blk.qs;
      head = reinterpret_cast<const uint8_t*>(&blk.d);
      if constexpr (kPrefetch) prefetch_ahead<sizeof(block_q4_K)>(&blk);
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
    __m256i sumi = _mm256_setzero_si256();
    for (int g = 0; g < 4; ++g, q += 32, qx += 64) {
      __m256i lo, hi;
      q45_K_group<kQ5>(q, &qh, &lo, &hi);
      const __m256i p_lo = _mm256_maddubs_epi16(lo, load_256(qx));
      const __m256i p_hi = _mm256_maddubs_epi16(hi, load_256(qx + 32));
      const __m256i s_lo = _mm256_shuffle_epi8(scales, load_256(kSpreadScale[2 * g]));
      const __m256i s_hi = _mm256_shuffle_epi8(scales, load_256(kSpreadScale[2 * g + 1]));
      sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(_mm256_madd_epi16(p_lo, s_lo), _mm256_madd_epi16(p_hi, s_hi)));
    }
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
template <bool kPrefetch = false>
float dot_q6_K(int64_t k, const void* w, const void* x) {
  const block_q6_K* a = static_cast<const block_q6_K*>(w);
  const block_q8_K* b = static_cast<const block_q8_K*>(x);
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < k / QK_K; ++i) {
    if constexpr (kPrefetch) prefetch_ahead<sizeof(block_q6_K)>(a + i);
    const uint8_t* ql = a[i].ql;
    const uint8_t* qh = a[i].qh;
    const int8_t* qx = b[i].qs;
    __m256i sumi = _mm256_setzero_si256();
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, qx += 128) {
      __m256i q[4];
      q6_K_runs(ql, qh, q);
      const __m256i scales = _mm256_broadcastsi128_si256(
          _mm_cvtepi8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(a[i].scales + 8 * half))));
      for (int s = 0; s < 4; ++s) {
        const __m256i p = _mm256_maddubs_epi16(q[s], load_256(qx + 32 * s));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_shuffle_epi8(scales, load_256(kSpreadPair[s]))));
      }
    }
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

// --- matrix-matrix: a cache-blocked kernel over weights unpacked to float ---

constexpr int kMR = 6;     // activation rows per micro-tile
constexpr int kNR = 16;    // weight rows per micro-tile (low2 registers of 8)

// C[MR x nr] (+)= A[MR x kc] B[kc x 16]: A rows lda apart, B packed as 16 weight rows per k.
// Every loop over the MR rows is unrolled so the 2 * MR accumulators live in registers.
template <int MR>
void micro_kernel(int64_t kc, const float* a, int64_t lda, const float* bp, float* c,
                  int64_t ldc, bool accumulate, int nr) {
  __m256 c0[MR], c1[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    c0[i] = _mm256_setzero_ps();
    c1[i] = _mm256_setzero_ps();
  }
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(bp + kNR * p);
    const __m256 b1 = _mm256_load_ps(bp + kNR * p + 8);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i * lda + p);
      c0[i] = _mm256_fmadd_ps(av, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(av, b1, c1[i]);
    }
  }
  if (nr == kNR) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      float* ci = c + i * ldc;
      __m256 lo = c0[i], hi = c1[i];
      if (accumulate) {
        lo = _mm256_add_ps(lo, _mm256_loadu_ps(ci));
        hi = _mm256_add_ps(hi, _mm256_loadu_ps(ci + 8));
      }
      _mm256_storeu_ps(ci, lo);
      _mm256_storeu_ps(ci + 8, hi);
    }
    return;
  }
  alignas(32) float tile[MR * kNR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    _mm256_store_ps(tile + i * kNR, c0[i]);
    _mm256_store_ps(tile + i * kNR + 8, c1[i]);
  }
  for (int i = 0; i < MR; ++i) {
    float* ci = c + i * ldc;
    for (int j = 0; j < nr; ++j) ci[j] = accumulate ? ci[j] + tile[i * kNR + j] : tile[i * kNR + j];
  }
}

constexpr gemm::MicroKernel kMicroKernels[kMR + 1] = {
    nullptr, micro_kernel<1>, micro_kernel<2>, micro_kernel<3>, micro_kernel<4>, micro_kernel<5>,
    micro_kernel<6>};

}  // namespace

const FormatKernels& kernels(Format f) {
  static const FormatKernels f32 = {ActFormat::F32, dot_f32_w};
  static const FormatKernels f16 = {ActFormat::F32, dot_half_w<false>};
  static const FormatKernels bf16 = {ActFormat::F32, dot_half_w<true>};
  static const FormatKernels q8_0 = {ActFormat::Q8A, dot_q8_0, rows_dot_kernel(Format::Q8_0)};
  static const FormatKernels q4_0 = {ActFormat::Q8A, dot_q4_0, rows_dot_kernel(Format::Q4_0)};
  static const FormatKernels q4_1 = {ActFormat::Q8A, dot_q4_1, rows_dot_kernel(Format::Q4_1)};
  static const FormatKernels q5_0 = {ActFormat::Q8A, dot_q5_0, rows_dot_kernel(Format::Q5_0)};
  static const FormatKernels q5_1 = {ActFormat::Q8A, dot_q5_1, rows_dot_kernel(Format::Q5_1)};
  static const FormatKernels q4_K = {ActFormat::Q8K, dot_q45_K<false>,
                                     dot_rows_ahead<dot_q45_K<false, true>>};
  static const FormatKernels q5_K = {ActFormat::Q8K, dot_q45_K<true>,
                                     dot_rows_ahead<dot_q45_K<true, true>>};
  static const FormatKernels q6_K = {ActFormat::Q8K, dot_q6_K<>, dot_rows_ahead<dot_q6_K<true>>};
  switch (f) {
    case Format::F32: return f32;
    case Format::F16: return f16;
    case Format::BF16: return bf16;
    case Format::Q8_0: return q8_0;
    case Format::Q4_0: return q4_0;
    case Format::Q4_1: return q4_1;
    case Format::Q5_0: return q5_0;
    case Format::Q5_1: return q5_1;
    case Format::Q4_K: return q4_K;
    case Format::Q5_K: return q5_K;
    case Format::Q6_K: return q6_K;
  }
  return f32;
}

void matmul(Format f, const void* w, int64_t rows, int64_t k, const float* x, int64_t n, float* y) {
  gemm::matmul_tiles<kMR, kNR>(kMicroKernels, f, w, rows, k, x, n, y);
}

uint64_t stream_read(const uint8_t* p, int64_t n_bytes) {
  __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                    _mm256_setzero_si256()};
  int64_t i = 0;
  for (; i + 128 <= n_bytes; i += 128) {
    for (int u = 0; u < 4; ++u) acc[u] = _mm256_xor_si256(acc[u], load_256(p + i + 32 * u));
  }
  const __m256i all = _mm256_xor_si256(_mm256_xor_si256(acc[0], acc[1]), _mm256_xor_si256(acc[2], acc[3]));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), all);
  uint64_t r = lanes[0] ^ lanes[1] ^ lanes[2] ^ lanes[3];
  for (; i + 8 <= n_bytes; i += 8) {  // the same tail as the scalar version: words, then bytes
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    r ^= v;
  }
  for (; i < n_bytes; ++i) r ^= p[i];
  return r;
}

}  // namespace cromwell::avx2

// The integer matrix-matrix product (prefill): weights in a block format against activation
// rows already quantized to 8 bits per block (block_q8a or block_q8_K, each quant byte stored
// plus 128, see int_gemm_rows), with the multiply-and-sum of bytes (vpmaddubsw and vpmaddwd, or
// one vpdpbusd in a VNNI unit).
//
// Weight rows are taken a panel at a time: kLanes rows (8 in a 256-bit register, 16 in a
// 512-bit one), unpacked once per call to signed bytes and interleaved four bytes at a time, so
// that one register holds the same four elements of every row of the panel. One multiply-and-sum
// of that register with four bytes of an activation row broadcast to every lane then advances
// all the panel's dot products by four elements, and each unpacked register serves MR
// activation rows in turn, as ggml's repacked gemm_q4_0_8x8 and llamafile's tinyBLAS do. With
// 32 registers (AVX-512) two panels go together, so each activation's broadcast serves both. A
// panel is unpacked over a stretch of k that fits L1 (pack_bytes()) and every activation row
// passes over it before the next stretch is unpacked.
//
// The activations come as unsigned bytes (x + 128) and the weights as signed ones, the operand
// order of vpdpbusd; the extra 128 * sum(w) of each (sub-)block is known when the panel is
// unpacked and starts each integer sum at -128 * sum(w), so every block sum is exact. What is
// left to floats: the scales (and Q4_1 / Q5_1's min, the k-quants' mins) per block.
//
// Include from translation units compiled with at least -mavx2 -mfma -mf16c; everything is in
// an anonymous namespace, so each unit has its own copy built for its own instruction set.
#pragma once
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#include "../cpu_features.h"
#include "../matmul.h"
#include "quant_simd.h"

namespace cromwell::avx2 {
namespace {
namespace int_gemm {

// 8 weight rows in the 32-bit lanes of a 256-bit register.
struct V8 {
  static constexpr int kLanes = 8;
  using I = __m256i;
  using F = __m256;
  static I zero() { return _mm256_setzero_si256(); }
  static F fzero() { return _mm256_setzero_ps(); }
  static I load(const uint8_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
  static F loadf(const uint8_t* p) { return _mm256_load_ps(reinterpret_cast<const float*>(p)); }
  static I bcast32(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
  }
  static F bcastf(float v) { return _mm256_set1_ps(v); }
  // acc + the sums of each four products u * s (u unsigned bytes, s signed), exact: without
  // VNNI through int16 pairs, which no caller can saturate (|u| <= 255 with |s| <= 32, or
  // u <= 128 with |s| <= 128).
  static I dot_add(I acc, I u, I s) {
#if CROMWELL_VNNI
    return dpbusd(acc, u, s);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
  }
  static I madd16(I a, I b) { return _mm256_madd_epi16(a, b); }
  static I add32(I a, I b) { return _mm256_add_epi32(a, b); }
  static I neg_times_128(I a) { return _mm256_sub_epi32(zero(), _mm256_slli_epi32(a, 7)); }
  static F cvt(I a) { return _mm256_cvtepi32_ps(a); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F fnma(F a, F b, F c) { return _mm256_fnmadd_ps(a, b, c); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F loaduf(const float* p) { return _mm256_loadu_ps(p); }
  static void storeuf(float* p, F v) { _mm256_storeu_ps(p, v); }
};

#if defined(__AVX512F__) && defined(__AVX512VNNI__)
// 16 weight rows in the 32-bit lanes of a 512-bit register (AVX-512 VNNI units only).
struct V16 {
  static constexpr int kLanes = 16;
  using I = __m512i;
  using F = __m512;
  static I zero() { return _mm512_setzero_si512(); }
  static F fzero() { return _mm512_setzero_ps(); }
  static I load(const uint8_t* p) { return _mm512_load_si512(p); }
  static F loadf(const uint8_t* p) { return _mm512_load_ps(p); }
  static I bcast32(const void* p) {
    int32_t v;
    std::memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
  }
  static F bcastf(float v) { return _mm512_set1_ps(v); }
  static I dot_add(I acc, I u, I s) { return _mm512_dpbusd_epi32(acc, u, s); }
  static I madd16(I a, I b) { return _mm512_madd_epi16(a, b); }
  static I add32(I a, I b) { return _mm512_add_epi32(a, b); }
  static I neg_times_128(I a) { return _mm512_sub_epi32(zero(), _mm512_slli_epi32(a, 7)); }
  static F cvt(I a) { return _mm512_cvtepi32_ps(a); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F fnma(F a, F b, F c) { return _mm512_fnmadd_ps(a, b, c); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F loaduf(const float* p) { return _mm512_loadu_ps(p); }
  static void storeuf(float* p, F v) { _mm512_storeu_ps(p, v); }
};
#endif

// --- what each format's block becomes in a panel ---
//
// Per block (32 elements) or super-block (256), for L lanes, in this order:
//   vals  [E / 4][L][4] int8   the values, four elements of each row at a time
//   corr  [S][L] int32         -128 * the sum of each sub-block's values (S sub-blocks)
//   scale [S][L] float         each sub-block's scale (d, or d * the k-quant's 6/8-bit scale)
//   then for Q4_1 / Q5_1  min [L] float (m), and for Q4_K / Q5_K  mins [4][L] int32 (a pair of
//   int16 mins, sub-blocks 2p and 2p + 1) and dmin [L] float.
struct Layout {
  int64_t elems;     // E
  int64_t sub;       // S
  bool with_min;     // Q4_1 / Q5_1
  bool with_kmins;   // Q4_K / Q5_K
  // bytes per lane
  constexpr int64_t lane_bytes() const {
    return elems + 8 * sub + (with_min ? 4 : 0) + (with_kmins ? 20 : 0);
  }
};

constexpr Layout layout_of(Format f) {
  switch (f) {
    case Format::Q4_1:
    case Format::Q5_1: return {QK, 1, true, false};
    case Format::Q4_K:
    case Format::Q5_K: return {QK_K, 8, false, true};
    case Format::Q6_K: return {QK_K, 16, false, false};
    default: return {QK, 1, false, false};  // Q8_0, Q4_0, Q5_0
  }
}

// Q8_0's values use all 8 bits: without VNNI, (x + 128) * w can saturate vpmaddubsw's int16
// pairs, so the plain AVX2 unit keeps Q8_0's weights signed and moves their sign onto the
// activations instead (taken back to x by removing the 128 first), as llama.cpp does.
constexpr bool sign_trick(Format f) { return !CROMWELL_VNNI && f == Format::Q8_0; }

// One row's block as E signed values in element order, plus its per-lane scalars written at
// lane `lane` of the panel block `pb` (L lanes).
template <Format F, int L>
inline void unpack_block(const uint8_t* blk, uint8_t* vals, uint8_t* pb, int lane) {
  constexpr Layout T = layout_of(F);
  float* scale = reinterpret_cast<float*>(pb + T.elems * L + 4 * T.sub * L);
  float* extra = scale + T.sub * L;  // min, or the k-quants' mins then dmin
  auto store = [&](const __m256i v, int at) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(vals + at), v);
  };
  if constexpr (F == Format::Q8_0) {
    store(load_256(blk + 2), 0);
    scale[lane] = half_to_float(uint16_t(blk[0] | blk[1] << 8));
  } else if constexpr (F == Format::Q4_0 || F == Format::Q4_1) {
    const int qs = F == Format::Q4_0 ? 2 : 4;
    __m256i v = nibbles_lo_then_hi(blk + qs);
    if constexpr (F == Format::Q4_0) v = _mm256_sub_epi8(v, _mm256_set1_epi8(8));
    store(v, 0);
    const block_q4_1* b = reinterpret_cast<const block_q4_1*>(blk);
    scale[lane] = half_to_float(b->d);
    if constexpr (F == Format::Q4_1) extra[lane] = half_to_float(b->m);
  } else if constexpr (F == Format::Q5_0 || F == Format::Q5_1) {
    const int qh = F == Format::Q5_0 ? 2 : 4;
    __m256i v = q5_values(blk + qh + 4, blk + qh);
    if constexpr (F == Format::Q5_0) v = _mm256_sub_epi8(v, _mm256_set1_epi8(16));
    store(v, 0);
    const block_q5_1* b = reinterpret_cast<const block_q5_1*>(blk);
    scale[lane] = half_to_float(b->d);
    if constexpr (F == Format::Q5_1) extra[lane] = half_to_float(b->m);
  } else if constexpr (F == Format::Q4_K || F == Format::Q5_K) {
    constexpr bool kQ5 = F == Format::Q5_K;
    const block_q4_K* b4 = reinterpret_cast<const block_q4_K*>(blk);
    const block_q5_K* b5 = reinterpret_cast<const block_q5_K*>(blk);
    const uint8_t* q = kQ5 ? b5->qs : b4->qs;
    __m256i qh = kQ5 ? load_256(b5->qh) : _mm256_setzero_si256();
    for (int g = 0; g < 4; ++g) {
      __m256i lo, hi;
      q45_K_group<kQ5>(q + 32 * g, &qh, &lo, &hi);
      store(lo, 64 * g);
      store(hi, 64 * g + 32);
    }
    const float d = half_to_float(b4->d);  // d, dmin, scales sit alike in both formats
    int32_t* mins = reinterpret_cast<int32_t*>(extra);
    uint8_t sc[8], m[8];
    for (int j = 0; j < 8; ++j) {
      k_scale_min(j, b4->scales, &sc[j], &m[j]);
      scale[j * L + lane] = d * float(sc[j]);
    }
    for (int p = 0; p < 4; ++p) mins[p * L + lane] = int32_t(uint32_t(m[2 * p]) | uint32_t(m[2 * p + 1]) << 16);
    extra[4 * L + lane] = half_to_float(b4->dmin);
  } else if constexpr (F == Format::Q6_K) {
    const block_q6_K* b = reinterpret_cast<const block_q6_K*>(blk);
    const __m256i offset = _mm256_set1_epi8(32);
    for (int h = 0; h < 2; ++h) {
      __m256i runs[4];
      q6_K_runs(b->ql + 64 * h, b->qh + 32 * h, runs);
      for (int s = 0; s < 4; ++s) store(_mm256_sub_epi8(runs[s], offset), 128 * h + 32 * s);
    }
    const float d = half_to_float(b->d);
    for (int j = 0; j < 16; ++j) scale[j * L + lane] = d * float(b->scales[j]);
  }
}

// Four-byte columns of 8 rows of 32 bytes, transposed: afterwards v[j] holds bytes 4j..4j+3
// of every row, row r in lane r.
inline void transpose_8x8_u32(__m256i v[8]) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_castsi256_ps(v[i]);
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  v[0] = _mm256_castps_si256(_mm256_permute2f128_ps(s0, s4, 0x20));
  v[1] = _mm256_castps_si256(_mm256_permute2f128_ps(s1, s5, 0x20));
  v[2] = _mm256_castps_si256(_mm256_permute2f128_ps(s2, s6, 0x20));
  v[3] = _mm256_castps_si256(_mm256_permute2f128_ps(s3, s7, 0x20));
  v[4] = _mm256_castps_si256(_mm256_permute2f128_ps(s0, s4, 0x31));
  v[5] = _mm256_castps_si256(_mm256_permute2f128_ps(s1, s5, 0x31));
  v[6] = _mm256_castps_si256(_mm256_permute2f128_ps(s2, s6, 0x31));
  v[7] = _mm256_castps_si256(_mm256_permute2f128_ps(s3, s7, 0x31));
}

// A 64-byte aligned byte buffer that grows on demand (one per thread).
struct FreeBytes {
  void operator()(uint8_t* p) const { std::free(p); }
};
struct Bytes {
  std::unique_ptr<uint8_t, FreeBytes> data;
  size_t size = 0;
  uint8_t* get(size_t n) {
    if (n > size) {
      data.reset(static_cast<uint8_t*>(std::aligned_alloc(64, (n + 63) / 64 * 64)));
      if (!data) throw std::bad_alloc();
      size = n;
    }
    return data.get();
  }
};

// Panel rows r[0..L) (a short panel repeats its last row), blocks [b0, b0 + nb): the layout
// above, block after block, into pk.
template <class V, Format F>
void pack_panel(const uint8_t* const* rows, int64_t b0, int64_t nb, uint8_t* pk, uint8_t* tmp) {
  constexpr int L = V::kLanes;
  constexpr Layout T = layout_of(F);
  constexpr int64_t kBlockBytes = block_bytes(F);
  constexpr int64_t kSubQuads = T.elems / T.sub / 4;
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* pb = pk + b * T.lane_bytes() * L;
    for (int r = 0; r < L; ++r) unpack_block<F, L>(rows[r] + (b0 + b) * kBlockBytes, tmp + r * T.elems, pb, r);
    for (int64_t c = 0; c < T.elems / 32; ++c) {
      for (int half = 0; half < L / 8; ++half) {
        __m256i v[8];
        for (int i = 0; i < 8; ++i) v[i] = load_256(tmp + (8 * half + i) * T.elems + 32 * c);
        transpose_8x8_u32(v);
        for (int j = 0; j < 8; ++j) {
          _mm256_store_si256(reinterpret_cast<__m256i*>(pb + (8 * c + j) * 4 * L + 32 * half), v[j]);
        }
      }
    }
    // Each sub-block's -128 * sum(values); zero where the activations are taken back to x.
    uint8_t* corr = pb + T.elems * L;
    const typename V::I ones = V::bcast32("\x01\x01\x01\x01");
    for (int64_t s = 0; s < T.sub; ++s) {
      typename V::I sum = V::zero();
      if constexpr (!sign_trick(F)) {
        for (int64_t q = 0; q < kSubQuads; ++q) sum = V::dot_add(sum, ones, V::load(pb + (s * kSubQuads + q) * 4 * L));
      }
      const typename V::I c = V::neg_times_128(sum);
      std::memcpy(corr + s * 4 * L, &c, sizeof(c));
    }
  }
}

// Sums of adjacent pairs of block_q8_K's bsums (the activation sums of each 32), as pairs of
// int16 in int32: [b][p] holds sub-blocks 2p and 2p + 1 of super-block b.
inline void kquant_pair_sums(const block_q8_K* x, int64_t nb, int32_t* out) {
  for (int64_t b = 0; b < nb; ++b) {
    const __m128i s = _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].bsums)),
                                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(x[b].bsums + 8)));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 4 * b), s);
  }
}

// y[i * ldy + 0..nr) (+)= the MR activation rows' results of one panel (the first `rows` of
// them only, where fewer are real).
template <class V, int MR>
inline void store_rows(const typename V::F (&acc)[MR], float* y, int64_t ldy, int nr, bool accumulate,
                       int rows = MR) {
  constexpr int L = V::kLanes;
  for (int i = 0; i < rows; ++i) {
    float* yi = y + i * ldy;
    if (nr == L) {
      V::storeuf(yi, accumulate ? V::add(acc[i], V::loaduf(yi)) : acc[i]);
    } else {
      float t[L];
      V::storeuf(t, acc[i]);
      for (int j = 0; j < nr; ++j) yi[j] = accumulate ? yi[j] + t[j] : t[j];
    }
  }
}

// Whether each sub-block's integer sums go straight into the row's float sums, times the
// sub-block's scale and the activation block's d (one more multiply a sub-block), rather than
// into per-block float sums multiplied by d at the block's end: the per-block sums take MR * P
// registers. Only the 512-bit builds fold, and not Q6_K, whose sub-blocks of 16 would double
// its float work. Every step of a build, of one panel or two and of any rows, sums alike, so
// that a result does not depend on how the rows were shared out among threads. Measured on one
// core of a model-106 Xeon (the micro-kernel over an L1-resident stretch): Q4_K 185-192 ->
// 191-199 GMAC/s at four rows.
template <class V, Format F>
constexpr bool folds_scales() {
  return V::kLanes == 16 && F != Format::Q6_K;
}

// Activation rows a step of the micro-kernel: six where the scales fold and a block is one
// sub-block of 32 (Q8_0, Q4_x, Q5_x): 12 integer and 12 float sums then fit the 32 registers
// beside two weight registers and a broadcast. The same measurement: Q4_0 203-208 -> 220-232,
// Q4_1 179-190 -> 213-216, Q8_0 191-207 -> 226-233 GMAC/s. (Q4_K at six or five rows, with its
// mins at each block's end, falls back to 149-194.)
template <class V, Format F, int MR, int P>
constexpr int step_rows() {
  return P == 2 && folds_scales<V, F>() && layout_of(F).sub == 1 ? 6 : MR;
}

// P panels' nb packed blocks (panel p at pk + p * panel_bytes) against MR activation rows (row
// i at x + i * act_bytes, already at the first of these blocks; for the k-quants, pairs + i *
// pair_stride their pair sums): y[i * ldy + 16 p ..] (+)= row i's results for panel p, its
// first nr[p] columns. Two panels a step load each activation's four bytes once for twice the
// multiply-and-sums.
template <class V, Format F, int MR, int P = 1>
void micro_kernel(const uint8_t* pk, int64_t panel_bytes, int64_t nb, const uint8_t* x, int64_t act_bytes,
                  const int32_t* pairs, int64_t pair_stride, float* y, int64_t ldy, const int* nr,
                  bool accumulate) {
  using I = typename V::I;
  using Fv = typename V::F;
  constexpr int L = V::kLanes;
  constexpr Layout T = layout_of(F);
  constexpr int64_t kSubQuads = T.elems / T.sub / 4;
  constexpr int64_t kStride = T.lane_bytes() * L;
  constexpr bool kKquant = T.elems == QK_K;
  constexpr int64_t kActBlock = kKquant ? int64_t(sizeof(block_q8_K)) : int64_t(sizeof(block_q8a));
  constexpr int64_t kQsAt = kKquant ? int64_t(offsetof(block_q8_K, qs)) : int64_t(offsetof(block_q8a, qs));
  // The results go to (and, after the first stretch, come from) y at the end, P 64-byte lines
  // per row here: from memory (n rows of all the weight rows' floats, far beyond L2), or from
  // L2 where panels go outside. Asked for now, with intent to write, their misses hide behind
  // the multiplies.
  for (int i = 0; i < MR; ++i) {
    for (int p = 0; p < P; ++p) __builtin_prefetch(y + i * ldy + p * L, 1, 3);
  }
  constexpr bool kFold = folds_scales<V, F>();
  Fv acc[P][MR];
  for (int p = 0; p < P; ++p) {
    for (int i = 0; i < MR; ++i) acc[p][i] = V::fzero();
  }
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* pb = pk + b * kStride;  // panel 0's block; panel p's is panel_bytes * p on
    const uint8_t* xb = x + b * kActBlock;
    auto dx_of = [&](int i) {
      float dx;
      std::memcpy(&dx, xb + i * act_bytes, 4);  // d leads both activation blocks
      return dx;
    };
    // the block's float sums: the rows' own where the scales fold (none kept apart)
    Fv sub_acc[kFold ? 1 : P][kFold ? 1 : MR];
    if constexpr (!kFold) {
      for (int p = 0; p < P; ++p) {
        for (int i = 0; i < MR; ++i) sub_acc[p][i] = V::fzero();
      }
    }
    for (int64_t s = 0; s < T.sub; ++s) {
      I sum[P][MR];
      for (int p = 0; p < P; ++p) {
        const I corr = V::load(pb + p * panel_bytes + T.elems * L + s * 4 * L);
        for (int i = 0; i < MR; ++i) sum[p][i] = corr;
      }
      for (int64_t q = 0; q < kSubQuads; ++q) {
        const int64_t quad = s * kSubQuads + q;
        I w[P];
        for (int p = 0; p < P; ++p) w[p] = V::load(pb + p * panel_bytes + quad * 4 * L);
        if constexpr (sign_trick(F)) {
          const I unshift = _mm256_set1_epi8(char(0x80));
          I w_abs[P];
          for (int p = 0; p < P; ++p) w_abs[p] = _mm256_sign_epi8(w[p], w[p]);
          for (int i = 0; i < MR; ++i) {
            const I xs = _mm256_xor_si256(V::bcast32(xb + i * act_bytes + kQsAt + 4 * quad), unshift);
            for (int p = 0; p < P; ++p) sum[p][i] = V::dot_add(sum[p][i], w_abs[p], _mm256_sign_epi8(xs, w[p]));
          }
        } else {
          for (int i = 0; i < MR; ++i) {
            const I xs = V::bcast32(xb + i * act_bytes + kQsAt + 4 * quad);
            for (int p = 0; p < P; ++p) sum[p][i] = V::dot_add(sum[p][i], xs, w[p]);
          }
        }
      }
      for (int p = 0; p < P; ++p) {
        const Fv scale = V::loadf(pb + p * panel_bytes + T.elems * L + 4 * T.sub * L + s * 4 * L);
        for (int i = 0; i < MR; ++i) {
          if constexpr (kFold) {
            acc[p][i] = V::fma(V::cvt(sum[p][i]), V::mul(scale, V::bcastf(dx_of(i))), acc[p][i]);
          } else {
            sub_acc[p][i] = V::fma(V::cvt(sum[p][i]), scale, sub_acc[p][i]);
          }
        }
      }
    }
    for (int p = 0; p < P; ++p) {
      const uint8_t* extra = pb + p * panel_bytes + T.elems * L + 8 * T.sub * L;
      for (int i = 0; i < MR; ++i) {
        const uint8_t* xi = xb + i * act_bytes;
        if constexpr (T.with_min) {
          float sx;  // block_q8a's s = dx * sum(q)
          std::memcpy(&sx, xi + 4, 4);
          acc[p][i] = V::fma(V::loadf(extra), V::bcastf(sx), acc[p][i]);
        }
        I mins = V::zero();
        if constexpr (T.with_kmins) {
          const int32_t* pr = pairs + i * pair_stride + 4 * b;
          mins = V::madd16(V::load(extra), V::bcast32(pr));
          for (int m = 1; m < 4; ++m) mins = V::add32(mins, V::madd16(V::load(extra + m * 4 * L), V::bcast32(pr + m)));
        }
        if constexpr (kFold) {
          if constexpr (T.with_kmins) {
            acc[p][i] = V::fnma(V::cvt(mins), V::mul(V::loadf(extra + 16 * L), V::bcastf(dx_of(i))), acc[p][i]);
          }
        } else {
          Fv block = sub_acc[p][i];
          if constexpr (T.with_kmins) block = V::fnma(V::cvt(mins), V::loadf(extra + 16 * L), block);
          acc[p][i] = V::fma(block, V::bcastf(dx_of(i)), acc[p][i]);
        }
      }
    }
  }
  for (int p = 0; p < P; ++p) store_rows<V, MR>(acc[p], y + p * L, ldy, nr[p], accumulate);
}

// Blocks in a stretch of k: nb_all blocks cut into stretches of at most `most`, evened out.
inline int64_t stretch_blocks(int64_t nb_all, int64_t most) {
  const int64_t stretches = (nb_all + most - 1) / most;
  return (nb_all + stretches - 1) / stretches;
}

// The L weight rows of the panel at row p, rows r1 and past repeating row r1 - 1 (a short
// panel); returns how many are real.
template <int L>
inline int panel_rows(const uint8_t* w, int64_t rb, int64_t p, int64_t r1, const uint8_t* (&rows)[L]) {
  const int nr = int(std::min<int64_t>(L, r1 - p));
  for (int r = 0; r < L; ++r) rows[r] = w + (p + std::min(r, nr - 1)) * rb;
  return nr;
}

// L1 bytes the packed stretch of a step's panels may take: three quarters of L1, the rest
// holding the activations' bytes of the same stretch (24 KB where CPUID does not tell). On a
// 48 KB L1 (model-106 Xeon), 36 KB against 24: Q4_K 8960x1536 1.12x, the others within noise.
inline int64_t pack_bytes() {
  const int64_t l1 = cpu_features().l1d_bytes;
  return l1 > 0 ? l1 * 3 / 4 : int64_t(24) << 10;
}

// Whether `bytes` of a step's inputs and results stay in L2 (seven eighths of it; 1 MB assumed
// where CPUID does not tell).
inline bool inputs_fit_l2(int64_t bytes) {
  const int64_t l2 = cpu_features().l2_bytes;
  return bytes <= (l2 > 0 ? l2 : int64_t(1) << 20) * 7 / 8;
}

// y[i * ldy + r] = W_r . x_i for weight rows [r0, r1) and activation rows i < n (quantized:
// xq + i * act_bytes, quant bytes plus 128): one stretch of k at a time, each panel's part of it
// packed and passed over by all the activation rows MR at a time.
// No wider row groups than the micro-kernel's MR: the register builds.
struct NoWideRows {
  static constexpr int64_t kRows = 0;
  template <Format F>
  struct Scope {};
  template <Format F>
  static void run(const uint8_t*, int64_t, const uint8_t*, int64_t, const int32_t*, int64_t, float*,
                  int64_t, int, bool) {}
};

// Wide (NoWideRows, or the AMX build's tiles) takes the activation rows Wide::kRows at a time
// first, with micro_kernel's arguments; MR at a time takes the rest. A Wide::Scope<F> lives for
// the whole call (the AMX build loads its tile configuration there). P panels are packed and
// passed over together (the last step of an odd count takes one).
template <class V, Format F, int MR, class Wide = NoWideRows, int P = 1>
void gemm_rows(const uint8_t* w, int64_t rb, int64_t k, int64_t r0, int64_t r1, const uint8_t* xq,
               int64_t act_bytes, int64_t n, float* y, int64_t ldy) {
  static_assert(P == 1 || Wide::kRows == 0, "wide row groups take one panel at a time");
  [[maybe_unused]] typename Wide::template Scope<F> scope;
  constexpr int L = V::kLanes;
  constexpr Layout T = layout_of(F);
  constexpr int64_t kStride = T.lane_bytes() * L;
  constexpr bool kKquant = T.elems == QK_K;
  static_assert(kStride % 64 == 0 || (L == 8 && kStride % 32 == 0), "aligned panel blocks");
  const int64_t nb_all = k / T.elems;
  constexpr int64_t kActBlock = kKquant ? int64_t(sizeof(block_q8_K)) : int64_t(sizeof(block_q8a));
  // The P panels' stretch together fits where one panel's did.
  const int64_t per = stretch_blocks(nb_all, std::max<int64_t>(1, pack_bytes() / (P * kStride)));
  const int64_t panel_bytes = per * kStride;
  thread_local Bytes pack_buf, tmp_buf, pair_buf;
  uint8_t* pk = pack_buf.get(size_t(P * panel_bytes));
  uint8_t* tmp = tmp_buf.get(size_t(L * T.elems));
  int32_t* pairs = nullptr;
  if constexpr (T.with_kmins) {
    pairs = reinterpret_cast<int32_t*>(pair_buf.get(size_t(n * nb_all * 16)));
    for (int64_t i = 0; i < n; ++i) {
      kquant_pair_sums(reinterpret_cast<const block_q8_K*>(xq + i * act_bytes), nb_all, pairs + i * nb_all * 4);
    }
  }
  using Micro = void (*)(const uint8_t*, int64_t, int64_t, const uint8_t*, int64_t, const int32_t*, int64_t,
                         float*, int64_t, const int*, bool);
  // [panels this step - 1][rows - 1] for the last rows, [panels - 1] for MR rows
  static constexpr Micro kTail[2][4] = {
      {micro_kernel<V, F, 1>, micro_kernel<V, F, 2>, micro_kernel<V, F, 3>, micro_kernel<V, F, 4>},
      {micro_kernel<V, F, 1, P>, micro_kernel<V, F, 2, P>, micro_kernel<V, F, 3, P>, micro_kernel<V, F, 4, P>}};
  // [panels - 1]: the step over the most rows, and how many
  static constexpr int kMainRows[2] = {MR, step_rows<V, F, MR, P>()};
  static constexpr Micro kMain[2] = {micro_kernel<V, F, MR>, micro_kernel<V, F, kMainRows[1], P>};
  static_assert(MR >= 4, "tails go up to 4 rows");
  static_assert(P == 1 || P == 2, "one or two panels a step");
  // One step: the P panels at weight row p, over the stretch of k from block b0, packed and
  // passed over by every activation row.
  auto step = [&](int64_t b0, int64_t p) {
    const int64_t nb = std::min(per, nb_all - b0);
    int nr[P];
    int panels = 0;
    for (; panels < P && p + panels * L < r1; ++panels) {
      const uint8_t* rows[L];
      nr[panels] = panel_rows<L>(w, rb, p + panels * L, r1, rows);
      pack_panel<V, F>(rows, b0, nb, pk + panels * panel_bytes, tmp);
    }
    const uint8_t* xs = xq + b0 * kActBlock;
    // the k-quants' pair sums of row i, from this stretch on (none for the other formats)
    auto pairs_of = [&](int64_t i) { return pairs == nullptr ? nullptr : pairs + (i * nb_all + b0) * 4; };
    int64_t i = 0;
    if constexpr (Wide::kRows > 0) {
      for (; i + Wide::kRows <= n; i += Wide::kRows) {
        Wide::template run<F>(pk, nb, xs + i * act_bytes, act_bytes, pairs_of(i), nb_all * 4,
                              y + i * ldy + p, ldy, nr[0], b0 > 0);
      }
    }
    const int mr_main = kMainRows[panels - 1];
    for (; i + mr_main <= n; i += mr_main) {
      kMain[panels - 1](pk, panel_bytes, nb, xs + i * act_bytes, act_bytes, pairs_of(i), nb_all * 4,
                        y + i * ldy + p, ldy, nr, b0 > 0);
    }
    while (i < n) {
      const int64_t mr = std::min<int64_t>(4, n - i);
      kTail[panels - 1][mr - 1](pk, panel_bytes, nb, xs + i * act_bytes, act_bytes, pairs_of(i), nb_all * 4,
                                y + i * ldy + p, ldy, nr, b0 > 0);
      i += mr;
    }
  };
  // Where all the activations' bytes fit in L2 beside a step's results, panels go outside and
  // stretches inside: the results of a panel (n rows of P * L floats) then stay in L2 from one
  // stretch to the next, where otherwise every stretch after the first reads and writes all of y
  // from memory again (512 x 8,960 floats for a gate projection: 18 MB a pass).
  if (inputs_fit_l2(n * act_bytes + n * P * L * int64_t(sizeof(float)))) {
    for (int64_t p = r0; p < r1; p += P * L) {
      for (int64_t b0 = 0; b0 < nb_all; b0 += per) step(b0, p);
    }
    return;
  }
  // Otherwise stretches outside, panels inside: the activations' bytes of one stretch (n rows
  // of up to pack_bytes() / L values) stay in L2 while every panel passes over them. (Panels
  // outside, a long k such as the down projection's 8,960 read all of x from L3 once per panel:
  // 0.65x.)
  for (int64_t b0 = 0; b0 < nb_all; b0 += per) {
    for (int64_t p = r0; p < r1; p += P * L) step(b0, p);
  }
}

// The entry point for f, on P panels of V::kLanes rows with MR activation rows per step.
template <class V, int MR, class Wide = NoWideRows, int P = 1>
void gemm_rows_for(Format f, const uint8_t* w, int64_t rb, int64_t k, int64_t r0, int64_t r1,
                   const uint8_t* xq, int64_t act_bytes, int64_t n, const uint8_t* /*prepared: none*/,
                   float* y, int64_t ldy) {
  switch (f) {
    case Format::Q8_0: return gemm_rows<V, Format::Q8_0, MR, Wide, P>(w, rb, k, r0, r1, xq, act_bytes, n, y, ldy);
    case Format::Q4_0: return gemm_rows<V, Format::Q4_0, MR, Wide, P>(w, rb, k, r0, r1, xq, act_bytes, n, y, ldy);
    case Format::Q4_1: return gemm_rows<V, Format::Q4_1, MR, Wide, P>(w, rb, k, r0, r1, xq, act_bytes, n, y, ldy);
    case Format::Q5_0: return gemm_rows<V, Format::Q5_0, MR, Wide, P>(w, rb, k, r0, r1, xq, act_bytes, n, y, ldy);
    case Format::Q5_1: return gemm_rows<V, Format::Q5_1, MR, Wide, P>(w, rb, k, r0, r1, xq, act_bytes, n, y, ldy);
    case Format::Q4_K: return gemm_rows<V, Format::Q4_K, MR, Wide, P>(w, rb, k, r0, r1, xq, act_bytes, n, y, ldy);
    case Format::Q5_K: return gemm_rows<V, Format::Q5_K, MR, Wide, P>(w, rb, k, r0, r1, xq, act_bytes, n, y, ldy);
    case Format::Q6_K: return gemm_rows<V, Format::Q6_K, MR, Wide, P>(w, rb, k, r0, r1, xq, act_bytes, n, y, ldy);
    default: return;  // no integer kernel: the caller never sends these
  }
}

}  // namespace int_gemm
}  // namespace
}  // namespace cromwell::avx2

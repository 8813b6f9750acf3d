// Weight formats, laid out byte for byte as ggml lays them out, so a GGUF tensor's bytes can be
// used in place: F32, F16, BF16, the 32-element block formats Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and the
// 256-element k-quant super-blocks Q4_K, Q5_K, Q6_K. Plus the two activation formats the integer
// dot products use: Q8A (32 elements, with the block sum for the offsets of Q4_0/Q4_1/Q5_0/Q5_1) and Q8_K.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace cromwell {

// Numbered as ggml numbers them (gguf.GGMLQuantizationType).
enum class Format : int {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  BF16 = 30,
};

constexpr int QK = 32;     // elements per block of the simple block formats
constexpr int QK_K = 256;  // elements per k-quant super-block
constexpr int K_SCALE_SIZE = 12;

using fp16_t = uint16_t;  // IEEE half, as stored
using bf16_t = uint16_t;  // upper 16 bits of an IEEE float

struct block_q8_0 {
  fp16_t d;
  int8_t qs[QK];
};
static_assert(sizeof(block_q8_0) == 2 + QK, "block_q8_0 must match ggml");

struct block_q4_0 {
  fp16_t d;
  uint8_t qs[QK / 2];  // low nibbles: elements 0..15, high nibbles: 16..31; value (q - 8) * d
};
static_assert(sizeof(block_q4_0) == 2 + QK / 2, "block_q4_0 must match ggml");

struct block_q4_1 {
  fp16_t d;
  fp16_t m;
  uint8_t qs[QK / 2];  // as q4_0; value q * d + m
};
static_assert(sizeof(block_q4_1) == 4 + QK / 2, "block_q4_1 must match ggml");

// As q4_0 with a fifth bit per element: bit j of qh (read as a little-endian uint32) is the
// high bit of element j; value (q - 16) * d.
struct block_q5_0 {
  fp16_t d;
  uint8_t qh[4];
  uint8_t qs[QK / 2];
};
static_assert(sizeof(block_q5_0) == 6 + QK / 2, "block_q5_0 must match ggml");

struct block_q5_1 {
  fp16_t d;
  fp16_t m;
  uint8_t qh[4];
  uint8_t qs[QK / 2];  // as q5_0; value q * d + m
};
static_assert(sizeof(block_q5_1) == 8 + QK / 2, "block_q5_1 must match ggml");

// Eight sub-blocks of 32, each with a 6-bit scale and a 6-bit min packed in `scales`.
// value = d * scale_j * q - dmin * min_j. qs[32 g + l]: low nibble element 64 g + l, high
// nibble element 64 g + 32 + l.
struct block_q4_K {
  fp16_t d;
  fp16_t dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q4_K) == 4 + K_SCALE_SIZE + QK_K / 2, "block_q4_K must match ggml");

// As q4_K, with the fifth bit of element 32 j + l in bit j of qh[l].
struct block_q5_K {
  fp16_t d;
  fp16_t dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q5_K) == 4 + K_SCALE_SIZE + QK_K / 8 + QK_K / 2,
              "block_q5_K must match ggml");

// Sixteen sub-blocks of 16 with int8 scales; value = d * scale_(i/16) * (q - 32), q 6 bits:
// low 4 in ql, high 2 in qh (see dequantize_row_q6_K for the interleave).
struct block_q6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  fp16_t d;
};
static_assert(sizeof(block_q6_K) == QK_K / 2 + QK_K / 4 + QK_K / 16 + 2,
              "block_q6_K must match ggml");

// Activations for the 32-element formats: a float scale (activations are quantized per call,
// so there is no reason to round the scale to half) and s = d * sum(qs), which Q4_1's offset
// term needs.
struct block_q8a {
  float d;
  float s;
  int8_t qs[QK];
};
static_assert(sizeof(block_q8a) == 8 + QK, "block_q8a layout");

// Activations for the k-quants, as ggml's block_q8_K: bsums are the sums of each 16 qs, which
// carry the min / offset terms.
struct block_q8_K {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];
};
static_assert(sizeof(block_q8_K) == 4 + QK_K + 2 * (QK_K / 16), "block_q8_K must match ggml");

// --- half / bfloat16 conversions (portable; round to nearest even, as numpy and F16C do) ---

inline float fp32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t fp32_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float fp16_to_fp32(fp16_t h);
fp16_t fp32_to_fp16(float f);
inline float bf16_to_fp32(bf16_t h) { return fp32_from_bits(uint32_t(h) << 16); }
// As ggml_compute_fp32_to_bf16: NaNs stay (quiet) NaNs, everything else rounds to nearest even.
inline bf16_t fp32_to_bf16(float f) {
  const uint32_t u = fp32_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16_t((u >> 16) | 64);
  return bf16_t((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

// --- format facts ---

bool format_from_name(const std::string& name, Format* out);
const char* format_name(Format f);
// constexpr: templates over a format (the integer GEMM's panel packing) size blocks at compile
// time with the same function the run-time row arithmetic uses.
constexpr int64_t block_elems(Format f) {  // 1 for F32/F16/BF16
  switch (f) {
    case Format::F32:
    case Format::F16:
    case Format::BF16: return 1;
    case Format::Q8_0:
    case Format::Q4_0:
    case Format::Q4_1:
    case Format::Q5_0:
    case Format::Q5_1: return QK;
    case Format::Q4_K:
    case Format::Q5_K:
    case Format::Q6_K: return QK_K;
  }
  return 1;
}
constexpr int64_t block_bytes(Format f) {
  switch (f) {
    case Format::F32: return 4;
    case Format::F16:
    case Format::BF16: return 2;
    case Format::Q8_0: return sizeof(block_q8_0);
    case Format::Q4_0: return sizeof(block_q4_0);
    case Format::Q4_1: return sizeof(block_q4_1);
    case Format::Q5_0: return sizeof(block_q5_0);
    case Format::Q5_1: return sizeof(block_q5_1);
    case Format::Q4_K: return sizeof(block_q4_K);
    case Format::Q5_K: return sizeof(block_q5_K);
    case Format::Q6_K: return sizeof(block_q6_K);
  }
  return 1;
}
// Bytes of one row of k elements; k must be a multiple of block_elems (checked by callers).
constexpr int64_t row_bytes(Format f, int64_t k) { return k / block_elems(f) * block_bytes(f); }
bool can_quantize(Format f);  // the k-quants dequantize and multiply, but are not produced here

// The 6-bit scale and min of sub-block j (0..7) of a q4_K / q5_K super-block's `scales`
// (inline: the prefill kernels' panel packing calls it eight times a super-block and row).
inline void k_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = uint8_t((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4));
    *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// --- reference row conversions (scalar; the yardstick for the SIMD versions) ---
namespace ref {
// Weights: ggml's reference quantizers, bit for bit (engine/quants.py matches them).
void quantize_row(Format f, const float* x, void* y, int64_t k);
void dequantize_row(Format f, const void* x, float* y, int64_t k);
// Activations.
void quantize_row_q8a(const float* x, block_q8a* y, int64_t k);
void quantize_row_q8_K(const float* x, block_q8_K* y, int64_t k);
}  // namespace ref

namespace avx2 {
void dequantize_row(Format f, const void* x, float* y, int64_t k);
void quantize_row_q8a(const float* x, block_q8a* y, int64_t k);
void quantize_row_q8_K(const float* x, block_q8_K* y, int64_t k);
}  // namespace avx2

// Dispatching entry points (scalar unless the AVX2 kernels may run).
void quantize_row(Format f, const float* x, void* y, int64_t k);
void dequantize_row(Format f, const void* x, float* y, int64_t k);

}  // namespace cromwell

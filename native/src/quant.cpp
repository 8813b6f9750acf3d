// Scalar reference conversions for every weight format, and the dispatch to the AVX2 versions.
// The weight quantizers follow ggml's reference code operation for operation (no fused
// multiply-adds: this translation unit is built for baseline x86-64), so that their bytes equal
// engine/quants.py's and llama.cpp's.
#include "quant.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "cpu_features.h"

namespace cromwell {

// IEEE half <-> float, exact in both directions for every value, rounding to nearest even.
float fp16_to_fp32(fp16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return fp32_from_bits(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp == 0) {
    // zero or subnormal: mant * 2^-24, exact in float
    const float v = float(mant) * fp32_from_bits(0x33800000u);
    return sign ? -v : v;
  }
  return fp32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
}

fp16_t fp32_to_fp16(float f) {
  const uint32_t u = fp32_to_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return fp16_t(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));  // NaN
  if (abs >= 0x477ff000u) return fp16_t(sign | 0x7c00u);  // rounds to beyond 65504: inf
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero): add 0.5 as a float so the FPU rounds to nearest even at
    // the 2^-24 position, then read the mantissa bits.
    const float v = fp32_from_bits(abs) + 0.5f;
    return fp16_t(sign | (fp32_to_bits(v) - 0x3f000000u));
  }
  // Normal: rebias the exponent and round the 13 dropped mantissa bits to nearest even.
  const uint32_t odd = (abs >> 13) & 1u;
  const uint32_t rounded = abs + 0xfffu + odd;
  return fp16_t(sign | ((rounded - 0x38000000u) >> 13));
}

bool format_from_name(const std::string& name, Format* out) {
  static const struct {
    const char* name;
    Format f;
  } table[] = {{"F32", Format::F32},   {"F16", Format::F16},   {"BF16", Format::BF16},
               {"Q8_0", Format::Q8_0}, {"Q4_0", Format::Q4_0}, {"Q4_1", Format::Q4_1},
               {"Q5_0", Format::Q5_0}, {"Q5_1", Format::Q5_1},
               {"Q4_K", Format::Q4_K}, {"Q5_K", Format::Q5_K}, {"Q6_K", Format::Q6_K}};
  for (const auto& e : table) {
    if (name == e.name) {
      *out = e.f;
      return true;
    }
  }
  return false;
}

const char* format_name(Format f) {
  switch (f) {
    case Format::F32: return "F32";
    case Format::F16: return "F16";
    case Format::BF16: return "BF16";
    case Format::Q8_0: return "Q8_0";
    case Format::Q4_0: return "Q4_0";
    case Format::Q4_1: return "Q4_1";
    case Format::Q5_0: return "Q5_0";
    case Format::Q5_1: return "Q5_1";
    case Format::Q4_K: return "Q4_K";
    case Format::Q5_K: return "Q5_K";
    case Format::Q6_K: return "Q6_K";
  }
  return "?";
}

bool can_quantize(Format f) {
  return f != Format::Q4_K && f != Format::Q5_K && f != Format::Q6_K;
}

namespace {

void quantize_row_q8_0(const float* x, block_q8_0* y, int64_t k) {
  for (int64_t b = 0; b < k / QK; ++b, x += QK) {
    float amax = 0.0f;
    for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < QK; ++j) y[b].qs[j] = int8_t(std::round(x[j] * id));
  }
}

void quantize_row_q4_0(const float* x, block_q4_0* y, int64_t k) {
  for (int64_t b = 0; b < k / QK; ++b, x += QK) {
    float amax = 0.0f, max = 0.0f;  // the signed value of largest magnitude, first one wins
    for (int j = 0; j < QK; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < QK / 2; ++j) {
      const float x0 = x[j] * id;
      const float x1 = x[j + QK / 2] * id;
      const uint8_t q0 = uint8_t(std::min(15, int(int8_t(x0 + 8.5f))));
      const uint8_t q1 = uint8_t(std::min(15, int(int8_t(x1 + 8.5f))));
      y[b].qs[j] = uint8_t(q0 | (q1 << 4));
    }
  }
}

void quantize_row_q4_1(const float* x, block_q4_1* y, int64_t k) {
  for (int64_t b = 0; b < k / QK; ++b, x += QK) {
    float min = x[0], max = x[0];
    for (int j = 1; j < QK; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(min);
    for (int j = 0; j < QK / 2; ++j) {
      const float x0 = (x[j] - min) * id;
      const float x1 = (x[j + QK / 2] - min) * id;
      const uint8_t q0 = uint8_t(std::min(15, int(int8_t(x0 + 0.5f))));
      const uint8_t q1 = uint8_t(std::min(15, int(int8_t(x1 + 0.5f))));
      y[b].qs[j] = uint8_t(q0 | (q1 << 4));
    }
  }
}

// Packs 32 five-bit values: low nibbles as q4_0 does, the fifth bits into qh (bit j: element j).
void pack_q5(const uint8_t q[QK], uint8_t qs[QK / 2], uint8_t qh_bytes[4]) {
  uint32_t qh = 0;
  for (int j = 0; j < QK / 2; ++j) {
    qs[j] = uint8_t((q[j] & 0x0f) | ((q[j + QK / 2] & 0x0f) << 4));
    qh |= uint32_t(q[j] >> 4) << j;
    qh |= uint32_t(q[j + QK / 2] >> 4) << (j + QK / 2);
  }
  for (int i = 0; i < 4; ++i) qh_bytes[i] = uint8_t(qh >> (8 * i));  // little-endian, as ggml
}

void quantize_row_q5_0(const float* x, block_q5_0* y, int64_t k) {
  for (int64_t b = 0; b < k / QK; ++b, x += QK) {
    float amax = 0.0f, max = 0.0f;  // the signed value of largest magnitude, first one wins
    for (int j = 0; j < QK; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    uint8_t q[QK];
    for (int j = 0; j < QK; ++j) q[j] = uint8_t(std::min(31, int(int8_t(x[j] * id + 16.5f))));
    pack_q5(q, y[b].qs, y[b].qh);
  }
}

void quantize_row_q5_1(const float* x, block_q5_1* y, int64_t k) {
  for (int64_t b = 0; b < k / QK; ++b, x += QK) {
    float min = x[0], max = x[0];
    for (int j = 1; j < QK; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(min);
    uint8_t q[QK];
    for (int j = 0; j < QK; ++j) {
      q[j] = uint8_t(std::min(31, int(int8_t((x[j] - min) * id + 0.5f))));
    }
    pack_q5(q, y[b].qs, y[b].qh);
  }
}

void dequantize_row_q8_0(const block_q8_0* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK; ++b, y += QK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < QK; ++j) y[j] = float(x[b].qs[j]) * d;
  }
}

void dequantize_row_q4_0(const block_q4_0* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK; ++b, y += QK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < QK / 2; ++j) {
      y[j] = float(int(x[b].qs[j] & 0x0f) - 8) * d;
      y[j + QK / 2] = float(int(x[b].qs[j] >> 4) - 8) * d;
    }
  }
}

void dequantize_row_q4_1(const block_q4_1* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK; ++b, y += QK) {
    const float d = fp16_to_fp32(x[b].d);
    const float m = fp16_to_fp32(x[b].m);
    for (int j = 0; j < QK / 2; ++j) {
      y[j] = float(x[b].qs[j] & 0x0f) * d + m;
      y[j + QK / 2] = float(x[b].qs[j] >> 4) * d + m;
    }
  }
}

// The five-bit value of element j of a q5_0 / q5_1 block.
inline int q5_value(const uint8_t* qs, const uint8_t* qh_bytes, int j) {
  const uint32_t qh = uint32_t(qh_bytes[0]) | (uint32_t(qh_bytes[1]) << 8) |
                      (uint32_t(qh_bytes[2]) << 16) | (uint32_t(qh_bytes[3]) << 24);
  const int lo = j < QK / 2 ? (qs[j] & 0x0f) : (qs[j - QK / 2] >> 4);
  return lo | int(((qh >> j) & 1u) << 4);
}

void dequantize_row_q5_0(const block_q5_0* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK; ++b, y += QK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < QK; ++j) y[j] = float(q5_value(x[b].qs, x[b].qh, j) - 16) * d;
  }
}

void dequantize_row_q5_1(const block_q5_1* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK; ++b, y += QK) {
    const float d = fp16_to_fp32(x[b].d);
    const float m = fp16_to_fp32(x[b].m);
    for (int j = 0; j < QK; ++j) y[j] = float(q5_value(x[b].qs, x[b].qh, j)) * d + m;
  }
}

}  // namespace

// The 6-bit scale and min of sub-block j (0..7) of a q4_K / q5_K super-block.
namespace {

void dequantize_row_q4_K(const block_q4_K* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK_K; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    const float dmin = fp16_to_fp32(x[b].dmin);
    const uint8_t* q = x[b].qs;
    for (int g = 0; g < 4; ++g, q += 32, y += 64) {
      uint8_t sc, m;
      k_scale_min(2 * g, x[b].scales, &sc, &m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      k_scale_min(2 * g + 1, x[b].scales, &sc, &m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      for (int l = 0; l < 32; ++l) y[l] = d1 * float(q[l] & 0x0f) - m1;
      for (int l = 0; l < 32; ++l) y[l + 32] = d2 * float(q[l] >> 4) - m2;
    }
  }
}

void dequantize_row_q5_K(const block_q5_K* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK_K; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    const float dmin = fp16_to_fp32(x[b].dmin);
    const uint8_t* q = x[b].qs;
    const uint8_t* qh = x[b].qh;
    for (int g = 0; g < 4; ++g, q += 32, y += 64) {
      uint8_t sc, m;
      k_scale_min(2 * g, x[b].scales, &sc, &m);
      const float d1 = d * float(sc), m1 = dmin * float(m);
      k_scale_min(2 * g + 1, x[b].scales, &sc, &m);
      const float d2 = d * float(sc), m2 = dmin * float(m);
      for (int l = 0; l < 32; ++l) {
        const int hi = (qh[l] >> (2 * g)) & 1;
        y[l] = d1 * float((q[l] & 0x0f) | (hi << 4)) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const int hi = (qh[l] >> (2 * g + 1)) & 1;
        y[l + 32] = d2 * float((q[l] >> 4) | (hi << 4)) - m2;
      }
    }
  }
}

void dequantize_row_q6_K(const block_q6_K* x, float* y, int64_t k) {
  for (int64_t b = 0; b < k / QK_K; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    const uint8_t* ql = x[b].ql;
    const uint8_t* qh = x[b].qh;
    const int8_t* sc = x[b].scales;
    // Each half of 128: ql[l] low/high nibbles are elements l and l+64, ql[l+32] elements l+32
    // and l+96; qh[l] holds the top two bits of all four.
    for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, y += 128) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = int((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = int((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * float(sc[is]) * float(q1);
        y[l + 32] = d * float(sc[is + 2]) * float(q2);
        y[l + 64] = d * float(sc[is + 4]) * float(q3);
        y[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
    }
  }
}

}  // namespace

void ref::quantize_row(Format f, const float* x, void* y, int64_t k) {
  switch (f) {
    case Format::F32: std::memcpy(y, x, size_t(k) * 4); return;
    case Format::F16:
      for (int64_t i = 0; i < k; ++i) static_cast<fp16_t*>(y)[i] = fp32_to_fp16(x[i]);
      return;
    case Format::BF16:
      for (int64_t i = 0; i < k; ++i) static_cast<bf16_t*>(y)[i] = fp32_to_bf16(x[i]);
      return;
    case Format::Q8_0: quantize_row_q8_0(x, static_cast<block_q8_0*>(y), k); return;
    case Format::Q4_0: quantize_row_q4_0(x, static_cast<block_q4_0*>(y), k); return;
    case Format::Q4_1: quantize_row_q4_1(x, static_cast<block_q4_1*>(y), k); return;
    case Format::Q5_0: quantize_row_q5_0(x, static_cast<block_q5_0*>(y), k); return;
    case Format::Q5_1: quantize_row_q5_1(x, static_cast<block_q5_1*>(y), k); return;
    case Format::Q4_K:
    case Format::Q5_K:
    case Format::Q6_K: std::abort();  // callers check can_quantize first
  }
}

void ref::dequantize_row(Format f, const void* x, float* y, int64_t k) {
  switch (f) {
    case Format::F32: std::memcpy(y, x, size_t(k) * 4); return;
    case Format::F16:
      for (int64_t i = 0; i < k; ++i) y[i] = fp16_to_fp32(static_cast<const fp16_t*>(x)[i]);
      return;
    case Format::BF16:
      for (int64_t i = 0; i < k; ++i) y[i] = bf16_to_fp32(static_cast<const bf16_t*>(x)[i]);
      return;
    case Format::Q8_0: dequantize_row_q8_0(static_cast<const block_q8_0*>(x), y, k); return;
    case Format::Q4_0: dequantize_row_q4_0(static_cast<const block_q4_0*>(x), y, k); return;
    case Format::Q4_1: dequantize_row_q4_1(static_cast<const block_q4_1*>(x), y, k); return;
    case Format::Q5_0: dequantize_row_q5_0(static_cast<const block_q5_0*>(x), y, k); return;
    case Format::Q5_1: dequantize_row_q5_1(static_cast<const block_q5_1*>(x), y, k); return;
    case Format::Q4_K: dequantize_row_q4_K(static_cast<const block_q4_K*>(x), y, k); return;
    case Format::Q5_K: dequantize_row_q5_K(static_cast<const block_q5_K*>(x), y, k); return;
    case Format::Q6_K: dequantize_row_q6_K(static_cast<const block_q6_K*>(x), y, k); return;
  }
}

void ref::quantize_row_q8a(const float* x, block_q8a* y, int64_t k) {
  for (int64_t b = 0; b < k / QK; ++b, x += QK) {
    float amax = 0.0f;
    for (int j = 0; j < QK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < QK; ++j) {
      y[b].qs[j] = int8_t(std::nearbyint(x[j] * id));
      sum += y[b].qs[j];
    }
    y[b].d = d;
    y[b].s = d * float(sum);
  }
}

void ref::quantize_row_q8_K(const float* x, block_q8_K* y, int64_t k) {
  for (int64_t b = 0; b < k / QK_K; ++b, x += QK_K) {
    float amax = 0.0f;
    for (int j = 0; j < QK_K; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < QK_K; ++j) {
      y[b].qs[j] = int8_t(std::min(127.0f, std::nearbyint(x[j] * id)));
    }
    for (int j = 0; j < QK_K / 16; ++j) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[b].qs[16 * j + l];
      y[b].bsums[j] = int16_t(sum);
    }
    y[b].d = d;
  }
}

void quantize_row(Format f, const float* x, void* y, int64_t k) {
  ref::quantize_row(f, x, y, k);  // weight packing is offline work: one exact version suffices
}

void dequantize_row(Format f, const void* x, float* y, int64_t k) {
  if (use_avx2()) {
    avx2::dequantize_row(f, x, y, k);
  } else {
    ref::dequantize_row(f, x, y, k);
  }
}

}  // namespace cromwell

// Portable IEEE half <-> single conversion, for the scalar kernels (F16 KV caches, F16 weights).
// The AVX2 kernels use F16C instead; these must agree with it bit for bit: round to nearest
// even, subnormals kept, infinities and NaNs preserved.
#pragma once
#include <cstdint>
#include <cstring>

namespace cromwell {

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1Fu) {  // inf / NaN: keep the payload, quieted as F16C does
    bits = sign | 0x7F800000u | (mant << 13) | (mant ? 0x400000u : 0u);
  } else if (exp != 0) {  // normal: rebias 15 -> 127
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {  // signed zero
    bits = sign;
  } else {  // subnormal half: normalise, every one is a normal float
    uint32_t e = 113;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mant & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

inline uint16_t fp32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof(x));
  const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
  const uint32_t abs = x & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) {  // inf / NaN (a NaN keeps a quiet bit so it stays a NaN)
    return uint16_t(sign | 0x7C00u | (abs > 0x7F800000u ? (0x200u | ((abs >> 13) & 0x3FFu)) : 0u));
  }
  if (abs >= 0x477FF000u) return uint16_t(sign | 0x7C00u);  // rounds past 65504: inf
  if (abs >= 0x38800000u) {  // normal half range (>= 2^-14)
    const uint32_t mant_lsb = (abs >> 13) & 1u;
    const uint32_t rounded = abs + 0xFFFu + mant_lsb;  // round to nearest, ties to even
    return uint16_t(sign | uint16_t((rounded - 0x38000000u) >> 13));
  }
  if (abs < 0x33000000u) return sign;  // below half the smallest subnormal: zero
  // Subnormal half: shift the full mantissa (implicit bit included) and round to even.
  const uint32_t e = abs >> 23;
  const uint32_t mant = (abs & 0x7FFFFFu) | 0x800000u;
  const uint32_t shift = 126u - e;  // 14..24 here
  const uint32_t half_ulp = 1u << (shift - 1);
  uint32_t q = mant >> shift;
  const uint32_t rest = mant & ((1u << shift) - 1u);
  if (rest > half_ulp || (rest == half_ulp && (q & 1u))) ++q;
  return uint16_t(sign | q);
}

}  // namespace cromwell

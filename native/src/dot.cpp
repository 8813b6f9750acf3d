#include "dot.h"

#include "cpu_features.h"

namespace cromwell {

float ref::dot_f32(const float* a, const float* b, int64_t n) {
  double acc = 0.0;  // the reference accumulates in double: it is the yardstick, not the kernel
  for (int64_t i = 0; i < n; ++i) acc += double(a[i]) * double(b[i]);
  return float(acc);
}

float dot_f32(const float* a, const float* b, int64_t n) {
  return use_avx2() ? avx2::dot_f32(a, b, n) : ref::dot_f32(a, b, n);
}

}  // namespace cromwell

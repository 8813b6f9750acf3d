// The F32 dot product: the smallest kernel, and the pattern every other kernel follows:
// a portable reference in namespace ref, a SIMD version with the same signature in namespace
// avx2 (its own translation unit), and a dispatching entry point that picks one per call from
// the flag set once by CPUID.
#pragma once
#include <cstdint>

namespace cromwell {
namespace ref {
float dot_f32(const float* a, const float* b, int64_t n);
}
namespace avx2 {
float dot_f32(const float* a, const float* b, int64_t n);
}
float dot_f32(const float* a, const float* b, int64_t n);
}  // namespace cromwell

#include "cpu_features.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <utility>

namespace cromwell {
namespace {

struct Regs {
  unsigned a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(unsigned leaf, unsigned subleaf = 0) {
  Regs r;
  __cpuid_count(leaf, subleaf, r.a, r.b, r.c, r.d);
  return r;
}

uint64_t xgetbv0() {
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

// Cache sizes from the deterministic cache parameters leaf: 4 on Intel, 0x8000001D on AMD.
void read_caches(CpuFeatures& f) {
  const unsigned max_ext = cpuid(0x80000000).a;
  const unsigned leaf = (max_ext >= 0x8000001D && cpuid(0x8000001D).a != 0) ? 0x8000001D : 4;
  if (leaf == 4 && cpuid(0).a < 4) return;
  for (unsigned i = 0; i < 16; ++i) {
    const Regs r = cpuid(leaf, i);
    const unsigned type = r.a & 0x1F;  // 0: no more caches, 1: data, 2: instruction, 3: unified
    if (type == 0) break;
    if (type == 2) continue;
    const unsigned level = (r.a >> 5) & 0x7;
    const int64_t ways = ((r.b >> 22) & 0x3FF) + 1;
    const int64_t partitions = ((r.b >> 12) & 0x3FF) + 1;
    const int64_t line = (r.b & 0xFFF) + 1;
    const int64_t sets = int64_t(r.c) + 1;
    const int64_t bytes = ways * partitions * line * sets;
    if (level == 1) f.l1d_bytes = bytes;
    if (level == 2) f.l2_bytes = bytes;
    if (level == 3) f.l3_bytes = bytes;
  }
}

// Physical cores: distinct (package, core) pairs in sysfs; falls back to the logical count.
int count_physical_cores(int logical) {
  std::set<std::pair<std::string, std::string>> cores;
  for (int cpu = 0; cpu < logical; ++cpu) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream pkg(base + "physical_package_id"), core(base + "core_id");
    std::string p, c;
    if (!(pkg >> p) || !(core >> c)) return logical;
    cores.emplace(p, c);
  }
  return cores.empty() ? logical : int(cores.size());
}

CpuFeatures detect() {
  CpuFeatures f;
  const unsigned max_leaf = cpuid(0).a;
  const Regs l1 = cpuid(1);
  f.sse42 = l1.c & (1u << 20);
  f.fma = l1.c & (1u << 12);
  f.f16c = l1.c & (1u << 29);
  const bool osxsave = l1.c & (1u << 27);
  bool avx512_rest = false;
  f.avx = l1.c & (1u << 28);
  f.os_saves_ymm = osxsave && (xgetbv0() & 0x6) == 0x6;
  // XCR0 bits 1-2 (SSE, AVX) and 5-7 (opmask, ZMM0-15 upper halves, ZMM16-31)
  f.os_saves_zmm = osxsave && (xgetbv0() & 0xE6) == 0xE6;
  if (max_leaf >= 7) {
    const Regs l7 = cpuid(7, 0);
    f.avx2 = l7.b & (1u << 5);
    f.bmi2 = l7.b & (1u << 8);
    f.avx512f = l7.b & (1u << 16);
    f.avx512vnni = l7.c & (1u << 11);
    avx512_rest = (l7.b & (1u << 17)) && (l7.b & (1u << 30)) && (l7.b & (1u << 31));  // DQ BW VL
    if (l7.a >= 1) f.avx_vnni = cpuid(7, 1).a & (1u << 4);  // sub-leaf 1, EAX bit 4
    f.amx_int8 = (l7.d & (1u << 24)) && (l7.d & (1u << 25));  // AMX-TILE, AMX-INT8
  }
  f.avx512f = f.avx512f && avx512_rest;  // the kernels need F with DQ, BW and VL
  read_caches(f);
  const long online = sysconf(_SC_NPROCESSORS_ONLN);
  f.logical_cores = online > 0 ? int(online) : 1;
  f.physical_cores = count_physical_cores(f.logical_cores);
  return f;
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' && v[0] != '0';
}

std::atomic<bool> g_force_scalar{env_flag("CROMWELL_FORCE_SCALAR")};
std::atomic<bool> g_force_avx2{env_flag("CROMWELL_FORCE_AVX2")};
std::atomic<bool> g_no_avx_vnni{env_flag("CROMWELL_NO_AVX_VNNI")};
std::atomic<bool> g_no_avx512_vnni{env_flag("CROMWELL_NO_AVX512_VNNI")};
std::atomic<bool> g_no_int_gemm{env_flag("CROMWELL_NO_INT_GEMM")};
std::atomic<bool> g_no_amx{env_flag("CROMWELL_NO_AMX")};

// The tile state: XCR0 bits 17 (XTILECFG) and 18 (XTILEDATA) set by the OS, and on Linux this
// process's permission to use it, which the kernel grants on request (until then the first
// tile instruction faults: the tile data is 8 KiB of extra state per thread to save).
bool amx_state_granted() {
  const Regs l1 = cpuid(1);
  if (!(l1.c & (1u << 27)) || (xgetbv0() & 0x60000) != 0x60000) return false;
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr long kReqXcompPerm = 0x1023;  // ARCH_REQ_XCOMP_PERM
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

bool use_avx2() {
  static const bool capable = [] {
    const CpuFeatures& f = cpu_features();
    return f.avx && f.avx2 && f.fma && f.f16c && f.os_saves_ymm;
  }();
  return capable && !g_force_scalar.load(std::memory_order_relaxed);
}

void set_force_scalar(bool force) { g_force_scalar.store(force, std::memory_order_relaxed); }
bool force_scalar() { return g_force_scalar.load(std::memory_order_relaxed); }

bool use_avx512() {
  static const bool capable = [] {
    const CpuFeatures& f = cpu_features();
    return f.avx512f && f.os_saves_zmm;
  }();
  return capable && use_avx2() && !g_force_avx2.load(std::memory_order_relaxed);
}

void set_force_avx2(bool force) { g_force_avx2.store(force, std::memory_order_relaxed); }
bool force_avx2() { return g_force_avx2.load(std::memory_order_relaxed); }

bool use_avx_vnni() {
  static const bool capable = cpu_features().avx_vnni;
  return capable && use_avx2() && !g_force_avx2.load(std::memory_order_relaxed) &&
         !g_no_avx_vnni.load(std::memory_order_relaxed);
}

void set_no_avx_vnni(bool off) { g_no_avx_vnni.store(off, std::memory_order_relaxed); }
bool no_avx_vnni() { return g_no_avx_vnni.load(std::memory_order_relaxed); }

bool use_avx512_vnni() {
  static const bool capable = [] {
    const CpuFeatures& f = cpu_features();
    return f.avx512f && f.avx512vnni && f.os_saves_zmm;  // avx512f stands for F, DQ, BW and VL
  }();
  return capable && use_avx2() && !g_force_avx2.load(std::memory_order_relaxed) &&
         !g_no_avx512_vnni.load(std::memory_order_relaxed);
}

void set_no_avx512_vnni(bool off) { g_no_avx512_vnni.store(off, std::memory_order_relaxed); }
bool no_avx512_vnni() { return g_no_avx512_vnni.load(std::memory_order_relaxed); }

bool amx_granted() {
  static const bool granted = cpu_features().amx_int8 && amx_state_granted();
  return granted;
}

bool use_amx() {
  return amx_granted() && use_avx512_vnni() && !g_no_amx.load(std::memory_order_relaxed);
}

void set_no_amx(bool off) { g_no_amx.store(off, std::memory_order_relaxed); }
bool no_amx() { return g_no_amx.load(std::memory_order_relaxed); }

bool use_int_gemm() { return !g_no_int_gemm.load(std::memory_order_relaxed); }
void set_no_int_gemm(bool off) { g_no_int_gemm.store(off, std::memory_order_relaxed); }

const char* int_gemm_kernel_set() {
  if (!use_int_gemm()) return "off";
  if (use_amx()) return "amx";
  if (use_avx512_vnni()) return "avx512-vnni";
  if (use_avx_vnni()) return "avx-vnni";
  return use_avx2() ? "avx2" : "scalar";
}

const char* kernel_set() { return use_avx512() ? "avx512" : use_avx2() ? "avx2" : "scalar"; }

const char* matvec_kernel_set() {
  if (use_avx_vnni()) return "avx-vnni";
  if (use_avx512_vnni()) return "avx512-vnni";
  return use_avx2() ? "avx2" : "scalar";
}

}  // namespace cromwell

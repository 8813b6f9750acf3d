// Bindings for the machine itself: CPU features, the thread pool, the scalar switch.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bind_util.h"
#include "cpu_features.h"
#include "dot.h"
#include "threadpool.h"

namespace py = pybind11;

namespace cromwell::bind {

void bind_core(py::module_& m) {
  m.def("cpu_features", [] {
    const CpuFeatures& f = cpu_features();
    py::dict d;
    d["sse42"] = f.sse42;
    d["avx"] = f.avx;
    d["avx2"] = f.avx2;
    d["fma"] = f.fma;
    d["f16c"] = f.f16c;
    d["bmi2"] = f.bmi2;
    d["avx512f"] = f.avx512f;
    d["avx512vnni"] = f.avx512vnni;
    d["avx_vnni"] = f.avx_vnni;
    d["amx_int8"] = f.amx_int8;
    d["amx"] = amx_granted();  // and the tile state granted to this process
    d["os_saves_ymm"] = f.os_saves_ymm;
    d["os_saves_zmm"] = f.os_saves_zmm;
    d["l1d_bytes"] = f.l1d_bytes;
    d["l2_bytes"] = f.l2_bytes;
    d["l3_bytes"] = f.l3_bytes;
    d["physical_cores"] = f.physical_cores;
    d["logical_cores"] = f.logical_cores;
    d["kernels"] = kernel_set();
    d["matvec_kernels"] = matvec_kernel_set();
    d["int_gemm_kernels"] = int_gemm_kernel_set();
    return d;
  }, "What this CPU offers, read once with CPUID, and which kernel set is in use.");
  m.def("set_force_scalar", &set_force_scalar, py::arg("force"),
        "Force the portable scalar kernels (for tests), or go back to the best available.");
  m.def("force_scalar", &force_scalar);
  m.def("set_force_avx2", &set_force_avx2, py::arg("force"),
        "Hold the kernels to plain AVX2 where AVX-512 or AVX-VNNI is available (for tests and "
        "comparisons).");
  m.def("force_avx2", &force_avx2);
  m.def("set_no_avx_vnni", &set_no_avx_vnni, py::arg("off"),
        "Turn the AVX-VNNI matrix-vector kernels off, so that a CPU with AVX-512 VNNI too runs "
        "that build (for tests and comparisons), or back on.");
  m.def("no_avx_vnni", &no_avx_vnni);
  m.def("set_no_avx512_vnni", &set_no_avx512_vnni, py::arg("off"),
        "Turn the AVX-512 VNNI kernels off, so that a CPU with AVX-VNNI too runs that build of "
        "the integer matrix-matrix product (for tests and comparisons), or back on.");
  m.def("no_avx512_vnni", &no_avx512_vnni);
  m.def("set_no_amx", &set_no_amx, py::arg("off"),
        "Turn the AMX tile kernels of the integer matrix-matrix product off, so that an AMX "
        "CPU runs the AVX-512 VNNI build (for tests and comparisons), or back on.");
  m.def("no_amx", &no_amx);
  m.def("set_no_int_gemm", &set_no_int_gemm, py::arg("off"),
        "Send matrix-matrix products of quantized weights through the float kernels instead of "
        "the integer ones (to compare with), or back.");
  m.def("use_int_gemm", &use_int_gemm);
  m.def("set_num_threads", &set_num_threads, py::arg("n"),
        "Size of the kernel thread pool; n <= 0 means the physical core count.");
  m.def("num_threads", &num_threads);
  m.def("set_pinning", &set_pinning, py::arg("pin"), "Pin pool workers to CPUs.");
  m.def("dot_f32", [](const py::handle& a_obj, const py::handle& b_obj) {
    auto a = contiguous<float>(a_obj, "a");
    auto b = contiguous<float>(b_obj, "b");
    if (a.ndim() != 1 || b.ndim() != 1 || a.shape(0) != b.shape(0)) {
      throw py::value_error("dot_f32: expected two 1-D float32 arrays of the same length");
    }
    const float* pa = a.data();
    const float* pb = b.data();
    const int64_t n = a.shape(0);
    py::gil_scoped_release release;
    return dot_f32(pa, pb, n);
  }, py::arg("a"), py::arg("b"));
}

}  // namespace cromwell::bind

// The extension module engine._native: one bind_* function per area of kernels.
#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace cromwell::bind {
void bind_core(py::module_& m);
void bind_quant(py::module_& m);
void bind_ops(py::module_& m);  // norms, activations, rope, attention, vision
void bind_decode(py::module_& m);  // the fused llama/qwen2 decode step
void bind_vocab(py::module_& m);  // a tokenizer's Python objects from a load-cache entry
void bind_bpe(py::module_& m);  // the byte-level BPE tokenizer of GGUF vocabularies
}  // namespace cromwell::bind

PYBIND11_MODULE(_native, m) {
  m.doc() = "Cromwell's native kernels: AVX2/FMA with scalar fallbacks, chosen by CPUID.";
  cromwell::bind::bind_core(m);
  cromwell::bind::bind_quant(m);
  cromwell::bind::bind_ops(m);
  cromwell::bind::bind_decode(m);
  cromwell::bind::bind_vocab(m);
  cromwell::bind::bind_bpe(m);
}

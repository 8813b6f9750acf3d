// Helpers shared by the binding files: checked views of numpy arrays, with errors that say what
// was expected.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "quant.h"

namespace cromwell::bind {

namespace py = pybind11;

// Steals a new reference, turning a failed C-API call into the Python error it set.
inline py::object owned(PyObject* p) {
  if (p == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(p);
}

// The UTF-8 of a str, lone surrogates kept (as "surrogatepass" writes them); `keep` holds the
// bytes object when one had to be made.
inline std::string_view utf8_of(const py::handle& text, py::object& keep) {
  if (!PyUnicode_Check(text.ptr())) throw py::type_error("expected str");
  Py_ssize_t n = 0;
  if (const char* fast = PyUnicode_AsUTF8AndSize(text.ptr(), &n); fast != nullptr) {
    return {fast, size_t(n)};
  }
  PyErr_Clear();  // lone surrogates: encode them as they came
  keep = owned(PyUnicode_AsEncodedString(text.ptr(), "utf-8", "surrogatepass"));
  return {PyBytes_AS_STRING(keep.ptr()), size_t(PyBytes_GET_SIZE(keep.ptr()))};
}

inline bool same_dtype(const py::dtype& a, const py::dtype& b) {
  return py::detail::npy_api::get().PyArray_EquivTypes_(a.ptr(), b.ptr());
}

// A C-contiguous array of dtype T, taken without a copy; anything else is a ValueError.
template <typename T>
py::array_t<T> contiguous(const py::handle& obj, const char* name) {
  if (!py::isinstance<py::array>(obj)) {
    throw py::value_error(std::string(name) + ": expected a numpy array");
  }
  auto arr = py::reinterpret_borrow<py::array>(obj);
  // Equivalence, not identity: arrays from a GGUF memory map (or any byte-order view) carry
  // their own dtype objects, equal in value to the canonical ones.
  if (!same_dtype(arr.dtype(), py::dtype::of<T>())) {
    throw py::value_error(std::string(name) + ": expected dtype " +
                          std::string(py::str(py::dtype::of<T>())) + ", got " +
                          std::string(py::str(arr.dtype())));
  }
  if (!(arr.flags() & py::array::c_style)) {
    throw py::value_error(std::string(name) + ": expected a C-contiguous array");
  }
  return py::reinterpret_borrow<py::array_t<T>>(arr);
}

// --- weight matrices (the matrix kernels' and the fused decode step's) ---

inline Format parse_format(const std::string& name) {
  Format f;
  if (!format_from_name(name, &f)) {
    throw py::value_error("unknown weight format '" + name +
                          "': expected one of F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, "
                          "Q6_K");
  }
  return f;
}

inline void check_k(Format f, int64_t k) {
  if (k <= 0 || k % block_elems(f) != 0) {
    throw py::value_error(std::string(format_name(f)) + ": row length k=" + std::to_string(k) +
                          " must be a positive multiple of the block size " +
                          std::to_string(block_elems(f)));
  }
}

// The dtypes a weight array of format f may have: its natural one, or raw bytes.
inline bool weight_dtype_ok(Format f, const py::dtype& dt, std::string* expected) {
  if (same_dtype(dt, py::dtype::of<uint8_t>())) return true;
  switch (f) {
    case Format::F32: *expected = "float32 or uint8"; return same_dtype(dt, py::dtype::of<float>());
    case Format::F16: *expected = "float16 or uint8"; return same_dtype(dt, py::dtype("float16"));
    case Format::BF16:
      *expected = "uint16 or uint8";
      return same_dtype(dt, py::dtype::of<uint16_t>());
    default: *expected = "uint8"; return false;
  }
}

struct WeightView {
  Format f;
  const void* data;
  int64_t rows;
  int64_t k;
};

// A weight matrix in format f with rows of k elements: C-contiguous, a whole number of rows.
// `name` is the argument the messages name.
inline WeightView weight_view(const py::handle& obj, Format f, int64_t k,
                              const std::string& name = "w") {
  check_k(f, k);
  if (!py::isinstance<py::array>(obj)) throw py::value_error(name + ": expected a numpy array");
  auto w = py::reinterpret_borrow<py::array>(obj);
  std::string expected;
  if (!weight_dtype_ok(f, w.dtype(), &expected)) {
    throw py::value_error(name + ": a " + format_name(f) + " weight must have dtype " +
                          expected + ", got " + std::string(py::str(w.dtype())));
  }
  if (!(w.flags() & py::array::c_style)) {
    throw py::value_error(name + ": expected a C-contiguous array");
  }
  // The kernels read half-float scales and float elements in place: the data must start on a
  // multiple of their size whatever the dtype (GGUF aligns tensor data to 32 bytes).
  const uintptr_t align = f == Format::F32 ? 4 : 2;
  if (reinterpret_cast<uintptr_t>(w.data()) % align != 0) {
    throw py::value_error(name + ": " + format_name(f) + " weights must start at an address "
                          "aligned to " + std::to_string(align) + " bytes");
  }
  const int64_t rb = row_bytes(f, k);
  const int64_t nbytes = int64_t(w.nbytes());
  if (w.ndim() >= 2 && int64_t(w.shape(w.ndim() - 1)) * int64_t(w.itemsize()) != rb) {
    throw py::value_error(name + ": last axis holds " +
                          std::to_string(int64_t(w.shape(w.ndim() - 1)) * int64_t(w.itemsize())) +
                          " bytes, expected one " + format_name(f) + " row of k=" +
                          std::to_string(k) + " elements = " + std::to_string(rb) + " bytes");
  }
  if (nbytes % rb != 0) {
    throw py::value_error(name + ": " + std::to_string(nbytes) +
                          " bytes is not a whole number of " + format_name(f) + " rows of k=" +
                          std::to_string(k) + " (" + std::to_string(rb) + " bytes each)");
  }
  return {f, w.data(), nbytes / rb, k};
}

}  // namespace cromwell::bind

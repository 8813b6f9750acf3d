// Helpers shared by the binding files: checked views of numpy arrays, with errors that say what
// was expected.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

namespace cromwell::bind {

namespace py = pybind11;

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

}  // namespace cromwell::bind

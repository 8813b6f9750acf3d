// Bindings for the weight formats and matrix kernels. Weights are any C-contiguous numpy array
// (a GGUF memory map included) read in place; activations and outputs are float32 arrays,
// never copied. Everything is checked before the GIL is released.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bind_util.h"
#include "matmul.h"
#include "quant.h"
#include "threadpool.h"

namespace py = pybind11;

namespace cromwell::bind {
namespace {

// A float32 C-contiguous array aligned to 4 bytes (numpy's own arrays always are; a view made
// at an odd byte offset of a buffer is not).
py::array_t<float> f32_array(const py::handle& obj, const char* name) {
  auto arr = contiguous<float>(obj, name);
  if (reinterpret_cast<uintptr_t>(arr.data()) % alignof(float) != 0) {
    throw py::value_error(std::string(name) + ": expected a float32 array aligned to 4 bytes");
  }
  return arr;
}

// A writable float32 C-contiguous array of the given shape: `out` if given (checked), else new.
py::array_t<float> output(const py::object& out, const std::vector<py::ssize_t>& shape) {
  if (out.is_none()) return py::array_t<float>(shape);
  auto arr = f32_array(out, "out");
  bool same = arr.ndim() == py::ssize_t(shape.size());
  for (size_t i = 0; same && i < shape.size(); ++i) same = arr.shape(py::ssize_t(i)) == shape[i];
  if (!same) {
    std::string want = "(";
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    throw py::value_error("out: expected shape " + want + (shape.size() == 1 ? ",)" : ")"));
  }
  if (!arr.writeable()) throw py::value_error("out: expected a writable array");
  return arr;
}

}  // namespace

void bind_quant(py::module_& m) {
  m.def("block_size", [](const std::string& fmt) { return block_elems(parse_format(fmt)); },
        py::arg("fmt"), "Elements per block of a weight format (1 for F32, F16, BF16).");

  m.def("row_bytes", [](const std::string& fmt, int64_t k) {
    const Format f = parse_format(fmt);
    check_k(f, k);
    return row_bytes(f, k);
  }, py::arg("fmt"), py::arg("k"), "Bytes of one row of k elements in a weight format.");

  m.def("quantize", [](const py::handle& x_obj, const std::string& fmt) {
    const Format f = parse_format(fmt);
    if (!can_quantize(f)) {
      throw py::value_error(std::string(format_name(f)) +
                            " weights can be read and multiplied but not produced here; "
                            "quantize to F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0 or Q5_1");
    }
    auto x = f32_array(x_obj, "x");
    if (x.ndim() != 2) throw py::value_error("x: expected a 2-D float32 array [rows, k]");
    const int64_t rows = x.shape(0), k = x.shape(1);
    check_k(f, k);
    py::array out;
    if (f == Format::F32) {
      out = py::array_t<float>({rows, k});
    } else if (f == Format::F16) {
      out = py::array(py::dtype("float16"), {rows, k});
    } else if (f == Format::BF16) {
      out = py::array_t<uint16_t>({rows, k});
    } else {
      out = py::array_t<uint8_t>({rows, row_bytes(f, k)});
    }
    const float* px = x.data();
    auto* py_out = static_cast<uint8_t*>(out.mutable_data());
    const int64_t rb = row_bytes(f, k);
    {
      py::gil_scoped_release release;
      parallel_for(rows, std::max<int64_t>(1, 16384 / k), [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) quantize_row(f, px + r * k, py_out + r * rb, k);
      });
    }
    return out;
  }, py::arg("x"), py::arg("fmt"),
     "Packs float32 rows [rows, k] into a weight format, byte for byte as ggml does.");

  m.def("dequantize", [](const py::handle& w_obj, const std::string& fmt, int64_t k) {
    const WeightView w = weight_view(w_obj, parse_format(fmt), k);
    py::array_t<float> y({w.rows, k});
    float* py_ = y.mutable_data();
    {
      py::gil_scoped_release release;
      const int64_t rb = row_bytes(w.f, k);
      const auto* base = static_cast<const uint8_t*>(w.data);
      parallel_for(w.rows, std::max<int64_t>(1, 16384 / k), [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) dequantize_row(w.f, base + r * rb, py_ + r * k, k);
      });
    }
    return y;
  }, py::arg("w"), py::arg("fmt"), py::arg("k"), "Unpacks weights to float32 [rows, k].");

  m.def("matvec", [](const py::handle& w_obj, const std::string& fmt, const py::handle& x_obj,
                     const py::object& out) {
    auto x = f32_array(x_obj, "x");
    if (x.ndim() != 1) throw py::value_error("x: expected a 1-D float32 array [k]");
    const WeightView w = weight_view(w_obj, parse_format(fmt), x.shape(0));
    auto y = output(out, {w.rows});
    const float* px = x.data();
    float* py_ = y.mutable_data();
    {
      py::gil_scoped_release release;
      matvec(w.f, w.data, w.rows, w.k, px, py_);
    }
    return y;
  }, py::arg("w"), py::arg("fmt"), py::arg("x"), py::arg("out") = py::none(),
     "y[rows] = W x, for decoding one token.");

  m.def("matmul_shared", [](const py::list& ws, const py::list& fmts, const py::handle& x_obj) {
    auto x = f32_array(x_obj, "x");
    if (x.ndim() != 1 && x.ndim() != 2) {
      throw py::value_error("x: expected a float32 array [k] or [n, k]");
    }
    const int64_t n = x.ndim() == 2 ? x.shape(0) : 1;
    const int64_t k = x.shape(x.ndim() - 1);
    const int count = int(ws.size());
    if (count != int(fmts.size())) {
      throw py::value_error("ws, fmts: expected one format per weight matrix, got " +
                            std::to_string(ws.size()) + " matrices and " +
                            std::to_string(fmts.size()) + " formats");
    }
    if (count < 1) throw py::value_error("ws: expected at least one weight matrix");
    std::vector<SharedInputMatrix> m(static_cast<size_t>(count));
    py::list ys;
    for (int i = 0; i < count; ++i) {
      const Format f = parse_format(py::cast<std::string>(fmts[size_t(i)]));
      const WeightView w = weight_view(ws[size_t(i)], f, k);
      py::array_t<float> y = x.ndim() == 2 ? py::array_t<float>({n, w.rows})
                                           : py::array_t<float>(w.rows);
      m[size_t(i)] = {w.f, w.data, w.rows, y.mutable_data()};
      ys.append(y);
    }
    const float* px = x.data();
    {
      py::gil_scoped_release release;
      matmul_shared_input(m.data(), count, k, px, n);
    }
    return ys;
  }, py::arg("ws"), py::arg("fmts"), py::arg("x"),
     "[x W^T for W in ws]: matrices of any formats that read the same activations x[k] or\n"
     "x[n, k], quantized once and multiplied in one pool job; every row is what matvec gives\n"
     "for that activation row.");

  m.attr("MATMUL_DECODE_ROWS") = py::int_(kMatmulDecodeRows);

  m.def("matmul_group", [](const py::list& ws, const py::list& fmts, const py::handle& x_obj,
                           const py::list& outs) {
    auto x = f32_array(x_obj, "x");
    if (x.ndim() != 2) throw py::value_error("x: expected a 2-D float32 array [n, k]");
    const int64_t n = x.shape(0), k = x.shape(1);
    const int count = int(ws.size());
    if (count < 1 || count > kMaxSharedInput) {
      throw py::value_error("ws: expected 1 to " + std::to_string(kMaxSharedInput) + " weight matrices, got " +
                            std::to_string(count));
    }
    if (int(fmts.size()) != count || int(outs.size()) != count) {
      throw py::value_error("ws, fmts, outs: expected one format and one output per weight matrix, got " +
                            std::to_string(count) + " matrices, " + std::to_string(fmts.size()) + " formats and " +
                            std::to_string(outs.size()) + " outputs");
    }
    std::vector<SharedInputMatrix> m(static_cast<size_t>(count));
    std::vector<py::array_t<float>> ys;
    for (int i = 0; i < count; ++i) {
      const Format f = parse_format(py::cast<std::string>(fmts[size_t(i)]));
      const WeightView w = weight_view(ws[size_t(i)], f, k);
      ys.push_back(output(py::reinterpret_borrow<py::object>(outs[size_t(i)]), {n, w.rows}));
      m[size_t(i)] = {w.f, w.data, w.rows, ys.back().mutable_data()};
    }
    const float* px = x.data();
    if (n > 0) {
      py::gil_scoped_release release;
      matmul_group(m.data(), count, k, px, n);
    }
    py::list result;
    for (auto& y : ys) result.append(y);
    return result;
  }, py::arg("ws"), py::arg("fmts"), py::arg("x"), py::arg("outs"),
     "outs[i][n, rows_i] = x W_i^T for matrices that read the same activations x[n, k] (a\n"
     "layer's query, key and value projections), each exactly what matmul gives for it alone;\n"
     "x is quantized once and one pool job covers all the matrices. An output given as None is\n"
     "made; the outputs are returned.");

  m.def("matmul", [](const py::handle& w_obj, const std::string& fmt, const py::handle& x_obj,
                     const py::object& out) {
    auto x = f32_array(x_obj, "x");
    if (x.ndim() != 2) throw py::value_error("x: expected a 2-D float32 array [n, k]");
    const int64_t n = x.shape(0);
    const WeightView w = weight_view(w_obj, parse_format(fmt), x.shape(1));
    auto y = output(out, {n, w.rows});
    const float* px = x.data();
    float* py_ = y.mutable_data();
    if (n > 0 && w.rows > 0) {
      py::gil_scoped_release release;
      matmul(w.f, w.data, w.rows, w.k, px, n, py_);
    }
    return y;
  }, py::arg("w"), py::arg("fmt"), py::arg("x"), py::arg("out") = py::none(),
     "y[n, rows] = x W^T (a torch Linear without bias), for prefill and vision. Up to\n"
     "MATMUL_DECODE_ROWS rows, each row is bit for bit what matvec gives for it.");

  m.def("get_rows", [](const py::handle& w_obj, const std::string& fmt, const py::handle& ids_obj,
                       int64_t k) {
    const WeightView w = weight_view(w_obj, parse_format(fmt), k);
    auto ids = contiguous<int32_t>(ids_obj, "ids");
    if (ids.ndim() != 1) throw py::value_error("ids: expected a 1-D int32 array");
    const int64_t n = ids.shape(0);
    const int32_t* pid = ids.data();
    for (int64_t i = 0; i < n; ++i) {
      if (pid[i] < 0 || pid[i] >= w.rows) {
        throw py::value_error("ids: row " + std::to_string(pid[i]) + " at position " +
                              std::to_string(i) + " is outside 0.." + std::to_string(w.rows - 1));
      }
    }
    py::array_t<float> y({n, k});
    float* py_ = y.mutable_data();
    {
      py::gil_scoped_release release;
      get_rows(w.f, w.data, w.rows, k, pid, n, py_);
    }
    return y;
  }, py::arg("w"), py::arg("fmt"), py::arg("ids"), py::arg("k"),
     "Rows ids of a weight matrix as float32 [n, k] (embedding lookup).");

  m.def("stream_read", [](const py::handle& a_obj) {
    if (!py::isinstance<py::array>(a_obj)) throw py::value_error("a: expected a numpy array");
    auto a = py::reinterpret_borrow<py::array>(a_obj);
    if (!(a.flags() & py::array::c_style)) throw py::value_error("a: expected a C-contiguous array");
    const auto* p = static_cast<const uint8_t*>(a.data());
    const int64_t n = int64_t(a.nbytes());
    py::gil_scoped_release release;
    return stream_read(p, n);
  }, py::arg("a"),
     "Reads every byte of a with wide loads on the thread pool (a memory bandwidth probe); "
     "returns the XOR of its 8-byte words (then of any trailing bytes).");
}

}  // namespace cromwell::bind

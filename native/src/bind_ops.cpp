// Bindings for the transformer ops, attention and vision kernels. Arrays come in and go out
// without copies; every shape, dtype, contiguity and alignment is checked first, and a mismatch
// is a ValueError that names the argument and what was expected. Kernels run without the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "attention.h"
#include "bind_util.h"
#include "ops.h"
#include "vision.h"

namespace py = pybind11;

namespace cromwell::bind {
namespace {

using Shape = std::vector<py::ssize_t>;

std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << "(";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << (s.size() == 1 ? ",)" : ")");
  return o.str();
}

Shape shape_of(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }

[[noreturn]] void fail(const std::string& fn, const std::string& what) {
  throw py::value_error(fn + ": " + what);
}

// A C-contiguous, naturally aligned array of T, viewed without a copy.
template <typename T>
py::array_t<T> view(const py::handle& obj, const std::string& fn, const char* name) {
  if (obj.is_none()) fail(fn, std::string(name) + ": expected a numpy array, got None");
  py::array_t<T> a;
  try {
    a = contiguous<T>(obj, name);
  } catch (const py::value_error& e) {
    fail(fn, e.what());
  }
  if (reinterpret_cast<uintptr_t>(a.data()) % alignof(T) != 0) {
    fail(fn, std::string(name) + ": expected data aligned to " + std::to_string(alignof(T)) +
                 " bytes");
  }
  return a;
}

template <typename T>
py::array_t<T> view_shape(const py::handle& obj, const std::string& fn, const char* name,
                          const Shape& want) {
  auto a = view<T>(obj, fn, name);
  if (shape_of(a) != want) {
    fail(fn, std::string(name) + ": expected shape " + shape_str(want) + ", got " +
                 shape_str(shape_of(a)));
  }
  return a;
}

void expect_ndim(const py::array& a, const std::string& fn, const char* name, int ndim,
                 const char* layout) {
  if (a.ndim() != ndim) {
    fail(fn, std::string(name) + ": expected a " + std::to_string(ndim) + "-D array " + layout +
                 ", got shape " + shape_str(shape_of(a)));
  }
}

// The output: a new float32 array of the given shape, or `out` checked to be exactly that
// (float32, C-contiguous, writeable).
py::array_t<float> output(const py::handle& out, const std::string& fn, const Shape& shape) {
  if (out.is_none()) return py::array_t<float>(shape);
  auto a = view_shape<float>(out, fn, "out", shape);
  if (!a.writeable()) fail(fn, "out: expected a writeable array");
  return a;
}

// Elementwise inputs: float32, C-contiguous, any shape.
using UnaryKernel = void (*)(const float*, float*, int64_t);

py::array_t<float> elementwise_unary(const py::handle& x_obj, const py::handle& out_obj,
                                     const char* fn, UnaryKernel kernel) {
  auto x = view<float>(x_obj, fn, "x");
  auto out = output(out_obj, fn, shape_of(x));
  const float* px = x.data();
  float* py_ = out.mutable_data();
  const int64_t n = x.size();
  {
    py::gil_scoped_release release;
    kernel(px, py_, n);
  }
  return out;
}

py::array_t<float> elementwise_binary(const py::handle& a_obj, const py::handle& b_obj,
                                      const py::handle& out_obj, const char* fn,
                                      const char* a_name, const char* b_name,
                                      void (*kernel)(const float*, const float*, float*, int64_t)) {
  auto a = view<float>(a_obj, fn, a_name);
  auto b = view_shape<float>(b_obj, fn, b_name, shape_of(a));
  auto out = output(out_obj, fn, shape_of(a));
  const float* pa = a.data();
  const float* pb = b.data();
  float* py_ = out.mutable_data();
  const int64_t n = a.size();
  {
    py::gil_scoped_release release;
    kernel(pa, pb, py_, n);
  }
  return out;
}

// Row ops take x of any rank >= 1; the rows are everything but the last axis.
int64_t last_dim(const py::array& x, const std::string& fn) {
  if (x.ndim() < 1 || x.shape(x.ndim() - 1) == 0) {
    fail(fn, "x: expected an array [..., d] with d >= 1, got shape " + shape_str(shape_of(x)));
  }
  return x.shape(x.ndim() - 1);
}

void bind_row_ops(py::module_& m) {
  m.def("rms_norm", [](const py::handle& x_obj, const py::handle& w_obj, float eps,
                       const py::handle& out_obj) {
    const char* fn = "rms_norm";
    auto x = view<float>(x_obj, fn, "x");
    const int64_t d = last_dim(x, fn);
    auto w = view_shape<float>(w_obj, fn, "weight", {d});
    auto out = output(out_obj, fn, shape_of(x));
    const float* px = x.data();
    const float* pw = w.data();
    float* po = out.mutable_data();
    const int64_t rows = x.size() / d;
    {
      py::gil_scoped_release release;
      rms_norm_rows(px, pw, eps, po, rows, d);
    }
    return out;
  }, py::arg("x"), py::arg("weight"), py::arg("eps"), py::arg("out") = py::none(),
     "RMSNorm over the last axis: x / sqrt(mean(x^2) + eps) * weight.");

  m.def("layer_norm", [](const py::handle& x_obj, const py::handle& w_obj,
                         const py::handle& b_obj, float eps, const py::handle& out_obj) {
    const char* fn = "layer_norm";
    auto x = view<float>(x_obj, fn, "x");
    const int64_t d = last_dim(x, fn);
    const float* pw = nullptr;
    const float* pb = nullptr;
    py::array_t<float> w, b;
    if (!w_obj.is_none()) pw = (w = view_shape<float>(w_obj, fn, "weight", {d})).data();
    if (!b_obj.is_none()) pb = (b = view_shape<float>(b_obj, fn, "bias", {d})).data();
    auto out = output(out_obj, fn, shape_of(x));
    const float* px = x.data();
    float* po = out.mutable_data();
    const int64_t rows = x.size() / d;
    {
      py::gil_scoped_release release;
      layer_norm_rows(px, pw, pb, eps, po, rows, d);
    }
    return out;
  }, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("eps"),
     py::arg("out") = py::none(),
     "LayerNorm over the last axis; weight and bias may be None (1 and 0).");

  m.def("softmax", [](const py::handle& x_obj, const py::handle& out_obj) {
    const char* fn = "softmax";
    auto x = view<float>(x_obj, fn, "x");
    const int64_t d = last_dim(x, fn);
    auto out = output(out_obj, fn, shape_of(x));
    const float* px = x.data();
    float* po = out.mutable_data();
    const int64_t rows = x.size() / d;
    {
      py::gil_scoped_release release;
      softmax_rows(px, po, rows, d);
    }
    return out;
  }, py::arg("x"), py::arg("out") = py::none(), "Softmax over the last axis.");

  m.def("silu", [](const py::handle& x, const py::handle& out) {
    return elementwise_unary(x, out, "silu", &silu);
  }, py::arg("x"), py::arg("out") = py::none(), "x * sigmoid(x), elementwise.");
  m.def("gelu", [](const py::handle& x, const py::handle& out) {
    return elementwise_unary(x, out, "gelu", &gelu);
  }, py::arg("x"), py::arg("out") = py::none(), "Exact (erf) GELU, elementwise.");
  m.def("swiglu", [](const py::handle& g, const py::handle& u, const py::handle& out) {
    return elementwise_binary(g, u, out, "swiglu", "gate", "up", &swiglu);
  }, py::arg("gate"), py::arg("up"), py::arg("out") = py::none(), "silu(gate) * up.");
  m.def("add", [](const py::handle& a, const py::handle& b, const py::handle& out) {
    return elementwise_binary(a, b, out, "add", "a", "b", &add);
  }, py::arg("a"), py::arg("b"), py::arg("out") = py::none(),
     "a + b for arrays of one shape (out may be a or b: the residual add in place).");

  m.def("rope", [](const py::handle& x_obj, const py::handle& pos_obj, double base,
                   const std::string& layout, int64_t n_rot, const py::handle& factors_obj,
                   double freq_scale) {
    const char* fn = "rope";
    auto x = view<float>(x_obj, fn, "x");
    expect_ndim(x, fn, "x", 3, "[n, heads, head_dim]");
    if (!x.writeable()) fail(fn, "x: expected a writeable array (rope works in place)");
    const int64_t n = x.shape(0), heads = x.shape(1), hd = x.shape(2);
    auto pos = view_shape<int32_t>(pos_obj, fn, "positions", {n});
    bool interleaved;
    if (layout == "half") {
      interleaved = false;
    } else if (layout == "interleaved") {
      interleaved = true;
    } else {
      fail(fn, "layout: expected \"half\" or \"interleaved\", got \"" + layout + "\"");
    }
    if (n_rot == -1) n_rot = hd;
    if (n_rot <= 0 || n_rot > hd || n_rot % 2 != 0) {
      fail(fn, "n_rot: expected an even number in [2, head_dim=" + std::to_string(hd) +
                   "] or -1, got " + std::to_string(n_rot));
    }
    if (!(base > 0.0)) fail(fn, "base: expected a positive number");
    if (!(freq_scale > 0.0)) fail(fn, "freq_scale: expected a positive number");
    const float* pf = nullptr;
    py::array_t<float> factors;
    if (!factors_obj.is_none()) {
      factors = view_shape<float>(factors_obj, fn, "freq_factors", {n_rot / 2});
      pf = factors.data();
    }
    float* px = x.mutable_data();
    const int32_t* pp = pos.data();
    {
      py::gil_scoped_release release;
      rope(px, pp, n, heads, hd, n_rot, base, interleaved, pf, freq_scale);
    }
    return x;
  }, py::arg("x"), py::arg("positions"), py::arg("base"), py::arg("layout"),
     py::arg("n_rot") = -1, py::arg("freq_factors") = py::none(), py::arg("freq_scale") = 1.0,
     "Rotary embedding in place on x[n, heads, head_dim]; layout \"half\" (NEOX/HF) or "
     "\"interleaved\" (GPT-J/ggml); n_rot=-1 rotates all of head_dim. Pair i at position p "
     "turns by p * freq_scale * base^(-2i/n_rot) / freq_factors[i] (freq_factors: n_rot/2 "
     "float32 values, Llama 3's rope_freqs; freq_scale: linear scaling's 1/factor). Returns x.");
}

// A key or value cache: float32 or float16, C-contiguous, 3-D [T, kv_heads, head_dim].
struct KvView {
  py::array arr;
  bool f16 = false;
};

KvView kv_view(const py::handle& obj, const std::string& fn, const char* name) {
  if (!py::isinstance<py::array>(obj)) fail(fn, std::string(name) + ": expected a numpy array");
  auto a = py::reinterpret_borrow<py::array>(obj);
  const py::dtype dt = a.dtype();
  const bool f32 = dt.kind() == 'f' && dt.itemsize() == 4;
  const bool f16 = dt.kind() == 'f' && dt.itemsize() == 2;
  if (!f32 && !f16) {
    fail(fn, std::string(name) + ": expected dtype float32 or float16, got " +
                 std::string(py::str(dt)));
  }
  if (!(a.flags() & py::array::c_style)) {
    fail(fn, std::string(name) + ": expected a C-contiguous array");
  }
  if (reinterpret_cast<uintptr_t>(a.data()) % dt.itemsize() != 0) {
    fail(fn, std::string(name) + ": expected data aligned to " + std::to_string(dt.itemsize()) +
                 " bytes");
  }
  expect_ndim(a, fn, name, 3, "[T, kv_heads, head_dim]");
  return {a, f16};
}

// k and v: the same dtype and shape, head_dim matching the queries', kv_heads dividing heads.
void check_kv_pair(const KvView& k, const KvView& v, int64_t hq, int64_t hd,
                   const std::string& fn) {
  if (k.f16 != v.f16 || shape_of(k.arr) != shape_of(v.arr)) {
    fail(fn, "v: expected the dtype and shape of k (" + std::string(py::str(k.arr.dtype())) +
                 " " + shape_str(shape_of(k.arr)) + "), got " +
                 std::string(py::str(v.arr.dtype())) + " " + shape_str(shape_of(v.arr)));
  }
  if (k.arr.shape(2) != hd) {
    fail(fn, "k: expected head_dim " + std::to_string(hd) + " (that of q), got shape " +
                 shape_str(shape_of(k.arr)));
  }
  const int64_t hkv = k.arr.shape(1);
  if (hkv < 1 || hq % hkv != 0) {
    fail(fn, "k: expected a number of kv heads that divides the " + std::to_string(hq) +
                 " query heads, got " + std::to_string(hkv));
  }
}

void bind_attention(py::module_& m) {
  m.def("attention_decode", [](const py::handle& q_obj, const py::handle& k_obj,
                               const py::handle& v_obj, int64_t n_ctx, float scale,
                               const py::handle& out_obj) {
    const char* fn = "attention_decode";
    auto q = view<float>(q_obj, fn, "q");
    expect_ndim(q, fn, "q", 2, "[heads, head_dim]");
    const int64_t hq = q.shape(0), hd = q.shape(1);
    if (hq < 1 || hd < 1) fail(fn, "q: expected at least one head of at least one element");
    const KvView k = kv_view(k_obj, fn, "k_cache"), v = kv_view(v_obj, fn, "v_cache");
    check_kv_pair(k, v, hq, hd, fn);
    const int64_t t_max = k.arr.shape(0);
    if (n_ctx < 1 || n_ctx > t_max) {
      fail(fn, "n_ctx: expected 1 <= n_ctx <= " + std::to_string(t_max) +
                   " (the cache length), got " + std::to_string(n_ctx));
    }
    auto out = output(out_obj, fn, {hq, hd});
    const float* pq = q.data();
    const void* pk = k.arr.data();
    const void* pv = v.arr.data();
    float* po = out.mutable_data();
    const int64_t hkv = k.arr.shape(1);
    {
      py::gil_scoped_release release;
      attention_decode(pq, hq, hd, pk, pv, k.f16, hkv, n_ctx, scale, po);
    }
    return out;
  }, py::arg("q"), py::arg("k_cache"), py::arg("v_cache"), py::arg("n_ctx"), py::arg("scale"),
     py::arg("out") = py::none(),
     "One query row q[heads, head_dim] against the first n_ctx rows of a float32 or float16 "
     "KV cache [T_max, kv_heads, head_dim] (GQA/MQA: head h reads kv head h // (heads // "
     "kv_heads)). Returns [heads, head_dim].");

  m.def("attention_prefill", [](const py::handle& q_obj, const py::handle& k_obj,
                                const py::handle& v_obj, int64_t q_offset, bool causal,
                                float scale, const py::handle& out_obj) {
    const char* fn = "attention_prefill";
    auto q = view<float>(q_obj, fn, "q");
    expect_ndim(q, fn, "q", 3, "[n, heads, head_dim]");
    const int64_t n = q.shape(0), hq = q.shape(1), hd = q.shape(2);
    if (hq < 1 || hd < 1) fail(fn, "q: expected at least one head of at least one element");
    const KvView k = kv_view(k_obj, fn, "k"), v = kv_view(v_obj, fn, "v");
    check_kv_pair(k, v, hq, hd, fn);
    const int64_t T = k.arr.shape(0);
    if (causal && (q_offset < 0 || q_offset + n > T)) {
      fail(fn, "q_offset: causal attention needs 0 <= q_offset and q_offset + n <= T (the " +
                   std::to_string(T) + " keys), got q_offset " + std::to_string(q_offset) +
                   " with n " + std::to_string(n));
    }
    if (!causal && T < 1 && n > 0) fail(fn, "k: expected at least one key");
    auto out = output(out_obj, fn, {n, hq, hd});
    const float* pq = q.data();
    const void* pk = k.arr.data();
    const void* pv = v.arr.data();
    float* po = out.mutable_data();
    const int64_t hkv = k.arr.shape(1);
    if (n > 0) {
      py::gil_scoped_release release;
      attention_prefill(pq, n, hq, hd, pk, pv, k.f16, T, hkv, q_offset, causal, scale, po);
    }
    return out;
  }, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("q_offset"), py::arg("causal"),
     py::arg("scale"), py::arg("out") = py::none(),
     "q[n, heads, head_dim] against k/v[T, kv_heads, head_dim] (float32 or float16). causal: "
     "query i sees keys 0..q_offset+i; otherwise all keys (cross-attention).");

  m.def("window_attention_2d", [](const py::handle& q_obj, const py::handle& k_obj,
                                  const py::handle& v_obj, int64_t window, float scale,
                                  const py::handle& out_obj) {
    const char* fn = "window_attention_2d";
    auto q = view<float>(q_obj, fn, "q");
    expect_ndim(q, fn, "q", 4, "[H, W, heads, head_dim]");
    const Shape shape = shape_of(q);
    auto k = view_shape<float>(k_obj, fn, "k", shape);
    auto v = view_shape<float>(v_obj, fn, "v", shape);
    if (window < 1) fail(fn, "window: expected >= 1, got " + std::to_string(window));
    auto out = output(out_obj, fn, shape);
    const float* pq = q.data();
    const float* pk = k.data();
    const float* pv = v.data();
    float* po = out.mutable_data();
    if (q.size() > 0) {
      py::gil_scoped_release release;
      window_attention_2d(pq, pk, pv, shape[0], shape[1], shape[2], shape[3], window, scale, po);
    }
    return out;
  }, py::arg("q"), py::arg("k"), py::arg("v"), py::arg("window"), py::arg("scale"),
     py::arg("out") = py::none(),
     "Attention within non-overlapping window x window tiles of an [H, W, heads, head_dim] "
     "grid; edge tiles hold fewer tokens.");
}

void bind_vision(py::module_& m) {
  m.def("conv_stem", [](const py::handle& x_obj, const py::handle& w_obj,
                        const py::handle& b_obj, int64_t stride, const py::handle& out_obj) {
    const char* fn = "conv_stem";
    auto x = view<float>(x_obj, fn, "x");
    expect_ndim(x, fn, "x", 3, "[H, W, Cin]");
    auto w = view<float>(w_obj, fn, "w");
    expect_ndim(w, fn, "w", 4, "[Cout, kh, kw, Cin]");
    const int64_t H = x.shape(0), W = x.shape(1), cin = x.shape(2);
    const int64_t cout = w.shape(0), kh = w.shape(1), kw = w.shape(2);
    if (w.shape(3) != cin) {
      fail(fn, "w: expected Cin " + std::to_string(cin) + " (that of x), got shape " +
                   shape_str(shape_of(w)));
    }
    if (cin < 1 || cout < 1 || kh < 1 || kw < 1) fail(fn, "w: expected no empty dimension");
    auto b = view_shape<float>(b_obj, fn, "b", {cout});
    if (stride < 1) fail(fn, "stride: expected >= 1, got " + std::to_string(stride));
    if (H < kh || W < kw) {
      fail(fn, "x: expected an image at least as large as the kernel (" + std::to_string(kh) +
                   " x " + std::to_string(kw) + "), got shape " + shape_str(shape_of(x)));
    }
    const int64_t ho = (H - kh) / stride + 1, wo = (W - kw) / stride + 1;
    auto out = output(out_obj, fn, {ho, wo, cout});
    const float* px = x.data();
    const float* pw = w.data();
    const float* pb = b.data();
    float* po = out.mutable_data();
    {
      py::gil_scoped_release release;
      conv_stem(px, H, W, cin, pw, pb, cout, kh, kw, stride, po);
    }
    return out;
  }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("stride"), py::arg("out") = py::none(),
     "Valid (unpadded) conv of x[H, W, Cin] with w[Cout, kh, kw, Cin] and b[Cout]; returns "
     "[(H - kh) // stride + 1, (W - kw) // stride + 1, Cout].");

  m.def("depthwise_conv3x3", [](const py::handle& x_obj, const py::handle& w_obj,
                                const py::handle& b_obj, int64_t stride,
                                const py::handle& out_obj) {
    const char* fn = "depthwise_conv3x3";
    auto x = view<float>(x_obj, fn, "x");
    expect_ndim(x, fn, "x", 3, "[H, W, C]");
    const int64_t H = x.shape(0), W = x.shape(1), C = x.shape(2);
    if (H < 1 || W < 1 || C < 1) fail(fn, "x: expected no empty dimension");
    auto w = view_shape<float>(w_obj, fn, "w", {3, 3, C});
    auto b = view_shape<float>(b_obj, fn, "b", {C});
    if (stride < 1) fail(fn, "stride: expected >= 1, got " + std::to_string(stride));
    const int64_t ho = (H - 1) / stride + 1, wo = (W - 1) / stride + 1;
    auto out = output(out_obj, fn, {ho, wo, C});
    const float* px = x.data();
    const float* pw = w.data();
    const float* pb = b.data();
    float* po = out.mutable_data();
    {
      py::gil_scoped_release release;
      depthwise_conv3x3(px, H, W, C, pw, pb, stride, po);
    }
    return out;
  }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("stride") = 1,
     py::arg("out") = py::none(),
     "3x3 depthwise conv, zero padding 1, of x[H, W, C] with w[3, 3, C] and b[C]; returns "
     "[(H - 1) // stride + 1, (W - 1) // stride + 1, C].");

  m.def("global_avg_pool", [](const py::handle& x_obj, const py::handle& out_obj) {
    const char* fn = "global_avg_pool";
    auto x = view<float>(x_obj, fn, "x");
    expect_ndim(x, fn, "x", 3, "[H, W, C]");
    const int64_t hw = x.shape(0) * x.shape(1), C = x.shape(2);
    if (hw < 1) fail(fn, "x: expected at least one pixel, got shape " + shape_str(shape_of(x)));
    auto out = output(out_obj, fn, {C});
    const float* px = x.data();
    float* po = out.mutable_data();
    {
      py::gil_scoped_release release;
      global_avg_pool(px, hw, C, po);
    }
    return out;
  }, py::arg("x"), py::arg("out") = py::none(), "Mean over H and W of x[H, W, C]; returns [C].");
}

}  // namespace

void bind_ops(py::module_& m) {
  bind_row_ops(m);
  bind_attention(m);
  bind_vision(m);
}

}  // namespace cromwell::bind

// Binding for the fused decode step (decode_step.h) and the typed structures it is built from:
// DecodeMatrix (a weight array with its format and shape, checked when made), DecodeLayerWeights
// (a layer's tensors as named fields) and DecodeDims (the model's sizes as named fields), so that
// a misspelled or missing field is a TypeError where the runtime builds them. The Python runtime
// has already checked every tensor's presence and shape against the model config; this checks
// what C++ relies on (dtype, contiguity, sizes against the dims) and keeps every array alive as
// long as the step object.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bind_util.h"
#include "decode_step.h"

namespace py = pybind11;

namespace cromwell::bind {
namespace {

// A weight matrix as the step takes it: the array it reads in place, and the view into it.
struct MatrixArg {
  py::array data;
  DecodeMatrix view;
};

// One layer's tensors, by name. Vectors are checked against the dims by the step, which can
// name the layer; matrices were checked against their own shape when made.
struct LayerArg {
  py::array attn_norm;
  MatrixArg wq, wk, wv;
  std::optional<py::array> bq, bk, bv;  // qwen2's Q/K/V biases: all three or none
  std::optional<py::array> q_norm, k_norm;  // qwen3's per-head Q/K RMSNorm: both or none
  MatrixArg wo;
  py::array ffn_norm;
  MatrixArg w_gate, w_up, w_down;
};

struct FusedDecodeStep {
  std::unique_ptr<DecodeStep> step;
  std::vector<py::object> keep_alive;  // the weight arrays and the caches the step points into
  int64_t vocab = 0;
  int64_t n_ctx = 0;
  int64_t dim = 0;
};

[[noreturn]] void fail(const std::string& what) {
  throw py::value_error("DecodeStep: " + what);
}

std::string str(int64_t v) { return std::to_string(v); }

MatrixArg make_matrix(const py::handle& data, const std::string& fmt, int64_t rows, int64_t k) {
  const Format f = parse_format(fmt);
  if (rows < 1) throw py::value_error("DecodeMatrix: rows must be >= 1, got " + str(rows));
  const WeightView w = weight_view(data, f, k, "DecodeMatrix: data");
  if (w.rows != rows) {
    throw py::value_error("DecodeMatrix: expected " + str(rows * row_bytes(f, k)) + " bytes (" +
                          str(rows) + " rows of " + str(k) + " " + fmt + "), got " +
                          str(int64_t(py::reinterpret_borrow<py::array>(data).nbytes())));
  }
  return {py::reinterpret_borrow<py::array>(data), {f, w.data, rows, k}};
}

// The keyword-only fields of a structure the runtime builds (DecodeLayerWeights, DecodeDims),
// taken out of the keyword arguments one by one, so that a misspelled, missing or mistyped field
// is a TypeError that names it (pybind11's own message for a call that matches no signature
// lists every argument given, whole arrays included).
class Fields {
 public:
  Fields(std::string cls, const py::args& args, const py::kwargs& kwargs,
         std::vector<std::string> names)
      : cls_(std::move(cls)), kwargs_(kwargs), names_(std::move(names)) {
    if (!args.empty()) wrong("takes keyword arguments only: " + listed());
    for (auto item : kwargs_) {
      const std::string key = py::str(item.first);
      if (std::find(names_.begin(), names_.end(), key) == names_.end()) {
        wrong("unknown field '" + key + "'; the fields are " + listed());
      }
    }
  }

  template <class T>
  T need(const char* name) const {
    if (!kwargs_.contains(name)) wrong("missing field '" + std::string(name) + "'");
    return as<T>(name, kwargs_[name]);
  }

  // Absent or None: nullopt.
  template <class T>
  std::optional<T> maybe(const char* name) const {
    if (!kwargs_.contains(name)) return std::nullopt;
    const py::object v = kwargs_[name];
    if (v.is_none()) return std::nullopt;
    return as<T>(name, v);
  }

 private:
  template <class T>
  T as(const char* name, const py::handle& v) const {
    if constexpr (std::is_same_v<T, py::array>) {
      // Taken as it is: casting would copy a list (or anything array-like) into a new array.
      if (!py::isinstance<py::array>(v)) mistyped(name, "a numpy array", v);
      return py::reinterpret_borrow<py::array>(v);
    } else {
      try {
        return v.cast<T>();
      } catch (const py::cast_error&) {
        mistyped(name, label<T>(), v);
      }
    }
  }

  template <class T>
  static const char* label() {
    if constexpr (std::is_same_v<T, MatrixArg>) return "a DecodeMatrix";
    if constexpr (std::is_same_v<T, bool>) return "a bool";
    if constexpr (std::is_integral_v<T>) return "an int";
    return "a float";
  }

  std::string listed() const {
    std::string s;
    for (const std::string& n : names_) s += (s.empty() ? "" : ", ") + n;
    return s;
  }

  [[noreturn]] void mistyped(const char* name, const char* expected, const py::handle& v) const {
    wrong(std::string(name) + ": expected " + expected + ", got " +
          std::string(py::str(py::type::handle_of(v).attr("__name__"))));
  }

  [[noreturn]] void wrong(const std::string& what) const {
    throw py::type_error(cls_ + ": " + what);
  }

  std::string cls_;
  py::kwargs kwargs_;
  std::vector<std::string> names_;
};

LayerArg make_layer(const py::args& args, const py::kwargs& kwargs) {
  const Fields f("DecodeLayerWeights", args, kwargs,
                 {"attn_norm", "wq", "wk", "wv", "bq", "bk", "bv", "q_norm", "k_norm", "wo",
                  "ffn_norm", "w_gate", "w_up", "w_down"});
  LayerArg l;
  l.attn_norm = f.need<py::array>("attn_norm");
  l.wq = f.need<MatrixArg>("wq");
  l.wk = f.need<MatrixArg>("wk");
  l.wv = f.need<MatrixArg>("wv");
  l.bq = f.maybe<py::array>("bq");
  l.bk = f.maybe<py::array>("bk");
  l.bv = f.maybe<py::array>("bv");
  l.q_norm = f.maybe<py::array>("q_norm");
  l.k_norm = f.maybe<py::array>("k_norm");
  l.wo = f.need<MatrixArg>("wo");
  l.ffn_norm = f.need<py::array>("ffn_norm");
  l.w_gate = f.need<MatrixArg>("w_gate");
  l.w_up = f.need<MatrixArg>("w_up");
  l.w_down = f.need<MatrixArg>("w_down");
  if (l.bq.has_value() != l.bk.has_value() || l.bq.has_value() != l.bv.has_value()) {
    throw py::value_error("DecodeLayerWeights: biases: give all of bq, bk, bv or none");
  }
  if (l.q_norm.has_value() != l.k_norm.has_value()) {
    throw py::value_error("DecodeLayerWeights: head norms: give both q_norm and k_norm or none");
  }
  return l;
}

DecodeDims make_dims(const py::args& args, const py::kwargs& kwargs) {
  const Fields f("DecodeDims", args, kwargs,
                 {"dim", "n_heads", "n_kv_heads", "head_dim", "ffn_dim", "vocab", "n_rot", "n_ctx",
                  "norm_eps", "rope_base", "interleaved", "scale", "rope_freq_scale",
                  "sliding_window"});
  DecodeDims d{};
  d.dim = f.need<int64_t>("dim");
  d.n_heads = f.need<int64_t>("n_heads");
  d.n_kv_heads = f.need<int64_t>("n_kv_heads");
  d.head_dim = f.need<int64_t>("head_dim");
  d.ffn_dim = f.need<int64_t>("ffn_dim");
  d.vocab = f.need<int64_t>("vocab");
  d.n_rot = f.need<int64_t>("n_rot");
  d.n_ctx = f.need<int64_t>("n_ctx");
  d.norm_eps = f.need<float>("norm_eps");
  d.rope_base = f.need<double>("rope_base");
  d.interleaved = f.need<bool>("interleaved");
  d.scale = f.need<float>("scale");
  d.rope_freq_scale = f.maybe<double>("rope_freq_scale").value_or(1.0);
  d.sliding_window = f.maybe<int64_t>("sliding_window").value_or(0);
  const auto need = [](bool ok, const std::string& what) {
    if (!ok) throw py::value_error("DecodeDims: " + what);
  };
  need(d.dim >= 1 && d.n_heads >= 1 && d.n_kv_heads >= 1 && d.head_dim >= 1 && d.ffn_dim >= 1 &&
           d.vocab >= 1 && d.n_ctx >= 1,
       "dim, n_heads, n_kv_heads, head_dim, ffn_dim, vocab and n_ctx must be >= 1");
  need(d.n_heads % d.n_kv_heads == 0, "n_heads=" + str(d.n_heads) +
                                          " is not a multiple of n_kv_heads=" + str(d.n_kv_heads));
  need(d.n_rot >= 2 && d.n_rot <= d.head_dim && d.n_rot % 2 == 0,
       "n_rot: expected an even number in [2, head_dim=" + str(d.head_dim) + "], got " +
           str(d.n_rot));
  need(d.rope_freq_scale > 0.0, "rope_freq_scale must be positive");
  need(d.sliding_window >= 0, "sliding_window must be >= 0 (0: no window)");
  return d;
}

const float* f32_vector(FusedDecodeStep& s, const py::handle& obj, int64_t n,
                        const std::string& name) {
  if (obj.is_none()) return nullptr;
  auto a = contiguous<float>(obj, name.c_str());
  if (a.size() != n) {
    fail(name + ": expected " + str(n) + " float32 values, got " + str(a.size()));
  }
  s.keep_alive.push_back(a);
  return a.data();
}

const float* f32_vector(FusedDecodeStep& s, const std::optional<py::array>& a, int64_t n,
                        const std::string& name) {
  return a ? f32_vector(s, *a, n, name) : nullptr;
}

// The view of a matrix the dims say is rows x k.
DecodeMatrix matrix(FusedDecodeStep& s, const MatrixArg& m, int64_t rows, int64_t k,
                    const std::string& name) {
  if (m.view.rows != rows || m.view.k != k) {
    fail(name + ": expected " + str(rows) + " rows of " + str(k) + " " + format_name(m.view.f) +
         ", got " + str(m.view.rows) + " rows of " + str(m.view.k));
  }
  s.keep_alive.push_back(m.data);
  return m.view;
}

// A KV cache of n float32 or float16 values (*f16 says which), written in place.
void* cache_view(FusedDecodeStep& s, const py::handle& obj, int64_t n, const char* name,
                 bool* f16) {
  const std::string what(name);
  if (!py::isinstance<py::array>(obj)) fail(what + ": expected a numpy array");
  auto a = py::reinterpret_borrow<py::array>(obj);
  *f16 = same_dtype(a.dtype(), py::dtype("float16"));
  if (!*f16 && !same_dtype(a.dtype(), py::dtype::of<float>())) {
    fail(what + ": expected dtype float32 or float16, got " + std::string(py::str(a.dtype())));
  }
  if (!(a.flags() & py::array::c_style)) fail(what + ": expected a C-contiguous array");
  if (a.size() != n) fail(what + ": expected " + std::to_string(n) + " values");
  if (!a.writeable()) fail(what + ": expected a writable array");
  s.keep_alive.push_back(a);
  return a.mutable_data();
}

// The token and position checks `run` and `run_span` share; `method` names the caller.
void check_token_pos(const FusedDecodeStep& s, const std::string& method, int32_t token,
                     int32_t pos, bool has_token) {
  if (has_token && (token < 0 || token >= s.vocab)) {
    throw py::value_error(method + ": token " + std::to_string(token) +
                          " is outside the vocabulary of " + std::to_string(s.vocab));
  }
  if (pos < 0 || pos >= s.n_ctx) {
    throw py::value_error(method + ": position " + std::to_string(pos) +
                          " is outside the context of " + std::to_string(s.n_ctx));
  }
}

// The logits buffer of n tokens: writable float32, n x vocab values.
py::array_t<float> logits_out(const FusedDecodeStep& s, const std::string& method,
                              const py::handle& out, int64_t n) {
  auto logits = contiguous<float>(out, "out");
  if (logits.size() != n * s.vocab || !logits.writeable()) {
    throw py::value_error(method + ": out must be a writable array of " + std::to_string(n) +
                          " x " + std::to_string(s.vocab) + " float32 logits");
  }
  return logits;
}

}  // namespace

void bind_decode(py::module_& m) {
  py::class_<MatrixArg>(m, "DecodeMatrix",
                        "A weight matrix of `rows` rows of k elements in a ggml format, read in"
                        " place: its array is checked (dtype, contiguity, rows x row_bytes(fmt, k)"
                        " bytes) when made and held as long as the matrix.")
      .def(py::init(&make_matrix), py::arg("data"), py::arg("fmt"), py::arg("rows"), py::arg("k"))
      .def_readonly("data", &MatrixArg::data)
      .def_property_readonly("fmt", [](const MatrixArg& a) { return format_name(a.view.f); })
      .def_property_readonly("rows", [](const MatrixArg& a) { return a.view.rows; })
      .def_property_readonly("k", [](const MatrixArg& a) { return a.view.k; })
      .def("__repr__", [](const MatrixArg& a) {
        return std::string("DecodeMatrix(") + format_name(a.view.f) + ", " + str(a.view.rows) +
               " x " + str(a.view.k) + ")";
      });

  py::class_<LayerArg>(m, "DecodeLayerWeights",
                       "DecodeLayerWeights(*, attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up,"
                       " w_down, bq=None, bk=None, bv=None, q_norm=None, k_norm=None)\n\n"
                       "One layer's tensors for DecodeStep, by name: float32 vectors attn_norm,"
                       " ffn_norm, the optional biases bq, bk, bv (all three or none) and the"
                       " optional per-head RMSNorm weights q_norm, k_norm ([head_dim], both or"
                       " none);"
                       " DecodeMatrix wq, wk, wv, wo, w_gate, w_up, w_down.")
      .def(py::init(&make_layer))
      .def_readonly("attn_norm", &LayerArg::attn_norm)
      .def_readonly("wq", &LayerArg::wq)
      .def_readonly("wk", &LayerArg::wk)
      .def_readonly("wv", &LayerArg::wv)
      .def_readonly("bq", &LayerArg::bq)
      .def_readonly("bk", &LayerArg::bk)
      .def_readonly("bv", &LayerArg::bv)
      .def_readonly("q_norm", &LayerArg::q_norm)
      .def_readonly("k_norm", &LayerArg::k_norm)
      .def_readonly("wo", &LayerArg::wo)
      .def_readonly("ffn_norm", &LayerArg::ffn_norm)
      .def_readonly("w_gate", &LayerArg::w_gate)
      .def_readonly("w_up", &LayerArg::w_up)
      .def_readonly("w_down", &LayerArg::w_down);

  py::class_<DecodeDims>(m, "DecodeDims",
                         "DecodeDims(*, dim, n_heads, n_kv_heads, head_dim, ffn_dim, vocab, n_rot,"
                         " n_ctx, norm_eps, rope_base, interleaved, scale, rope_freq_scale=1.0,"
                         " sliding_window=0)\n\n"
                         "The sizes and constants of a decode step, by name: ints, then floats"
                         " norm_eps, rope_base, bool interleaved (ggml's \"normal\" RoPE, pairs"
                         " 2i, 2i+1; else NEOX), float scale (the attention scale), float"
                         " rope_freq_scale (linear RoPE scaling's 1/factor), int sliding_window"
                         " (the most cache rows a token attends to; 0: all).")
      .def(py::init(&make_dims))
      .def_readonly("dim", &DecodeDims::dim)
      .def_readonly("n_heads", &DecodeDims::n_heads)
      .def_readonly("n_kv_heads", &DecodeDims::n_kv_heads)
      .def_readonly("head_dim", &DecodeDims::head_dim)
      .def_readonly("ffn_dim", &DecodeDims::ffn_dim)
      .def_readonly("vocab", &DecodeDims::vocab)
      .def_readonly("n_rot", &DecodeDims::n_rot)
      .def_readonly("n_ctx", &DecodeDims::n_ctx)
      .def_readonly("norm_eps", &DecodeDims::norm_eps)
      .def_readonly("rope_base", &DecodeDims::rope_base)
      .def_readonly("interleaved", &DecodeDims::interleaved)
      .def_readonly("scale", &DecodeDims::scale)
      .def_readonly("rope_freq_scale", &DecodeDims::rope_freq_scale)
      .def_readonly("sliding_window", &DecodeDims::sliding_window);

  py::class_<FusedDecodeStep>(m, "DecodeStep",
                              "One llama/qwen2/qwen3 decode step over all layers in one call.")
      .def(py::init([](const std::vector<LayerArg>& layers, const MatrixArg& embd,
                       const MatrixArg& head, const py::handle& out_norm, const DecodeDims& d,
                       const py::handle& k_cache, const py::handle& v_cache,
                       int64_t max_tokens, const py::handle& rope_freq_factors) {
             if (max_tokens < 1) fail("max_tokens must be >= 1, got " + str(max_tokens));
             auto s = std::make_unique<FusedDecodeStep>();
             const int64_t q_dim = d.n_heads * d.head_dim;
             const int64_t kv_dim = d.n_kv_heads * d.head_dim;
             std::vector<DecodeLayer> ls;
             ls.reserve(layers.size());
             for (size_t i = 0; i < layers.size(); ++i) {
               const LayerArg& L = layers[i];
               const std::string p = "layer " + std::to_string(i) + " ";
               DecodeLayer l{};
               l.attn_norm = f32_vector(*s, L.attn_norm, d.dim, p + "attn_norm");
               l.wq = matrix(*s, L.wq, q_dim, d.dim, p + "wq");
               l.wk = matrix(*s, L.wk, kv_dim, d.dim, p + "wk");
               l.wv = matrix(*s, L.wv, kv_dim, d.dim, p + "wv");
               l.bq = f32_vector(*s, L.bq, q_dim, p + "bq");
               l.bk = f32_vector(*s, L.bk, kv_dim, p + "bk");
               l.bv = f32_vector(*s, L.bv, kv_dim, p + "bv");
               l.q_norm = f32_vector(*s, L.q_norm, d.head_dim, p + "q_norm");
               l.k_norm = f32_vector(*s, L.k_norm, d.head_dim, p + "k_norm");
               l.wo = matrix(*s, L.wo, d.dim, q_dim, p + "wo");
               l.ffn_norm = f32_vector(*s, L.ffn_norm, d.dim, p + "ffn_norm");
               l.gate = matrix(*s, L.w_gate, d.ffn_dim, d.dim, p + "w_gate");
               l.up = matrix(*s, L.w_up, d.ffn_dim, d.dim, p + "w_up");
               l.down = matrix(*s, L.w_down, d.dim, d.ffn_dim, p + "w_down");
               ls.push_back(l);
             }
             const int64_t n_layers = int64_t(ls.size());
             DecodeMatrix e = matrix(*s, embd, d.vocab, d.dim, "embd");
             DecodeMatrix h = matrix(*s, head, d.vocab, d.dim, "head");
             const float* on = f32_vector(*s, out_norm, d.dim, "out_norm");
             const int64_t cache_n = n_layers * d.n_ctx * kv_dim;
             bool k16 = false, v16 = false;
             void* kc = cache_view(*s, k_cache, cache_n, "k_cache", &k16);
             void* vc = cache_view(*s, v_cache, cache_n, "v_cache", &v16);
             if (k16 != v16) fail("k_cache, v_cache: expected the same dtype");
             s->vocab = d.vocab;
             s->n_ctx = d.n_ctx;
             s->dim = d.dim;
             const float* ff = f32_vector(*s, rope_freq_factors, d.n_rot / 2,
                                          "rope_freq_factors");
             s->step = std::make_unique<DecodeStep>(std::move(ls), e, h, on, d, kc, vc, k16,
                                                    max_tokens, ff);
             return s;
           }),
           py::arg("layers"), py::arg("embd"), py::arg("head"), py::arg("out_norm"),
           py::arg("dims"), py::arg("k_cache"), py::arg("v_cache"), py::arg("max_tokens") = 1,
           py::arg("rope_freq_factors") = py::none())
      .def("run", [](FusedDecodeStep& s, int32_t token, int32_t pos, const py::handle& out) {
             check_token_pos(s, "DecodeStep.run", token, pos, true);
             auto logits = logits_out(s, "DecodeStep.run", out, 1);
             float* po = logits.mutable_data();
             {
               py::gil_scoped_release release;
               s.step->run(token, pos, po);
             }
           },
           py::arg("token"), py::arg("pos"), py::arg("out"),
           "Run `token` at `pos`: K/V into the cache, logits into out[vocab].")
      .def("run_span",
           [](FusedDecodeStep& s, const py::handle& tokens_obj, int32_t pos, int64_t lo,
              int64_t hi, const py::handle& x, const py::handle& out) {
             const std::string method = "DecodeStep.run_span";
             const int64_t n_layers = s.step->n_layers();
             if (!(0 <= lo && lo < hi && hi <= n_layers)) {
               throw py::value_error(method + ": layers [" + std::to_string(lo) + ", " +
                                     std::to_string(hi) + ") are not a span of 0.." +
                                     std::to_string(n_layers));
             }
             auto tokens = contiguous<int32_t>(tokens_obj, "tokens");
             const int64_t n = tokens.size();
             if (tokens.ndim() != 1 || n < 1 || n > s.step->max_tokens()) {
               throw py::value_error(method + ": expected 1 to " +
                                     std::to_string(s.step->max_tokens()) +
                                     " tokens in a 1-D int32 array, got " + std::to_string(n));
             }
             check_token_pos(s, method, 0, pos, false);
             if (pos + n > s.n_ctx) {
               throw py::value_error(method + ": positions " + std::to_string(pos) + ".." +
                                     std::to_string(pos + n - 1) + " run past the context of " +
                                     std::to_string(s.n_ctx));
             }
             const int32_t* pt = tokens.data();
             for (int64_t i = 0; lo == 0 && i < n; ++i) check_token_pos(s, method, pt[i], pos, true);
             auto xs = contiguous<float>(x, "x");
             if (xs.size() != n * s.dim || !xs.writeable()) {
               throw py::value_error(method + ": x must be a writable array of " +
                                     std::to_string(n) + " x " + std::to_string(s.dim) +
                                     " float32 values");
             }
             float* po = nullptr;
             py::array_t<float> logits;
             if (hi == n_layers) {
               if (out.is_none()) throw py::value_error(method + ": the last layer needs out");
               logits = logits_out(s, method, out, n);
               po = logits.mutable_data();
             }
             float* px = xs.mutable_data();
             {
               py::gil_scoped_release release;
               s.step->run_span(pt, n, pos, lo, hi, px, po);
             }
           },
           py::arg("tokens"), py::arg("pos"), py::arg("lo"), py::arg("hi"), py::arg("x"),
           py::arg("out") = py::none(),
           "Layers [lo, hi) of n tokens at positions pos..pos+n-1 (a seam in the stack, a"
           " speculative draft): from their embeddings (lo == 0) or from x[n, dim], the"
           " residual stream written back to x; logits into out[n, vocab] when hi is the last"
           " layer. Each token's logits are those its own decode step gives.")
      .def("run_rows",
           [](FusedDecodeStep& s, const py::handle& tokens_obj, const py::handle& rows_obj,
              const py::handle& out) {
             const std::string method = "DecodeStep.run_rows";
             auto tokens = contiguous<int32_t>(tokens_obj, "tokens");
             auto rows = contiguous<int32_t>(rows_obj, "rows");
             const int64_t n = tokens.size();
             if (tokens.ndim() != 1 || n < 1 || n > s.step->max_tokens()) {
               throw py::value_error(method + ": expected 1 to " +
                                     std::to_string(s.step->max_tokens()) +
                                     " tokens in a 1-D int32 array, got " + std::to_string(n));
             }
             if (rows.ndim() != 1 || rows.size() != n) {
               throw py::value_error(method + ": expected one row per token, got " +
                                     std::to_string(rows.size()) + " rows for " + std::to_string(n) +
                                     " tokens");
             }
             const int32_t* pt = tokens.data();
             const int32_t* pr = rows.data();
             for (int64_t i = 0; i < n; ++i) {
               check_token_pos(s, method, pt[i], pr[i], true);
               if (i > 0 && pr[i] <= pr[i - 1]) {
                 throw py::value_error(method + ": rows must increase, got " + std::to_string(pr[i - 1]) +
                                       " then " + std::to_string(pr[i]));
               }
             }
             auto logits = logits_out(s, method, out, 1);
             float* po = logits.mutable_data();
             {
               py::gil_scoped_release release;
               s.step->run_rows(pt, n, pr, po);
             }
           },
           py::arg("tokens"), py::arg("rows"), py::arg("out"),
           "n tokens at the cache rows `rows` (increasing) in one pass over the weights, each"
           " computed as its decode step at that position would be, attending to the rows up"
           " to its own; the rows between them must hold their final keys and values. The last"
           " token's logits into out[vocab].");
}

}  // namespace cromwell::bind

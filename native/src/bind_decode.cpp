// Binding for the fused decode step (decode_step.h). The Python runtime has already checked
// every tensor's presence and shape against the model config; this checks what C++ relies on
// (dtype, contiguity, byte sizes) and keeps every array alive as long as the step object.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "bind_util.h"
#include "decode_step.h"

namespace py = pybind11;

namespace cromwell::bind {
namespace {

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

const float* f32_vector(FusedDecodeStep& s, const py::handle& obj, int64_t n,
                        const std::string& name) {
  if (obj.is_none()) return nullptr;
  auto a = contiguous<float>(obj, name.c_str());
  if (a.size() != n) {
    fail(name + ": expected " + std::to_string(n) + " float32 values, got " +
         std::to_string(a.size()));
  }
  s.keep_alive.push_back(a);
  return a.data();
}

// A (array, fmt) pair as the Python runtime's Matrix holds it.
DecodeMatrix matrix(FusedDecodeStep& s, const py::handle& obj, int64_t rows, int64_t k,
                    const std::string& name) {
  auto pair = obj.cast<py::tuple>();
  if (pair.size() != 2) fail(name + ": expected a (weight array, format name) pair");
  Format f;
  const auto fmt = pair[1].cast<std::string>();
  if (!format_from_name(fmt, &f)) fail(name + ": unknown weight format '" + fmt + "'");
  if (!py::isinstance<py::array>(pair[0])) fail(name + ": expected a numpy array");
  auto w = py::reinterpret_borrow<py::array>(pair[0]);
  if (!(w.flags() & py::array::c_style)) fail(name + ": expected a C-contiguous array");
  if (k % block_elems(f) != 0) fail(name + ": k is not a multiple of the format's block");
  const int64_t want = rows * row_bytes(f, k);
  if (int64_t(w.nbytes()) != want) {
    fail(name + ": expected " + std::to_string(want) + " bytes (" + std::to_string(rows) +
         " rows of " + std::to_string(k) + " " + fmt + "), got " + std::to_string(w.nbytes()));
  }
  s.keep_alive.push_back(w);
  return {f, w.data(), rows, k};
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
  py::class_<FusedDecodeStep>(m, "DecodeStep",
                              "One llama/qwen2 decode step over all layers in one call.")
      .def(py::init([](const py::list& layers, const py::tuple& embd, const py::tuple& head,
                       const py::handle& out_norm, const py::dict& dims,
                       const py::handle& k_cache, const py::handle& v_cache,
                       int64_t max_tokens) {
             if (max_tokens < 1) fail("max_tokens must be >= 1, got " + std::to_string(max_tokens));
             auto s = std::make_unique<FusedDecodeStep>();
             DecodeDims d{};
             d.dim = dims["dim"].cast<int64_t>();
             d.n_heads = dims["n_heads"].cast<int64_t>();
             d.n_kv_heads = dims["n_kv_heads"].cast<int64_t>();
             d.head_dim = dims["head_dim"].cast<int64_t>();
             d.ffn_dim = dims["ffn_dim"].cast<int64_t>();
             d.vocab = dims["vocab"].cast<int64_t>();
             d.n_rot = dims["n_rot"].cast<int64_t>();
             d.n_ctx = dims["n_ctx"].cast<int64_t>();
             d.norm_eps = dims["norm_eps"].cast<float>();
             d.rope_base = dims["rope_base"].cast<double>();
             d.interleaved = dims["interleaved"].cast<bool>();
             d.scale = dims["scale"].cast<float>();
             const int64_t q_dim = d.n_heads * d.head_dim;
             const int64_t kv_dim = d.n_kv_heads * d.head_dim;
             std::vector<DecodeLayer> ls;
             for (size_t i = 0; i < layers.size(); ++i) {
               auto L = layers[i].cast<py::dict>();
               const std::string p = "layer " + std::to_string(i) + " ";
               DecodeLayer l{};
               l.attn_norm = f32_vector(*s, L["attn_norm"], d.dim, p + "attn_norm");
               l.wq = matrix(*s, L["wq"], q_dim, d.dim, p + "wq");
               l.wk = matrix(*s, L["wk"], kv_dim, d.dim, p + "wk");
               l.wv = matrix(*s, L["wv"], kv_dim, d.dim, p + "wv");
               l.bq = f32_vector(*s, L["bq"], q_dim, p + "bq");
               l.bk = f32_vector(*s, L["bk"], kv_dim, p + "bk");
               l.bv = f32_vector(*s, L["bv"], kv_dim, p + "bv");
               if ((l.bq == nullptr) != (l.bk == nullptr) || (l.bq == nullptr) != (l.bv == nullptr)) {
                 fail(p + "biases: give all of bq, bk, bv or none");
               }
               l.wo = matrix(*s, L["wo"], d.dim, q_dim, p + "wo");
               l.ffn_norm = f32_vector(*s, L["ffn_norm"], d.dim, p + "ffn_norm");
               l.gate = matrix(*s, L["w_gate"], d.ffn_dim, d.dim, p + "w_gate");
               l.up = matrix(*s, L["w_up"], d.ffn_dim, d.dim, p + "w_up");
               l.down = matrix(*s, L["w_down"], d.dim, d.ffn_dim, p + "w_down");
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
             s->step = std::make_unique<DecodeStep>(std::move(ls), e, h, on, d, kc, vc, k16,
                                                    max_tokens);
             return s;
           }),
           py::arg("layers"), py::arg("embd"), py::arg("head"), py::arg("out_norm"),
           py::arg("dims"), py::arg("k_cache"), py::arg("v_cache"), py::arg("max_tokens") = 1)
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
           " layer. Each token's logits are those its own decode step gives.");
}

}  // namespace cromwell::bind

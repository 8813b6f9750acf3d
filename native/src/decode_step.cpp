#include "decode_step.h"

#include <algorithm>
#include <utility>

#include "attention.h"
#include "matmul.h"
#include "ops.h"
#include "quant.h"

namespace cromwell {

DecodeStep::DecodeStep(std::vector<DecodeLayer> layers, DecodeMatrix embd, DecodeMatrix head,
                       const float* out_norm, DecodeDims dims, void* k_cache, void* v_cache,
                       bool f16_cache)
    : layers_(std::move(layers)),
      embd_(embd),
      head_(head),
      out_norm_(out_norm),
      d_(dims),
      k_cache_(static_cast<char*>(k_cache)),
      v_cache_(static_cast<char*>(v_cache)),
      f16_cache_(f16_cache),
      x_(size_t(dims.dim)),
      xb_(size_t(dims.dim)),
      xb2_(size_t(dims.dim)),
      q_(size_t(dims.n_heads * dims.head_dim)),
      att_(size_t(dims.n_heads * dims.head_dim)),
      hb_(size_t(dims.ffn_dim)),
      hb2_(size_t(dims.ffn_dim)),
      k_new_(f16_cache ? size_t(dims.n_kv_heads * dims.head_dim) : 0),
      v_new_(f16_cache ? size_t(dims.n_kv_heads * dims.head_dim) : 0) {}

namespace {
inline void mv(const DecodeMatrix& m, const float* x, float* y) {
  matvec(m.f, m.w, m.rows, m.k, x, y);
}
}  // namespace

void DecodeStep::run(int32_t token, int32_t pos, float* logits) {
  get_rows(embd_.f, embd_.w, embd_.rows, d_.dim, &token, 1, x_.data());
  layers(0, n_layers(), pos);
  head(logits);
}

void DecodeStep::run_span(int32_t token, int32_t pos, int64_t lo, int64_t hi, float* x,
                          float* logits) {
  if (lo == 0) {
    get_rows(embd_.f, embd_.w, embd_.rows, d_.dim, &token, 1, x_.data());
  } else {
    std::copy(x, x + d_.dim, x_.begin());
  }
  layers(lo, hi, pos);
  std::copy(x_.begin(), x_.end(), x);
  if (hi == n_layers()) head(logits);
}

void DecodeStep::head(float* logits) {
  rms_norm_rows(x_.data(), out_norm_, d_.norm_eps, xb_.data(), 1, d_.dim);
  mv(head_, xb_.data(), logits);
}

void DecodeStep::layers(int64_t lo, int64_t hi, int32_t pos) {
  const DecodeDims& d = d_;
  const int64_t q_dim = d.n_heads * d.head_dim;
  const int64_t kv_dim = d.n_kv_heads * d.head_dim;
  float* x = x_.data();
  float* xb = xb_.data();
  float* xb2 = xb2_.data();
  float* q = q_.data();
  float* att = att_.data();
  float* hb = hb_.data();
  float* hb2 = hb2_.data();
  for (int64_t l = lo; l < hi; ++l) {
    const DecodeLayer& L = layers_[size_t(l)];
    const int64_t elem = f16_cache_ ? 2 : 4;
    char* k_layer = k_cache_ + l * d.n_ctx * kv_dim * elem;
    char* v_layer = v_cache_ + l * d.n_ctx * kv_dim * elem;
    char* k_row = k_layer + int64_t(pos) * kv_dim * elem;
    char* v_row = v_layer + int64_t(pos) * kv_dim * elem;
    // A float cache takes the new row in place; a half one gets it rounded once it is final.
    float* k_new = f16_cache_ ? k_new_.data() : reinterpret_cast<float*>(k_row);
    float* v_new = f16_cache_ ? v_new_.data() : reinterpret_cast<float*>(v_row);
    rms_norm_rows(x, L.attn_norm, d.norm_eps, xb, 1, d.dim);
    const SharedInputMatrix qkv[3] = {{L.wq.f, L.wq.w, L.wq.rows, q},
                                      {L.wk.f, L.wk.w, L.wk.rows, k_new},
                                      {L.wv.f, L.wv.w, L.wv.rows, v_new}};
    matvec_shared_input(qkv, 3, d.dim, xb);
    if (L.bq != nullptr) {
      add(q, L.bq, q, q_dim);
      add(k_new, L.bk, k_new, kv_dim);
      add(v_new, L.bv, v_new, kv_dim);
    }
    rope(q, &pos, 1, d.n_heads, d.head_dim, d.n_rot, d.rope_base, d.interleaved);
    rope(k_new, &pos, 1, d.n_kv_heads, d.head_dim, d.n_rot, d.rope_base, d.interleaved);
    if (f16_cache_) {
      quantize_row(Format::F16, k_new, k_row, kv_dim);
      quantize_row(Format::F16, v_new, v_row, kv_dim);
    }
    attention_decode(q, d.n_heads, d.head_dim, k_layer, v_layer, f16_cache_, d.n_kv_heads,
                     int64_t(pos) + 1, d.scale, att);
    mv(L.wo, att, xb2);
    add(x, xb2, x, d.dim);
    rms_norm_rows(x, L.ffn_norm, d.norm_eps, xb, 1, d.dim);
    const SharedInputMatrix gate_up[2] = {{L.gate.f, L.gate.w, L.gate.rows, hb},
                                          {L.up.f, L.up.w, L.up.rows, hb2}};
    matvec_shared_input(gate_up, 2, d.dim, xb);
    swiglu(hb, hb2, hb, d.ffn_dim);
    mv(L.down, hb, xb2);
    add(x, xb2, x, d.dim);
  }
}

}  // namespace cromwell

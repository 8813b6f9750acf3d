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
                       bool f16_cache, int64_t max_tokens, const float* rope_freq_factors)
    : layers_(std::move(layers)),
      embd_(embd),
      head_(head),
      out_norm_(out_norm),
      d_(dims),
      k_cache_(static_cast<char*>(k_cache)),
      v_cache_(static_cast<char*>(v_cache)),
      f16_cache_(f16_cache),
      max_tokens_(std::max<int64_t>(1, max_tokens)),
      rope_freq_factors_(rope_freq_factors),
      x_(size_t(max_tokens_ * dims.dim)),
      xb_(size_t(max_tokens_ * dims.dim)),
      xb2_(size_t(max_tokens_ * dims.dim)),
      q_(size_t(max_tokens_ * dims.n_heads * dims.head_dim)),
      att_(size_t(max_tokens_ * dims.n_heads * dims.head_dim)),
      hb_(size_t(max_tokens_ * dims.ffn_dim)),
      hb2_(size_t(max_tokens_ * dims.ffn_dim)),
      k_new_(size_t(max_tokens_ * dims.n_kv_heads * dims.head_dim)),
      v_new_(size_t(max_tokens_ * dims.n_kv_heads * dims.head_dim)),
      positions_(size_t(max_tokens_)) {}

namespace {
// y[n, m.rows] = x[n, m.k] W^T, each row as matvec computes it.
inline void mm(const DecodeMatrix& m, const float* x, float* y, int64_t n) {
  const SharedInputMatrix one{m.f, m.w, m.rows, y};
  matmul_shared_input(&one, 1, m.k, x, n);
}
}  // namespace

void DecodeStep::run(int32_t token, int32_t pos, float* logits) {
  run_span(&token, 1, pos, 0, n_layers(), nullptr, logits);
}

void DecodeStep::run_span(const int32_t* tokens, int64_t n, int32_t pos, int64_t lo, int64_t hi,
                          float* x, float* logits) {
  const int64_t dim = d_.dim;
  if (lo == 0) {
    get_rows(embd_.f, embd_.w, embd_.rows, dim, tokens, n, x_.data());
  } else {
    std::copy(x, x + n * dim, x_.begin());
  }
  for (int64_t i = 0; i < n; ++i) positions_[size_t(i)] = pos + int32_t(i);
  layers(lo, hi, n, true);
  if (x != nullptr) std::copy(x_.begin(), x_.begin() + n * dim, x);
  if (hi == n_layers()) head(logits, n);
}

void DecodeStep::run_rows(const int32_t* tokens, int64_t n, const int32_t* rows, float* logits) {
  const int64_t dim = d_.dim;
  get_rows(embd_.f, embd_.w, embd_.rows, dim, tokens, n, x_.data());
  bool consecutive = true;
  for (int64_t i = 0; i < n; ++i) {
    positions_[size_t(i)] = rows[i];
    consecutive = consecutive && rows[i] == rows[0] + int32_t(i);
  }
  layers(0, n_layers(), n, consecutive);
  // The last token's logits only: the others are the gaps before it.
  std::copy(x_.begin() + (n - 1) * dim, x_.begin() + n * dim, x_.begin());
  head(logits, 1);
}

void DecodeStep::head(float* logits, int64_t n) {
  rms_norm_rows(x_.data(), out_norm_, d_.norm_eps, xb_.data(), n, d_.dim);
  mm(head_, xb_.data(), logits, n);
}

void DecodeStep::layers(int64_t lo, int64_t hi, int64_t n, bool consecutive) {
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
  const int32_t* positions = positions_.data();
  // A float cache takes consecutive new rows in place; otherwise they are made in k_new_ and
  // v_new_, then rounded into a half cache or copied to their rows.
  const bool in_place = consecutive && !f16_cache_;
  for (int64_t l = lo; l < hi; ++l) {
    const DecodeLayer& L = layers_[size_t(l)];
    const int64_t elem = f16_cache_ ? 2 : 4;
    char* k_layer = k_cache_ + l * d.n_ctx * kv_dim * elem;
    char* v_layer = v_cache_ + l * d.n_ctx * kv_dim * elem;
    const int64_t first = int64_t(positions[0]) * kv_dim * elem;
    float* k_new = in_place ? reinterpret_cast<float*>(k_layer + first) : k_new_.data();
    float* v_new = in_place ? reinterpret_cast<float*>(v_layer + first) : v_new_.data();
    rms_norm_rows(x, L.attn_norm, d.norm_eps, xb, n, d.dim);
    const SharedInputMatrix qkv[3] = {{L.wq.f, L.wq.w, L.wq.rows, q},
                                      {L.wk.f, L.wk.w, L.wk.rows, k_new},
                                      {L.wv.f, L.wv.w, L.wv.rows, v_new}};
    matmul_shared_input(qkv, 3, d.dim, xb, n);
    if (L.bq != nullptr) {
      for (int64_t i = 0; i < n; ++i) {
        add(q + i * q_dim, L.bq, q + i * q_dim, q_dim);
        add(k_new + i * kv_dim, L.bk, k_new + i * kv_dim, kv_dim);
        add(v_new + i * kv_dim, L.bv, v_new + i * kv_dim, kv_dim);
      }
    }
    if (L.q_norm != nullptr) {  // in place: each row is read whole before it is written
      rms_norm_rows(q, L.q_norm, d.norm_eps, q, n * d.n_heads, d.head_dim);
      rms_norm_rows(k_new, L.k_norm, d.norm_eps, k_new, n * d.n_kv_heads, d.head_dim);
    }
    rope(q, positions, n, d.n_heads, d.head_dim, d.n_rot, d.rope_base, d.interleaved,
         rope_freq_factors_, d.rope_freq_scale);
    rope(k_new, positions, n, d.n_kv_heads, d.head_dim, d.n_rot, d.rope_base, d.interleaved,
         rope_freq_factors_, d.rope_freq_scale);
    if (!in_place) {
      for (int64_t i = 0; i < n; ++i) {
        char* k_at = k_layer + int64_t(positions[i]) * kv_dim * elem;
        char* v_at = v_layer + int64_t(positions[i]) * kv_dim * elem;
        if (f16_cache_) {
          quantize_row(Format::F16, k_new + i * kv_dim, k_at, kv_dim);
          quantize_row(Format::F16, v_new + i * kv_dim, v_at, kv_dim);
        } else {
          std::copy(k_new + i * kv_dim, k_new + (i + 1) * kv_dim, reinterpret_cast<float*>(k_at));
          std::copy(v_new + i * kv_dim, v_new + (i + 1) * kv_dim, reinterpret_cast<float*>(v_at));
        }
      }
    }
    // Each token attends to the cache up to its own position, as its decode step would; with a
    // sliding window, to the last `sliding_window` rows of it only.
    for (int64_t i = 0; i < n; ++i) {
      const int64_t end = int64_t(positions[i]) + 1;
      const int64_t start = d.sliding_window > 0 ? std::max<int64_t>(0, end - d.sliding_window) : 0;
      const int64_t skip = start * kv_dim * elem;
      attention_decode(q + i * q_dim, d.n_heads, d.head_dim, k_layer + skip, v_layer + skip,
                       f16_cache_, d.n_kv_heads, end - start, d.scale, att + i * q_dim);
    }
    mm(L.wo, att, xb2, n);
    add(x, xb2, x, n * d.dim);
    rms_norm_rows(x, L.ffn_norm, d.norm_eps, xb, n, d.dim);
    const SharedInputMatrix gate_up[2] = {{L.gate.f, L.gate.w, L.gate.rows, hb},
                                          {L.up.f, L.up.w, L.up.rows, hb2}};
    matmul_shared_input(gate_up, 2, d.dim, xb, n);
    swiglu(hb, hb2, hb, n * d.ffn_dim);
    mm(L.down, hb, xb2, n);
    add(x, xb2, x, n * d.dim);
  }
}

}  // namespace cromwell

// One decode step of a llama-family decoder (llama, qwen2, qwen3) in a single native call: the
// token's embedding row, every layer (RMSNorm, Q/K/V with optional biases, optional RMSNorm of
// each Q and K head, RoPE with optional scaling, attention over the KV
// cache, output projection, SwiGLU MLP), the final norm and the logits. The same kernels as the
// per-op Python loop, called in the same order on the same buffers, so its logits are
// bit-for-bit those of the loop; it only removes the loop's per-kernel Python overhead.
#pragma once
#include <cstdint>
#include <vector>

#include "quant.h"

namespace cromwell {

struct DecodeMatrix {
  Format f;
  const void* w;  // rows x row_bytes(f, k)
  int64_t rows;
  int64_t k;
};

struct DecodeLayer {
  const float* attn_norm;  // [dim]
  DecodeMatrix wq, wk, wv, wo;
  const float* bq;  // [q_dim] or null (qwen2 has Q/K/V biases)
  const float* bk;  // [kv_dim] or null
  const float* bv;  // [kv_dim] or null
  const float* q_norm;  // [head_dim] or null: qwen3's RMSNorm of each Q head before RoPE
  const float* k_norm;  // [head_dim] or null (with q_norm)
  const float* ffn_norm;  // [dim]
  DecodeMatrix gate, up, down;
};

struct DecodeDims {
  int64_t dim, n_heads, n_kv_heads, head_dim, ffn_dim, vocab, n_rot, n_ctx;
  float norm_eps;
  double rope_base;
  bool interleaved;  // ggml "normal" RoPE (pairs 2i, 2i+1); otherwise NEOX (i, i + n_rot/2)
  float scale;       // attention scale, 1/sqrt(head_dim)
  double rope_freq_scale = 1.0;  // linear RoPE scaling's 1 / factor (ops.h rope)
  int64_t sliding_window = 0;    // a token attends to at most this many (itself included); 0: all
};

class DecodeStep {
 public:
  // k_cache/v_cache: [n_layers, n_ctx, n_kv_heads, head_dim], owned by the caller, float32
  // or (f16_cache) IEEE half: a half cache gets each new row rounded to nearest, as numpy's
  // astype(float16) rounds the rows a prefill writes. max_tokens: the most tokens one call
  // runs (run_span), for which the run state is allocated once.
  DecodeStep(std::vector<DecodeLayer> layers, DecodeMatrix embd, DecodeMatrix head,
             const float* out_norm, DecodeDims dims, void* k_cache, void* v_cache,
             bool f16_cache = false, int64_t max_tokens = 1,
             const float* rope_freq_factors = nullptr);
  // Runs `token` at position `pos` (0 <= pos < n_ctx), writing its K/V into the cache and
  // its logits into logits[vocab].
  void run(int32_t token, int32_t pos, float* logits);
  // Layers [lo, hi) only, for n <= max_tokens tokens at positions pos .. pos + n - 1: a model
  // whose stack has a seam (cromwell: fusion between the language layers and the AR head), a
  // speculative draft after the last decoded token, or both. lo == 0 starts from the tokens'
  // embeddings, else from x[n, dim]; the residual stream after layer hi-1 is written back to x
  // (when x is non-null). hi == n_layers also writes logits[n, vocab] (non-null then). Each
  // token is computed as its own decode step computes it (integer matrix products, attention
  // over the cache up to its position), so its logits and K/V rows are bit for bit those of n
  // separate steps, while every weight row is read once for all n. run() is one token, all
  // layers.
  void run_span(const int32_t* tokens, int64_t n, int32_t pos, int64_t lo, int64_t hi, float* x,
                float* logits);
  // n <= max_tokens tokens at the cache rows `rows` (increasing, each in [0, n_ctx)), all
  // layers, in one pass over the weights: token i at position rows[i], its K/V written to row
  // rows[i], attending to rows [0, rows[i]] (the rows between the tokens' must hold their final
  // keys and values: the gaps of a prompt whose other runs were kept from an earlier one). Each
  // token is computed as its decode step at that position would compute it. Logits of the last
  // token only, into logits[vocab].
  void run_rows(const int32_t* tokens, int64_t n, const int32_t* rows, float* logits);
  int64_t n_layers() const { return int64_t(layers_.size()); }
  int64_t max_tokens() const { return max_tokens_; }

 private:
  // Layers [lo, hi) of n tokens at the positions in positions_ (consecutive: written to the
  // cache in place; else row by row).
  void layers(int64_t lo, int64_t hi, int64_t n, bool consecutive);
  void head(float* logits, int64_t n);

  std::vector<DecodeLayer> layers_;
  DecodeMatrix embd_, head_;
  const float* out_norm_;
  DecodeDims d_;
  char* k_cache_;
  char* v_cache_;
  bool f16_cache_;
  int64_t max_tokens_;
  const float* rope_freq_factors_;  // [n_rot/2] Llama 3 divisors, or null
  // The run state for max_tokens tokens, allocated once.
  std::vector<float> x_, xb_, xb2_, q_, att_, hb_, hb2_;
  std::vector<float> k_new_, v_new_;  // new K/V rows before they go to a half cache or to rows apart
  std::vector<int32_t> positions_;
};

}  // namespace cromwell

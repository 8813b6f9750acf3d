// Scaled dot-product attention over a KV cache: decode (one query row), prefill (causal,
// blocked over keys, flash-attention style), cross-attention (no mask) and windowed 2-D
// attention for vision tokens. Keys and values may be float32 or IEEE half.
//
// Every form reduces to one kernel, attn_tile: a set of query vectors against one range of keys
// of one KV head, with an online softmax. It has a portable reference (namespace ref) and an
// AVX2 version with the same signature (namespace avx2); the drivers below cut the work into
// tiles, run them on the thread pool and combine partial results.
#pragma once
#include <cstdint>

namespace cromwell {

struct AttnTile {
  int64_t head_dim = 0;
  int64_t nq = 0;                    // query vectors in the tile
  const float* const* q = nullptr;   // nq pointers, head_dim floats each
  const int64_t* key_end = nullptr;  // query j sees keys [0, key_end[j]) (causal limit)
  const void* k = nullptr;           // key t at (element) offset t * kv_stride; float or half
  const void* v = nullptr;
  bool f16 = false;
  int64_t kv_stride = 0;
  // Several KV heads in one tile (decode): query j reads KV head j / group, whose rows start
  // (j / group) * head_dim elements after k and v. With one head (the default) every query
  // reads the rows at k and v. A decode tile that takes all the heads of a key range reads each
  // cache row whole and in order, instead of a strided slice of it per head.
  int64_t kv_heads = 1;
  int64_t group = 0;  // queries per KV head when kv_heads > 1
  // The tile's key range: query j uses keys [t_begin, min(t_end, key_end[j])).
  int64_t t_begin = 0, t_end = 0;
  float scale = 1.0f;
  // Results, unnormalised: m[j] the largest scaled score seen (-inf if none), l[j] the sum of
  // exp(score - m[j]), acc[j * head_dim ...] the exp-weighted sum of value rows.
  float* acc = nullptr;
  float* m = nullptr;
  float* l = nullptr;
};

namespace ref {
void attn_tile(const AttnTile& t);
}
namespace avx2 {
void attn_tile(const AttnTile& t);
}
namespace avx512 {
void attn_tile(const AttnTile& t);  // decode tiles on 16 lanes; the rest on the AVX2 tile
}
void attn_tile(const AttnTile& t);

// q[hq, hd] against the first n_ctx rows of k/v[T_max, hkv, hd]; out[hq, hd].
// Query head h reads KV head h / (hq / hkv).
void attention_decode(const float* q, int64_t hq, int64_t hd, const void* k, const void* v,
                      bool f16, int64_t hkv, int64_t n_ctx, float scale, float* out);

// q[n, hq, hd] against k/v[T, hkv, hd]; out[n, hq, hd]. causal: query i sees keys
// 0..q_offset+i (needs q_offset + n <= T); otherwise every query sees all T keys.
void attention_prefill(const float* q, int64_t n, int64_t hq, int64_t hd, const void* k,
                       const void* v, bool f16, int64_t T, int64_t hkv, int64_t q_offset,
                       bool causal, float scale, float* out);

// q/k/v/out[H, W, heads, hd]; tokens attend within their window x window tile.
void window_attention_2d(const float* q, const float* k, const float* v, int64_t H, int64_t W,
                         int64_t heads, int64_t hd, int64_t window, float scale, float* out);

}  // namespace cromwell

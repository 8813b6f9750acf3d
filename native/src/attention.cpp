// The attention reference tile, and the drivers that cut attention into tiles for the pool.
#include "attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "cpu_features.h"
#include "fp16.h"
#include "threadpool.h"

namespace cromwell {

// Reference: per query, per key, the textbook online softmax (one rescale per key).
void ref::attn_tile(const AttnTile& t) {
  const int64_t hd = t.head_dim;
  std::vector<float> krow(hd), vrow(hd);
  auto load_row = [&](const void* base, int64_t key, int64_t head, float* dst) {
    const int64_t at = key * t.kv_stride + head * hd;
    if (t.f16) {
      const uint16_t* p = static_cast<const uint16_t*>(base) + at;
      for (int64_t i = 0; i < hd; ++i) dst[i] = fp16_to_fp32(p[i]);
    } else {
      const float* p = static_cast<const float*>(base) + at;
      std::copy(p, p + hd, dst);
    }
  };
  for (int64_t j = 0; j < t.nq; ++j) {
    const int64_t head = t.kv_heads > 1 ? j / t.group : 0;
    const float* q = t.q[j];
    float* acc = t.acc + j * hd;
    std::fill(acc, acc + hd, 0.0f);
    float m = -INFINITY, l = 0.0f;
    const int64_t end = std::min(t.t_end, t.key_end[j]);
    for (int64_t key = t.t_begin; key < end; ++key) {
      load_row(t.k, key, head, krow.data());
      float s = 0.0f;
      for (int64_t i = 0; i < hd; ++i) s += q[i] * krow[i];
      s *= t.scale;
      const float m_new = std::max(m, s);
      const float alpha = std::exp(m - m_new);  // 0 for the first key (m = -inf)
      const float p = std::exp(s - m_new);
      load_row(t.v, key, head, vrow.data());
      for (int64_t i = 0; i < hd; ++i) acc[i] = acc[i] * alpha + p * vrow[i];
      l = l * alpha + p;
      m = m_new;
    }
    t.m[j] = m;
    t.l[j] = l;
  }
}

void attn_tile(const AttnTile& t) {
  (use_avx512() ? avx512::attn_tile : use_avx2() ? avx2::attn_tile : ref::attn_tile)(t);
}

namespace {

// Tiles hold at most this many query vectors: their scores for one key block stay in L1.
constexpr int64_t kMaxTileQueries = 64;
// A decode split gets at least this many keys, so the final combination stays negligible.
constexpr int64_t kMinKeysPerSplit = 128;
// A decode chunk of keys (all KV heads) about this size stays in L2 while its heads are read.
constexpr int64_t kChunkBytes = 256 * 1024;
// Below this many multiply-adds (q.k and p.v together), one thread does the whole call.
constexpr int64_t kMinParallelWork = 1 << 15;

// Whether a job of n_items and total_work multiply-adds runs on the caller alone.
bool on_caller_alone(int64_t n_items, int64_t total_work) {
  return n_items == 1 || total_work < kMinParallelWork || thread_pool().size() == 1;
}

// Runs item(i) for i in [0, n_items) on the pool, handing out items one at a time (causal
// tiles differ in cost), or on the caller alone when the whole job is small.
template <typename Item>
void run_items(int64_t n_items, int64_t total_work, Item&& item) {
  if (on_caller_alone(n_items, total_work)) {
    for (int64_t i = 0; i < n_items; ++i) item(i);
    return;
  }
  std::atomic<int64_t> next{0};
  thread_pool().run([&](int, int) {
    for (int64_t i = next.fetch_add(1); i < n_items; i = next.fetch_add(1)) item(i);
  });
}

// Runs item(i) for i in [0, n_items) with each thread owning a contiguous run of items, taken
// in order (a thread done early takes from the end of another's run): a decode split's key
// prefetch runs on into the thread's next split instead of into keys another core reads.
template <typename Item>
void run_items_in_runs(int64_t n_items, int64_t total_work, Item&& item) {
  if (on_caller_alone(n_items, total_work)) {
    for (int64_t i = 0; i < n_items; ++i) item(i);
    return;
  }
  thread_pool().run_chunks(n_items, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) item(i);
  });
}

// Scratch that lives as long as its thread: tiles allocate nothing once warm.
struct TileScratch {
  std::vector<const float*> q;
  std::vector<int64_t> key_end;
  std::vector<float> acc, m, l;
  void reserve(int64_t nq, int64_t hd) {
    if (int64_t(q.size()) < nq) {
      q.resize(nq);
      key_end.resize(nq);
      m.resize(nq);
      l.resize(nq);
    }
    if (int64_t(acc.size()) < nq * hd) acc.resize(nq * hd);
  }
};

TileScratch& tile_scratch() {
  thread_local TileScratch s;
  return s;
}

// out = acc / l (l > 0 whenever a query saw at least one key; callers guarantee one).
void normalise(const float* acc, float l, int64_t hd, float* out) {
  const float inv = 1.0f / l;
  for (int64_t i = 0; i < hd; ++i) out[i] = acc[i] * inv;
}

}  // namespace

void attention_decode(const float* q, int64_t hq, int64_t hd, const void* k, const void* v,
                      bool f16, int64_t hkv, int64_t n_ctx, float scale, float* out) {
  const int64_t group = hq / hkv;
  const int64_t chunk = std::min(group, kMaxTileQueries);  // query heads per tile
  const int64_t chunks_per_kv = (group + chunk - 1) / chunk;
  const int64_t base_items = hkv * chunks_per_kv;
  // Long contexts: split the keys too, (a) so every thread has work, aiming for a few items per
  // thread for balance, and (b) so that the KV heads of one chunk of rows are read back to back
  // (items run split-major) while those rows are still in L2: the rows of all KV heads are
  // interleaved in the cache, and streaming one head at a time through a cache larger than L2
  // would fetch every line more than once. The partial softmaxes are merged below.
  const int64_t nth = thread_pool().size();
  const int64_t work = 2 * n_ctx * hq * hd;
  const int64_t elem = f16 ? 2 : 4;
  const int64_t row_bytes = 2 * hkv * hd * elem;  // one key's K and V rows, all heads
  const int64_t keys_per_chunk =
      (std::max(kMinKeysPerSplit, kChunkBytes / row_bytes) + 63) / 64 * 64;
  const int64_t l2 = cpu_features().l2_bytes > 0 ? cpu_features().l2_bytes : (1 << 20);
  int64_t splits = 1;
  if (work >= kMinParallelWork) {
    const int64_t for_threads = nth == 1 ? 1 : (4 * nth + base_items - 1) / base_items;
    const bool fits_l2 = n_ctx * row_bytes <= l2;
    const int64_t for_cache = fits_l2 ? 1 : (n_ctx + keys_per_chunk - 1) / keys_per_chunk;
    splits = std::max<int64_t>(
        1, std::min(std::max(for_threads, for_cache), n_ctx / kMinKeysPerSplit));
  }
  const int64_t keys_per_split = (n_ctx + splits - 1) / splits;
  // With enough splits to share out, a tile takes every KV head of its key range (few_block
  // handles up to 7 queries per head): it then reads each cache row whole and in order, which
  // the prefetchers follow, where a tile per head read a strided slice of every row.
  const bool whole_rows = hkv > 1 && group <= 7 && splits >= 2 * nth;
  const int64_t items_per_split = whole_rows ? 1 : base_items;
  const int64_t n_items = items_per_split * splits;

  // Partial results per (split, query head): m, l, acc[hd].
  thread_local std::vector<float> partial;
  const int64_t stride = hd + 2;
  if (int64_t(partial.size()) < splits * hq * stride) partial.resize(splits * hq * stride);
  float* parts = partial.data();

  run_items_in_runs(n_items, work, [&](int64_t item) {
    const int64_t split = item / items_per_split;
    const int64_t kvh = whole_rows ? 0 : (item % base_items) / chunks_per_kv;
    const int64_t h0 = whole_rows ? 0 : kvh * group + (item % chunks_per_kv) * chunk;
    const int64_t nq = whole_rows ? hq : std::min(chunk, kvh * group + group - h0);
    TileScratch& s = tile_scratch();
    s.reserve(nq, hd);
    for (int64_t j = 0; j < nq; ++j) {
      s.q[j] = q + (h0 + j) * hd;
      s.key_end[j] = n_ctx;
    }
    AttnTile t;
    t.head_dim = hd;
    t.nq = nq;
    t.q = s.q.data();
    t.key_end = s.key_end.data();
    t.k = static_cast<const char*>(k) + kvh * hd * elem;
    t.v = static_cast<const char*>(v) + kvh * hd * elem;
    t.f16 = f16;
    t.kv_stride = hkv * hd;
    if (whole_rows) {
      t.kv_heads = hkv;
      t.group = group;
    }
    t.t_begin = split * keys_per_split;
    t.t_end = std::min(n_ctx, t.t_begin + keys_per_split);
    t.scale = scale;
    t.acc = s.acc.data();
    t.m = s.m.data();
    t.l = s.l.data();
    attn_tile(t);
    for (int64_t j = 0; j < nq; ++j) {
      float* p = parts + (split * hq + h0 + j) * stride;
      p[0] = s.m[j];
      p[1] = s.l[j];
      std::copy(s.acc.data() + j * hd, s.acc.data() + (j + 1) * hd, p + 2);
    }
  });

  // Merge the splits: rescale each to the common max, then normalise.
  for (int64_t h = 0; h < hq; ++h) {
    float m = -INFINITY;
    for (int64_t sp = 0; sp < splits; ++sp) m = std::max(m, parts[(sp * hq + h) * stride]);
    float* o = out + h * hd;
    std::fill(o, o + hd, 0.0f);
    float l = 0.0f;
    for (int64_t sp = 0; sp < splits; ++sp) {
      const float* p = parts + (sp * hq + h) * stride;
      if (p[1] == 0.0f) continue;  // an empty split (possible only at the tail)
      const float w = std::exp(p[0] - m);
      l += w * p[1];
      for (int64_t i = 0; i < hd; ++i) o[i] += w * p[2 + i];
    }
    normalise(o, l, hd, o);
  }
}

void attention_prefill(const float* q, int64_t n, int64_t hq, int64_t hd, const void* k,
                       const void* v, bool f16, int64_t T, int64_t hkv, int64_t q_offset,
                       bool causal, float scale, float* out) {
  // A tile: a block of query rows x the query heads of one KV head (or a chunk of them), so
  // each key block is read once for all of them.
  const int64_t group = hq / hkv;
  const int64_t hchunk = std::min(group, kMaxTileQueries);
  const int64_t chunks_per_kv = (group + hchunk - 1) / hchunk;
  const int64_t rows_per_tile = std::max<int64_t>(1, kMaxTileQueries / hchunk);
  const int64_t row_blocks = (n + rows_per_tile - 1) / rows_per_tile;
  const int64_t n_items = row_blocks * hkv * chunks_per_kv;
  const int64_t keys_seen = causal ? (q_offset + (n + 1) / 2) : T;  // on average per query
  const int64_t elem = f16 ? 2 : 4;

  run_items(n_items, 2 * n * keys_seen * hq * hd, [&](int64_t item) {
    // Row blocks vary fastest, so the longest (latest) causal tiles are not all handed out last.
    const int64_t rb = row_blocks - 1 - item % row_blocks;
    const int64_t hc = item / row_blocks;
    const int64_t kvh = hc / chunks_per_kv;
    const int64_t h0 = kvh * group + (hc % chunks_per_kv) * hchunk;
    const int64_t nh = std::min(hchunk, kvh * group + group - h0);
    const int64_t i0 = rb * rows_per_tile;
    const int64_t nr = std::min(rows_per_tile, n - i0);
    TileScratch& s = tile_scratch();
    s.reserve(nr * nh, hd);
    int64_t max_end = 0;
    for (int64_t r = 0; r < nr; ++r) {
      for (int64_t hh = 0; hh < nh; ++hh) {
        s.q[r * nh + hh] = q + ((i0 + r) * hq + h0 + hh) * hd;
        s.key_end[r * nh + hh] = causal ? q_offset + i0 + r + 1 : T;
      }
      max_end = std::max(max_end, s.key_end[r * nh]);
    }
    AttnTile t;
    t.head_dim = hd;
    t.nq = nr * nh;
    t.q = s.q.data();
    t.key_end = s.key_end.data();
    t.k = static_cast<const char*>(k) + kvh * hd * elem;
    t.v = static_cast<const char*>(v) + kvh * hd * elem;
    t.f16 = f16;
    t.kv_stride = hkv * hd;
    t.t_begin = 0;
    t.t_end = std::min(T, max_end);
    t.scale = scale;
    t.acc = s.acc.data();
    t.m = s.m.data();
    t.l = s.l.data();
    attn_tile(t);
    for (int64_t r = 0; r < nr; ++r) {
      for (int64_t hh = 0; hh < nh; ++hh) {
        const int64_t j = r * nh + hh;
        normalise(s.acc.data() + j * hd, s.l[j], hd, out + ((i0 + r) * hq + h0 + hh) * hd);
      }
    }
  });
}

void window_attention_2d(const float* q, const float* k, const float* v, int64_t H, int64_t W,
                         int64_t heads, int64_t hd, int64_t window, float scale, float* out) {
  // Items: (window, head). A big window (16 x 16 = 256 tokens) is run as tiles of at most
  // kMaxTileQueries queries against its gathered keys, so each tile stays L1-sized.
  const int64_t wy = (H + window - 1) / window, wx = (W + window - 1) / window;
  const int64_t n_items = wy * wx * heads;
  run_items(n_items, 2 * H * W * window * window * heads * hd, [&](int64_t item) {
    const int64_t h = item % heads;
    const int64_t win = item / heads;
    const int64_t y0 = (win / wx) * window, x0 = (win % wx) * window;
    const int64_t ny = std::min(window, H - y0), nx = std::min(window, W - x0);
    const int64_t nt = ny * nx;
    auto offset = [&](int64_t j) {  // element offset of token j of the window, head h
      return (((y0 + j / nx) * W + (x0 + j % nx)) * heads + h) * hd;
    };
    // Gather the window's keys and values into rows of one stride; queries are read in place.
    thread_local std::vector<float> kv;
    if (int64_t(kv.size()) < 2 * nt * hd) kv.resize(2 * nt * hd);
    float* kw = kv.data();
    float* vw = kv.data() + nt * hd;
    for (int64_t j = 0; j < nt; ++j) {
      const int64_t off = offset(j);
      std::copy(k + off, k + off + hd, kw + j * hd);
      std::copy(v + off, v + off + hd, vw + j * hd);
    }
    TileScratch& s = tile_scratch();
    for (int64_t j0 = 0; j0 < nt; j0 += kMaxTileQueries) {
      const int64_t nq = std::min(kMaxTileQueries, nt - j0);
      s.reserve(nq, hd);
      for (int64_t j = 0; j < nq; ++j) {
        s.q[j] = q + offset(j0 + j);
        s.key_end[j] = nt;
      }
      AttnTile t;
      t.head_dim = hd;
      t.nq = nq;
      t.q = s.q.data();
      t.key_end = s.key_end.data();
      t.k = kw;
      t.v = vw;
      t.kv_stride = hd;
      t.t_begin = 0;
      t.t_end = nt;
      t.scale = scale;
      t.acc = s.acc.data();
      t.m = s.m.data();
      t.l = s.l.data();
      attn_tile(t);
      for (int64_t j = 0; j < nq; ++j) {
        normalise(s.acc.data() + j * hd, s.l[j], hd, out + offset(j0 + j));
      }
    }
  });
}

}  // namespace cromwell

// The integer matrix-matrix product (avx2/int_gemm.h) with its multiply-and-sums on AMX tiles:
// the AVX-512 VNNI build's 16-row weight panels, whose packed layout (four bytes of each of 16
// rows per 64-byte line) is already the B operand of the tile multiply, against 16 activation
// rows at a time loaded straight from their quantized blocks as the A operand.
//
// One tdpbusd multiplies 16 activation rows by 16 weight rows over one sub-block (32 elements,
// 16 for Q6_K): a 16x16 tile of exact int32 sums, started at the panel's -128 * sum(w)
// correction (every row of the C tile loaded from the same 64 bytes). Each sub-block has its own
// scale per weight row, so each tile is stored and its 16 rows scaled into float accumulators
// in AVX-512 registers, as micro_kernel does with its VNNI sums. Two sets of tiles take turns,
// so the next sub-block's multiply runs while this one's results are scaled. Rows past the last
// whole 16 take the VNNI micro-kernel, as in the AVX-512 VNNI build.
//
// Built with AVX-512 VNNI and -mamx-tile -mamx-int8; reached only through use_amx(), which also
// has the kernel grant this process the tile state.
#include "../avx2/int_gemm.h"

#if !defined(__AMX_INT8__) || !defined(__AMX_TILE__) || !defined(__AVX512VNNI__)
#error "int_gemm_amx.cpp must be built with -mamx-tile -mamx-int8 and AVX-512 VNNI"
#endif

namespace cromwell::avx512amx {
namespace {

using avx2::int_gemm::Layout;
using avx2::int_gemm::layout_of;

constexpr int L = 16;  // weight rows in a panel, lanes of a 512-bit register, columns of C
constexpr int M = 16;  // activation rows in a tile

// ldtilecfg's 64-byte operand (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Tiles 3P (C), 3P + 1 (A: M activation rows of one sub-block), 3P + 2 (B: its quads of the
// panel) for the two sets P = 0, 1.
template <Format F>
TileConfig tile_config() {
  constexpr Layout T = layout_of(F);
  constexpr int kSub = int(T.elems / T.sub);
  TileConfig c;
  for (int p = 0; p < 2; ++p) {
    c.rows[3 * p] = M;
    c.colsb[3 * p] = 4 * L;
    c.rows[3 * p + 1] = M;
    c.colsb[3 * p + 1] = kSub;
    c.rows[3 * p + 2] = kSub / 4;
    c.colsb[3 * p + 2] = 4 * L;
  }
  return c;
}

template <Format F>
struct Fmt {
  static constexpr Layout T = layout_of(F);
  static constexpr int64_t kSub = T.elems / T.sub;  // elements in a sub-block
  static constexpr int64_t kStride = T.lane_bytes() * L;  // bytes of a packed block
  static constexpr bool kKquant = T.elems == QK_K;
  static constexpr int64_t kActBlock = kKquant ? int64_t(sizeof(block_q8_K)) : int64_t(sizeof(block_q8a));
  static constexpr int64_t kQsAt = kKquant ? int64_t(offsetof(block_q8_K, qs)) : int64_t(offsetof(block_q8a, qs));
  static constexpr int64_t kCorrAt = T.elems * L;  // in a packed block
  static constexpr int64_t kScaleAt = kCorrAt + 4 * T.sub * L;
  static constexpr int64_t kExtraAt = kScaleAt + 4 * T.sub * L;
};

// C = corr, then C += A B over sub-block g (flattened: block g / S, sub-block g % S): set 0
// (tiles 0, 1, 2) or set 1 (3, 4, 5). The tile numbers are spelt out: the intrinsics paste them
// into the instruction's text.
template <Format F>
struct SubBlock {
  const uint8_t* corr;
  const uint8_t* a;
  const uint8_t* b;
};

template <Format F>
inline SubBlock<F> operands(const uint8_t* pk, const uint8_t* x, int64_t g) {
  using Q = Fmt<F>;
  const int64_t b = g / Q::T.sub, s = g % Q::T.sub;
  const uint8_t* pb = pk + b * Q::kStride;
  return {pb + Q::kCorrAt + s * 4 * L, x + b * Q::kActBlock + Q::kQsAt + s * Q::kSub,
          pb + s * Q::kSub * L};
}

#define CROMWELL_AMX_MULTIPLY(NAME, C, A, B)                                         \
  template <Format F>                                                              \
  inline void NAME(const uint8_t* pk, const uint8_t* x, int64_t act_bytes, int64_t g) { \
    const SubBlock<F> o = operands<F>(pk, x, g);                                   \
    _tile_loadd(C, o.corr, 0);                                                     \
    _tile_loadd(A, o.a, act_bytes);                                                \
    _tile_loadd(B, o.b, 4 * L);                                                    \
    _tile_dpbusd(C, A, B);                                                         \
  }
CROMWELL_AMX_MULTIPLY(multiply0, 0, 1, 2)
CROMWELL_AMX_MULTIPLY(multiply1, 3, 4, 5)
#undef CROMWELL_AMX_MULTIPLY

inline void store_c0(int32_t* c) { _tile_stored(0, c, 4 * L); }
inline void store_c1(int32_t* c) { _tile_stored(3, c, 4 * L); }

inline float load_float(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}

// The results of M activation rows (x: row 0 at the panel's first block) against one packed
// panel of nb blocks: y[i * ldy + 0..nr) (+)= row i's.
template <Format F>
void tile_rows(const uint8_t* pk, int64_t nb, const uint8_t* x, int64_t act_bytes,
               const int32_t* pairs, int64_t pair_stride, float* y, int64_t ldy, int nr,
               bool accumulate) {
  using Q = Fmt<F>;
  constexpr Layout T = Q::T;
  const int64_t total = nb * T.sub;
  alignas(64) int32_t c[2][M * L];
  // The 32-element formats: acc holds the results. The k-quants: acc holds the current
  // super-block's sub-block sums (times their scales) until its activation scale and mins are
  // known; the results wait in `done`.
  __m512 acc[M];
  alignas(64) float done[Q::kKquant ? M * L : 1];
  for (int i = 0; i < M; ++i) acc[i] = _mm512_setzero_ps();
  if constexpr (Q::kKquant) std::memset(done, 0, sizeof(done));

  auto scale_rows = [&](const int32_t* ct, int64_t g) {
    const int64_t b = g / T.sub, s = g % T.sub;
    const uint8_t* pb = pk + b * Q::kStride;
    const __m512 scale = _mm512_load_ps(pb + Q::kScaleAt + s * 4 * L);
    const uint8_t* xb = x + b * Q::kActBlock;
    if constexpr (!Q::kKquant) {
      for (int i = 0; i < M; ++i) {
        const __m512 sums = _mm512_cvtepi32_ps(_mm512_load_si512(ct + i * L));
        const __m512 dx = _mm512_set1_ps(load_float(xb + i * act_bytes));
        acc[i] = _mm512_fmadd_ps(sums, _mm512_mul_ps(scale, dx), acc[i]);
        if constexpr (T.with_min) {  // block_q8a's s = dx * sum(q), against the block's m
          const __m512 sx = _mm512_set1_ps(load_float(xb + i * act_bytes + 4));
          acc[i] = _mm512_fmadd_ps(_mm512_load_ps(pb + Q::kExtraAt), sx, acc[i]);
        }
      }
    } else {
      for (int i = 0; i < M; ++i) {
        acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(ct + i * L)), scale, acc[i]);
      }
      if (s + 1 < T.sub) return;
      const uint8_t* extra = pb + Q::kExtraAt;
      for (int i = 0; i < M; ++i) {
        __m512 block = acc[i];
        if constexpr (T.with_kmins) {
          const int32_t* pr = pairs + i * pair_stride + 4 * b;
          __m512i mins = _mm512_madd_epi16(_mm512_load_si512(extra), _mm512_set1_epi32(pr[0]));
          for (int p = 1; p < 4; ++p) {
            mins = _mm512_add_epi32(mins, _mm512_madd_epi16(_mm512_load_si512(extra + p * 4 * L),
                                                           _mm512_set1_epi32(pr[p])));
          }
          block = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(mins), _mm512_load_ps(extra + 16 * L), block);
        }
        const __m512 dx = _mm512_set1_ps(load_float(xb + i * act_bytes));
        _mm512_store_ps(done + i * L, _mm512_fmadd_ps(block, dx, _mm512_load_ps(done + i * L)));
        acc[i] = _mm512_setzero_ps();
      }
    }
  };

  multiply0<F>(pk, x, act_bytes, 0);
  for (int64_t g = 0; g < total; g += 2) {
    const bool second = g + 1 < total;
    if (second) multiply1<F>(pk, x, act_bytes, g + 1);
    store_c0(c[0]);
    if (g + 2 < total) multiply0<F>(pk, x, act_bytes, g + 2);
    scale_rows(c[0], g);
    if (second) {
      store_c1(c[1]);
      scale_rows(c[1], g + 1);
    }
  }

  if constexpr (Q::kKquant) {
    for (int i = 0; i < M; ++i) acc[i] = _mm512_load_ps(done + i * L);
  }
  avx2::int_gemm::store_rows<avx2::int_gemm::V16, M>(acc, y, ldy, nr, accumulate);
}

}  // namespace
}  // namespace cromwell::avx512amx

#include "q4k_tiles.h"
#include "q6k_tiles.h"

namespace cromwell::avx512amx {
namespace {

// gemm_rows' wide row groups on tiles: M activation rows a step, the tile configuration loaded
// for the call's format on the calling thread and released after.
struct AmxTiles {
  static constexpr int64_t kRows = M;
  template <Format F>
  struct Scope {
    Scope() {
      static const TileConfig config = tile_config<F>();
      _tile_loadconfig(&config);
    }
    ~Scope() { _tile_release(); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
  };
  template <Format F>
  static void run(const uint8_t* pk, int64_t nb, const uint8_t* x, int64_t act_bytes,
                  const int32_t* pairs, int64_t pair_stride, float* y, int64_t ldy, int nr,
                  bool accumulate) {
    tile_rows<F>(pk, nb, x, act_bytes, pairs, pair_stride, y, ldy, nr, accumulate);
  }
};

// The fewest activation rows for which each format's tiles beat the AVX-512 VNNI registers
// (bench/bench_int_gemm.py --rows: a panel is packed for the tiles once per call, and few rows
// do not pay for it); 0 where the registers stay faster at every count.
constexpr int64_t min_tile_rows(Format f) {
  switch (f) {
    case Format::Q4_K: return 32;  // 1.13x at 32 rows, 0.94x at 24
    case Format::Q6_K: return 128;  // three parts to pack: 1.03x at 128 rows, 0.79x at 64
    case Format::Q8_0:
    case Format::Q5_K: return 16;  // the generic tiles: 1.03-1.04x at 16 rows, 1.1-1.3x from 64
    default: return 0;  // Q4_0, Q4_1, Q5_0, Q5_1: the generic tiles at 0.87-1.03x even at 512
  }
}

// Whether f and n take the k-quant schemes of split_tiles.h (Q4_K and Q6_K from their
// min_tile_rows).
bool split_scheme(Format f, int64_t n) {
  return (f == Format::Q4_K || f == Format::Q6_K) && n >= min_tile_rows(f);
}

// Q4_K and Q6_K on their own packing (split_tiles.h), Q8_0 and Q5_K on the generic tiles, each
// from its min_tile_rows; everything else on the AVX-512 VNNI registers.
void gemm_rows_amx(Format f, const uint8_t* w, int64_t rb, int64_t k, int64_t r0, int64_t r1,
                   const uint8_t* xq, int64_t act_bytes, int64_t n, const uint8_t* prepared, float* y,
                   int64_t ldy) {
  using avx2::int_gemm::gemm_rows_for;
  using avx2::int_gemm::V16;
  const int64_t least = min_tile_rows(f);
  if (least == 0 || n < least) return gemm_rows_for<V16, 4>(f, w, rb, k, r0, r1, xq, act_bytes, n, nullptr, y, ldy);
  if (f == Format::Q4_K) return split::gemm<q4k::Scheme>(w, rb, k, r0, r1, xq, act_bytes, n, prepared, y, ldy);
  if (f == Format::Q6_K) return split::gemm<q6k::Scheme>(w, rb, k, r0, r1, xq, act_bytes, n, prepared, y, ldy);
  gemm_rows_for<V16, 4, AmxTiles>(f, w, rb, k, r0, r1, xq, act_bytes, n, nullptr, y, ldy);
}

// The split schemes' activations are regrouped into A tiles and summed in pairs once per
// product, not once per thread's share of the weight rows.
int64_t prepared_bytes_amx(Format f, int64_t k, int64_t n) {
  return split_scheme(f, n) ? split::prepared_bytes(k, n) : 0;
}

void prepare_amx(Format, int64_t k, const uint8_t* xq, int64_t act_bytes, int64_t n, int64_t i0, int64_t i1,
                 uint8_t* out) {
  split::prepare(k, xq, act_bytes, n, i0, i1, out);
}

}  // namespace

IntGemmKernel int_gemm_kernel() { return {gemm_rows_amx, L, prepared_bytes_amx, prepare_amx}; }

}  // namespace cromwell::avx512amx

// The k-quants' matrix-matrix product on AMX tiles with one float conversion per super-block:
// what the Q4_K and Q6_K schemes (q4k_tiles.h, q6k_tiles.h) share. Included by int_gemm_amx.cpp
// only (built with AMX and AVX-512 VNNI).
//
// A k-quant's sub-block scale (per 32 elements for Q4_K, 16 for Q6_K) is a small integer, and
// the weights are small integers: a scheme writes scale * value as a sum of parts
// sum_p base^p * (digit_p * value), each part's digit small enough that digit_p * value is a
// signed byte. One tile multiply per part then runs over 64 elements of all sub-blocks at once
// and accumulates over the whole super-block, exactly the integer sums the other builds
// compute; the generic tile path (int_gemm_amx.cpp) instead stores and converts a tile per
// sub-block, which costs more than the multiplies. The tile count for a super-block stays what
// it is there (Q4_K: 2 parts over 64 elements against 8 sub-blocks of 32; Q6_K: 3 against 16 of
// 16, so fewer).
//
// Both operands are laid out so that each tile is 1 KiB in one piece: the weight parts as
// [quads][16 rows][4], the activations' quant bytes regrouped by 16 rows (pack_activations);
// 16 activation rows loaded 292 bytes apart (their block_q8_K) load several times slower.
#pragma once

namespace cromwell::avx512amx {
namespace {
namespace split {

using avx2::half_to_float;
using avx2::load_256;

constexpr int L = 16;  // weight rows in a panel, columns of a C tile
constexpr int64_t kActBlock = 16 * QK_K;  // 16 rows' quant bytes of one super-block
// Weight panels packed at once, then passed over together: 16 panels of at most 8 Q4_K
// super-blocks of 8.6 KiB, about 1.1 MiB, stay in L2 (one thread, 8960x1536: 8 panels ran at
// 0.96x the speed, 4 at 0.93x, 32 at 0.88x).
constexpr int kPanels = 16;

// Rows [16][256] bytes (row r at tmp + 256 r) into [64 quads][16 rows][4] at out: the B operand
// of four 64-element steps, 1 KiB each.
inline void interleave(const uint8_t* tmp, uint8_t* out) {
  for (int64_t c = 0; c < 8; ++c) {
    for (int half = 0; half < 2; ++half) {
      __m256i v[8];
      for (int i = 0; i < 8; ++i) v[i] = load_256(tmp + (8 * half + i) * 256 + 32 * c);
      avx2::int_gemm::transpose_8x8_u32(v);
      for (int j = 0; j < 8; ++j) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(out + (8 * c + j) * 64 + 32 * half), v[j]);
      }
    }
  }
}

// The prepared activations (IntGemmKernel::prepare) every k-quant scheme reads, for n rows of
// k: first the A tiles, the rows' quant bytes in groups of 16 rows (group g, super-block b,
// step s of 64 elements is the tile at (g * nb_all + b) * kActBlock + 1024 s, row r 64 bytes
// after row r - 1; rows past n, up to the next 16, zero); then the rows' pair sums of bsums
// (int_gemm::kquant_pair_sums, nb_all * 4 int32 a row).
inline int64_t act_tile_bytes(int64_t k, int64_t n) { return (n + 15) / 16 * (k / QK_K) * kActBlock; }
inline int64_t prepared_bytes(int64_t k, int64_t n) { return act_tile_bytes(k, n) + n * (k / QK_K) * 16; }

// Rows [i0, i1) of the prepared activations (i0 a multiple of 16; the group holding row n - 1
// is zeroed first by whoever writes it).
inline void prepare(int64_t k, const uint8_t* xq, int64_t act_bytes, int64_t n, int64_t i0, int64_t i1,
                    uint8_t* out) {
  const int64_t nb_all = k / QK_K;
  const int64_t a_group = nb_all * kActBlock;
  if (i1 == n && n % 16 != 0) std::memset(out + (n / 16) * a_group, 0, size_t(a_group));
  int32_t* pairs = reinterpret_cast<int32_t*>(out + act_tile_bytes(k, n));
  for (int64_t i = i0; i < i1; ++i) {
    const uint8_t* row = xq + i * act_bytes;
    uint8_t* dst = out + (i / 16) * a_group + (i % 16) * 64;
    for (int64_t b = 0; b < nb_all; ++b) {
      const uint8_t* qs = row + b * int64_t(sizeof(block_q8_K)) + offsetof(block_q8_K, qs);
      for (int s = 0; s < 4; ++s) std::memcpy(dst + b * kActBlock + s * 1024, qs + 64 * s, 64);
    }
    avx2::int_gemm::kquant_pair_sums(reinterpret_cast<const block_q8_K*>(row), nb_all, pairs + i * nb_all * 4);
  }
}

// y[i * ldy + 0..nr) (+)= done[i * L ..] for the first `valid` of G * 16 rows.
template <int G>
inline void store_results(const float* done, int valid, float* y, int64_t ldy, int nr, bool accumulate) {
  __m512 rows[16];
  for (int g = 0; g < G; ++g) {
    for (int i = 0; i < 16; ++i) rows[i] = _mm512_load_ps(done + (16 * g + i) * L);
    avx2::int_gemm::store_rows<avx2::int_gemm::V16, 16>(rows, y + 16 * g * ldy, ldy, nr, accumulate,
                                                        std::clamp(valid - 16 * g, 0, 16));
  }
}

// All 8 tiles 16 rows of 64 bytes.
inline const TileConfig& config() {
  static const TileConfig c = [] {
    TileConfig t;
    for (int i = 0; i < 8; ++i) {
      t.rows[i] = 16;
      t.colsb[i] = 64;
    }
    return t;
  }();
  return c;
}

// The IntGemmFn of a scheme S: stretches of k outside (at most S::kStretchBlocks super-blocks),
// kPanels panels of 16 weight rows inside, packed together once per stretch and passed over by
// all the activation rows, 16 * S::kGroups at a time, then 16, then the last few among zero rows.
// S provides kBlockBytes, kTmpBytes, kGroups (1 or 2), kStretchBlocks, kPairs (whether tiles
// reads the activations' pair sums), pack(rows, b0, nb, pk, tmp) and tiles<G>(pk, nb, a,
// a_group, x, act_bytes, pairs, pair_stride, y, ldy, nr, valid, accumulate).
template <class S>
void gemm(const uint8_t* w, int64_t rb, int64_t k, int64_t r0, int64_t r1, const uint8_t* xq,
          int64_t act_bytes, int64_t n, const uint8_t* prepared, float* y, int64_t ldy) {
  constexpr int64_t kAct = sizeof(block_q8_K);
  const int64_t nb_all = k / QK_K;
  const int64_t per = avx2::int_gemm::stretch_blocks(nb_all, S::kStretchBlocks);
  thread_local avx2::int_gemm::Bytes pack_buf, tmp_buf, pad_buf, pad_pairs_buf;
  uint8_t* pk = pack_buf.get(size_t(kPanels * per * S::kBlockBytes));
  uint8_t* tmp = tmp_buf.get(size_t(S::kTmpBytes));
  const uint8_t* a = prepared;  // made by `prepare` before the rows were split
  const int32_t* pairs =
      S::kPairs ? reinterpret_cast<const int32_t*>(prepared + act_tile_bytes(k, n)) : nullptr;
  // The last rows short of 16: their scales (and pair sums) among zero ones.
  const int64_t full = n / 16 * 16;
  const int tail = int(n - full);
  uint8_t* pad = pad_buf.get(size_t(16 * act_bytes));
  int32_t* pad_pairs = reinterpret_cast<int32_t*>(pad_pairs_buf.get(size_t(16 * nb_all * 16)));
  if (tail > 0) {
    std::memset(pad, 0, size_t(16 * act_bytes));
    std::memcpy(pad, xq + full * act_bytes, size_t(tail * act_bytes));
    if constexpr (S::kPairs) {
      std::memset(pad_pairs, 0, size_t(16 * nb_all * 16));
      std::memcpy(pad_pairs, pairs + full * nb_all * 4, size_t(tail * nb_all * 16));
    }
  }
  const int64_t a_group = nb_all * kActBlock;
  auto pairs_at = [&](const int32_t* base, int64_t i, int64_t b0) {
    return base == nullptr ? nullptr : base + (i * nb_all + b0) * 4;
  };
  _tile_loadconfig(&config());
  const int64_t span = kPanels * L;
  for (int64_t b0 = 0; b0 < nb_all; b0 += per) {
    const int64_t nb = std::min(per, nb_all - b0);
    const uint8_t* as = a + b0 * kActBlock;  // group 0, this stretch
    const uint8_t* xs = xq + b0 * kAct;
    const bool acc = b0 > 0;
    for (int64_t p0 = r0; p0 < r1; p0 += span) {
      const int panels = int(std::min<int64_t>(kPanels, (r1 - p0 + L - 1) / L));
      int nrs[kPanels];
      for (int j = 0; j < panels; ++j) {
        const uint8_t* rows[L];
        nrs[j] = avx2::int_gemm::panel_rows<L>(w, rb, p0 + j * L, r1, rows);
        S::pack(rows, b0, nb, pk + j * per * S::kBlockBytes, tmp);
      }
      // Every packed panel against the same activation rows before the next ones: each row's
      // results are written kPanels * 16 floats in one run, not 16 at a time across all rows.
      auto pass = [&](auto groups, int64_t i, const uint8_t* ai, const uint8_t* xi, const int32_t* pi, int valid) {
        for (int j = 0; j < panels; ++j) {
          S::template tiles<decltype(groups)::value>(pk + j * per * S::kBlockBytes, nb, ai, a_group, xi, act_bytes,
                                                     pi, nb_all * 4, y + i * ldy + p0 + j * L, ldy, nrs[j], valid,
                                                     acc);
        }
      };
      using Wide = std::integral_constant<int, S::kGroups>;
      using One = std::integral_constant<int, 1>;
      constexpr int64_t kWide = 16 * S::kGroups;
      int64_t i = 0;
      for (; i + kWide <= n; i += kWide) {
        pass(Wide{}, i, as + (i / 16) * a_group, xs + i * act_bytes, pairs_at(pairs, i, b0), int(kWide));
      }
      for (; i + 16 <= n; i += 16) {
        pass(One{}, i, as + (i / 16) * a_group, xs + i * act_bytes, pairs_at(pairs, i, b0), 16);
      }
      if (tail > 0) {
        pass(One{}, full, as + (full / 16) * a_group, pad + b0 * kAct, pairs_at(S::kPairs ? pad_pairs : nullptr, 0, b0),
             tail);
      }
    }
  }
  _tile_release();
}

}  // namespace split
}  // namespace
}  // namespace cromwell::avx512amx

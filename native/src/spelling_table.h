// An open-addressing table of token ids keyed by their spellings, where the spellings lie end
// to end in one buffer (spelling i is buf[off[i] .. off[i + 1])): no node or string per token,
// so a 151k-token vocabulary is one flat array of ids. Linear probing, at most half full.
// Shared by the tokenizer (bpe_tokenizer.cpp) and the first load's vocabulary packing
// (bind_vocab.cpp).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cromwell {

// FNV-1a: tokens are a few bytes long.
inline uint64_t hash_bytes(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : s) h = (h ^ uint8_t(c)) * 0x100000001b3ull;
  return h ^ (h >> 29);
}

// A power of two with room for n entries at most half full.
inline size_t table_size(size_t n) {
  size_t size = 16;
  while (size < 2 * n) size *= 2;
  return size;
}

class SpellingTable {
 public:
  // Empty, with room for n ids.
  void reset(size_t n) { slots_.assign(table_size(n), -1); }

  static std::string_view spelling(const std::string& buf, const std::vector<uint32_t>& off, int32_t id) {
    return {buf.data() + off[size_t(id)], size_t(off[size_t(id) + 1] - off[size_t(id)])};
  }

  // Adds id under its spelling. Returns the id already spelt the same (-1 if none), which the
  // new one replaces when `replace` and keeps its slot otherwise.
  int32_t put(const std::string& buf, const std::vector<uint32_t>& off, int32_t id, bool replace) {
    const std::string_view key = spelling(buf, off, id);
    const size_t mask = slots_.size() - 1;
    for (size_t slot = hash_bytes(key) & mask;; slot = (slot + 1) & mask) {
      const int32_t there = slots_[slot];
      if (there < 0 || spelling(buf, off, there) == key) {
        if (there < 0 || replace) slots_[slot] = id;
        return there;
      }
    }
  }

  // The id spelt `key`, or -1.
  int32_t find(const std::string& buf, const std::vector<uint32_t>& off, std::string_view key) const {
    const size_t mask = slots_.size() - 1;
    for (size_t slot = hash_bytes(key) & mask;; slot = (slot + 1) & mask) {
      const int32_t id = slots_[slot];
      if (id < 0) return -1;
      if (spelling(buf, off, id) == key) return id;
    }
  }

 private:
  std::vector<int32_t> slots_;
};

}  // namespace cromwell

#include "bpe_tokenizer.h"

#include <algorithm>
#include <functional>
#include <queue>
#include <stdexcept>

namespace cromwell {
namespace {

bool printable_byte(uint32_t b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

// The byte each alphabet character stands for; -1 for a character outside the alphabet.
struct ByteLevelTable {
  int16_t byte_of[256 + 68];
  uint32_t char_of[256];
  ByteLevelTable() {
    std::fill(std::begin(byte_of), std::end(byte_of), int16_t(-1));
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      char_of[b] = printable_byte(b) ? b : next++;
      byte_of[char_of[b]] = int16_t(b);
    }
  }
};

const ByteLevelTable& table() {
  static const ByteLevelTable t;
  return t;
}

// Appends the bytes a spelling stands for, if every character of it is in the byte-level
// alphabet (else `out` may hold part of them: the caller cuts it back).
bool to_bytes(std::string_view spelling, std::string& out) {
  const auto& t = table();
  size_t i = 0;
  while (i < spelling.size()) {
    const auto c = uint8_t(spelling[i]);
    uint32_t cp;
    size_t n;
    if (c < 0x80) {
      cp = c, n = 1;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < spelling.size()) {
      cp = (uint32_t(c & 0x1F) << 6) | (uint8_t(spelling[i + 1]) & 0x3F), n = 2;
    } else {
      return false;  // the alphabet ends at U+0143: two UTF-8 bytes at most
    }
    if (cp >= 256 + 68 || t.byte_of[cp] < 0) return false;
    out.push_back(char(t.byte_of[cp]));
    i += n;
  }
  return true;
}

uint64_t pair_key(int32_t left, int32_t right) { return (uint64_t(uint32_t(left)) << 32) | uint32_t(right); }

constexpr size_t kCacheWords = 1 << 16;
constexpr uint64_t kNoPair = ~uint64_t(0);

uint64_t hash_pair(uint64_t key) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdull;
  return key ^ (key >> 33);
}

}  // namespace

uint32_t byte_level_char(uint8_t b) { return table().char_of[b]; }

BpeTokenizer::BpeTokenizer(std::string spellings, std::vector<uint32_t> offsets,
                           const std::vector<std::pair<int32_t, int32_t>>& merges, bool ignore_merges)
    : spell_buf_(std::move(spellings)), spell_off_(std::move(offsets)), ignore_merges_(ignore_merges) {
  if (spell_off_.empty() || spell_off_.front() != 0 || spell_off_.back() != spell_buf_.size() ||
      !std::is_sorted(spell_off_.begin(), spell_off_.end())) {
    throw std::invalid_argument("token offsets do not cut the spellings");
  }
  const int32_t n = size();
  bytes_buf_.reserve(spell_buf_.size());
  bytes_off_.reserve(spell_off_.size());
  bytes_off_.push_back(0);
  by_spelling_.reset(size_t(n));
  by_bytes_.reset(size_t(n));
  for (int32_t id = 0; id < n; ++id) {
    by_spelling_.put(spell_buf_, spell_off_, id, /*replace=*/true);  // a repeated spelling: its last id
    const size_t at = bytes_buf_.size();
    const bool spelt_in_alphabet = to_bytes(spelling(id), bytes_buf_);
    if (!spelt_in_alphabet) {
      bytes_buf_.resize(at);
      bytes_buf_.append(spelling(id));  // stands for its own UTF-8
    }
    bytes_off_.push_back(uint32_t(bytes_buf_.size()));
    // Only tokens spelt in the alphabet can be a word's bytes (words are spelt in it).
    if (spelt_in_alphabet) by_bytes_.put(bytes_buf_, bytes_off_, id, /*replace=*/true);
  }
  for (uint32_t b = 0; b < 256; ++b) {
    char one[2];
    const uint32_t cp = table().char_of[b];
    size_t len = 1;
    if (cp < 0x80) {
      one[0] = char(cp);
    } else {
      one[0] = char(0xC0 | (cp >> 6));
      one[1] = char(0x80 | (cp & 0x3F));
      len = 2;
    }
    byte_token_[b] = find({one, len});
  }
  merges_.assign(table_size(merges.size()), MergeSlot{kNoPair, 0, 0});
  const size_t mask = merges_.size() - 1;
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto [left, right] = merges[rank];
    if (left < 0 || left >= n || right < 0 || right >= n) {
      throw std::invalid_argument("merge " + std::to_string(rank) + " names a token id outside 0.." +
                                  std::to_string(n - 1));
    }
    joined.assign(spelling(left));
    joined.append(spelling(right));
    const int32_t merged = find(joined);
    if (merged < 0) {
      throw std::invalid_argument("merge " + std::to_string(rank) + " (" + std::string(spelling(left)) +
                                  " " + std::string(spelling(right)) + ") makes " + joined +
                                  ", which is not in the vocabulary");
    }
    const uint64_t key = pair_key(left, right);
    size_t slot = hash_pair(key) & mask;
    while (merges_[slot].key != kNoPair && merges_[slot].key != key) slot = (slot + 1) & mask;
    merges_[slot] = {key, int32_t(rank), merged};  // a repeated pair: the last rank
  }
}

const BpeTokenizer::MergeSlot* BpeTokenizer::find_merge(int32_t left, int32_t right) const {
  const uint64_t key = pair_key(left, right);
  const size_t mask = merges_.size() - 1;
  for (size_t slot = hash_pair(key) & mask;; slot = (slot + 1) & mask) {
    const MergeSlot& m = merges_[slot];
    if (m.key == key) return &m;
    if (m.key == kNoPair) return nullptr;
  }
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) {
  if (word.empty()) return;
  if (ignore_merges_) {
    const int32_t whole = by_bytes_.find(bytes_buf_, bytes_off_, word);
    if (whole >= 0) {
      out.push_back(whole);
      return;
    }
  }
  std::string key(word);
  if (const auto hit = cache_.find(key); hit != cache_.end()) {
    out.insert(out.end(), hit->second.begin(), hit->second.end());
    return;
  }
  struct Symbol {
    int32_t id;
    int32_t prev, next;
    bool gone;
  };
  std::vector<Symbol> symbols;
  symbols.reserve(word.size());
  for (const char c : word) {
    const int32_t id = byte_token_[uint8_t(c)];
    if (id < 0) continue;  // a byte with no token is dropped
    const auto at = int32_t(symbols.size());
    symbols.push_back({id, at - 1, at + 1, false});
  }
  if (!symbols.empty()) symbols.back().next = -1;

  struct Merge {
    int32_t pos, rank, id;
    // The queue's top is the lowest rank, then the leftmost place.
    bool operator<(const Merge& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Merge> queue;
  auto offer = [&](int32_t pos, int32_t left, int32_t right) {
    if (const MergeSlot* m = find_merge(left, right)) queue.push({pos, m->rank, m->id});
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) offer(int32_t(i), symbols[i].id, symbols[i + 1].id);
  while (!queue.empty()) {
    const Merge top = queue.top();
    queue.pop();
    Symbol& here = symbols[size_t(top.pos)];
    if (here.gone || here.next < 0) continue;
    Symbol& right = symbols[size_t(here.next)];
    // A merge queued before its pair changed: skipped unless the pair still makes its token.
    const MergeSlot* now = find_merge(here.id, right.id);
    if (now == nullptr || now->id != top.id) continue;
    here.id = top.id;
    right.gone = true;
    here.next = right.next;
    if (right.next >= 0) symbols[size_t(right.next)].prev = top.pos;
    if (here.prev >= 0) offer(here.prev, symbols[size_t(here.prev)].id, here.id);
    if (here.next >= 0) offer(top.pos, here.id, symbols[size_t(here.next)].id);
  }
  const size_t first = out.size();
  for (const Symbol& s : symbols) {
    if (!s.gone) out.push_back(s.id);
  }
  if (cache_.size() >= kCacheWords) cache_.clear();
  cache_.emplace(std::move(key), std::vector<int32_t>(out.begin() + std::ptrdiff_t(first), out.end()));
}

void BpeTokenizer::set_added(const std::vector<int32_t>& ids, const std::vector<bool>& special) {
  if (ids.size() != special.size()) throw std::invalid_argument("ids and special differ in length");
  added_kind_.assign(size_t(size()), 0);
  for (auto& lengths : added_lengths_) lengths.clear();
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= size()) {
      throw std::invalid_argument("added token id " + std::to_string(ids[i]) + " is outside the vocabulary");
    }
    const std::string_view text = spelling(ids[i]);
    if (text.empty() || find(text) != ids[i]) continue;  // found by its spelling, or never
    added_kind_[size_t(ids[i])] = special[i] ? 2 : 1;
    added_lengths_[uint8_t(text[0])].push_back(uint32_t(text.size()));
  }
  for (auto& lengths : added_lengths_) {
    std::sort(lengths.begin(), lengths.end(), std::greater<>());
    lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
  }
}

std::vector<std::pair<std::string_view, int32_t>> BpeTokenizer::split_added(std::string_view text,
                                                                           bool parse_special) const {
  std::vector<std::pair<std::string_view, int32_t>> pieces;
  size_t start = 0;  // of the plain text not yet emitted
  size_t i = 0;
  while (i < text.size()) {
    int32_t found = -1;
    size_t found_len = 0;
    for (const uint32_t len : added_lengths_[uint8_t(text[i])]) {  // longest first
      if (len > text.size() - i) continue;
      const int32_t id = find(text.substr(i, len));
      if (id >= 0 && added_kind_[size_t(id)] != 0) {
        found = id, found_len = len;
        break;
      }
    }
    if (found < 0) {
      ++i;
      continue;
    }
    if (added_kind_[size_t(found)] == 2 && !parse_special) {
      i += found_len;  // a special token spelt out: its text stays plain text, no shorter match
      continue;        // inside it is tried (the tokenizer library's matching)
    }
    if (i > start) pieces.emplace_back(text.substr(start, i - start), -1);
    pieces.emplace_back(text.substr(i, found_len), found);
    i += found_len;
    start = i;
  }
  if (start < text.size()) pieces.emplace_back(text.substr(start), -1);
  return pieces;
}

}  // namespace cromwell

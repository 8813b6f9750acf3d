// Byte-level BPE (the GPT-2 family's tokenizer, as GGUF files carry it), natively: built from
// the vocabulary and the merges in one pass of hash-map inserts, so loading a 151k-token
// vocabulary costs milliseconds rather than the tokenizer library's hundreds.
//
// Semantics are the tokenizer library's (HF `tokenizers` BPE with a ByteLevel decoder), which
// the tests hold it to: a word's symbols are its bytes' tokens (a byte with no token is
// dropped), merges are applied lowest rank first, leftmost first among equal ranks, and a merge
// queued before its pair changed is skipped when the pair no longer yields the same token. With
// `ignore_merges` (the llama3 family) a word that is a token is that token.
//
// Text splitting (added tokens, the pre-tokenizer's regexes) happens before: `encode_words`
// takes words. Added tokens are split out by `split_added`: leftmost, longest first.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "spelling_table.h"

namespace cromwell {

class BpeTokenizer {
 public:
  // `spellings`: the vocabulary in id order, as the file spells it (byte-level alphabet,
  // UTF-8), token i at [offsets[i], offsets[i + 1]). `merges`: by rank, each a pair of token
  // ids whose concatenation must be a token too (std::invalid_argument naming the merge
  // otherwise).
  BpeTokenizer(std::string spellings, std::vector<uint32_t> offsets,
               const std::vector<std::pair<int32_t, int32_t>>& merges, bool ignore_merges);

  int32_t size() const { return int32_t(spell_off_.size() - 1); }
  // The file's spelling of a token ("Ġthe"), and the bytes it stands for (" the"). A token
  // with a character outside the byte-level alphabet stands for its own UTF-8.
  std::string_view spelling(int32_t id) const { return SpellingTable::spelling(spell_buf_, spell_off_, id); }
  std::string_view bytes(int32_t id) const { return SpellingTable::spelling(bytes_buf_, bytes_off_, id); }
  // The id of a token by its spelling, or -1.
  int32_t find(std::string_view spelling) const { return by_spelling_.find(spell_buf_, spell_off_, spelling); }

  // Appends the ids of `word` (raw UTF-8 bytes of one pre-tokenized word) to `out`.
  void encode_word(std::string_view word, std::vector<int32_t>& out);

  // Added tokens, matched whole in text by `split_added`: `special[i]` marks ids[i] a special
  // (control) token, which text spells out instead when it is not parsed for them.
  void set_added(const std::vector<int32_t>& ids, const std::vector<bool>& special);
  // Cuts `text` at the added tokens it holds (leftmost match, the longest at a place); the
  // pieces between them come back with id -1. Special tokens are cut out only when
  // `parse_special`.
  std::vector<std::pair<std::string_view, int32_t>> split_added(std::string_view text,
                                                                bool parse_special) const;

 private:
  struct MergeSlot {
    uint64_t key;  // kNoPair: empty
    int32_t rank, id;
  };
  const MergeSlot* find_merge(int32_t left, int32_t right) const;

  std::string spell_buf_, bytes_buf_;
  std::vector<uint32_t> spell_off_, bytes_off_;
  SpellingTable by_spelling_, by_bytes_;  // by_bytes_: only tokens spelt in the alphabet
  std::vector<MergeSlot> merges_;
  int32_t byte_token_[256];
  bool ignore_merges_;
  // Words seen before (a prompt repeats most of its words); cleared when it grows large.
  std::unordered_map<std::string, std::vector<int32_t>> cache_;
  // Added tokens: 0 none, 1 matched whole, 2 matched whole and special. A vocabulary may have
  // a hundred thousand of them (padding): a place in the text is tried against the few
  // lengths they have for its first byte, each one hash lookup.
  std::vector<uint8_t> added_kind_;
  std::vector<uint32_t> added_lengths_[256];  // distinct, longest first
};

// The byte-level alphabet: the character standing for each byte (GPT-2's bytes_to_unicode).
uint32_t byte_level_char(uint8_t b);

}  // namespace cromwell

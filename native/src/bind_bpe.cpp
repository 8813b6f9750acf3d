// Bindings for the byte-level BPE tokenizer (bpe_tokenizer.h). Text crosses as Python str and
// is UTF-8 inside; invalid UTF-8 that a GGUF file or a text held (as lone surrogates in Python)
// crosses with "surrogatepass", as everywhere else in a load.
#include <Python.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "bind_util.h"
#include "bpe_tokenizer.h"

namespace py = pybind11;

namespace cromwell::bind {
namespace {

py::str str_of(std::string_view utf8) {
  return owned(PyUnicode_DecodeUTF8(utf8.data(), Py_ssize_t(utf8.size()), "surrogatepass"));
}

std::vector<std::pair<int32_t, int32_t>> merge_pairs(const py::handle& lefts_obj, const py::handle& rights_obj) {
  auto lefts = contiguous<int32_t>(lefts_obj, "lefts");
  auto rights = contiguous<int32_t>(rights_obj, "rights");
  if (lefts.ndim() != 1 || rights.ndim() != 1 || lefts.shape(0) != rights.shape(0)) {
    throw py::value_error("lefts, rights: expected two 1-D arrays of the same length");
  }
  std::vector<std::pair<int32_t, int32_t>> merges(size_t(lefts.shape(0)));
  for (size_t i = 0; i < merges.size(); ++i) merges[i] = {lefts.data()[i], rights.data()[i]};
  return merges;
}

std::unique_ptr<BpeTokenizer> build(std::string spellings, std::vector<uint32_t> offsets,
                                    const std::vector<std::pair<int32_t, int32_t>>& merges, bool ignore_merges) {
  py::gil_scoped_release quiet;
  try {
    return std::make_unique<BpeTokenizer>(std::move(spellings), std::move(offsets), merges, ignore_merges);
  } catch (const std::invalid_argument& e) {
    py::gil_scoped_acquire loud;
    throw py::value_error(e.what());
  }
}

std::unique_ptr<BpeTokenizer> from_list(const py::list& tokens, const py::handle& lefts,
                                        const py::handle& rights, bool ignore_merges) {
  const auto merges = merge_pairs(lefts, rights);
  std::string spellings;
  std::vector<uint32_t> offsets{0};
  offsets.reserve(tokens.size() + 1);
  for (const py::handle t : tokens) {
    py::object keep;
    spellings.append(utf8_of(t, keep));
    offsets.push_back(uint32_t(spellings.size()));
  }
  return build(std::move(spellings), std::move(offsets), merges, ignore_merges);
}

// From a load-cache entry's blob: the spellings' UTF-8 joined by NULs, as they are.
std::unique_ptr<BpeTokenizer> from_utf8(const py::buffer& tokens_utf8, int64_t n_tokens, const py::handle& lefts,
                                        const py::handle& rights, bool ignore_merges) {
  const py::buffer_info text = tokens_utf8.request();
  if (text.itemsize != 1 || text.ndim != 1) throw py::value_error("tokens_utf8: expected a 1-D buffer of bytes");
  if (n_tokens < 1) throw py::value_error("n_tokens must be >= 1");
  const auto merges = merge_pairs(lefts, rights);
  std::string spellings;
  spellings.reserve(size_t(text.size));
  std::vector<uint32_t> offsets{0};
  offsets.reserve(size_t(n_tokens) + 1);
  const char* at = static_cast<const char*>(text.ptr);
  const char* const end = at + text.size;
  for (int64_t i = 0; i < n_tokens; ++i) {
    const char* stop = static_cast<const char*>(std::memchr(at, '\0', size_t(end - at)));
    if (stop == nullptr) stop = end;
    if ((stop == end) != (i == n_tokens - 1)) {
      throw py::value_error("tokens_utf8 does not hold " + std::to_string(n_tokens) + " NUL-separated tokens");
    }
    spellings.append(at, size_t(stop - at));
    offsets.push_back(uint32_t(spellings.size()));
    at = stop + 1;
  }
  return build(std::move(spellings), std::move(offsets), merges, ignore_merges);
}

py::list encode_words(BpeTokenizer& tok, const py::list& words) {
  std::vector<int32_t> ids;
  ids.reserve(words.size() * 2);
  for (const py::handle w : words) {
    py::object keep;
    tok.encode_word(utf8_of(w, keep), ids);
  }
  py::list out = owned(PyList_New(Py_ssize_t(ids.size())));
  for (size_t i = 0; i < ids.size(); ++i) {
    PyList_SET_ITEM(out.ptr(), Py_ssize_t(i), owned(PyLong_FromLong(ids[i])).release().ptr());
  }
  return out;
}

py::list split_added(const BpeTokenizer& tok, const py::handle& text, bool parse_special) {
  py::object keep;
  const std::string_view utf8 = utf8_of(text, keep);
  py::list out;
  for (const auto& [piece, id] : tok.split_added(utf8, parse_special)) {
    out.append(py::make_tuple(str_of(piece), id));
  }
  return out;
}

py::bytes decode_bytes(const BpeTokenizer& tok, const std::vector<int64_t>& ids) {
  std::string out;
  for (const int64_t id : ids) {
    if (id >= 0 && id < tok.size()) out.append(tok.bytes(int32_t(id)));  // unknown ids are skipped
  }
  return {out.data(), out.size()};
}

void check_id(const BpeTokenizer& tok, int64_t id) {
  if (id < 0 || id >= tok.size()) {
    throw py::index_error("token id " + std::to_string(id) + " is outside 0.." + std::to_string(tok.size() - 1));
  }
}

}  // namespace

void bind_bpe(py::module_& m) {
  py::class_<BpeTokenizer>(m, "BpeTokenizer",
                           "Byte-level BPE over a GGUF vocabulary (native/src/bpe_tokenizer.h).")
      .def(py::init(&from_list), py::arg("tokens"), py::arg("lefts"), py::arg("rights"),
           py::arg("ignore_merges") = false,
           "tokens: the vocabulary's spellings in id order; lefts/rights: int32 token ids of the\n"
           "merges by rank. ValueError naming a merge whose tokens or product are not tokens.")
      .def_static("from_utf8", &from_utf8, py::arg("tokens_utf8"), py::arg("n_tokens"), py::arg("lefts"),
                  py::arg("rights"), py::arg("ignore_merges") = false,
                  "The same from n NUL-separated UTF-8 spellings (a load-cache entry's blob).")
      .def("__len__", &BpeTokenizer::size)
      .def("spelling", [](const BpeTokenizer& t, int64_t id) {
        check_id(t, id);
        return str_of(t.spelling(int32_t(id)));
      })
      .def("token_bytes", [](const BpeTokenizer& t, int64_t id) {
        check_id(t, id);
        const std::string_view b = t.bytes(int32_t(id));
        return py::bytes(b.data(), b.size());
      })
      .def("find", [](const BpeTokenizer& t, const py::handle& spelling) -> py::object {
        py::object keep;
        const int32_t id = t.find(utf8_of(spelling, keep));
        return id < 0 ? py::object(py::none()) : py::object(py::int_(id));
      })
      .def("set_added", &BpeTokenizer::set_added, py::arg("ids"), py::arg("special"))
      .def("split_added", &split_added, py::arg("text"), py::arg("parse_special"),
           "[(piece, id)]: the added tokens cut out of text (id -1: plain text between them).")
      .def("encode_words", &encode_words, py::arg("words"),
           "The ids of pre-tokenized words, one list for all.")
      .def("decode_bytes", &decode_bytes, py::arg("ids"),
           "The bytes the ids stand for, joined (ids outside the vocabulary are skipped).");
}

}  // namespace cromwell::bind

// Bindings for model loading: the Python objects a tokenizer is built from, made in one native
// pass over a load-cache entry. A load hands the tokenizer library a vocabulary of ~49k strings
// (a dict, token -> id) and ~49k merges (a list of (left, right) tuples); made in Python, by
// splitting, zipping and growing a dict, these objects were a third of a model load.
#include <Python.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "bind_util.h"
#include "spelling_table.h"

namespace py = pybind11;

namespace cromwell::bind {
namespace {

py::tuple vocab_objects(const py::buffer& tokens_utf8, int64_t n_tokens, const py::handle& lefts_obj,
                        const py::handle& rights_obj) {
  const py::buffer_info text = tokens_utf8.request();
  if (text.itemsize != 1 || text.ndim != 1) {
    throw py::value_error("tokens_utf8: expected a 1-D buffer of bytes");
  }
  auto lefts = contiguous<int32_t>(lefts_obj, "lefts");
  auto rights = contiguous<int32_t>(rights_obj, "rights");
  if (lefts.ndim() != 1 || rights.ndim() != 1 || lefts.shape(0) != rights.shape(0)) {
    throw py::value_error("lefts, rights: expected two 1-D arrays of the same length");
  }
  if (n_tokens < 0) throw py::value_error("n_tokens must be >= 0");
  const char* at = static_cast<const char*>(text.ptr);
  const char* const end = at + text.size;

  // The tokens, NUL-separated UTF-8 (invalid UTF-8 from the file kept as surrogates).
  py::list tokens = owned(PyList_New(Py_ssize_t(n_tokens)));
  for (int64_t i = 0; i < n_tokens; ++i) {
    const char* stop = static_cast<const char*>(std::memchr(at, '\0', size_t(end - at)));
    if (stop == nullptr) stop = end;
    if ((stop == end) != (i == n_tokens - 1)) {
      throw py::value_error("tokens_utf8 does not hold " + std::to_string(n_tokens) +
                            " NUL-separated tokens");
    }
    PyList_SET_ITEM(tokens.ptr(), Py_ssize_t(i),
                    owned(PyUnicode_DecodeUTF8(at, stop - at, "surrogatepass")).release().ptr());
    at = stop + 1;
  }
  if (n_tokens == 0 && text.size != 0) throw py::value_error("tokens_utf8 holds text but n_tokens is 0");

  // token -> id, sized for every token at once (no regrowth); a repeated token keeps its last id.
  py::dict vocab = owned(_PyDict_NewPresized(Py_ssize_t(n_tokens)));
  for (int64_t i = 0; i < n_tokens; ++i) {
    py::object id = owned(PyLong_FromLongLong(i));
    if (PyDict_SetItem(vocab.ptr(), PyList_GET_ITEM(tokens.ptr(), Py_ssize_t(i)), id.ptr()) != 0) {
      throw py::error_already_set();
    }
  }

  // The merges, by rank: each side is the vocabulary's own string object.
  const int64_t n_merges = lefts.shape(0);
  const int32_t* l = lefts.data();
  const int32_t* r = rights.data();
  py::list merges = owned(PyList_New(Py_ssize_t(n_merges)));
  for (int64_t i = 0; i < n_merges; ++i) {
    if (l[i] < 0 || l[i] >= n_tokens || r[i] < 0 || r[i] >= n_tokens) {
      throw py::value_error("merge " + std::to_string(i) + " names a token id outside 0.." +
                            std::to_string(n_tokens - 1));
    }
    PyList_SET_ITEM(merges.ptr(), Py_ssize_t(i),
                    owned(PyTuple_Pack(2, PyList_GET_ITEM(tokens.ptr(), l[i]),
                                       PyList_GET_ITEM(tokens.ptr(), r[i])))
                        .release()
                        .ptr());
  }
  return py::make_tuple(tokens, vocab, merges);
}

// A GGUF array of `count` strings (each a little-endian u64 length, then its UTF-8) starting at
// byte `pos` of the mapped file: the strings (invalid UTF-8 replaced, as Python's "replace"),
// and the offset after the array. A first load reads two of 150k strings each; made one by one
// in Python they were a third of it.
py::tuple gguf_strings(const py::buffer& file, int64_t pos, int64_t count) {
  const py::buffer_info info = file.request();
  if (info.itemsize != 1 || info.ndim != 1) throw py::value_error("file: expected a 1-D buffer of bytes");
  if (pos < 0 || count < 0) throw py::value_error("pos and count must be >= 0");
  const auto* bytes = static_cast<const uint8_t*>(info.ptr);
  const auto size = uint64_t(info.size);
  uint64_t at = uint64_t(pos);
  py::list out = owned(PyList_New(Py_ssize_t(count)));
  for (int64_t i = 0; i < count; ++i) {
    if (at > size || size - at < 8) throw py::value_error("the file ends inside the string array");
    uint64_t n;
    std::memcpy(&n, bytes + at, 8);  // GGUF is little-endian, as every CPU this runs on
    at += 8;
    if (n > size - at) throw py::value_error("the file ends inside the string array");
    PyList_SET_ITEM(out.ptr(), Py_ssize_t(i),
                    owned(PyUnicode_DecodeUTF8(reinterpret_cast<const char*>(bytes + at), Py_ssize_t(n), "replace"))
                        .release()
                        .ptr());
    at += n;
  }
  return py::make_tuple(out, int64_t(at));
}

// A first load's vocabulary in the load-cache entry's packed form, from the file's two string
// lists in one pass: (blob, lefts, rights), the spellings joined by NULs (an empty one named
// "[EMPTY_<id>]", as llama.cpp names it) and the merges ("left right", by rank) as int32 token
// ids. None when the lists are not a clean vocabulary (a repeated token, a NUL inside one, a
// merge without a space or naming a string that is not a token): the caller's checks then
// say what is wrong. In Python the splits and lookups were a third of a 151k-token first load.
py::object vocab_tables(const py::list& tokens, const py::list& merges) {
  const size_t n = tokens.size();
  if (n >= size_t(INT32_MAX)) throw py::value_error("too many tokens");
  std::string spell;  // the spellings end to end, for the index
  std::vector<uint32_t> off{0};
  off.reserve(n + 1);
  for (size_t i = 0; i < n; ++i) {
    py::object keep;
    const std::string_view s = utf8_of(PyList_GET_ITEM(tokens.ptr(), Py_ssize_t(i)), keep);
    if (s.find('\0') != std::string_view::npos) return py::none();
    if (s.empty()) {
      spell += "[EMPTY_" + std::to_string(i) + "]";
    } else {
      spell.append(s);
    }
    if (spell.size() > UINT32_MAX) throw py::value_error("the vocabulary is over 4 GB");
    off.push_back(uint32_t(spell.size()));
  }
  SpellingTable index;
  index.reset(n);
  for (size_t i = 0; i < n; ++i) {
    if (index.put(spell, off, int32_t(i), /*replace=*/false) >= 0) return py::none();  // a repeat
  }
  const size_t m = merges.size();
  py::array_t<int32_t> lefts{py::ssize_t(m)}, rights{py::ssize_t(m)};
  int32_t* l = lefts.mutable_data();
  int32_t* r = rights.mutable_data();
  for (size_t i = 0; i < m; ++i) {
    py::object keep;
    const std::string_view merge = utf8_of(PyList_GET_ITEM(merges.ptr(), Py_ssize_t(i)), keep);
    const size_t space = merge.find(' ');
    if (space == std::string_view::npos) return py::none();
    l[i] = index.find(spell, off, merge.substr(0, space));
    r[i] = index.find(spell, off, merge.substr(space + 1));
    if (l[i] < 0 || r[i] < 0) return py::none();
  }
  std::string blob;
  blob.reserve(spell.size() + n);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) blob.push_back('\0');
    blob.append(spell, off[i], off[i + 1] - off[i]);
  }
  return py::make_tuple(py::bytes(blob), lefts, rights);
}

}  // namespace

void bind_vocab(py::module_& m) {
  m.def("gguf_strings", &gguf_strings, py::arg("file"), py::arg("pos"), py::arg("count"),
        "(strings, end): the GGUF string array of `count` entries at byte `pos` of `file`.\n"
        "ValueError if the file ends inside it.");
  m.def("vocab_objects", &vocab_objects, py::arg("tokens_utf8"), py::arg("n_tokens"),
        py::arg("lefts"), py::arg("rights"),
        "(tokens, vocab, merges) from n NUL-separated UTF-8 tokens and merges given as int32\n"
        "token ids: tokens a list of str, vocab a dict token -> id, merges a list of (left,\n"
        "right) str tuples. ValueError if the counts or ids do not fit.");
  m.def("vocab_tables", &vocab_tables, py::arg("tokens"), py::arg("merges"),
        "(tokens_utf8, lefts, rights) from a GGUF file's token and merge lists: the spellings\n"
        "joined by NULs (an empty one named [EMPTY_<id>]) and each merge 'left right' as int32\n"
        "token ids; None when a token repeats or holds a NUL, or a merge is not two tokens.");
}

}  // namespace cromwell::bind

#include "tokenizer/clip_tokenizer.h"

#include <array>
#include <queue>

#include "tokenizer/unicode.h"

namespace sluice {
namespace {

constexpr int kMergesUsed = 49152 - 256 - 2;  // CLIP: merges[1 : 49152 - 256 - 2 + 1]
constexpr char kWordEnd[] = "</w>";

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// GPT-2's byte alphabet in its own order: the printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ')
// stand for themselves, then every other byte in increasing order maps to U+0100 + n.
// Returns (byte, code point) in vocabulary order.
std::array<std::pair<int, char32_t>, 256> ByteAlphabet() {
  std::array<std::pair<int, char32_t>, 256> out{};
  std::array<bool, 256> printable{};
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  }
  for (int b = 0; b < 256; ++b) {
    if (printable[b]) out[n++] = {b, static_cast<char32_t>(b)};
  }
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    if (!printable[b]) out[n++] = {b, next++};
  }
  return out;
}

// Step 1: whitespace runs -> one space, trimmed, lower-cased. As Python's str.lower(), a capital
// sigma ending a word (a letter before it, none after) becomes the final sigma.
std::u32string Clean(std::string_view text) {
  std::u32string in = DecodeUtf8(text);
  std::u32string out;
  bool space = false;
  for (size_t i = 0; i < in.size(); ++i) {
    const char32_t c = in[i];
    if (IsWhitespace(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(U' ');
    space = false;
    if (c == U'\u03A3' && i > 0 && IsLetter(in[i - 1]) &&
        (i + 1 == in.size() || !IsLetter(in[i + 1]))) {
      out.push_back(U'\u03C2');
      continue;
    }
    out.push_back(ToLower(c));
  }
  return out;
}

bool StartsWith(const std::u32string& s, size_t at, std::u32string_view p) {
  return s.size() - at >= p.size() && std::u32string_view(s).substr(at, p.size()) == p;
}

// Step 2: the words of a cleaned text, in order.
std::vector<std::u32string> SplitWords(const std::u32string& s) {
  static constexpr std::u32string_view kSpecials[] = {U"<|startoftext|>", U"<|endoftext|>"};
  static constexpr std::u32string_view kContractions[] = {U"'s", U"'t",  U"'re", U"'ve",
                                                          U"'m", U"'ll", U"'d"};
  std::vector<std::u32string> words;
  size_t i = 0;
  while (i < s.size()) {
    const char32_t c = s[i];
    size_t len = 0;
    for (std::u32string_view p : kSpecials) {
      if (len == 0 && StartsWith(s, i, p)) len = p.size();
    }
    for (std::u32string_view p : kContractions) {
      if (len == 0 && StartsWith(s, i, p)) len = p.size();
    }
    if (len == 0 && IsLetter(c)) {
      while (i + len < s.size() && IsLetter(s[i + len])) ++len;
    } else if (len == 0 && IsNumber(c)) {
      len = 1;
    } else if (len == 0 && !IsWhitespace(c)) {
      auto other = [](char32_t x) { return !IsWhitespace(x) && !IsLetter(x) && !IsNumber(x); };
      while (i + len < s.size() && other(s[i + len])) ++len;
    }
    if (len == 0) {  // whitespace: not part of any word
      ++i;
      continue;
    }
    words.emplace_back(s.substr(i, len));
    i += len;
  }
  return words;
}

}  // namespace

Result<std::unique_ptr<ClipTokenizer>> ClipTokenizer::Builtin() {
  return FromMerges(ClipMergesText(), "the built-in CLIP merges");
}

Result<std::unique_ptr<ClipTokenizer>> ClipTokenizer::FromMerges(std::string_view text,
                                                                 const std::string& source) {
  std::unique_ptr<ClipTokenizer> t(new ClipTokenizer());
  const auto alphabet = ByteAlphabet();
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& [byte, cp] : alphabet) {
      std::string sym;
      AppendUtf8(cp, &sym);
      if (pass == 1) sym += kWordEnd;
      const int32_t id = static_cast<int32_t>(t->tokens_.size());
      (pass == 0 ? t->byte_id_ : t->byte_end_id_)[byte] = id;
      t->ids_.emplace(sym, id);
      t->tokens_.push_back(std::move(sym));
    }
  }
  size_t pos = 0;
  int line_no = 0;
  int used = 0;
  std::vector<std::pair<std::string, std::string>> merges;
  while (pos < text.size() && used < kMergesUsed) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line_no == 1 && line.starts_with("#version")) continue;
    if (line.empty()) continue;
    const size_t space = line.find(' ');
    if (space == std::string_view::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string_view::npos) {
      return Corrupt(source, ": line ", line_no, " '", line, "' is not a merge 'A B'");
    }
    std::string a(line.substr(0, space)), b(line.substr(space + 1));
    if (!t->ids_.contains(a) || !t->ids_.contains(b)) {
      return Corrupt(source, ": line ", line_no, " merges '", t->ids_.contains(a) ? b : a,
                     "', which is no token yet");
    }
    // As CLIP builds its encoder (a dict over the vocabulary list), a text that occurs twice
    // maps to its last id.
    t->ids_[a + b] = static_cast<int32_t>(t->tokens_.size());
    t->tokens_.push_back(a + b);
    merges.emplace_back(std::move(a), std::move(b));
    ++used;
  }
  // Merges apply to symbol texts; ranks as CLIP's dict over the merge list (the last rank of a
  // repeated pair), the result the id its text maps to.
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const uint64_t key = PairKey(t->ids_.at(a), t->ids_.at(b));
    t->merge_rank_[key] = static_cast<int32_t>(rank);
    t->merge_id_[key] = t->ids_.at(a + b);
  }
  if (used != kMergesUsed) {
    return Corrupt(source, ": ", used, " merges; CLIP's vocabulary needs ", kMergesUsed);
  }
  t->tokens_.push_back("<|startoftext|>");
  t->tokens_.push_back("<|endoftext|>");
  t->ids_["<|startoftext|>"] = kStartOfText;
  t->ids_["<|endoftext|>"] = kEndOfText;
  CHECK_EQ(t->vocab_size(), kEndOfText + 1);
  return t;
}

void ClipTokenizer::EncodeWord(std::string_view word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  // Symbols as a linked list; a heap of candidate merges (rank, left position), lowest rank and
  // then leftmost first; stale entries are skipped when popped. O(n log n) for an n-byte word.
  const size_t n = word.size();
  std::vector<int32_t> sym(n);
  std::vector<int> prev(n), next(n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t b = static_cast<uint8_t>(word[i]);
    sym[i] = i + 1 == n ? byte_end_id_[b] : byte_id_[b];
    prev[i] = static_cast<int>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int>(i + 1) : -1;
  }
  struct Candidate {
    int32_t rank;
    int left;
    int32_t left_sym, right_sym;
    bool operator<(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };
  std::priority_queue<Candidate> heap;
  auto consider = [&](int l) {
    if (l < 0 || next[l] < 0) return;
    auto it = merge_rank_.find(PairKey(sym[l], sym[next[l]]));
    if (it != merge_rank_.end()) heap.push({it->second, l, sym[l], sym[next[l]]});
  };
  for (int i = 0; i + 1 < static_cast<int>(n); ++i) consider(i);
  std::vector<bool> alive(n, true);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const int l = c.left;
    const int r = alive[l] ? next[l] : -1;
    if (r < 0 || sym[l] != c.left_sym || sym[r] != c.right_sym) continue;  // stale
    sym[l] = merge_id_.at(PairKey(c.left_sym, c.right_sym));
    alive[r] = false;
    next[l] = next[r];
    if (next[r] >= 0) prev[next[r]] = l;
    consider(prev[l]);
    consider(l);
  }
  for (int i = 0; i >= 0; i = next[i]) out->push_back(sym[i]);
}

std::vector<int32_t> ClipTokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> ids;
  for (const std::u32string& w : SplitWords(Clean(text))) {
    if (w == U"<|startoftext|>") {
      ids.push_back(kStartOfText);
    } else if (w == U"<|endoftext|>") {
      ids.push_back(kEndOfText);
    } else {
      EncodeWord(EncodeUtf8(w), &ids);
    }
  }
  return ids;
}

std::string ClipTokenizer::Decode(const std::vector<int32_t>& ids) const {
  const auto alphabet = ByteAlphabet();
  std::unordered_map<char32_t, char> to_byte;
  for (const auto& [byte, cp] : alphabet) to_byte[cp] = static_cast<char>(byte);
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    if (id >= kStartOfText) continue;
    std::string sym = tokens_[id];
    const bool end = sym.size() >= 4 && sym.compare(sym.size() - 4, 4, kWordEnd) == 0;
    if (end) sym.resize(sym.size() - 4);
    for (char32_t cp : DecodeUtf8(sym)) {
      auto it = to_byte.find(cp);
      if (it != to_byte.end()) out.push_back(it->second);
    }
    if (end) out.push_back(' ');
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace sluice

// Byte-level BPE (tokenizer.ggml.model = gpt2), as GPT-2 defined it and Qwen, Llama 3 and
// DeepSeek reuse it:
//  1. the pre-tokenizer splits the text into words (tokenizer/pretokenizer.h);
//  2. every byte of a word becomes the token of its character in GPT-2's byte alphabet (the 188
//     printable Latin-1 bytes stand for themselves, the other 68 map to U+0100 + n in order, so
//     the space 0x20 is "Ġ" U+0120 and the newline 0x0A is "Ċ" U+010A);
//  3. adjacent tokens are merged, always the pair with the lowest merge rank (index in
//     tokenizer.ggml.merges) and among equal ranks the leftmost, until no pair has a merge.
#include <algorithm>
#include <array>
#include <queue>
#include <unordered_map>

#include "core/base/log.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/token_model.h"
#include "tokenizer/unicode.h"

namespace sluice {
namespace {

// GPT-2's byte -> code point table.
std::array<char32_t, 256> ByteToCodePoint() {
  std::array<char32_t, 256> map{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    map[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return map;
}

uint64_t PairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

class BpeModel : public TokenModel {
 public:
  BpeModel(const Vocab& vocab, PreTokenizer pre) : vocab_(vocab), pre_(std::move(pre)) {}

  Status Init() {
    const std::array<char32_t, 256> byte_cp = ByteToCodePoint();
    for (int b = 0; b < 256; ++b) {
      std::string text;
      AppendUtf8(byte_cp[b], &text);
      byte_token_[b] = vocab_.Find(text);
      if (byte_token_[b] < 0) {
        return Corrupt(vocab_.source, ": byte-level BPE vocabulary has no token for byte 0x",
                       std::hex, b, std::dec, " ('", text, "' in the GPT-2 byte alphabet)");
      }
      cp_to_byte_.emplace(byte_cp[b], static_cast<uint8_t>(b));
    }
    merges_.reserve(vocab_.merges.size());
    size_t skipped = 0;
    for (size_t rank = 0; rank < vocab_.merges.size(); ++rank) {
      const std::string& merge = vocab_.merges[rank];
      const size_t space = merge.find(' ', 1);
      if (space == std::string::npos || space + 1 >= merge.size()) {
        return Corrupt(vocab_.source, ": tokenizer.ggml.merges[", rank, "] = '", merge,
                       "' is not 'left right'");
      }
      const std::string_view left(merge.data(), space);
      const std::string_view right(merge.data() + space + 1, merge.size() - space - 1);
      const int32_t left_id = vocab_.Find(left);
      const int32_t right_id = vocab_.Find(right);
      const int32_t result_id = vocab_.Find(std::string(left) + std::string(right));
      if (left_id < 0 || right_id < 0 || result_id < 0) {
        ++skipped;  // a merge whose parts are not tokens can never apply
        continue;
      }
      merges_.emplace(PairKey(left_id, right_id), Merge{static_cast<int32_t>(rank), result_id});
    }
    if (skipped > 0) {
      LOG(DEBUG) << vocab_.source << ": " << skipped << " BPE merges name tokens that do not exist";
    }
    return Status::Ok();
  }

  void EncodeFragment(std::string_view text, bool /*after_special*/,
                      std::vector<int32_t>* out) const override {
    std::vector<Symbol> symbols;
    for (std::string_view word : pre_.Split(text)) EncodeWord(word, &symbols, out);
  }

  std::string PieceBytes(int32_t id) const override {
    const std::string& text = vocab_.tokens[id];
    std::string bytes;
    for (char32_t c : DecodeUtf8(text)) {
      auto it = cp_to_byte_.find(c);
      if (it != cp_to_byte_.end()) {
        bytes.push_back(static_cast<char>(it->second));
      } else {
        AppendUtf8(c, &bytes);  // not in the byte alphabet: keep the character as written
      }
    }
    return bytes;
  }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  struct Symbol {
    int32_t id;  // -1 once merged into its left neighbour
    int prev, next;
  };
  struct Candidate {
    int32_t rank;
    int left, right;
    int32_t left_id, right_id;
    // Lowest rank first, then leftmost (std::priority_queue pops the greatest).
    bool operator<(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };

  void EncodeWord(std::string_view word, std::vector<Symbol>* symbols,
                  std::vector<int32_t>* out) const {
    if (pre_.ignore_merges()) {
      std::string mapped;
      for (char ch : word) mapped += vocab_.tokens[byte_token_[static_cast<uint8_t>(ch)]];
      const int32_t whole = vocab_.Find(mapped);
      if (whole >= 0) {
        out->push_back(whole);
        return;
      }
    }
    symbols->clear();
    const int n = static_cast<int>(word.size());
    for (int i = 0; i < n; ++i) {
      symbols->push_back(
          {byte_token_[static_cast<uint8_t>(word[i])], i - 1, i + 1 < n ? i + 1 : -1});
    }
    std::priority_queue<Candidate> queue;
    auto consider = [&](int left, int right) {
      if (left < 0 || right < 0) return;
      const int32_t l = (*symbols)[left].id, r = (*symbols)[right].id;
      auto it = merges_.find(PairKey(l, r));
      if (it != merges_.end()) queue.push({it->second.rank, left, right, l, r});
    };
    for (int i = 0; i + 1 < n; ++i) consider(i, i + 1);
    while (!queue.empty()) {
      const Candidate c = queue.top();
      queue.pop();
      Symbol& left = (*symbols)[c.left];
      // Stale when either side has merged since the candidate was queued.
      if (left.id != c.left_id || left.next != c.right || (*symbols)[c.right].id != c.right_id) {
        continue;
      }
      Symbol& right = (*symbols)[c.right];
      left.id = merges_.at(PairKey(c.left_id, c.right_id)).result;
      left.next = right.next;
      if (right.next >= 0) (*symbols)[right.next].prev = c.left;
      right.id = -1;
      consider(left.prev, c.left);
      consider(c.left, left.next);
    }
    for (int i = 0; i >= 0 && i < n; i = (*symbols)[i].next) out->push_back((*symbols)[i].id);
  }

  const Vocab& vocab_;
  PreTokenizer pre_;
  std::array<int32_t, 256> byte_token_{};
  std::unordered_map<char32_t, uint8_t> cp_to_byte_;
  std::unordered_map<uint64_t, Merge> merges_;
};

}  // namespace

Result<std::unique_ptr<TokenModel>> CreateBpeModel(const Vocab& vocab) {
  Result<PreTokenizer> pre = PreTokenizer::ForName(vocab.pre);
  if (!pre.ok()) return Status(pre.status().code(), vocab.source + ": " + pre.status().message());
  auto model = std::make_unique<BpeModel>(vocab, std::move(pre).value());
  RETURN_IF_ERROR(model->Init());
  return std::unique_ptr<TokenModel>(std::move(model));
}

}  // namespace sluice

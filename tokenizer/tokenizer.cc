#include "tokenizer/tokenizer.h"

#include <algorithm>

#include "tokenizer/token_model.h"

namespace sluice {
namespace {

// Texts that end a turn in the families we know; matched only on CONTROL/USER_DEFINED tokens.
constexpr std::string_view kEndOfTurnTexts[] = {
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<|end|>",
    "<end_of_turn>",
    "<｜end▁of▁sentence｜>",
    "</s>",
};

bool IsAddedType(TokenType t) {
  return t == TokenType::kControl || t == TokenType::kUserDefined || t == TokenType::kUnknown;
}

}  // namespace

Tokenizer::Tokenizer(Vocab vocab) : vocab_(std::move(vocab)) {}
Tokenizer::~Tokenizer() = default;

Result<std::unique_ptr<Tokenizer>> Tokenizer::FromMetadata(const Metadata& metadata) {
  ASSIGN_OR_RETURN(Vocab vocab, LoadVocab(metadata));
  std::unique_ptr<Tokenizer> tokenizer(new Tokenizer(std::move(vocab)));
  RETURN_IF_ERROR(tokenizer->Init());
  return tokenizer;
}

Status Tokenizer::Init() {
  // The model keeps a reference to vocab_, which lives as long as this object and never moves.
  if (vocab_.kind == VocabKind::kBpe) {
    ASSIGN_OR_RETURN(model_, CreateBpeModel(vocab_));
  } else {
    ASSIGN_OR_RETURN(model_, CreateSentencePieceModel(vocab_));
  }
  pieces_.resize(vocab_.tokens.size());
  for (int32_t id = 0; id < vocab_.size(); ++id) {
    const TokenType type = vocab_.types[id];
    const bool verbatim = IsAddedType(type);  // added tokens are stored as plain text
    pieces_[id] = verbatim ? vocab_.tokens[id] : model_->PieceBytes(id);
    if (verbatim && !vocab_.tokens[id].empty()) {
      added_by_first_byte_[static_cast<uint8_t>(vocab_.tokens[id][0])].push_back(id);
    }
  }
  for (std::vector<int32_t>& bucket : added_by_first_byte_) {
    std::stable_sort(bucket.begin(), bucket.end(), [&](int32_t a, int32_t b) {
      return vocab_.tokens[a].size() > vocab_.tokens[b].size();
    });
  }
  for (int32_t id : {vocab_.eos_id, vocab_.eot_id, vocab_.eom_id}) {
    if (id >= 0) eog_ids_.push_back(id);
  }
  for (std::string_view text : kEndOfTurnTexts) {
    const int32_t id = vocab_.Find(text);
    if (id >= 0 &&
        (vocab_.types[id] == TokenType::kControl || vocab_.types[id] == TokenType::kUserDefined)) {
      eog_ids_.push_back(id);
    }
  }
  std::sort(eog_ids_.begin(), eog_ids_.end());
  eog_ids_.erase(std::unique(eog_ids_.begin(), eog_ids_.end()), eog_ids_.end());
  return Status::Ok();
}

int32_t Tokenizer::MatchAddedToken(std::string_view text, size_t pos, bool parse_special) const {
  for (int32_t id : added_by_first_byte_[static_cast<uint8_t>(text[pos])]) {
    if (!parse_special && vocab_.types[id] != TokenType::kUserDefined) continue;
    const std::string& token = vocab_.tokens[id];
    if (text.compare(pos, token.size(), token) == 0) return id;
  }
  return -1;
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, const EncodeOptions& options) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (options.add_bos && vocab_.add_bos && vocab_.bos_id >= 0) out.push_back(vocab_.bos_id);
  bool after_special = true;
  size_t fragment_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    const int32_t id = MatchAddedToken(text, pos, options.parse_special);
    if (id < 0) {
      ++pos;
      continue;
    }
    if (fragment_start < pos) {
      model_->EncodeFragment(text.substr(fragment_start, pos - fragment_start), after_special,
                             &out);
    }
    out.push_back(id);
    after_special = true;
    pos += vocab_.tokens[id].size();
    fragment_start = pos;
  }
  if (fragment_start < text.size()) {
    model_->EncodeFragment(text.substr(fragment_start), after_special, &out);
  }
  return out;
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, const DecodeOptions& options) const {
  std::string out;
  bool strip = options.strip_space_prefix && vocab_.kind == VocabKind::kSentencePiece &&
               vocab_.add_space_prefix;
  for (int32_t id : ids) {
    if (IsControl(id) && !options.render_special) continue;
    std::string_view piece = TokenPiece(id);
    if (strip && !piece.empty()) {
      if (!IsControl(id) && piece.front() == ' ') piece.remove_prefix(1);
      strip = false;
    }
    out.append(piece);
  }
  return out;
}

const std::string& Tokenizer::TokenPiece(int32_t id) const {
  CHECK(id >= 0 && id < vocab_.size())
      << "token id " << id << " outside the vocabulary of " << vocab_.size();
  return pieces_[id];
}

bool Tokenizer::IsControl(int32_t id) const {
  const TokenType t = token_type(id);
  return t == TokenType::kControl || t == TokenType::kUnknown;
}

TokenType Tokenizer::token_type(int32_t id) const {
  CHECK(id >= 0 && id < vocab_.size())
      << "token id " << id << " outside the vocabulary of " << vocab_.size();
  return vocab_.types[id];
}

bool Tokenizer::IsEndOfGeneration(int32_t id) const {
  return std::binary_search(eog_ids_.begin(), eog_ids_.end(), id);
}

}  // namespace sluice

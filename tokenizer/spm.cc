// SentencePiece vocabularies (tokenizer.ggml.model = llama: Llama 2, Mistral, Mixtral) encoded by
// libsentencepiece. Debian ships libsentencepiece-dev without sentencepiece_model.pb.h or the
// protobuf headers, so the ModelProto is written here directly in protobuf wire format (a few
// dozen bytes of framing per piece) and handed to LoadFromSerializedProto. The fields written:
//
//   ModelProto      1: repeated SentencePiece pieces   2: TrainerSpec   3: NormalizerSpec
//   SentencePiece   1: piece (string)  2: score (float, fixed32)  3: type (enum, varint)
//   TrainerSpec     3: model_type = 2 (BPE)  35: byte_fallback  40/41/42/43: unk/bos/eos/pad id
//   NormalizerSpec  1: name = "identity"  3: add_dummy_prefix = false
//                   4: remove_extra_whitespaces = false  5: escape_whitespaces = true
//
// BPE with scores: SentencePiece merges, at each step, the adjacent pair whose concatenation is a
// piece with the highest score (leftmost on ties); a character left that is not a piece becomes
// its UTF-8 bytes as <0xNN> tokens (byte fallback). The space prefix (add_space_prefix) is added
// here rather than by SentencePiece's add_dummy_prefix because it depends on where special tokens
// cut the text: every fragment at the start of the input or after a special token gets one, as
// llama.cpp and the Hugging Face "legacy" Llama tokenizer do.
#include <sentencepiece_processor.h>

#include <bit>
#include <cstring>

#include "tokenizer/token_model.h"

namespace sluice {
namespace {

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutTag(uint32_t field, uint32_t wire_type, std::string* out) {
  PutVarint((static_cast<uint64_t>(field) << 3) | wire_type, out);
}

void PutBytesField(uint32_t field, std::string_view bytes, std::string* out) {
  PutTag(field, 2, out);
  PutVarint(bytes.size(), out);
  out->append(bytes);
}

void PutVarintField(uint32_t field, uint64_t v, std::string* out) {
  PutTag(field, 0, out);
  PutVarint(v, out);
}

void PutInt32Field(uint32_t field, int32_t v, std::string* out) {
  // proto2 int32: negative values are sign-extended to 64 bits.
  PutVarintField(field, static_cast<uint64_t>(static_cast<int64_t>(v)), out);
}

// Protobuf fixed32 is little-endian; the memcpy below relies on the host being so too.
static_assert(std::endian::native == std::endian::little, "big-endian hosts need a byte swap");

void PutFloatField(uint32_t field, float v, std::string* out) {
  PutTag(field, 5, out);
  char bytes[4];
  std::memcpy(bytes, &v, 4);
  out->append(bytes, 4);
}

std::string SerializeModel(const Vocab& vocab) {
  std::string model;
  model.reserve(vocab.tokens.size() * 24);
  std::string piece;
  for (int32_t id = 0; id < vocab.size(); ++id) {
    piece.clear();
    PutBytesField(1, vocab.tokens[id], &piece);
    PutFloatField(2, vocab.scores[id], &piece);
    // GGUF's token types are SentencePiece's; "undefined" becomes normal. The unknown token is
    // SentencePiece's UNKNOWN piece whatever type the file gives it (Phi-3's vocabulary marks
    // <unk> as a control token; llama.cpp takes the id from unknown_token_id alone), and no
    // other piece may claim that type.
    auto type = vocab.types[id] == TokenType::kUndefined ? TokenType::kNormal : vocab.types[id];
    if (id == vocab.unk_id) {
      type = TokenType::kUnknown;
    } else if (type == TokenType::kUnknown) {
      type = TokenType::kControl;
    }
    PutVarintField(3, static_cast<uint64_t>(type), &piece);
    PutBytesField(1, piece, &model);
  }
  bool has_byte_pieces = false;
  for (TokenType t : vocab.types) has_byte_pieces |= t == TokenType::kByte;
  std::string trainer;
  PutVarintField(3, 2, &trainer);  // model_type = BPE
  PutVarintField(35, has_byte_pieces ? 1 : 0, &trainer);
  PutInt32Field(40, vocab.unk_id, &trainer);
  PutInt32Field(41, vocab.bos_id, &trainer);
  PutInt32Field(42, vocab.eos_id, &trainer);
  PutInt32Field(43, vocab.pad_id, &trainer);
  PutBytesField(2, trainer, &model);
  std::string normalizer;
  PutBytesField(1, "identity", &normalizer);
  PutVarintField(3, 0, &normalizer);  // add_dummy_prefix: done in EncodeFragment
  PutVarintField(4, 0, &normalizer);  // remove_extra_whitespaces
  PutVarintField(5, 1, &normalizer);  // escape_whitespaces: ' ' -> U+2581
  PutBytesField(3, normalizer, &model);
  return model;
}

// "<0x0A>" -> 0x0A; -1 when `text` is not of that form.
int ParseByteToken(std::string_view text) {
  if (text.size() != 6 || text.substr(0, 3) != "<0x" || text[5] != '>') return -1;
  int value = 0;
  for (char c : text.substr(3, 2)) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      digit = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return -1;
    }
    value = value * 16 + digit;
  }
  return value;
}

class SentencePieceModel : public TokenModel {
 public:
  explicit SentencePieceModel(const Vocab& vocab) : vocab_(vocab) {}

  Status Init() {
    if (vocab_.unk_id < 0 || vocab_.unk_id >= vocab_.size()) {
      return Corrupt(vocab_.source,
                     ": a SentencePiece vocabulary needs an unknown token "
                     "(tokenizer.ggml.unknown_token_id within the vocabulary); found id ",
                     vocab_.unk_id, " of ", vocab_.size());
    }
    for (int32_t id = 0; id < vocab_.size(); ++id) {
      if (vocab_.types[id] == TokenType::kByte && ParseByteToken(vocab_.tokens[id]) < 0) {
        return Corrupt(vocab_.source, ": token ", id, " '", vocab_.tokens[id],
                       "' has type BYTE but is not of the form <0xNN>");
      }
    }
    const sentencepiece::util::Status status =
        processor_.LoadFromSerializedProto(SerializeModel(vocab_));
    if (!status.ok()) {
      return Corrupt(vocab_.source,
                     ": libsentencepiece rejected the vocabulary built from "
                     "tokenizer.ggml.tokens/scores/token_type: ",
                     status.ToString());
    }
    return Status::Ok();
  }

  void EncodeFragment(std::string_view text, bool after_special,
                      std::vector<int32_t>* out) const override {
    std::string input;
    if (vocab_.add_space_prefix && after_special) input.push_back(' ');
    input.append(text);
    std::vector<int> ids;
    const sentencepiece::util::Status status = processor_.Encode(input, &ids);
    // Encode fails only on an unloaded model, which Init() rules out.
    CHECK(status.ok()) << status.ToString();
    out->insert(out->end(), ids.begin(), ids.end());
  }

  std::string PieceBytes(int32_t id) const override {
    const std::string& text = vocab_.tokens[id];
    if (vocab_.types[id] == TokenType::kByte) {
      return std::string(1, static_cast<char>(ParseByteToken(text)));
    }
    static constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581 ▁
    std::string bytes;
    for (size_t i = 0; i < text.size();) {
      if (std::string_view(text).substr(i, 3) == kSpaceMark) {
        bytes.push_back(' ');
        i += 3;
      } else {
        bytes.push_back(text[i++]);
      }
    }
    return bytes;
  }

 private:
  const Vocab& vocab_;
  sentencepiece::SentencePieceProcessor processor_;
};

}  // namespace

Result<std::unique_ptr<TokenModel>> CreateSentencePieceModel(const Vocab& vocab) {
  auto model = std::make_unique<SentencePieceModel>(vocab);
  RETURN_IF_ERROR(model->Init());
  return std::unique_ptr<TokenModel>(std::move(model));
}

}  // namespace sluice

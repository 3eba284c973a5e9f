#include "tokenizer/stream_decoder.h"

#include "tokenizer/unicode.h"

namespace sluice {

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, StreamDecoderOptions options)
    : tokenizer_(tokenizer), options_(options) {}

std::string StreamDecoder::Push(int32_t id) {
  const bool control = tokenizer_.IsControl(id);
  if (control && !options_.render_special) return "";
  std::string_view piece = tokenizer_.TokenPiece(id);
  if (piece.empty()) return "";
  if (at_start_) {
    if (!control && options_.strip_space_prefix && tokenizer_.kind() == VocabKind::kSentencePiece &&
        tokenizer_.vocab().add_space_prefix && piece.front() == ' ') {
      piece.remove_prefix(1);
    }
    at_start_ = false;
  }
  std::string out;
  if (control) {
    // A rendered control token ends any unfinished character: it can never be completed now.
    AppendSanitizedUtf8(pending_, /*at_end=*/true, &out);
    pending_.clear();
    out.append(piece);
    return out;
  }
  pending_.append(piece);
  const size_t consumed = AppendSanitizedUtf8(pending_, /*at_end=*/false, &out);
  pending_.erase(0, consumed);
  return out;
}

std::string StreamDecoder::Flush() {
  std::string out;
  AppendSanitizedUtf8(pending_, /*at_end=*/true, &out);
  Reset();
  return out;
}

void StreamDecoder::Reset() {
  pending_.clear();
  at_start_ = true;
}

}  // namespace sluice

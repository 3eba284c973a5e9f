#include "tokenizer/vocab.h"

#include "core/base/log.h"

namespace sluice {
namespace {

constexpr std::string_view kModelKey = "tokenizer.ggml.model";
constexpr std::string_view kPreKey = "tokenizer.ggml.pre";
constexpr std::string_view kTokensKey = "tokenizer.ggml.tokens";
constexpr std::string_view kScoresKey = "tokenizer.ggml.scores";
constexpr std::string_view kTypesKey = "tokenizer.ggml.token_type";
constexpr std::string_view kMergesKey = "tokenizer.ggml.merges";

// Reads an optional token id key; keeps `*id` when absent.
Status ReadId(const Metadata& meta, std::string_view key, int32_t n_vocab, int32_t* id) {
  const MetaValue* v = meta.Find(key);
  if (v == nullptr) return Status::Ok();
  Result<int64_t> value = meta.GetInt(key);
  if (!value.ok()) return value.status();
  // Some converters write -1 (as i32) or 0xFFFFFFFF (as u32) for "none".
  if (*value == -1 || *value == 0xFFFFFFFFll) {
    *id = -1;
    return Status::Ok();
  }
  if (*value < 0 || *value >= n_vocab) {
    return Corrupt(meta.source(), ": ", key, " = ", *value, " is out of range (the vocabulary has ",
                   n_vocab, " tokens)");
  }
  *id = static_cast<int32_t>(*value);
  return Status::Ok();
}

bool IsLlama3Pre(std::string_view pre) {
  return pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3";
}

}  // namespace

int32_t Vocab::Find(std::string_view text) const {
  auto it = ids.find(std::string(text));
  return it == ids.end() ? -1 : it->second;
}

Result<Vocab> LoadVocab(const Metadata& meta) {
  Vocab vocab;
  vocab.source = meta.source();
  if (!meta.Has(kModelKey)) {
    return NotFound(meta.source(), ": no ", kModelKey, " key: the file carries no tokenizer");
  }
  ASSIGN_OR_RETURN(vocab.model_name, meta.GetString(kModelKey));
  if (vocab.model_name == "gpt2") {
    vocab.kind = VocabKind::kBpe;
  } else if (vocab.model_name == "llama") {
    vocab.kind = VocabKind::kSentencePiece;
  } else {
    return Unsupported(meta.source(), ": ", kModelKey, " '", vocab.model_name,
                       "' is not supported (supported: gpt2 = byte-level BPE, llama = "
                       "SentencePiece)");
  }
  ASSIGN_OR_RETURN(vocab.pre, meta.GetStringOr(kPreKey, "default"));
  ASSIGN_OR_RETURN(vocab.tokens, meta.GetStringArray(kTokensKey));
  if (vocab.tokens.empty() || vocab.tokens.size() > (1u << 30)) {
    return Corrupt(meta.source(), ": ", kTokensKey, " has ", vocab.tokens.size(),
                   " entries, expected 1 .. 2^30");
  }
  const int32_t n_vocab = vocab.size();

  if (meta.Has(kScoresKey)) {
    ASSIGN_OR_RETURN(std::vector<double> scores, meta.GetFloatArray(kScoresKey));
    if (scores.size() != vocab.tokens.size()) {
      return Corrupt(meta.source(), ": ", kScoresKey, " has ", scores.size(), " entries, expected ",
                     n_vocab, " (one per token)");
    }
    vocab.scores.assign(scores.begin(), scores.end());
  } else if (vocab.kind == VocabKind::kSentencePiece) {
    return NotFound(meta.source(), ": a SentencePiece vocabulary needs ", kScoresKey);
  }

  vocab.types.assign(vocab.tokens.size(), TokenType::kNormal);
  if (meta.Has(kTypesKey)) {
    ASSIGN_OR_RETURN(std::vector<int64_t> types, meta.GetIntArray(kTypesKey));
    if (types.size() != vocab.tokens.size()) {
      return Corrupt(meta.source(), ": ", kTypesKey, " has ", types.size(), " entries, expected ",
                     n_vocab, " (one per token)");
    }
    for (size_t i = 0; i < types.size(); ++i) {
      if (types[i] < 0 || types[i] > 6) {
        return Corrupt(meta.source(), ": ", kTypesKey, "[", i, "] = ", types[i],
                       " is not a token type (0..6)");
      }
      vocab.types[i] = static_cast<TokenType>(types[i]);
    }
  }

  if (vocab.kind == VocabKind::kBpe) {
    if (!meta.Has(kMergesKey)) {
      return NotFound(meta.source(), ": a byte-level BPE vocabulary needs ", kMergesKey);
    }
    ASSIGN_OR_RETURN(vocab.merges, meta.GetStringArray(kMergesKey));
  }

  vocab.ids.reserve(vocab.tokens.size());
  for (int32_t id = 0; id < n_vocab; ++id) vocab.ids.emplace(vocab.tokens[id], id);

  const bool spm = vocab.kind == VocabKind::kSentencePiece;
  if (spm) {
    vocab.unk_id = 0;
    vocab.bos_id = 1;
    vocab.eos_id = 2;
  }
  RETURN_IF_ERROR(ReadId(meta, "tokenizer.ggml.bos_token_id", n_vocab, &vocab.bos_id));
  RETURN_IF_ERROR(ReadId(meta, "tokenizer.ggml.eos_token_id", n_vocab, &vocab.eos_id));
  RETURN_IF_ERROR(ReadId(meta, "tokenizer.ggml.eot_token_id", n_vocab, &vocab.eot_id));
  RETURN_IF_ERROR(ReadId(meta, "tokenizer.ggml.eom_token_id", n_vocab, &vocab.eom_id));
  RETURN_IF_ERROR(ReadId(meta, "tokenizer.ggml.unknown_token_id", n_vocab, &vocab.unk_id));
  RETURN_IF_ERROR(ReadId(meta, "tokenizer.ggml.padding_token_id", n_vocab, &vocab.pad_id));
  // The SentencePiece defaults only hold when the vocabulary is that small.
  for (int32_t* id : {&vocab.unk_id, &vocab.bos_id, &vocab.eos_id}) {
    if (*id >= n_vocab) *id = -1;
  }

  ASSIGN_OR_RETURN(vocab.add_bos,
                   meta.GetBoolOr("tokenizer.ggml.add_bos_token", spm || IsLlama3Pre(vocab.pre)));
  ASSIGN_OR_RETURN(vocab.add_space_prefix, meta.GetBoolOr("tokenizer.ggml.add_space_prefix", spm));
  if (vocab.add_bos && vocab.bos_id < 0) {
    // Seen in hand-made conversions; encoding without BOS is the only possible reading.
    LOG(WARNING) << meta.source() << ": tokenizer.ggml.add_bos_token is set but there is no "
                 << "tokenizer.ggml.bos_token_id; no BOS will be added";
    vocab.add_bos = false;
  }
  return vocab;
}

}  // namespace sluice

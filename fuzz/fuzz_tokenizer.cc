// The tokenizers on arbitrary bytes: byte-level BPE (each pre-tokenizer) and SentencePiece, with
// the hand-built vocabularies of the unit tests. Byte-level BPE is lossless: Decode(Encode(x))
// must give x back for any bytes, which the target checks (a violation aborts).
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <filesystem>

#include "io/model_open.h"
#include "tests/tokenizer/test_vocab.h"
#include "tokenizer/tokenizer.h"

namespace {

using sluice::Tokenizer;

std::vector<std::unique_ptr<Tokenizer>> MakeBpeTokenizers() {
  std::vector<std::unique_ptr<Tokenizer>> out;
  for (const char* pre : {"gpt2", "qwen2", "qwen35", "llama-bpe", "deepseek-llm", "deepseek-coder",
                          "deepseek-v3", "gpt-4o"}) {
    sluice::testing_vocab::BpeSpec spec;
    spec.pre = pre;
    spec.merges = {"Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "1 2"};
    spec.control = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
    auto t = Tokenizer::FromMetadata(sluice::testing_vocab::MakeBpeMetadata(spec));
    if (!t.ok()) std::abort();
    out.push_back(std::move(*t));
  }
  return out;
}

// The real vocabularies of ../shared/refdata/vocab when they are there (BPE of several
// pre-tokenizers, SentencePiece): arbitrary bytes must not crash them either.
std::vector<std::unique_ptr<Tokenizer>> LoadRefdataVocabularies() {
  std::vector<std::unique_ptr<Tokenizer>> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(SLUICE_FUZZ_VOCAB_DIR, ec)) {
    if (e.path().extension() != ".gguf") continue;
    auto file = sluice::OpenModelFile(e.path().string());
    if (!file.ok()) std::abort();  // the reference files are valid
    auto t = Tokenizer::FromMetadata((*file)->metadata());
    if (!t.ok()) std::abort();
    out.push_back(std::move(*t));
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<std::unique_ptr<Tokenizer>> bpe = MakeBpeTokenizers();
  static const std::vector<std::unique_ptr<Tokenizer>> refdata = LoadRefdataVocabularies();
  const std::string text(reinterpret_cast<const char*>(data), size);
  const Tokenizer& t = *bpe[size % bpe.size()];
  const std::vector<int32_t> ids = t.Encode(text);
  if (t.Decode(ids) != text) std::abort();  // byte-level BPE loses nothing
  sluice::EncodeOptions special;
  special.parse_special = true;
  (void)t.Encode(text, special);
  if (!refdata.empty()) {
    const Tokenizer& r = *refdata[(size / 7) % refdata.size()];
    (void)r.Decode(r.Encode(text, special));
  }
  return 0;
}

// `sluice tokenize -m MODEL (-p TEXT | -f FILE) [--special] [--decode]`: the model's tokenizer on
// the command line, for checking prompts and comparing with other implementations.
//   encode: prints the ids on one line, separated by spaces (no BOS; special-token text such as
//           "<|im_start|>" stays plain text unless --special);
//   decode: reads ids (separated by spaces, commas or newlines) and prints their text exactly,
//           control tokens only with --special.
// The vocabulary comes from the model's metadata, GGUF or archive alike (io/model_open.h).
#include <gflags/gflags.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/base/log.h"
#include "io/model_open.h"
#include "tokenizer/tokenizer.h"

DEFINE_bool(special, false,
            "tokenize: turn special-token text (<|im_start|>, <s>) into those tokens; with "
            "--decode, print control tokens' text.");
DEFINE_bool(decode, false,
            "tokenize: the input is token ids (\"1 2 3\"); print the text they decode to.");
DECLARE_string(model);
DECLARE_string(prompt);
DECLARE_string(file);

namespace sluice::cli {
namespace {

bool FlagGiven(const char* name) {
  gflags::CommandLineFlagInfo info;
  return gflags::GetCommandLineFlagInfo(name, &info) && !info.is_default;
}

Result<std::string> ReadInput() {
  if (FlagGiven("prompt") == FlagGiven("file")) {
    return InvalidArgument("tokenize needs exactly one of -p TEXT and -f FILE");
  }
  if (FlagGiven("prompt")) return FLAGS_prompt;
  if (FLAGS_file == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), {});
  }
  std::ifstream in(FLAGS_file, std::ios::binary);
  if (!in) return IoError(FLAGS_file, ": cannot open: ", ErrnoString(errno));
  std::string text((std::istreambuf_iterator<char>(in)), {});
  if (in.bad()) return IoError(FLAGS_file, ": read failed: ", ErrnoString(errno));
  return text;
}

// "1 2, 3\n4" -> {1, 2, 3, 4}; every id must be in the vocabulary.
Result<std::vector<int32_t>> ParseIds(const std::string& text, int32_t vocab_size) {
  std::string spaced = text;
  for (char& c : spaced) {
    if (c == ',') c = ' ';
  }
  std::istringstream in(spaced);
  std::vector<int32_t> ids;
  for (std::string word; in >> word;) {
    char* end = nullptr;
    errno = 0;
    const long long value = std::strtoll(word.c_str(), &end, 10);
    if (end == word.c_str() || *end != '\0' || errno == ERANGE) {
      return InvalidArgument("--decode: '", word, "' is not a token id");
    }
    if (value < 0 || value >= vocab_size) {
      return InvalidArgument("--decode: token id ", value, " is outside the vocabulary (",
                             vocab_size, " tokens: 0 .. ", vocab_size - 1, ")");
    }
    ids.push_back(static_cast<int32_t>(value));
  }
  return ids;
}

int RunTokenize(const std::vector<std::string>& args) {
  if (!args.empty()) {
    return Fail("tokenize takes no positional arguments (got '" + args[0] +
                "'); give the text with -p TEXT or -f FILE");
  }
  if (FLAGS_model.empty()) return Fail("tokenize needs -m MODEL (a GGUF or a .sluice archive)");
  Result<std::string> input = ReadInput();
  if (!input.ok()) return Fail(input.status().ToString());
  Result<std::unique_ptr<ModelFile>> model = OpenModelFile(FLAGS_model);
  if (!model.ok()) return Fail(model.status().ToString());
  Result<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromMetadata((*model)->metadata());
  if (!tokenizer.ok()) return Fail(tokenizer.status().ToString());
  const Tokenizer& tok = **tokenizer;
  LOG(DEBUG) << FLAGS_model << ": " << tok.vocab_size() << " tokens, "
             << (tok.kind() == VocabKind::kBpe ? "byte-level BPE, pre-tokenizer "
                                               : "SentencePiece, pre ")
             << tok.pre_tokenizer();

  if (FLAGS_decode) {
    Result<std::vector<int32_t>> ids = ParseIds(*input, tok.vocab_size());
    if (!ids.ok()) return Fail(ids.status().ToString());
    const std::string text = tok.Decode(*ids, {.render_special = FLAGS_special});
    std::fwrite(text.data(), 1, text.size(), stdout);
    // Exact bytes in pipes; at a terminal, end the line so the shell prompt starts on its own.
    if (isatty(STDOUT_FILENO) && (text.empty() || text.back() != '\n')) std::fputc('\n', stdout);
    return std::fflush(stdout) == 0 ? 0 : Fail("writing stdout: " + ErrnoString(errno));
  }

  const std::vector<int32_t> ids = tok.Encode(*input, {.parse_special = FLAGS_special});
  std::string line;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) line.push_back(' ');
    line += std::to_string(ids[i]);
  }
  line.push_back('\n');
  std::fwrite(line.data(), 1, line.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : Fail("writing stdout: " + ErrnoString(errno));
}

const CommandRegistration kTokenize({
    .name = "tokenize",
    .summary = "turn text into the model's token ids, or ids back into text",
    .usage = "sluice tokenize -m MODEL (-p TEXT | -f FILE) [--special] [--decode]",
    .description =
        "Encodes the text with the model's own tokenizer (read from the GGUF or archive\n"
        "metadata) and prints the ids on one line separated by spaces, without BOS. Special-\n"
        "token text such as <|im_start|> is tokenized as plain characters unless --special.\n"
        "With --decode the input is ids (spaces, commas or newlines between them) and the\n"
        "output is their text, byte for byte; control tokens print only with --special.",
    .flags = {"model", "prompt", "file", "special", "decode"},
    .run = RunTokenize,
});

}  // namespace
}  // namespace sluice::cli

// The command registry of the `sluice` binary. Each command lives in one cli/cmd_*.cc file and
// registers itself with a static CommandRegistration; main.cc dispatches on argv[1].
//
//   static int RunInspect(const std::vector<std::string>& args);
//   static const CommandRegistration kInspect({
//       .name = "inspect",
//       .summary = "print an archive's header, config, tensor table and sizes",
//       .usage = "sluice inspect FILE",
//       .description = "...",
//       .flags = {"json"},
//       .run = RunInspect,
//   });
//
// Flags are gflags, defined in cli/ only. `sluice CMD --help` prints usage, description and the
// listed flags with their help text and defaults, so listing every flag a command reads is what
// keeps its --help complete.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace sluice::cli {

struct Command {
  const char* name = "";
  const char* summary = "";        // one line for `sluice --help`
  const char* usage = "";          // synopsis line(s)
  const char* description = "";    // paragraphs; may be empty
  std::vector<const char*> flags;  // gflags names this command reads
  // Short options of this command that differ from the common ones (main.cc): {"-n",
  // "--negative_prompt"} for diffuse, as stable-diffusion.cpp spells them.
  std::vector<std::pair<const char*, const char*>> short_flags = {};
  // Positional arguments (flags already parsed and removed). Returns the exit code.
  int (*run)(const std::vector<std::string>& args) = nullptr;
};

struct CommandRegistration {
  explicit CommandRegistration(Command command);
};

const std::vector<Command>& AllCommands();

// Prints "sluice: error: <message>" to stderr and returns 1: the one way commands fail.
int Fail(const std::string& message);

}  // namespace sluice::cli

// sluice: run mixture-of-experts models larger than RAM by streaming experts from storage.
// Dispatches `sluice COMMAND [flags] [args]` to the registered commands (cli/command.h).
#include <gflags/gflags.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/base/log.h"
#include "core/base/progress.h"

DECLARE_bool(quiet);
DECLARE_bool(verbose);

namespace sluice::cli {
namespace {

std::vector<Command>& Registry() {
  static std::vector<Command> commands;
  return commands;
}

// Short options users know from llama.cpp, mapped onto our long gflags names.
const std::map<std::string, std::string>& ShortFlags() {
  static const std::map<std::string, std::string> m = {
      {"-m", "--model"}, {"-p", "--prompt"},  {"-n", "--n_predict"},
      {"-f", "--file"},  {"-t", "--threads"}, {"-o", "--out"},
      {"-s", "--seed"},  {"-h", "--help"},    {"-c", "--ctx"},
  };
  return m;
}

// gflags names use underscores; users type dashes (--io-only, --record-trace). Normalise the name
// part of every --flag[=value] and expand the short options.
std::vector<std::string> NormaliseArgs(int argc, char** argv) {
  std::vector<std::string> out;
  bool after_double_dash = false;
  bool is_value = false;  // the previous argument was a non-boolean flag without "="
  // Whether normalised `flag` (--name, no "=") takes the next argument as its value.
  auto takes_value = [](const std::string& flag) {
    gflags::CommandLineFlagInfo info;
    return flag.size() > 2 && flag.find('=') == std::string::npos &&
           gflags::GetCommandLineFlagInfo(flag.substr(2).c_str(), &info) && info.type != "bool";
  };
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (i == 0 || after_double_dash || is_value) {  // a value is kept as typed: -p "--x-y"
      is_value = false;
      out.push_back(arg);
      continue;
    }
    if (arg == "--") {
      after_double_dash = true;
      out.push_back(arg);
      continue;
    }
    auto short_it = ShortFlags().find(arg);
    if (short_it != ShortFlags().end()) {
      out.push_back(short_it->second);
      is_value = takes_value(short_it->second);
      continue;
    }
    if (arg.size() > 2 && arg[0] == '-' && arg != "-") {
      size_t start = arg[1] == '-' ? 2 : 1;
      size_t end = arg.find('=');
      if (end == std::string::npos) end = arg.size();
      for (size_t k = start; k < end; ++k) {
        if (arg[k] == '-') arg[k] = '_';
      }
      if (start == 1) arg = "-" + arg;  // -foo -> --foo
      is_value = takes_value(arg);
    }
    out.push_back(arg);
  }
  return out;
}

// The first --flag in `args` (normalised) that no command defines, as the user wrote it (dashes),
// or "". gflags would reject it too, but with its own message and no hint. A non-boolean flag
// without "=" takes the next argument as its value, which is skipped ("-p --not-a-flag").
std::string FirstUnknownFlag(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.size() < 3 || a[0] != '-' || a[1] != '-') continue;  // positional, "-", "--"
    const size_t eq = a.find('=');
    const std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    gflags::CommandLineFlagInfo info;
    bool known = gflags::GetCommandLineFlagInfo(name.c_str(), &info);
    if (!known && name.starts_with("no")) {  // --noflag negates a boolean
      known = gflags::GetCommandLineFlagInfo(name.substr(2).c_str(), &info) && info.type == "bool";
      if (known && eq == std::string::npos) continue;
    }
    if (!known) {
      std::string dashed = name;
      std::replace(dashed.begin(), dashed.end(), '_', '-');
      return "--" + dashed;
    }
    if (eq == std::string::npos && info.type != "bool") ++i;  // its value
  }
  return "";
}

void PrintTopLevelHelp() {
  std::printf(
      "sluice: chat with mixture-of-experts models larger than RAM, streaming the experts\n"
      "from storage into a fixed-size cache.\n\n"
      "usage: sluice COMMAND [flags] [args]\n\ncommands:\n");
  std::vector<Command> commands = Registry();
  std::sort(commands.begin(), commands.end(),
            [](const Command& a, const Command& b) { return std::strcmp(a.name, b.name) < 0; });
  for (const Command& c : commands) std::printf("  %-10s %s\n", c.name, c.summary);
  std::printf(
      "\n`sluice COMMAND --help` lists a command's flags. With no -m, chat, run and bench use the\n"
      "synthetic demo model (random weights).\n");
}

void PrintCommandHelp(const Command& c) {
  std::printf("usage: %s\n\n%s\n", c.usage, c.summary);
  if (std::strlen(c.description) > 0) std::printf("\n%s\n", c.description);
  std::printf("\nflags:\n");
  std::vector<const char*> flags = c.flags;
  flags.push_back("quiet");
  flags.push_back("verbose");
  for (const char* name : flags) {
    gflags::CommandLineFlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(name, &info)) {
      std::printf("  --%s (undefined flag: a bug in sluice)\n", name);
      continue;
    }
    std::string dashed = info.name;
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    std::string def = info.default_value;
    if (info.type == "string") {
      def = "\"" + def + "\"";
    } else if (info.type == "double") {
      char buf[64];  // gflags prints doubles with 17 digits (0.80000000000000004)
      std::snprintf(buf, sizeof(buf), "%g", std::strtod(def.c_str(), nullptr));
      def = buf;
    }
    std::printf("  --%s (%s, default %s)\n      %s\n", dashed.c_str(), info.type.c_str(),
                def.c_str(), info.description.c_str());
  }
}

}  // namespace

CommandRegistration::CommandRegistration(Command command) { Registry().push_back(command); }

const std::vector<Command>& AllCommands() { return Registry(); }

int Fail(const std::string& message) {
  std::fprintf(stderr, "sluice: error: %s\n", message.c_str());
  return 1;
}

}  // namespace sluice::cli

int main(int argc, char** argv) {
  using namespace sluice::cli;
  gflags::SetUsageMessage("sluice COMMAND [flags] [args]; see `sluice --help`");
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    PrintTopLevelHelp();
    return argc < 2 ? 1 : 0;
  }
  const Command* command = nullptr;
  for (const Command& c : AllCommands()) {
    if (std::strcmp(c.name, argv[1]) == 0) command = &c;
  }
  if (command == nullptr) {
    return Fail(std::string("unknown command '") + argv[1] + "' (see `sluice --help`)");
  }
  std::vector<std::string> args = NormaliseArgs(argc - 1, argv + 1);
  for (const std::string& a : args) {
    if (a == "--help" || a == "--helpfull" || a == "--helpshort") {
      PrintCommandHelp(*command);
      return 0;
    }
  }
  if (std::string unknown = FirstUnknownFlag(args); !unknown.empty()) {
    return Fail("unknown flag '" + unknown + "' for `sluice " + command->name + "` (see `sluice " +
                command->name + " --help`)");
  }
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(a.data());
  int cargc = static_cast<int>(cargs.size());
  char** cargv = cargs.data();
  // NonHelp: gflags' own --help would list every flag of every command.
  gflags::ParseCommandLineNonHelpFlags(&cargc, &cargv, /*remove_flags=*/true);
  if (FLAGS_quiet) {
    sluice::SetLogLevel(sluice::LogLevel::kWarning);
    sluice::Progress::SetEnabled(false);
  }
  if (FLAGS_verbose) sluice::SetLogLevel(sluice::LogLevel::kDebug);
  std::vector<std::string> positional(cargv + 1, cargv + cargc);
  for (const std::string& p : positional) {
    if (p.size() > 1 && p[0] == '-' && p != "--") {
      return Fail("unknown option '" + p + "' for `sluice " + command->name + "` (see `sluice " +
                  command->name + " --help`)");
    }
  }
  return command->run(positional);
}

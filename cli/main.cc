// sluice: run mixture-of-experts models larger than RAM by streaming experts from storage.
// Dispatches `sluice COMMAND [flags] [args]` to the registered commands (cli/command.h).
#include <gflags/gflags.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/base/log.h"
#include "core/base/mapped_files.h"
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
std::vector<std::string> NormaliseArgs(int argc, char** argv, const Command* command) {
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
    if (command != nullptr) {
      bool mapped = false;
      for (const auto& [from, to] : command->short_flags) {
        if (arg == from) {
          out.push_back(to);
          is_value = takes_value(to);
          mapped = true;
        }
      }
      if (mapped) continue;
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

// Flags of llama.cpp and ollama that users type out of habit: the sluice flag that does the job,
// or why there is none.
const std::map<std::string, std::string>& HabitFlags() {
  static const std::map<std::string, std::string> m = {
      {"ctx_size", "did you mean --ctx (-c)?"},
      {"batch_size", "did you mean --batch?"},
      {"ubatch_size", "did you mean --batch?"},
      {"system_prompt", "did you mean --system?"},
      {"n_gpu_layers",
       "sluice computes on the CPU and streams the experts from storage: there are "
       "no GPU layers to set"},
      {"ngl",
       "sluice computes on the CPU and streams the experts from storage: there are no GPU "
       "layers to set"},
      {"stop",
       "stop strings are not supported yet; replies stop at the model's end-of-turn "
       "tokens or -n"},
      {"temperature", "did you mean --temp?"},
      {"n_threads", "did you mean --threads (-t)?"},
      {"predict", "did you mean --n-predict (-n)?"},
  };
  return m;
}

// The value of every numeric flag, checked with sluice's words before gflags sees it (gflags
// says "illegal value '1.5' specified for int32 flag 'n_predict'" and exits).
std::string CheckNumericValue(const std::string& flag, const std::string& type,
                              const std::string& value) {
  const std::string shown = flag == "n_predict" ? "-n" : "--" + flag;
  errno = 0;
  char* end = nullptr;
  if (type == "int32" || type == "int64") {
    const long long v = std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || errno == ERANGE ||
        (type == "int32" && (v < INT32_MIN || v > INT32_MAX))) {
      return shown + " expects a whole number, got '" + value + "'";
    }
  } else if (type == "uint64" || type == "uint32") {
    if (value.empty() || value[0] == '-') {
      return shown + " expects a non-negative whole number, got '" + value + "'";
    }
    std::strtoull(value.c_str(), &end, 10);
    if (*end != '\0' || errno == ERANGE) {
      return shown + " expects a non-negative whole number, got '" + value + "'";
    }
  } else if (type == "double") {
    std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || errno == ERANGE) {
      return shown + " expects a number, got '" + value + "'";
    }
  }
  return "";
}

// Every --flag in `args` must be one `command` reads (a flag of another command used to be
// accepted and silently ignored: `run --json`), with a value of the right kind. Returns the
// error, or "".
std::string CheckFlags(const Command& command, const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (a.size() < 3 || a[0] != '-' || a[1] != '-') continue;
    const size_t eq = a.find('=');
    std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    gflags::CommandLineFlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(name.c_str(), &info) && name.starts_with("no")) {
      name = name.substr(2);  // --noflag negates a boolean (checked by FirstUnknownFlag)
    }
    if (!gflags::GetCommandLineFlagInfo(name.c_str(), &info)) continue;
    bool used = name == "quiet" || name == "verbose";
    for (const char* f : command.flags) used = used || name == f;
    std::string dashed = name;
    std::replace(dashed.begin(), dashed.end(), '_', '-');
    if (!used) {
      std::string users;
      for (const Command& c : AllCommands()) {
        for (const char* f : c.flags) {
          if (name == f) users += std::string(users.empty() ? "" : ", ") + c.name;
        }
      }
      return "--" + dashed + " is not a flag of `sluice " + command.name + "`" +
             (users.empty() ? std::string() : " (it is one of: " + users + ")") + "; see `sluice " +
             command.name + " --help`";
    }
    if (info.type == "bool") continue;
    std::string value;
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return "--" + dashed + " needs a value";
    }
    if (std::string e = CheckNumericValue(name, info.type, value); !e.empty()) return e;
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
      "\n`sluice COMMAND --help` (or `sluice help COMMAND`) lists a command's flags. With no -m,\n"
      "chat, run and bench use the synthetic demo model (random weights). `sluice --version`.\n"
      "Short flags: -m --model, -p --prompt, -n --n-predict, -f --file, -t --threads, -o --out,\n"
      "-s --seed, -c --ctx, -h --help.\n");
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
  sluice::InstallMappedFileFaultHandler();
  if (argc >= 2 &&
      (std::strcmp(argv[1], "--version") == 0 || std::strcmp(argv[1], "version") == 0)) {
    std::printf("sluice %s\n", SLUICE_VERSION);
    return 0;
  }
  if (argc == 3 && std::strcmp(argv[1], "help") == 0) {  // `sluice help CMD`
    for (const Command& c : AllCommands()) {
      if (std::strcmp(c.name, argv[2]) == 0) {
        PrintCommandHelp(c);
        return 0;
      }
    }
    return Fail(std::string("unknown command '") + argv[2] + "' (see `sluice --help`)");
  }
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
  std::vector<std::string> args = NormaliseArgs(argc - 1, argv + 1, command);
  for (const std::string& a : args) {
    if (a == "--help" || a == "--helpfull" || a == "--helpshort") {
      PrintCommandHelp(*command);
      return 0;
    }
  }
  if (std::string unknown = FirstUnknownFlag(args); !unknown.empty()) {
    std::string name = unknown.substr(2);
    std::replace(name.begin(), name.end(), '-', '_');
    auto habit = HabitFlags().find(name);
    return Fail("unknown flag '" + unknown + "' for `sluice " + command->name + "`" +
                (habit != HabitFlags().end() ? ": " + habit->second : std::string()) +
                " (see `sluice " + command->name + " --help`)");
  }
  if (std::string error = CheckFlags(*command, args); !error.empty()) return Fail(error);
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
  for (const char* path_flag : {"model", "out"}) {
    gflags::CommandLineFlagInfo info;
    if (gflags::GetCommandLineFlagInfo(path_flag, &info) && !info.is_default &&
        info.current_value.empty()) {
      // An explicit empty path is a mistake (`-m "$MODEL"` with MODEL unset), not a request for
      // the default: `-m ''` used to fall back to the demo model and write 456 MiB.
      return Fail(std::string("--") + path_flag + " was given an empty path");
    }
  }
  std::vector<std::string> positional(cargv + 1, cargv + cargc);
  for (const std::string& p : positional) {
    if (p.size() > 1 && p[0] == '-' && p != "--") {
      return Fail("unknown option '" + p + "' for `sluice " + command->name + "` (see `sluice " +
                  command->name + " --help`)");
    }
  }
  return command->run(positional);
}

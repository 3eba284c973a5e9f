#include "cli/self_exec.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

namespace sluice::cli {

Result<int> RunSelf(const std::vector<std::string>& args) {
  std::vector<std::string> owned = {"/proc/self/exe"};
  owned.insert(owned.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : owned) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return IoError("fork for `", CommandLine(args), "`: ", ErrnoString(errno));
  if (pid == 0) {
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      return IoError("waiting for `", CommandLine(args), "`: ", ErrnoString(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

std::string CommandLine(const std::vector<std::string>& args) {
  std::string line = "sluice";
  for (const std::string& a : args) line += " " + a;
  return line;
}

}  // namespace sluice::cli

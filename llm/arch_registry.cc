// The architecture registry: one line per architecture file under llm/arch/.
// An explicit list (rather than static self-registration) because moe/ is a static library and
// the linker drops object files nothing references.
#include <array>

#include "core/base/str_cat.h"
#include "llm/arch_spec.h"

namespace sluice {

// Each defined in llm/arch/<name>.cc.
const ArchSpec& Qwen3MoeArch();
const ArchSpec& Qwen2MoeArch();
const ArchSpec& LlamaMoeArch();
const ArchSpec& Glm4MoeArch();
const ArchSpec& Qwen35MoeArch();
const ArchSpec& Qwen3NextArch();
const ArchSpec& DeepSeek2Arch();
const ArchSpec& GptOssArch();

namespace {

using SpecGetter = const ArchSpec& (*)();
constexpr std::array<SpecGetter, 8> kRegistry = {
    &Qwen3MoeArch,  &Qwen2MoeArch,  &LlamaMoeArch,  &Glm4MoeArch,
    &Qwen35MoeArch, &Qwen3NextArch, &DeepSeek2Arch, &GptOssArch,
};

}  // namespace

Result<const ArchSpec*> FindArchSpec(std::string_view name) {
  std::string known;
  for (SpecGetter get : kRegistry) {
    const ArchSpec& spec = get();
    if (spec.name == name) return &spec;
    known += known.empty() ? "" : ", ";
    known += spec.name;
  }
  return Unsupported("architecture '", name, "' is not supported (supported: ", known,
                     "); docs/adding-a-model.md explains how to add one");
}

std::vector<std::string> RegisteredArchitectures() {
  std::vector<std::string> names;
  for (SpecGetter get : kRegistry) names.emplace_back(get().name);
  return names;
}

}  // namespace sluice

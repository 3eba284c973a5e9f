// CheckModelStructure: the model's metadata read as the engine reads it and every tensor checked
// against it, before `convert` or `verify` spend minutes on the file: a GGUF whose block_count or
// expert_count disagrees with its tensors is refused here, naming the tensor, instead of being
// converted into an archive that fails later.
#pragma once

#include <string>

#include "core/base/status.h"

namespace sluice {

Status CheckModelStructure(const std::string& path);

}  // namespace sluice

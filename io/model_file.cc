#include "io/model_file.h"

namespace sluice {

const TensorInfo* ModelFile::FindDense(std::string_view name) const {
  for (const TensorInfo& t : dense_tensors()) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

uint64_t ModelFile::dense_bytes_total() const {
  uint64_t total = 0;
  for (const TensorInfo& t : dense_tensors()) total += t.nbytes;
  return total;
}

}  // namespace sluice

#include "llm/run_state.h"

#include "core/base/byte_size.h"

namespace sluice {

Result<RunState> RunState::Create(int64_t n_embd, int batch) {
  RunState s;
  const uint64_t bytes = Bytes(n_embd, batch);
  s.buffer = AlignedBuffer(bytes);
  if (s.buffer.data() == nullptr) {
    return ResourceExhausted("cannot allocate ", FormatBytes(bytes), " of activations");
  }
  s.x = reinterpret_cast<float*>(s.buffer.data());
  s.xb = s.x + batch * n_embd;
  s.out = s.xb + batch * n_embd;
  return s;
}

}  // namespace sluice

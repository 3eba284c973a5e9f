#include "llm/run_state.h"

#include "core/base/byte_size.h"

namespace sluice {

Result<RunState> RunState::Create(int64_t n_embd, int batch, int64_t n_ff) {
  RunState s;
  const uint64_t bytes = Bytes(n_embd, batch, n_ff);
  s.buffer = AlignedBuffer(bytes);
  if (s.buffer.data() == nullptr) {
    return ResourceExhausted("cannot allocate ", FormatBytes(bytes), " of activations");
  }
  s.x = reinterpret_cast<float*>(s.buffer.data());
  s.xb = s.x + batch * n_embd;
  s.out = s.xb + batch * n_embd;
  if (n_ff > 0) {
    s.ffn_gate = s.out + batch * n_embd;
    s.ffn_up = s.ffn_gate + batch * n_ff;
  }
  return s;
}

}  // namespace sluice

// The weights of one multi-head latent attention layer (llm/mla_block.h), as plain data.
// Thread-safety: plain values.
#pragma once

#include "core/ops/linear.h"

namespace sluice {

struct MlaWeights {
  Matrix q_a;                        // (q_lora, n_embd), or empty
  const float* q_a_norm = nullptr;   // (q_lora)
  Matrix q_b;                        // (n_head (nope + rope), q_lora), or empty
  Matrix q;                          // (n_head (nope + rope), n_embd) without q_lora, or empty
  Matrix kv_a;                       // (kv_lora + rope, n_embd)
  const float* kv_a_norm = nullptr;  // (kv_lora)
  Matrix k_b;                        // (n_head kv_lora, nope): head j's (kv_lora, nope) block
  Matrix v_b;                        // (n_head v_head, kv_lora): head j's (v_head, kv_lora)
  Matrix out;                        // (n_embd, n_head v_head)
};

}  // namespace sluice

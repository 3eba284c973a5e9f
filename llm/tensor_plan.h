// The tensors a config implies: names, shapes (GGUF order) and the kind of type each may have,
// and the load-time check that a model file holds exactly those. Used by the weight loader, and
// by whoever writes models (tests, `sluice synth`) to know what to emit.
//
// Shapes are GGUF's: ne[0] is the row length (the input dimension of a matrix), ne[1] the rows:
//   token_embd.weight            (n_embd, n_vocab)          any dequantizable type
//   output_norm.weight           (n_embd)                   f32
//   output.weight                (n_embd, n_vocab)          optional: absent = tied to token_embd
//   blk.N.attn_norm.weight       (n_embd)                   f32
//   full-attention layers (all of them, except in hybrid models):
//   blk.N.attn_q.weight          (n_embd, n_head * head_dim_k), twice that with an output gate
//   blk.N.attn_k.weight          (n_embd, n_head_kv * head_dim_k)
//   blk.N.attn_v.weight          (n_embd, n_head_kv * head_dim_v)
//   blk.N.attn_output.weight     (n_head * head_dim_v, n_embd)
//   blk.N.attn_{q,k,v}.bias      (rows of the matrix)       f32, spec.qkv_bias
//   blk.N.attn_{q,k}_norm.weight (head_dim_k)               f32, spec.qk_norm
//   gated delta-net layers (hybrid models; nk, nv heads of ds, K taps, conv = (2 nk + nv) ds):
//     blk.N.attn_qkv.weight (n_embd, conv)   attn_gate (n_embd, nv ds)   ssm_conv1d (K, conv) f32
//     ssm_dt.bias, ssm_a (nv) f32   ssm_beta, ssm_alpha (n_embd, nv) or ssm_ba (n_embd, 2 nv)
//     ssm_norm (ds) f32   ssm_out (nv ds, n_embd)
//   blk.N.<spec.ffn_norm>.weight (n_embd)                   f32 (ffn_norm or post_attention_norm)
//   dense layers (N < leading_dense_block_count), instead of everything below:
//     blk.N.ffn_{gate,up}.weight (n_embd, n_ff), blk.N.ffn_down.weight (n_ff, n_embd)
//   blk.N.ffn_gate_inp.weight    (n_embd, n_expert)         the router
//   blk.N.exp_probs_b.bias       (n_expert)                 f32, spec.selection_bias
//   blk.N.ffn_{gate,up}_shexp.weight (n_embd, n_ff_shexp), ffn_down_shexp (n_ff_shexp, n_embd)
//   blk.N.ffn_gate_inp_shexp.weight  (n_embd)               f32, gated shared expert only
//   routed experts (ModelFile::expert_tensors):
//     gate, up (n_embd, n_ff_exp, n_expert)   down (n_ff_exp, n_embd, n_expert)
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "io/model_file.h"
#include "llm/arch_spec.h"
#include "llm/model_config.h"

namespace sluice {

enum class TensorKind {
  kVector,     // norms, biases, gates: f32 only
  kMatrix,     // computed with MatVec/MatMul: any type the kernels support
  kEmbedding,  // rows looked up and dequantized (and the output head when tied)
};

struct ExpectedTensor {
  std::string name;
  std::array<int64_t, 4> ne{1, 1, 1, 1};  // GGUF order; unused trailing dims are 1
  TensorKind kind = TensorKind::kVector;
  Presence presence = Presence::kRequired;
};

// Every dense tensor the config implies (kAbsent families are not listed), model order.
std::vector<ExpectedTensor> ExpectedDenseTensors(const ModelConfig& config);

// Checks one tensor against what is expected: NotFound when required and missing; Corrupt for a
// shape mismatch; Unsupported for a type the kernels cannot use. The message names the file,
// the tensor, and expected vs found ("blk.3.attn_q.weight: shape expected [64, 64], found
// [64, 128]").
Status CheckTensor(const std::string& source, const ExpectedTensor& expected,
                   const TensorInfo* found);

// Checks every dense tensor and every layer's routed experts against the config. Dense tensors
// the config does not use are logged as a warning (they cost nothing but may mean a wrong
// architecture).
Status CheckModelTensors(const ModelFile& model, const ModelConfig& config);

// "[64, 128]"
std::string ShapeString(const std::array<int64_t, 4>& ne);

}  // namespace sluice

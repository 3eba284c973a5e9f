// The safetensors parser on arbitrary bytes, and on what it accepts, the diffusion model detection
// that reads tensor names and shapes (diffusion/model_config.h): every input is a layout or an
// error, never a crash, a hang, an overflow or an out-of-bounds read (ASan, UBSan).
#include <cstdint>

#include "diffusion/checkpoint.h"
#include "diffusion/model_config.h"
#include "fuzz/fuzz_file.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sluice::Result<sluice::SafetensorsLayout> layout =
      sluice::ParseSafetensors(data, size, "fuzz.safetensors");
  if (!layout.ok()) return 0;
  for (const sluice::SafetensorsTensor& t : layout->tensors) {
    if (t.offset > size || t.nbytes > size - t.offset) __builtin_trap();  // accepted = inside
  }
  sluice::fuzz::MemFile file(data, size);
  auto ckpt = sluice::diffusion::Checkpoint::Open(file.path());
  if (!ckpt.ok()) return 0;
  auto config = sluice::diffusion::DetectDiffusionConfig(**ckpt);
  (void)config;
  return 0;
}

// The GGUF parser on arbitrary bytes: every input is a layout or an error, never a crash, a hang
// or an out-of-bounds read (ASan, UBSan).
#include <cstdint>

#include "io/gguf_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sluice::Result<sluice::GgufLayout> layout = sluice::ParseGguf(data, size, "fuzz.gguf");
  (void)layout;
  return 0;
}

// The streaming archive's reader on arbitrary bytes: open (header, directory, tables), then every
// dense tensor's and expert block's checksum verified, as `sluice verify` does.
#include <cstdint>

#include "fuzz/fuzz_file.h"
#include "io/archive_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sluice::fuzz::MemFile file(data, size);
  auto reader = sluice::ArchiveReader::Open(file.path());
  if (!reader.ok()) return 0;
  const sluice::ArchiveReader& a = **reader;
  for (size_t i = 0; i < a.dense_entries().size(); ++i) (void)a.VerifyDenseTensor(i);
  for (const sluice::ExpertLayerEntry& e : a.expert_layer_entries()) {
    for (uint32_t x = 0; x < e.n_expert && x < 64; ++x) {
      (void)a.VerifyExpertBlock(static_cast<int>(e.layer), static_cast<int>(x));
    }
  }
  return 0;
}

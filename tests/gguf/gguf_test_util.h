// Helpers shared by the GGUF tests: a temporary directory, whole-file reads, deterministic random
// bytes, and writing a GGUF in one call through GgufWriter.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "io/gguf_writer.h"
#include "tests/support/temp_dir.h"

namespace sluice::testing {

inline std::vector<uint8_t> ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

inline void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

inline std::vector<uint8_t> RandomBytes(uint64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n);
  for (auto& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// A tensor to write: its spec and its bytes.
struct TestTensor {
  GgufTensorSpec spec;
  std::vector<uint8_t> bytes;
};

// A tensor of random bytes of the size its shape needs.
inline TestTensor RandomTensor(std::string name, GgmlType type, std::vector<int64_t> ne,
                               uint32_t seed) {
  TestTensor t{{std::move(name), type, std::move(ne)}, {}};
  Result<uint64_t> bytes = GgufTensorBytes(t.spec);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  t.bytes = RandomBytes(bytes.ok() ? *bytes : 0, seed);
  return t;
}

inline Status WriteGguf(const std::string& path, const Metadata& metadata,
                        const std::vector<TestTensor>& tensors,
                        const GgufWriterOptions& options = {}) {
  std::vector<GgufTensorSpec> specs;
  for (const TestTensor& t : tensors) specs.push_back(t.spec);
  ASSIGN_OR_RETURN(std::unique_ptr<GgufWriter> writer,
                   GgufWriter::Create(path, metadata, specs, options));
  for (const TestTensor& t : tensors) {
    RETURN_IF_ERROR(writer->WriteTensor(t.spec.name, t.bytes.data(), t.bytes.size()));
  }
  return writer->Finish();
}

// Equal type and payload; `key` labels failures.
inline void ExpectSameValue(const std::string& key, const MetaValue& want, const MetaValue& got) {
  SCOPED_TRACE(key);
  ASSERT_EQ(want.type, got.type);
  if (want.type == MetaType::kArray) {
    ASSERT_EQ(want.array_type, got.array_type);
    EXPECT_EQ(want.ints, got.ints);
    EXPECT_EQ(want.floats, got.floats);
    EXPECT_EQ(want.strings, got.strings);
    EXPECT_EQ(want.ArraySize(), got.ArraySize());
    return;
  }
  EXPECT_EQ(want.u, got.u);
  EXPECT_EQ(want.i, got.i);
  EXPECT_EQ(want.f, got.f);
  EXPECT_EQ(want.s, got.s);
}

}  // namespace sluice::testing

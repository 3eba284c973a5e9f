#include "tests/support/test_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <random>

#include "core/base/check.h"

namespace sluice::testing {
namespace {

uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

TensorInfo Tensor(std::string name, GgmlType type, int n_dims, std::array<int64_t, 4> ne) {
  TensorInfo t;
  t.name = std::move(name);
  t.type = type;
  t.n_dims = n_dims;
  t.ne = ne;
  return t;
}

}  // namespace

ScratchDir::ScratchDir(const std::string& parent) {
  std::string base = parent.empty() ? std::string(SLUICE_BINARY_DIR) : parent;
  std::string tmpl = base + "/io-test-XXXXXX";
  CHECK(mkdtemp(tmpl.data()) != nullptr) << "mkdtemp " << tmpl;
  path_ = tmpl;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void FillBytes(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint8_t* out, uint64_t bytes) {
  uint64_t state = seed * 0x100000001b3ull ^ (a << 40) ^ (b << 16) ^ c;
  uint64_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    uint64_t v = SplitMix(state);
    std::copy_n(reinterpret_cast<const uint8_t*>(&v), 8, out + i);
  }
  uint64_t v = SplitMix(state);
  for (; i < bytes; ++i) out[i] = static_cast<uint8_t>(v >> (8 * (i % 8)));
}

void FlipByte(const std::string& path, uint64_t offset, uint8_t mask) {
  const int fd = open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << path;
  uint8_t b = 0;
  ASSERT_EQ(pread(fd, &b, 1, static_cast<off_t>(offset)), 1) << path << " at " << offset;
  b ^= mask;
  ASSERT_EQ(pwrite(fd, &b, 1, static_cast<off_t>(offset)), 1) << path << " at " << offset;
  close(fd);
}

ArchivePlan RandomArchivePlan(const RandomArchiveSpec& spec) {
  ArchivePlan plan;
  plan.metadata.SetString("general.architecture", "testmoe");
  int blocks = spec.expert_layers.empty() ? 1 : spec.expert_layers.back() + 1;
  plan.metadata.SetU32("testmoe.block_count", static_cast<uint32_t>(blocks));
  plan.metadata.SetU32("testmoe.expert_count", static_cast<uint32_t>(spec.n_expert));
  plan.metadata.SetStringArray("tokenizer.ggml.tokens", {"<s>", "a", "b"});
  for (int i = 0; i < spec.n_dense; ++i) {
    // Odd shapes: f32 vectors, f16 matrices, q8_0 rows.
    if (i % 3 == 0) {
      plan.dense.push_back(
          Tensor("dense." + std::to_string(i), GgmlType::kF32, 1, {13 + i, 1, 1, 1}));
    } else if (i % 3 == 1) {
      plan.dense.push_back(
          Tensor("dense." + std::to_string(i), GgmlType::kF16, 2, {7 + i, 5, 1, 1}));
    } else {
      plan.dense.push_back(
          Tensor("dense." + std::to_string(i), GgmlType::kQ8_0, 2, {64, 3 + i, 1, 1}));
    }
  }
  for (int layer : spec.expert_layers) {
    ArchiveExpertLayerPlan lp;
    lp.layer = layer;
    std::string p = "blk." + std::to_string(layer) + ".ffn_";
    lp.tensors.gate = Tensor(p + "gate_exps.weight", spec.expert_type, 3,
                             {spec.n_embd, spec.n_ff, spec.n_expert, 1});
    lp.tensors.up = Tensor(p + "up_exps.weight", spec.expert_type, 3,
                           {spec.n_embd, spec.n_ff, spec.n_expert, 1});
    lp.tensors.down = Tensor(p + "down_exps.weight", spec.expert_type, 3,
                             {spec.n_ff, spec.n_embd, spec.n_expert, 1});
    plan.expert_layers.push_back(lp);
  }
  return plan;
}

std::vector<uint8_t> ExpertMatrixBytes(const RandomArchiveSpec& spec, int layer, int expert,
                                       int k) {
  int64_t ne0 = k == 2 ? spec.n_ff : spec.n_embd;
  int64_t ne1 = k == 2 ? spec.n_embd : spec.n_ff;
  std::vector<uint8_t> out(RowBytes(spec.expert_type, ne0) * static_cast<uint64_t>(ne1));
  FillBytes(spec.seed, 1 + static_cast<uint64_t>(layer), static_cast<uint64_t>(expert),
            static_cast<uint64_t>(k), out.data(), out.size());
  return out;
}

std::vector<uint8_t> DenseBytes(const RandomArchiveSpec& spec, int index) {
  ArchivePlan plan = RandomArchivePlan(spec);
  const TensorInfo& t = plan.dense[index];
  std::vector<uint8_t> out(RowBytes(t.type, t.ne[0]) * static_cast<uint64_t>(t.rows()));
  FillBytes(spec.seed, 0, static_cast<uint64_t>(index), 7, out.data(), out.size());
  return out;
}

Status WriteRandomArchive(const RandomArchiveSpec& spec, const std::string& path) {
  ASSIGN_OR_RETURN(auto writer, ArchiveWriter::Create(path, RandomArchivePlan(spec)));
  for (int i = spec.n_dense - 1; i >= 0; --i) {
    std::vector<uint8_t> bytes = DenseBytes(spec, i);
    RETURN_IF_ERROR(writer->WriteDense(static_cast<size_t>(i), bytes));
  }
  std::vector<std::pair<int, int>> order;
  for (int layer : spec.expert_layers) {
    for (int e = 0; e < spec.n_expert; ++e) order.emplace_back(layer, e);
  }
  std::mt19937 rng(static_cast<uint32_t>(spec.seed));
  std::shuffle(order.begin(), order.end(), rng);
  for (auto [layer, e] : order) {
    std::vector<uint8_t> g = ExpertMatrixBytes(spec, layer, e, 0);
    std::vector<uint8_t> u = ExpertMatrixBytes(spec, layer, e, 1);
    std::vector<uint8_t> d = ExpertMatrixBytes(spec, layer, e, 2);
    RETURN_IF_ERROR(writer->AddExpert(layer, e, g, u, d));
  }
  return writer->Finish();
}

}  // namespace sluice::testing

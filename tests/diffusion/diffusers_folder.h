// Writing a diffusers folder for tests: the tensors of LDM-named checkpoints under the names
// scripts/diffusion_golden.py computed (tests/diffusion/golden/diffusers_names.json: per source,
// LDM name -> [component, diffusers name, stored 2-D]), one safetensors file per component, the
// same bytes. The names come from the script's own reading of diffusers' conversion tables, not
// from sluice's mapping (diffusion/diffusers_names.h), which the tests then check against them.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "diffusion/checkpoint.h"
#include "io/safetensors_writer.h"

namespace sluice::diffusion::testing_sd {

inline const nlohmann::json& DiffusersNames() {
  static const nlohmann::json* j = [] {
    std::ifstream in(std::string(SLUICE_SOURCE_DIR) +
                     "/tests/diffusion/golden/diffusers_names.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return new nlohmann::json(nlohmann::json::parse(ss.str()));
  }();
  return *j;
}

// Writes every tensor of each (checkpoint, names key) into `dir`/<component>/<file>.
inline void WriteDiffusersFolder(const std::string& dir,
                                 const std::vector<std::pair<std::string, std::string>>& sources) {
  struct Out {
    std::string name;
    std::vector<int64_t> shape;
    const CkptTensor* src;
  };
  std::vector<std::unique_ptr<Checkpoint>> opened;
  std::map<std::string, std::vector<Out>> by_component;
  for (const auto& [path, key] : sources) {
    auto c = Checkpoint::Open(path);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    const nlohmann::json& names = DiffusersNames()[key];
    for (const CkptTensor& t : (*c)->tensors()) {
      ASSERT_TRUE(names.contains(t.name)) << key << ": " << t.name;
      const nlohmann::json& m = names[t.name];
      std::vector<int64_t> shape = t.shape;
      if (m[2].get<bool>()) shape = {shape[0], shape[1]};  // a 1x1 conv stored as a Linear
      by_component[m[0].get<std::string>()].push_back({m[1].get<std::string>(), shape, &t});
    }
    opened.push_back(std::move(*c));
  }
  for (const auto& [component, tensors] : by_component) {
    std::filesystem::create_directories(dir + "/" + component);
    const std::string file = component.starts_with("text_encoder")
                                 ? "model.safetensors"
                                 : "diffusion_pytorch_model.safetensors";
    auto w = SafetensorsWriter::Create(dir + "/" + component + "/" + file);
    ASSERT_TRUE(w.ok());
    for (const Out& o : tensors) {
      const SafetensorsDtype dtype = o.src->dtype == "F16"    ? SafetensorsDtype::kF16
                                     : o.src->dtype == "BF16" ? SafetensorsDtype::kBF16
                                                              : SafetensorsDtype::kF32;
      ASSERT_TRUE(w->Declare(o.name, dtype, o.shape).ok()) << o.name;
    }
    ASSERT_TRUE(w->Begin().ok());
    for (const Out& o : tensors) ASSERT_TRUE(w->Write(o.src->data, o.src->nbytes).ok());
    ASSERT_TRUE(w->Finish().ok());
  }
}

}  // namespace sluice::diffusion::testing_sd

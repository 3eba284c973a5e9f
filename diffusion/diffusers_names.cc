#include "diffusion/diffusers_names.h"

#include <string_view>
#include <utility>

#include "core/base/str_cat.h"

namespace sluice::diffusion {
namespace {

bool Has(const std::vector<std::string>& names, std::string_view prefix) {
  for (const std::string& n : names) {
    if (n.starts_with(prefix)) return true;
  }
  return false;
}

int Count(const std::vector<std::string>& names, const std::string& before,
          const std::string& after) {
  int n = 0;
  while (Has(names, StrCat(before, n, after))) ++n;
  return n;
}

using Pairs = std::vector<std::pair<std::string, std::string>>;  // (diffusers, ldm) prefixes

// Renames `name` by the longest matching diffusers prefix, then by `inner` within what follows
// when the prefix is one of `inner_of` (a resnet or an attention); "" when nothing matches.
std::string Rename(const std::string& name, const Pairs& prefixes, const Pairs& resnet_inner,
                   const std::vector<std::string>& resnet_prefixes) {
  const std::pair<std::string, std::string>* best = nullptr;
  for (const auto& p : prefixes) {
    if (name.starts_with(p.first) && (best == nullptr || p.first.size() > best->first.size())) {
      best = &p;
    }
  }
  if (best == nullptr) return "";
  std::string rest = name.substr(best->first.size());
  for (const std::string& r : resnet_prefixes) {
    if (r != best->first) continue;
    for (const auto& [from, to] : resnet_inner) {
      if (rest.starts_with(from)) {
        rest = to + rest.substr(from.size());
        break;
      }
    }
  }
  return best->second + rest;
}

}  // namespace

std::vector<std::string> LdmNamesOfDiffusersUNet(const std::vector<std::string>& names) {
  const std::string P = "model.diffusion_model.";
  const int levels = Count(names, "down_blocks.", ".resnets.0.");
  const int n = Count(names, "down_blocks.0.resnets.", ".");
  Pairs pairs = {{"conv_in.", P + "input_blocks.0.0."},
                 {"time_embedding.linear_1.", P + "time_embed.0."},
                 {"time_embedding.linear_2.", P + "time_embed.2."},
                 {"add_embedding.linear_1.", P + "label_emb.0.0."},
                 {"add_embedding.linear_2.", P + "label_emb.0.2."},
                 {"conv_norm_out.", P + "out.0."},
                 {"conv_out.", P + "out.2."},
                 {"mid_block.resnets.0.", P + "middle_block.0."},
                 {"mid_block.attentions.0.", P + "middle_block.1."},
                 {"mid_block.resnets.1.", P + "middle_block.2."}};
  std::vector<std::string> resnets = {"mid_block.resnets.0.", "mid_block.resnets.1."};
  for (int i = 0; i < levels; ++i) {
    for (int j = 0; j < n; ++j) {
      const int b = (n + 1) * i + j + 1;
      pairs.push_back(
          {StrCat("down_blocks.", i, ".resnets.", j, "."), StrCat(P, "input_blocks.", b, ".0.")});
      resnets.push_back(pairs.back().first);
      pairs.push_back({StrCat("down_blocks.", i, ".attentions.", j, "."),
                       StrCat(P, "input_blocks.", b, ".1.")});
    }
    pairs.push_back({StrCat("down_blocks.", i, ".downsamplers.0.conv."),
                     StrCat(P, "input_blocks.", (n + 1) * (i + 1), ".0.op.")});
    for (int j = 0; j <= n; ++j) {
      const int b = (n + 1) * i + j;
      pairs.push_back(
          {StrCat("up_blocks.", i, ".resnets.", j, "."), StrCat(P, "output_blocks.", b, ".0.")});
      resnets.push_back(pairs.back().first);
      pairs.push_back(
          {StrCat("up_blocks.", i, ".attentions.", j, "."), StrCat(P, "output_blocks.", b, ".1.")});
    }
    const bool attention = Has(names, StrCat("up_blocks.", i, ".attentions.", n, "."));
    pairs.push_back({StrCat("up_blocks.", i, ".upsamplers.0."),
                     StrCat(P, "output_blocks.", (n + 1) * i + n, ".", attention ? 2 : 1, ".")});
  }
  const Pairs inner = {{"norm1.", "in_layers.0."},          {"conv1.", "in_layers.2."},
                       {"time_emb_proj.", "emb_layers.1."}, {"norm2.", "out_layers.0."},
                       {"conv2.", "out_layers.3."},         {"conv_shortcut.", "skip_connection."}};
  std::vector<std::string> out;
  out.reserve(names.size());
  for (const std::string& name : names) {
    std::string ldm = Rename(name, pairs, inner, resnets);
    out.push_back(ldm.empty() ? "unet/" + name : ldm);
  }
  return out;
}

std::vector<std::string> LdmNamesOfDiffusersVae(const std::vector<std::string>& names) {
  const std::string P = "first_stage_model.";
  const int levels = Count(names, "decoder.up_blocks.", ".resnets.0.");
  Pairs pairs = {{"decoder.conv_in.", P + "decoder.conv_in."},
                 {"decoder.conv_out.", P + "decoder.conv_out."},
                 {"decoder.conv_norm_out.", P + "decoder.norm_out."},
                 {"encoder.conv_in.", P + "encoder.conv_in."},
                 {"encoder.conv_out.", P + "encoder.conv_out."},
                 {"encoder.conv_norm_out.", P + "encoder.norm_out."},
                 {"quant_conv.", P + "quant_conv."},
                 {"post_quant_conv.", P + "post_quant_conv."}};
  std::vector<std::string> resnets;
  for (const char* part : {"decoder.", "encoder."}) {
    for (int j = 0; j < 2; ++j) {
      pairs.push_back(
          {StrCat(part, "mid_block.resnets.", j, "."), StrCat(P, part, "mid.block_", j + 1, ".")});
      resnets.push_back(pairs.back().first);
    }
    pairs.push_back({StrCat(part, "mid_block.attentions.0."), StrCat(P, part, "mid.attn_1.")});
  }
  for (int i = 0; i < levels; ++i) {
    const int up = levels - 1 - i;
    for (int j = 0; j < 8; ++j) {
      pairs.push_back({StrCat("decoder.up_blocks.", i, ".resnets.", j, "."),
                       StrCat(P, "decoder.up.", up, ".block.", j, ".")});
      resnets.push_back(pairs.back().first);
      pairs.push_back({StrCat("encoder.down_blocks.", i, ".resnets.", j, "."),
                       StrCat(P, "encoder.down.", i, ".block.", j, ".")});
      resnets.push_back(pairs.back().first);
    }
    pairs.push_back({StrCat("decoder.up_blocks.", i, ".upsamplers.0."),
                     StrCat(P, "decoder.up.", up, ".upsample.")});
    pairs.push_back({StrCat("encoder.down_blocks.", i, ".downsamplers.0."),
                     StrCat(P, "encoder.down.", i, ".downsample.")});
  }
  // Resnet shortcut and the attention's projections (older and newer diffusers names).
  const Pairs inner = {{"conv_shortcut.", "nin_shortcut."}};
  const Pairs attention = {{"group_norm.", "norm."},
                           {"to_q.", "q."},
                           {"query.", "q."},
                           {"to_k.", "k."},
                           {"key.", "k."},
                           {"to_v.", "v."},
                           {"value.", "v."},
                           {"to_out.0.", "proj_out."},
                           {"proj_attn.", "proj_out."}};
  std::vector<std::string> out;
  out.reserve(names.size());
  for (const std::string& name : names) {
    std::string ldm = Rename(name, pairs, inner, resnets);
    if (!ldm.empty() && name.find("mid_block.attentions.0.") != std::string::npos) {
      const size_t at = ldm.find("mid.attn_1.") + std::string_view("mid.attn_1.").size();
      for (const auto& [from, to] : attention) {
        if (ldm.compare(at, from.size(), from) == 0) {
          ldm = ldm.substr(0, at) + to + ldm.substr(at + from.size());
          break;
        }
      }
    }
    out.push_back(ldm.empty() ? "vae/" + name : ldm);
  }
  return out;
}

}  // namespace sluice::diffusion

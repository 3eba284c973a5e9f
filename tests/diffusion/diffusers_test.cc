// Diffusers folders (diffusion/checkpoint.h, diffusion/diffusers_names.h): the name mapping on
// SD 1.5's real layout against pairs written from diffusers' published conversion table; a tiny
// SD 1.5 written as a folder (tests/diffusion/diffusers_folder.h) makes the same image as the
// single file, resident and streamed over its several files; the folder's tokenizer is the one
// used; a missing component is named.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "diffusion/diffusers_names.h"
#include "diffusion/pipeline.h"
#include "tests/diffusion/diffusers_folder.h"
#include "tests/diffusion/tiny_sd.h"
#include "tests/support/temp_dir.h"
#include "tokenizer/clip_tokenizer.h"

namespace sluice::diffusion {
namespace {

// SD 1.5's UNet in diffusers' names: 4 levels of 2 resnets; attentions in down levels 0-2 and up
// levels 1-3; a downsampler after down levels 0-2, an upsampler after up levels 0-2.
std::vector<std::string> Sd15UNetNames() {
  std::vector<std::string> n = {"conv_in.weight",
                                "time_embedding.linear_1.weight",
                                "conv_norm_out.weight",
                                "conv_out.weight",
                                "mid_block.resnets.0.conv1.weight",
                                "mid_block.attentions.0.proj_in.weight",
                                "mid_block.resnets.1.time_emb_proj.bias"};
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 2; ++j) {
      n.push_back(StrCat("down_blocks.", i, ".resnets.", j, ".conv1.weight"));
      if (i < 3) n.push_back(StrCat("down_blocks.", i, ".attentions.", j, ".proj_in.weight"));
    }
    if (i < 3) n.push_back(StrCat("down_blocks.", i, ".downsamplers.0.conv.weight"));
    for (int j = 0; j < 3; ++j) {
      n.push_back(StrCat("up_blocks.", i, ".resnets.", j, ".conv1.weight"));
      if (i > 0) n.push_back(StrCat("up_blocks.", i, ".attentions.", j, ".proj_in.weight"));
    }
    if (i < 3) n.push_back(StrCat("up_blocks.", i, ".upsamplers.0.conv.weight"));
  }
  n.push_back("down_blocks.3.resnets.1.conv2.weight");
  n.push_back("up_blocks.3.resnets.2.conv_shortcut.weight");
  n.push_back("not_a_unet_tensor.weight");
  return n;
}

TEST(Diffusers, UNetNamesAsTheConversionTableGivesThem) {
  const std::vector<std::string> in = Sd15UNetNames();
  const std::vector<std::string> out = LdmNamesOfDiffusersUNet(in);
  ASSERT_EQ(in.size(), out.size());
  std::map<std::string, std::string> m;
  for (size_t i = 0; i < in.size(); ++i) m[in[i]] = out[i];
  const std::string P = "model.diffusion_model.";
  // From diffusers' convert_diffusers_to_original_stable_diffusion.py (SD 1.x).
  EXPECT_EQ(m["conv_in.weight"], P + "input_blocks.0.0.weight");
  EXPECT_EQ(m["time_embedding.linear_1.weight"], P + "time_embed.0.weight");
  EXPECT_EQ(m["conv_norm_out.weight"], P + "out.0.weight");
  EXPECT_EQ(m["conv_out.weight"], P + "out.2.weight");
  EXPECT_EQ(m["down_blocks.0.resnets.0.conv1.weight"], P + "input_blocks.1.0.in_layers.2.weight");
  EXPECT_EQ(m["down_blocks.1.attentions.1.proj_in.weight"], P + "input_blocks.5.1.proj_in.weight");
  EXPECT_EQ(m["down_blocks.2.downsamplers.0.conv.weight"], P + "input_blocks.9.0.op.weight");
  EXPECT_EQ(m["down_blocks.3.resnets.1.conv2.weight"], P + "input_blocks.11.0.out_layers.3.weight");
  EXPECT_EQ(m["mid_block.resnets.0.conv1.weight"], P + "middle_block.0.in_layers.2.weight");
  EXPECT_EQ(m["mid_block.attentions.0.proj_in.weight"], P + "middle_block.1.proj_in.weight");
  EXPECT_EQ(m["mid_block.resnets.1.time_emb_proj.bias"], P + "middle_block.2.emb_layers.1.bias");
  EXPECT_EQ(m["up_blocks.0.resnets.2.conv1.weight"], P + "output_blocks.2.0.in_layers.2.weight");
  EXPECT_EQ(m["up_blocks.0.upsamplers.0.conv.weight"], P + "output_blocks.2.1.conv.weight");
  EXPECT_EQ(m["up_blocks.1.attentions.2.proj_in.weight"], P + "output_blocks.5.1.proj_in.weight");
  EXPECT_EQ(m["up_blocks.1.upsamplers.0.conv.weight"], P + "output_blocks.5.2.conv.weight");
  EXPECT_EQ(m["up_blocks.3.resnets.2.conv_shortcut.weight"],
            P + "output_blocks.11.0.skip_connection.weight");
  EXPECT_EQ(m["not_a_unet_tensor.weight"], "unet/not_a_unet_tensor.weight");
}

TEST(Diffusers, VaeNamesOldAndNew) {
  const std::vector<std::string> in = {"decoder.up_blocks.0.resnets.0.conv1.weight",
                                       "decoder.up_blocks.1.resnets.0.conv1.weight",
                                       "decoder.up_blocks.0.upsamplers.0.conv.weight",
                                       "decoder.mid_block.attentions.0.to_q.weight",
                                       "decoder.mid_block.attentions.0.query.bias",
                                       "decoder.mid_block.attentions.0.proj_attn.weight",
                                       "decoder.mid_block.attentions.0.group_norm.weight",
                                       "decoder.conv_norm_out.bias",
                                       "decoder.up_blocks.1.resnets.0.conv_shortcut.weight",
                                       "encoder.down_blocks.1.downsamplers.0.conv.weight",
                                       "post_quant_conv.weight"};
  const std::vector<std::string> out = LdmNamesOfDiffusersVae(in);
  const std::string P = "first_stage_model.";
  // Two decoder levels here: diffusers' up_blocks.0 is the deepest (LDM's up.1).
  EXPECT_EQ(out[0], P + "decoder.up.1.block.0.conv1.weight");
  EXPECT_EQ(out[1], P + "decoder.up.0.block.0.conv1.weight");
  EXPECT_EQ(out[2], P + "decoder.up.1.upsample.conv.weight");
  EXPECT_EQ(out[3], P + "decoder.mid.attn_1.q.weight");
  EXPECT_EQ(out[4], P + "decoder.mid.attn_1.q.bias");
  EXPECT_EQ(out[5], P + "decoder.mid.attn_1.proj_out.weight");
  EXPECT_EQ(out[6], P + "decoder.mid.attn_1.norm.weight");
  EXPECT_EQ(out[7], P + "decoder.norm_out.bias");
  EXPECT_EQ(out[8], P + "decoder.up.0.block.0.nin_shortcut.weight");
  EXPECT_EQ(out[9], P + "encoder.down.1.downsample.conv.weight");
  EXPECT_EQ(out[10], P + "post_quant_conv.weight");
}

class DiffusersFolder : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = dir_.File("sd15.safetensors");
    folder_ = dir_.File("sd15-diffusers");
    testing_sd::WriteTinyCheckpoint("sd15", file_);
    testing_sd::WriteDiffusersFolder(folder_, {{file_, "tiny_sd15"}});
  }
  testing::TempDir dir_;
  std::string file_, folder_;
};

TEST_F(DiffusersFolder, MakesTheImageOfTheSingleFileResidentAndStreamed) {
  const GenerateOptions o = testing_sd::TinyOptions(11, 2);
  auto single = DiffusionModel::Load(file_, DiffusionLoadOptions{});
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  auto want = Generate(**single, o, nullptr, {}, nullptr);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  auto folder = DiffusionModel::Load(folder_ + "/", DiffusionLoadOptions{});
  ASSERT_TRUE(folder.ok()) << folder.status().ToString();
  EXPECT_EQ((*folder)->config().family, Family::kSd1);
  EXPECT_EQ((*folder)->checkpoint().file_paths().size(), 3u);
  auto got = Generate(**folder, o, nullptr, {}, nullptr);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->rgb, want->rgb);
  // Streamed at the smallest budget: blocks of three files into one placed region.
  const uint64_t min = testing_sd::MinWeightBudget(folder_);
  ASSERT_GT(min, 0u);
  for (IoBackendKind io : {IoBackendKind::kPread, IoBackendKind::kAuto}) {
    auto streamed = DiffusionModel::Load(
        folder_, DiffusionLoadOptions{.weight_budget = min, .io = {.kind = io}});
    ASSERT_TRUE(streamed.ok()) << streamed.status().ToString();
    auto s = Generate(**streamed, o, nullptr, {}, nullptr);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->rgb, want->rgb);
  }
}

TEST_F(DiffusersFolder, ItsTokenizerIsTheOneUsed) {
  std::filesystem::create_directories(folder_ + "/tokenizer");
  {
    std::ofstream out(folder_ + "/tokenizer/merges.txt");
    out << ClipMergesText();
  }
  auto m = DiffusionModel::Load(folder_, DiffusionLoadOptions{});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ((*m)->tokenizer().Encode("a photo of a cat"),
            ClipTokenizer::Builtin().value()->Encode("a photo of a cat"));
  {
    std::ofstream out(folder_ + "/tokenizer/merges.txt");
    out << "#version: 0.2\nthis line has three\n";
  }
  auto bad = DiffusionModel::Load(folder_, DiffusionLoadOptions{});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("tokenizer/merges.txt"), std::string::npos)
      << bad.status().ToString();
}

TEST_F(DiffusersFolder, AMissingComponentIsNamed) {
  std::filesystem::remove_all(folder_ + "/vae");
  auto c = Checkpoint::Open(folder_);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("vae/diffusion_pytorch_model[.fp16].safetensors is missing"),
            std::string::npos)
      << c.status().ToString();
}

}  // namespace
}  // namespace sluice::diffusion

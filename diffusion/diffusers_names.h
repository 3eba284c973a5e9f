// The diffusers folder layout's tensor names mapped to the original (LDM) names the networks
// load (diffusion/checkpoint.h opens a diffusers folder through these). The correspondence is the
// one diffusers' own conversion scripts publish (convert_diffusers_to_original_stable_diffusion
// and its SDXL twin), generalised from SD 1.5's fixed 4 levels x 2 blocks to any number of
// levels and residual blocks read off the names:
//   UNet (prefix model.diffusion_model.):
//     conv_in -> input_blocks.0.0; time_embedding.linear_1/2 -> time_embed.0/2;
//     add_embedding.linear_1/2 -> label_emb.0.0/0.2 (SDXL); conv_norm_out -> out.0;
//     conv_out -> out.2;
//     down_blocks.i.resnets.j -> input_blocks.(n+1)i+j+1.0, .attentions.j -> ....1,
//     down_blocks.i.downsamplers.0.conv -> input_blocks.(n+1)(i+1).0.op;
//     up_blocks.i.resnets.j -> output_blocks.(n+1)i+j.0, .attentions.j -> ....1,
//     up_blocks.i.upsamplers.0 -> output_blocks.(n+1)i+n.(1, or 2 after an attention);
//     mid_block.resnets.0/1 -> middle_block.0/2, mid_block.attentions.0 -> middle_block.1;
//     in a resnet: norm1 -> in_layers.0, conv1 -> in_layers.2, time_emb_proj -> emb_layers.1,
//     norm2 -> out_layers.0, conv2 -> out_layers.3, conv_shortcut -> skip_connection;
//     the transformers' own names are the same in both.
//   VAE (prefix first_stage_model.): up_blocks.i -> up.(L-1-i) (diffusers counts from the
//     deepest level), resnets.j -> block.j, upsamplers.0 -> upsample; mid_block.resnets.0/1 ->
//     mid.block_1/2, mid_block.attentions.0 -> mid.attn_1 with group_norm -> norm,
//     to_q|query -> q, to_k|key -> k, to_v|value -> v, to_out.0|proj_attn -> proj_out;
//     conv_shortcut -> nin_shortcut, conv_norm_out -> norm_out; encoder likewise (down.i).
//   Text encoders are Hugging Face CLIPTextModel names in both layouts (SD 1.x's and SDXL's
//     first): they only gain the component's prefix.
// A name that matches none of these keeps "<component>/" before it: loaded by nothing, listed in
// errors as it is in the file.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

namespace sluice::diffusion {

// The LDM names of a diffusers UNet's (or VAE's) tensor names, in the same order.
std::vector<std::string> LdmNamesOfDiffusersUNet(const std::vector<std::string>& names);
std::vector<std::string> LdmNamesOfDiffusersVae(const std::vector<std::string>& names);

}  // namespace sluice::diffusion

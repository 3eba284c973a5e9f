#!/usr/bin/python3
"""Writes the golden files of the diffusion tests (tests/diffusion/golden/), once, from
implementations independent of sluice's C++: Debian's python3-torch (its conv2d, group_norm,
layer_norm, softmax attention, interpolate), python3-regex and python3-numpy. The outputs are
committed; the tests read them and never run Python.

    /usr/bin/python3 scripts/diffusion_golden.py            # rewrites every golden file
    /usr/bin/python3 scripts/diffusion_golden.py taesd      # only taesd.safetensors/taesd.json
    /usr/bin/python3 scripts/diffusion_golden.py diffusers TINY_SD15.safetensors
        # only diffusers_names.json: the diffusers name of every tensor of the golden UNets, VAE
        # and CLIP, and of a tiny SD 1.5 checkpoint (`sluice synth --preset sd15 --tiny`)

Facts this script relies on, and where each comes from:
- CLIP tokenizer: openai/CLIP clip/simple_tokenizer.py (the pattern, bytes_to_unicode, "</w>",
  merges[1:49152-256-2+1], vocabulary order, whitespace_clean + lower()); ftfy and html.unescape
  are not applied (sluice does not do them either; stable-diffusion.cpp neither).
- CLIP text transformer: pre-LN blocks, causal mask, LayerNorm eps 1e-5; OpenAI CLIP uses
  quick_gelu (x * sigmoid(1.702 x)), OpenCLIP plain (erf) GELU; OpenCLIP fuses q|k|v into
  attn.in_proj_weight in that order. SD 1.x takes the last layer + final LayerNorm, SD 2.x the
  penultimate + final LayerNorm (FrozenOpenCLIPEmbedder layer="penultimate"), SDXL the penultimate
  without it and a pooled output: ln_final(last layer)[argmax(ids)] @ text_projection
  (open_clip's encode_text).
- UNet (ldm/modules/diffusionmodules/openaimodel.py, attention.py): timestep_embedding puts cos
  before sin; GroupNorm32 eps 1e-5 in ResBlocks and the output, the SpatialTransformer's GroupNorm
  eps 1e-6, LayerNorm eps 1e-5; GEGLU takes the first half as the value and the second as the gate;
  skips are concatenated after the current activations; Upsample is nearest 2x then a 3x3 conv;
  Downsample a stride-2 3x3 conv with padding 1; SD 1.x uses 1x1 convs for proj_in/out, SD 2.x and
  SDXL Linear.
- VAE decoder (ldm/modules/diffusionmodules/model.py): GroupNorm eps 1e-6, swish, one-head
  AttnBlock with 1x1 conv projections, scale 1/sqrt(C); latents divided by the scale factor before
  post_quant_conv.
- TAESD decoder (madebyollin/taesd taesd.py; diffusers' DecoderTiny): tanh(x / 3) * 3 first,
  conv_in + ReLU, three times (3 Blocks, nearest 2x Upsample, conv without bias), a Block, conv
  out; Block = ReLU(conv(ReLU(conv(ReLU(conv(x))))) + x); the latent goes in as the sampler
  leaves it (no scale factor); diffusers maps the output [0, 1] to [-1, 1] (x * 2 - 1). Names
  as diffusers' AutoencoderTiny and stable-diffusion.cpp's tae.hpp: decoder.layers.<i>, the clamp
  not counted (taesd_decoder files count it: layer i + 1). The golden model is 8 channels wide,
  not 64, to stay small.
- diffusers names (diffusers' scripts/convert_original_stable_diffusion_to_diffusers.py and
  convert_diffusers_to_original_stable_diffusion.py, whose tables this follows for any number of
  levels and residual blocks): input_blocks.(n+1)i+j+1.0 = down_blocks.i.resnets.j,
  .1 = attentions.j, input_blocks.(n+1)(i+1).0.op = down_blocks.i.downsamplers.0.conv;
  output_blocks.(n+1)i+j.0/.1 = up_blocks.i.resnets/attentions.j, the Upsample after them =
  up_blocks.i.upsamplers.0; middle_block.0/1/2 = mid_block.resnets.0/attentions.0/resnets.1;
  time_embed.0/2 = time_embedding.linear_1/2, label_emb.0.0/0.2 = add_embedding.linear_1/2,
  input_blocks.0.0 = conv_in, out.0/out.2 = conv_norm_out/conv_out; in resnets in_layers.0/2,
  emb_layers.1, out_layers.0/3, skip_connection = norm1, conv1, time_emb_proj, norm2, conv2,
  conv_shortcut. VAE: up.l = up_blocks.(L-1-l), down.l = down_blocks.l, block.j = resnets.j,
  upsample/downsample = upsamplers.0/downsamplers.0, mid.block_1/2 = mid_block.resnets.0/1,
  mid.attn_1 = mid_block.attentions.0 (norm, q, k, v, proj_out = group_norm, to_q, to_k, to_v,
  to_out.0, stored 2-D), nin_shortcut = conv_shortcut, norm_out = conv_norm_out. CLIP text
  encoders (OpenAI layout): the same Hugging Face names without the LDM prefix.
- Sampling (k-diffusion): betas = linspace(sqrt(0.00085), sqrt(0.012), 1000)^2, sigmas =
  sqrt((1 - alphas_cumprod) / alphas_cumprod); sigma <-> t by interpolation of log sigma; the
  model input is x / sqrt(sigma^2 + 1); eps-prediction denoised = x - sigma * eps; Euler.
- Noise: torch.randn on the CPU with torch.Generator().manual_seed(seed), in NCHW order.
"""
import json
import math
import os
import sys

import regex
import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "diffusion", "golden")


# --- CLIP tokenizer (openai/CLIP simple_tokenizer.py, without ftfy/html) -----------------------

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2 ** 8):
        if b not in bs:
            bs.append(b)
            cs.append(2 ** 8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


class ClipTokenizerRef:
    def __init__(self, merges_path):
        self.byte_encoder = bytes_to_unicode()
        merges = open(merges_path, encoding="utf-8").read().split("\n")
        merges = merges[1:49152 - 256 - 2 + 1]
        merges = [tuple(m.split()) for m in merges]
        vocab = list(bytes_to_unicode().values())
        vocab = vocab + [v + "</w>" for v in vocab]
        for m in merges:
            vocab.append("".join(m))
        vocab.extend(["<|startoftext|>", "<|endoftext|>"])
        self.encoder = dict(zip(vocab, range(len(vocab))))
        self.cache = {"<|startoftext|>": "<|startoftext|>", "<|endoftext|>": "<|endoftext|>"}
        self.bpe_ranks = dict(zip(merges, range(len(merges))))
        self.pat = regex.compile(
            r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE)

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        if not pairs:
            return token + "</w>"
        while True:
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                    new_word.extend(word[i:j])
                    i = j
                except ValueError:
                    new_word.extend(word[i:])
                    break
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
            if len(word) == 1:
                break
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        return " ".join(word)

    def encode(self, text):
        text = regex.sub(r"\s+", " ", text).strip().lower()
        ids = []
        for token in regex.findall(self.pat, text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self.bpe(token).split(" "))
        return ids


CLIP_TEXTS = [
    "a photo of a cat",
    "hello world",
    "A Photo   of\tTWO\ncats, sitting on a mat!!",
    "it's 2024; they've won 3-1 (again) :)",
    "Ünïcödé ÀÉÎÕÜ façade naïve coöperate",
    "東京の夜景, ネオン, 4k",
    "emoji 🐱🚀 and symbols ©®™ ±×÷",
    "masterpiece, best quality, (ultra-detailed:1.2), [blurry]",
    "<|endoftext|> inside text <|startoftext|>",
    "don't you'll we'd I'm",
    "ΣΊΣΥΦΟΣ Привет МИР",
    "1234567890 3.14159 1e-5",
    "   leading and trailing spaces   ",
    "",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
]


def write_clip_tokens():
    tok = ClipTokenizerRef(os.path.join(ROOT, "tokenizer", "data", "clip-merges.txt"))
    cases = [{"text": t, "ids": tok.encode(t)} for t in CLIP_TEXTS]
    with open(os.path.join(GOLDEN, "clip_tokens.json"), "w", encoding="utf-8") as f:
        json.dump({"source": "scripts/diffusion_golden.py (openai/CLIP simple_tokenizer.py port)",
                   "cases": cases}, f, ensure_ascii=False, indent=1)


# --- safetensors (written by hand: the format is 8 bytes + JSON + raw data) ----------------------

def save_safetensors(path, tensors):
    import struct
    header = {}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        t = t.contiguous()
        dtype = {torch.float32: "F32", torch.float16: "F16"}[t.dtype]
        b = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


class Weights:
    """Random weights of sane scale, stored in F16 (what the test reads) and used by the reference
    as the float32 values of those F16 numbers."""

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)
        self.stored = {}

    def _add(self, name, t):
        t16 = t.to(torch.float16)
        self.stored[name] = t16
        return t16.to(torch.float32)

    def linear(self, name, rows, cols, bias=True):
        w = self._add(name + ".weight", torch.randn(rows, cols, generator=self.g) / math.sqrt(cols))
        b = self._add(name + ".bias", 0.1 * torch.randn(rows, generator=self.g)) if bias else None
        return w, b

    def conv(self, name, cin, cout, k):
        w = self._add(name + ".weight", torch.randn(cout, cin, k, k, generator=self.g) / math.sqrt(cin * k * k))
        b = self._add(name + ".bias", 0.1 * torch.randn(cout, generator=self.g))
        return w, b

    def norm(self, name, c):
        w = self._add(name + ".weight", 1 + 0.1 * torch.randn(c, generator=self.g))
        b = self._add(name + ".bias", 0.1 * torch.randn(c, generator=self.g))
        return w, b

    def table(self, name, rows, cols, scale=0.5):
        return self._add(name, scale * torch.randn(rows, cols, generator=self.g))


# --- CLIP text encoders -------------------------------------------------------------------------

def clip_reference(W, prefix, layout, vocab, width, layers, heads, quick, proj_dim, ids, skip,
                   final_norm):
    """Builds the weights in W (in the layout's names) and returns (hidden, pooled or None)."""
    openai = layout == "openai"
    tok = W.table(prefix + ("embeddings.token_embedding.weight" if openai else "token_embedding.weight"), vocab, width)
    pos = W.table(prefix + ("embeddings.position_embedding.weight" if openai else "positional_embedding"), 77, width, 0.1)
    blocks = []
    for i in range(layers):
        if openai:
            q = f"{prefix}encoder.layers.{i}."
            ln1 = W.norm(q + "layer_norm1", width)
            wq = W.linear(q + "self_attn.q_proj", width, width)
            wk = W.linear(q + "self_attn.k_proj", width, width)
            wv = W.linear(q + "self_attn.v_proj", width, width)
            wo = W.linear(q + "self_attn.out_proj", width, width)
            ln2 = W.norm(q + "layer_norm2", width)
            f1 = W.linear(q + "mlp.fc1", 4 * width, width)
            f2 = W.linear(q + "mlp.fc2", width, 4 * width)
        else:
            q = f"{prefix}transformer.resblocks.{i}."
            ln1 = W.norm(q + "ln_1", width)
            inw = W._add(q + "attn.in_proj_weight", torch.randn(3 * width, width, generator=W.g) / math.sqrt(width))
            inb = W._add(q + "attn.in_proj_bias", 0.1 * torch.randn(3 * width, generator=W.g))
            wq, wk, wv = [(inw[j * width:(j + 1) * width], inb[j * width:(j + 1) * width]) for j in range(3)]
            wo = W.linear(q + "attn.out_proj", width, width)
            ln2 = W.norm(q + "ln_2", width)
            f1 = W.linear(q + "mlp.c_fc", 4 * width, width)
            f2 = W.linear(q + "mlp.c_proj", width, 4 * width)
        blocks.append((ln1, wq, wk, wv, wo, ln2, f1, f2))
    fin = W.norm(prefix + ("final_layer_norm" if openai else "ln_final"), width)
    proj = None
    if proj_dim:
        proj = W._add(prefix + "text_projection", torch.randn(width, proj_dim, generator=W.g) / math.sqrt(width))

    ids_t = torch.tensor(ids)
    x = tok[ids_t] + pos
    d = width // heads
    mask = torch.full((77, 77), float("-inf")).triu(1)
    hidden = None
    for li, (ln1, wq, wk, wv, wo, ln2, f1, f2) in enumerate(blocks):
        h = F.layer_norm(x, (width,), ln1[0], ln1[1], 1e-5)
        q = (h @ wq[0].T + wq[1]).view(77, heads, d).transpose(0, 1)
        k = (h @ wk[0].T + wk[1]).view(77, heads, d).transpose(0, 1)
        v = (h @ wv[0].T + wv[1]).view(77, heads, d).transpose(0, 1)
        a = ((q @ k.transpose(-1, -2)) / math.sqrt(d) + mask).softmax(-1)
        o = (a @ v).transpose(0, 1).reshape(77, width)
        x = x + o @ wo[0].T + wo[1]
        h = F.layer_norm(x, (width,), ln2[0], ln2[1], 1e-5) @ f1[0].T + f1[1]
        h = h * torch.sigmoid(1.702 * h) if quick else F.gelu(h)
        x = x + h @ f2[0].T + f2[1]
        if li + 1 == layers - skip:
            hidden = F.layer_norm(x, (width,), fin[0], fin[1], 1e-5) if final_norm else x.clone()
    pooled = None
    if proj is not None:
        last = F.layer_norm(x, (width,), fin[0], fin[1], 1e-5)
        pooled = last[ids_t.argmax()] @ proj
    return hidden, pooled


# --- UNet ---------------------------------------------------------------------------------------

def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(0, half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class UNetRef:
    def __init__(self, W, cfg):
        self.W = W
        self.cfg = cfg
        self.p = cfg["prefix"]
        self.w = {}

    def get(self, name):
        return self.w[name]

    def build(self):
        """Creates every weight in the order the C++ loader walks them (any order would do)."""
        W, c, p = self.W, self.cfg, self.p
        mc, ed = c["model_channels"], 4 * c["model_channels"]
        reg = self.w

        def lin(n, r, cc, bias=True):
            reg[n] = W.linear(n, r, cc, bias)

        def conv(n, ci, co, k):
            reg[n] = W.conv(n, ci, co, k)

        def norm(n, ch):
            reg[n] = W.norm(n, ch)

        def res(q, ci, co):
            norm(q + "in_layers.0", ci)
            conv(q + "in_layers.2", ci, co, 3)
            lin(q + "emb_layers.1", co, ed)
            norm(q + "out_layers.0", co)
            conv(q + "out_layers.3", co, co, 3)
            if ci != co:
                conv(q + "skip_connection", ci, co, 1)

        def st(q, ch, depth):
            norm(q + "norm", ch)
            if c["linear_proj"]:
                lin(q + "proj_in", ch, ch)
                lin(q + "proj_out", ch, ch)
            else:
                conv(q + "proj_in", ch, ch, 1)
                conv(q + "proj_out", ch, ch, 1)
            for j in range(depth):
                b = f"{q}transformer_blocks.{j}."
                for n in ("norm1", "norm2", "norm3"):
                    norm(b + n, ch)
                for a, kv in (("attn1", ch), ("attn2", c["context_dim"])):
                    lin(b + a + ".to_q", ch, ch, False)
                    lin(b + a + ".to_k", ch, kv, False)
                    lin(b + a + ".to_v", ch, kv, False)
                    lin(b + a + ".to_out.0", ch, ch)
                lin(b + "ff.net.0.proj", 8 * ch, ch)
                lin(b + "ff.net.2", ch, 4 * ch)

        lin(p + "time_embed.0", ed, mc)
        lin(p + "time_embed.2", ed, ed)
        if c["adm"]:
            lin(p + "label_emb.0.0", ed, c["adm"])
            lin(p + "label_emb.0.2", ed, ed)
        conv(p + "input_blocks.0.0", 4, mc, 3)
        self.inputs = [("conv", p + "input_blocks.0.0")]
        chans = [mc]
        ch = mc
        idx = 1
        levels = len(c["channel_mult"])
        for level, mult in enumerate(c["channel_mult"]):
            for _ in range(c["num_res_blocks"]):
                q = f"{p}input_blocks.{idx}."
                res(q + "0.", ch, mult * mc)
                ch = mult * mc
                depth = c["depth"][level]
                if depth:
                    st(q + "1.", ch, depth)
                self.inputs.append(("res", q, ch, depth))
                chans.append(ch)
                idx += 1
            if level != levels - 1:
                conv(f"{p}input_blocks.{idx}.0.op", ch, ch, 3)
                self.inputs.append(("down", f"{p}input_blocks.{idx}.0.op"))
                chans.append(ch)
                idx += 1
        res(p + "middle_block.0.", ch, ch)
        st(p + "middle_block.1.", ch, c["middle_depth"])
        res(p + "middle_block.2.", ch, ch)
        self.mid_ch = ch
        self.outputs = []
        idx = 0
        for level in reversed(range(levels)):
            mult = c["channel_mult"][level]
            for i in range(c["num_res_blocks"] + 1):
                q = f"{p}output_blocks.{idx}."
                skip = chans.pop()
                res(q + "0.", ch + skip, mult * mc)
                ch = mult * mc
                depth = c["depth"][level]
                nxt = 1
                if depth:
                    st(q + "1.", ch, depth)
                    nxt = 2
                up = None
                if level and i == c["num_res_blocks"]:
                    up = f"{q}{nxt}.conv"
                    conv(up, ch, ch, 3)
                self.outputs.append((q, ch, depth, up))
                idx += 1
        norm(p + "out.0", mc)
        conv(p + "out.2", mc, 4, 3)

    def resblock(self, x, emb, q):
        g = self.get
        w, b = g(q + "in_layers.0")
        h = F.conv2d(F.silu(F.group_norm(x, 32, w, b, 1e-5)), *g(q + "in_layers.2"), padding=1)
        h = h + (F.silu(emb) @ g(q + "emb_layers.1")[0].T + g(q + "emb_layers.1")[1])[:, :, None, None]
        w, b = g(q + "out_layers.0")
        h = F.conv2d(F.silu(F.group_norm(h, 32, w, b, 1e-5)), *g(q + "out_layers.3"), padding=1)
        skip = F.conv2d(x, *g(q + "skip_connection")) if (q + "skip_connection") in self.w else x
        return skip + h

    def attention(self, x, ctx, a, heads):
        g = self.get
        q = x @ g(a + ".to_q")[0].T
        k = ctx @ g(a + ".to_k")[0].T
        v = ctx @ g(a + ".to_v")[0].T
        B, N, C = q.shape
        M = k.shape[1]
        d = C // heads
        q = q.view(B, N, heads, d).transpose(1, 2)
        k = k.view(B, M, heads, d).transpose(1, 2)
        v = v.view(B, M, heads, d).transpose(1, 2)
        att = ((q @ k.transpose(-1, -2)) * d ** -0.5).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(B, N, C)
        w, b = g(a + ".to_out.0")
        return o @ w.T + b

    def transformer(self, x, ctx, q, ch, depth):
        g = self.get
        c = self.cfg
        heads = ch // c["head_dim"] if c["head_dim"] else c["num_heads"]
        B, C, H, Wd = x.shape
        w, b = g(q + "norm")
        h = F.group_norm(x, 32, w, b, 1e-6)
        if c["linear_proj"]:
            h = h.permute(0, 2, 3, 1).reshape(B, H * Wd, C)
            h = h @ g(q + "proj_in")[0].T + g(q + "proj_in")[1]
        else:
            h = F.conv2d(h, *g(q + "proj_in")).permute(0, 2, 3, 1).reshape(B, H * Wd, C)
        for j in range(depth):
            bq = f"{q}transformer_blocks.{j}."
            n1 = F.layer_norm(h, (C,), *g(bq + "norm1"), 1e-5)
            h = self.attention(n1, n1, bq + "attn1", heads) + h
            h = self.attention(F.layer_norm(h, (C,), *g(bq + "norm2"), 1e-5), ctx, bq + "attn2", heads) + h
            pr = F.layer_norm(h, (C,), *g(bq + "norm3"), 1e-5) @ g(bq + "ff.net.0.proj")[0].T + g(bq + "ff.net.0.proj")[1]
            val, gate = pr.chunk(2, dim=-1)
            h = (val * F.gelu(gate)) @ g(bq + "ff.net.2")[0].T + g(bq + "ff.net.2")[1] + h
        if c["linear_proj"]:
            h = h @ g(q + "proj_out")[0].T + g(q + "proj_out")[1]
            h = h.reshape(B, H, Wd, C).permute(0, 3, 1, 2)
        else:
            h = F.conv2d(h.reshape(B, H, Wd, C).permute(0, 3, 1, 2), *g(q + "proj_out"))
        return h + x

    def forward(self, x, t, ctx, y=None):
        g = self.get
        c, p = self.cfg, self.p
        emb = timestep_embedding(t, c["model_channels"]) @ g(p + "time_embed.0")[0].T + g(p + "time_embed.0")[1]
        emb = F.silu(emb) @ g(p + "time_embed.2")[0].T + g(p + "time_embed.2")[1]
        if c["adm"]:
            e = y @ g(p + "label_emb.0.0")[0].T + g(p + "label_emb.0.0")[1]
            emb = emb + F.silu(e) @ g(p + "label_emb.0.2")[0].T + g(p + "label_emb.0.2")[1]
        hs = []
        h = x
        for blk in self.inputs:
            if blk[0] == "conv":
                h = F.conv2d(h, *g(blk[1]), padding=1)
            elif blk[0] == "down":
                h = F.conv2d(h, *g(blk[1]), stride=2, padding=1)
            else:
                _, q, ch, depth = blk
                h = self.resblock(h, emb, q + "0.")
                if depth:
                    h = self.transformer(h, ctx, q + "1.", ch, depth)
            hs.append(h)
        h = self.resblock(h, emb, p + "middle_block.0.")
        h = self.transformer(h, ctx, p + "middle_block.1.", self.mid_ch, c["middle_depth"])
        h = self.resblock(h, emb, p + "middle_block.2.")
        for q, ch, depth, up in self.outputs:
            h = torch.cat([h, hs.pop()], dim=1)
            h = self.resblock(h, emb, q + "0.")
            if depth:
                h = self.transformer(h, ctx, q + "1.", ch, depth)
            if up:
                h = F.conv2d(F.interpolate(h, scale_factor=2.0, mode="nearest"), *g(up), padding=1)
        w, b = g(p + "out.0")
        return F.conv2d(F.silu(F.group_norm(h, 32, w, b, 1e-5)), *g(p + "out.2"), padding=1)


# --- VAE decoder --------------------------------------------------------------------------------

def vae_reference(W, cfg, latent):
    p = cfg["prefix"]
    d = p + "decoder."
    w = {}

    def conv(n, ci, co, k):
        w[n] = W.conv(n, ci, co, k)

    def norm(n, c):
        w[n] = W.norm(n, c)

    def resnet(q, ci, co):
        norm(q + "norm1", ci)
        conv(q + "conv1", ci, co, 3)
        norm(q + "norm2", co)
        conv(q + "conv2", co, co, 3)
        if ci != co:
            conv(q + "nin_shortcut", ci, co, 1)

    def run_resnet(x, q):
        h = F.conv2d(F.silu(F.group_norm(x, 32, *w[q + "norm1"], 1e-6)), *w[q + "conv1"], padding=1)
        h = F.conv2d(F.silu(F.group_norm(h, 32, *w[q + "norm2"], 1e-6)), *w[q + "conv2"], padding=1)
        return (F.conv2d(x, *w[q + "nin_shortcut"]) if (q + "nin_shortcut") in w else x) + h

    ch_mult, ch0, nrb = cfg["ch_mult"], cfg["ch"], cfg["num_res_blocks"]
    ch = ch0 * ch_mult[-1]
    conv(p + "post_quant_conv", 4, 4, 1)
    conv(d + "conv_in", 4, ch, 3)
    resnet(d + "mid.block_1.", ch, ch)
    a = d + "mid.attn_1."
    norm(a + "norm", ch)
    for n in ("q", "k", "v", "proj_out"):
        conv(a + n, ch, ch, 1)
    resnet(d + "mid.block_2.", ch, ch)
    plan = []
    for level in reversed(range(len(ch_mult))):
        out = ch0 * ch_mult[level]
        for i in range(nrb + 1):
            resnet(f"{d}up.{level}.block.{i}.", ch, out)
            plan.append(("res", f"{d}up.{level}.block.{i}."))
            ch = out
        if level:
            conv(f"{d}up.{level}.upsample.conv", ch, ch, 3)
            plan.append(("up", f"{d}up.{level}.upsample.conv"))
    norm(d + "norm_out", ch)
    conv(d + "conv_out", ch, 3, 3)

    z = F.conv2d(latent / cfg["scale"], *w[p + "post_quant_conv"])
    x = F.conv2d(z, *w[d + "conv_in"], padding=1)
    x = run_resnet(x, d + "mid.block_1.")
    B, C, H, Wd = x.shape
    hn = F.group_norm(x, 32, *w[a + "norm"], 1e-6)
    q = F.conv2d(hn, *w[a + "q"]).reshape(B, C, H * Wd).permute(0, 2, 1)
    k = F.conv2d(hn, *w[a + "k"]).reshape(B, C, H * Wd)
    v = F.conv2d(hn, *w[a + "v"]).reshape(B, C, H * Wd)
    att = ((q @ k) * C ** -0.5).softmax(-1)                  # (B, HW, HW)
    o = (v @ att.permute(0, 2, 1)).reshape(B, C, H, Wd)
    x = x + F.conv2d(o, *w[a + "proj_out"])
    x = run_resnet(x, d + "mid.block_2.")
    for kind, n in plan:
        if kind == "res":
            x = run_resnet(x, n)
        else:
            x = F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), *w[n], padding=1)
    x = F.silu(F.group_norm(x, 32, *w[d + "norm_out"], 1e-6))
    return F.conv2d(x, *w[d + "conv_out"], padding=1)


# --- TAESD decoder -----------------------------------------------------------------------------

def write_taesd(channels=8):
    import torch.nn as nn
    g = torch.Generator().manual_seed(40)
    stored = {}

    def conv(n_in, n_out, bias=True):
        c = nn.Conv2d(n_in, n_out, 3, padding=1, bias=bias)
        return c

    class Clamp(nn.Module):
        def forward(self, x):
            return torch.tanh(x / 3) * 3

    class Block(nn.Module):
        def __init__(self, n_in, n_out):
            super().__init__()
            self.conv = nn.Sequential(conv(n_in, n_out), nn.ReLU(), conv(n_out, n_out), nn.ReLU(),
                                      conv(n_out, n_out))
            self.skip = nn.Identity()
            self.fuse = nn.ReLU()

        def forward(self, x):
            return self.fuse(self.conv(x) + self.skip(x))

    C = channels
    layers = [conv(4, C), nn.ReLU()]
    for _ in range(3):
        layers += [Block(C, C), Block(C, C), Block(C, C), nn.Upsample(scale_factor=2),
                   conv(C, C, bias=False)]
    layers += [Block(C, C), conv(C, 3)]
    decoder = nn.Sequential(Clamp(), *layers)
    # Random weights of a scale that keeps activations alive through ReLUs (He), stored as F16
    # and used as the float32 values of those F16 numbers.
    with torch.no_grad():
        for name, p in decoder.named_parameters():
            if name.endswith("weight"):
                fan_in = p.shape[1] * p.shape[2] * p.shape[3]
                v = torch.randn(p.shape, generator=g) * math.sqrt(2.0 / fan_in)
            else:
                v = 0.1 * torch.randn(p.shape, generator=g)
            v16 = v.to(torch.float16)
            p.copy_(v16.to(torch.float32))
            index, rest = name.split(".", 1)
            stored[f"decoder.layers.{int(index) - 1}.{rest}"] = v16
        lat = 2.0 * torch.randn(1, 4, 5, 6, generator=g)
        img = decoder(lat) * 2 - 1
    save_safetensors(os.path.join(GOLDEN, "taesd.safetensors"), stored)
    with open(os.path.join(GOLDEN, "taesd.json"), "w") as f:
        json.dump({"channels": C, "latent": to_nhwc(lat).flatten().tolist(), "h": 5, "w": 6,
                   "image": to_nhwc(img).flatten().tolist()}, f)


# --- diffusers names ----------------------------------------------------------------------------

UNET_RESNET = {"in_layers.0.": "norm1.", "in_layers.2.": "conv1.", "emb_layers.1.": "time_emb_proj.",
               "out_layers.0.": "norm2.", "out_layers.3.": "conv2.", "skip_connection.": "conv_shortcut."}


def _sub_prefix(rest, table):
    for a, b in table.items():
        if rest.startswith(a):
            return b + rest[len(a):]
    return rest


def diffusers_unet_name(name, nrb):
    """LDM UNet name (without model.diffusion_model.) -> diffusers name."""
    import re
    fixed = {"time_embed.0.": "time_embedding.linear_1.", "time_embed.2.": "time_embedding.linear_2.",
             "label_emb.0.0.": "add_embedding.linear_1.", "label_emb.0.2.": "add_embedding.linear_2.",
             "input_blocks.0.0.": "conv_in.", "out.0.": "conv_norm_out.", "out.2.": "conv_out."}
    for a, b in fixed.items():
        if name.startswith(a):
            return b + name[len(a):]
    m = re.match(r"input_blocks\.(\d+)\.(\d+)\.(.*)", name)
    if m:
        b, k, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        level, j = (b - 1) // (nrb + 1), (b - 1) % (nrb + 1)
        if j == nrb:
            assert rest.startswith("op.")
            return f"down_blocks.{level}.downsamplers.0.conv." + rest[3:]
        if k == 0:
            return f"down_blocks.{level}.resnets.{j}." + _sub_prefix(rest, UNET_RESNET)
        return f"down_blocks.{level}.attentions.{j}." + rest
    m = re.match(r"output_blocks\.(\d+)\.(\d+)\.(.*)", name)
    if m:
        b, k, rest = int(m.group(1)), int(m.group(2)), m.group(3)
        level, j = b // (nrb + 1), b % (nrb + 1)
        if k == 0:
            return f"up_blocks.{level}.resnets.{j}." + _sub_prefix(rest, UNET_RESNET)
        if rest.startswith("conv."):  # the Upsample (after the resnet, or after the attention)
            return f"up_blocks.{level}.upsamplers.0." + rest
        return f"up_blocks.{level}.attentions.{j}." + rest
    m = re.match(r"middle_block\.(\d)\.(.*)", name)
    if m:
        k, rest = int(m.group(1)), m.group(2)
        if k == 1:
            return "mid_block.attentions.0." + rest
        return f"mid_block.resnets.{k // 2}." + _sub_prefix(rest, UNET_RESNET)
    raise ValueError("no diffusers name for UNet tensor " + name)


def diffusers_vae_name(name, levels):
    """LDM VAE name (without first_stage_model.) -> (diffusers name, stored 2-D)."""
    import re
    for a, b in {"post_quant_conv.": "post_quant_conv.", "quant_conv.": "quant_conv."}.items():
        if name.startswith(a):
            return b + name[len(a):], False
    part, rest = name.split(".", 1)  # decoder / encoder
    resnet = {"nin_shortcut.": "conv_shortcut."}
    for a, b in {"conv_in.": "conv_in.", "conv_out.": "conv_out.", "norm_out.": "conv_norm_out."}.items():
        if rest.startswith(a):
            return f"{part}.{b}" + rest[len(a):], False
    m = re.match(r"mid\.block_(\d)\.(.*)", rest)
    if m:
        return f"{part}.mid_block.resnets.{int(m.group(1)) - 1}." + _sub_prefix(m.group(2), resnet), False
    if rest.startswith("mid.attn_1."):
        inner = rest[len("mid.attn_1."):]
        attn = {"norm.": "group_norm.", "q.": "to_q.", "k.": "to_k.", "v.": "to_v.", "proj_out.": "to_out.0."}
        mapped = _sub_prefix(inner, attn)
        return f"{part}.mid_block.attentions.0." + mapped, mapped.endswith("weight") and not mapped.startswith("group_norm")
    m = re.match(r"(up|down)\.(\d+)\.(block\.(\d+)|upsample|downsample)\.(.*)", rest)
    if m:
        l = int(m.group(2))
        i = levels - 1 - l if m.group(1) == "up" else l
        blocks = "up_blocks" if m.group(1) == "up" else "down_blocks"
        if m.group(4) is not None:
            return f"{part}.{blocks}.{i}.resnets.{m.group(4)}." + _sub_prefix(m.group(5), resnet), False
        sampler = "upsamplers" if m.group(3) == "upsample" else "downsamplers"
        return f"{part}.{blocks}.{i}.{sampler}.0." + m.group(5), False
    raise ValueError("no diffusers name for VAE tensor " + name)


def safetensors_names(path):
    import struct
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    return [k for k in h if k != "__metadata__"]


def diffusers_map(names, nrb, vae_levels):
    """{LDM name: [component, diffusers name, stored 2-D]} of a checkpoint's names."""
    out = {}
    for n in names:
        if n.startswith("model.diffusion_model."):
            out[n] = ["unet", diffusers_unet_name(n[len("model.diffusion_model."):], nrb), False]
        elif n.startswith("first_stage_model."):
            d, flat = diffusers_vae_name(n[len("first_stage_model."):], vae_levels)
            out[n] = ["vae", d, flat]
        elif n.startswith("cond_stage_model.transformer."):
            out[n] = ["text_encoder", n[len("cond_stage_model.transformer."):], False]
        elif n.startswith("te."):
            out[n] = ["text_encoder", "text_model." + n[len("te."):], False]
        else:
            raise ValueError("no component for " + n)
    return out


def write_diffusers_names(tiny_sd15):
    out = {}
    for name, cfg in TINY_UNETS.items():
        out[f"unet_{name}"] = diffusers_map(
            safetensors_names(os.path.join(GOLDEN, f"unet_{name}.safetensors")), cfg["num_res_blocks"], 0)
    out["vae"] = diffusers_map(safetensors_names(os.path.join(GOLDEN, "vae.safetensors")), 0,
                               len(TINY_VAE["ch_mult"]))
    out["clip_openai"] = diffusers_map(safetensors_names(os.path.join(GOLDEN, "clip_openai.safetensors")), 0, 0)
    # The OpenCLIP golden encoder in Hugging Face's names, as a diffusers SDXL text_encoder_2
    # (CLIPTextModelWithProjection) stores bigG: q|k|v split out of in_proj, resblocks ->
    # encoder.layers, ln_1/ln_2 -> layer_norm1/2, mlp.c_fc/c_proj -> mlp.fc1/fc2, ln_final ->
    # final_layer_norm, text_projection -> the Linear text_projection.weight (transposed).
    W = Weights(2)
    ids = [49406 % 1000] + [17, 450, 3, 999, 512] + [49407 % 1000] + [0] * 70
    clip_reference(W, "te.", "openclip", 1000, 32, 3, 4, False, 24, ids, 1, True)
    hf = {}
    for name, t in W.stored.items():
        n = name[len("te."):]
        if n == "text_projection":
            hf["text_projection.weight"] = t.T.contiguous()
            continue
        if n.startswith("transformer.resblocks."):
            i, rest = n[len("transformer.resblocks."):].split(".", 1)
            q = f"text_model.encoder.layers.{i}."
            if rest.startswith("attn.in_proj_"):
                kind = rest[len("attn.in_proj_"):]
                w = t.shape[0] // 3
                for j, part in enumerate(("q", "k", "v")):
                    hf[q + f"self_attn.{part}_proj.{kind}"] = t[j * w:(j + 1) * w].contiguous()
                continue
            rest = {"ln_1.": "layer_norm1.", "ln_2.": "layer_norm2.", "attn.out_proj.": "self_attn.out_proj.",
                    "mlp.c_fc.": "mlp.fc1.", "mlp.c_proj.": "mlp.fc2."}.get(rest.rsplit(".", 1)[0] + ".", None) + rest.rsplit(".", 1)[1]
            hf[q + rest] = t
            continue
        hf["text_model." + {"token_embedding.weight": "embeddings.token_embedding.weight",
                            "positional_embedding": "embeddings.position_embedding.weight",
                            "ln_final.weight": "final_layer_norm.weight",
                            "ln_final.bias": "final_layer_norm.bias"}[n]] = t
    save_safetensors(os.path.join(GOLDEN, "clip_openclip_hf.safetensors"), hf)
    # `sluice synth --preset sd15 --tiny`: 2 residual blocks per level, the VAE's 4 levels.
    out["tiny_sd15"] = diffusers_map(safetensors_names(tiny_sd15), 2, 4)
    with open(os.path.join(GOLDEN, "diffusers_names.json"), "w") as f:
        json.dump(out, f, indent=0, sort_keys=True)


# --- k-diffusion sampling (Euler, eps prediction, classifier-free guidance) ----------------------

def schedule_sigmas():
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
    ac = torch.cumprod(1 - betas, dim=0)
    return ((1 - ac) / ac) ** 0.5


def sigma_to_t(sigma, log_sigmas):
    log_sigma = math.log(sigma)
    dists = log_sigma - log_sigmas
    low_idx = int(torch.clamp((dists >= 0).cumsum(0).argmax(), max=len(log_sigmas) - 2))
    high_idx = low_idx + 1
    low, high = float(log_sigmas[low_idx]), float(log_sigmas[high_idx])
    w = min(max((low - log_sigma) / (low - high), 0.0), 1.0)
    return (1 - w) * low_idx + w * high_idx


def t_to_sigma(t, log_sigmas):
    low_idx = math.floor(t)
    high_idx = min(math.ceil(t), len(log_sigmas) - 1)
    w = t - low_idx
    return math.exp((1 - w) * float(log_sigmas[low_idx]) + w * float(log_sigmas[high_idx]))


def discrete_sigmas(n):
    log_sigmas = schedule_sigmas().log()
    ts = torch.linspace(999, 0, n, dtype=torch.float64)
    return [t_to_sigma(float(t), log_sigmas) for t in ts] + [0.0], log_sigmas


# --- golden files -------------------------------------------------------------------------------

TINY_UNETS = {
    "sd1": dict(prefix="model.diffusion_model.", model_channels=32, channel_mult=[1, 2],
                num_res_blocks=1, depth=[1, 0], middle_depth=1, context_dim=32, num_heads=2,
                head_dim=0, linear_proj=False, adm=0),
    "sd2": dict(prefix="model.diffusion_model.", model_channels=32, channel_mult=[1, 2],
                num_res_blocks=1, depth=[1, 1], middle_depth=1, context_dim=48, num_heads=0,
                head_dim=16, linear_proj=True, adm=0),
    "sdxl": dict(prefix="model.diffusion_model.", model_channels=32, channel_mult=[1, 2],
                 num_res_blocks=2, depth=[0, 2], middle_depth=2, context_dim=40, num_heads=0,
                 head_dim=16, linear_proj=True, adm=24),
}
TINY_VAE = dict(prefix="first_stage_model.", ch=32, ch_mult=[1, 2], num_res_blocks=1, scale=0.18215)


def to_nhwc(x):
    return x.permute(0, 2, 3, 1).contiguous()


def write_models():
    torch.manual_seed(0)
    out = {}
    # CLIP text encoders: OpenAI layout (quick GELU, last layer + final norm) and OpenCLIP (GELU,
    # penultimate + final norm, and the pooled projection).
    ids = [49406 % 1000] + [17, 450, 3, 999, 512] + [49407 % 1000] + [0] * 70
    W = Weights(1)
    hidden, _ = clip_reference(W, "te.", "openai", 1000, 32, 3, 2, True, 0, ids, 0, True)
    save_safetensors(os.path.join(GOLDEN, "clip_openai.safetensors"), W.stored)
    out["clip_openai"] = {"ids": ids, "hidden": hidden.flatten().tolist()}
    W = Weights(2)
    hidden, pooled = clip_reference(W, "te.", "openclip", 1000, 32, 3, 4, False, 24, ids, 1, True)
    save_safetensors(os.path.join(GOLDEN, "clip_openclip.safetensors"), W.stored)
    out["clip_openclip"] = {"ids": ids, "hidden": hidden.flatten().tolist(),
                            "pooled": pooled.flatten().tolist()}
    # UNets: two timesteps, a batch of two images (different contexts).
    for name, cfg in TINY_UNETS.items():
        W = Weights(10 + len(out))
        u = UNetRef(W, cfg)
        u.build()
        g = torch.Generator().manual_seed(5)
        x = torch.randn(2, 4, 8, 8, generator=g)
        ctx = torch.randn(2, 7, cfg["context_dim"], generator=g)
        y = torch.randn(2, cfg["adm"], generator=g) if cfg["adm"] else None
        t = torch.tensor([999.0, 261.5])
        with torch.no_grad():
            eps = u.forward(x, t, ctx, y)
        save_safetensors(os.path.join(GOLDEN, f"unet_{name}.safetensors"), W.stored)
        out[f"unet_{name}"] = {"x": to_nhwc(x).flatten().tolist(), "t": t.tolist(),
                               "context": ctx.flatten().tolist(),
                               "y": y.flatten().tolist() if y is not None else [],
                               "out": to_nhwc(eps).flatten().tolist()}
        if name == "sd1":
            # Four Euler steps with classifier-free guidance (scale 5), noise from seed 42.
            sigmas, log_sigmas = discrete_sigmas(4)
            noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(42))
            lat = noise * sigmas[0]
            cond, uncond = ctx[0:1], ctx[1:2]
            with torch.no_grad():
                for i in range(4):
                    s = sigmas[i]
                    tt = torch.tensor([sigma_to_t(s, log_sigmas)] * 2)
                    inp = torch.cat([lat, lat]) / math.sqrt(s * s + 1)
                    e = u.forward(inp, tt, torch.cat([cond, uncond]))
                    eps = e[1:2] + 5.0 * (e[0:1] - e[1:2])
                    den = lat - eps * s
                    lat = lat + (lat - den) / s * (sigmas[i + 1] - s)
            out["sample_sd1_euler"] = {"sigmas": sigmas, "noise": to_nhwc(noise).flatten().tolist(),
                                       "latent": to_nhwc(lat).flatten().tolist()}
    # VAE decoder: a 4x4 latent -> 8x8 image (two levels).
    W = Weights(30)
    g = torch.Generator().manual_seed(6)
    lat = torch.randn(1, 4, 4, 4, generator=g)
    with torch.no_grad():
        img = vae_reference(W, TINY_VAE, lat)
    save_safetensors(os.path.join(GOLDEN, "vae.safetensors"), W.stored)
    out["vae"] = {"latent": to_nhwc(lat).flatten().tolist(), "image": to_nhwc(img).flatten().tolist()}
    # torch.randn on the CPU: what --rng cpu must reproduce.
    out["randn_cpu"] = {str(seed): torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(seed)).flatten().tolist()
                        for seed in (0, 42, 1234567)}
    out["randn_cpu_small"] = {"seed": 7, "values": torch.randn(5, generator=torch.Generator().manual_seed(7)).tolist()}
    sig, _ = discrete_sigmas(10)
    out["discrete_sigmas_10"] = sig
    with open(os.path.join(GOLDEN, "models.json"), "w") as f:
        json.dump(out, f)


def main():
    os.makedirs(GOLDEN, exist_ok=True)
    if sys.argv[1:] == ["taesd"]:
        write_taesd()
        return
    if sys.argv[1:2] == ["diffusers"]:
        write_diffusers_names(sys.argv[2])
        return
    write_clip_tokens()
    write_models()
    write_taesd()


if __name__ == "__main__":
    sys.exit(main())

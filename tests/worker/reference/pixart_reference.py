"""An independent reference of the PixArt-α forward pass (Chen et al., "PixArt-α: Fast Training of
Diffusion Transformer for Photorealistic Text-to-Image Synthesis", 2023), in plain torch, for
tests/worker/models/pixart_reference_test.cpp.

Written from the published architecture (PixArt-alpha diffusion/model/nets/PixArt.py and
PixArt_blocks.py), with module and parameter names chosen so that `state_dict()` has the reference
implementation's keys. What differs from DiT (dit_reference.py supplies the shared pieces: patch
embedding, sin-cos table, timestep features, self-attention, MLP):

  t_block.1                    adaLN-single: ONE SiLU -> Linear(D, 6D) of the timestep embedding,
                               shared by every block
  blocks.i.scale_shift_table   [6, D] added to t_block's output reshaped [N, 6, D]: shift, scale,
                               gate of self-attention, then of the MLP (x * (1 + scale) + shift)
  blocks.i.cross_attn.{q_linear,kv_linear,proj}
                               after self-attention, image tokens attend to the caption tokens,
                               neither modulated nor gated; a sample attends only to its own valid
                               tokens (the reference packs them with a block-diagonal mask)
  y_embedder.y_proj.{fc1,fc2}  caption features -> fc1 -> GELU(tanh) -> fc2
  y_embedder.y_embedding       the null caption [max_tokens, C_caption] (a buffer): a dropped
                               caption is replaced by it before the projection
  final_layer.scale_shift_table [2, D] plus the timestep embedding itself (not t_block's output)
                               gives the final shift/scale; then final_layer.linear

Class mode ([recon], ours: the reference is text-to-image only): y_embedder.embedding_table with a
null class row, the label's row as a single condition token.

Usage: pixart_reference.py OUT_DIR. Cases:
  text_square     8x8 latents, integer timesteps, a caption mask with 4, 2 and 1 valid tokens
  text_nonsquare  8x12 latents, fractional timesteps, no mask, the second caption dropped
  class_square    8x8 latents, labels with the null class in the middle
Each writes OUT_DIR/pixart_<case>.pt (torch.save(state_dict), every weight random and non-zero) and
OUT_DIR/io_<case>.pt {"x", "t", "y" or "tokens" (+ "mask", "drop"), "out", "out_f32"}.
"""
import math
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dit_reference import (Attention, Mlp, PatchEmbed, TimestepEmbedder, gelu_tanh,  # noqa: E402
                           layer_norm_no_affine, randomise, sincos_2d)

CONFIG = dict(in_channels=4, patch=2, width=64, depth=2, heads=4, mlp_ratio=4.0, learn_sigma=True)
CAPTION_CHANNELS, MAX_TOKENS, NUM_CLASSES = 24, 4, 10


def t2i_modulate(x, shift, scale):
    # x [N, T, D]; shift, scale [N, 1, D]
    return x * (1 + scale) + shift


class CrossAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.q_linear = nn.Linear(width, width)
        self.kv_linear = nn.Linear(width, 2 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x, cond, mask):
        # x [N, T, D], cond [N, L, D], mask [N, L] bool or None; each sample on its own, as the
        # reference's block-diagonal packing of the valid caption tokens does
        n, t, d = x.shape
        hd = d // self.heads
        outs = []
        for i in range(n):
            keys = cond[i] if mask is None else cond[i][mask[i]]      # [L_i, D]
            q = self.q_linear(x[i]).view(t, self.heads, hd).transpose(0, 1)      # [H, T, hd]
            k, v = self.kv_linear(keys).view(-1, 2, self.heads, hd).unbind(1)   # [L_i, H, hd]
            k, v = k.transpose(0, 1), v.transpose(0, 1)                          # [H, L_i, hd]
            w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1)
            outs.append((w @ v).transpose(0, 1).reshape(t, d))
        return self.proj(torch.stack(outs))


class Block(nn.Module):
    def __init__(self, width, heads, mlp_ratio):
        super().__init__()
        self.attn = Attention(width, heads)
        self.cross_attn = CrossAttention(width, heads)
        self.mlp = Mlp(width, int(width * mlp_ratio))
        self.scale_shift_table = nn.Parameter(torch.randn(6, width) / width ** 0.5)

    def forward(self, x, cond, mask, t0):
        n, d = x.shape[0], x.shape[2]
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = (
            self.scale_shift_table[None] + t0.reshape(n, 6, d)).chunk(6, dim=1)   # each [N, 1, D]
        x = x + gate_msa * self.attn(t2i_modulate(layer_norm_no_affine(x), shift_msa, scale_msa))
        x = x + self.cross_attn(x, cond, mask)
        return x + gate_mlp * self.mlp(t2i_modulate(layer_norm_no_affine(x), shift_mlp, scale_mlp))


class CaptionMlp(nn.Module):
    # The reference's Mlp(in_features=C_caption, hidden_features=D, out_features=D, GELU(tanh)).
    def __init__(self, caption_channels, width):
        super().__init__()
        self.fc1 = nn.Linear(caption_channels, width)
        self.fc2 = nn.Linear(width, width)


class CaptionEmbedder(nn.Module):
    def __init__(self, caption_channels, width, max_tokens):
        super().__init__()
        self.y_proj = CaptionMlp(caption_channels, width)
        self.register_buffer("y_embedding", torch.randn(max_tokens, caption_channels) / caption_channels ** 0.5)

    def forward(self, caption, drop):
        if drop is not None:
            caption = torch.where(drop[:, None, None], self.y_embedding[None].to(caption.dtype), caption)
        return self.y_proj.fc2(gelu_tanh(self.y_proj.fc1(caption)))


class LabelEmbedder(nn.Module):
    def __init__(self, num_classes, width):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, width)

    def forward(self, y, drop):
        return self.embedding_table(y)[:, None, :]  # one condition token


class FinalLayer(nn.Module):
    def __init__(self, width, patch, channels):
        super().__init__()
        self.linear = nn.Linear(width, patch * patch * channels)
        self.scale_shift_table = nn.Parameter(torch.randn(2, width) / width ** 0.5)

    def forward(self, x, t_emb):
        shift, scale = (self.scale_shift_table[None] + t_emb[:, None]).chunk(2, dim=1)
        return self.linear(t2i_modulate(layer_norm_no_affine(x), shift, scale))


class ReferencePixArt(nn.Module):
    def __init__(self, in_channels, patch, width, depth, heads, mlp_ratio, learn_sigma, latent_h, latent_w, text):
        super().__init__()
        self.patch = patch
        self.out_channels = 2 * in_channels if learn_sigma else in_channels
        self.grid = (latent_h // patch, latent_w // patch)
        self.x_embedder = PatchEmbed(in_channels, width, patch)
        self.t_embedder = TimestepEmbedder(width)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        self.y_embedder = (CaptionEmbedder(CAPTION_CHANNELS, width, MAX_TOKENS) if text
                           else LabelEmbedder(NUM_CLASSES, width))
        self.pos_embed = nn.Parameter(sincos_2d(width, *self.grid), requires_grad=False)
        self.blocks = nn.ModuleList([Block(width, heads, mlp_ratio) for _ in range(depth)])
        self.final_layer = FinalLayer(width, patch, self.out_channels)

    def unpatchify(self, tokens):
        n, (h, w), p, c = tokens.shape[0], self.grid, self.patch, self.out_channels
        return tokens.reshape(n, h, w, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(n, c, h * p, w * p)

    def forward(self, x, t, y, mask=None, drop=None):
        tokens = self.x_embedder(x) + self.pos_embed
        t_emb = self.t_embedder(t)
        t0 = self.t_block(t_emb)
        cond = self.y_embedder(y, drop)
        for block in self.blocks:
            tokens = block(tokens, cond, mask, t0)
        return self.unpatchify(self.final_layer(tokens, t_emb))


def main():
    out_dir = sys.argv[1]
    generator = torch.Generator().manual_seed(4321)
    cases = [("text_square", 8, 8, "int", True), ("text_nonsquare", 8, 12, "float", True),
             ("class_square", 8, 8, "int", False)]
    for name, h, w, t_kind, text in cases:
        model = ReferencePixArt(**CONFIG, latent_h=h, latent_w=w, text=text).eval()
        randomise(model, generator)
        with torch.no_grad():
            for block in model.blocks:  # tables as the reference draws them, not scaled by fan-in
                block.scale_shift_table.copy_(torch.randn(block.scale_shift_table.shape, generator=generator) * 0.5)
            model.final_layer.scale_shift_table.copy_(torch.randn(2, CONFIG["width"], generator=generator) * 0.5)
            if text:
                model.y_embedder.y_embedding.copy_(torch.randn(MAX_TOKENS, CAPTION_CHANNELS, generator=generator))
        torch.save(model.state_dict(), os.path.join(out_dir, "pixart_%s.pt" % name))

        n = 3
        x = torch.randn(n, CONFIG["in_channels"], h, w, generator=generator)
        t = (torch.randint(0, 1000, (n,), generator=generator) if t_kind == "int"
             else torch.rand(n, generator=generator) * 999.0)
        io = {"x": x, "t": t}
        if text:
            y = torch.randn(n, MAX_TOKENS, CAPTION_CHANNELS, generator=generator)
            mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool) \
                if name == "text_square" else None
            drop = torch.tensor([False, True, False]) if name == "text_nonsquare" else None
            io["tokens"] = y
            if mask is not None:
                io["mask"] = mask
            if drop is not None:
                io["drop"] = drop
        else:
            y, mask, drop = torch.tensor([3, NUM_CLASSES, 7]), None, None
            io["y"] = y
        with torch.no_grad():
            out_f32 = model(x, t, y, mask, drop)
            model = model.double()
            out = model(x.double(), t, y.double() if text else y, mask, drop)
        io["out"], io["out_f32"] = out, out_f32
        torch.save(io, os.path.join(out_dir, "io_%s.pt" % name))
        print("%s: |out| max %.3f, float32 vs float64 max diff %.2e"
              % (name, out.abs().max().item(), (out_f32.double() - out).abs().max().item()))


if __name__ == "__main__":
    main()

"""An independent reference of the MM-DiT forward pass (Esser et al., "Scaling Rectified Flow
Transformers for High-Resolution Image Synthesis", 2024: Stable Diffusion 3), in plain torch, for
tests/worker/models/mmdit_reference_test.cpp.

Written from the published architecture (Stability-AI sd3 mmditx.py), with module and parameter
names chosen so that `state_dict()` has the reference implementation's keys. dit_reference.py
supplies the pieces DiT shares (patch embedding, sin-cos table, timestep features, MLP).

  y_embedder.mlp.{0,2}          pooled condition -> Linear-SiLU-Linear, added to the timestep
                                embedding: c drives every adaLN
  context_embedder              Linear(C_context, D) of the condition tokens
  joint_blocks.i.{context_block,x_block}
                                one stream each ("DismantledBlock"): adaLN_modulation.1 (SiLU ->
                                Linear(D, 6D); 2D for the last block's context stream, "pre_only"),
                                attn.qkv, attn.ln_q / attn.ln_k (RMSNorm over each head's channels,
                                with qk_norm), attn.proj and mlp.fc1/fc2 (absent when pre_only).
                                ONE attention over cat([context, image]) tokens, context first.
  final_layer                   as DiT's: SiLU -> Linear(D, 2D) shift/scale, then Linear

Ours on top of SD3 (documented in worker/models/mmdit.h): the positional table is the latent
grid's own (SD3 crops a larger one: equal for a grid at the table's centre); padding caption slots
can be excluded as attention keys (a key mask); class mode ([recon]) embeds the label with
label_embedder.embedding_table and uses it as the one context token and as the pooled vector.

Usage: mmdit_reference.py OUT_DIR. Cases:
  text_square_qknorm  8x8 latents, integer timesteps, q/k RMSNorm, a key mask (4, 2, 1 real tokens)
  text_nonsquare      8x12 latents, fractional timesteps, no mask, no q/k norm
  class_square        8x8 latents, labels with the null class in the middle
Each writes OUT_DIR/mmdit_<case>.pt and OUT_DIR/io_<case>.pt {"x", "t", "y" | "tokens", "pooled"
(+ "mask"), "out", "out_f32"}.
"""
import math
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dit_reference import (FinalLayer, Mlp, PatchEmbed, TimestepEmbedder, layer_norm_no_affine,  # noqa: E402
                           randomise, shift_scale, sincos_2d)

CONFIG = dict(in_channels=4, patch=2, width=64, depth=2, heads=4, mlp_ratio=4.0)
CONTEXT_CHANNELS, POOLED_CHANNELS, TOKENS, NUM_CLASSES = 24, 16, 4, 10


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class StreamAttention(nn.Module):
    def __init__(self, width, heads, pre_only, qk_norm):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        if qk_norm:
            self.ln_q = RMSNorm(width // heads)
            self.ln_k = RMSNorm(width // heads)
        if not pre_only:
            self.proj = nn.Linear(width, width)
        self.qk_norm = qk_norm

    def pre_attention(self, x):
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, d // self.heads).unbind(2)  # each [N, T, H, hd]
        if self.qk_norm:
            q, k = self.ln_q(q), self.ln_k(k)
        return q, k, v


class DismantledBlock(nn.Module):
    def __init__(self, width, heads, mlp_ratio, pre_only, qk_norm):
        super().__init__()
        self.pre_only = pre_only
        self.attn = StreamAttention(width, heads, pre_only, qk_norm)
        if not pre_only:
            self.mlp = Mlp(width, int(width * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, (2 if pre_only else 6) * width))

    def pre_attention(self, x, c):
        mods = self.adaLN_modulation(c).chunk(2 if self.pre_only else 6, dim=1)
        return self.attn.pre_attention(shift_scale(layer_norm_no_affine(x), mods[0], mods[1])), (x, mods)

    def post_attention(self, attn, state):
        x, (_, _, gate_msa, shift_mlp, scale_mlp, gate_mlp) = state
        x = x + gate_msa[:, None] * self.attn.proj(attn)
        return x + gate_mlp[:, None] * self.mlp(shift_scale(layer_norm_no_affine(x), shift_mlp, scale_mlp))


class JointBlock(nn.Module):
    def __init__(self, width, heads, mlp_ratio, context_pre_only, qk_norm):
        super().__init__()
        self.context_block = DismantledBlock(width, heads, mlp_ratio, context_pre_only, qk_norm)
        self.x_block = DismantledBlock(width, heads, mlp_ratio, False, qk_norm)

    def forward(self, context, x, c, key_mask):
        (cq, ck, cv), c_state = self.context_block.pre_attention(context, c)
        (xq, xk, xv), x_state = self.x_block.pre_attention(x, c)
        q, k, v = (torch.cat(pair, dim=1).transpose(1, 2) for pair in ((cq, xq), (ck, xk), (cv, xv)))  # [N,H,L+T,hd]
        scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
        if key_mask is not None:  # padding caption slots are never keys; image keys always are
            keys = torch.cat([key_mask, torch.ones(x.shape[0], x.shape[1], dtype=torch.bool)], dim=1)
            scores = scores.masked_fill(~keys[:, None, None, :], float("-inf"))
        n, L, d = context.shape
        attn = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(n, L + x.shape[1], d)
        x = self.x_block.post_attention(attn[:, L:], x_state)
        context = None if self.context_block.pre_only else self.context_block.post_attention(attn[:, :L], c_state)
        return context, x


class VectorEmbedder(nn.Module):
    def __init__(self, channels, width):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, y):
        return self.mlp(y)


class ReferenceMMDiT(nn.Module):
    def __init__(self, in_channels, patch, width, depth, heads, mlp_ratio, latent_h, latent_w, text, qk_norm):
        super().__init__()
        self.patch, self.out_channels, self.text = patch, in_channels, text
        self.grid = (latent_h // patch, latent_w // patch)
        self.x_embedder = PatchEmbed(in_channels, width, patch)
        self.t_embedder = TimestepEmbedder(width)
        self.y_embedder = VectorEmbedder(POOLED_CHANNELS if text else width, width)
        self.context_embedder = nn.Linear(CONTEXT_CHANNELS if text else width, width)
        if not text:
            self.label_embedder = nn.Module()
            self.label_embedder.embedding_table = nn.Embedding(NUM_CLASSES + 1, width)
        self.pos_embed = nn.Parameter(sincos_2d(width, *self.grid), requires_grad=False)
        self.joint_blocks = nn.ModuleList(
            [JointBlock(width, heads, mlp_ratio, i == depth - 1, qk_norm) for i in range(depth)])
        self.final_layer = FinalLayer(width, patch, in_channels)

    def unpatchify(self, tokens):
        n, (h, w), p, c = tokens.shape[0], self.grid, self.patch, self.out_channels
        return tokens.reshape(n, h, w, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(n, c, h * p, w * p)

    def forward(self, x, t, y=None, tokens=None, pooled=None, mask=None):
        if not self.text:
            e = self.label_embedder.embedding_table(y)
            tokens, pooled = e[:, None, :], e
        h = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(pooled)
        context = self.context_embedder(tokens)
        for block in self.joint_blocks:
            context, h = block(context, h, c, mask)
        return self.unpatchify(self.final_layer(h, c))


def main():
    out_dir = sys.argv[1]
    generator = torch.Generator().manual_seed(2468)
    cases = [("text_square_qknorm", 8, 8, "int", True, True), ("text_nonsquare", 8, 12, "float", True, False),
             ("class_square", 8, 8, "int", False, False)]
    for name, h, w, t_kind, text, qk_norm in cases:
        model = ReferenceMMDiT(**CONFIG, latent_h=h, latent_w=w, text=text, qk_norm=qk_norm).eval()
        randomise(model, generator)
        with torch.no_grad():  # RMSNorm weights away from 1, so that a missing norm weight shows
            for pname, p in model.named_parameters():
                if pname.endswith(("ln_q.weight", "ln_k.weight")):
                    p.copy_(1.0 + 0.5 * torch.randn(p.shape, generator=generator))
        torch.save(model.state_dict(), os.path.join(out_dir, "mmdit_%s.pt" % name))

        n = 3
        x = torch.randn(n, CONFIG["in_channels"], h, w, generator=generator)
        t = (torch.randint(0, 1000, (n,), generator=generator) if t_kind == "int"
             else torch.rand(n, generator=generator) * 999.0)
        io = {"x": x, "t": t}
        if text:
            io["tokens"] = torch.randn(n, TOKENS, CONTEXT_CHANNELS, generator=generator)
            io["pooled"] = torch.randn(n, POOLED_CHANNELS, generator=generator)
            if name == "text_square_qknorm":
                io["mask"] = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
        else:
            io["y"] = torch.tensor([3, NUM_CLASSES, 7])
        mask = io.get("mask")
        with torch.no_grad():
            out_f32 = model(x, t, io.get("y"), io.get("tokens"), io.get("pooled"), mask)
            model = model.double()
            dbl = lambda z: None if z is None else z.double()  # noqa: E731
            out = model(x.double(), t, io.get("y"), dbl(io.get("tokens")), dbl(io.get("pooled")), mask)
        io["out"], io["out_f32"] = out, out_f32
        torch.save(io, os.path.join(out_dir, "io_%s.pt" % name))
        print("%s: |out| max %.3f, float32 vs float64 max diff %.2e"
              % (name, out.abs().max().item(), (out_f32.double() - out).abs().max().item()))


if __name__ == "__main__":
    main()

"""An independent reference of the DiT forward pass (Peebles & Xie, "Scalable Diffusion Models with
Transformers", 2023), in plain torch, for tests/worker/models/dit_reference_test.cpp.

Written from the published architecture, with module and parameter names chosen so that
`state_dict()` has the reference implementation's keys (facebookresearch/DiT models.py):

  x_embedder.proj             patch embedding, Conv2d(C, D, p, stride p) -> tokens in row-major order
  pos_embed                   fixed 2-D sin-cos table [1, T, D]: first half of the channels encodes
                              the token's column, the second half its row
  t_embedder.mlp.{0,2}        sinusoidal timestep features (cos half first, 256 wide) -> Linear-SiLU-Linear
  y_embedder.embedding_table  num_classes + 1 rows; the last is the classifier-free-guidance null class
  blocks.i.attn.{qkv,proj}    multi-head self-attention with one fused qkv projection (timm layout)
  blocks.i.mlp.{fc1,fc2}      fc1 -> GELU (tanh approximation) -> fc2
  blocks.i.adaLN_modulation.1 SiLU -> Linear(D, 6D): shift/scale/gate for attention and MLP (adaLN-Zero)
  final_layer.{adaLN_modulation.1,linear}
                              SiLU -> Linear(D, 2D) shift/scale, then Linear(D, p*p*C_out)

Usage: dit_reference.py OUT_DIR. For each case (square 8x8 latents with integer timesteps,
non-square 8x12 with fractional ones) it writes
  OUT_DIR/dit_<case>.pt  torch.save(model.state_dict()), every weight random and non-zero
  OUT_DIR/io_<case>.pt   {"x", "t", "y", "out", "out_f32"}: inputs, the forward in float64 with the
                         same (float32) weights, and the same forward run in float32
"""
import math
import os
import sys

import torch
from torch import nn

CONFIG = dict(in_channels=4, patch=2, width=64, depth=2, heads=4, mlp_ratio=4.0, num_classes=10,
              learn_sigma=True)
CASES = [("square", 8, 8, "int"), ("nonsquare", 8, 12, "float")]


def layer_norm_no_affine(x, eps=1e-6):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # biased, as LayerNorm
    return (x - mean) / torch.sqrt(var + eps)


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def shift_scale(x, shift, scale):
    # x [N, T, D]; shift, scale [N, D]
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


def sincos_1d(dim, positions):
    # positions [T] -> [T, dim]: sin(pos * w_k) | cos(pos * w_k), w_k = 10000^(-k / (dim/2))
    k = torch.arange(dim // 2, dtype=torch.float64)
    w = 1.0 / (10000.0 ** (k / (dim // 2)))
    angles = positions.to(torch.float64)[:, None] * w[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def sincos_2d(dim, grid_h, grid_w):
    rows, cols = torch.meshgrid(torch.arange(grid_h), torch.arange(grid_w), indexing="ij")
    rows, cols = rows.reshape(-1), cols.reshape(-1)  # token index = row * grid_w + col
    table = torch.cat([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], dim=1)
    return table.to(torch.float32)[None]  # [1, T, D]


class PatchEmbed(nn.Module):
    def __init__(self, channels, width, patch):
        super().__init__()
        self.proj = nn.Conv2d(channels, width, kernel_size=patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [N, D, h, w] -> [N, h*w, D]


class TimestepEmbedder(nn.Module):
    def __init__(self, width, frequencies=256):
        super().__init__()
        self.frequencies = frequencies
        self.mlp = nn.Sequential(nn.Linear(frequencies, width), nn.SiLU(), nn.Linear(width, width))

    def features(self, t):
        half = self.frequencies // 2
        rates = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        angles = t.float()[:, None] * rates[None, :]
        return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)  # cos first

    def forward(self, t):
        return self.mlp(self.features(t).to(self.mlp[0].weight.dtype))


class LabelEmbedder(nn.Module):
    def __init__(self, num_classes, width):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, width)  # + the null class

    def forward(self, y):
        return self.embedding_table(y)


class Attention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x):
        n, t, d = x.shape
        hd = d // self.heads
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, hd).unbind(dim=2)  # each [N, T, H, hd]
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))                    # [N, H, T, hd]
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(n, t, d))


class Mlp(nn.Module):
    def __init__(self, width, hidden):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x):
        return self.fc2(gelu_tanh(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, width, heads, mlp_ratio):
        super().__init__()
        self.attn = Attention(width, heads)
        self.mlp = Mlp(width, int(width * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

    def forward(self, x, c):
        s1, m1, g1, s2, m2, g2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + g1[:, None, :] * self.attn(shift_scale(layer_norm_no_affine(x), s1, m1))
        return x + g2[:, None, :] * self.mlp(shift_scale(layer_norm_no_affine(x), s2, m2))


class FinalLayer(nn.Module):
    def __init__(self, width, patch, channels):
        super().__init__()
        self.linear = nn.Linear(width, patch * patch * channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(shift_scale(layer_norm_no_affine(x), shift, scale))


class ReferenceDiT(nn.Module):
    def __init__(self, in_channels, patch, width, depth, heads, mlp_ratio, num_classes, learn_sigma,
                 latent_h, latent_w):
        super().__init__()
        self.patch = patch
        self.out_channels = 2 * in_channels if learn_sigma else in_channels
        self.grid = (latent_h // patch, latent_w // patch)
        self.x_embedder = PatchEmbed(in_channels, width, patch)
        self.t_embedder = TimestepEmbedder(width)
        self.y_embedder = LabelEmbedder(num_classes, width)
        self.pos_embed = nn.Parameter(sincos_2d(width, *self.grid), requires_grad=False)
        self.blocks = nn.ModuleList([Block(width, heads, mlp_ratio) for _ in range(depth)])
        self.final_layer = FinalLayer(width, patch, self.out_channels)

    def unpatchify(self, tokens):
        n, (h, w), p, c = tokens.shape[0], self.grid, self.patch, self.out_channels
        x = tokens.reshape(n, h, w, p, p, c)        # token (i, j), pixel (a, b), channel
        x = x.permute(0, 5, 1, 3, 2, 4)              # [N, C, h, p, w, p]
        return x.reshape(n, c, h * p, w * p)

    def forward(self, x, t, y):
        tokens = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        for block in self.blocks:
            tokens = block(tokens, c)
        return self.unpatchify(self.final_layer(tokens, c))


def randomise(model, generator):
    # Every trainable weight random and non-zero (in particular adaLN modulation and the output
    # layer, which the reference starts at zero), scaled so activations stay of order one.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "pos_embed":
                continue
            if name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))
            elif p.dim() == 2 and "embedding_table" in name:
                p.copy_(torch.randn(p.shape, generator=generator))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=generator) / math.sqrt(fan_in))


def main():
    out_dir = sys.argv[1]
    generator = torch.Generator().manual_seed(1234)
    for name, h, w, t_kind in CASES:
        model = ReferenceDiT(**CONFIG, latent_h=h, latent_w=w).eval()
        randomise(model, generator)
        torch.save(model.state_dict(), os.path.join(out_dir, "dit_%s.pt" % name))

        n = 3
        x = torch.randn(n, CONFIG["in_channels"], h, w, generator=generator)
        if t_kind == "int":
            t = torch.randint(0, 1000, (n,), generator=generator)
        else:
            t = torch.rand(n, generator=generator) * 999.0
        y = torch.tensor([3, CONFIG["num_classes"], 7])  # the middle one is the null class
        with torch.no_grad():
            out_f32 = model(x, t, y)
            out = model.double()(x.double(), t, y)
        torch.save({"x": x, "t": t, "y": y, "out": out, "out_f32": out_f32},
                   os.path.join(out_dir, "io_%s.pt" % name))
        print("%s: |out| max %.3f, float32 vs float64 max diff %.2e"
              % (name, out.abs().max().item(), (out_f32.double() - out).abs().max().item()))


if __name__ == "__main__":
    main()

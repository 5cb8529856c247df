"""An independent reference of LDM's UNet forward pass (Rombach et al., "High-Resolution Image
Synthesis with Latent Diffusion Models", 2022), in plain torch, for
tests/worker/models/unet_reference_test.cpp.

Written from the published architecture (CompVis/latent-diffusion openaimodel.py UNetModel with
use_spatial_transformer=True, attention.py SpatialTransformer), with module and parameter names
chosen so that `state_dict()` has the reference implementation's keys:

  time_embed.{0,2}                 sinusoidal features of t (model_channels wide, cos half first)
                                   -> Linear-SiLU-Linear to 4 * model_channels
  input_blocks.0.0                 conv3x3 in_channels -> model_channels
  input_blocks.i.0 (ResBlock)      in_layers (GroupNorm32, SiLU, conv3x3), emb_layers (SiLU,
                                   Linear), out_layers (GroupNorm32, SiLU, Dropout, conv3x3),
                                   skip_connection (conv1x1 when the width changes); the embedding
                                   is added after in_layers
  input_blocks.i.1 (SpatialTransformer at the attention levels)
                                   norm (GroupNorm, eps 1e-6), proj_in conv1x1, transformer_blocks.j
                                   (attn1 self, attn2 cross to the context, ff GEGLU; norm1..3
                                   LayerNorm, residual each), proj_out conv1x1, plus the input
  input_blocks.i.0.op              Downsample: conv3x3 stride 2
  middle_block.{0,1,2}             ResBlock, SpatialTransformer, ResBlock
  output_blocks.i                  ResBlock over cat([h, skip]), transformer, Upsample (nearest x2,
                                   then conv)
  out.{0,2}                        GroupNorm32, SiLU, conv3x3 -> out_channels
Conditioning: class task: class_embedder.embedding (LDM's ClassEmbedder) gives ONE context token;
text task: the caption tokens are the context, a key mask excluding padding (our mask_padding).
GroupNorm32 normalises in float32. Small sizes use groups = min(32, channels) (here 32).

Usage: unet_reference.py OUT_DIR. Cases: class_square (8x8), text_nonsquare (8x12, key mask).
Each writes OUT_DIR/unet_<case>.pt and OUT_DIR/io_<case>.pt {"x", "t", "y" | "tokens", "mask",
"out", "out_f32"}.
"""
import math
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn

CONFIG = dict(in_channels=4, model_channels=32, channel_mult=(1, 2), num_res_blocks=1, attention_ds=(2,),
              head_channels=16)
CONTEXT_DIM, NUM_CLASSES, TEXT_CHANNELS, TOKENS = 24, 10, 20, 4


def timestep_embedding(t, dim, max_period=10000):
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class GroupNorm32(nn.GroupNorm):
    # Half-precision inputs are normalised in float32; the float64 pass stays in float64.
    def forward(self, x):
        return super().forward(x if x.dtype == torch.float64 else x.float()).type(x.dtype)


def norm32(channels):
    return GroupNorm32(min(32, channels), channels)


class ResBlock(nn.Module):
    def __init__(self, channels, emb_channels, out_channels):
        super().__init__()
        self.in_layers = nn.Sequential(norm32(channels), nn.SiLU(), nn.Conv2d(channels, out_channels, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, out_channels))
        self.out_layers = nn.Sequential(norm32(out_channels), nn.SiLU(), nn.Dropout(0.0),
                                        nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip_connection = (nn.Identity() if out_channels == channels
                                else nn.Conv2d(channels, out_channels, 1))

    def forward(self, x, emb):
        h = self.in_layers(x)
        h = h + self.emb_layers(emb).type(h.dtype)[..., None, None]
        return self.skip_connection(x) + self.out_layers(h)


class CrossAttention(nn.Module):
    def __init__(self, query_dim, context_dim, heads, dim_head):
        super().__init__()
        inner = heads * dim_head
        self.heads, self.scale = heads, dim_head ** -0.5
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, query_dim), nn.Dropout(0.0))

    def forward(self, x, context=None, mask=None):
        context = x if context is None else context
        n, t, _ = x.shape
        split = lambda z: z.view(n, z.shape[1], self.heads, -1).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.to_q(x)), split(self.to_k(context)), split(self.to_v(context))
        sim = q @ k.transpose(-1, -2) * self.scale
        if mask is not None:
            sim = sim.masked_fill(~mask[:, None, None, :], -torch.finfo(sim.dtype).max)
        out = torch.softmax(sim, dim=-1) @ v
        return self.to_out(out.transpose(1, 2).reshape(n, t, -1))


class GEGLU(nn.Module):
    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.proj = nn.Linear(dim_in, 2 * dim_out)

    def forward(self, x):
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.net = nn.Sequential(GEGLU(dim, 4 * dim), nn.Dropout(0.0), nn.Linear(4 * dim, dim))

    def forward(self, x):
        return self.net(x)


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, heads, dim_head, context_dim):
        super().__init__()
        self.attn1 = CrossAttention(dim, dim, heads, dim_head)
        self.ff = FeedForward(dim)
        self.attn2 = CrossAttention(dim, context_dim, heads, dim_head)
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)

    def forward(self, x, context, mask):
        x = self.attn1(self.norm1(x)) + x
        x = self.attn2(self.norm2(x), context, mask) + x
        return self.ff(self.norm3(x)) + x


class SpatialTransformer(nn.Module):
    def __init__(self, channels, heads, dim_head, context_dim):
        super().__init__()
        inner = heads * dim_head
        self.norm = nn.GroupNorm(min(32, channels), channels, eps=1e-6)
        self.proj_in = nn.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(inner, heads, dim_head, context_dim)])
        self.proj_out = nn.Conv2d(inner, channels, 1)

    def forward(self, x, context, mask):
        n, c, h, w = x.shape
        z = self.proj_in(self.norm(x))
        z = z.flatten(2).transpose(1, 2)  # [N, h*w, inner]
        for block in self.transformer_blocks:
            z = block(z, context, mask)
        z = z.transpose(1, 2).reshape(n, -1, h, w)
        return self.proj_out(z) + x


class Downsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.op = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x):
        return self.op(x)


class Upsample(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TimestepEmbedSequential(nn.Sequential):
    def forward(self, x, emb, context, mask):
        for layer in self:
            if isinstance(layer, ResBlock):
                x = layer(x, emb)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context, mask)
            else:
                x = layer(x)
        return x


class ClassEmbedder(nn.Module):
    def __init__(self, rows, dim):
        super().__init__()
        self.embedding = nn.Embedding(rows, dim)

    def forward(self, y):
        return self.embedding(y[:, None])  # [N, 1, D]


class ReferenceUNet(nn.Module):
    def __init__(self, in_channels, model_channels, channel_mult, num_res_blocks, attention_ds, head_channels, text):
        super().__init__()
        mc, E = model_channels, 4 * model_channels
        ctx = TEXT_CHANNELS if text else CONTEXT_DIM
        self.model_channels, self.text = mc, text
        st = lambda ch: SpatialTransformer(ch, ch // head_channels, head_channels, ctx)  # noqa: E731
        self.time_embed = nn.Sequential(nn.Linear(mc, E), nn.SiLU(), nn.Linear(E, E))
        self.input_blocks = nn.ModuleList([TimestepEmbedSequential(nn.Conv2d(in_channels, mc, 3, padding=1))])
        chans, ch, ds = [mc], mc, 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [ResBlock(ch, E, mult * mc)]
                ch = mult * mc
                if ds in attention_ds:
                    layers.append(st(ch))
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                chans.append(ch)
            if level != len(channel_mult) - 1:
                self.input_blocks.append(TimestepEmbedSequential(Downsample(ch)))
                chans.append(ch)
                ds *= 2
        self.middle_block = TimestepEmbedSequential(ResBlock(ch, E, ch), st(ch), ResBlock(ch, E, ch))
        self.output_blocks = nn.ModuleList([])
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(num_res_blocks + 1):
                layers = [ResBlock(ch + chans.pop(), E, mult * mc)]
                ch = mult * mc
                if ds in attention_ds:
                    layers.append(st(ch))
                if level and i == num_res_blocks:
                    layers.append(Upsample(ch))
                    ds //= 2
                self.output_blocks.append(TimestepEmbedSequential(*layers))
        self.out = nn.Sequential(norm32(ch), nn.SiLU(), nn.Conv2d(mc, in_channels, 3, padding=1))
        if not text:
            self.class_embedder = ClassEmbedder(NUM_CLASSES + 1, CONTEXT_DIM)

    def forward(self, x, t, y=None, tokens=None, mask=None):
        context = tokens if self.text else self.class_embedder(y)
        emb = self.time_embed(timestep_embedding(t, self.model_channels).to(x.dtype))
        hs, h = [], x
        for module in self.input_blocks:
            h = module(h, emb, context, mask)
            hs.append(h)
        h = self.middle_block(h, emb, context, mask)
        for module in self.output_blocks:
            h = module(torch.cat([h, hs.pop()], dim=1), emb, context, mask)
        return self.out(h)


def randomise(model, generator):
    # Every weight random and non-zero (the reference zeroes out_layers.3, proj_out and out.2), norms
    # away from 1/0 so that a missing affine shows.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.startswith("out.0") or ".in_layers.0." in name or ".out_layers.0." in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn(p.shape, generator=generator))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))
            elif "embedding" in name:
                p.copy_(torch.randn(p.shape, generator=generator))
            else:
                p.copy_(torch.randn(p.shape, generator=generator) / math.sqrt(p[0].numel()))


def main():
    out_dir = sys.argv[1]
    generator = torch.Generator().manual_seed(97531)
    for name, h, w, text in [("class_square", 8, 8, False), ("text_nonsquare", 8, 12, True)]:
        model = ReferenceUNet(**CONFIG, text=text).eval()
        randomise(model, generator)
        torch.save(model.state_dict(), os.path.join(out_dir, "unet_%s.pt" % name))
        n = 3
        x = torch.randn(n, CONFIG["in_channels"], h, w, generator=generator)
        t = torch.randint(0, 1000, (n,), generator=generator)
        io = {"x": x, "t": t}
        if text:
            io["tokens"] = torch.randn(n, TOKENS, TEXT_CHANNELS, generator=generator)
            io["mask"] = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
        else:
            io["y"] = torch.tensor([3, NUM_CLASSES, 7])
        with torch.no_grad():
            out_f32 = model(x, t, io.get("y"), io.get("tokens"), io.get("mask"))
            model = model.double()
            tokens = io["tokens"].double() if text else None
            out = model(x.double(), t, io.get("y"), tokens, io.get("mask"))
        io["out"], io["out_f32"] = out, out_f32
        torch.save(io, os.path.join(out_dir, "io_%s.pt" % name))
        print("%s: |out| max %.3f, float32 vs float64 max diff %.2e"
              % (name, out.abs().max().item(), (out_f32.double() - out).abs().max().item()))


if __name__ == "__main__":
    main()

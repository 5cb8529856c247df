"""An independent reference of the mDT-v2 forward passes (Gao et al., "Masked Diffusion Transformer
is a Strong Image Synthesizer", MDTv2), in plain torch, for tests/worker/models/mdt_reference_test.cpp.

Written from the published architecture (sail-sg/MDT masked_diffusion/models.py, class MDTv2), with
module and parameter names chosen so that `state_dict()` has the reference implementation's keys.
dit_reference.py supplies the pieces DiT shares (patch embedding, timestep features, MLP, final
layer, adaLN modulation).

  pos_embed, decoder_pos_embed  learned [1, T, D] tables (random here)
  blocks (en_inblocks, en_outblocks, de_blocks, sideblocks).i
                                DiT's adaLN-Zero block whose self-attention adds a learned
                                relative-position bias: attn.rel_pos_bias.relative_position_bias_table
                                [(2h-1)(2w-1)+3, heads] indexed by the buffer relative_position_index
                                (BEiT's); skip_linear on cat([x, skip]) first in en_outblocks (the
                                en_inblocks outputs, last first) and de_blocks (the patch embedding)
  inference pass                encoder, + decoder_pos_embed, decoder, final layer
  masked pass                   the encoder sees the kept tokens only (ids_keep; the bias gathered to
                                them); the side-interpolator puts them back among mask_token, adds
                                decoder_pos_embed, runs sideblocks and keeps its output on the masked
                                positions only; then the decoder as above
The reference builds square grids; the non-square case uses BEiT's formula for an h x w window, our
generalisation.

Usage: mdt_reference.py OUT_DIR. Cases: square (8x8 latents: unmasked and masked passes),
nonsquare (8x12, unmasked). Writes mdt_<case>.pt and io_<case>.pt {"x", "t", "y", "out", "out_f32"
(+ "ids_keep", "mask", "out_masked", "out_masked_f32")}.
"""
import math
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dit_reference import FinalLayer, Mlp, PatchEmbed, TimestepEmbedder, layer_norm_no_affine, shift_scale  # noqa

CONFIG = dict(in_channels=4, patch=2, width=64, heads=4, depth=4, decode_layer=2, mlp_ratio=4.0)
NUM_CLASSES = 10


def relative_position_index(h, w):
    coords = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")).flatten(1)  # [2, T]
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()  # [T, T, 2]
    rel[:, :, 0] += h - 1
    rel[:, :, 1] += w - 1
    rel[:, :, 0] *= 2 * w - 1
    return rel.sum(-1)


class RelativePositionBias(nn.Module):
    def __init__(self, h, w, heads):
        super().__init__()
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * h - 1) * (2 * w - 1) + 3, heads))
        self.register_buffer("relative_position_index", relative_position_index(h, w))

    def forward(self):
        t = self.relative_position_index.shape[0]
        return self.relative_position_bias_table[self.relative_position_index.view(-1)].view(t, t, -1).permute(2, 0, 1)


class Attention(nn.Module):
    def __init__(self, width, heads, h, w):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.rel_pos_bias = RelativePositionBias(h, w, heads)

    def forward(self, x, ids_keep=None):
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.rel_pos_bias()[None].expand(n, -1, -1, -1)  # [N, H, T_full, T_full]
        if ids_keep is not None:  # rows, then columns, of the kept tokens
            rows = ids_keep[:, None, :, None].expand(-1, bias.shape[1], -1, bias.shape[-1])
            bias = bias.gather(2, rows)
            cols = ids_keep[:, None, None, :].expand(-1, bias.shape[1], ids_keep.shape[1], -1)
            bias = bias.gather(3, cols)
        attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads) + bias, dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(n, t, d))


class Block(nn.Module):
    def __init__(self, width, heads, mlp_ratio, h, w, skip=False):
        super().__init__()
        self.attn = Attention(width, heads, h, w)
        self.mlp = Mlp(width, int(width * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        self.skip_linear = nn.Linear(2 * width, width) if skip else None

    def forward(self, x, c, skip=None, ids_keep=None):
        if self.skip_linear is not None:
            x = self.skip_linear(torch.cat([x, skip], dim=-1))
        s1, m1, g1, s2, m2, g2 = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + g1[:, None] * self.attn(shift_scale(layer_norm_no_affine(x), s1, m1), ids_keep)
        return x + g2[:, None] * self.mlp(shift_scale(layer_norm_no_affine(x), s2, m2))


class LabelEmbedder(nn.Module):
    def __init__(self, num_classes, width):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, width)


class ReferenceMDT(nn.Module):
    def __init__(self, in_channels, patch, width, heads, depth, decode_layer, mlp_ratio, latent_h, latent_w):
        super().__init__()
        h, w = latent_h // patch, latent_w // patch
        self.patch, self.grid, self.out_channels = patch, (h, w), 2 * in_channels
        half = (depth - decode_layer) // 2
        block = lambda skip=False: Block(width, heads, mlp_ratio, h, w, skip)  # noqa: E731
        self.x_embedder = PatchEmbed(in_channels, width, patch)
        self.t_embedder = TimestepEmbedder(width)
        self.y_embedder = LabelEmbedder(NUM_CLASSES, width)
        self.pos_embed = nn.Parameter(torch.zeros(1, h * w, width))
        self.en_inblocks = nn.ModuleList([block() for _ in range(half)])
        self.en_outblocks = nn.ModuleList([block(True) for _ in range(half)])
        self.de_blocks = nn.ModuleList([block(True) for _ in range(decode_layer)])
        self.sideblocks = nn.ModuleList([block()])
        self.final_layer = FinalLayer(width, patch, self.out_channels)
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, h * w, width))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))

    def unpatchify(self, tokens):
        n, (h, w), p, c = tokens.shape[0], self.grid, self.patch, self.out_channels
        return tokens.reshape(n, h, w, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(n, c, h * p, w * p)

    def forward(self, x, t, y, ids_keep=None, mask=None):
        x = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder.embedding_table(y)
        input_skip = x
        if ids_keep is not None:
            x = x.gather(1, ids_keep[:, :, None].expand(-1, -1, x.shape[2]))
        skips = []
        for block in self.en_inblocks:
            x = block(x, c, ids_keep=ids_keep)
            skips.append(x)
        for block in self.en_outblocks:
            x = block(x, c, skip=skips.pop(), ids_keep=ids_keep)
        if ids_keep is not None:  # side-interpolator
            n, T, d = input_skip.shape
            full = self.mask_token.expand(n, T, d).clone()
            full = full.scatter(1, ids_keep[:, :, None].expand(-1, -1, d), x) + self.decoder_pos_embed
            side = full
            for block in self.sideblocks:
                side = block(side, c)
            m = mask[:, :, None].to(side.dtype)
            x = side * m + (1 - m) * full
        else:
            x = x + self.decoder_pos_embed
        for block in self.de_blocks:
            x = block(x, c, skip=input_skip)
        return self.unpatchify(self.final_layer(x, c))


def randomise(model, generator):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or "pos_embed" in name or "mask_token" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=generator))
            elif "embedding_table" in name or "relative_position_bias_table" in name:
                p.copy_(torch.randn(p.shape, generator=generator))
            else:
                p.copy_(torch.randn(p.shape, generator=generator) / math.sqrt(p[0].numel()))


def main():
    out_dir = sys.argv[1]
    generator = torch.Generator().manual_seed(8642)
    for name, h, w in [("square", 8, 8), ("nonsquare", 8, 12)]:
        model = ReferenceMDT(**CONFIG, latent_h=h, latent_w=w).eval()
        randomise(model, generator)
        torch.save(model.state_dict(), os.path.join(out_dir, "mdt_%s.pt" % name))
        n = 3
        x = torch.randn(n, CONFIG["in_channels"], h, w, generator=generator)
        t = torch.randint(0, 1000, (n,), generator=generator)
        io = {"x": x, "t": t, "y": torch.tensor([3, NUM_CLASSES, 7])}
        passes = [("out", None, None)]
        if name == "square":  # the reference's random_masking, with a given shuffle
            T = (h // CONFIG["patch"]) * (w // CONFIG["patch"])
            keep = int(T * (1 - 0.4))
            ids_shuffle = torch.argsort(torch.rand(n, T, generator=generator), dim=1)
            ids_keep = ids_shuffle[:, :keep]
            mask = torch.ones(n, T)
            mask[:, :keep] = 0
            mask = mask.gather(1, torch.argsort(ids_shuffle, dim=1))
            io["ids_keep"], io["mask"] = ids_keep, mask
            passes.append(("out_masked", ids_keep, mask))
        with torch.no_grad():
            for key, ids_keep, mask in passes:
                io[key + "_f32"] = model(x, t, io["y"], ids_keep, mask)
                io[key] = model.double()(x.double(), t, io["y"], ids_keep, mask)
                model.float()
        torch.save(io, os.path.join(out_dir, "io_%s.pt" % name))
        print("%s: |out| max %.3f, float32 vs float64 max diff %.2e"
              % (name, io["out"].abs().max().item(), (io["out_f32"].double() - io["out"]).abs().max().item()))


if __name__ == "__main__":
    main()

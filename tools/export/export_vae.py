#!/usr/bin/env python3
"""Exports a Stable-Diffusion-style KL autoencoder (AutoencoderKL) as a TorchScript file that the
C++ `ldm::data::TorchScriptAutoencoder` (datasets/tensor/torchscript_encoders.h) loads.

A plain-PyTorch re-implementation of the architecture (no diffusers needed), run with Debian's
python3-torch 1.13 so that the file only uses operators LibTorch 1.13 knows:

  encoder: conv_in -> per level: num_res_blocks ResNet blocks (GroupNorm(32, eps 1e-6) + SiLU,
           1x1 shortcut when channels change), then a stride-2 conv after right/bottom zero padding
           (all but the last level) -> mid: ResNet, single-head self-attention, ResNet ->
           GroupNorm + SiLU + conv_out (2*z_channels: mean and log-variance) -> quant_conv
  decoder: post_quant_conv -> conv_in -> mid -> per level (lowest resolution first):
           num_res_blocks+1 ResNet blocks, then nearest 2x upsampling + conv -> norm, SiLU, conv_out

Module contract (what the C++ side calls):
  encode(x: float [N,3,H,W] in [-1,1]) -> posterior MEAN raw latent [N, z, H/f, W/f]
  decode(z: raw latent)                -> images [N,3,H,W], roughly in [-1,1] (not clamped)
  attributes: scaling_factor (float), shift_factor (float), latent_channels (int),
              downsampling_factor (int)
The scale/shift are NOT applied inside the module: consumers use (mean - shift) * scale.

Weights: .safetensors, .pt/.pth/.bin/.ckpt (torch.save; Lightning "state_dict"), or a sharded
*.index.json; both diffusers names (encoder.down_blocks.0.resnets.0.conv1.weight,
mid_block.attentions.0.to_q.weight or the older query/key/value/proj_attn, conv_shortcut,
downsamplers.0.conv) and CompVis/LDM names (encoder.down.0.block.0.conv1.weight,
encoder.mid.attn_1.q.weight as 1x1 convs, nin_shortcut, downsample.conv), with an optional
"first_stage_model." prefix (a full Stable Diffusion checkpoint: only the prefixed keys are used).
Unknown or missing keys are an error that lists them; "loss.*" and "model_ema.*" entries of a
CompVis training checkpoint are skipped (and reported).

Examples:
  python3 export_vae.py --weights vae-ft-mse-840000-ema-pruned.safetensors --out sd-vae.pt --check
  python3 export_vae.py --weights diffusion_pytorch_model.safetensors --config config.json --out vae.pt
  python3 export_vae.py --random --seed 1 --ch 32 --ch-mult 1,2 --num-res-blocks 1 --out tiny.pt
"""

import argparse
import json
import math
import re
import sys
from typing import List

import torch
import torch.nn as nn
import torch.nn.functional as F

from weights_io import assign, load_state_dict


# ---------------------------------------------------------------------------------------------
# Architecture. Module names follow diffusers' AutoencoderKL so its state dicts load as they are.


class ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=1e-6)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-6)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        # An empty list when the channels match (TorchScript-friendly "optional" submodule).
        self.conv_shortcut = nn.ModuleList([nn.Conv2d(cin, cout, 1)] if cin != cout else [])

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        for sc in self.conv_shortcut:
            x = sc(x)
        return x + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the H*W positions, scaled by 1/sqrt(C), with a residual."""

    def __init__(self, c: int, groups: int):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, c, eps=1e-6)
        self.to_q = nn.Linear(c, c)
        self.to_k = nn.Linear(c, c)
        self.to_v = nn.Linear(c, c)
        self.to_out = nn.Sequential(nn.Linear(c, c))

    def forward(self, x):
        b, c, h, w = x.shape
        t = self.group_norm(x).reshape(b, c, h * w).transpose(1, 2)  # [B, HW, C]
        q = self.to_q(t)
        k = self.to_k(t)
        v = self.to_v(t)
        attn = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * (float(c) ** -0.5), dim=-1)
        out = self.to_out(torch.bmm(attn, v))  # [B, HW, C]
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class Downsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class Upsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownBlock(nn.Module):
    def __init__(self, cin: int, cout: int, n: int, down: bool, groups: int):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(cin if i == 0 else cout, cout, groups) for i in range(n)])
        self.downsamplers = nn.ModuleList([Downsample(cout)] if down else [])

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        for d in self.downsamplers:
            x = d(x)
        return x


class UpBlock(nn.Module):
    def __init__(self, cin: int, cout: int, n: int, up: bool, groups: int):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(cin if i == 0 else cout, cout, groups) for i in range(n)])
        self.upsamplers = nn.ModuleList([Upsample(cout)] if up else [])

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        for u in self.upsamplers:
            x = u(x)
        return x


class MidBlock(nn.Module):
    def __init__(self, c: int, groups: int):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(c, c, groups), ResnetBlock(c, c, groups)])
        self.attentions = nn.ModuleList([AttnBlock(c, groups)])

    def forward(self, x):
        x = self.resnets[0](x)
        for a in self.attentions:
            x = a(x)
        x = self.resnets[1](x)
        return x


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        chans = [cfg.ch * m for m in cfg.ch_mult]
        self.conv_in = nn.Conv2d(cfg.in_channels, chans[0], 3, padding=1)
        blocks = []
        cin = chans[0]
        for i, cout in enumerate(chans):
            blocks.append(DownBlock(cin, cout, cfg.num_res_blocks, i != len(chans) - 1, cfg.groups))
            cin = cout
        self.down_blocks = nn.ModuleList(blocks)
        self.mid_block = MidBlock(chans[-1], cfg.groups)
        self.conv_norm_out = nn.GroupNorm(cfg.groups, chans[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(chans[-1], 2 * cfg.z_channels, 3, padding=1)

    def forward(self, x):
        x = self.conv_in(x)
        for b in self.down_blocks:
            x = b(x)
        x = self.mid_block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        chans = [cfg.ch * m for m in cfg.ch_mult]
        rev = list(reversed(chans))
        self.conv_in = nn.Conv2d(cfg.z_channels, rev[0], 3, padding=1)
        self.mid_block = MidBlock(rev[0], cfg.groups)
        blocks = []
        cin = rev[0]
        for i, cout in enumerate(rev):
            blocks.append(UpBlock(cin, cout, cfg.num_res_blocks + 1, i != len(rev) - 1, cfg.groups))
            cin = cout
        self.up_blocks = nn.ModuleList(blocks)
        self.conv_norm_out = nn.GroupNorm(cfg.groups, rev[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(rev[-1], cfg.out_channels, 3, padding=1)

    def forward(self, z):
        x = self.conv_in(z)
        x = self.mid_block(x)
        for b in self.up_blocks:
            x = b(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class ExportedVAE(nn.Module):
    scaling_factor: float
    shift_factor: float
    latent_channels: int
    downsampling_factor: int

    def __init__(self, cfg):
        super().__init__()
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        z = cfg.z_channels
        self.quant_conv = nn.ModuleList([nn.Conv2d(2 * z, 2 * z, 1)] if cfg.quant_conv else [])
        self.post_quant_conv = nn.ModuleList([nn.Conv2d(z, z, 1)] if cfg.post_quant_conv else [])
        self.scaling_factor = float(cfg.scaling_factor)
        self.shift_factor = float(cfg.shift_factor)
        self.latent_channels = int(z)
        self.downsampling_factor = int(2 ** (len(cfg.ch_mult) - 1))

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[N,3,H,W] in [-1,1] -> the posterior mean (raw, unscaled) [N,z,H/f,W/f]."""
        moments = self.encoder(x)
        for q in self.quant_conv:
            moments = q(moments)
        return moments[:, : self.latent_channels].contiguous()

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Raw latent [N,z,h,w] -> images [N,3,h*f,w*f] (roughly [-1,1], not clamped)."""
        for q in self.post_quant_conv:
            z = q(z)
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


# ---------------------------------------------------------------------------------------------
# Checkpoint key names -> ours (diffusers' current names).


def _compvis_to_diffusers(key: str, levels: int) -> str:
    """Renames one CompVis/LDM key (no prefix) to diffusers' naming; other keys pass through."""
    k = key
    m = re.match(r"^(encoder|decoder)\.mid\.(block_1|block_2|attn_1)\.(.*)$", k)
    if m:
        part, blk, rest = m.groups()
        if blk == "block_1":
            return f"{part}.mid_block.resnets.0.{rest.replace('nin_shortcut', 'conv_shortcut')}"
        if blk == "block_2":
            return f"{part}.mid_block.resnets.1.{rest.replace('nin_shortcut', 'conv_shortcut')}"
        names = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
        sub, _, leaf = rest.partition(".")
        return f"{part}.mid_block.attentions.0.{names.get(sub, sub)}.{leaf}"
    m = re.match(r"^encoder\.down\.(\d+)\.block\.(\d+)\.(.*)$", k)
    if m:
        i, j, rest = m.groups()
        return f"encoder.down_blocks.{i}.resnets.{j}.{rest.replace('nin_shortcut', 'conv_shortcut')}"
    m = re.match(r"^encoder\.down\.(\d+)\.downsample\.conv\.(.*)$", k)
    if m:
        return f"encoder.down_blocks.{m.group(1)}.downsamplers.0.conv.{m.group(2)}"
    m = re.match(r"^decoder\.up\.(\d+)\.block\.(\d+)\.(.*)$", k)
    if m:
        i, j, rest = m.groups()
        return f"decoder.up_blocks.{levels - 1 - int(i)}.resnets.{j}.{rest.replace('nin_shortcut', 'conv_shortcut')}"
    m = re.match(r"^decoder\.up\.(\d+)\.upsample\.conv\.(.*)$", k)
    if m:
        return f"decoder.up_blocks.{levels - 1 - int(m.group(1))}.upsamplers.0.conv.{m.group(2)}"
    m = re.match(r"^(encoder|decoder)\.norm_out\.(.*)$", k)
    if m:
        return f"{m.group(1)}.conv_norm_out.{m.group(2)}"
    return k


_OLD_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


def convert_state_dict(sd, cfg, source):
    """Any supported naming -> our module's keys; 1x1-conv attention weights become Linear ones."""
    prefix = "first_stage_model."
    if any(k.startswith(prefix) for k in sd):
        sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    skipped = sorted(k for k in sd if k.startswith("loss.") or k.startswith("model_ema."))
    if skipped:
        print(f"{source}: skipping {len(skipped)} training-only keys (loss.*, model_ema.*)", file=sys.stderr)
    levels = len(cfg.ch_mult)
    out = {}
    for k, v in sd.items():
        if k in skipped:
            continue
        nk = _compvis_to_diffusers(k, levels)
        m = re.match(r"^(.*\.mid_block\.attentions\.0\.)(query|key|value|proj_attn)\.(.*)$", nk)
        if m:
            nk = m.group(1) + _OLD_ATTENTION[m.group(2)] + "." + m.group(3)
        # Preserve conv_shortcut list naming: ResnetBlock.conv_shortcut is a ModuleList of one conv.
        nk = re.sub(r"\.conv_shortcut\.(weight|bias)$", r".conv_shortcut.0.\1", nk)
        nk = re.sub(r"^(quant_conv|post_quant_conv)\.(weight|bias)$", r"\1.0.\2", nk)
        if ".mid_block.attentions.0." in nk and nk.endswith(".weight") and v.dim() == 4:
            v = v.reshape(v.shape[0], v.shape[1])  # CompVis 1x1 conv -> Linear
        if nk in out:
            raise ValueError(f"{source}: two checkpoint keys map to {nk}")
        out[nk] = v
    return out


# ---------------------------------------------------------------------------------------------


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="checkpoint: .safetensors, .pt/.pth/.bin/.ckpt, or *.index.json")
    src.add_argument("--random", action="store_true", help="random weights (tests); tiny defaults")
    p.add_argument("--seed", type=int, default=0, help="seed for --random")
    p.add_argument("--config", help="a diffusers AutoencoderKL config.json (overrides the flags below)")
    p.add_argument("--ch", type=int, help="base channels (SD: 128; --random: 32)")
    p.add_argument("--ch-mult", help="comma-separated channel multipliers (SD: 1,2,4,4; --random: 1,2)")
    p.add_argument("--num-res-blocks", type=int, help="ResNet blocks per encoder level (SD: 2; --random: 1)")
    p.add_argument("--z-channels", type=int, default=4, help="latent channels (SD: 4)")
    p.add_argument("--groups", type=int, default=32, help="GroupNorm groups (SD: 32)")
    p.add_argument("--no-quant-conv", action="store_true", help="the model has no quant_conv (e.g. SD3/Flux)")
    p.add_argument("--no-post-quant-conv", action="store_true", help="the model has no post_quant_conv")
    p.add_argument("--scaling-factor", type=float, help="latent scale (SD 1.x/2.x: 0.18215)")
    p.add_argument("--shift-factor", type=float, help="latent shift (SD 1.x/2.x: 0)")
    p.add_argument("--out", required=True, help="TorchScript file to write")
    p.add_argument("--check", action="store_true", help="reload the file and compare with the eager model")
    p.add_argument("--check-size", type=int, default=0, help="image side for --check (default 8*f)")
    return p.parse_args(argv)


class Config:
    pass


def make_config(args):
    c = Config()
    tiny = args.random
    c.ch = args.ch if args.ch else (32 if tiny else 128)
    c.ch_mult = [int(x) for x in args.ch_mult.split(",")] if args.ch_mult else ([1, 2] if tiny else [1, 2, 4, 4])
    c.num_res_blocks = args.num_res_blocks if args.num_res_blocks else (1 if tiny else 2)
    c.z_channels = args.z_channels
    c.groups = args.groups
    c.in_channels = 3
    c.out_channels = 3
    c.quant_conv = not args.no_quant_conv
    c.post_quant_conv = not args.no_post_quant_conv
    c.scaling_factor = 0.18215
    c.shift_factor = 0.0
    if args.config:
        with open(args.config) as f:
            j = json.load(f)
        boc = j.get("block_out_channels")
        if boc:
            c.ch = int(boc[0])
            if any(b % c.ch for b in boc):
                raise ValueError(f"{args.config}: block_out_channels {boc} are not multiples of the first")
            c.ch_mult = [int(b) // c.ch for b in boc]
        c.num_res_blocks = int(j.get("layers_per_block", c.num_res_blocks))
        c.z_channels = int(j.get("latent_channels", c.z_channels))
        c.groups = int(j.get("norm_num_groups", c.groups))
        c.in_channels = int(j.get("in_channels", 3))
        c.out_channels = int(j.get("out_channels", 3))
        c.quant_conv = bool(j.get("use_quant_conv", c.quant_conv)) and not args.no_quant_conv
        c.post_quant_conv = bool(j.get("use_post_quant_conv", c.post_quant_conv)) and not args.no_post_quant_conv
        if j.get("scaling_factor") is not None:
            c.scaling_factor = float(j["scaling_factor"])
        if j.get("shift_factor") is not None:
            c.shift_factor = float(j["shift_factor"])
    if args.scaling_factor is not None:
        c.scaling_factor = args.scaling_factor
    if args.shift_factor is not None:
        c.shift_factor = args.shift_factor
    if c.in_channels != 3 or c.out_channels != 3:
        raise ValueError("only RGB autoencoders (3 input and output channels) are supported")
    for m in c.ch_mult:
        if (c.ch * m) % c.groups:
            raise ValueError(f"channels {c.ch * m} are not divisible by {c.groups} GroupNorm groups")
    if c.scaling_factor == 0 or not math.isfinite(c.scaling_factor):
        raise ValueError("the scaling factor must be finite and non-zero")
    return c


def build(args):
    cfg = make_config(args)
    torch.manual_seed(args.seed)
    model = ExportedVAE(cfg)
    if args.random:
        # Default init, but make the shortcut and attention paths visibly non-trivial.
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("bias"):
                    p.normal_(0.0, 0.05)
                elif ".norm" in name or "group_norm" in name or "conv_norm_out" in name:
                    p.normal_(1.0, 0.1)
    else:
        sd = load_state_dict(args.weights)
        assign(model, convert_state_dict(sd, cfg, args.weights), args.weights)
    return model.eval(), cfg


def export(model, path):
    scripted = torch.jit.script(model)
    scripted.save(path)
    return scripted


def check(model, path, size):
    f = model.downsampling_factor
    size = size or 8 * f
    torch.manual_seed(1234)
    x = torch.rand(2, 3, size, size) * 2 - 1
    loaded = torch.jit.load(path)
    with torch.no_grad():
        z_py = model.encode(x)
        z_ts = loaded.encode(x)
        y_py = model.decode(z_py)
        y_ts = loaded.decode(z_py)
    de = (z_py - z_ts).abs().max().item()
    dd = (y_py - y_ts).abs().max().item()
    print(f"check: input {tuple(x.shape)} latent {tuple(z_ts.shape)}: max |python - reloaded| "
          f"encode {de:.3g}, decode {dd:.3g}")
    print(f"check: attributes scaling_factor={loaded.scaling_factor} shift_factor={loaded.shift_factor} "
          f"latent_channels={loaded.latent_channels} downsampling_factor={loaded.downsampling_factor}")
    return max(de, dd)


def main(argv=None):
    args = parse_args(argv)
    try:
        model, cfg = build(args)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"export_vae: {e}", file=sys.stderr)
        return 2
    export(model, args.out)
    print(f"wrote {args.out}: ch={cfg.ch} ch_mult={cfg.ch_mult} num_res_blocks={cfg.num_res_blocks} "
          f"z={cfg.z_channels} f={model.downsampling_factor} scaling_factor={cfg.scaling_factor} "
          f"shift_factor={cfg.shift_factor}")
    if args.check:
        err = check(model, args.out, args.check_size)
        if not err <= 1e-4:
            print("check FAILED", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

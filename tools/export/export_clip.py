#!/usr/bin/env python3
"""Exports the image and text towers of a CLIP ViT (OpenAI CLIP, open_clip, Hugging Face) as two
TorchScript files that the C++ `ldm::eval::ClipModel` (worker/eval/clip_score.h) loads for the CLIP
score (`ldm-eval clip-score --clip-image IMG.pt --clip-text TXT.pt --bpe bpe_simple_vocab_16e6.txt.gz`).

A plain-PyTorch re-implementation of OpenAI's clip/model.py (no `clip`, `open_clip` or
`transformers` needed), run with Debian's python3-torch 1.13 so that the files only use operators
LibTorch 1.13 knows:
  visual: conv1 (patch embedding, no bias), class_embedding, positional_embedding, ln_pre,
          transformer.resblocks.N (ln_1, attn = nn.MultiheadAttention's in_proj_weight/in_proj_bias/
          out_proj, ln_2, mlp.c_fc, activation, mlp.c_proj), ln_post on the class token, @ proj
  text:   token_embedding + positional_embedding, the same blocks with a causal mask, ln_final,
          the features at the EOT position (argmax of the ids: EOT is the largest id) @ text_projection
The activation is QuickGELU (x * sigmoid(1.702 x)) for OpenAI's weights and open_clip's "-quickgelu"
models, nn.GELU for open_clip's own LAION/DataComp ViTs (ViT-H-14, ViT-g-14, ViT-bigG-14, ...):
it is not stored in the weights, so --activation is required unless the file is one of OpenAI's .pt
archives (QuickGELU) or a Hugging Face checkpoint with its config.json (hidden_act).

Module contracts (what the C++ side calls):
  image: forward(x: float32 [N,3,S,S], CLIP-normalised RGB) -> float32 [N,D], the projected image
         features (not normalised); attributes input_resolution (int, S), output_dim (int, D),
         network (str)
  text:  forward(ids: int64 [N,L]: SOT, BPE ids, EOT, zeros) -> float32 [N,D], the projected text
         features (not normalised); attributes context_length (int, L = 77), vocab_size (int),
         output_dim (int, D), network (str)
The image preprocessing (bicubic resize of the shorter side to S, center crop, CLIP's mean/std) and
the tokenizer (CLIP's BPE, bpe_simple_vocab_16e6.txt.gz) are on the C++ side.

Weights (--weights):
  - OpenAI's ViT-B-32.pt, ViT-B-16.pt, ViT-L-14.pt, ViT-L-14-336px.pt: TorchScript archives
    (torch.jit.load(...).state_dict()), fp16, exported in float32;
  - open_clip checkpoints (.bin, .pt, .safetensors; "module." prefixes of DDP training checkpoints
    are stripped) of OpenAI-style ViTs: the same key names as OpenAI's;
  - Hugging Face CLIPModel checkpoints (pytorch_model.bin / model.safetensors, with --config
    config.json for hidden_act and the head counts): vision_model.*, text_model.*,
    visual_projection, text_projection are renamed (q/k/v concatenated into in_proj).
The sizes come from the weights as in OpenAI's build_model (heads = width / 64 unless the config or
--vision-heads/--text-heads say otherwise). ResNet CLIPs (RN50, ...), and open_clip models with
extra parts (attentional pooling, layer scale, no class token, other pooling) are not supported:
unknown keys are an error that lists them. logit_scale (and logit_bias) are not needed and skipped.

Examples:
  python3 export_clip.py --weights ViT-L-14.pt --out-image clip-l14-image.pt --out-text clip-l14-text.pt --check
  python3 export_clip.py --weights open_clip_pytorch_model.bin --activation gelu \\
      --out-image h14-image.pt --out-text h14-text.pt
  python3 export_clip.py --weights clip-vit-large-patch14/model.safetensors --config clip-vit-large-patch14/config.json \\
      --out-image image.pt --out-text text.pt
  python3 export_clip.py --random --seed 1 --vocab-size 600 --out-image tiny-image.pt --out-text tiny-text.pt
"""

import argparse
import json
import os
import sys
import zipfile
from collections import OrderedDict
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weights_io import assign, load_state_dict  # noqa: E402

# ---------------------------------------------------------------------------------------------


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


def make_activation(name):
    if name == "quick_gelu":
        return QuickGELU()
    if name == "gelu":
        return nn.GELU()
    raise ValueError(f"unsupported activation {name!r} (quick_gelu, gelu)")


class Attention(nn.Module):
    """nn.MultiheadAttention's parameters (in_proj_weight/in_proj_bias, out_proj), batch first."""

    heads: int
    head_dim: int

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads != 0:
            raise ValueError(f"width {width} is not divisible by {heads} heads")
        self.heads = heads
        self.head_dim = width // heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x, mask: Optional[torch.Tensor]):
        n, l, w = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        q = q.reshape(n, l, self.heads, self.head_dim).transpose(1, 2) * (float(self.head_dim) ** -0.5)
        k = k.reshape(n, l, self.heads, self.head_dim).transpose(1, 2)
        v = v.reshape(n, l, self.heads, self.head_dim).transpose(1, 2)
        attn = torch.matmul(q, k.transpose(-2, -1))
        if mask is not None:
            attn = attn + mask
        attn = torch.softmax(attn, dim=-1)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(n, l, w)
        return self.out_proj(out)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int, act: str):
        super().__init__()
        self.attn = Attention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict([
            ("c_fc", nn.Linear(width, width * 4)),
            ("gelu", make_activation(act)),
            ("c_proj", nn.Linear(width * 4, width)),
        ]))
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x, mask: Optional[torch.Tensor]):
        x = x + self.attn(self.ln_1(x), mask)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int, act: str):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, act) for _ in range(layers)])

    def forward(self, x, mask: Optional[torch.Tensor]):
        for block in self.resblocks:
            x = block(x, mask)
        return x


class ImageEncoder(nn.Module):
    """OpenAI's VisionTransformer (keys as in the checkpoint without the "visual." prefix)."""

    input_resolution: int
    output_dim: int
    network: str

    def __init__(self, cfg, network: str):
        super().__init__()
        self.input_resolution = cfg.image_resolution
        self.output_dim = cfg.embed_dim
        self.network = network
        width = cfg.vision_width
        grid = cfg.image_resolution // cfg.patch_size
        self.conv1 = nn.Conv2d(3, width, kernel_size=cfg.patch_size, stride=cfg.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(width))
        self.positional_embedding = nn.Parameter(torch.empty(grid * grid + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = Transformer(width, cfg.vision_layers, cfg.vision_heads, cfg.activation)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.empty(width, cfg.embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)  # [N, W, grid, grid]
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [N, grid^2, W]
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype, device=x.device)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.ln_pre(x)
        x = self.transformer(x, None)
        x = self.ln_post(x[:, 0, :])
        return x @ self.proj


class TextEncoder(nn.Module):
    """OpenAI's encode_text (keys as in the checkpoint: token_embedding, positional_embedding,
    transformer.*, ln_final, text_projection)."""

    context_length: int
    vocab_size: int
    output_dim: int
    network: str

    def __init__(self, cfg, network: str):
        super().__init__()
        self.context_length = cfg.context_length
        self.vocab_size = cfg.vocab_size
        self.output_dim = cfg.embed_dim
        self.network = network
        self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.text_width)
        self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, cfg.text_width))
        self.transformer = Transformer(cfg.text_width, cfg.text_layers, cfg.text_heads, cfg.activation)
        self.ln_final = nn.LayerNorm(cfg.text_width)
        self.text_projection = nn.Parameter(torch.empty(cfg.text_width, cfg.embed_dim))
        mask = torch.full((cfg.context_length, cfg.context_length), float("-inf")).triu_(1)
        self.register_buffer("attn_mask", mask, persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(ids) + self.positional_embedding
        x = self.transformer(x, self.attn_mask)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0], device=x.device), ids.argmax(dim=-1)] @ self.text_projection


# ---------------------------------------------------------------------------------------------


class Config:
    def describe(self):
        return (f"ViT {self.image_resolution}px patch {self.patch_size} width {self.vision_width} layers "
                f"{self.vision_layers} heads {self.vision_heads}; text width {self.text_width} layers {self.text_layers} "
                f"heads {self.text_heads} context {self.context_length} vocab {self.vocab_size}; D {self.embed_dim}; "
                f"{self.activation}")


def is_torchscript_archive(path):
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())


def read_checkpoint(path):
    """{name: float32 tensor} with OpenAI-style names; the second value says whether the file was
    an OpenAI TorchScript archive."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if path.endswith(".pt") and is_torchscript_archive(path):
        sd = torch.jit.load(path, map_location="cpu").state_dict()
        return {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}, True
    sd = load_state_dict(path)
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd, False


HF_RENAMES = [
    ("embeddings.patch_embedding.weight", "conv1.weight"),
    ("embeddings.class_embedding", "class_embedding"),
    ("embeddings.position_embedding.weight", "positional_embedding"),
    ("embeddings.token_embedding.weight", "token_embedding.weight"),
    ("pre_layrnorm.", "ln_pre."),
    ("post_layernorm.", "ln_post."),
    ("final_layer_norm.", "ln_final."),
]
HF_LAYER_RENAMES = [
    ("self_attn.out_proj.", "attn.out_proj."),
    ("layer_norm1.", "ln_1."),
    ("layer_norm2.", "ln_2."),
    ("mlp.fc1.", "mlp.c_fc."),
    ("mlp.fc2.", "mlp.c_proj."),
]


def convert_hf(sd, source):
    """Hugging Face CLIPModel names -> OpenAI's."""
    out, unknown, qkv = {}, [], {}
    for k, v in sd.items():
        if k == "logit_scale" or k.endswith("position_ids"):
            continue
        if k == "visual_projection.weight":
            out["visual.proj"] = v.t().contiguous()
            continue
        if k == "text_projection.weight":
            out["text_projection"] = v.t().contiguous()
            continue
        if k.startswith("vision_model."):
            prefix, rest = "visual.", k[len("vision_model."):]
        elif k.startswith("text_model."):
            prefix, rest = "", k[len("text_model."):]
        else:
            unknown.append(k)
            continue
        if rest.startswith("encoder.layers."):
            parts = rest.split(".")
            i, tail = parts[2], ".".join(parts[3:])
            base = f"{prefix}transformer.resblocks.{i}."
            if tail.startswith("self_attn.") and tail.split(".")[1] in ("q_proj", "k_proj", "v_proj"):
                which, kind = tail.split(".")[1][0], tail.split(".")[2]
                qkv.setdefault((base, kind), {})[which] = v
                continue
            for a, b in HF_LAYER_RENAMES:
                if tail.startswith(a):
                    out[base + b + tail[len(a):]] = v
                    break
            else:
                unknown.append(k)
            continue
        for a, b in HF_RENAMES:
            if rest.startswith(a):
                out[prefix + b + rest[len(a):]] = v
                break
        else:
            unknown.append(k)
    for (base, kind), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise ValueError(f"{source}: {base}: q/k/v projections incomplete ({sorted(parts)})")
        out[f"{base}attn.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]], dim=0)
    if unknown:
        raise ValueError(f"{source}: unknown Hugging Face keys ({len(unknown)}):\n  " + "\n  ".join(sorted(unknown)))
    return out


def infer_config(sd, args, source, hf_config):
    if any(k.startswith("visual.layer1.") for k in sd):
        raise ValueError(f"{source}: a ResNet CLIP (visual.layer1...): only ViT CLIPs are supported")
    need = ["visual.conv1.weight", "visual.positional_embedding", "visual.proj", "token_embedding.weight",
            "positional_embedding", "ln_final.weight", "text_projection"]
    missing = [k for k in need if k not in sd]
    if missing:
        raise ValueError(f"{source}: not an OpenAI-style CLIP ViT state dict: missing {', '.join(missing)} "
                         f"(keys look like: {', '.join(sorted(sd)[:5])} ...)")
    c = Config()
    c.vision_width = sd["visual.conv1.weight"].shape[0]
    c.patch_size = sd["visual.conv1.weight"].shape[-1]
    grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    c.image_resolution = c.patch_size * grid
    c.vision_layers = len({k.split(".")[3] for k in sd if k.startswith("visual.transformer.resblocks.")})
    c.embed_dim = sd["text_projection"].shape[1]
    c.context_length = sd["positional_embedding"].shape[0]
    c.vocab_size = sd["token_embedding.weight"].shape[0]
    c.text_width = sd["ln_final.weight"].shape[0]
    c.text_layers = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks.")})
    c.vision_heads = c.vision_width // 64
    c.text_heads = c.text_width // 64
    c.activation = None
    if hf_config:
        vc, tc = hf_config.get("vision_config", {}), hf_config.get("text_config", {})
        c.vision_heads = int(vc.get("num_attention_heads", c.vision_heads))
        c.text_heads = int(tc.get("num_attention_heads", c.text_heads))
        acts = {vc.get("hidden_act", "quick_gelu"), tc.get("hidden_act", "quick_gelu")}
        if len(acts) != 1:
            raise ValueError(f"{args.config}: different activations for the towers ({sorted(acts)}) are not supported")
        c.activation = acts.pop()
    return c


def make_random_config(args):
    c = Config()
    c.image_resolution, c.patch_size, c.vision_width, c.vision_layers, c.vision_heads = 224, 32, 64, 2, 4
    c.context_length, c.vocab_size, c.text_width, c.text_layers, c.text_heads = 77, 49408, 32, 2, 2
    c.embed_dim, c.activation = 32, "quick_gelu"
    return c


def apply_overrides(c, args):
    for name in ("vision_heads", "text_heads", "vocab_size"):
        v = getattr(args, name, None)
        if v is not None:
            setattr(c, name, v)
    if args.activation:
        c.activation = args.activation
    if c.activation is None:
        raise ValueError("--activation is required for this checkpoint: quick_gelu for OpenAI's weights and open_clip's "
                         "*-quickgelu models, gelu for open_clip's own ViTs (ViT-H-14, ViT-g-14, ViT-bigG-14, ...); "
                         "it is not stored in the weights")
    make_activation(c.activation)  # validates
    for tower, width, heads in (("vision", c.vision_width, c.vision_heads), ("text", c.text_width, c.text_heads)):
        if heads < 1 or width % heads != 0:
            raise ValueError(f"the {tower} tower has width {width} and {heads} heads (default width / 64): give "
                             f"--{tower}-heads H with H dividing {width}")
    return c


def init_random(image, text, seed):
    """OpenAI's initialize_parameters, with LayerNorm weights/biases and linear biases perturbed so
    that a test exercises every parameter."""
    g = torch.Generator().manual_seed(seed)

    def normal_(p, std, mean=0.0):
        with torch.no_grad():
            p.copy_(torch.randn(p.shape, generator=g) * std + mean)

    for tower, width, layers in ((image, image.conv1.out_channels, len(image.transformer.resblocks)),
                                 (text, text.ln_final.normalized_shape[0], len(text.transformer.resblocks))):
        proj_std = (width ** -0.5) * ((2 * layers) ** -0.5)
        attn_std, fc_std = width ** -0.5, (2 * width) ** -0.5
        for name, p in tower.named_parameters():
            if "ln_" in name and name.endswith("weight"):
                normal_(p, 0.1, 1.0)
            elif name.endswith("bias"):
                normal_(p, 0.02)
            elif name.endswith("in_proj_weight"):
                normal_(p, attn_std)
            elif name.endswith("attn.out_proj.weight") or name.endswith("mlp.c_proj.weight"):
                normal_(p, proj_std)
            elif name.endswith("mlp.c_fc.weight"):
                normal_(p, fc_std)
            elif name in ("token_embedding.weight",):
                normal_(p, 0.02)
            elif name == "positional_embedding" and tower is text:
                normal_(p, 0.01)
            elif name in ("class_embedding", "positional_embedding", "proj", "conv1.weight"):
                normal_(p, width ** -0.5)
            elif name == "text_projection":
                normal_(p, width ** -0.5)
            else:
                raise AssertionError(f"no init for {name}")


def build(args):
    """Returns (image, text, cfg) eager models in eval mode."""
    hf_config = None
    if args.config:
        with open(args.config) as f:
            hf_config = json.load(f)
    if args.random:
        cfg = apply_overrides(make_random_config(args), args)
        name = f"random-seed-{args.seed}"
        image, text = ImageEncoder(cfg, f"clip-vit:{name}"), TextEncoder(cfg, f"clip-vit:{name}")
        init_random(image, text, args.seed)
        return image.eval(), text.eval(), cfg
    sd, openai_archive = read_checkpoint(args.weights)
    if any(k.startswith("vision_model.") or k.startswith("text_model.") for k in sd):
        sd = convert_hf(sd, args.weights)
    skipped = [k for k in sd if k in ("logit_scale", "logit_bias", "input_resolution", "context_length", "vocab_size")
               or k.endswith("attn_mask")]
    sd = {k: v for k, v in sd.items() if k not in set(skipped)}
    cfg = infer_config(sd, args, args.weights, hf_config)
    if openai_archive and cfg.activation is None:
        cfg.activation = "quick_gelu"
    cfg = apply_overrides(cfg, args)
    name = os.path.basename(args.weights)
    image, text = ImageEncoder(cfg, f"clip-vit:{name}"), TextEncoder(cfg, f"clip-vit:{name}")
    image_sd = {k[len("visual."):]: v for k, v in sd.items() if k.startswith("visual.")}
    text_sd = {k: v for k, v in sd.items() if not k.startswith("visual.")}
    assign(image, image_sd, args.weights + " (visual.*)")
    assign(text, text_sd, args.weights + " (text)")
    return image.eval(), text.eval(), cfg


def check(image, text, image_path, text_path):
    """Reloads both files and compares them with the eager models; returns the largest error
    relative to the largest feature."""
    g = torch.Generator().manual_seed(1234)
    s, ctx, vocab = image.input_resolution, text.context_length, text.vocab_size
    x = torch.randn(2, 3, s, s, generator=g)
    ids = torch.zeros(3, ctx, dtype=torch.long)
    for row, length in enumerate((2, 9, ctx)):
        ids[row, 0] = vocab - 2
        ids[row, 1:length - 1] = torch.randint(1, vocab - 2, (length - 2,), generator=g)
        ids[row, length - 1] = vocab - 1
    li, lt = torch.jit.load(image_path), torch.jit.load(text_path)
    with torch.no_grad():
        a, b = image(x), li(x)
        c, d = text(ids), lt(ids)
    err_i = ((a - b).abs().max() / a.abs().max().clamp_min(1e-12)).item()
    err_t = ((c - d).abs().max() / c.abs().max().clamp_min(1e-12)).item()
    print(f"check: image {tuple(x.shape)} -> {tuple(b.shape)}, text {tuple(ids.shape)} -> {tuple(d.shape)}: "
          f"max relative |python - reloaded| {err_i:.3g} / {err_t:.3g}; input_resolution={li.input_resolution} "
          f"context_length={lt.context_length} vocab_size={lt.vocab_size} output_dim={li.output_dim}")
    return max(err_i, err_t)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", help="OpenAI .pt, open_clip .bin/.pt/.safetensors, or a Hugging Face CLIPModel checkpoint")
    p.add_argument("--config", help="Hugging Face config.json (hidden_act, num_attention_heads)")
    p.add_argument("--random", action="store_true", help="tiny random model (tests)")
    p.add_argument("--seed", type=int, default=0, help="seed for --random")
    p.add_argument("--activation", choices=["quick_gelu", "gelu"], help="the MLP activation (see above)")
    p.add_argument("--vision-heads", dest="vision_heads", type=int, help="default: width / 64")
    p.add_argument("--text-heads", dest="text_heads", type=int, help="default: width / 64")
    p.add_argument("--vocab-size", dest="vocab_size", type=int,
                   help="--random only: rows of the token embedding (49408 for CLIP's BPE; the tokenizer's "
                        "vocab_size for a small test merges file)")
    p.add_argument("--out-image", dest="out_image", required=True, help="TorchScript image tower to write")
    p.add_argument("--out-text", dest="out_text", required=True, help="TorchScript text tower to write")
    p.add_argument("--check", action="store_true", help="reload the files and compare with the eager models")
    args = p.parse_args(argv)
    if bool(args.weights) == bool(args.random):
        p.error("give exactly one of --weights and --random")
    if args.vocab_size is not None and not args.random:
        p.error("--vocab-size is only for --random (a checkpoint's vocabulary comes from its weights)")
    return args


def export(image, text, image_path, text_path):
    torch.jit.script(image).save(image_path)
    torch.jit.script(text).save(text_path)


def main(argv=None):
    args = parse_args(argv)
    try:
        image, text, cfg = build(args)
    except (ValueError, FileNotFoundError, KeyError, RuntimeError) as e:
        print(f"export_clip: {e}", file=sys.stderr)
        return 2
    export(image, text, args.out_image, args.out_text)
    print(f"wrote {args.out_image} (forward(x [N,3,{cfg.image_resolution},{cfg.image_resolution}]) -> [N,{cfg.embed_dim}]) "
          f"and {args.out_text} (forward(ids [N,{cfg.context_length}]) -> [N,{cfg.embed_dim}]): {cfg.describe()} "
          f"(torch {torch.__version__})")
    if args.check:
        if not check(image, text, args.out_image, args.out_text) <= 1e-5:
            print("check FAILED", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

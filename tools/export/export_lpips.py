#!/usr/bin/env python3
"""Exports LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric"; the `lpips` package's version 0.1 linear layers) as a TorchScript file that the C++
`ldm::eval::lpips_distance` (worker/eval/disentanglement.h) loads: `ldm-worker disentanglement
--lpips FILE`.

Run it with Debian's python3-torch 1.13 (/usr/bin/python3), the version of the LibTorch we link: a
file written by a newer PyTorch may not load. torchvision is not needed: the backbones are plain
PyTorch here, with the layer indices of torchvision's `features`.

Module contract (what the C++ side calls):
  forward(x, y): x, y float32 [N,3,H,W], RGB in [-1,1] -> float32 [N], the LPIPS distances of the
      pairs (x[i], y[i]); H, W >= min_size (alex 31, vgg 16: smaller images leave no pixel at the
      deepest tap, the lpips package fails there too)
  attributes: backbone (str, "alex" or "vgg"), version (str, "0.1"), min_size (int),
      network (str, describes backbone and weights)

The computation is the lpips package's LPIPS(net=..., version='0.1', lpips=True, spatial=False) in
eval mode (dropout is the identity):
  1. ScalingLayer: (x - shift) / scale, shift = [-.030, -.088, -.188], scale = [.458, .448, .450]
  2. backbone features at five taps, slicing torchvision's `features` as the lpips package does:
       alex   relu1..relu5                          features[0:2], [2:5], [5:8], [8:10], [10:12]
       vgg    relu1_2, relu2_2, relu3_3, relu4_3,    features[0:4], [4:9], [9:16], [16:23], [23:30]
              relu5_3 (VGG-16)
  3. per tap: unit-normalise over channels, f / (sqrt(sum_c f^2) + 1e-10), for both images; the
     squared difference; a 1x1 convolution to one channel without bias (the "lin" layer); the mean
     over the spatial positions
  4. the sum over the five taps -> [N]

Weights (the two sets the lpips package combines):
  --backbone-weights FILE  torchvision's ImageNet state dict: alexnet-owt-7be5be79.pth (alex) or
                           vgg16-397923af.pth (vgg); keys features.N.weight / features.N.bias
                           (classifier.* keys are ignored)
  --lin-weights FILE       the lpips package's lpips/weights/v0.1/alex.pth or vgg.pth; keys
                           lin0.model.1.weight .. lin4.model.1.weight, shape [1, C, 1, 1]
                           (lins.K.model.1.weight, an older LPIPS module's copy, is accepted too)
  --weights FILE           both in one file, the lpips package's LPIPS module layout:
                           net.slice1.0.weight .. net.slice5.N.bias, lin0.model.1.weight ..
                           (torchvision's features.N.* names work too); scaling_layer.shift/scale
                           buffers are not needed, but checked against the constants when present
  --random --seed S        random weights for tests (lin weights non-negative, as trained ones are)
The backbone (--backbone alex|vgg) is read from the checkpoint when not given (alex for --random).
Unknown, missing and mis-shaped keys are an error listing them (exit status 1); usage errors exit 2.

Examples:
  # torchvision's AlexNet weights + the lpips package's v0.1 linear layers (the usual LPIPS):
  #   https://download.pytorch.org/models/alexnet-owt-7be5be79.pth
  #   https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth
  python3 export_lpips.py --backbone-weights alexnet-owt-7be5be79.pth --lin-weights alex.pth \\
      --out lpips-alex.pt --check
  python3 export_lpips.py --backbone vgg --backbone-weights vgg16-397923af.pth --lin-weights vgg.pth \\
      --out lpips-vgg.pt --check
  # a saved lpips.LPIPS(net='alex').state_dict():
  python3 export_lpips.py --weights lpips_alex_module.pth --out lpips-alex.pt
  # tests: random weights
  python3 export_lpips.py --random --seed 1 --out random-lpips.pt --check
"""

import argparse
import math
import os
import pickle
import sys
from typing import List

import torch
import torch.nn as nn

from weights_io import load_state_dict

VERSION = "0.1"
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)


# ---------------------------------------------------------------------------------------------
# Backbones: layer lists indexed as torchvision's `features` (alexnet, vgg16), cut at the taps.


def _alex_layers():
    return [
        ("conv", 3, 64, 11, 4, 2), ("relu",), ("pool", 3, 2),         # 0..2
        ("conv", 64, 192, 5, 1, 2), ("relu",), ("pool", 3, 2),        # 3..5
        ("conv", 192, 384, 3, 1, 1), ("relu",),                       # 6, 7
        ("conv", 384, 256, 3, 1, 1), ("relu",),                       # 8, 9
        ("conv", 256, 256, 3, 1, 1), ("relu",),                       # 10, 11
    ]


def _vgg16_layers():
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(("pool", 2, 2))
        else:
            layers += [("conv", c, v, 3, 1, 1), ("relu",)]
            c = v
    return layers  # 30 layers: the final max pool (features[30]) is not used


# name -> (layer list, slice ends (exclusive), channels at the taps)
BACKBONES = {
    "alex": (_alex_layers, (2, 5, 8, 10, 12), (64, 192, 384, 256, 256)),
    "vgg": (_vgg16_layers, (4, 9, 16, 23, 30), (64, 128, 256, 512, 512)),
}


def _make_layer(spec):
    if spec[0] == "conv":
        _, cin, cout, k, s, p = spec
        return nn.Conv2d(cin, cout, kernel_size=k, stride=s, padding=p)
    if spec[0] == "relu":
        return nn.ReLU(inplace=False)
    _, k, s = spec
    return nn.MaxPool2d(kernel_size=k, stride=s)


def _slices(backbone):
    """[(begin, end)] per tap, torchvision `features` indices."""
    ends = BACKBONES[backbone][1]
    return list(zip((0,) + ends[:-1], ends))


def min_size(backbone):
    """The smallest H (and W) for which every layer, and so every tap, keeps at least one pixel."""
    layers = BACKBONES[backbone][0]()
    for h0 in range(1, 1024):
        h = h0
        for spec in layers:
            if spec[0] == "conv":
                _, _, _, k, s, p = spec
                h = (h + 2 * p - k) // s + 1 if h + 2 * p >= k else 0
            elif spec[0] == "pool":
                _, k, s = spec
                h = (h - k) // s + 1 if h >= k else 0
            if h < 1:
                break
        if h >= 1:
            return h0
    raise AssertionError("no input size works")


# ---------------------------------------------------------------------------------------------
# The model.


class ScalingLayer(nn.Module):
    """(x - shift) / scale: [-1,1] RGB to the ImageNet-like normalisation LPIPS v0.1 uses."""

    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor(SHIFT, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


def unit_normalize(f: torch.Tensor) -> torch.Tensor:
    # f / (|f| over the channels + 1e-10), as the lpips package's normalize_tensor
    return f / (torch.sqrt(torch.sum(f ** 2, dim=1, keepdim=True)) + 1e-10)


class Stage(nn.Module):
    """Backbone layers features[begin:end] (submodules named by their torchvision index) and the
    1x1 "lin" convolution applied to the squared difference of the unit-normalised taps."""

    def __init__(self, layers: nn.Sequential, channels: int):
        super().__init__()
        self.layers = layers
        self.lin = nn.Conv2d(channels, 1, kernel_size=1, stride=1, padding=0, bias=False)

    def forward(self, h0: torch.Tensor, h1: torch.Tensor):
        h0 = self.layers(h0)
        h1 = self.layers(h1)
        diff = (unit_normalize(h0) - unit_normalize(h1)) ** 2
        return h0, h1, self.lin(diff).mean(dim=[2, 3])  # [N, 1]


class LPIPS(nn.Module):
    backbone: str
    version: str
    network: str
    min_size: int

    def __init__(self, backbone: str, network: str = ""):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r} (alex or vgg)")
        make_layers, _, channels = BACKBONES[backbone]
        layers = [_make_layer(s) for s in make_layers()]
        stages = []
        for (begin, end), c in zip(_slices(backbone), channels):
            seq = nn.Sequential()
            for i in range(begin, end):
                seq.add_module(str(i), layers[i])
            stages.append(Stage(seq, c))
        self.scaling = ScalingLayer()
        self.stages = nn.ModuleList(stages)
        self.backbone = backbone
        self.version = VERSION
        self.network = network or f"lpips-{VERSION}-{backbone}"
        self.min_size = min_size(backbone)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.size(1) != 3:
            raise RuntimeError("LPIPS: expected x of shape [N,3,H,W], got " + str(x.size()))
        if x.size() != y.size():
            raise RuntimeError("LPIPS: x and y differ in shape: " + str(x.size()) + " vs " + str(y.size()))
        if x.size(2) < self.min_size or x.size(3) < self.min_size:
            raise RuntimeError("LPIPS (" + self.backbone + "): images must be at least " + str(self.min_size) +
                               "x" + str(self.min_size) + ", got " + str(x.size(2)) + "x" + str(x.size(3)))
        h0 = self.scaling(x)
        h1 = self.scaling(y)
        parts: List[torch.Tensor] = []
        for stage in self.stages:
            h0, h1, d = stage(h0, h1)
            parts.append(d)
        total = parts[0]
        for i in range(1, len(parts)):
            total = total + parts[i]
        return total.flatten()  # [N]


# ---------------------------------------------------------------------------------------------
# Key layouts. Internal names: stages.K.layers.N.{weight,bias}, stages.K.lin.weight.


def _conv_shapes(backbone):
    """{torchvision index: (weight shape, bias shape)} of the backbone's convolutions."""
    out = {}
    for i, s in enumerate(BACKBONES[backbone][0]()):
        if s[0] == "conv":
            _, cin, cout, k, _, _ = s
            out[i] = ((cout, cin, k, k), (cout,))
    return out


def _stage_of(backbone, index):
    for k, (begin, end) in enumerate(_slices(backbone)):
        if begin <= index < end:
            return k
    raise AssertionError(index)


def backbone_keys(backbone, layout):
    """{external name: (internal name, shape)}; layout "torchvision" (features.N.*) or "lpips"
    (net.sliceK.N.*, K = 1..5)."""
    keys = {}
    for i, (wshape, bshape) in _conv_shapes(backbone).items():
        k = _stage_of(backbone, i)
        prefix = f"features.{i}." if layout == "torchvision" else f"net.slice{k + 1}.{i}."
        keys[prefix + "weight"] = (f"stages.{k}.layers.{i}.weight", wshape)
        keys[prefix + "bias"] = (f"stages.{k}.layers.{i}.bias", bshape)
    return keys


def lin_keys(backbone):
    channels = BACKBONES[backbone][2]
    return {f"lin{k}.model.1.weight": (f"stages.{k}.lin.weight", (1, c, 1, 1)) for k, c in enumerate(channels)}


def _lin_alias(name):
    """lins.K.model.1.weight (the ModuleList copy an older LPIPS module saves) -> linK.model.1.weight."""
    parts = name.split(".")
    if len(parts) == 5 and parts[0] == "lins" and parts[1].isdigit() and parts[2:] == ["model", "1", "weight"]:
        return f"lin{parts[1]}.model.1.weight"
    return None


def detect_layout(sd):
    return "lpips" if any(k.startswith("net.") for k in sd) else "torchvision"


def detect_backbone(*dicts):
    """alex or vgg from whichever checkpoint tells; None when none does."""
    for sd in dicts:
        if "features.28.weight" in sd or "net.slice5.28.weight" in sd:
            return "vgg"
        if "features.10.weight" in sd or "net.slice5.10.weight" in sd:
            return "alex"
    for sd in dicts:
        for k, v in sd.items():
            if (k == "lin1.model.1.weight" or _lin_alias(k) == "lin1.model.1.weight") and v.dim() == 4:
                return {192: "alex", 128: "vgg"}.get(int(v.shape[1]))
    return None


class KeyProblems:
    def __init__(self):
        self.unknown, self.missing, self.bad, self.other = [], [], [], []

    def __bool__(self):
        return bool(self.unknown or self.missing or self.bad or self.other)

    def message(self):
        parts = []
        for title, items in (("unknown keys", self.unknown), ("missing keys", self.missing),
                             ("shape mismatches", self.bad), ("other problems", self.other)):
            if items:
                parts.append("%s (%d):\n  %s" % (title, len(items), "\n  ".join(items)))
        return "\n".join(parts)


def _match(sd, source, wanted, problems, ignore=lambda k: False, aliases=None):
    """Moves the tensors of `wanted` ({external: (internal, shape)}) from `sd` into a dict keyed by
    internal name; records every unknown, missing or mis-shaped key (named as `source: key`)."""
    out = {}
    seen, misshaped = {}, set()
    for k, v in sd.items():
        if ignore(k):
            continue
        name = k
        if k not in wanted and aliases is not None and aliases(k) in wanted:
            name = aliases(k)
        if name not in wanted:
            problems.unknown.append(f"{source}: {k} {tuple(v.shape)}")
            continue
        internal, shape = wanted[name]
        if tuple(v.shape) != tuple(shape):
            problems.bad.append(f"{source}: {k}: checkpoint {tuple(v.shape)} vs LPIPS {tuple(shape)}")
            misshaped.add(name)
            continue
        if name in seen:
            if not torch.equal(seen[name], v):
                problems.other.append(f"{source}: {k} and {name} both present but different")
            continue
        seen[name] = v
        out[internal] = v.float()
    for name in wanted:
        if name not in seen and name not in misshaped:
            problems.missing.append(f"{source}: {name} {tuple(wanted[name][1])}")
    return out


def _check_scaling(sd, source, problems):
    for name, want in (("scaling_layer.shift", SHIFT), ("scaling_layer.scale", SCALE)):
        if name not in sd:
            continue
        v = sd[name]
        if v.numel() != 3 or tuple(v.shape) not in ((1, 3, 1, 1), (3,)):
            problems.bad.append(f"{source}: {name}: checkpoint {tuple(v.shape)} vs LPIPS (1, 3, 1, 1)")
        elif not torch.allclose(v.reshape(3).float(), torch.tensor(want), rtol=0, atol=1e-6):
            problems.other.append(f"{source}: {name} = {v.reshape(3).tolist()}, not LPIPS v0.1's {list(want)}")


def load_weights(model, backbone_sd, backbone_src, lin_sd, lin_src, combined=False):
    """Fills `model` from the checkpoint dicts (the same dict twice for --weights). Raises
    ValueError listing every unknown, missing and mis-shaped key."""
    backbone = model.backbone
    problems = KeyProblems()
    tensors = {}
    if combined:
        sd = backbone_sd
        _check_scaling(sd, backbone_src, problems)
        layout = detect_layout(sd)
        wanted = dict(backbone_keys(backbone, layout))
        wanted.update(lin_keys(backbone))
        tensors.update(_match(sd, backbone_src, wanted, problems,
                              ignore=lambda k: k.startswith("scaling_layer."), aliases=_lin_alias))
    else:
        layout = detect_layout(backbone_sd)
        tensors.update(_match(backbone_sd, backbone_src, backbone_keys(backbone, layout), problems,
                              ignore=lambda k: k.startswith("classifier.") or k.startswith("scaling_layer.")))
        if layout == "lpips":
            _check_scaling(backbone_sd, backbone_src, problems)
        tensors.update(_match(lin_sd, lin_src, lin_keys(backbone), problems, aliases=_lin_alias))
    if problems:
        raise ValueError(f"the checkpoint does not fit LPIPS v{VERSION} with the {backbone} backbone:\n"
                         + problems.message())
    own = model.state_dict()
    assert set(tensors) == {k for k in own if not k.startswith("scaling.")}, "internal key mapping"
    with torch.no_grad():
        for k, v in tensors.items():
            own[k].copy_(v)
    negative = [f"lin{k}" for k, s in enumerate(model.stages) if (s.lin.weight < 0).any()]
    if negative:
        print(f"export_lpips: warning: {', '.join(negative)} have negative weights (trained LPIPS "
              "lin layers are non-negative)", file=sys.stderr)


def randomize(model, seed):
    """Random weights: He-normal convolutions with small random biases, lin weights in [0, 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for stage in model.stages:
            for layer in stage.layers:
                if isinstance(layer, nn.Conv2d):
                    fan_in = layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1]
                    layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * math.sqrt(2.0 / fan_in))
                    layer.bias.copy_(torch.randn(layer.bias.shape, generator=g) * 0.1)
            stage.lin.weight.copy_(torch.rand(stage.lin.weight.shape, generator=g))


# ---------------------------------------------------------------------------------------------
# The weights of a model in the external layouts (for tests and for re-saving).


def torchvision_state_dict(model):
    """The backbone as torchvision's features.N.{weight,bias}."""
    own = model.state_dict()
    return {ext: own[internal].clone() for ext, (internal, _) in backbone_keys(model.backbone, "torchvision").items()}


def lin_state_dict(model):
    """The lin layers as the lpips package's weights/v0.1/*.pth: linK.model.1.weight."""
    own = model.state_dict()
    return {ext: own[internal].clone() for ext, (internal, _) in lin_keys(model.backbone).items()}


def lpips_state_dict(model):
    """The lpips package's LPIPS module layout: scaling_layer.*, net.sliceK.N.*, linK.model.1.weight."""
    own = model.state_dict()
    sd = {"scaling_layer.shift": own["scaling.shift"].clone(), "scaling_layer.scale": own["scaling.scale"].clone()}
    for ext, (internal, _) in backbone_keys(model.backbone, "lpips").items():
        sd[ext] = own[internal].clone()
    sd.update(lin_state_dict(model))
    return sd


# ---------------------------------------------------------------------------------------------


def _finish(model):
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def build(args):
    """The eager LPIPS model (eval mode) from the parsed arguments. Raises ValueError (bad
    checkpoint: keys, shapes, backbone) or OSError (unreadable file)."""
    if args.random:
        backbone = args.backbone or "alex"
        model = LPIPS(backbone, f"lpips-{VERSION}-{backbone}:random-seed-{args.seed}")
        randomize(model, args.seed)
        return _finish(model)
    if args.weights:
        sd = _read(args.weights)
        backbone = args.backbone or detect_backbone(sd) or "alex"
        model = LPIPS(backbone, f"lpips-{VERSION}-{backbone}:{os.path.basename(args.weights)}")
        load_weights(model, sd, args.weights, sd, args.weights, combined=True)
        return _finish(model)
    bsd = _read(args.backbone_weights)
    lsd = _read(args.lin_weights)
    backbone = args.backbone or detect_backbone(bsd, lsd) or "alex"
    model = LPIPS(backbone, f"lpips-{VERSION}-{backbone}:{os.path.basename(args.backbone_weights)}+"
                            f"{os.path.basename(args.lin_weights)}")
    load_weights(model, bsd, args.backbone_weights, lsd, args.lin_weights)
    return _finish(model)


def _read(path):
    try:
        return load_state_dict(path)
    except FileNotFoundError:
        raise
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        raise ValueError(f"{path}: not a readable PyTorch checkpoint ({str(e).splitlines()[0] if str(e) else e!r})")


def export(model, path):
    """torch.jit.script of the eager model, saved to `path`; returns the scripted module."""
    scripted = torch.jit.script(model)
    scripted.save(path)
    return scripted


def check(model, path):
    """Reloads `path` and compares it with the eager model on random pairs of two sizes; returns
    the largest |eager - reloaded| / max(1, max |eager|) (inf when something is off)."""
    loaded = torch.jit.load(path)
    g = torch.Generator().manual_seed(1234)
    m = max(model.min_size, 16)
    worst = 0.0
    for n, h, w in ((3, max(64, m), max(64, m)), (2, max(48, m), max(80, m)), (1, m, m + 5)):
        x = torch.rand(n, 3, h, w, generator=g) * 2 - 1
        y = (x + 0.3 * torch.randn(n, 3, h, w, generator=g)).clamp(-1, 1)
        with torch.no_grad():
            d_py = model(x, y)
            d_ts = loaded(x, y)
            d_xx = loaded(x, x)
        if tuple(d_ts.shape) != (n,) or d_ts.dtype != torch.float32:
            print(f"check: the reloaded module returned {tuple(d_ts.shape)} {d_ts.dtype} for N={n}", file=sys.stderr)
            return float("inf")
        if d_xx.abs().max().item() > 1e-7:
            print(f"check: d(x, x) = {d_xx.tolist()}, not 0", file=sys.stderr)
            return float("inf")
        err = ((d_py - d_ts).abs().max() / d_py.abs().max().clamp(min=1)).item()
        print(f"check: N={n} {h}x{w}: distances {[round(v, 5) for v in d_py.tolist()]}, "
              f"max |eager - reloaded| {err:.3g}")
        worst = max(worst, err)
    if loaded.backbone != model.backbone or loaded.version != VERSION:
        print(f"check: attributes backbone={loaded.backbone!r} version={loaded.version!r}", file=sys.stderr)
        return float("inf")
    print(f"check: backbone={loaded.backbone!r} version={loaded.version!r} min_size={loaded.min_size} "
          f"network={loaded.network!r}")
    return worst


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", choices=sorted(BACKBONES),
                   help="alex or vgg (VGG-16); default: from the checkpoint, alex for --random")
    p.add_argument("--backbone-weights", metavar="FILE",
                   help="torchvision state dict of alexnet / vgg16 (features.N.*; classifier.* ignored)")
    p.add_argument("--lin-weights", metavar="FILE",
                   help="the lpips package's weights/v0.1/alex.pth or vgg.pth (linK.model.1.weight)")
    p.add_argument("--weights", metavar="FILE",
                   help="one file with both: an lpips LPIPS module's state dict (net.sliceK.N.*, linK.model.1.weight)")
    p.add_argument("--random", action="store_true", help="random weights (tests)")
    p.add_argument("--seed", type=int, default=0, help="seed for --random (default 0)")
    p.add_argument("--out", required=True, metavar="FILE.pt", help="output TorchScript file")
    p.add_argument("--check", action="store_true", help="reload the file and compare with the eager model")
    args = p.parse_args(argv)
    sources = [name for name, given in (("--random", args.random), ("--weights", args.weights is not None),
                                        ("--backbone-weights/--lin-weights",
                                         args.backbone_weights is not None or args.lin_weights is not None))
               if given]
    if len(sources) != 1:
        p.error("give exactly one of --random, --weights FILE, or --backbone-weights FILE with --lin-weights FILE"
                + (f" (got {' and '.join(sources)})" if sources else ""))
    if (args.backbone_weights is None) != (args.lin_weights is None):
        p.error("--backbone-weights and --lin-weights go together (or use --weights for one combined file)")
    return args


def main(argv=None):
    try:
        args = parse_args(argv)
    except SystemExit as e:  # argparse: usage errors exit 2, --help exits 0
        return e.code if isinstance(e.code, int) else 2
    try:
        model = build(args)
    except (ValueError, OSError) as e:
        print(f"export_lpips: {e}", file=sys.stderr)
        return 1
    export(model, args.out)
    print(f"wrote {args.out}: {model.network}, forward(x, y [N,3,H,W] in [-1,1], H,W >= {model.min_size}) -> [N] "
          f"(torch {torch.__version__})")
    if args.check:
        err = check(model, args.out)
        if not err <= 1e-5:
            print("check FAILED", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

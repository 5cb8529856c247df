#!/usr/bin/env python3
"""Exports an Inception-v3 feature network as a TorchScript file that the C++
`ldm::eval::InceptionExtractor` (worker/eval/features.h) loads for FID (`ldm-eval --inception PATH`).

Run it with Debian's python3-torch 1.13 and python3-torchvision 0.14 (/usr/bin/python3), the version
of the LibTorch we link: a file written by a newer PyTorch may not load.

Module contract (what the C++ side calls):
  forward(x: float32 [N,3,299,299], RGB, already normalised to [-1,1]) -> float32 [N,2048]
      the 2048-d pool3 features (the output of the global average pool after Mixed_7c)
  attributes: feature_dim (int, 2048), network (str, describes architecture and weights)
The resize to 299x299 and the [0,1] -> [-1,1] normalisation happen in C++, before forward(), exactly
as pytorch-fid does them (see worker/eval/features.h). The module does no resizing and no input
transform (torchvision's transform_input=False).

Two architectures (--architecture):
  fid          pytorch-fid's "FID Inception": torchvision's Inception3 with 1008 classes and the
               Mixed_5b/5c/5d (FIDInceptionA), Mixed_6b..6e (FIDInceptionC), Mixed_7b (FIDInceptionE_1)
               and Mixed_7c (FIDInceptionE_2) blocks patched as TensorFlow's 2015 Inception graph
               computes them: the branch average pools ignore the zero padding
               (count_include_pad=False) and Mixed_7c's pool branch is a max pool. Re-implemented
               here (the same code as pytorch-fid's src/pytorch_fid/inception.py); with
               --use-pytorch-fid the classes are imported from an installed pytorch_fid instead.
               With pytorch-fid's weights (pt_inception-2015-12-05-6726825d.pth, the TensorFlow
               FID network ported to PyTorch) the features, and so the FID, are comparable with
               published numbers (pytorch-fid, and the TF FID code it reproduces).
  torchvision  torchvision's inception_v3 as it is (1000 classes, count_include_pad=True pools,
               average pool in Mixed_7c). With torchvision's ImageNet weights
               (inception_v3_google-0cc3c7bd.pth) it is a different network: FIDs from it are NOT
               comparable with published FIDs.
With --weights the architecture is taken from the checkpoint when not given: fc.weight with 1008
rows -> fid, 1000 rows -> torchvision. In both cases fc becomes Identity (the output is the pool3
features; dropout is a no-op in eval mode) and aux_logits is off (AuxLogits.* keys are skipped).

--random --seed S builds random weights (torchvision's init_weights, truncated normal) for tests;
the BatchNorm running statistics are then calibrated on seeded noise images (one forward pass in
training mode with a cumulative average), so activations stay O(1) as in a trained network instead
of growing to ~1e11 through the 94 layers (disable with --no-calibrate).

Examples:
  # pytorch-fid's FID Inception (comparable with published FID):
  #   https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth
  python3 export_inception.py --weights pt_inception-2015-12-05-6726825d.pth --out fid-inception.pt --check
  # torchvision's ImageNet Inception-v3 (not comparable with published FID):
  python3 export_inception.py --weights inception_v3_google-0cc3c7bd.pth --out tv-inception.pt
  # tests: random weights
  python3 export_inception.py --random --seed 1 --out random-inception.pt
"""

import argparse
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    import torchvision
    from torchvision.models import inception as tv_inception
except ImportError:  # pragma: no cover - reported by main()
    torchvision = None
    tv_inception = None

from weights_io import assign, load_state_dict

FEATURE_DIM = 2048
INPUT_SIZE = 299


# ---------------------------------------------------------------------------------------------
# pytorch-fid's patched blocks (its src/pytorch_fid/inception.py, Apache-2.0), defined lazily so
# that a missing torchvision is reported cleanly by main().


def _fid_block_classes():
    class FIDInceptionA(tv_inception.InceptionA):
        """InceptionA whose pool branch ignores the padding (TensorFlow's average pool)."""

        def forward(self, x):
            branch1x1 = self.branch1x1(x)
            branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
            branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            branch_pool = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
            branch_pool = self.branch_pool(branch_pool)
            return torch.cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1)

    class FIDInceptionC(tv_inception.InceptionC):
        """InceptionC whose pool branch ignores the padding."""

        def forward(self, x):
            branch1x1 = self.branch1x1(x)
            branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            branch7x7dbl = self.branch7x7dbl_1(x)
            branch7x7dbl = self.branch7x7dbl_2(branch7x7dbl)
            branch7x7dbl = self.branch7x7dbl_3(branch7x7dbl)
            branch7x7dbl = self.branch7x7dbl_4(branch7x7dbl)
            branch7x7dbl = self.branch7x7dbl_5(branch7x7dbl)
            branch_pool = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
            branch_pool = self.branch_pool(branch_pool)
            return torch.cat([branch1x1, branch7x7, branch7x7dbl, branch_pool], 1)

    class FIDInceptionE_1(tv_inception.InceptionE):
        """Mixed_7b: InceptionE whose pool branch ignores the padding."""

        def forward(self, x):
            branch1x1 = self.branch1x1(x)
            branch3x3 = self.branch3x3_1(x)
            branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
            branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
            branch_pool = F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)
            branch_pool = self.branch_pool(branch_pool)
            return torch.cat([branch1x1, branch3x3, branch3x3dbl, branch_pool], 1)

    class FIDInceptionE_2(tv_inception.InceptionE):
        """Mixed_7c: InceptionE with a max pool in the pool branch (as the 2015 TF graph has it)."""

        def forward(self, x):
            branch1x1 = self.branch1x1(x)
            branch3x3 = self.branch3x3_1(x)
            branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], 1)
            branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], 1)
            branch_pool = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
            branch_pool = self.branch_pool(branch_pool)
            return torch.cat([branch1x1, branch3x3, branch3x3dbl, branch_pool], 1)

    return FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2


def _pytorch_fid_block_classes():
    try:
        from pytorch_fid import inception as pf  # type: ignore
    except ImportError as e:
        raise ValueError("--use-pytorch-fid: the pytorch_fid package is not importable (%s)" % e)
    return pf.FIDInceptionA, pf.FIDInceptionC, pf.FIDInceptionE_1, pf.FIDInceptionE_2


def build_inception(architecture, init_weights, use_pytorch_fid=False):
    """torchvision's Inception3 (aux_logits off, transform_input off), patched to pytorch-fid's
    FID Inception when architecture == "fid". fc is still the classifier here."""
    if architecture == "fid":
        model = tv_inception.Inception3(num_classes=1008, aux_logits=False, transform_input=False,
                                        init_weights=init_weights)
        A, C, E1, E2 = _pytorch_fid_block_classes() if use_pytorch_fid else _fid_block_classes()
        model.Mixed_5b = A(192, pool_features=32)
        model.Mixed_5c = A(256, pool_features=64)
        model.Mixed_5d = A(288, pool_features=64)
        model.Mixed_6b = C(768, channels_7x7=128)
        model.Mixed_6c = C(768, channels_7x7=160)
        model.Mixed_6d = C(768, channels_7x7=160)
        model.Mixed_6e = C(768, channels_7x7=192)
        model.Mixed_7b = E1(1280)
        model.Mixed_7c = E2(2048)
        if init_weights:  # the replaced blocks need the same initialisation as the rest
            model.apply(_init_like_torchvision)
        return model
    if architecture == "torchvision":
        return tv_inception.Inception3(num_classes=1000, aux_logits=False, transform_input=False,
                                       init_weights=init_weights)
    raise ValueError(f"unknown architecture {architecture!r} (fid or torchvision)")


def _init_like_torchvision(m):
    # torchvision 0.14's Inception3 init_weights for modules without a stddev attribute.
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        stddev = float(m.stddev) if hasattr(m, "stddev") else 0.1
        nn.init.trunc_normal_(m.weight, mean=0.0, std=stddev, a=-2, b=2)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.constant_(m.weight, 1)
        nn.init.constant_(m.bias, 0)


def calibrate_batchnorm(model, seed, images=4):
    """Sets every BatchNorm's running mean/var to the batch statistics of one forward pass over
    seeded smooth noise images in [-1,1] (cumulative average), then returns to eval mode."""
    g = torch.Generator().manual_seed(seed + 7919)
    x = torch.rand(images, 3, 19, 19, generator=g)
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False) * 2 - 1
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(x)
    model.eval()


class InceptionFeatures(nn.Module):
    """The exported module: the pool3 features of a (traced) Inception3 whose fc is Identity."""

    feature_dim: int
    network: str

    def __init__(self, net, network: str):
        super().__init__()
        self.net = net
        self.feature_dim = FEATURE_DIM
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def detect_architecture(sd, path):
    w = sd.get("fc.weight")
    if w is None:
        raise ValueError(f"{path}: no fc.weight in the checkpoint; give --architecture fid|torchvision")
    if w.shape[0] == 1008:
        return "fid"
    if w.shape[0] == 1000:
        return "torchvision"
    raise ValueError(f"{path}: fc.weight has {w.shape[0]} rows (1008: FID Inception, 1000: torchvision); "
                     "give --architecture")


def build(args):
    """The eager model (fc = Identity, eval mode) and its description string."""
    if args.random:
        torch.manual_seed(args.seed)
        architecture = args.architecture or "torchvision"
        model = build_inception(architecture, init_weights=True, use_pytorch_fid=args.use_pytorch_fid)
        if not args.no_calibrate:
            calibrate_batchnorm(model, args.seed)
        network = f"{architecture}-inception-v3:random-seed-{args.seed}"
    else:
        sd = load_state_dict(args.weights)
        architecture = args.architecture or detect_architecture(sd, args.weights)
        model = build_inception(architecture, init_weights=False, use_pytorch_fid=args.use_pytorch_fid)
        skipped = sorted(k for k in sd if k.startswith("AuxLogits."))
        sd = {k: v for k, v in sd.items() if not k.startswith("AuxLogits.")}
        # num_batches_tracked may be missing from ported checkpoints: keep the model's.
        own = model.state_dict()
        for k in own:
            if k.endswith("num_batches_tracked") and k not in sd:
                sd[k] = own[k]
        assign(model, sd, args.weights)
        if skipped:
            print(f"skipped {len(skipped)} AuxLogits.* keys (aux_logits is off)")
        network = f"{architecture}-inception-v3:{args.weights.rsplit('/', 1)[-1]}"
    model.fc = nn.Identity()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, network


def export(model, network, path):
    example = torch.zeros(2, 3, INPUT_SIZE, INPUT_SIZE)
    with torch.no_grad():
        traced = torch.jit.trace(model, example, check_trace=False)
    scripted = torch.jit.script(InceptionFeatures(traced, network))
    scripted.save(path)
    return scripted


def check(model, path):
    torch.manual_seed(1234)
    x = torch.rand(3, 3, INPUT_SIZE, INPUT_SIZE) * 2 - 1  # another batch size than the trace's
    loaded = torch.jit.load(path)
    with torch.no_grad():
        y_py = model(x)
        y_ts = loaded(x)
    if tuple(y_ts.shape) != (3, FEATURE_DIM):
        print(f"check: the reloaded module returned shape {tuple(y_ts.shape)}", file=sys.stderr)
        return float("inf")
    err = ((y_py - y_ts).abs().max() / y_py.abs().max().clamp(min=1)).item()
    print(f"check: input {tuple(x.shape)} -> {tuple(y_ts.shape)}, feature range "
          f"[{y_py.min().item():.4g}, {y_py.max().item():.4g}]; max |python - reloaded| / max(1, max|python|) "
          f"{err:.3g}; network={loaded.network!r} feature_dim={loaded.feature_dim}")
    return err


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="state dict (.pth/.pt/.bin/.safetensors) of pytorch-fid's FID "
                     "Inception (1008 classes) or torchvision's inception_v3 (1000 classes)")
    src.add_argument("--random", action="store_true", help="random weights (tests)")
    p.add_argument("--seed", type=int, default=0, help="seed for --random (default 0)")
    p.add_argument("--architecture", choices=["fid", "torchvision"],
                   help="default: from the checkpoint's fc.weight; torchvision for --random")
    p.add_argument("--use-pytorch-fid", action="store_true",
                   help="take the FID blocks from an installed pytorch_fid package instead of this file")
    p.add_argument("--no-calibrate", action="store_true",
                   help="--random: keep BatchNorm running statistics at mean 0, var 1")
    p.add_argument("--out", required=True, help="output TorchScript file")
    p.add_argument("--check", action="store_true", help="reload the file and compare with the eager model")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if torchvision is None:
        print("export_inception: torchvision is missing (apt-get install python3-torchvision)", file=sys.stderr)
        return 2
    try:
        model, network = build(args)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"export_inception: {e}", file=sys.stderr)
        return 2
    export(model, network, args.out)
    print(f"wrote {args.out}: {network}, forward(x [N,3,{INPUT_SIZE},{INPUT_SIZE}] in [-1,1]) -> [N,{FEATURE_DIM}] "
          f"(torch {torch.__version__}, torchvision {torchvision.__version__})")
    if args.check:
        err = check(model, args.out)
        if not err <= 1e-5:
            print("check FAILED", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

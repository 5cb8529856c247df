"""Fixture of tests/worker/cli/forward_test.cpp: `ldm-worker forward` on PyTorch checkpoints of the
independent reference DiT (dit_reference.py, next to this file), against the reference's outputs.

Usage: make_forward_inputs.py OUT_DIR. Runs dit_reference.py's main() into OUT_DIR (dit_<case>.pt,
io_<case>.pt; see there), then for each case ("square", "nonsquare") writes
  inputs_<case>.npz       numpy.savez(x=float32 [N,4,H,W], t=[N] as the reference got it (int64 for
                          "square", float32 for "nonsquare"), y=int64 [N])
  expected_<case>.npy     float64 reference forward with the weights of dit_<case>.pt
  train_<case>.pt         a training checkpoint as the reference DiT's train.py saves it:
                          {"model": other weights, "ema": dit_<case>.pt's weights, "opt": ..., "args": ...};
                          "square": opt {} and args None; "nonsquare": a real AdamW state dict after
                          one step and an argparse.Namespace
  expected_model_<case>.npy  float64 reference forward with train_<case>.pt's "model" weights
  dit_<case>_bf16.pt      dit_<case>.pt's weights in bfloat16 (pos_embed too)
  expected_bf16_<case>.npy   float64 reference forward with those bfloat16 weights
"""
import argparse
import copy
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_reference  # noqa: E402


def forward64(model, io):
    with torch.no_grad():
        return copy.deepcopy(model).double()(io["x"].double(), io["t"], io["y"]).numpy()


def main():
    out_dir = sys.argv[1]
    dit_reference.main()  # reads sys.argv[1] too
    generator = torch.Generator().manual_seed(4321)
    for name, h, w, _ in dit_reference.CASES:
        model = dit_reference.ReferenceDiT(**dit_reference.CONFIG, latent_h=h, latent_w=w).eval()
        model.load_state_dict(torch.load(os.path.join(out_dir, "dit_%s.pt" % name)))
        io = torch.load(os.path.join(out_dir, "io_%s.pt" % name))
        np.savez(os.path.join(out_dir, "inputs_%s.npz" % name), x=io["x"].numpy(), t=io["t"].numpy(),
                 y=io["y"].numpy())
        np.save(os.path.join(out_dir, "expected_%s.npy" % name), forward64(model, io))

        ema_state = copy.deepcopy(model.state_dict())
        other = copy.deepcopy(model)
        dit_reference.randomise(other, generator)
        if name == "square":
            opt, args = {}, None
        else:
            opt_obj = torch.optim.AdamW(other.parameters(), lr=1e-4, weight_decay=0)
            other(io["x"], io["t"], io["y"]).square().mean().backward()
            opt_obj.step()
            opt = opt_obj.state_dict()
            args = argparse.Namespace(model="DiT-tiny/2", image_size=64, num_classes=10, global_seed=0)
        torch.save({"model": other.state_dict(), "ema": ema_state, "opt": opt, "args": args},
                   os.path.join(out_dir, "train_%s.pt" % name))
        np.save(os.path.join(out_dir, "expected_model_%s.npy" % name), forward64(other, io))

        bf16_state = {k: v.to(torch.bfloat16) for k, v in ema_state.items()}
        torch.save(bf16_state, os.path.join(out_dir, "dit_%s_bf16.pt" % name))
        rounded = copy.deepcopy(model)
        rounded.load_state_dict({k: v.float() for k, v in bf16_state.items()})
        np.save(os.path.join(out_dir, "expected_bf16_%s.npy" % name), forward64(rounded, io))
        print("%s: inputs, train checkpoint and bf16 weights written" % name)


if __name__ == "__main__":
    main()

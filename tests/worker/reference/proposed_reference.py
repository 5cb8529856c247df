"""An independent reference of the paper's proposed model forward pass and its two-scale guidance,
in plain torch, for tests/worker/models/proposed_reference_test.cpp.

The proposed model (PAPER.md "Conditioning improvements") is the MM-DiT trunk of
mmdit_reference.py with two changes:
  - semantics (label or caption tokens) reach the network through joint attention only: no pooled
    vector, no y_embedder; adaLN's c = timestep embedding + the control term;
  - control metadata [N, 8] (orig h, w | crop top, left, h, w | flip | aspect) in four groups, each
    embedded by control_embedder.<group>.{0,2} (Linear(k*F -> D), SiLU, Linear(D -> D)) from
    Fourier features of the raw values (cos half first, F per scalar, computed in float32 as the
    timestep's), multiplied by w_alpha(t) = cos(pi t / 2)^alpha_group of the noise level t in [0, 1]
    [recon], summed; a dropped sample's whole control term is 0 (classifier-free guidance on
    controls, the "zero" null [recon]).
Two-scale guidance: out = o(0,0) + s_sem (o(c,0) - o(0,0)) + s_ctrl (o(c,k) - o(c,0)), where 0 is
the null label (class mode) and the dropped controls.

Usage: proposed_reference.py OUT_DIR. Cases (each writes proposed_<case>.pt and io_<case>.pt):
  class_square    8x8, labels (null in the middle), controls, the second sample's controls dropped
  text_nonsquare  8x12, caption tokens (the third caption dropped: zeros), controls
  guided          8x8 class mode: the three branches combined with s_sem = 3, s_ctrl = 2 ("out")
"""
import math
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dit_reference import randomise  # noqa: E402
from mmdit_reference import CONFIG, NUM_CLASSES, ReferenceMMDiT  # noqa: E402

FREQUENCIES = 16
ALPHAS = {"size": 2.0, "crop": 1.0, "flip": 0.5, "aspect": 1.5}
GROUPS = {"size": [0, 1], "crop": [2, 3, 4, 5], "flip": [6], "aspect": [7]}
CONTEXT_CHANNELS, TOKENS = 24, 4
S_SEM, S_CTRL = 3.0, 2.0


def fourier(x, size=FREQUENCIES, max_period=10000.0):
    half = size // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = x.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def control_weight(t, alpha):
    t = t.double().clamp(0, 1)
    base = torch.where(t >= 1, torch.zeros_like(t), torch.cos(t * math.pi / 2).clamp(0, 1))
    return base ** alpha


class ControlEmbedder(nn.Module):
    def __init__(self, width):
        super().__init__()
        for group, cols in GROUPS.items():
            setattr(self, group, nn.Sequential(nn.Linear(len(cols) * FREQUENCIES, width), nn.SiLU(),
                                               nn.Linear(width, width)))

    def forward(self, controls, t, drop):
        dtype = self.size[0].weight.dtype
        out = 0
        for group, cols in GROUPS.items():
            feats = torch.cat([fourier(controls[:, c]) for c in cols], dim=1).to(dtype)
            out = out + getattr(self, group)(feats) * control_weight(t, ALPHAS[group]).to(dtype)[:, None]
        if drop is not None:
            out = torch.where(drop[:, None], torch.zeros_like(out), out)
        return out


class ReferenceProposed(ReferenceMMDiT):
    def __init__(self, latent_h, latent_w, text):
        super().__init__(**CONFIG, latent_h=latent_h, latent_w=latent_w, text=text, qk_norm=False)
        del self.y_embedder  # semantics through attention only
        if text:
            self.context_embedder = nn.Linear(CONTEXT_CHANNELS, CONFIG["width"])
        self.control_embedder = ControlEmbedder(CONFIG["width"])

    def forward(self, x, t, noise, controls, y=None, tokens=None, control_drop=None, semantic_drop=None):
        if self.text:
            if semantic_drop is not None:
                tokens = torch.where(semantic_drop[:, None, None], torch.zeros_like(tokens), tokens)
        else:
            tokens = self.label_embedder.embedding_table(y)[:, None, :]
        h = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.control_embedder(controls, noise, control_drop)
        context = self.context_embedder(tokens)
        for block in self.joint_blocks:
            context, h = block(context, h, c, None)
        return self.unpatchify(self.final_layer(h, c))


def controls_for(n, generator):
    orig = torch.tensor([[64, 48], [48, 64], [96, 96]], dtype=torch.float32)[:n]
    crop = torch.randint(0, 9, (n, 2), generator=generator).float()
    crop_size = torch.tensor([[32, 32], [32, 48], [64, 64]], dtype=torch.float32)[:n]
    flip = torch.tensor([[1.0], [0.0], [1.0]])[:n]
    aspect = orig[:, 1:2] / orig[:, 0:1]
    return torch.cat([orig, crop, crop_size, flip, aspect], dim=1)  # [N, 8]


def main():
    out_dir = sys.argv[1]
    generator = torch.Generator().manual_seed(1357)
    for name, h, w, text in [("class_square", 8, 8, False), ("text_nonsquare", 8, 12, True),
                             ("guided", 8, 8, False)]:
        model = ReferenceProposed(h, w, text).eval()
        randomise(model, generator)
        torch.save(model.state_dict(), os.path.join(out_dir, "proposed_%s.pt" % name))
        n = 3
        x = torch.randn(n, CONFIG["in_channels"], h, w, generator=generator)
        t = torch.randint(0, 1000, (n,), generator=generator)
        io = {"x": x, "t": t, "noise_level": torch.tensor([0.1, 0.5, 0.95]), "controls": controls_for(n, generator)}
        if text:
            io["tokens"] = torch.randn(n, TOKENS, CONTEXT_CHANNELS, generator=generator)
            io["semantic_drop"] = torch.tensor([False, False, True])
        else:
            io["y"] = torch.tensor([3, NUM_CLASSES, 7])
            if name == "class_square":
                io["control_drop"] = torch.tensor([False, True, False])

        def run(m, dtype):
            cast = lambda z: None if z is None else (z.to(dtype) if z.is_floating_point() else z)  # noqa: E731
            args = dict(controls=io["controls"], y=io.get("y"), tokens=cast(io.get("tokens")),
                        semantic_drop=io.get("semantic_drop"))
            if name != "guided":
                return m(cast(x), t, io["noise_level"], control_drop=io.get("control_drop"), **args)
            null = dict(args, y=torch.full_like(io["y"], NUM_CLASSES))
            dropped, kept = torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
            u = m(cast(x), t, io["noise_level"], control_drop=dropped, **null)
            c = m(cast(x), t, io["noise_level"], control_drop=dropped, **args)
            k = m(cast(x), t, io["noise_level"], control_drop=kept, **args)
            return u + S_SEM * (c - u) + S_CTRL * (k - c)

        with torch.no_grad():
            out_f32 = run(model, torch.float32)
            out = run(model.double(), torch.float64)
        io["out"], io["out_f32"] = out, out_f32
        torch.save(io, os.path.join(out_dir, "io_%s.pt" % name))
        print("%s: |out| max %.3f, float32 vs float64 max diff %.2e"
              % (name, out.abs().max().item(), (out_f32.double() - out).abs().max().item()))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Independent reference for worker/models/pos_embed.cpp, run by tests/worker/models/pos_embed_test.cpp.

Usage: pos_embed_reference.py CASES OUT_DIR
CASES has one case per line: `tag h0 w0 h1 w1 dim convention input_file`, where input_file holds an
old positional-embedding map as raw little-endian float32 [h0*w0, dim], tokens row-major. For each
case it writes raw little-endian float64 [h1*w1, dim] files OUT_DIR/<tag>.<result>.f64:
  interpolate  torch.nn.functional.interpolate(mode='bicubic', align_corners=False) of the map,
               cross-checked against a NumPy re-implementation of the same kernel (Keys cubic,
               a = -0.75, half-pixel source coordinates, border indices clamped);
  rectified    MAE/DiT's get_2d_sincos_pos_embed evaluated on the rescaled grid of `convention`;
  extrapolate  the same on the integer grid 0..h1-1 x 0..w1-1.
Everything is computed in float64. All cases run in one process (importing torch takes seconds).
Needs torch (Debian's python3-torch) and numpy; exits 3 with a message naming what is missing
otherwise, so the C++ test fails instead of passing.
"""
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the C++ test turns this into a failure with this message
    print(f"pos_embed_reference.py: cannot import {e.name} ({e}); install python3-torch and python3-numpy",
          file=sys.stderr)
    sys.exit(3)


# ---- sin-cos, following MAE's util/pos_embed.py (also used by DiT) --------------------------------
def get_1d_sincos_pos_embed_from_grid(embed_dim, pos):
    assert embed_dim % 2 == 0
    omega = np.arange(embed_dim // 2, dtype=np.float64)
    omega /= embed_dim / 2.0
    omega = 1.0 / 10000 ** omega  # (D/2,)
    pos = pos.reshape(-1)  # (M,)
    out = np.einsum("m,d->md", pos, omega)  # (M, D/2)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)  # (M, D)


def get_2d_sincos_pos_embed_from_grid(embed_dim, grid):
    assert embed_dim % 2 == 0
    emb_h = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[0])  # grid[0] holds the w (column) coordinate
    emb_w = get_1d_sincos_pos_embed_from_grid(embed_dim // 2, grid[1])
    return np.concatenate([emb_h, emb_w], axis=1)


def get_2d_sincos_pos_embed(embed_dim, pos_h, pos_w):
    """MAE's get_2d_sincos_pos_embed generalised to given (float64) row / column positions."""
    grid = np.meshgrid(pos_w, pos_h)  # here w goes first, as in MAE; each (h, w)
    grid = np.stack(grid, axis=0).reshape([2, 1, len(pos_h), len(pos_w)])
    return get_2d_sincos_pos_embed_from_grid(embed_dim, grid)


def rescaled_grid(n0, n1, convention):
    i = np.arange(n1, dtype=np.float64)
    if convention == "center":   # new cell centres mapped into the old pixel frame (half-pixel)
        return (i + 0.5) * n0 / n1 - 0.5
    if convention == "corners":  # endpoints aligned
        return i * (n0 - 1) / (n1 - 1) if n1 > 1 else np.zeros(1)
    if convention == "origin":   # PixArt-alpha: arange(n1) / (n1 / n0)
        return i / (n1 / n0)
    raise SystemExit(f"unknown convention {convention}")


# ---- bicubic, re-implemented from the definition ------------------------------------------------------
def cubic_weights(t, a=-0.75):
    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], axis=-1)  # (n1, 4)


def bicubic_matrix(n0, n1):
    """(n1, n0) matrix M with out = M @ in along one axis (align_corners=False)."""
    src = (np.arange(n1, dtype=np.float64) + 0.5) * (n0 / n1) - 0.5  # not clamped for cubic
    base = np.floor(src)
    w = cubic_weights(src - base)
    m = np.zeros((n1, n0))
    for i in range(n1):
        for k in range(4):
            j = int(min(max(base[i] - 1 + k, 0), n0 - 1))
            m[i, j] += w[i, k]
    return m


def run_case(tag, h0, w0, h1, w1, dim, convention, input_file, out_dir):
    old = np.fromfile(input_file, dtype="<f4").astype(np.float64)
    if old.size != h0 * w0 * dim:
        raise SystemExit(f"{input_file}: {old.size} floats, expected {h0}*{w0}*{dim}")
    grid = old.reshape(h0, w0, dim)

    t = torch.from_numpy(grid).permute(2, 0, 1).unsqueeze(0)  # (1, D, h0, w0)
    interp = F.interpolate(t, size=(h1, w1), mode="bicubic", align_corners=False)
    interp = interp[0].permute(1, 2, 0).reshape(h1 * w1, dim).numpy()
    mine = np.einsum("ia,abd,jb->ijd", bicubic_matrix(h0, h1), grid, bicubic_matrix(w0, w1)).reshape(h1 * w1, dim)
    gap = float(np.abs(mine - interp).max())
    if gap > 1e-9:
        raise SystemExit(f"{tag}: NumPy bicubic and F.interpolate disagree by {gap}")

    rect = get_2d_sincos_pos_embed(dim, rescaled_grid(h0, h1, convention), rescaled_grid(w0, w1, convention))
    extra = get_2d_sincos_pos_embed(dim, np.arange(h1, dtype=np.float64), np.arange(w1, dtype=np.float64))
    for name, arr in (("interpolate", interp), ("rectified", rect), ("extrapolate", extra)):
        np.ascontiguousarray(arr, dtype="<f8").tofile(f"{out_dir}/{tag}.{name}.f64")
    print(f"{tag}: {h0}x{w0} -> {h1}x{w1}, D={dim}, {convention}; numpy/torch bicubic gap {gap:.2e}")


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1]) as f:
        for line in f:
            if not line.strip():
                continue
            tag, h0, w0, h1, w1, dim, convention, input_file = line.split()
            run_case(tag, int(h0), int(w0), int(h1), int(w1), int(dim), convention, input_file, sys.argv[2])


if __name__ == "__main__":
    main()

// 2-D sin-cos positional embeddings on arbitrary (non-integer, non-square) grids and their
// resampling when a model moves to another token grid, e.g. 256² -> 512² fine-tuning
// (PAPER.md "Positional-embedding resampling").
//
// Layout everywhere (as sincos_2d in blocks.h, DiT/MAE): tokens row-major over an h × w grid, the
// first D/2 channels encode the column position, the last D/2 the row position; each half is
// [sin | cos] of position·ω_k, ω_k = 10000^(−k/(D/4)), k = 0..D/4−1.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "shared/core/choices.h"

namespace ldm::models {

// The sin-cos embedding evaluated at arbitrary positions: row_positions [h], col_positions [w]
// (any floating/integer dtype; computed in float64) -> [h·w, D] float32, token i·w + j at
// (row_positions[i], col_positions[j]). D % 4 == 0. With integer positions 0..h−1 / 0..w−1 it
// equals sincos_2d(D, h, w) bit for bit.
at::Tensor sincos_2d_at(int64_t dim, const at::Tensor& row_positions, const at::Tensor& col_positions);

// PosEmbedResampling (the spec's enum, shared/core/choices.h):
//   extrapolate     sin-cos at integer positions 0..h1−1, 0..w1−1: sincos_2d(D, h1, w1)
//   interpolate     bicubic (a = −0.75, align_corners = false, as F.interpolate) of the old map
//   rectified_grid  sin-cos on the new grid rescaled onto the old coordinate range [paper; grid recon]
using ldm::PosEmbedResampling;

// How rectified_grid maps new index i ∈ [0, n1) to an old-grid position [recon: the paper only
// says the new grid spans the pre-training coordinate range]:
//   Center  (default) p_i = (i + 0.5)·n0/n1 − 0.5    token centres of the new grid on the old pixel
//                     grid, as align_corners=false; the span's edges (−0.5, n0−0.5) coincide.
//   Corners           p_i = i·(n0 − 1)/(n1 − 1)        first/last tokens on the old first/last
//                     positions, as align_corners=true (p = 0 when n1 = 1).
//   Origin            p_i = i·n0/n1                    scaled from position 0, as PixArt-α's
//                     pe_interpolation [lit: PixArt-α].
using ldm::GridConvention;

// [n1] float64 positions of the rescaled 1-D grid (see GridConvention).
at::Tensor rectified_positions(int64_t n0, int64_t n1, GridConvention convention);

// Resamples a positional embedding from an h0 × w0 token grid to h1 × w1.
// old: [1, h0·w0, D] or [h0·w0, D] (the result has the same rank, dtype and device).
// When (h1, w1) == (h0, w0) every mode returns a copy of `old`, unchanged. Otherwise extrapolate
// and rectified_grid regenerate the fixed sin-cos map (they ignore old's values, so they are only
// meaningful for sin-cos embeddings) and interpolate resamples old's values (any learned map);
// interpolate computes in float64. Shape errors throw ldm::Error.
at::Tensor resample_pos_embed(const at::Tensor& old, int64_t h0, int64_t w0, int64_t h1, int64_t w1,
                              PosEmbedResampling mode, GridConvention grid_convention = GridConvention::Center);

// A learned positional map (mDT-v2's pos_embed and decoder_pos_embed, initialised as sin-cos and
// trained from there) moved from h0 × w0 to h1 × w1 tokens. The sin-cos-only modes cannot simply
// regenerate the function, since that would throw away what was learned, so [recon]:
//   extrapolate     sincos_2d(D, h1, w1) with the learned values kept where the grids overlap (the
//                   top-left min(h0,h1) × min(w0,w1) positions, whose coordinates are unchanged)
//   interpolate     as resample_pos_embed (bicubic of the learned map)
//   rectified_grid  the learned map sampled bicubically at rectified_positions(…, grid_convention)
// Same shapes and identity rule as resample_pos_embed.
at::Tensor resample_learned_pos_embed(const at::Tensor& old, int64_t h0, int64_t w0, int64_t h1, int64_t w1,
                                      PosEmbedResampling mode, GridConvention grid_convention = GridConvention::Center);

// mDT-v2's relative-position bias table [(2·h0−1)·(2·w0−1) + extra, heads] (BEiT layout: row
// (Δr + h0 − 1)·(2·w0 − 1) + (Δc + w0 − 1), then `extra` rows that are copied as they are) moved to
// an h1 × w1 grid. The MDT reference has no rule for this; ours [recon], per offset axis of n0 = 2·h0 − 1
// entries going to n1 = 2·h1 − 1:
//   extrapolate     every offset keeps its bias; offsets longer than the old grid had take the
//                   bias of the longest one in their direction (the table's edge)
//   interpolate     bicubic, align_corners = false, as Swin Transformer fine-tunes its table
//   rectified_grid  bicubic at i·(n0 − 1)/(n1 − 1): the new offsets span the old range, zero stays zero
at::Tensor resample_relative_bias(const at::Tensor& table, int64_t h0, int64_t w0, int64_t h1, int64_t w1,
                                  PosEmbedResampling mode);

// [n1, n0] float64 weights of bicubic sampling (cubic convolution, a = −0.75, indices clamped to
// the border, exactly as at::upsample_bicubic2d) of n0 samples at `positions` [n1] (old-index units).
at::Tensor cubic_sampling_matrix(int64_t n0, const at::Tensor& positions);

// The positional embedding for an input of h × w tokens to a model built for h0 × w0 (aspect-ratio
// buckets): `built` itself when the grids agree, else resample_pos_embed(built, ..., mode, grid)
// with the recipe's pos_embed_resampling / pos_embed_grid, so bucketed training and sampling at a
// new shape place tokens the same way.
at::Tensor pos_embed_for_grid(const at::Tensor& built, int64_t h0, int64_t w0, int64_t h, int64_t w,
                              PosEmbedResampling mode, GridConvention grid_convention);

}  // namespace ldm::models

#include "worker/models/pos_embed.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "shared/core/error.h"
#include "shared/core/text.h"
#include "worker/models/blocks.h"

namespace ldm::models {

// Named (not anonymous) so unity builds of ldm_worker_lib cannot collide with other files' helpers.
namespace pos_embed_detail {

// pos [n] -> [n, dim/2] = [sin | cos](pos·ω), in float64, with exactly sincos_2d's operations so
// integer grids reproduce it bit for bit.
torch::Tensor sincos_1d(int64_t dim, const torch::Tensor& pos) {
  const int64_t quarter = dim / 4;
  auto omega = torch::arange(quarter, torch::kFloat64) / double(quarter);
  omega = 1.0 / torch::pow(10000.0, omega);                                                         // [D/4]
  auto out = pos.to(torch::kCPU, torch::kFloat64).reshape({-1}).unsqueeze(1) * omega.unsqueeze(0);  // [n, D/4]
  return torch::cat({out.sin(), out.cos()}, 1);                                                     // [n, D/2]
}

torch::Tensor to_grid_tokens(const torch::Tensor& old, int64_t h0, int64_t w0) {  // -> [h0·w0, D]
  const bool batched = old.dim() == 3;
  if (!(old.dim() == 2 || (batched && old.size(0) == 1)) || old.size(batched ? 1 : 0) != h0 * w0)
    throw Error("resample_pos_embed: expected [1, " + std::to_string(h0 * w0) + ", D] or [" + std::to_string(h0 * w0) +
                ", D] for a " + std::to_string(h0) + "x" + std::to_string(w0) + " grid, got " + c10::str(old.sizes()));
  return batched ? old[0] : old;
}

}  // namespace pos_embed_detail

torch::Tensor sincos_2d_at(int64_t dim, const torch::Tensor& row_positions, const torch::Tensor& col_positions) {
  TORCH_CHECK(dim > 0 && dim % 4 == 0, "sin-cos positional embedding: width ", dim,
              " must be a positive multiple of 4");
  auto rows = pos_embed_detail::sincos_1d(dim, row_positions);  // [h, D/2]
  auto cols = pos_embed_detail::sincos_1d(dim, col_positions);  // [w, D/2]
  const int64_t h = rows.size(0), w = cols.size(0), half = dim / 2;
  auto grid =
      torch::cat({cols.unsqueeze(0).expand({h, w, half}), rows.unsqueeze(1).expand({h, w, half})}, 2);  // [h, w, D]
  return grid.reshape({h * w, dim}).to(torch::kFloat32);
}

torch::Tensor rectified_positions(int64_t n0, int64_t n1, GridConvention convention) {
  TORCH_CHECK(n0 > 0 && n1 > 0, "rectified_positions: grid sides must be positive, got ", n0, " -> ", n1);
  auto i = torch::arange(n1, torch::kFloat64);  // [n1]
  switch (convention) {
    case GridConvention::Center:
      return (i + 0.5) * (double(n0) / double(n1)) - 0.5;
    case GridConvention::Corners:
      return n1 == 1 ? torch::zeros({1}, torch::kFloat64) : i * (double(n0 - 1) / double(n1 - 1));
    case GridConvention::Origin:
      return i * (double(n0) / double(n1));
  }
  return i;
}

torch::Tensor resample_pos_embed(const torch::Tensor& old, int64_t h0, int64_t w0, int64_t h1, int64_t w1,
                                 PosEmbedResampling mode, GridConvention grid_convention) {
  if (h0 <= 0 || w0 <= 0 || h1 <= 0 || w1 <= 0)
    throw Error("resample_pos_embed: grid sides must be positive, got " + std::to_string(h0) + "x" +
                std::to_string(w0) + " -> " + std::to_string(h1) + "x" + std::to_string(w1));
  auto tokens = pos_embed_detail::to_grid_tokens(old, h0, w0);  // [h0·w0, D]
  if (h0 == h1 && w0 == w1) return old.clone();
  const int64_t dim = tokens.size(1);
  const bool batched = old.dim() == 3;

  torch::Tensor out;  // [h1·w1, D]
  switch (mode) {
    case PosEmbedResampling::Extrapolate:
      out = sincos_2d(dim, h1, w1);
      break;
    case PosEmbedResampling::RectifiedGrid:
      out =
          sincos_2d_at(dim, rectified_positions(h0, h1, grid_convention), rectified_positions(w0, w1, grid_convention));
      break;
    case PosEmbedResampling::Interpolate: {
      auto map =
          tokens.detach().to(torch::kFloat64).reshape({h0, w0, dim}).permute({2, 0, 1}).unsqueeze(0);  // [1, D, h0, w0]
      auto up = at::upsample_bicubic2d(map, {h1, w1}, /*align_corners=*/false);                        // [1, D, h1, w1]
      out = up[0].permute({1, 2, 0}).reshape({h1 * w1, dim});                                          // [h1·w1, D]
      break;
    }
  }
  out = out.to(old.device(), old.scalar_type()).contiguous();
  return batched ? out.unsqueeze(0) : out;
}

torch::Tensor cubic_sampling_matrix(int64_t n0, const torch::Tensor& positions) {
  const auto pos = positions.to(torch::kCPU, torch::kFloat64).contiguous();
  const int64_t n1 = pos.size(0);
  auto w = torch::zeros({n1, n0}, torch::kFloat64);
  auto wa = w.accessor<double, 2>();
  const auto* p = pos.data_ptr<double>();
  constexpr double a = -0.75;
  // Keys's cubic convolution kernel, as ATen's cubic_convolution1/2.
  auto near = [](double x) { return ((a + 2) * x - (a + 3)) * x * x + 1; };       // |x| <= 1
  auto far = [](double x) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; };  // 1 < |x| < 2
  for (int64_t i = 0; i < n1; ++i) {
    const double f = std::floor(p[i]);
    const double t = p[i] - f;
    const double coeff[4] = {far(t + 1), near(t), near(1 - t), far(2 - t)};
    for (int k = 0; k < 4; ++k) {
      const int64_t j = std::min<int64_t>(std::max<int64_t>(static_cast<int64_t>(f) - 1 + k, 0), n0 - 1);
      wa[i][j] += coeff[k];
    }
  }
  return w;
}

namespace pos_embed_detail {

// map [C, n0r, n0c] sampled bicubically at row positions [n1r] and column positions [n1c] ->
// [C, n1r, n1c], in float64.
torch::Tensor sample_map(const torch::Tensor& map, const torch::Tensor& rows, const torch::Tensor& cols) {
  const auto wr = cubic_sampling_matrix(map.size(1), rows);  // [n1r, n0r]
  const auto wc = cubic_sampling_matrix(map.size(2), cols);  // [n1c, n0c]
  return torch::matmul(torch::matmul(wr, map.to(torch::kFloat64)), wc.t());
}

}  // namespace pos_embed_detail

torch::Tensor resample_learned_pos_embed(const torch::Tensor& old, int64_t h0, int64_t w0, int64_t h1, int64_t w1,
                                         PosEmbedResampling mode, GridConvention grid_convention) {
  if (mode == PosEmbedResampling::Interpolate || (h0 == h1 && w0 == w1))
    return resample_pos_embed(old, h0, w0, h1, w1, mode, grid_convention);
  const auto tokens = pos_embed_detail::to_grid_tokens(old, h0, w0);  // [h0·w0, D]
  const int64_t dim = tokens.size(1);
  const auto map = tokens.detach().to(torch::kFloat64).reshape({h0, w0, dim}).permute({2, 0, 1});  // [D, h0, w0]
  torch::Tensor out;                                                                               // [D, h1, w1]
  if (mode == PosEmbedResampling::Extrapolate) {
    out = sincos_2d(dim, h1, w1).to(torch::kFloat64).reshape({h1, w1, dim}).permute({2, 0, 1}).clone();
    const int64_t h = std::min(h0, h1), w = std::min(w0, w1);
    out.narrow(1, 0, h).narrow(2, 0, w).copy_(map.narrow(1, 0, h).narrow(2, 0, w));
  } else {
    out = pos_embed_detail::sample_map(map, rectified_positions(h0, h1, grid_convention),
                                       rectified_positions(w0, w1, grid_convention));
  }
  out = out.permute({1, 2, 0}).reshape({h1 * w1, dim}).to(old.device(), old.scalar_type()).contiguous();
  return old.dim() == 3 ? out.unsqueeze(0) : out;
}

torch::Tensor resample_relative_bias(const torch::Tensor& table, int64_t h0, int64_t w0, int64_t h1, int64_t w1,
                                     PosEmbedResampling mode) {
  const int64_t r0 = 2 * h0 - 1, c0 = 2 * w0 - 1, r1 = 2 * h1 - 1, c1 = 2 * w1 - 1;
  if (table.dim() != 2 || table.size(0) < r0 * c0)
    throw Error("resample_relative_bias: expected [" + std::to_string(r0 * c0) + " + extra, heads] for a " +
                std::to_string(h0) + "x" + std::to_string(w0) + " grid, got " + c10::str(table.sizes()));
  if (h0 == h1 && w0 == w1) return table.clone();
  const int64_t extra = table.size(0) - r0 * c0, heads = table.size(1);
  const auto grid =
      table.detach().narrow(0, 0, r0 * c0).to(torch::kFloat64).reshape({r0, c0, heads}).permute({2, 0, 1});  // [heads,
                                                                                                             // r0, c0]
  auto positions = [&](int64_t n0, int64_t n1, int64_t half0, int64_t half1) {
    auto i = torch::arange(n1, torch::kFloat64);
    switch (mode) {
      case PosEmbedResampling::Extrapolate:  // same offset, clamped to the longest old one
        return (i - double(half1 - 1) + double(half0 - 1)).clamp(0, double(n0 - 1));
      case PosEmbedResampling::RectifiedGrid:
        return n1 == 1 ? torch::zeros({1}, torch::kFloat64) : i * (double(n0 - 1) / double(n1 - 1));
      case PosEmbedResampling::Interpolate:
        break;
    }
    return (i + 0.5) * (double(n0) / double(n1)) - 0.5;
  };
  const auto out = pos_embed_detail::sample_map(grid, positions(r0, r1, h0, h1), positions(c0, c1, w0, w1))
                       .permute({1, 2, 0})
                       .reshape({r1 * c1, heads})
                       .to(table.device(), table.scalar_type());  // [r1·c1, heads]
  return torch::cat({out, table.detach().narrow(0, r0 * c0, extra)}, 0).contiguous();
}

at::Tensor pos_embed_for_grid(const at::Tensor& built, int64_t h0, int64_t w0, int64_t h, int64_t w,
                              PosEmbedResampling mode, GridConvention grid_convention) {
  if (h == h0 && w == w0) return built;
  return resample_pos_embed(built, h0, w0, h, w, mode, grid_convention);
}

}  // namespace ldm::models

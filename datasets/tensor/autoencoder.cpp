#include "datasets/tensor/autoencoder.h"

#include <torch/torch.h>

#include <sstream>

#include "shared/core/error.h"

namespace ldm::data {

PatchAutoencoder::PatchAutoencoder(int factor, double scale, double shift)
    : factor_(factor), scale_(scale), shift_(shift) {
  if (factor < 1) throw Error("patch autoencoder: factor must be >= 1, got " + std::to_string(factor));
  if (scale == 0.0) throw Error("patch autoencoder: scale must be non-zero");
}

at::Tensor PatchAutoencoder::encode(const at::Tensor& images) const {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3, "patch autoencoder: expected [N,3,H,W], got ", images.sizes());
  const int64_t n = images.size(0), h = images.size(2), w = images.size(3), f = factor_;
  TORCH_CHECK(h % f == 0 && w % f == 0, "patch autoencoder: image ", h, "x", w, " is not divisible by factor ", f);
  // [N,3,H,W] -> [N,3,H/f,f,W/f,f] -> [N,3,f,f,H/f,W/f] -> [N,3·f·f,H/f,W/f]
  auto z = images.reshape({n, 3, h / f, f, w / f, f}).permute({0, 1, 3, 5, 2, 4}).reshape({n, 3 * f * f, h / f, w / f});
  return (z - shift_) * scale_;
}

at::Tensor PatchAutoencoder::decode(const at::Tensor& latents) const {
  const int64_t f = factor_;
  TORCH_CHECK(latents.dim() == 4 && latents.size(1) == 3 * f * f, "patch autoencoder: expected [N,", 3 * f * f,
              ",h,w], got ", latents.sizes());
  const int64_t n = latents.size(0), h = latents.size(2), w = latents.size(3);
  auto z = latents / scale_ + shift_;
  // exact inverse of encode's permutation
  return z.reshape({n, 3, f, f, h, w}).permute({0, 1, 4, 2, 5, 3}).reshape({n, 3, h * f, w * f});
}

std::string PatchAutoencoder::identity() const {
  std::ostringstream os;
  os.precision(17);
  os << "patch:f=" << factor_ << ",scale=" << scale_ << ",shift=" << shift_;
  return os.str();
}

at::Tensor image_u8_to_tensor(const std::uint8_t* pixels, std::int64_t height, std::int64_t width) {
  auto u8 = torch::from_blob(const_cast<std::uint8_t*>(pixels), {height, width, 3}, torch::kUInt8);
  return u8.permute({2, 0, 1}).to(torch::kFloat32).div(127.5).sub(1.0).contiguous();  // [3,H,W]
}

}  // namespace ldm::data

// The image <-> latent autoencoder interface, and the built-in patch autoencoder.
//
// Images are float tensors [N, 3, H, W] in [-1, 1]; latents are [N, C, H/f, W/f] already
// normalised as (raw - shift) * scale, so the diffusion model sees roughly unit-variance inputs.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

namespace ldm::data {

class Autoencoder {
 public:
  virtual ~Autoencoder() = default;
  virtual at::Tensor encode(const at::Tensor& images) const = 0;   // [N,3,H,W] -> [N,C,H/f,W/f]
  virtual at::Tensor decode(const at::Tensor& latents) const = 0;  // inverse (up to the model's error)
  virtual int latent_channels() const = 0;
  virtual int downsampling_factor() const = 0;
  virtual double scale() const = 0;
  virtual double shift() const = 0;
  // Identity of the encoder weights and settings; recorded in shard headers and checkpoints so
  // latents from different encoders are never mixed.
  virtual std::string identity() const = 0;
};

// Built-in, exactly invertible "autoencoder": space-to-depth of f×f patches (3·f² channels),
// then (x - shift) * scale. It compresses nothing and is NOT comparable with the paper's f=8
// VAE: it exists so tests and the quickstart run the real latent pipeline without weights.
class PatchAutoencoder final : public Autoencoder {
 public:
  PatchAutoencoder(int factor, double scale = 1.0, double shift = 0.0);
  at::Tensor encode(const at::Tensor& images) const override;
  at::Tensor decode(const at::Tensor& latents) const override;
  int latent_channels() const override { return 3 * factor_ * factor_; }
  int downsampling_factor() const override { return factor_; }
  double scale() const override { return scale_; }
  double shift() const override { return shift_; }
  std::string identity() const override;

 private:
  int factor_;
  double scale_, shift_;
};

// u8 HWC RGB pixels -> float [3, H, W] in [-1, 1].
at::Tensor image_u8_to_tensor(const std::uint8_t* pixels, std::int64_t height, std::int64_t width);

}  // namespace ldm::data

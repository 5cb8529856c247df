#include "worker/io/weights.h"

#include <set>
#include <sstream>

#include "shared/core/error.h"
#include "worker/models/pos_embed.h"

namespace ldm::worker {
namespace {

std::string shape_text(const torch::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

bool is_position_table(const std::string& key) {
  const auto tail = key.substr(key.rfind('.') == std::string::npos ? 0 : key.rfind('.') + 1);
  return tail == "pos_embed" || tail == "decoder_pos_embed";
}

}  // namespace

TensorMap model_state(const torch::nn::Module& model) {
  TensorMap out;
  for (const auto& p : model.named_parameters(true)) out[p.key()] = p.value().detach();
  for (const auto& b : model.named_buffers(true)) out[b.key()] = b.value().detach();
  return out;
}

int load_weights(torch::nn::Module& model, const TensorMap& weights, const std::string& source, const GridChange& grid,
                 bool allow_unexpected) {
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  int resampled = 0;
  auto assign = [&](const std::string& key, torch::Tensor target, bool required) {
    auto it = weights.find(key);
    if (it == weights.end()) {
      if (required) throw DataError(source + ": no tensor '" + key + "' (the model built from the spec has it)");
      return;
    }
    used.insert(key);
    torch::Tensor value = it->second;
    if (value.sizes() != target.sizes() && grid.changed() && is_position_table(key) && value.dim() == 3 &&
        value.size(0) == 1 && value.size(1) == grid.h0 * grid.w0 && target.size(1) == grid.h1 * grid.w1 &&
        value.size(2) == target.size(2)) {
      value = models::resample_pos_embed(value.to(torch::kFloat32), grid.h0, grid.w0, grid.h1, grid.w1, grid.mode,
                                         grid.grid);
      ++resampled;
    }
    if (value.sizes() != target.sizes())
      throw DataError(source + ": tensor '" + key + "' has shape " + shape_text(value) + " but the model's is " +
                      shape_text(target) +
                      (grid.changed()
                           ? " (the weights come from another token grid: only positional embeddings are resampled)"
                           : ""));
    target.copy_(value);
  };
  for (auto& p : model.named_parameters(true)) assign(p.key(), p.value(), true);
  // Buffers are state too (PixArt's null caption), except index tables the model derives from its
  // configuration (mDT's relative-position indices).
  for (auto& b : model.named_buffers(true))
    assign(b.key(), b.value(), b.key().find("relative_position_index") == std::string::npos);
  if (!allow_unexpected)
    for (const auto& [key, value] : weights)
      if (!used.count(key))
        throw DataError(source + ": tensor '" + key + "' is not part of the model built from the spec");
  return resampled;
}

}  // namespace ldm::worker

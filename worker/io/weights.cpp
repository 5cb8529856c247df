#include "worker/io/weights.h"

#include <fstream>
#include <set>
#include <sstream>

#include "shared/core/error.h"
#include "shared/core/text.h"
#include "worker/models/pos_embed.h"

namespace ldm::worker {
namespace {

std::string shape_text(const torch::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

std::string tail_of(const std::string& key) {
  const auto dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

bool is_position_table(const std::string& key) {
  const std::string tail = tail_of(key);
  return tail == "pos_embed" || tail == "decoder_pos_embed";
}

bool is_class_table(const std::string& key) {
  return ends_with(key, "embedding_table.weight") || ends_with(key, "class_embedder.embedding.weight");
}

// `value` moved to the model's token grid, or an undefined tensor when it is not a table that moves.
torch::Tensor resample_for_grid(const std::string& key, const torch::Tensor& value, const torch::Tensor& target,
                                const GridChange& g) {
  if (!g.changed() || value.sizes() == target.sizes()) return {};
  if (is_position_table(key) && value.dim() == 3 && value.size(0) == 1 && value.size(1) == g.h0 * g.w0 &&
      target.size(1) == g.h1 * g.w1 && value.size(2) == target.size(2)) {
    const torch::Tensor v = value.to(torch::kFloat32);
    return target.requires_grad() ? models::resample_learned_pos_embed(v, g.h0, g.w0, g.h1, g.w1, g.mode, g.grid)
                                  : models::resample_pos_embed(v, g.h0, g.w0, g.h1, g.w1, g.mode, g.grid);
  }
  if (tail_of(key) == "relative_position_bias_table" && value.dim() == 2 && target.dim() == 2 &&
      value.size(1) == target.size(1) &&
      value.size(0) - (2 * g.h0 - 1) * (2 * g.w0 - 1) == target.size(0) - (2 * g.h1 - 1) * (2 * g.w1 - 1))
    return models::resample_relative_bias(value.to(torch::kFloat32), g.h0, g.w0, g.h1, g.w1, g.mode);
  return {};
}

// The new label table from the old one: class rows as the transfer says, the null row kept.
// `target` holds the fresh initialisation, which rows without a source keep.
torch::Tensor transfer_class_table(const std::string& key, const torch::Tensor& old, const torch::Tensor& target,
                                   const ClassTransfer& c, const std::string& source) {
  const int64_t old_null = old.size(0) - c.old_classes, new_null = target.size(0) - c.new_classes;
  if (old.dim() != 2 || target.dim() != 2 || old.size(1) != target.size(1) || old_null < 0 || old_null > 1 ||
      new_null < 0 || new_null > 1)
    throw DataError(source + ": label table '" + key + "' has shape " + shape_text(old) + ", the model's is " +
                    shape_text(target) + "; neither is " + std::to_string(c.old_classes) + " -> " +
                    std::to_string(c.new_classes) + " classes (+ a null row)");
  torch::Tensor out = target.detach().clone();
  if (c.mode == ClassTransfer::Mode::Remap)
    for (int64_t j = 0; j < c.new_classes; ++j)
      if (const int64_t i = c.new_from_old.at(static_cast<std::size_t>(j)); i >= 0) out[j].copy_(old[i]);
  if (old_null && new_null) out[c.new_classes].copy_(old[c.old_classes]);
  return out;
}

}  // namespace

std::string LoadReport::summary() const {
  std::string out = std::to_string(copied) + " tensor(s) copied";
  const std::pair<const char*, const std::vector<std::string>*> parts[] = {
      {"resampled", &resampled}, {"class table", &classes}, {"fresh", &fresh}, {"dropped", &dropped}};
  for (const auto& [what, names] : parts)
    if (!names->empty()) out += "; " + std::string(what) + ": " + join(*names, ", ");
  return out;
}

ClassTransfer read_class_map(const std::string& path, int64_t old_classes, int64_t new_classes) {
  std::ifstream in(path);
  if (!in) throw DataError("classes_map " + path + ": cannot be read");
  ClassTransfer c{ClassTransfer::Mode::Remap, old_classes, new_classes,
                  std::vector<int64_t>(static_cast<std::size_t>(new_classes), -1)};
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const std::string where = path + ":" + std::to_string(number) + ": ";
    if (const auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    for (char& ch : line)
      if (ch == ',') ch = ' ';
    std::istringstream fields(line);
    int64_t old_id = 0, new_id = 0;
    std::string rest;
    if (trim(line).empty()) continue;
    if (!(fields >> old_id >> new_id) || (fields >> rest))
      throw DataError(where + "expected \"OLD NEW\" (two class ids), got '" + trim(line) + "'");
    if (old_id < 0 || old_id >= old_classes)
      throw DataError(where + "old class " + std::to_string(old_id) + " is outside [0, " + std::to_string(old_classes) +
                      ")");
    if (new_id < 0 || new_id >= new_classes)
      throw DataError(where + "new class " + std::to_string(new_id) + " is outside [0, " + std::to_string(new_classes) +
                      ")");
    int64_t& slot = c.new_from_old[static_cast<std::size_t>(new_id)];
    if (slot >= 0)
      throw DataError(where + "new class " + std::to_string(new_id) + " is mapped twice (from " + std::to_string(slot) +
                      " and " + std::to_string(old_id) + ")");
    slot = old_id;
  }
  return c;
}

TensorMap model_state(const torch::nn::Module& model) {
  TensorMap out;
  for (const auto& p : model.named_parameters(true)) out[p.key()] = p.value().detach();
  for (const auto& b : model.named_buffers(true)) out[b.key()] = b.value().detach();
  return out;
}

LoadReport load_weights(torch::nn::Module& model, const TensorMap& weights, const std::string& source,
                        const LoadOptions& options) {
  torch::NoGradGuard no_grad;
  const GridChange& grid = options.grid;
  std::set<std::string> used;
  LoadReport report;
  auto assign = [&](const std::string& key, torch::Tensor target, bool required) {
    auto it = weights.find(key);
    if (it != weights.end() && !required && it->second.sizes() != target.sizes()) {
      used.insert(key);  // a table the model derives from its own grid (mDT's relative-position indices)
      return;
    }
    if (it == weights.end()) {
      if (required && !options.conditioning_swap)
        throw DataError(source + ": no tensor '" + key + "' (the model built from the spec has it)");
      if (required) report.fresh.push_back(key);
      return;
    }
    used.insert(key);
    torch::Tensor value = it->second;
    if (options.classes.mode != ClassTransfer::Mode::Keep && is_class_table(key)) {
      value = transfer_class_table(key, value, target, options.classes, source);
      report.classes.push_back(key);
    } else if (torch::Tensor moved = resample_for_grid(key, value, target, grid); moved.defined()) {
      value = moved;
      report.resampled.push_back(key);
    } else if (value.sizes() != target.sizes() && options.conditioning_swap) {
      report.fresh.push_back(key);  // the other task's conditioning input under the same name
      return;
    } else {
      ++report.copied;
    }
    if (value.sizes() != target.sizes())
      throw DataError(
          source + ": tensor '" + key + "' has shape " + shape_text(value) + " but the model's is " +
          shape_text(target) +
          (grid.changed() ? " (the weights come from another token grid: only positional tables are resampled)" : ""));
    target.copy_(value);
  };
  for (auto& p : model.named_parameters(true)) assign(p.key(), p.value(), true);
  // Buffers are state too (PixArt's null caption), except index tables the model derives from its
  // configuration (mDT's relative-position indices).
  for (auto& b : model.named_buffers(true))
    assign(b.key(), b.value(), b.key().find("relative_position_index") == std::string::npos);
  for (const auto& [key, value] : weights) {
    if (used.count(key)) continue;
    if (options.conditioning_swap) report.dropped.push_back(key);
    else if (!options.allow_unexpected)
      throw DataError(source + ": tensor '" + key + "' is not part of the model built from the spec");
  }
  return report;
}

int load_weights(torch::nn::Module& model, const TensorMap& weights, const std::string& source, const GridChange& grid,
                 bool allow_unexpected) {
  LoadOptions options;
  options.grid = grid;
  options.allow_unexpected = allow_unexpected;
  return static_cast<int>(load_weights(model, weights, source, options).resampled.size());
}

}  // namespace ldm::worker

#include "worker/train/state.h"

#include <set>

#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "worker/io/weights.h"

namespace ldm::worker {
namespace {

at::Generator generator_for(std::uint64_t seed, Purpose purpose, int rank, std::uint64_t step = 0) {
  return at::detail::createCPUGenerator(derive_seed(seed, purpose, static_cast<std::uint64_t>(rank), step));
}

void copy_into(const std::map<std::string, torch::Tensor>& targets, const TensorMap& source, const std::string& what,
               const std::string& path) {
  for (const auto& [name, target] : targets) {
    auto it = source.find(name);
    if (it == source.end()) throw DataError(path + ": " + what + " has no tensor '" + name + "'");
    if (!it->second.sizes().equals(target.sizes()))
      throw DataError(path + ": " + what + " tensor '" + name + "' has another shape than the model's");
    torch::NoGradGuard no_grad;
    target.copy_(it->second);
  }
}

std::string checksum(const torch::Tensor& flat) {
  auto c = flat.cpu().contiguous();
  return hex64(fnv1a64(c.data_ptr(), c.numel() * c.element_size()));
}

// Host copies of device tensors (the bundle writers read host memory); host tensors as they are.
TensorMap on_host(const TensorMap& tensors) {
  TensorMap out;
  for (const auto& [name, t] : tensors) out[name] = t.is_cpu() ? t : t.cpu();
  return out;
}

}  // namespace

TrainingState::TrainingState(const ExperimentSpec& spec, const models::ModelGeometry& geometry, int rank,
                             torch::Device device)
    : seed_(static_cast<std::uint64_t>(spec.seed)) {
  auto init = generator_for(seed_, Purpose::Init, 0);
  model_ = models::build_denoiser(spec.recipe, geometry, init);
  model_->to(device);
  model_->train();
  const OptimizerSpec& o = spec.recipe.optimizer;
  flat_ = std::make_unique<FlatParams>(*model_, o.decay_norms_and_biases);
  if (o.name == OptimizerKind::Adan)
    optimizer_ =
        std::make_unique<FlatAdan>(*flat_, FlatAdan::Options{o.beta1, o.beta2, o.beta3, o.eps, o.weight_decay});
  else optimizer_ = std::make_unique<FlatAdamW>(*flat_, FlatAdamW::Options{o.beta1, o.beta2, o.eps, o.weight_decay});
  ema_ = std::make_unique<FlatEma>(*flat_, spec.recipe.ema.decay, spec.recipe.ema.warmup);
  for (Purpose p : kTrainingGenerators) generators_.push_back(generator_for(seed_, p, rank));
}

at::Generator& TrainingState::generator(Purpose purpose) {
  for (std::size_t i = 0; i < std::size(kTrainingGenerators); ++i)
    if (kTrainingGenerators[i] == purpose) return generators_[i];
  throw Error(std::string("no training generator for purpose '") + choice_name(purpose) + "'");
}

std::string TrainingState::generator_bytes() {
  std::string bytes;
  for (at::Generator& g : generators_) {
    auto state = g.get_state();
    bytes.append(static_cast<const char*>(state.data_ptr()), state.numel());
  }
  return bytes;
}

TensorMap TrainingState::state_dict(const std::vector<torch::Tensor>& flats) const {
  TensorMap out = model_state(*model_);  // buffers too (PixArt's null caption, mDT's indices)
  for (auto& [name, view] : flat_->unflatten(flats)) out[name] = view;
  return out;
}

CheckpointBundle TrainingState::save(nlohmann::json manifest, const std::vector<std::string>& rank_generators) const {
  CheckpointBundle b;
  manifest["generators"] = nlohmann::json::array();
  for (Purpose p : kTrainingGenerators) manifest["generators"].push_back(choice_name(p));
  b.manifest = std::move(manifest);
  b.model = on_host(state_dict(flat_->param_buffers()));
  b.ema = on_host(state_dict(ema_->buffers()));
  b.optimizer = on_host(optimizer_->state());
  b.optimizer["step"] = torch::tensor({optimizer_->steps_taken()}, torch::kInt64);
  for (std::size_t r = 0; r < rank_generators.size(); ++r) {
    const std::string& bytes = rank_generators[r];
    b.generators["rank" + std::to_string(r)] =
        torch::from_blob(const_cast<char*>(bytes.data()), {static_cast<int64_t>(bytes.size())}, torch::kUInt8).clone();
  }
  return b;
}

void TrainingState::restore(const CheckpointBundle& b, int rank, int world, const std::string& source) {
  copy_into(flat_->unflatten(flat_->param_buffers()), b.model, "model", source);
  copy_into(flat_->unflatten(ema_->buffers()), b.ema, "ema", source);
  copy_into(optimizer_->state(), b.optimizer, "optimizer", source);
  optimizer_->set_steps_taken(b.optimizer.at("step").item<int64_t>());
  if (b.manifest.value("world_size", -1) != world) {
    const auto next_step = static_cast<std::uint64_t>(b.manifest.at("step").get<int64_t>() + 1);
    for (std::size_t i = 0; i < std::size(kTrainingGenerators); ++i)
      generators_[i].set_state(  // in place: others may hold this generator's handle
          generator_for(seed_, kTrainingGenerators[i], rank, next_step).get_state());
    return;
  }
  auto it = b.generators.find("rank" + std::to_string(rank));
  if (it == b.generators.end()) throw DataError(source + ": no generator states for rank " + std::to_string(rank));
  const at::Tensor& mine = it->second;
  int64_t offset = 0;
  for (at::Generator& g : generators_) {
    const int64_t n = g.get_state().numel();
    if (offset + n > mine.numel())
      throw DataError(source + ": generator state of rank " + std::to_string(rank) + " is too short");
    g.set_state(mine.narrow(0, offset, n).clone());
    offset += n;
  }
}

LoadReport TrainingState::initialize_from(const CheckpointBundle& parent, const InitTransfer& transfer,
                                          const std::string& source) {
  const std::string weights = source + "/" + (transfer.ema ? "ema" : "model") + ".safetensors";
  const LoadReport report = load_weights(*model_, transfer.ema ? parent.ema : parent.model, weights, transfer.load);
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < flat_->buckets().size(); ++i) ema_->buffers()[i].copy_(flat_->buckets()[i].params);
  if (!transfer.keep_optimizer) return report;
  // The moments are flat buffers laid out like the trainable parameters: they carry over only when
  // every trainable tensor arrived unchanged.
  std::set<std::string> trainable;
  for (const auto& bucket : flat_->buckets()) trainable.insert(bucket.names.begin(), bucket.names.end());
  for (const auto* changed : {&report.resampled, &report.classes, &report.fresh})
    for (const std::string& name : *changed)
      if (trainable.count(name))
        throw DataError(source + ": init_optimizer = \"keep\", but trainable tensor '" + name +
                        "' changed in the transfer (its optimiser moments have no counterpart); use \"reset\"");
  copy_into(optimizer_->state(), parent.optimizer, "optimizer", source);
  optimizer_->set_steps_taken(parent.optimizer.at("step").item<int64_t>());
  return report;
}

std::string TrainingState::param_checksum() const {
  std::string bytes;  // checksum over every bucket, in order
  for (const auto& b : flat_->buckets()) bytes += checksum(b.params);
  return hex64(fnv1a64(bytes));
}

}  // namespace ldm::worker

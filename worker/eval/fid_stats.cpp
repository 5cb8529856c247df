#include "worker/eval/fid_stats.h"

#include <torch/torch.h>

#include "datasets/tensor/npy.h"
#include "shared/core/error.h"

namespace ldm::eval {

FeatureStats read_fid_stats(const std::string& path) {
  const data::NpzMap members = data::read_npz_members(path, {"mu", "sigma"});
  FeatureStats stats;
  stats.mu = members.at("mu");
  stats.sigma = members.at("sigma");
  try {
    check_feature_stats(stats, path);
  } catch (const DataError&) {
    throw;
  } catch (const Error& e) {
    throw DataError(e.what());
  }
  stats.mu = stats.mu.to(torch::kDouble).contiguous();
  stats.sigma = stats.sigma.to(torch::kDouble).contiguous();
  return stats;
}

void write_fid_stats(const std::string& path, const FeatureStats& stats, bool compress) {
  check_feature_stats(stats, path + ": cannot write FID statistics");
  data::NpzMap members;
  members["mu"] = stats.mu.to(torch::kCPU, torch::kDouble).contiguous();
  members["sigma"] = stats.sigma.to(torch::kCPU, torch::kDouble).contiguous();
  data::write_npz(path, members, compress);
}

}  // namespace ldm::eval

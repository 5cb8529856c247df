// FID statistics files in the .npz layout of the common tools: members `mu` [D] and `sigma` [D, D]
// (pytorch-fid's --save-stats writes them with np.savez_compressed; ADM/DiT's reference batches,
// e.g. VIRTUAL_imagenet256_labeled.npz, with np.savez next to `arr_0`, the reference images, and
// `mu_s`/`sigma_s`, the spatial-feature statistics). Published reference statistics load directly.
#pragma once

#include <string>

#include "worker/eval/frechet.h"

namespace ldm::eval {

// Reads `mu` and `sigma` (float16/32/64, converted to float64) from an .npz written by np.savez or
// np.savez_compressed, reading only those two members: other members (a reference batch's image
// array of several gigabytes) are neither read nor inflated. count is 0 (the files do not hold it).
// Throws ldm::DataError naming the file: missing file or member, not an archive, corrupt member,
// non-float dtype, wrong shapes (mu [D], sigma [D, D]), non-finite values.
FeatureStats read_fid_stats(const std::string& path);

// Writes `mu` and `sigma` as float64 members "mu.npy", "sigma.npy" (deflated when `compress`, as
// np.savez_compressed; stored otherwise, as np.savez). Throws ldm::Error naming the file.
void write_fid_stats(const std::string& path, const FeatureStats& stats, bool compress = false);

}  // namespace ldm::eval

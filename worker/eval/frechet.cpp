#include "worker/eval/frechet.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <tuple>

#include "shared/core/error.h"

namespace ldm::eval {

namespace {

std::string frechet_num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string frechet_shape(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

bool frechet_all_finite(const at::Tensor& t) { return t.numel() == 0 || torch::isfinite(t).all().item<bool>(); }

// Features [N, D] of a floating dtype with finite values, as contiguous float64.
at::Tensor frechet_features(const at::Tensor& f, const std::string& what) {
  if (!f.defined()) throw Error(what + ": undefined feature tensor");
  if (!at::isFloatingType(f.scalar_type()))
    throw Error(what + ": features must be floating point, got " + std::string(c10::toString(f.scalar_type())));
  if (f.dim() != 2 || f.size(1) < 1)
    throw Error(what + ": features must be [N, D] with D >= 1, got shape " + frechet_shape(f));
  at::Tensor x = f.to(torch::kCPU, torch::kDouble).contiguous();
  if (!frechet_all_finite(x)) throw Error(what + ": the features hold NaN or infinite values");
  return x;
}

// (s + s^T) / 2 after checking that s is symmetric up to rounding (1e-6 of its largest entry).
at::Tensor frechet_symmetrized(const at::Tensor& s, const std::string& what) {
  const double scale = s.abs().max().item<double>();
  const double asym = (s - s.t()).abs().max().item<double>();
  if (asym > 1e-6 * scale)
    throw Error(what + ": sigma is not symmetric (max |sigma - sigma^T| = " + frechet_num(asym) +
                ", max |sigma| = " + frechet_num(scale) + "), so it is not a covariance matrix");
  return (s + s.t()) * 0.5;
}

// The PSD square root V diag(sqrt(max(w, 0))) V^T of a symmetric matrix; `clipped` becomes the
// largest magnitude of a negative eigenvalue set to 0 (if larger than its value).
at::Tensor frechet_psd_sqrt(const at::Tensor& s, double& clipped) {
  at::Tensor w, v;
  std::tie(w, v) = torch::linalg_eigh(s, "L");
  clipped = std::max(clipped, -std::min(0.0, w.min().item<double>()));
  return (v * w.clamp_min(0).sqrt().unsqueeze(0)).matmul(v.t());
}

}  // namespace

void check_feature_stats(const FeatureStats& stats, const std::string& what) {
  if (!stats.mu.defined() || !stats.sigma.defined()) throw Error(what + ": mu or sigma is missing");
  for (const auto* t : {&stats.mu, &stats.sigma})
    if (!at::isFloatingType(t->scalar_type()))
      throw Error(what + ": " + (t == &stats.mu ? "mu" : "sigma") + " must be floating point, got " +
                  std::string(c10::toString(t->scalar_type())));
  if (stats.mu.dim() != 1 || stats.mu.size(0) < 1)
    throw Error(what + ": mu must be a vector [D] with D >= 1, got shape " + frechet_shape(stats.mu));
  const int64_t d = stats.mu.size(0);
  if (stats.sigma.dim() != 2 || stats.sigma.size(0) != d || stats.sigma.size(1) != d)
    throw Error(what + ": sigma must be [D, D] = [" + std::to_string(d) + ", " + std::to_string(d) +
                "] to match mu, got shape " + frechet_shape(stats.sigma));
  if (!frechet_all_finite(stats.mu)) throw Error(what + ": mu holds NaN or infinite values");
  if (!frechet_all_finite(stats.sigma)) throw Error(what + ": sigma holds NaN or infinite values");
}

FeatureStats stats_from_features(const at::Tensor& features) {
  FeatureStatsAccumulator acc;
  try {
    acc.add(features);
  } catch (const Error& e) {
    throw Error(std::string("stats_from_features: ") + e.what());
  }
  return acc.finalize();
}

void FeatureStatsAccumulator::add(const at::Tensor& batch) {
  const at::Tensor x = frechet_features(batch, "feature batch");
  const int64_t n = x.size(0), d = x.size(1);
  if (mean_.defined() && d != mean_.size(0))
    throw Error("feature batch: " + std::to_string(d) + " features per row, the earlier batches had " +
                std::to_string(mean_.size(0)));
  if (n == 0) {
    merge_moments(0, torch::zeros({d}, torch::kDouble), torch::zeros({d, d}, torch::kDouble));
    return;
  }
  const at::Tensor mean = x.mean(0);
  const at::Tensor centred = x - mean;
  merge_moments(n, mean, centred.t().matmul(centred));
}

void FeatureStatsAccumulator::merge(const FeatureStatsAccumulator& other) {
  if (!other.mean_.defined()) return;
  if (mean_.defined() && other.mean_.size(0) != mean_.size(0))
    throw Error("FeatureStatsAccumulator::merge: " + std::to_string(other.mean_.size(0)) + " features against " +
                std::to_string(mean_.size(0)));
  merge_moments(other.count_, other.mean_, other.m2_);
}

void FeatureStatsAccumulator::merge_moments(int64_t n, const at::Tensor& mean, const at::Tensor& m2) {
  if (n == 0) {
    if (!mean_.defined()) {
      mean_ = torch::zeros_like(mean);
      m2_ = torch::zeros_like(m2);
    }
    return;
  }
  if (count_ == 0) {
    mean_ = mean.clone();
    m2_ = m2.clone();
    count_ = n;
    return;
  }
  const double na = static_cast<double>(count_), nb = static_cast<double>(n), total = na + nb;
  const at::Tensor delta = mean - mean_;
  mean_ = mean_ + delta * (nb / total);
  m2_ = m2_ + m2 + torch::outer(delta, delta) * (na * nb / total);
  count_ += n;
}

FeatureStats FeatureStatsAccumulator::finalize() const {
  if (count_ < 2)
    throw Error("feature statistics need at least 2 feature vectors (the covariance divides by N - 1), got " +
                std::to_string(count_));
  FeatureStats s;
  s.mu = mean_.clone();
  const at::Tensor sigma = m2_ / static_cast<double>(count_ - 1);
  s.sigma = ((sigma + sigma.t()) * 0.5).contiguous();  // exactly symmetric (gemm need not be)
  s.count = count_;
  return s;
}

FrechetResult frechet_distance_with_offset(const FeatureStats& a, const FeatureStats& b, double offset) {
  check_feature_stats(a, "Frechet distance: the first statistics");
  check_feature_stats(b, "Frechet distance: the second statistics");
  const int64_t d = a.mu.size(0);
  if (b.mu.size(0) != d)
    throw Error("Frechet distance: the statistics have different dimensions (D = " + std::to_string(d) + " and " +
                std::to_string(b.mu.size(0)) + ")");
  if (!std::isfinite(offset) || offset < 0)
    throw Error("Frechet distance: the diagonal offset must be finite and >= 0, got " + frechet_num(offset));
  const at::Tensor mu1 = a.mu.to(torch::kCPU, torch::kDouble), mu2 = b.mu.to(torch::kCPU, torch::kDouble);
  at::Tensor s1 =
      frechet_symmetrized(a.sigma.to(torch::kCPU, torch::kDouble), "Frechet distance: the first statistics");
  at::Tensor s2 =
      frechet_symmetrized(b.sigma.to(torch::kCPU, torch::kDouble), "Frechet distance: the second statistics");

  FrechetResult r;
  const at::Tensor diff = mu1 - mu2;
  r.mean_term = diff.dot(diff).item<double>();
  r.trace_sigma1 = s1.trace().item<double>();
  r.trace_sigma2 = s2.trace().item<double>();
  r.offset = offset;
  if (offset > 0) {
    const at::Tensor eye = torch::eye(d, torch::kDouble) * offset;
    s1 = s1 + eye;
    s2 = s2 + eye;
  }
  // tr sqrtm(s1 s2) = nuclear norm of R1 R2 (see frechet.h).
  const at::Tensor r1 = frechet_psd_sqrt(s1, r.max_clipped_eigenvalue);
  const at::Tensor r2 = frechet_psd_sqrt(s2, r.max_clipped_eigenvalue);
  r.trace_covmean = torch::linalg_svdvals(r1.matmul(r2)).sum().item<double>();
  // The diagnostic: principal square roots of the eigenvalues of the product itself.
  const at::Tensor lambda = torch::linalg_eigvals(s1.matmul(s2));
  r.max_imag = at::imag(torch::sqrt(lambda)).abs().max().item<double>();
  r.fid = r.mean_term + r.trace_sigma1 + r.trace_sigma2 - 2.0 * r.trace_covmean;
  return r;
}

FrechetResult frechet_distance(const FeatureStats& a, const FeatureStats& b, double eps) {
  if (!std::isfinite(eps) || eps <= 0)
    throw Error("Frechet distance: eps must be finite and > 0, got " + frechet_num(eps));
  auto finite = [](const FrechetResult& r) { return std::isfinite(r.fid) && std::isfinite(r.max_imag); };
  FrechetResult r;
  std::string first_problem;
  try {
    r = frechet_distance_with_offset(a, b, 0.0);
    if (!finite(r)) first_problem = "the result was not finite";
  } catch (const c10::Error& e) {  // LAPACK did not converge (ldm::Error input problems propagate)
    first_problem = e.what_without_backtrace();
  }
  if (!first_problem.empty()) {
    try {
      r = frechet_distance_with_offset(a, b, eps);
    } catch (const c10::Error& e) {
      throw Error("Frechet distance: the matrix square root failed (" + first_problem + "), and again with " +
                  frechet_num(eps) + " added to the diagonals: " + e.what_without_backtrace());
    }
    if (!finite(r))
      throw Error("Frechet distance: the matrix square root is not finite, even with " + frechet_num(eps) +
                  " added to the diagonals");
    r.eps_added = true;
  }
  if (r.max_imag > kMaxImaginaryComponent)
    throw Error("Frechet distance: imaginary component " + frechet_num(r.max_imag) +
                " in sqrtm(sigma1 sigma2) exceeds " + frechet_num(kMaxImaginaryComponent) +
                " (a covariance is not positive semi-definite or is badly conditioned; largest clipped negative "
                "eigenvalue " +
                frechet_num(r.max_clipped_eigenvalue) + "; the real-part FID would be " + frechet_num(r.fid) + ")");
  return r;
}

}  // namespace ldm::eval

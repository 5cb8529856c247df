// Feature statistics (mean, covariance) and the Fréchet distance between two Gaussians, as the FID
// tools compute them (pytorch-fid's calculate_frechet_distance, which ADM/DiT's evaluator and
// clean-fid follow), so our FIDs are comparable with published ones:
//
//   FID = |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr sqrtm(sigma1 sigma2)
//
// What is computed (all in float64), and why:
// - tr sqrtm(sigma1 sigma2). LibTorch has no sqrtm, and only the trace is needed. For symmetric
//   PSD sigma1, sigma2 with PSD square roots R1, R2, the product sigma1 sigma2 = R1 (R1 R2^2) has
//   the eigenvalues of (R1 R2^2) R1 = (R1 R2)(R1 R2)^T (AB and BA share eigenvalues), i.e. the
//   squared singular values of R1 R2, so tr sqrtm(sigma1 sigma2) = sum of the singular values of
//   R1 R2 (its nuclear norm). We take
//   R = V diag(sqrt(max(w, 0))) V^T from eigh(sigma) and the singular values of R1 R2 with an SVD.
//   This has no imaginary part to discard and stays accurate for rank-deficient covariances (N < D
//   features): rounding noise in zero eigenvalues enters squared, so FID(s, s) is ~1e-13 where
//   scipy's Schur-based sqrtm gives ~1e-6 (sqrt of the noise). On full-rank inputs it agrees with
//   pytorch-fid + scipy to ~1e-14 relative; on rank-deficient ones to ~1e-8 (scipy's own error).
//   Each sigma is symmetrised ((s + s^T) / 2) first; a sigma asymmetric beyond 1e-6 relative is
//   an error (it is not a covariance). Negative eigenvalues of sigma1, sigma2 (rounding, or a
//   matrix that is not PSD) are clipped to 0; the largest clipped magnitude is reported.
// - The imaginary-part diagnostic, as pytorch-fid reports it. pytorch-fid's sqrtm turns complex when
//   sigma1 sigma2 has negative or complex eigenvalues, and it raises "Imaginary component X" when
//   the imaginary part of its diagonal exceeds 1e-3. Analogously (not bit-for-bit), we take the eigenvalues lambda of
//   sigma1 sigma2 with torch.linalg.eigvals (complex128, general LAPACK geev, so it sees exactly what a generic sqrtm
//   sees), report max |Im sqrt(lambda)| (principal square root) as `max_imag`, and throw with that
//   value when it exceeds kMaxImaginaryComponent (1e-3), instead of silently using a real part.
// - The eps fallback. pytorch-fid adds eps * I to both covariances when sqrtm(sigma1 sigma2) is not
//   finite: covmean = sqrtm((sigma1 + eps I)(sigma2 + eps I)), while the trace terms stay
//   tr(sigma1) + tr(sigma2). Our route is finite for every finite input, so this only happens when
//   LAPACK fails (no convergence) or yields non-finite values; then the square root and the
//   diagnostic are redone with the same offset and `eps_added` says so. (scipy's sqrtm breaks
//   down, and pytorch-fid adds eps, only on an exact 0/0 in its triangular recurrence, which we
//   cannot predict; the offset moves the result by up to ~2 sqrt(eps lambda) per direction that is
//   null in one covariance. frechet_distance_with_offset computes that formula on demand.)
// - Statistics: mu is the float64 mean; sigma the float64 covariance with N - 1 (np.cov(x,
//   rowvar=False)). pytorch-fid's np.mean on float32 activations accumulates in float32; ours in
//   float64, which moves FID by ~1e-7..1e-5 relative (5e-6 on the test's inception-like features,
//   whose mean is large).
//
// Errors (ldm::Error with a one-line message): shape mismatches, non-finite values, fewer than two
// feature vectors, an imaginary component above 1e-3, a LAPACK failure even with eps added.
// Thread-safety: no shared state; LibTorch's intra-op threads are used.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace ldm::eval {

struct FeatureStats {
  at::Tensor mu;      // [D] float64
  at::Tensor sigma;   // [D, D] float64, symmetric PSD
  int64_t count = 0;  // feature vectors behind the statistics; 0 when unknown (read from a file)
};

// Throws ldm::Error starting with `what` unless mu is 1-D [D] (D >= 1), sigma is [D, D], both are
// floating point and finite. Does not check symmetry (frechet_distance does).
void check_feature_stats(const FeatureStats& stats, const std::string& what);

// Mean and covariance (N - 1 normalisation) of features [N, D] (any floating dtype, N >= 2),
// accumulated in float64 after centring (two passes). Non-finite features are an error.
FeatureStats stats_from_features(const at::Tensor& features);

// The same statistics over a stream of batches, without keeping the features: each batch is
// reduced to (count, mean, centred scatter matrix) in float64 and merged with Chan et al.'s
// pairwise update, M2 += M2_b + delta delta^T n n_b / (n + n_b), which does not lose precision to
// a large mean the way sum(x x^T) - N mu mu^T does. Accumulators of different ranks merge the
// same way. Not thread-safe (one accumulator per thread, then merge).
class FeatureStatsAccumulator {
 public:
  // Adds the rows of `batch` [n, D] (any floating dtype; n may be 0; D fixed by the first batch).
  void add(const at::Tensor& batch);
  // Adds everything `other` has seen (same D, or either empty).
  void merge(const FeatureStatsAccumulator& other);
  int64_t count() const { return count_; }
  int64_t dims() const { return mean_.defined() ? mean_.size(0) : -1; }
  // The statistics so far; needs count() >= 2.
  FeatureStats finalize() const;

 private:
  void merge_moments(int64_t n, const at::Tensor& mean, const at::Tensor& m2);
  int64_t count_ = 0;
  at::Tensor mean_;  // [D] float64
  at::Tensor m2_;    // [D, D] float64: sum of (x - mean)(x - mean)^T
};

// pytorch-fid raises "Imaginary component" above this (np.allclose(diag.imag, 0, atol=1e-3)).
constexpr double kMaxImaginaryComponent = 1e-3;

struct FrechetResult {
  double fid = 0;
  double mean_term = 0;               // |mu1 - mu2|^2
  double trace_sigma1 = 0;            // tr(sigma1)
  double trace_sigma2 = 0;            // tr(sigma2)
  double trace_covmean = 0;           // tr sqrtm((sigma1 + offset I)(sigma2 + offset I))
  bool eps_added = false;             // the first attempt was not finite and eps * I was added
  double offset = 0;                  // what was added to both diagonals inside sqrtm (eps, or 0)
  double max_imag = 0;                // max |Im sqrt(lambda)| over the eigenvalues lambda of the product
  double max_clipped_eigenvalue = 0;  // largest |negative eigenvalue| of sigma1, sigma2 set to 0
};

// The Fréchet distance with pytorch-fid's semantics (see the top of this file): throws ldm::Error
// on mismatched or non-finite statistics, and when max_imag exceeds kMaxImaginaryComponent (the
// message gives the value).
FrechetResult frechet_distance(const FeatureStats& a, const FeatureStats& b, double eps = 1e-6);

// One attempt with `offset` * I added to both covariances inside the square root (pytorch-fid's
// fallback formula when offset > 0; the plain formula when 0). Does not retry, does not throw on
// the imaginary part (the caller decides); a non-finite trace is returned as computed and
// LAPACK errors propagate. Input checks as frechet_distance.
FrechetResult frechet_distance_with_offset(const FeatureStats& a, const FeatureStats& b, double offset);

}  // namespace ldm::eval

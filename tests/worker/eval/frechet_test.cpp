#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "datasets/tensor/npy.h"
#include "shared/core/error.h"
#include "tests/support/errors.h"
#include "tests/support/file_bytes.h"
#include "tests/support/python_reference.h"
#include "tests/support/temp_dir.h"
#include "worker/eval/fid_stats.h"
#include "worker/eval/frechet.h"

// FID statistics, the Fréchet distance and the statistics .npz files, against pytorch-fid's
// calculate_frechet_distance run with Debian's numpy and scipy (scipy.linalg.sqrtm).
namespace frechet_test {

using ldm::testing::contains;
using ldm::testing::error_of;

using ldm::eval::FeatureStats;

double rel_diff(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }

// max |a - b| / max(1, max |b|)
double max_rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  const double scale = std::max(1.0, b.abs().max().item<double>());
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>() / scale;
}

bool same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  const auto ac = a.contiguous(), bc = b.contiguous();
  return std::memcmp(ac.data_ptr(), bc.data_ptr(), static_cast<std::size_t>(ac.numel()) * ac.element_size()) == 0;
}

// Features [n, d] with correlated dimensions and a mean offset (fixed seed).
torch::Tensor features(int64_t n, int64_t d, uint64_t seed, double offset = 0.5) {
  torch::manual_seed(seed);
  const auto mix = torch::randn({d, d}, torch::kDouble) / std::sqrt(static_cast<double>(d));
  return torch::randn({n, d}, torch::kDouble).matmul(mix) + offset;
}

// The values the numpy scripts below write as mu / sigma: mu = arange(D) / 3,
// sigma = outer(a, a) / 7 + eye(D) with a = arange(1, D + 1).
FeatureStats formula_stats(int64_t d) {
  FeatureStats s;
  s.mu = torch::arange(d, torch::kDouble) / 3.0;
  const auto a = torch::arange(1, d + 1, torch::kDouble);
  s.sigma = torch::outer(a, a) / 7.0 + torch::eye(d, torch::kDouble);
  return s;
}

// The first local file header of member `name` in a zip archive's bytes ("PK\3\4" ... name).
std::size_t local_header_of(const std::string& zip, const std::string& name) {
  const std::size_t at = zip.find(name);
  if (at == std::string::npos || at < 30) return std::string::npos;
  const std::size_t header = at - 30;
  return zip.compare(header, 4, std::string("PK\x03\x04", 4)) == 0 ? header : std::string::npos;
}

// pytorch-fid 0.3.0's calculate_frechet_distance, verbatim apart from returning whether eps was
// added, plus its eps formula on demand (offset_fid).
constexpr const char* kPytorchFid = R"PY(
import numpy as np
from scipy import linalg

def calculate_frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6):
    mu1 = np.atleast_1d(mu1)
    mu2 = np.atleast_1d(mu2)
    sigma1 = np.atleast_2d(sigma1)
    sigma2 = np.atleast_2d(sigma2)
    assert mu1.shape == mu2.shape, 'Training and test mean vectors have different lengths'
    assert sigma1.shape == sigma2.shape, 'Training and test covariances have different dimensions'
    diff = mu1 - mu2
    eps_added = False
    covmean, _ = linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        eps_added = True
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            m = np.max(np.abs(covmean.imag))
            raise ValueError('Imaginary component {}'.format(m))
        covmean = covmean.real
    tr_covmean = np.trace(covmean)
    return (diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean), eps_added

def offset_fid(mu1, sigma1, mu2, sigma2, eps):
    diff = mu1 - mu2
    offset = np.eye(sigma1.shape[0]) * eps
    covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean.real)
)PY";

}  // namespace frechet_test

TEST_CASE("frechet: agrees with pytorch-fid + scipy sqrtm to 1e-6 relative, full-rank and rank-deficient (N < D)") {
  namespace ft = frechet_test;
  const std::string script = std::string(ft::kPytorchFid) + R"PY(
import os, sys
d = sys.argv[1]
rng = np.random.default_rng(20240611)
cases = [
    # name, N1, N2, D, dtype
    ('full', 300, 400, 24, np.float64),
    ('rankdef', 20, 30, 48, np.float32),     # N < D: both covariances singular
    ('inception_like', 600, 500, 64, np.float32),
]
for name, n1, n2, dim, dtype in cases:
    a = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    b = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    f1 = (rng.standard_normal((n1, dim)) @ a + 0.5).astype(dtype)
    f2 = np.abs(rng.standard_normal((n2, dim)) @ b).astype(dtype)
    if name == 'inception_like':  # non-negative, large common offset, one dead unit
        f1 = (np.maximum(f1, 0) + 30).astype(dtype)
        f2 = (f2 + 30).astype(dtype)
        f1[:, 5] = 0
        f2[:, 5] = 0
    # float64 statistics (np.cov works in float64; the mean too, unlike pytorch-fid's float32 mean)
    mu1, sigma1 = np.mean(f1.astype(np.float64), axis=0), np.cov(f1, rowvar=False)
    mu2, sigma2 = np.mean(f2.astype(np.float64), axis=0), np.cov(f2, rowvar=False)
    fid, eps_added = calculate_frechet_distance(mu1, sigma1, mu2, sigma2)
    fid_f32mean, _ = calculate_frechet_distance(np.mean(f1, axis=0), sigma1, np.mean(f2, axis=0), sigma2)
    np.savez(os.path.join(d, 'case_%s.npz' % name), f1=f1, f2=f2, mu1=mu1, sigma1=sigma1, mu2=mu2,
             sigma2=sigma2, fid=np.float64(fid), eps_added=np.bool_(eps_added),
             fid_f32mean=np.float64(fid_f32mean),
             fid_offset=np.float64(offset_fid(mu1, sigma1, mu2, sigma2, 1e-6)),
             fid_self=np.float64(calculate_frechet_distance(mu1, sigma1, mu1, sigma1)[0]))
    print(name, fid, eps_added, fid_f32mean)
)PY";
  ldm::testing::PythonReference ref("ldm-frechet", "reference.py", script);
  REQUIRE_MESSAGE(ref.error.empty(), ref.error);
  for (const std::string name : {"full", "rankdef", "inception_like"}) {
    CAPTURE(name);
    const auto z = ldm::data::read_npz((ref.dir / ("case_" + name + ".npz")).string());
    const ft::FeatureStats ours1 = ldm::eval::stats_from_features(z.at("f1"));
    const ft::FeatureStats ours2 = ldm::eval::stats_from_features(z.at("f2"));
    CHECK(ours1.count == z.at("f1").size(0));
    CHECK((ours1.mu.scalar_type() == torch::kDouble));
    CHECK((ours1.sigma.scalar_type() == torch::kDouble));
    // Our statistics are numpy's (np.mean in float64, np.cov) up to summation order.
    CHECK(ft::max_rel_diff(ours1.mu, z.at("mu1")) < 1e-12);
    CHECK(ft::max_rel_diff(ours1.sigma, z.at("sigma1")) < 1e-12);
    CHECK(ft::max_rel_diff(ours2.mu, z.at("mu2")) < 1e-12);
    CHECK(ft::max_rel_diff(ours2.sigma, z.at("sigma2")) < 1e-12);

    const double want = z.at("fid").item<double>();
    REQUIRE_FALSE(z.at("eps_added").item<bool>());  // scipy's plain path, so the numbers compare
    ft::FeatureStats theirs1{z.at("mu1"), z.at("sigma1"), 0}, theirs2{z.at("mu2"), z.at("sigma2"), 0};
    const auto from_ours = ldm::eval::frechet_distance(ours1, ours2);
    const auto from_theirs = ldm::eval::frechet_distance(theirs1, theirs2);
    MESSAGE(name, ": scipy FID ", want, ", ours ", from_theirs.fid, " (relative difference ",
            ft::rel_diff(from_theirs.fid, want), "; max_imag ", from_theirs.max_imag, "; pytorch-fid's float32 mean ",
            "would give ", z.at("fid_f32mean").item<double>(), ")");
    CHECK(ft::rel_diff(from_theirs.fid, want) < 1e-6);
    CHECK(ft::rel_diff(from_ours.fid, want) < 1e-6);
    CHECK_FALSE(from_theirs.eps_added);
    CHECK(from_theirs.max_imag < 1e-6);
    CHECK(from_theirs.fid == doctest::Approx(from_theirs.mean_term + from_theirs.trace_sigma1 +
                                             from_theirs.trace_sigma2 - 2 * from_theirs.trace_covmean));
    // pytorch-fid's eps fallback formula, forced.
    const auto offset = ldm::eval::frechet_distance_with_offset(theirs1, theirs2, 1e-6);
    CHECK(offset.offset == 1e-6);
    CHECK(ft::rel_diff(offset.fid, z.at("fid_offset").item<double>()) < 1e-6);
    // The same set twice: exactly 0 in exact arithmetic. Our bound is 1e-9 (seen: ~1e-13, also for
    // the rank-deficient case, where scipy gives ~1e-6 from the square roots of rounding noise).
    const auto self = ldm::eval::frechet_distance(theirs1, theirs1);
    MESSAGE(name, ": FID(s, s) = ", self.fid, " (scipy: ", z.at("fid_self").item<double>(), ")");
    CHECK(std::abs(self.fid) < 1e-9);
  }
}

TEST_CASE("frechet: identical feature sets give 0 (|FID| < 1e-9) and the distance is symmetric") {
  namespace ft = frechet_test;
  for (int64_t n : {500, 20}) {  // full rank, and N < D
    CAPTURE(n);
    const ft::FeatureStats s = ldm::eval::stats_from_features(ft::features(n, 64, 7));
    const auto r = ldm::eval::frechet_distance(s, s);
    CHECK(std::abs(r.fid) < 1e-9);
    CHECK(r.mean_term == 0.0);
    CHECK_FALSE(r.eps_added);
    const ft::FeatureStats t = ldm::eval::stats_from_features(ft::features(n, 64, 8, 0.0));
    const double ab = ldm::eval::frechet_distance(s, t).fid, ba = ldm::eval::frechet_distance(t, s).fid;
    CHECK(ab > 1.0);
    CHECK(ft::rel_diff(ab, ba) < 1e-10);
  }
}

TEST_CASE("frechet: the streaming accumulator matches the two-pass statistics, with a large mean, over odd batches") {
  namespace ft = frechet_test;
  // Mean 1e6, spread 1e-2: sum(x x^T) - N mu mu^T would lose every digit of the covariance.
  const auto x = ft::features(1000, 8, 3, 0.0) * 1e-2 + 1e6;
  const ft::FeatureStats two_pass = ldm::eval::stats_from_features(x);
  ldm::eval::FeatureStatsAccumulator acc, other;
  CHECK(acc.dims() == -1);
  int64_t at = 0;
  for (int64_t size : {1, 7, 0, 300, 2}) {
    acc.add(x.slice(0, at, at + size));
    at += size;
  }
  other.add(x.slice(0, at, 1000).to(torch::kFloat64));
  acc.merge(other);
  CHECK(acc.count() == 1000);
  CHECK(acc.dims() == 8);
  const ft::FeatureStats streamed = acc.finalize();
  CHECK(streamed.count == 1000);
  CHECK(ft::max_rel_diff(streamed.mu, two_pass.mu) < 1e-15);
  const double sigma_scale = two_pass.sigma.abs().max().item<double>();
  CHECK(sigma_scale == doctest::Approx(1e-4).epsilon(0.9));
  CHECK((streamed.sigma - two_pass.sigma).abs().max().item<double>() < 1e-9 * sigma_scale);
  CHECK(ft::same_bits(streamed.sigma, streamed.sigma.t().contiguous()));  // exactly symmetric
  // float32 batches are accumulated in float64 as well.
  ldm::eval::FeatureStatsAccumulator f32;
  f32.add(x.to(torch::kFloat32));
  CHECK((f32.finalize().mu.scalar_type() == torch::kDouble));
}

TEST_CASE("frechet: bad inputs are clear errors and a large imaginary component is reported with its size") {
  namespace ft = frechet_test;
  const ft::FeatureStats s3 = ldm::eval::stats_from_features(ft::features(50, 3, 1));
  const ft::FeatureStats s4 = ldm::eval::stats_from_features(ft::features(50, 4, 1));
  CHECK(ft::contains(ft::error_of([&] { ldm::eval::frechet_distance(s3, s4); }), "different dimensions (D = 3 and 4)"));
  ft::FeatureStats bad = s3;
  bad.sigma = torch::eye(4, torch::kDouble);
  CHECK(ft::contains(ft::error_of([&] { ldm::eval::frechet_distance(s3, bad); }), "sigma must be [D, D] = [3, 3]"));
  bad = s3;
  bad.mu = s3.mu.clone();
  bad.mu[1] = std::nan("");
  CHECK(ft::contains(ft::error_of([&] { ldm::eval::frechet_distance(bad, s3); }), "mu holds NaN"));
  bad = s3;
  bad.sigma = s3.sigma.clone();
  bad.sigma[0][2] = 5.0;
  CHECK(ft::contains(ft::error_of([&] { ldm::eval::frechet_distance(bad, s3); }), "not symmetric"));
  CHECK(ft::contains(ft::error_of([&] { ldm::eval::stats_from_features(torch::ones({4}, torch::kDouble)); }),
                     "must be [N, D]"));
  CHECK(ft::contains(ft::error_of([&] {
                       ldm::eval::stats_from_features(torch::ones({1, 4}, torch::kDouble));
                     }),
                     "at least 2 feature vectors"));
  CHECK(ft::contains(ft::error_of([&] {
                       ldm::eval::stats_from_features(torch::ones({3, 4}, torch::kLong));
                     }),
                     "floating point"));
  auto inf_features = ft::features(5, 3, 2);
  inf_features[2][1] = INFINITY;
  CHECK(ft::contains(ft::error_of([&] { ldm::eval::stats_from_features(inf_features); }), "NaN or infinite"));
  ldm::eval::FeatureStatsAccumulator acc;
  acc.add(ft::features(5, 3, 2));
  CHECK(ft::contains(ft::error_of([&] { acc.add(ft::features(5, 4, 2)); }), "4 features per row"));

  // Not positive semi-definite: sigma1 sigma2 has the eigenvalue -1, so sqrt has imaginary part 1.
  ft::FeatureStats neg{torch::zeros({2}, torch::kDouble), torch::diag(torch::tensor({1.0, -1.0}, torch::kDouble)), 0};
  ft::FeatureStats id{torch::zeros({2}, torch::kDouble), torch::eye(2, torch::kDouble), 0};
  const std::string imag = ft::error_of([&] { ldm::eval::frechet_distance(neg, id); });
  CHECK(ft::contains(imag, "imaginary component 1 "));
  CHECK(ft::contains(imag, "largest clipped negative eigenvalue 1"));
  const auto diag = ldm::eval::frechet_distance_with_offset(neg, id, 0.0);  // reports, does not throw
  CHECK(diag.max_imag == doctest::Approx(1.0));
  CHECK(diag.max_clipped_eigenvalue == doctest::Approx(1.0));
  // Slightly negative eigenvalues (rounding) are clipped quietly.
  ft::FeatureStats tiny{torch::zeros({2}, torch::kDouble), torch::diag(torch::tensor({1.0, -1e-14}, torch::kDouble)),
                        0};
  const auto r = ldm::eval::frechet_distance(tiny, id);
  CHECK(r.max_clipped_eigenvalue == doctest::Approx(1e-14));
  CHECK(r.fid == doctest::Approx(1.0 - 1e-14 + 2.0 - 2.0 * 1.0));
  CHECK_THROWS_AS(ldm::eval::frechet_distance(s3, s3, 0.0), ldm::Error);
}

TEST_CASE("fid stats: .npz round trip, stored and deflated, and numpy reads what we write") {
  namespace ft = frechet_test;
  ldm::testing::TempDir dir("ldm-fid-stats");
  const ft::FeatureStats s = ft::formula_stats(16);
  for (bool compress : {false, true}) {
    CAPTURE(compress);
    const std::string path = dir.file(compress ? "deflated.npz" : "stored.npz");
    ldm::eval::write_fid_stats(path, s, compress);
    const std::string bytes = ldm::testing::read_bytes(path);
    const std::size_t header = ft::local_header_of(bytes, "mu.npy");
    REQUIRE(header != std::string::npos);
    CHECK(static_cast<unsigned char>(bytes[header + 8]) == (compress ? 8 : 0));  // deflate : stored
    const ft::FeatureStats back = ldm::eval::read_fid_stats(path);
    CHECK(ft::same_bits(back.mu, s.mu));
    CHECK(ft::same_bits(back.sigma, s.sigma));
    CHECK(back.count == 0);
  }
  // float32 statistics are written as float64.
  ft::FeatureStats f32{s.mu.to(torch::kFloat32), s.sigma.to(torch::kFloat32), 0};
  ldm::eval::write_fid_stats(dir.file("from_f32.npz"), f32);
  CHECK((ldm::data::read_npz(dir.file("from_f32.npz")).at("mu").scalar_type() == torch::kDouble));
  CHECK_THROWS_AS(ldm::eval::write_fid_stats(dir.file("bad.npz"), ft::FeatureStats{s.mu, s.sigma.slice(0, 1), 0}),
                  ldm::Error);

  const std::string check = std::string(R"PY(
import numpy as np
d = ')PY") + dir.path() + R"PY('
dim = 16
a = np.arange(1, dim + 1, dtype=np.float64)
mu, sigma = np.arange(dim) / 3.0, np.outer(a, a) / 7.0 + np.eye(dim)
for name in ['stored.npz', 'deflated.npz', 'from_f32.npz']:
    z = np.load(d + '/' + name)
    assert sorted(z.files) == ['mu', 'sigma'], z.files
    assert z['mu'].dtype == np.float64 and z['sigma'].dtype == np.float64
    assert z['mu'].shape == (dim,) and z['sigma'].shape == (dim, dim)
    if name != 'from_f32.npz':
        assert np.array_equal(z['mu'], mu) and np.array_equal(z['sigma'], sigma), name
    else:
        assert np.array_equal(z['mu'], mu.astype(np.float32).astype(np.float64))
print('ok')
)PY";
  ldm::testing::PythonReference numpy_reads("ldm-fid-stats-check", "check.py", check);
  CHECK_MESSAGE(numpy_reads.error.empty(), numpy_reads.error);
}

TEST_CASE("fid stats: numpy savez, savez_compressed and reference-batch files read, the image array never inflated") {
  namespace ft = frechet_test;
  const std::string script = R"PY(
import os, sys
import numpy as np
d = sys.argv[1]
dim = 16
a = np.arange(1, dim + 1, dtype=np.float64)
mu, sigma = np.arange(dim) / 3.0, np.outer(a, a) / 7.0 + np.eye(dim)
np.savez(os.path.join(d, 'savez_f32.npz'), mu=mu.astype(np.float32), sigma=sigma.astype(np.float32))
np.savez_compressed(os.path.join(d, 'savez_compressed.npz'), mu=mu, sigma=sigma)  # pytorch-fid --save-stats
# An ADM/DiT reference batch: arr_0 (uint8 images), then mu, sigma, mu_s, sigma_s.
images = np.random.default_rng(0).integers(0, 256, size=(64, 16, 16, 3), dtype=np.uint8)
np.savez(os.path.join(d, 'ref_batch.npz'), images, mu=mu, sigma=sigma, mu_s=mu[:4], sigma_s=sigma[:4, :4])
np.savez_compressed(os.path.join(d, 'ref_batch_deflated.npz'), images, mu=mu, sigma=sigma)
np.savez(os.path.join(d, 'only_mu.npz'), mu=mu)
np.savez(os.path.join(d, 'int_mu.npz'), mu=np.arange(dim), sigma=sigma)
np.savez(os.path.join(d, 'bad_shape.npz'), mu=mu, sigma=sigma[:, :3])
)PY";
  ldm::testing::PythonReference ref("ldm-fid-stats-numpy", "write.py", script);
  REQUIRE_MESSAGE(ref.error.empty(), ref.error);
  auto file = [&](const std::string& name) { return (ref.dir / name).string(); };
  const ft::FeatureStats want = ft::formula_stats(16);

  const ft::FeatureStats f32 = ldm::eval::read_fid_stats(file("savez_f32.npz"));
  CHECK((f32.mu.scalar_type() == torch::kDouble));
  CHECK(ft::same_bits(f32.mu, want.mu.to(torch::kFloat32).to(torch::kDouble)));
  CHECK(ft::same_bits(f32.sigma, want.sigma.to(torch::kFloat32).to(torch::kDouble)));
  for (const std::string name : {"savez_compressed.npz", "ref_batch.npz", "ref_batch_deflated.npz"}) {
    CAPTURE(name);
    const ft::FeatureStats s = ldm::eval::read_fid_stats(file(name));
    CHECK(ft::same_bits(s.mu, want.mu));
    CHECK(ft::same_bits(s.sigma, want.sigma));
  }
  CHECK(ldm::data::read_npz(file("ref_batch.npz")).at("arr_0").sizes() == torch::IntArrayRef({64, 16, 16, 3}));

  // Damage the image array of the reference batches (stored: its CRC fails; deflated: inflate or
  // its CRC fails). Reading everything must fail on arr_0; reading the statistics must not notice.
  for (const std::string name : {"ref_batch.npz", "ref_batch_deflated.npz"}) {
    CAPTURE(name);
    std::string bytes = ldm::testing::read_bytes(file(name));
    const std::size_t header = ft::local_header_of(bytes, "arr_0.npy");
    REQUIRE(header != std::string::npos);
    for (std::size_t i = header + 400; i < header + 464; ++i) bytes[i] = static_cast<char>(bytes[i] ^ 0x5a);
    const std::string damaged = file("damaged_" + name);
    ldm::testing::write_bytes(damaged, bytes);
    const std::string all = ft::error_of([&] { ldm::data::read_npz(damaged); });
    CHECK(all.find(damaged + ": member 'arr_0.npy'") == 0);
    MESSAGE("reading every member of the damaged reference batch: ", all);
    const ft::FeatureStats s = ldm::eval::read_fid_stats(damaged);
    CHECK(ft::same_bits(s.mu, want.mu));
    CHECK(ft::same_bits(s.sigma, want.sigma));
    CHECK(ldm::data::read_npz_members(damaged, {"mu", "sigma", "mu"}).size() == 2);
  }

  const std::string missing = ft::error_of([&] { ldm::eval::read_fid_stats(file("only_mu.npz")); });
  CHECK(missing.find(file("only_mu.npz") + ": no member 'sigma' (members: mu)") == 0);
  const std::string ints = ft::error_of([&] { ldm::eval::read_fid_stats(file("int_mu.npz")); });
  CHECK(ints.find(file("int_mu.npz") + ": mu must be floating point") == 0);
  const std::string shape = ft::error_of([&] { ldm::eval::read_fid_stats(file("bad_shape.npz")); });
  CHECK(shape.find(file("bad_shape.npz") + ": sigma must be [D, D]") == 0);
  CHECK(ft::error_of([&] { ldm::eval::read_fid_stats(file("none.npz")); }).find("no such file") != std::string::npos);
  CHECK_THROWS_AS(ldm::eval::read_fid_stats(file("only_mu.npz")), ldm::DataError);
}

TEST_CASE("npy strings: numpy unicode and bytes arrays decode to UTF-8, in .npy files and .npz members") {
  namespace ft = frechet_test;
  const std::string script = R"PY(
import os, sys
import numpy as np
d = sys.argv[1]
words = np.array(['', 'cat', 'na\u00efve', '\u65e5\u672c\u8a9e', '\U0001f642x', 'a\x00b', 'padded to the longest'])
assert words.dtype.str.startswith('<U'), words.dtype
raw = np.array([b'ab', b'', b'x\x00y', b'\xff\xfe'])
np.save(os.path.join(d, 'words.npy'), words)
np.save(os.path.join(d, 'raw.npy'), raw)
np.save(os.path.join(d, 'empty.npy'), np.array([], dtype='<U3'))
np.save(os.path.join(d, 'grid.npy'), np.array([['a', 'b'], ['c', 'd']]))
np.savez(os.path.join(d, 'labels.npz'), classes=words, x=np.arange(3.0))
np.savez_compressed(os.path.join(d, 'labels_deflated.npz'), classes=words, x=np.arange(3.0))
)PY";
  ldm::testing::PythonReference ref("ldm-npy-strings", "write.py", script);
  REQUIRE_MESSAGE(ref.error.empty(), ref.error);
  auto file = [&](const std::string& name) { return (ref.dir / name).string(); };
  const std::vector<std::string> words = {"",
                                          "cat",
                                          "na\xc3\xafve",
                                          "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
                                          "\xf0\x9f\x99\x82x",
                                          std::string("a\0b", 3),
                                          "padded to the longest"};
  CHECK(ldm::data::npy_decode_strings(ldm::testing::read_bytes(file("words.npy")), "words.npy") == words);
  const std::vector<std::string> raw = {"ab", "", std::string("x\0y", 3), "\xff\xfe"};
  CHECK(ldm::data::npy_decode_strings(ldm::testing::read_bytes(file("raw.npy")), "raw.npy") == raw);
  CHECK(ldm::data::npy_decode_strings(ldm::testing::read_bytes(file("empty.npy")), "empty.npy").empty());
  for (const std::string name : {"labels.npz", "labels_deflated.npz"}) {
    CAPTURE(name);
    CHECK(ldm::data::read_npz_strings(file(name), "classes") == words);
    CHECK(ldm::data::read_npz_members(file(name), {"x"}).at("x").size(0) == 3);
    CHECK(ft::contains(ft::error_of([&] { ldm::data::read_npz(file(name)); }), "is a string array"));
  }
  CHECK(ft::contains(
      ft::error_of([&] { ldm::data::npy_decode_strings(ldm::testing::read_bytes(file("grid.npy")), "grid.npy"); }),
      "grid.npy: string arrays must be 1-D, this one has shape (2, 2)"));
  CHECK(ft::contains(ft::error_of([&] { ldm::data::read_npz_strings(file("labels.npz"), "x"); }),
                     "dtype '<f8' is not a string array"));
  CHECK(ft::contains(ft::error_of([&] { ldm::data::read_npz_strings(file("labels.npz"), "nope"); }),
                     "no member 'nope' (members: classes, x)"));
  // A lone surrogate is not UTF-32 text.
  std::string header = "{'descr': '<U1', 'fortran_order': False, 'shape': (1,), }";
  header.append(128 - 10 - header.size() - 1, ' ');  // data at byte 128, as numpy aligns it
  header.push_back('\n');
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size()) + '\0' + header;
  bytes += std::string("\x00\xd8\x00\x00", 4);
  CHECK(ft::contains(ft::error_of([&] { ldm::data::npy_decode_strings(bytes, "mem"); }),
                     "element 0 holds 0xD800, which is not a Unicode scalar value"));
  CHECK(ft::contains(ft::error_of([&] { ldm::data::npy_decode_strings(bytes.substr(0, bytes.size() - 1), "mem"); }),
                     "truncated data"));
}

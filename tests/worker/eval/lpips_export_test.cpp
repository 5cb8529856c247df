#include <torch/torch.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "datasets/tensor/npy.h"
#include "shared/core/error.h"
#include "tests/support/errors.h"
#include "tests/support/python_reference.h"
#include "worker/eval/disentanglement.h"

// LPIPS as tools/export/export_lpips.py exports it, loaded by ldm::eval::lpips_distance
// (worker/eval/disentanglement.h). The reference: an inline Python script exports random-weight
// alex and vgg LPIPS files with the script (--random, and again from the same weights written as a
// torchvision backbone state dict + an lpips-style lin dict, and as an lpips LPIPS module state
// dict), and computes the expected distances of fixed image pairs with an independent
// implementation: torchvision.models.alexnet() / vgg16() holding the same weights, the taps read
// off their `features` by index, the LPIPS formula written out in float64.
namespace lpips_export_test {

using ldm::testing::contains;

// Writes into OUT:
//   x_<S>.npy, y_<S>.npy        float32 [3,3,H,W] image pairs in [-1,1], S = 64x64 and 48x80
//   <B>.pt                      LPIPS, backbone B (alex: seed 3, vgg: seed 4), via --random --check
//   <B>_split.pt                the same weights via --backbone-weights <B>_backbone.pth (torchvision's
//                               features.N.* and small classifier.* stand-ins) --lin-weights <B>_lin.pth
//   <B>_combined.pt             the same weights via --weights <B>_lpips.pth (lpips LPIPS module layout)
//   <B>_expected_<S>.npy        float64 [3] distances from the independent torchvision implementation
//   errors.json                 {case: [exit status, names the expected key?]} for bad inputs
//   summary.json                the differences measured in Python
constexpr const char* kReferenceScript = R"PY(
import contextlib
import io
import json
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision

out = Path(sys.argv[1])
sys.path.insert(0, __TOOLS__)
import export_lpips as el  # noqa: E402

torch.set_num_threads(1)

# ---- image pairs: smooth random images; y = slight noise, a blur, an unrelated image ----------
def smooth(n, h, w, g):
    coarse = torch.rand(n, 3, h // 8 + 1, w // 8 + 1, generator=g) * 2 - 1
    x = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return (x + 0.1 * torch.randn(n, 3, h, w, generator=g)).clamp(-1, 1)

SIZES = {"64x64": (64, 64), "48x80": (48, 80)}
pairs = {}
for i, (tag, (h, w)) in enumerate(SIZES.items()):
    g = torch.Generator().manual_seed(100 + i)
    x = smooth(3, h, w, g)
    y = torch.empty_like(x)
    y[0] = (x[0] + 0.05 * torch.randn(3, h, w, generator=g)).clamp(-1, 1)
    y[1] = F.avg_pool2d(x[1:2], 3, stride=1, padding=1, count_include_pad=False)[0]
    y[2] = smooth(1, h, w, g)[0]
    pairs[tag] = (x.float(), y.float())
    np.save(out / f"x_{tag}.npy", x.numpy().astype(np.float32))
    np.save(out / f"y_{tag}.npy", y.numpy().astype(np.float32))

# ---- the independent implementation --------------------------------------------------------------
SHIFT = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
SCALE = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)
# the ReLU outputs LPIPS reads, as indices into torchvision's `features`
TAPS = {"alex": [1, 4, 7, 9, 11], "vgg": [3, 8, 15, 22, 29]}
SLICES = {"alex": [(0, 2), (2, 5), (5, 8), (8, 10), (10, 12)],
          "vgg": [(0, 4), (4, 9), (9, 16), (16, 23), (23, 30)]}
TORCHVISION = {"alex": torchvision.models.alexnet, "vgg": torchvision.models.vgg16}


def reference_distances(tv, lins, taps, x, y):
    """LPIPS v0.1 written out: float64, torchvision's network, the lin layers as weighted sums."""
    net = tv.double().eval()

    def features(img):
        h = (img.double() - SHIFT) / SCALE
        taken = []
        for i, layer in enumerate(net.features):
            h = layer(h)
            if i in taps:
                taken.append(h.clone())  # ReLU(inplace=True): keep a copy
            if i == taps[-1]:
                break
        return taken

    with torch.no_grad():
        total = torch.zeros(x.shape[0], dtype=torch.float64)
        for f0, f1, w in zip(features(x), features(y), lins):
            n0 = f0 / (torch.sqrt((f0 * f0).sum(dim=1, keepdim=True)) + 1e-10)
            n1 = f1 / (torch.sqrt((f1 * f1).sum(dim=1, keepdim=True)) + 1e-10)
            weighted = ((n0 - n1) ** 2 * w.double().view(1, -1, 1, 1)).sum(dim=1)  # [N, h, w]
            total += weighted.mean(dim=(1, 2))
    return total


def run_main(args):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = el.main([str(a) for a in args])
    return rc, err.getvalue()


def distances(path, x, y):
    m = torch.jit.load(str(path))
    with torch.no_grad():
        return m(x, y)


summary = {}
for backbone, seed in (("alex", 3), ("vgg", 4)):
    base = ["--random", "--seed", seed] + (["--backbone", "vgg"] if backbone == "vgg" else [])
    rc = el.main([str(a) for a in base + ["--out", out / f"{backbone}.pt", "--check"]])
    assert rc == 0, (backbone, rc)
    model = el.build(el.parse_args([str(a) for a in base + ["--out", "unused.pt"]]))
    assert model.backbone == backbone

    # torchvision's network with the random backbone; its full state dict (classifier included)
    tv = TORCHVISION[backbone]()
    missing, unexpected = tv.load_state_dict(el.torchvision_state_dict(model), strict=False)
    assert not unexpected and missing and all(k.startswith("classifier.") for k in missing), (missing, unexpected)
    tv_sd = tv.state_dict()
    # the features as torchvision saves them; the real file's classifier.* (hundreds of MB) is
    # ignored by the script, so small stand-ins under those names check that
    backbone_sd = {k: v for k, v in tv_sd.items() if k.startswith("features.")}
    backbone_sd.update({"classifier.1.weight": torch.ones(4, 8), "classifier.1.bias": torch.ones(4)})
    torch.save(backbone_sd, out / f"{backbone}_backbone.pth")
    lin_sd = el.lin_state_dict(model)
    assert sorted(lin_sd) == [f"lin{k}.model.1.weight" for k in range(5)], sorted(lin_sd)
    assert all((v >= 0).all() for v in lin_sd.values())
    torch.save(lin_sd, out / f"{backbone}_lin.pth")
    rc, err = run_main(["--backbone-weights", out / f"{backbone}_backbone.pth", "--lin-weights",
                        out / f"{backbone}_lin.pth", "--out", out / f"{backbone}_split.pt"])
    assert rc == 0, err

    # the lpips package's LPIPS module layout, built here from the torchvision dict
    combined = {"scaling_layer.shift": SHIFT.float().clone(), "scaling_layer.scale": SCALE.float().clone()}
    for k, (begin, end) in enumerate(SLICES[backbone]):
        for n in range(begin, end):
            for p in ("weight", "bias"):
                if f"features.{n}.{p}" in tv_sd:
                    combined[f"net.slice{k + 1}.{n}.{p}"] = tv_sd[f"features.{n}.{p}"].clone()
    for k in range(5):
        combined[f"lin{k}.model.1.weight"] = lin_sd[f"lin{k}.model.1.weight"].clone()
        combined[f"lins.{k}.model.1.weight"] = lin_sd[f"lin{k}.model.1.weight"].clone()
    torch.save(combined, out / f"{backbone}_lpips.pth")
    rc, err = run_main(["--weights", out / f"{backbone}_lpips.pth", "--out", out / f"{backbone}_combined.pt"])
    assert rc == 0, err

    lins = [lin_sd[f"lin{k}.model.1.weight"] for k in range(5)]
    for tag, (x, y) in pairs.items():
        want = reference_distances(tv, lins, TAPS[backbone], x, y)
        np.save(out / f"{backbone}_expected_{tag}.npy", want.numpy())
        got = distances(out / f"{backbone}.pt", x, y)
        with torch.no_grad():
            eager = model(x, y)
        split = distances(out / f"{backbone}_split.pt", x, y)
        comb = distances(out / f"{backbone}_combined.pt", x, y)
        d_ref = (got.double() - want).abs().max().item()
        d_eager = (got - eager).abs().max().item()
        d_split = max((split - got).abs().max().item(), (comb - got).abs().max().item())
        print(f"{backbone} {tag}: reference {want.tolist()}; |scripted - reference| {d_ref:.3g}, "
              f"|scripted - eager| {d_eager:.3g}, |split/combined - random export| {d_split:.3g}")
        assert d_ref <= 1e-5 * max(1.0, want.abs().max().item()), (backbone, tag, d_ref)
        assert d_split <= 1e-7, (backbone, tag, d_split)
        assert (want > 0).all()
        summary[f"{backbone}_{tag}"] = {"scripted_vs_reference": d_ref, "split_vs_random": d_split}
    if backbone == "vgg":  # 59 MB each, not needed any more
        (out / "vgg_backbone.pth").unlink()
        (out / "vgg_lpips.pth").unlink()

# ---- bad inputs: exit status 1 naming the key, usage errors 2 -------------------------------------
lin_sd = torch.load(out / "alex_lin.pth")
bb_sd = torch.load(out / "alex_backbone.pth")
cases = {}

def bad_case(name, args, needle):
    rc, err = run_main(args)
    cases[name] = [rc, needle in err]
    print(f"{name}: exit {rc}; {err.strip().splitlines()[-1] if err.strip() else ''}")

no_lin3 = {k: v for k, v in lin_sd.items() if k != "lin3.model.1.weight"}
torch.save(no_lin3, out / "no_lin3.pth")
bad_case("missing_lin_key", ["--backbone-weights", out / "alex_backbone.pth", "--lin-weights", out / "no_lin3.pth",
                             "--out", out / "bad.pt"], "lin3.model.1.weight")
extra = dict(lin_sd)
extra["lin5.model.1.weight"] = torch.ones(1, 8, 1, 1)
torch.save(extra, out / "extra_lin.pth")
bad_case("unknown_lin_key", ["--backbone-weights", out / "alex_backbone.pth", "--lin-weights", out / "extra_lin.pth",
                             "--out", out / "bad.pt"], "lin5.model.1.weight")
reshaped = dict(bb_sd)
reshaped["features.3.weight"] = reshaped["features.3.weight"].transpose(0, 1).contiguous()
torch.save(reshaped, out / "reshaped_backbone.pth")
bad_case("misshaped_backbone_key", ["--backbone-weights", out / "reshaped_backbone.pth", "--lin-weights",
                                    out / "alex_lin.pth", "--out", out / "bad.pt"], "features.3.weight")
bad_case("wrong_backbone", ["--backbone", "vgg", "--backbone-weights", out / "alex_backbone.pth", "--lin-weights",
                            out / "alex_lin.pth", "--out", out / "bad.pt"], "features.28.weight")
scaled = torch.load(out / "alex_lpips.pth")
scaled["scaling_layer.scale"] = torch.ones(1, 3, 1, 1)
torch.save(scaled, out / "bad_scaling.pth")
bad_case("bad_scaling_layer", ["--weights", out / "bad_scaling.pth", "--out", out / "bad.pt"], "scaling_layer.scale")
bad_case("missing_file", ["--weights", out / "nope.pth", "--out", out / "bad.pt"], "nope.pth")
bad_case("usage_backbone_without_lin", ["--backbone-weights", out / "alex_backbone.pth", "--out", out / "bad.pt"],
         "--lin-weights")
bad_case("usage_two_sources", ["--random", "--weights", out / "alex_lpips.pth", "--out", out / "bad.pt"], "--random")
assert not (out / "bad.pt").exists()
(out / "errors.json").write_text(json.dumps(cases))
(out / "summary.json").write_text(json.dumps(summary))
print("done")
)PY";

const ldm::testing::PythonReference& fixture() {
  static ldm::testing::PythonReference f("ldm-lpips-export", "lpips_export_reference.py",
                                         ldm::testing::with_tools_dir(kReferenceScript));
  REQUIRE_MESSAGE(f.error.empty(), f.error);
  return f;
}

std::string file(const std::string& name) { return (fixture().dir / name).string(); }

const std::vector<std::string>& size_tags() {
  static const std::vector<std::string> tags = {"64x64", "48x80"};
  return tags;
}

at::Tensor lpips(const ldm::eval::ImageDistance& d, const at::Tensor& x, const at::Tensor& y) {
  const auto a = d.embed ? d.embed(x) : x;
  const auto b = d.embed ? d.embed(y) : y;
  return d.compare(a, b);
}

double max_abs(const at::Tensor& t) { return t.numel() ? t.abs().max().item<double>() : 0.0; }

std::string values(const at::Tensor& t) {
  std::ostringstream s;
  s.precision(9);
  s << "[";
  const auto d = t.to(torch::kFloat64).contiguous();
  for (int64_t i = 0; i < d.numel(); ++i) s << (i ? ", " : "") << d[i].item<double>();
  return s.str() + "]";
}

// The C++ distances of the exported file `<backbone>.pt` against the independent Python reference,
// plus d(x, x) = 0, symmetry and positivity.
void check_against_reference(const std::string& backbone) {
  const auto d = ldm::eval::lpips_distance(file(backbone + ".pt"));
  CHECK(d.name == "lpips:" + backbone + ".pt");
  double worst_abs = 0, worst_rel = 0;
  for (const auto& tag : size_tags()) {
    CAPTURE(tag);
    const auto x = ldm::data::read_npy(file("x_" + tag + ".npy"));
    const auto y = ldm::data::read_npy(file("y_" + tag + ".npy"));
    const auto want = ldm::data::read_npy(file(backbone + "_expected_" + tag + ".npy")).to(torch::kFloat64);
    REQUIRE(x.sizes() == y.sizes());
    REQUIRE(x.size(0) == 3);
    REQUIRE((x.scalar_type() == torch::kFloat32));

    const auto got = lpips(d, x, y);
    REQUIRE(got.sizes() == torch::IntArrayRef({3}));
    REQUIRE(want.sizes() == torch::IntArrayRef({3}));
    const auto diff = (got.to(torch::kFloat64) - want).abs();
    const double abs_err = max_abs(diff);
    const double rel_err = (diff / want.abs()).max().item<double>();
    worst_abs = std::max(worst_abs, abs_err);
    worst_rel = std::max(worst_rel, rel_err);
    MESSAGE(backbone << " " << tag << ": C++ " << values(got) << ", reference " << values(want) << ", max |diff| "
                     << abs_err << ", max |diff| / |reference| " << rel_err);
    CHECK(abs_err <= 1e-5 * std::max(1.0, max_abs(want)));  // absolute (distances are below 1)
    CHECK(rel_err <= 1e-5);                                 // and relative to each distance
    // Different images are at a positive distance, and the pairs are not all alike.
    CHECK(want.min().item<double>() > 1e-4);
    CHECK(got.min().item<double>() > 1e-4);
    CHECK(want.max().item<double>() - want.min().item<double>() > 1e-3);

    // d(x, x) = 0 and d(y, y) = 0.
    CHECK(max_abs(lpips(d, x, x)) <= 1e-7);
    CHECK(max_abs(lpips(d, y, y)) <= 1e-7);
    // Symmetric.
    CHECK(max_abs(lpips(d, y, x) - got) <= 1e-6);
    // Any batch size: the pairs one at a time give the same distances.
    for (int64_t i = 0; i < 3; ++i)
      CHECK(std::abs(lpips(d, x.narrow(0, i, 1), y.narrow(0, i, 1)).item<double>() - got[i].item<double>()) <= 1e-6);
  }
  MESSAGE(backbone << ": over all pairs max |C++ - reference| " << worst_abs << ", max relative " << worst_rel);
}

}  // namespace lpips_export_test

// One test case: each doctest case runs in its own process under ctest, and the Python reference
// (about 20 s) then runs once instead of once per case.
TEST_CASE("LPIPS export: exported networks match an independent torchvision LPIPS, every weight layout, clear errors") {
  SUBCASE("a random alex export loaded in C++ matches an independent torchvision AlexNet LPIPS") {
    lpips_export_test::check_against_reference("alex");
  }
  SUBCASE("a random vgg export loaded in C++ matches an independent torchvision VGG-16 LPIPS") {
    lpips_export_test::check_against_reference("vgg");
  }
  SUBCASE("torchvision + lin files and an LPIPS module state dict give the random export's distances") {
    namespace t = lpips_export_test;
    for (const std::string backbone : {"alex", "vgg"}) {
      CAPTURE(backbone);
      const auto random = ldm::eval::lpips_distance(t::file(backbone + ".pt"));
      const auto split = ldm::eval::lpips_distance(t::file(backbone + "_split.pt"));
      const auto combined = ldm::eval::lpips_distance(t::file(backbone + "_combined.pt"));
      for (const auto& tag : t::size_tags()) {
        const auto x = ldm::data::read_npy(t::file("x_" + tag + ".npy"));
        const auto y = ldm::data::read_npy(t::file("y_" + tag + ".npy"));
        const auto want = t::lpips(random, x, y);
        CHECK(t::max_abs(t::lpips(split, x, y) - want) <= 1e-7);
        CHECK(t::max_abs(t::lpips(combined, x, y) - want) <= 1e-7);
      }
    }
    // What Python measured (scripted export against the reference, split/combined against --random).
    std::ifstream in(t::file("summary.json"));
    const auto summary = nlohmann::json::parse(in);
    REQUIRE(summary.size() == 4);
    for (const auto& [name, v] : summary.items()) {
      CAPTURE(name);
      CHECK(v.at("scripted_vs_reference").get<double>() <= 1e-5);
      CHECK(v.at("split_vs_random").get<double>() <= 1e-7);
    }
  }
  SUBCASE("bad checkpoints exit 1 naming the key and usage errors exit 2") {
    namespace t = lpips_export_test;
    std::ifstream in(t::file("errors.json"));
    const auto cases = nlohmann::json::parse(in);
    const std::vector<std::pair<std::string, int>> want = {
        {"missing_lin_key", 1},   {"unknown_lin_key", 1}, {"misshaped_backbone_key", 1},     {"wrong_backbone", 1},
        {"bad_scaling_layer", 1}, {"missing_file", 1},    {"usage_backbone_without_lin", 2}, {"usage_two_sources", 2}};
    REQUIRE(cases.size() == want.size());
    for (const auto& [name, rc] : want) {
      CAPTURE(name);
      REQUIRE(cases.contains(name));
      CHECK(cases.at(name).at(0).get<int>() == rc);
      CHECK(cases.at(name).at(1).get<bool>());  // the message names the key, file or option
    }
  }
  SUBCASE("images below the backbone's minimum size are a clear error in C++") {
    namespace t = lpips_export_test;
    const auto alex = ldm::eval::lpips_distance(t::file("alex.pt"));
    const auto small = torch::zeros({2, 3, 30, 64});
    // The module raises "LPIPS (alex): images must be at least 31x31, got 30x64"; lpips_distance
    // passes on that line (not the interpreter's traceback header) in an ldm::DataError.
    std::string message;
    try {
      t::lpips(alex, small, small);
    } catch (const ldm::DataError& e) {
      message = e.what();
    }
    CHECK(t::contains(message, "at least 31x31, got 30x64"));
    CHECK(t::contains(message, "forward(x, y) failed on 2 images of 30x64"));
    CHECK_FALSE(t::contains(message, "TorchScript interpreter"));
    // 31x31 (alex) and 16x16 (vgg) work.
    CHECK(t::lpips(alex, torch::zeros({1, 3, 31, 31}), torch::zeros({1, 3, 31, 31})).item<double>() == 0.0);
    const auto vgg = ldm::eval::lpips_distance(t::file("vgg.pt"));
    const auto a = torch::rand({1, 3, 16, 16}) * 2 - 1;
    CHECK(t::lpips(vgg, a, -a).item<double>() > 0.0);
  }
}

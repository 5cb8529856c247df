#include <torch/torch.h>
#include <doctest/doctest.h>

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "shared/core/error.h"
#include "shared/core/safe_file.h"
#include "tests/support/python_reference.h"
#include "worker/io/pt_reader.h"

// Python (Debian's python3-torch) writes .pt files with torch.save, and next to them the raw bytes
// of every tensor (contiguous, little-endian) plus a manifest; the C++ reader must reproduce dtype,
// shape and every bit.
namespace pt_reader_test {

namespace fs = std::filesystem;

const char* kWriter = R"PY(
import argparse, collections, os, sys, zipfile
import torch

out = sys.argv[1]
manifest = open(os.path.join(out, "manifest.txt"), "w")
counter = [0]

def record(pt, selector, sd):
    # One manifest line per tensor: pt-file selector name dtype ndim dims... raw-bytes-file
    for name, t in sd.items():
        counter[0] += 1
        raw = "t%d.bin" % counter[0]
        with open(os.path.join(out, raw), "wb") as f:
            f.write(t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        dims = " ".join(str(d) for d in t.shape)
        manifest.write("%s %s %s %s %d %s %s\n" % (pt, selector, name, str(t.dtype), t.dim(), dims, raw))

def save(pt, obj, selector="-", sd=None, **kw):
    torch.save(obj, os.path.join(out, pt), **kw)
    record(pt, selector, obj if sd is None else sd)

torch.manual_seed(0)
dtypes = {
    "f32": torch.randn(3, 4),
    "f16": torch.randn(5).half(),
    "bf16": torch.randn(2, 3).bfloat16(),
    "f64": torch.randn(4, 1, 2, dtype=torch.float64),
    "i64": torch.tensor([0, -1, 2**40 + 7, -2**62, 2**63 - 1]),
    "i32": torch.tensor([[1, -2], [2**31 - 1, -2**31]], dtype=torch.int32),
    "u8": torch.arange(250, 256, dtype=torch.uint8),
    "bool": torch.tensor([True, False, True]),
    "scalar": torch.tensor(3.5),
    "empty": torch.zeros(0, 3),
    "special": torch.tensor([float("nan"), float("inf"), -float("inf"), -0.0, 1e-40]),
}
save("dtypes.pt", dtypes)

base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
shared = torch.arange(10, dtype=torch.int64)
views = {
    "transposed": base.t(),
    "offset_slice": base[2:4],
    "strided": base[1:, 1::2],
    "shares_a": shared[:4],
    "shares_b": shared[4:].view(3, 2),
    "expanded_row": base[0].unsqueeze(0).expand(3, 6),
}
assert views["transposed"].stride() == (1, 6) and views["offset_slice"].storage_offset() == 12
assert views["shares_a"].storage().data_ptr() == views["shares_b"].storage().data_ptr()
save("views.pt", views)

net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
module_sd = net.state_dict()
assert isinstance(module_sd, collections.OrderedDict) and hasattr(module_sd, "_metadata")
save("module.pt", module_sd)

params = collections.OrderedDict([("w", torch.nn.Parameter(torch.randn(2, 2))), ("b", torch.randn(2))])
save("parameters.pt", params)

model = {"weight": torch.randn(3, 3), "bias": torch.randn(3)}
ema = {"weight": torch.randn(3, 3), "bias": torch.randn(3)}
opt = torch.optim.AdamW([torch.nn.Parameter(torch.randn(3, 3))], lr=1e-4)
opt.param_groups[0]["params"][0].grad = torch.randn(3, 3)
opt.step()
checkpoint = {"model": model, "ema": ema, "opt": opt.state_dict(),
              "args": argparse.Namespace(model="DiT-XL/2", lr=1e-4, epochs=3)}
torch.save(checkpoint, os.path.join(out, "checkpoint.pt"))
record("checkpoint.pt", "model", model)
record("checkpoint.pt", "ema", ema)
record("checkpoint.pt", "-", ema)  # no key: the EMA weights, as DiT's own loader picks
record("custom.pt", "custom", model)
torch.save({"custom": model, "step": 7}, os.path.join(out, "custom.pt"))
manifest.close()

# Broken files.
data = open(os.path.join(out, "dtypes.pt"), "rb").read()
open(os.path.join(out, "truncated.pt"), "wb").write(data[: len(data) // 2])
open(os.path.join(out, "text.pt"), "w").write("this is not a zip archive\n")
torch.save(dtypes, os.path.join(out, "legacy.pt"), _use_new_zipfile_serialization=False)
with zipfile.ZipFile(os.path.join(out, "dtypes.pt")) as src, \
     zipfile.ZipFile(os.path.join(out, "missing_storage.pt"), "w") as dst:
    names = src.namelist()
    dropped = [n for n in names if "/data/" in n][-1]
    for n in names:
        if n != dropped:
            dst.writestr(n, src.read(n))
with zipfile.ZipFile(os.path.join(out, "no_pickle.pt"), "w") as z:
    z.writestr("archive/version", "3\n")
with zipfile.ZipFile(os.path.join(out, "bad_opcode.pt"), "w") as z:
    z.writestr("archive/data.pkl", b"\x80\x02}q\x00\x82\x01.")  # EXT1 at byte 5
    z.writestr("archive/version", "3\n")
with zipfile.ZipFile(os.path.join(out, "truncated_pickle.pt"), "w") as z:
    z.writestr("archive/data.pkl", b"\x80\x02}q\x00X\x10\x00\x00\x00ab")
    z.writestr("archive/version", "3\n")
)PY";

// The Python side's files, written once per test binary into a temporary directory.
const ldm::testing::PythonReference& fixture() {
  static ldm::testing::PythonReference f("ldm-pt-reader", "writer.py", kWriter);
  REQUIRE_MESSAGE(f.error.empty(), f.error);
  return f;
}

struct Expected {
  std::string dtype;
  std::vector<int64_t> sizes;
  std::string bytes;
};

// The manifest's tensors for one (file, selector) pair.
std::map<std::string, Expected> expected(const std::string& pt, const std::string& selector) {
  const auto& f = fixture();
  std::ifstream in(f.dir / "manifest.txt");
  std::map<std::string, Expected> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream s(line);
    std::string file, sel, name, raw;
    Expected e;
    int ndim = 0;
    s >> file >> sel >> name >> e.dtype >> ndim;
    e.sizes.resize(ndim);
    for (auto& d : e.sizes) s >> d;
    s >> raw;
    if (file != pt || sel != selector) continue;
    e.bytes = ldm::read_file((f.dir / raw).string());
    out[name] = e;
  }
  REQUIRE_MESSAGE(!out.empty(), "no manifest entries for ", pt, " ", selector);
  return out;
}

std::string python_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32:
      return "torch.float32";
    case torch::kFloat16:
      return "torch.float16";
    case torch::kBFloat16:
      return "torch.bfloat16";
    case torch::kFloat64:
      return "torch.float64";
    case torch::kInt64:
      return "torch.int64";
    case torch::kInt32:
      return "torch.int32";
    case torch::kUInt8:
      return "torch.uint8";
    case torch::kBool:
      return "torch.bool";
    default:
      return c10::toString(t);
  }
}

// Loads `pt` with `selector` ("-" = no key) and checks it equals the Python side bit for bit.
std::map<std::string, at::Tensor> check_matches_python(const std::string& pt, const std::string& selector) {
  auto want = expected(pt, selector);
  auto got = ldm::worker::load_pt_state_dict((fixture().dir / pt).string(), selector == "-" ? "" : selector);
  std::vector<std::string> want_keys, got_keys;
  for (const auto& kv : want) want_keys.push_back(kv.first);
  for (const auto& kv : got) got_keys.push_back(kv.first);
  CHECK(got_keys == want_keys);
  for (const auto& [name, e] : want) {
    CAPTURE(name);
    auto it = got.find(name);
    if (it == got.end()) continue;
    const at::Tensor& t = it->second;
    CHECK(python_dtype(t.scalar_type()) == e.dtype);
    CHECK(t.sizes().vec() == e.sizes);
    CHECK(t.is_contiguous());
    const size_t n = size_t(t.numel()) * t.element_size();
    REQUIRE(n == e.bytes.size());
    CHECK(std::memcmp(t.data_ptr(), e.bytes.data(), n) == 0);
  }
  return got;
}

std::string load_error(const std::string& pt, const std::string& key = "") {
  const std::string path = (fixture().dir / pt).string();
  try {
    ldm::worker::load_pt_state_dict(path, key);
  } catch (const ldm::DataError& e) {
    const std::string msg = e.what();
    CHECK_MESSAGE(msg.find(path) != std::string::npos, "error does not name the file: ", msg);
    return msg;
  }
  FAIL("loading ", path, " did not throw ldm::DataError");
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace pt_reader_test

TEST_CASE("pt reader: every supported dtype, scalars, empty tensors and NaN/Inf come back bit-exact") {
  pt_reader_test::check_matches_python("dtypes.pt", "-");
}

TEST_CASE(
    "pt reader: transposed, offset, strided, expanded and storage-sharing views come back as independent copies") {
  auto sd = pt_reader_test::check_matches_python("views.pt", "-");
  // shares_a and shares_b were views of one storage in Python; here each owns its memory.
  auto a = sd.at("shares_a"), b = sd.at("shares_b");
  CHECK(a.data_ptr() != b.data_ptr());
  a.fill_(-1);
  CHECK(b.min().item<int64_t>() == 4);
  CHECK(sd.at("transposed").sizes().vec() == std::vector<int64_t>{6, 4});
  CHECK(sd.at("transposed")[1][0].item<float>() == 1.0f);
}

TEST_CASE("pt reader: an nn.Module state dict (OrderedDict with _metadata) keeps every entry") {
  auto sd = pt_reader_test::check_matches_python("module.pt", "-");
  CHECK(sd.count("1.num_batches_tracked") == 1);
  CHECK(sd.size() == 7);
}

TEST_CASE("pt reader: nn.Parameter entries are read as tensors") {
  pt_reader_test::check_matches_python("parameters.pt", "-");
}

TEST_CASE("pt reader: a training checkpoint yields 'ema' by default and 'model' or another dict by key") {
  pt_reader_test::check_matches_python("checkpoint.pt", "-");
  pt_reader_test::check_matches_python("checkpoint.pt", "ema");
  pt_reader_test::check_matches_python("checkpoint.pt", "model");
  pt_reader_test::check_matches_python("custom.pt", "custom");
}

TEST_CASE("pt reader: asking for a missing or non-state-dict key names the file and the keys there are") {
  pt_reader_test::fixture();  // fails first, and clearly, without python3-torch
  using pt_reader_test::contains;
  auto missing = pt_reader_test::load_error("checkpoint.pt", "state");
  CHECK(contains(missing, "'state'"));
  CHECK(contains(missing, "'model', 'ema', 'opt', 'args'"));
  auto opt = pt_reader_test::load_error("checkpoint.pt", "opt");
  CHECK(contains(opt, "not a state dict"));
  auto custom = pt_reader_test::load_error("custom.pt");  // no key, no ema/model: nothing to pick
  CHECK(contains(custom, "no state dict found"));
}

TEST_CASE("pt reader: corrupt, truncated and foreign files give an error that names the file") {
  pt_reader_test::fixture();  // fails first, and clearly, without python3-torch
  using pt_reader_test::contains;
  using pt_reader_test::load_error;
  CHECK(contains(load_error("does_not_exist.pt"), "cannot open"));
  CHECK(contains(load_error("truncated.pt"), "zip"));
  CHECK(contains(load_error("text.pt"), "not a zip archive"));
  CHECK(contains(load_error("legacy.pt"), "legacy"));
  CHECK(contains(load_error("missing_storage.pt"), "missing storage data/"));
  CHECK(contains(load_error("no_pickle.pt"), "no data.pkl"));
  auto bad = load_error("bad_opcode.pt");
  CHECK(contains(bad, "unsupported pickle opcode 0x82 at byte 5"));
  CHECK(contains(load_error("truncated_pickle.pt"), "truncated"));
}

#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <string>

#include "datasets/tensor/npy.h"
#include "shared/core/error.h"
#include "tests/support/errors.h"
#include "tests/support/skip.h"
#include "tests/support/temp_dir.h"

// .npy / .npz reading and writing, against files written by Debian's numpy (/usr/bin/python3).
namespace npy_test {

using ldm::testing::error_of;

using ldm::data::NpzMap;
using ldm::testing::TempDir;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

// Same dtype, sizes and bytes (so NaN payloads, -0.0 and infinities count too).
bool same_bits(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  const auto ac = a.contiguous(), bc = b.contiguous();
  return std::memcmp(ac.data_ptr(), bc.data_ptr(), static_cast<std::size_t>(ac.numel()) * ac.element_size()) == 0;
}

// One tensor per supported dtype with values that probe each type's range.
NpzMap dtype_samples() {
  NpzMap m;
  const double inf = std::numeric_limits<double>::infinity();
  m["f4"] = torch::tensor({0.5, -0.0, 1e-40, 3.4e38, -inf, std::nan("")}, torch::kFloat32).reshape({2, 3});
  m["f8"] = torch::tensor({1.0 / 3.0, -2.5e-308, 1.7e308, inf}, torch::kFloat64);
  m["f2"] = torch::tensor({0.099975586, -65504.0, 6e-8, 1.0}, torch::kFloat16).reshape({1, 2, 2});
  m["i8"] = torch::tensor({std::numeric_limits<int64_t>::min(), int64_t{-1}, std::numeric_limits<int64_t>::max()},
                          torch::kInt64);
  m["i4"] = torch::tensor({-2147483647 - 1, 0, 2147483647}, torch::kInt32).reshape({3, 1});
  m["i2"] = torch::tensor({-32768, 32767}, torch::kInt16);
  m["i1"] = torch::tensor({-128, 127, 0}, torch::kInt8);
  m["u1"] = torch::tensor({0, 255, 7}, torch::kUInt8);
  m["b1"] = torch::tensor({true, false, true, true}, torch::kBool).reshape({2, 2});
  m["scalar"] = torch::tensor(2.25, torch::kFloat32).reshape({});  // 0-d
  m["empty"] = torch::zeros({0, 3}, torch::kFloat32);              // no data bytes
  return m;
}

bool have_numpy() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0;
  return ok;
}

// Runs `/usr/bin/python3 SCRIPT DIR` (the script written into DIR); returns "" or the failure log.
std::string run_numpy(const TempDir& dir, const std::string& script) {
  spit(dir.file("script.py"), script);
  const std::string log = dir.file("python.log");
  const int rc =
      std::system(("/usr/bin/python3 " + dir.file("script.py") + " " + dir.path() + " >" + log + " 2>&1").c_str());
  return rc == 0 ? "" : "python failed (rc " + std::to_string(rc) + "):\n" + slurp(log);
}

// Skipped without numpy, failed under CI=true (tests/support/skip.h).
#define NPY_TEST_REQUIRE_NUMPY()              \
  LDM_REQUIRE_OR_SKIP(npy_test::have_numpy(), \
                      "numpy is missing (`/usr/bin/python3 -c 'import numpy'` failed; install python3-numpy)")

}  // namespace npy_test

TEST_CASE("npy: every dtype round-trips through write_npy/read_npy with exact bits, shape and dtype") {
  namespace nt = npy_test;
  nt::TempDir dir("ldm-npy");
  for (const auto& [name, t] : nt::dtype_samples()) {
    CAPTURE(name);
    const std::string path = dir.file(name + ".npy");
    ldm::data::write_npy(path, t);
    const std::string bytes = nt::slurp(path);
    REQUIRE(bytes.size() >= 16);
    CHECK(bytes.compare(0, 6, "\x93NUMPY") == 0);
    CHECK(bytes[6] == 1);  // format 1.0
    const std::size_t header_len = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8;
    CHECK((10 + header_len) % 64 == 0);  // data aligned as numpy aligns it
    CHECK(bytes[10 + header_len - 1] == '\n');
    const auto back = ldm::data::read_npy(path);
    CHECK(nt::same_bits(back, t));
    CHECK(back.is_contiguous());
  }
  // Non-contiguous input is written in C order.
  auto base = torch::arange(12, torch::kInt32).reshape({3, 4});
  CHECK(nt::same_bits(ldm::data::npy_decode(ldm::data::npy_encode(base.t()), "mem"), base.t().contiguous()));
  CHECK(nt::error_of([] { ldm::data::npy_encode(torch::zeros({2}, torch::kBFloat16)); }).find("BFloat16") !=
        std::string::npos);
}

TEST_CASE("npy: corrupt, truncated and unsupported .npy data are errors naming the source") {
  namespace nt = npy_test;
  const std::string good = ldm::data::npy_encode(torch::arange(6, torch::kFloat32));
  auto err = [](const std::string& bytes) { return nt::error_of([&] { ldm::data::npy_decode(bytes, "thing.npy"); }); };
  CHECK(err("hello").find("thing.npy: not a .npy file") == 0);
  CHECK(err(good.substr(0, good.size() - 1)).find("thing.npy: truncated data") == 0);
  CHECK(err(good + "x").find("thing.npy: trailing bytes") == 0);
  CHECK(err(good.substr(0, 20)).find("thing.npy: truncated .npy header") == 0);
  std::string v9 = good;
  v9[6] = 9;
  CHECK(err(v9).find("format version 9.0") != std::string::npos);
  auto with_header = [&](std::string header) {
    std::string s = good.substr(0, 8);
    s.push_back(static_cast<char>(header.size() & 0xff));
    s.push_back(static_cast<char>(header.size() >> 8));
    return s + header;
  };
  CHECK(err(with_header("{'descr': '<c8', 'fortran_order': False, 'shape': (0,), }")).find("'<c8' is not supported") !=
        std::string::npos);
  CHECK(err(with_header("{'descr': '>f4', 'fortran_order': False, 'shape': (0,), }")).find("big-endian") !=
        std::string::npos);
  CHECK(err(with_header("{'descr': '<f4', 'fortran_order': True, 'shape': (0,), }")).find("fortran_order") !=
        std::string::npos);
  CHECK(err(with_header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (0,), }")).find("structured") !=
        std::string::npos);
  CHECK(err(with_header("{'descr': '<f4', 'shape': (0,), }")).find("must have the keys") != std::string::npos);
  CHECK(err(with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }")).find("bad .npy header") !=
        std::string::npos);
  // A valid hand-written header: the one-byte types accept any byte-order character, `=` is native.
  CHECK(
      ldm::data::npy_decode(with_header("{'descr': '=f4', 'fortran_order': False, 'shape': (0, 2), }"), "m").sizes() ==
      torch::IntArrayRef({0, 2}));
  CHECK_THROWS_AS(ldm::data::read_npy("/nonexistent/dir/a.npy"), ldm::DataError);
}

TEST_CASE("npy: files written by numpy (formats 1.0, 2.0, 3.0, every dtype) read with exact values") {
  namespace nt = npy_test;
  NPY_TEST_REQUIRE_NUMPY();
  nt::TempDir dir("ldm-npy-numpy");
  const std::string script = R"PY(
import os, sys
import numpy as np
d = sys.argv[1]
a = (np.arange(24, dtype='<f4').reshape(2, 3, 4) * 0.5 - 3).astype('<f4')
for v in [(1, 0), (2, 0), (3, 0)]:
    with open(os.path.join(d, 'v%d.npy' % v[0]), 'wb') as f:
        np.lib.format.write_array(f, a, version=v)
np.save(os.path.join(d, 'f8.npy'), np.array([1/3, -2.5e-308, 1.7e308, np.inf]))
np.save(os.path.join(d, 'f2.npy'), np.array([0.099975586, -65504.0, 6e-8, 1.0], dtype='<f2').reshape(1, 2, 2))
np.save(os.path.join(d, 'i8.npy'), np.array([-2**63, -1, 2**63 - 1], dtype='<i8'))
np.save(os.path.join(d, 'i4.npy'), np.array([-2**31, 0, 2**31 - 1], dtype='<i4').reshape(3, 1))
np.save(os.path.join(d, 'u1.npy'), np.array([0, 255, 7], dtype='u1'))
np.save(os.path.join(d, 'b1.npy'), np.array([[True, False], [True, True]]))
np.save(os.path.join(d, 'strided.npy'), np.arange(12, dtype='<i4').reshape(3, 4)[:, ::2])
np.save(os.path.join(d, 'scalar.npy'), np.float32(2.25))
np.save(os.path.join(d, 'fortran.npy'), np.asfortranarray(np.ones((2, 3), dtype='<f4')))
np.save(os.path.join(d, 'big.npy'), np.ones(3, dtype='>f4'))
)PY";
  const std::string failure = nt::run_numpy(dir, script);
  REQUIRE_MESSAGE(failure.empty(), failure);
  const auto a = torch::arange(24, torch::kFloat32).reshape({2, 3, 4}) * 0.5 - 3;
  for (int v : {1, 2, 3}) {
    CAPTURE(v);
    CHECK(nt::same_bits(ldm::data::read_npy(dir.file("v" + std::to_string(v) + ".npy")), a));
  }
  const auto samples = nt::dtype_samples();
  for (const char* name : {"f8", "f2", "i8", "i4", "u1", "b1", "scalar"}) {
    CAPTURE(name);
    CHECK(nt::same_bits(ldm::data::read_npy(dir.file(std::string(name) + ".npy")), samples.at(name)));
  }
  CHECK(nt::same_bits(ldm::data::read_npy(dir.file("strided.npy")),
                      torch::arange(12, torch::kInt32).reshape({3, 4}).slice(1, 0, 4, 2).contiguous()));
  const std::string fortran = nt::error_of([&] { ldm::data::read_npy(dir.file("fortran.npy")); });
  CHECK(fortran.find(dir.file("fortran.npy")) == 0);
  CHECK(fortran.find("fortran_order is True") != std::string::npos);
  CHECK(nt::error_of([&] { ldm::data::read_npy(dir.file("big.npy")); }).find("big-endian") != std::string::npos);
}

TEST_CASE("npz: archives written by numpy.savez and numpy.savez_compressed read back with exact values") {
  namespace nt = npy_test;
  NPY_TEST_REQUIRE_NUMPY();
  nt::TempDir dir("ldm-npz-numpy");
  const std::string script = R"PY(
import os, sys
import numpy as np
d = sys.argv[1]
arrays = dict(
    x=(np.arange(2 * 3 * 4 * 4, dtype='<f4').reshape(2, 3, 4, 4) / 7).astype('<f4'),
    t=np.array([0.0, 999.0], dtype='<f4'),
    y=np.array([3, 10], dtype='<i8'),
    mask=np.array([[True, False, True]]),
    half=np.array([1.5, -2.0], dtype='<f2'),
    wide=np.array([1 / 3], dtype='<f8'),
    counts=np.array([7, -7], dtype='<i4'),
    bytes=np.array([0, 200], dtype='u1'),
)
np.savez(os.path.join(d, 'stored.npz'), np.array([1.0, 2.0]), **arrays)
np.savez_compressed(os.path.join(d, 'deflated.npz'), **arrays)
)PY";
  const std::string failure = nt::run_numpy(dir, script);
  REQUIRE_MESSAGE(failure.empty(), failure);
  nt::NpzMap expected;
  expected["x"] = (torch::arange(2 * 3 * 4 * 4, torch::kFloat64).reshape({2, 3, 4, 4}) / 7).to(torch::kFloat32);
  expected["t"] = torch::tensor({0.0, 999.0}, torch::kFloat32);
  expected["y"] = torch::tensor({3, 10}, torch::kInt64);
  expected["mask"] = torch::tensor({true, false, true}, torch::kBool).reshape({1, 3});
  expected["half"] = torch::tensor({1.5, -2.0}, torch::kFloat16);
  expected["wide"] = torch::tensor({1.0 / 3.0}, torch::kFloat64);
  expected["counts"] = torch::tensor({7, -7}, torch::kInt32);
  expected["bytes"] = torch::tensor({0, 200}, torch::kUInt8);
  for (const char* file : {"stored.npz", "deflated.npz"}) {
    CAPTURE(file);
    const nt::NpzMap got = ldm::data::read_npz(dir.file(file));
    std::set<std::string> keys;
    for (const auto& kv : got) keys.insert(kv.first);
    std::set<std::string> want;
    for (const auto& kv : expected) want.insert(kv.first);
    if (std::string(file) == "stored.npz") want.insert("arr_0");  // positional arrays, as numpy names them
    CHECK(keys == want);
    for (const auto& [key, t] : expected) {
      CAPTURE(key);
      REQUIRE(got.count(key));
      CHECK(nt::same_bits(got.at(key), t));
    }
  }
  // Truncated in the middle: the central directory is gone.
  const std::string bytes = nt::slurp(dir.file("deflated.npz"));
  nt::spit(dir.file("truncated.npz"), bytes.substr(0, bytes.size() / 2));
  const std::string msg = nt::error_of([&] { ldm::data::read_npz(dir.file("truncated.npz")); });
  CHECK(msg.find(dir.file("truncated.npz")) == 0);
}

TEST_CASE("npz: write_npz (stored and deflated) round-trips and numpy reads what it writes") {
  namespace nt = npy_test;
  nt::TempDir dir("ldm-npz-write");
  const nt::NpzMap samples = nt::dtype_samples();
  for (bool compress : {false, true}) {
    CAPTURE(compress);
    const std::string path = dir.file(compress ? "deflated.npz" : "stored.npz");
    ldm::data::write_npz(path, samples, compress);
    const nt::NpzMap back = ldm::data::read_npz(path);
    REQUIRE(back.size() == samples.size());
    for (const auto& [key, t] : samples) {
      CAPTURE(key);
      REQUIRE(back.count(key));
      CHECK(nt::same_bits(back.at(key), t));
    }
  }
  CHECK(nt::slurp(dir.file("deflated.npz")).size() < nt::slurp(dir.file("stored.npz")).size());
  NPY_TEST_REQUIRE_NUMPY();
  const std::string script = R"PY(
import os, sys
import numpy as np
d = sys.argv[1]
for name in ['stored.npz', 'deflated.npz']:
    z = np.load(os.path.join(d, name))
    assert sorted(z.files) == sorted(['f4', 'f8', 'f2', 'i8', 'i4', 'i2', 'i1', 'u1', 'b1', 'scalar', 'empty']), z.files
    assert z['f4'].dtype == np.float32 and z['f4'].shape == (2, 3)
    assert z['f4'][0, 0] == 0.5 and np.signbit(z['f4'][0, 1]) and np.isnan(z['f4'][1, 2]), z['f4']
    assert z['i8'].tolist() == [-2**63, -1, 2**63 - 1]
    assert z['u1'].tolist() == [0, 255, 7] and z['i1'].tolist() == [-128, 127, 0]
    assert z['b1'].dtype == np.bool_ and z['b1'].tolist() == [[True, False], [True, True]]
    assert z['f2'].dtype == np.float16 and z['f2'][0, 0, 1] == np.float16(-65504.0)
    assert z['scalar'].shape == () and z['scalar'] == 2.25
    assert z['empty'].shape == (0, 3)
print('ok')
)PY";
  const std::string failure = nt::run_numpy(dir, script);
  CHECK_MESSAGE(failure.empty(), failure);
}

TEST_CASE("npz: missing, non-zip, truncated and corrupt archives are errors naming the file (and member)") {
  namespace nt = npy_test;
  nt::TempDir dir("ldm-npz-bad");
  const std::string stored = dir.file("stored.npz"), deflated = dir.file("deflated.npz");
  nt::NpzMap m;
  m["x"] = torch::arange(4096, torch::kFloat32);
  m["y"] = torch::arange(100, torch::kInt64);
  ldm::data::write_npz(stored, m, false);
  ldm::data::write_npz(deflated, m, true);
  auto err = [](const std::string& path) { return nt::error_of([&] { ldm::data::read_npz(path); }); };

  CHECK(err(dir.file("missing.npz")).find(dir.file("missing.npz") + ": cannot open") == 0);
  nt::spit(dir.file("text.npz"), "this is not a zip archive at all, just some text");
  CHECK(err(dir.file("text.npz")).find(dir.file("text.npz") + ": not a readable .npz") == 0);

  const std::string bytes = nt::slurp(stored);
  for (std::size_t keep : {bytes.size() - 10, bytes.size() / 2, std::size_t{30}}) {
    CAPTURE(keep);
    nt::spit(dir.file("cut.npz"), bytes.substr(0, keep));
    CHECK(err(dir.file("cut.npz")).find(dir.file("cut.npz") + ": ") == 0);
  }

  // One flipped bit in a stored member's data: the CRC check names the member.
  std::string flipped = bytes;
  const std::size_t data = flipped.find("\x93NUMPY");
  REQUIRE(data != std::string::npos);
  flipped[data + 1000] ^= 0x10;
  nt::spit(dir.file("flipped.npz"), flipped);
  const std::string crc = err(dir.file("flipped.npz"));
  CHECK(crc.find(dir.file("flipped.npz") + ": member 'x.npy'") == 0);
  MESSAGE("flipped stored member: ", crc);

  // Damaged deflate stream: inflate or the CRC check fails, naming the member.
  std::string damaged = nt::slurp(deflated);
  const std::size_t name = damaged.find("x.npy");
  REQUIRE(name != std::string::npos);
  for (std::size_t i = name + 40; i < name + 60; ++i) damaged[i] = static_cast<char>(damaged[i] ^ 0x5a);
  nt::spit(dir.file("damaged.npz"), damaged);
  const std::string inflate = err(dir.file("damaged.npz"));
  CHECK(inflate.find(dir.file("damaged.npz") + ": member 'x.npy'") == 0);
  MESSAGE("damaged deflated member: ", inflate);

  // An empty archive cannot be written (libzip would delete it).
  CHECK_THROWS_AS(ldm::data::write_npz(dir.file("none.npz"), nt::NpzMap()), ldm::Error);
}

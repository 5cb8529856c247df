#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>

#include "shared/core/checkpoint_dir.h"
#include "shared/core/error.h"
#include "shared/core/safe_file.h"
#include "tests/support/temp_dir.h"
#include "worker/io/checkpoint.h"
#include "worker/io/safetensors.h"

using namespace ldm::worker;
namespace fs = std::filesystem;

using ldm::testing::TempDir;

TEST_CASE("safetensors round trip keeps names, dtypes, shapes, values and metadata") {
  TensorMap in;
  in["w"] = torch::randn({3, 4});
  in["ids"] = torch::arange(5, torch::kInt64);
  in["flag"] = torch::tensor({true, false});
  in["empty"] = torch::zeros({0, 2});
  auto bytes = safetensors_encode(in, {{"format", "pt"}});
  // header length is little-endian and data starts 8-byte aligned
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(uint8_t(bytes[i])) << (8 * i);
  CHECK((8 + n) % 8 == 0);
  std::map<std::string, std::string> meta;
  auto out = safetensors_decode(bytes, "test", &meta);
  CHECK(meta.at("format") == "pt");
  REQUIRE(out.size() == in.size());
  for (auto& [k, v] : in) {
    CHECK((out.at(k).scalar_type() == v.scalar_type()));
    CHECK(torch::equal(out.at(k), v));
  }
}

TEST_CASE("safetensors decoding rejects truncated data and names the source") {
  TensorMap in;
  in["w"] = torch::randn({16});
  auto bytes = safetensors_encode(in);
  bytes.resize(bytes.size() - 4);
  try {
    safetensors_decode(bytes, "model.safetensors");
    FAIL("expected an error");
  } catch (const ldm::DataError& e) {
    CHECK(std::string(e.what()).find("model.safetensors") != std::string::npos);
  }
}

// A safetensors file whose header is `header` and whose data is `data` bytes of zeros.
std::string safetensors_with_header(const std::string& header, std::size_t data = 0) {
  std::string bytes;
  for (int i = 0; i < 8; ++i) bytes.push_back(static_cast<char>((header.size() >> (8 * i)) & 0xff));
  return bytes + header + std::string(data, '\0');
}

TEST_CASE("safetensors headers that declare huge, negative or malformed tensors are errors naming file and tensor") {
  const auto error = [](const std::string& header, std::size_t data = 0) {
    try {
      std::map<std::string, std::string> metadata;
      safetensors_decode(safetensors_with_header(header, data), "w.safetensors", &metadata);
    } catch (const ldm::DataError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  // 2^62 float32 elements: 2^64 bytes, no allocation attempted
  CHECK(error(R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})") ==
        "w.safetensors: tensor 'w': its shape needs more than 2^64 bytes");
  CHECK(error(R"({"w":{"dtype":"F32","shape":[65536,65536,65536],"data_offsets":[0,16]}})", 16)
            .find("tensor 'w' has data offsets inconsistent") != std::string::npos);
  CHECK(error(R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})", 16) ==
        "w.safetensors: tensor 'w' has a negative dimension -4");
  // Each field is checked for its type, and the error says which (no JSON library text).
  CHECK(error(R"({"w":{"dtype":"F32","shape":"4","data_offsets":[0,16]}})", 16) ==
        "w.safetensors: tensor 'w': 'shape' is not an array");
  CHECK(error(R"({"w":{"dtype":"F32","shape":[4]}})", 16) == "w.safetensors: tensor 'w': no 'data_offsets'");
  CHECK(error(R"({"w":{"dtype":"F32","shape":[4.5],"data_offsets":[0,16]}})", 16) ==
        "w.safetensors: tensor 'w': 'shape' holds 4.5, not a dimension");
  CHECK(error(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,-16]}})", 16) ==
        "w.safetensors: tensor 'w': 'data_offsets' is not a pair of byte offsets");
  CHECK(error(R"({"w":[1]})") ==
        "w.safetensors: tensor 'w': expected an object {dtype, shape, data_offsets}, got array");
  CHECK(error(R"({"w":{"dtype":"F8","shape":[4],"data_offsets":[0,4]}})", 4) ==
        "w.safetensors: tensor 'w': unsupported safetensors dtype 'F8'");
  CHECK(error(R"({"__metadata__":{"format":3}})") == "w.safetensors: __metadata__ 'format' is not a string");
  CHECK(error(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 16) == "no error");
}

TEST_CASE("checkpoint bundle is written atomically with a latest pointer and reads back") {
  TempDir tmp;
  CheckpointBundle b;
  b.manifest = {{"step", 42}, {"world_size", 2}};
  b.model["pos_embed"] = torch::randn({1, 4, 8});
  b.ema["pos_embed"] = torch::randn({1, 4, 8});
  b.optimizer["exp_avg"] = torch::randn({10});
  b.generators["rank0"] = torch::randint(0, 255, {16}, torch::kUInt8);
  const std::string ckpts = tmp.path() + "/checkpoints";
  auto dir = write_checkpoint(ckpts, b);
  CHECK(dir == ckpts + "/step-0000042");
  CHECK(ldm::read_file(ckpts + "/latest") == "step-0000042\n");
  for (const auto& e : fs::directory_iterator(ckpts))
    CHECK(e.path().filename().string().rfind(".tmp", 0) != 0);  // no temporary left behind
  auto back = read_checkpoint(ckpts);                           // through `latest`
  CHECK(back.manifest.at("step") == 42);
  CHECK(torch::equal(back.model.at("pos_embed"), b.model.at("pos_embed")));
  CHECK(torch::equal(back.ema.at("pos_embed"), b.ema.at("pos_embed")));
  CHECK(torch::equal(back.generators.at("rank0"), b.generators.at("rank0")));
  b.manifest["step"] = 50;
  write_checkpoint(ckpts, b);
  CHECK(read_checkpoint(ckpts).manifest.at("step") == 50);
  CHECK(fs::exists(ckpts + "/step-0000042"));  // earlier bundles stay
}

TEST_CASE("a directory without manifest is not taken for a checkpoint") {
  TempDir tmp;
  ldm::make_dirs(tmp.path() + "/step-0000001");
  CHECK_THROWS_AS(read_checkpoint(tmp.path() + "/step-0000001"), ldm::DataError);
}

TEST_CASE("a bundle the disk cannot hold fails before anything is written, naming the sizes") {
  TempDir tmp("ldm-ckpt-space");
  CHECK_NOTHROW(check_free_space(tmp.path(), 1024, "a small bundle"));
  try {
    check_free_space(tmp.path(), std::uint64_t{1} << 62, "checkpoint bundle step-0000010");
    FAIL("expected a DataError");
  } catch (const ldm::DataError& e) {
    const std::string what = e.what();
    CHECK(what.find(tmp.path() + ": not enough free space for checkpoint bundle step-0000010") == 0);
    CHECK(what.find("MiB are available; nothing was written") != std::string::npos);
  }
  CHECK(std::filesystem::is_empty(tmp.path()));
}

namespace checkpoint_test {
CheckpointBundle tiny_bundle(int64_t step, float value) {
  CheckpointBundle b;
  b.manifest = {{"step", step}};
  b.model["w"] = torch::full({4}, value);
  b.ema["w"] = torch::full({4}, value);
  return b;
}
std::vector<int64_t> steps_on_disk(const std::string& ckpts) {
  std::vector<int64_t> out;
  for (const auto& b : ldm::list_bundles(ckpts)) out.push_back(b.step);
  return out;
}
}  // namespace checkpoint_test

TEST_CASE("reading a checkpoints directory takes its newest complete bundle, even when `latest` lags behind") {
  using checkpoint_test::tiny_bundle;
  TempDir tmp;
  const std::string ckpts = tmp.path() + "/checkpoints";
  write_checkpoint(ckpts, tiny_bundle(10, 1));
  write_checkpoint(ckpts, tiny_bundle(20, 2));
  ldm::write_file_atomic(ckpts + "/latest", "step-0000010\n");  // killed before `latest` moved
  ldm::make_dirs(ckpts + "/.tmp-step-0000030");                 // killed while writing step 30
  CHECK(read_checkpoint(ckpts).manifest.at("step") == 20);
  CHECK(read_checkpoint(tmp.path()).manifest.at("step") == 20);  // a run directory too
  ldm::write_file_atomic(ckpts + "/latest", "step-0000099\n");   // names nothing
  CHECK(read_checkpoint(ckpts).manifest.at("step") == 20);
}

TEST_CASE("re-writing a bundle of the same step replaces it whole") {
  using checkpoint_test::tiny_bundle;
  TempDir tmp;
  const std::string ckpts = tmp.path() + "/checkpoints";
  write_checkpoint(ckpts, tiny_bundle(10, 1));
  write_checkpoint(ckpts, tiny_bundle(10, 7));
  CHECK(read_checkpoint(ckpts + "/step-0000010").model.at("w")[0].item<float>() == 7);
  for (const auto& e : fs::directory_iterator(ckpts)) CHECK(e.path().filename().string()[0] != '.');
}

TEST_CASE("keep_checkpoints keeps the newest K and the protected steps, and removes nothing at K = 0") {
  using checkpoint_test::steps_on_disk;
  using checkpoint_test::tiny_bundle;
  TempDir tmp;
  const std::string ckpts = tmp.path() + "/checkpoints";
  for (int64_t step : {0, 10, 20, 30, 40, 50}) write_checkpoint(ckpts, tiny_bundle(step, float(step)));
  CHECK(prune_checkpoints(ckpts, 0, {}).empty());
  CHECK(steps_on_disk(ckpts) == std::vector<int64_t>{0, 10, 20, 30, 40, 50});
  ldm::make_dirs(ckpts + "/.del-step-0000005");  // a removal a kill interrupted
  const auto removed = prune_checkpoints(ckpts, 2, /*protected_steps=*/{0, 20});
  CHECK(removed == std::vector<int64_t>{10, 30});
  CHECK(steps_on_disk(ckpts) == std::vector<int64_t>{0, 20, 40, 50});
  CHECK_FALSE(fs::exists(ckpts + "/.del-step-0000005"));
  CHECK(read_checkpoint(ckpts + "/step-0000020").model.at("w")[0].item<float>() == 20);
  CHECK(remove_checkpoints_after(ckpts, 20) == std::vector<int64_t>{40, 50});
  CHECK(steps_on_disk(ckpts) == std::vector<int64_t>{0, 20});
}

#include <torch/torch.h>
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>

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

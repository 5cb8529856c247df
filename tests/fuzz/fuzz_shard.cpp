// Shards (datasets/format/): the first byte picks the reader.
//  0, 1: the rest is one record body for decode_record (image / latent payload);
//  else: the rest is a shard file, opened with ShardReader and every record read (at most 4096),
//        then checked by verify_directory, which must report problems rather than throw.
#include "datasets/format/dataset_tools.h"
#include "datasets/format/shard.h"
#include "tests/fuzz/fuzz_support.h"

using namespace ldm;
using namespace ldm::data;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::Input in(data, size);
  const std::uint8_t mode = in.byte();
  if (mode < 2) {
    const std::string body = in.rest();
    const PayloadKind kind = mode == 0 ? PayloadKind::ImageU8 : PayloadKind::LatentF32;
    fuzz::accepts("fuzz-record", [&] { decode_record(body.data(), body.size(), kind, "fuzz-record"); });
    return 0;
  }
  const std::string path = fuzz::write_scratch("fuzz-00000.ldms", in.rest());
  fuzz::accepts(path, [&] {
    ShardReader reader(path);
    for (std::size_t i = 0; i < reader.size() && i < 4096; ++i) fuzz::accepts(path, [&] { reader.read(i); });
  });
  VerifyReport report;
  if (!fuzz::accepts("", [&] { report = verify_directory(fuzz::scratch_dir()); }))
    fuzz::finding("verify_directory threw instead of reporting a problem");
  for (const VerifyProblem& p : report.problems)
    if (p.text.empty()) fuzz::finding("verify reported a problem without saying what it is");
  return 0;
}

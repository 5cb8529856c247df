// The WebDataset tar walker (read_webdataset_tar, datasets/import/importers.h) over a tar file:
// plain or compressed, any member names (".." included: they are keys, never paths), any
// declared sizes. It returns what it could read and, on a bad archive, an error naming the file.
#include "datasets/import/importers.h"
#include "tests/fuzz/fuzz_support.h"

using namespace ldm;
using namespace ldm::data;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path =
      fuzz::write_scratch("fuzz-00000.tar", std::string(reinterpret_cast<const char*>(data), size));
  std::string error;
  std::vector<WdsSample> samples;
  if (!fuzz::accepts("", [&] { samples = read_webdataset_tar(path, error); }))
    fuzz::finding("read_webdataset_tar threw instead of reporting the error");
  if (!error.empty() && error.find(path) == std::string::npos)
    fuzz::finding("the tar error does not name the file: " + error);
  for (const WdsSample& s : samples)
    if (s.has_image && s.image_member.empty()) fuzz::finding("an image without its member name");
  return 0;
}

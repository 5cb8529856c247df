// .npy and .npz (datasets/tensor/npy.h; LibTorch: accepted arrays become tensors). The first byte
// picks the reader: 0 npy_decode, 1 npy_decode_strings, else the rest is an .npz file for
// npz_keys, read_npz and read_npz_strings of its first member.
#include <torch/torch.h>

#include "datasets/tensor/npy.h"
#include "tests/fuzz/fuzz_support.h"

using namespace ldm;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool once = (at::set_num_threads(1), true);
  (void)once;
  fuzz::Input in(data, size);
  const std::uint8_t mode = in.byte();
  const std::string bytes = in.rest();
  const std::string source = "fuzz.npy";
  if (mode == 0) {
    at::Tensor t;
    if (fuzz::accepts(source, [&] { t = data::npy_decode(bytes, source); }) &&
        static_cast<std::size_t>(t.numel() * t.element_size()) > bytes.size())
      fuzz::finding("a tensor larger than the file it came from");
  } else if (mode == 1) {
    fuzz::accepts(source, [&] { data::npy_decode_strings(bytes, source); });
  } else {
    const std::string path = fuzz::write_scratch("fuzz.npz", bytes);
    std::vector<std::string> keys;
    if (!fuzz::accepts(path, [&] { keys = data::npz_keys(path); })) return 0;
    fuzz::accepts(path, [&] { data::read_npz(path); });
    if (!keys.empty()) fuzz::accepts(path, [&] { data::read_npz_strings(path, keys.front()); });
  }
  return 0;
}

// The .pt reader (worker/io/pt_reader.h: torch.save's zip archive and its pickle, run by our own
// restricted unpickler, never Python's): the first byte picks the key asked for ("", "state_dict",
// "ema", "model"), the rest is the file. (Accepted tensors may be larger than the file: a saved
// expand() has stride 0, and is copied out contiguous; libFuzzer's malloc limit bounds them.)
#include <torch/torch.h>

#include "tests/fuzz/fuzz_support.h"
#include "worker/io/pt_reader.h"

using namespace ldm;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool once = (at::set_num_threads(1), true);
  (void)once;
  fuzz::Input in(data, size);
  static const char* const kKeys[] = {"", "state_dict", "ema", "model"};
  const std::string key = kKeys[in.byte() % 4];
  const std::string path = fuzz::write_scratch("fuzz.pt", in.rest());
  std::map<std::string, at::Tensor> tensors;
  if (fuzz::accepts(path, [&] { tensors = worker::load_pt_state_dict(path, key); }))
    for (const auto& [name, t] : tensors)
      if (!t.defined()) fuzz::finding("an undefined tensor for '" + name + "'");
  return 0;
}

// safetensors (worker/io/safetensors.h; LibTorch: accepted tensors are allocated and filled).
// An accepted file must round-trip: encoding what was decoded and decoding that gives the same
// tensors, bit for bit.
#include <torch/torch.h>

#include "tests/fuzz/fuzz_support.h"
#include "worker/io/safetensors.h"

using namespace ldm;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool once = (at::set_num_threads(1), true);
  (void)once;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::string source = "fuzz.safetensors";
  worker::TensorMap tensors;
  std::map<std::string, std::string> metadata;
  if (!fuzz::accepts(source, [&] { tensors = worker::safetensors_decode(bytes, source, &metadata); })) return 0;
  worker::TensorMap back;
  if (!fuzz::accepts(
          "", [&] { back = worker::safetensors_decode(worker::safetensors_encode(tensors, metadata), "again"); }))
    fuzz::finding("re-encoding an accepted file gives one the reader refuses");
  if (back.size() != tensors.size()) fuzz::finding("the round trip changed the tensor count");
  for (const auto& [name, t] : tensors) {
    const auto it = back.find(name);
    if (it == back.end() || it->second.scalar_type() != t.scalar_type() || !it->second.sizes().equals(t.sizes()) ||
        (t.numel() > 0 &&  // an empty tensor's data pointer may be null
         std::memcmp(it->second.data_ptr(), t.data_ptr(), t.numel() * t.element_size()) != 0))
      fuzz::finding("the round trip changed tensor '" + name + "'");
  }
  return 0;
}

// Reading and writing the safetensors format (8-byte little-endian header length, JSON header
// {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, raw little-endian data):
// readable from Python (`safetensors.torch.load_file`) and any LibTorch version.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

namespace ldm::worker {

using TensorMap = std::map<std::string, torch::Tensor>;

// Serialises to bytes (tensors made contiguous, CPU). Supported dtypes: F32 F64 F16 BF16 I64 I32 U8 BOOL.
std::string safetensors_encode(const TensorMap& tensors, const std::map<std::string, std::string>& metadata = {});
// Parses bytes; `source` names the file in errors. Tensors are copies (own their memory).
TensorMap safetensors_decode(const std::string& bytes, const std::string& source,
                             std::map<std::string, std::string>* metadata = nullptr);

}  // namespace ldm::worker

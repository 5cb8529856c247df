#include "worker/io/safetensors.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>

#include "shared/core/error.h"

namespace ldm::worker {
namespace {

struct DtypeName {
  torch::ScalarType type;
  const char* name;
};
const DtypeName kDtypes[] = {
    {torch::kFloat32, "F32"}, {torch::kFloat64, "F64"}, {torch::kFloat16, "F16"}, {torch::kBFloat16, "BF16"},
    {torch::kInt64, "I64"},   {torch::kInt32, "I32"},   {torch::kUInt8, "U8"},    {torch::kBool, "BOOL"},
};

const char* dtype_name(torch::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.name;
  throw Error(std::string("safetensors: unsupported dtype ") + c10::toString(t));
}

torch::ScalarType dtype_from(const std::string& name, const std::string& source) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.type;
  throw DataError(source + ": unsupported safetensors dtype '" + name + "'");
}

}  // namespace

std::string safetensors_encode(const TensorMap& tensors, const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    const std::uint64_t bytes = c.numel() * c.element_size();
    header[name] = {
        {"dtype", dtype_name(c.scalar_type())}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(c);
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // pad so the data starts 8-byte aligned
  std::string out(8, '\0');
  const std::uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += h;
  out.reserve(out.size() + offset);
  for (const auto& c : data) out.append(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  return out;
}

TensorMap safetensors_decode(const std::string& bytes, const std::string& source,
                             std::map<std::string, std::string>* metadata) {
  if (bytes.size() < 8) throw DataError(source + ": too short for a safetensors file");
  std::uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= std::uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  if (n > bytes.size() - 8)
    throw DataError(source + ": safetensors header length " + std::to_string(n) + " exceeds the file");
  auto header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + n, nullptr, false);
  if (header.is_discarded() || !header.is_object())
    throw DataError(source + ": safetensors header is not a JSON object");
  const std::uint64_t data_start = 8 + n, data_size = bytes.size() - data_start;
  TensorMap out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string where = source + ": tensor '" + it.key() + "'";
    const auto& e = it.value();
    if (it.key() == "__metadata__") {
      if (!e.is_object()) throw DataError(source + ": __metadata__ is not a JSON object");
      for (auto m = e.begin(); m != e.end(); ++m)
        if (!m.value().is_string()) throw DataError(source + ": __metadata__ '" + m.key() + "' is not a string");
      if (metadata) *metadata = e.get<std::map<std::string, std::string>>();
      continue;
    }
    // Every field checked for its type here, so a malformed entry is named rather than a JSON error.
    if (!e.is_object())
      throw DataError(where + ": expected an object {dtype, shape, data_offsets}, got " + e.type_name());
    const auto field = [&](const char* key) -> const nlohmann::json& {
      const auto f = e.find(key);
      if (f == e.end()) throw DataError(where + ": no '" + key + "'");
      return *f;
    };
    const auto& dtype = field("dtype");
    if (!dtype.is_string()) throw DataError(where + ": 'dtype' is not a string");
    const auto type = dtype_from(dtype.get<std::string>(), where);
    const auto& shape_json = field("shape");
    if (!shape_json.is_array()) throw DataError(where + ": 'shape' is not an array");
    std::vector<int64_t> shape;
    for (const auto& d : shape_json) {
      if (!d.is_number_integer() || (d.is_number_unsigned() && d.get<std::uint64_t>() > INT64_MAX))
        throw DataError(where + ": 'shape' holds " + d.dump() + ", not a dimension");
      shape.push_back(d.get<int64_t>());
    }
    const auto& offs_json = field("data_offsets");
    if (!offs_json.is_array() || offs_json.size() != 2 || !offs_json[0].is_number_unsigned() ||
        !offs_json[1].is_number_unsigned())
      throw DataError(where + ": 'data_offsets' is not a pair of byte offsets");
    const std::uint64_t begin = offs_json[0].get<std::uint64_t>(), end = offs_json[1].get<std::uint64_t>();
    // The size the shape declares, checked before anything is allocated: a header of a few bytes
    // can declare any shape.
    std::uint64_t want = static_cast<std::uint64_t>(c10::elementSize(type));
    for (int64_t d : shape) {
      if (d < 0) throw DataError(where + " has a negative dimension " + std::to_string(d));
      if (__builtin_mul_overflow(want, static_cast<std::uint64_t>(d), &want))
        throw DataError(where + ": its shape needs more than 2^64 bytes");
    }
    if (end < begin || end > data_size || end - begin != want)
      throw DataError(where + " has data offsets inconsistent with its shape or the file size");
    auto t = torch::empty(shape, torch::TensorOptions().dtype(type));
    if (want) std::memcpy(t.data_ptr(), bytes.data() + data_start + begin, want);
    out[it.key()] = t;
  }
  return out;
}

}  // namespace ldm::worker

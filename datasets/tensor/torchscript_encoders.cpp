#include "datasets/tensor/torchscript_encoders.h"

#include <dlfcn.h>
#include <sentencepiece_processor.h>  // the class declarations only: see SentencePiece below
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <new>
#include <sstream>

#include "shared/core/error.h"
#include "worker/torch_compat.h"

namespace ldm::data {

namespace tsenc {

std::string fmt_g6(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

void require_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw DataError(what + " " + path + ": no such file");
  if (!std::filesystem::is_regular_file(path, ec)) throw DataError(what + " " + path + ": not a regular file");
}

// torch::jit::load with errors that name the file and say what was expected.
torch::jit::Module load_module(const std::string& path, const std::string& what, const std::string& exporter,
                               const torch::Device& device) {
  require_file(path, what);
  torch::jit::Module m;
  try {
    m = torch::jit::load(path, device);
  } catch (const std::exception& e) {
    std::string msg = torch_compat::error_text(e);
    if (auto nl = msg.find('\n'); nl != std::string::npos) msg.resize(nl);
    throw DataError(what + " " + path + ": not a TorchScript archive that this LibTorch (" +
                    std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + ") can load (" +
                    msg + "); export the model with " + exporter + " under Debian's python3-torch");
  }
  m.eval();
  return m;
}

void require_method(const torch::jit::Module& m, const std::string& path, const std::string& what,
                    const std::string& name, const std::string& signature) {
  if (!m.find_method(name))
    throw DataError(what + " " + path + ": the TorchScript module has no method '" + name + "' (expected " + signature +
                    ")");
}

c10::IValue require_attr(const torch::jit::Module& m, const std::string& path, const std::string& what,
                         const std::string& name) {
  if (!m.hasattr(name)) throw DataError(what + " " + path + ": the TorchScript module has no attribute '" + name + "'");
  return m.attr(name);
}

double attr_double(const torch::jit::Module& m, const std::string& path, const std::string& what,
                   const std::string& name) {
  auto v = require_attr(m, path, what, name);
  if (v.isDouble()) return v.toDouble();
  if (v.isInt()) return static_cast<double>(v.toInt());
  throw DataError(what + " " + path + ": attribute '" + name + "' is a " + v.tagKind() + ", expected a float");
}

std::int64_t attr_int(const torch::jit::Module& m, const std::string& path, const std::string& what,
                      const std::string& name) {
  auto v = require_attr(m, path, what, name);
  if (v.isInt()) return v.toInt();
  throw DataError(what + " " + path + ": attribute '" + name + "' is a " + v.tagKind() + ", expected an int");
}

std::string shape_str(at::IntArrayRef s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

}  // namespace tsenc

// ---- autoencoder --------------------------------------------------------------------------------

namespace tsenc {
constexpr const char* kVaeWhat = "TorchScript autoencoder";
constexpr const char* kVaeExporter = "tools/export/export_vae.py";
}  // namespace tsenc

struct TorchScriptAutoencoder::Impl {
  std::string path, sha;
  torch::Device device{torch::kCPU};
  torch::jit::Module module;
  double scale = 1.0, shift = 0.0;
  int latent_channels = 0, factor = 0, batch_size = 16;

  // Runs `method` on `input` chunked into batch_size rows, checking every chunk's output shape.
  at::Tensor run_chunked(const char* method, const at::Tensor& input,
                         const std::function<std::vector<int64_t>(int64_t rows)>& expected) const {
    torch::NoGradGuard no_grad;
    const auto out_device = input.device();
    const int64_t n = input.size(0);
    if (n == 0) return torch::zeros(expected(0), torch::TensorOptions().dtype(torch::kFloat32).device(out_device));
    auto x = input.to(device, torch::kFloat32);
    auto fn = module.get_method(method);
    std::vector<at::Tensor> outs;
    for (int64_t start = 0; start < n; start += batch_size) {
      const int64_t rows = std::min<int64_t>(batch_size, n - start);
      c10::IValue result;
      try {
        result = fn({x.narrow(0, start, rows).contiguous()});
      } catch (const std::exception& e) {
        throw DataError(std::string(tsenc::kVaeWhat) + " " + path + ": " + method + "() failed on a batch of shape " +
                        tsenc::shape_str(x.narrow(0, start, rows).sizes()) + ": " + torch_compat::error_text(e));
      }
      if (!result.isTensor())
        throw DataError(std::string(tsenc::kVaeWhat) + " " + path + ": " + method + "() returned a " +
                        result.tagKind() + ", expected a tensor");
      auto y = result.toTensor();
      const auto want = expected(rows);
      if (y.sizes() != at::IntArrayRef(want))
        throw DataError(std::string(tsenc::kVaeWhat) + " " + path + ": " + method + "() returned shape " +
                        tsenc::shape_str(y.sizes()) + ", expected " + tsenc::shape_str(want));
      outs.push_back(y.to(torch::kFloat32));
    }
    auto y = outs.size() == 1 ? outs[0] : torch::cat(outs, 0);
    return y.to(out_device);
  }
};

TorchScriptAutoencoder::TorchScriptAutoencoder(const std::string& path, double scale, double shift, int batch_size)
    : TorchScriptAutoencoder(path, TorchScriptAutoencoderOptions{scale, shift, batch_size, "cpu"}) {}

TorchScriptAutoencoder::TorchScriptAutoencoder(const std::string& path, TorchScriptAutoencoderOptions options)
    : impl_(std::make_unique<Impl>()) {
  auto& d = *impl_;
  d.path = path;
  if (options.batch_size < 1)
    throw Error(std::string(tsenc::kVaeWhat) + " " + path + ": batch size must be >= 1, got " +
                std::to_string(options.batch_size));
  d.batch_size = options.batch_size;
  try {
    d.device = torch::Device(options.device);
  } catch (const std::exception& e) {
    throw Error(std::string(tsenc::kVaeWhat) + " " + path + ": bad device '" + options.device +
                "': " + torch_compat::error_text(e));
  }
  tsenc::require_file(path, tsenc::kVaeWhat);
  d.sha = sha256_file_hex(path);
  d.module = tsenc::load_module(path, tsenc::kVaeWhat, tsenc::kVaeExporter, d.device);
  tsenc::require_method(d.module, path, tsenc::kVaeWhat, "encode", "encode(x: float [N,3,H,W]) -> raw latent mean");
  tsenc::require_method(d.module, path, tsenc::kVaeWhat, "decode", "decode(z: raw latent) -> images [N,3,H,W]");
  const double file_scale = tsenc::attr_double(d.module, path, tsenc::kVaeWhat, "scaling_factor");
  const double file_shift = tsenc::attr_double(d.module, path, tsenc::kVaeWhat, "shift_factor");
  const auto channels = tsenc::attr_int(d.module, path, tsenc::kVaeWhat, "latent_channels");
  const auto factor = tsenc::attr_int(d.module, path, tsenc::kVaeWhat, "downsampling_factor");
  if (channels < 1 || channels > 4096)
    throw DataError(std::string(tsenc::kVaeWhat) + " " + path + ": latent_channels " + std::to_string(channels) +
                    " is invalid");
  if (factor < 1 || factor > 1024)
    throw DataError(std::string(tsenc::kVaeWhat) + " " + path + ": downsampling_factor " + std::to_string(factor) +
                    " is invalid");
  d.latent_channels = static_cast<int>(channels);
  d.factor = static_cast<int>(factor);
  d.scale = std::isnan(options.scale) ? file_scale : options.scale;
  d.shift = std::isnan(options.shift) ? file_shift : options.shift;
  if (!std::isfinite(d.scale) || d.scale == 0.0)
    throw DataError(std::string(tsenc::kVaeWhat) + " " + path + ": the scale must be finite and non-zero, got " +
                    tsenc::fmt_g6(d.scale));
  if (!std::isfinite(d.shift))
    throw DataError(std::string(tsenc::kVaeWhat) + " " + path + ": the shift must be finite, got " +
                    tsenc::fmt_g6(d.shift));
}

TorchScriptAutoencoder::~TorchScriptAutoencoder() = default;

at::Tensor TorchScriptAutoencoder::encode(const at::Tensor& images) const {
  const auto& d = *impl_;
  const int64_t f = d.factor;
  if (images.dim() != 4 || images.size(1) != 3)
    throw Error(std::string(tsenc::kVaeWhat) + " " + d.path + ": encode expects images [N,3,H,W], got " +
                tsenc::shape_str(images.sizes()));
  const int64_t h = images.size(2), w = images.size(3);
  if (h % f || w % f)
    throw Error(std::string(tsenc::kVaeWhat) + " " + d.path + ": image " + std::to_string(h) + "x" + std::to_string(w) +
                " is not divisible by the downsampling factor " + std::to_string(f));
  const int64_t c = d.latent_channels;
  auto mean = d.run_chunked("encode", images, [&](int64_t rows) {
    return std::vector<int64_t>{rows, c, h / f, w / f};
  });
  return (mean - d.shift) * d.scale;
}

at::Tensor TorchScriptAutoencoder::decode(const at::Tensor& latents) const {
  const auto& d = *impl_;
  const int64_t f = d.factor;
  if (latents.dim() != 4 || latents.size(1) != d.latent_channels)
    throw Error(std::string(tsenc::kVaeWhat) + " " + d.path + ": decode expects latents [N," +
                std::to_string(d.latent_channels) + ",h,w], got " + tsenc::shape_str(latents.sizes()));
  const int64_t h = latents.size(2), w = latents.size(3);
  torch::NoGradGuard no_grad;
  auto raw = latents.to(torch::kFloat32) / d.scale + d.shift;
  return d.run_chunked("decode", raw, [&](int64_t rows) { return std::vector<int64_t>{rows, 3, h * f, w * f}; });
}

int TorchScriptAutoencoder::latent_channels() const { return impl_->latent_channels; }
int TorchScriptAutoencoder::downsampling_factor() const { return impl_->factor; }
double TorchScriptAutoencoder::scale() const { return impl_->scale; }
double TorchScriptAutoencoder::shift() const { return impl_->shift; }
const std::string& TorchScriptAutoencoder::path() const { return impl_->path; }
const std::string& TorchScriptAutoencoder::sha256() const { return impl_->sha; }
int TorchScriptAutoencoder::batch_size() const { return impl_->batch_size; }

std::string TorchScriptAutoencoder::identity() const {
  return "torchscript-vae:" + impl_->sha.substr(0, 16) + ":scale=" + tsenc::fmt_g6(impl_->scale) +
         ":shift=" + tsenc::fmt_g6(impl_->shift);
}

// ---- text encoder -------------------------------------------------------------------------------

namespace tsenc {

// SentencePiece, loaded with dlopen(RTLD_LOCAL | RTLD_DEEPBIND) instead of being linked.
//
// Debian's libsentencepiece.so.0 carries its own copy of protobuf-lite and exports those symbols.
// Linked into a program that also loads libprotobuf.so.32 (LibTorch needs it), the two copies
// interpose each other and the program crashes in libprotobuf's static initialisers before main().
// Loaded locally with deep binding, libsentencepiece resolves protobuf to its own copy and nobody
// else sees it. We then use the C++ API through the header's class declarations: every method we
// call on SentencePieceProcessor is virtual (reached through the object's vtable, no link-time
// symbol); the few non-virtual functions (the constructor, util::Status's destructor and
// ToString) are looked up with dlsym.
struct SentencePieceLib {
  void* handle = nullptr;
  void (*construct)(void* self) = nullptr;                      // SentencePieceProcessor::SentencePieceProcessor()
  void (*status_destroy)(void* self) = nullptr;                 // util::Status::~Status()
  std::string (*status_to_string)(const void* self) = nullptr;  // util::Status::ToString() const
  std::string error;

  static const SentencePieceLib& get() {
    static const SentencePieceLib lib = [] {
      SentencePieceLib l;
      const int flags = RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND;
      for (const char* name : {"libsentencepiece.so.0", "libsentencepiece.so"})
        if ((l.handle = ::dlopen(name, flags))) break;
      if (!l.handle) {
        const char* e = ::dlerror();
        l.error = std::string("cannot load libsentencepiece.so.0 (install Debian's libsentencepiece0): ") +
                  (e ? e : "dlopen failed");
        return l;
      }
      l.construct =
          reinterpret_cast<void (*)(void*)>(::dlsym(l.handle, "_ZN13sentencepiece22SentencePieceProcessorC1Ev"));
      l.status_destroy = reinterpret_cast<void (*)(void*)>(::dlsym(l.handle, "_ZN13sentencepiece4util6StatusD1Ev"));
      l.status_to_string = reinterpret_cast<std::string (*)(const void*)>(
          ::dlsym(l.handle, "_ZNK13sentencepiece4util6Status8ToStringB5cxx11Ev"));
      if (!l.construct || !l.status_destroy || !l.status_to_string)
        l.error = "libsentencepiece.so.0 lacks the expected C++ symbols (a SentencePiece other than 0.1.9x?)";
      return l;
    }();
    return lib;
  }
};

class SentencePiece {
 public:
  explicit SentencePiece(const std::string& model_path) : path_(model_path) {
    const auto& lib = SentencePieceLib::get();
    if (!lib.error.empty()) throw Error("SentencePiece tokenizer " + model_path + ": " + lib.error);
    void* mem = ::operator new(sizeof(sentencepiece::SentencePieceProcessor));
    lib.construct(mem);
    sp_ = static_cast<sentencepiece::SentencePieceProcessor*>(mem);
    const std::string err = status_error([&] { return sp_->Load(model_path); });
    if (!err.empty()) {
      delete sp_;
      throw DataError("SentencePiece tokenizer " + model_path + ": cannot load it: " + err);
    }
  }
  ~SentencePiece() { delete sp_; }  // virtual: the library's deleting destructor
  SentencePiece(const SentencePiece&) = delete;
  SentencePiece& operator=(const SentencePiece&) = delete;

  std::vector<int> encode(const std::string& text) const {
    std::vector<int> ids;
    const std::string err = status_error([&] { return sp_->Encode(text, &ids); });
    if (!err.empty()) throw DataError("SentencePiece tokenizer " + path_ + ": cannot encode a caption: " + err);
    return ids;
  }
  int eos_id() const { return sp_->eos_id(); }
  int pad_id() const { return sp_->pad_id(); }
  int size() const { return sp_->GetPieceSize(); }

 private:
  // Runs `call` (which returns a util::Status) and turns the status into "" (ok) or its message.
  // The status is built in place (guaranteed copy elision) and destroyed through dlsym, so no
  // reference to the library's non-virtual Status members is linked.
  template <class F>
  static std::string status_error(F&& call) {
    const auto& lib = SentencePieceLib::get();
    alignas(sentencepiece::util::Status) unsigned char buf[sizeof(sentencepiece::util::Status)];
    auto* st = ::new (static_cast<void*>(buf)) sentencepiece::util::Status(call());
    std::string err = st->ok() ? std::string() : lib.status_to_string(st);
    if (!st->ok() && err.empty()) err = "unknown error";
    lib.status_destroy(st);
    return err;
  }

  std::string path_;
  sentencepiece::SentencePieceProcessor* sp_ = nullptr;
};

}  // namespace tsenc

namespace tsenc {
constexpr const char* kTextWhat = "TorchScript text encoder";
constexpr const char* kTextExporter = "tools/export/export_text_encoder.py";
}  // namespace tsenc

struct TorchScriptTextEncoder::Impl {
  std::string model_path, tokenizer_path, model_sha, tokenizer_sha;
  torch::Device device{torch::kCPU};
  torch::jit::Module module;
  std::unique_ptr<tsenc::SentencePiece> spm;
  int max_tokens = 0, dim = 0, batch_size = 16;
  std::int64_t eos = 1, pad = 0;
};

TorchScriptTextEncoder::TorchScriptTextEncoder(const std::string& model_path, const std::string& tokenizer_path,
                                               int max_tokens, TorchScriptTextEncoderOptions options)
    : impl_(std::make_unique<Impl>()) {
  auto& d = *impl_;
  d.model_path = model_path;
  d.tokenizer_path = tokenizer_path;
  if (max_tokens < 1)
    throw Error(std::string(tsenc::kTextWhat) + " " + model_path + ": max_tokens must be >= 1, got " +
                std::to_string(max_tokens));
  if (options.batch_size < 1)
    throw Error(std::string(tsenc::kTextWhat) + " " + model_path + ": batch size must be >= 1, got " +
                std::to_string(options.batch_size));
  d.max_tokens = max_tokens;
  d.batch_size = options.batch_size;
  try {
    d.device = torch::Device(options.device);
  } catch (const std::exception& e) {
    throw Error(std::string(tsenc::kTextWhat) + " " + model_path + ": bad device '" + options.device +
                "': " + torch_compat::error_text(e));
  }

  tsenc::require_file(tokenizer_path, "SentencePiece tokenizer");
  d.tokenizer_sha = sha256_file_hex(tokenizer_path);
  d.spm = std::make_unique<tsenc::SentencePiece>(tokenizer_path);
  if (d.spm->eos_id() < 0)
    throw DataError("SentencePiece tokenizer " + tokenizer_path +
                    ": the model has no EOS id (train it with --eos_id, as T5's spiece.model has)");
  d.eos = d.spm->eos_id();
  d.pad = d.spm->pad_id() >= 0 ? d.spm->pad_id() : 0;

  tsenc::require_file(model_path, tsenc::kTextWhat);
  d.model_sha = sha256_file_hex(model_path);
  d.module = tsenc::load_module(model_path, tsenc::kTextWhat, tsenc::kTextExporter, d.device);
  tsenc::require_method(d.module, model_path, tsenc::kTextWhat, "forward",
                        "forward(input_ids: int64 [N,L], attention_mask: int64 [N,L]) -> float [N,L,D]");
  const auto hidden = tsenc::attr_int(d.module, model_path, tsenc::kTextWhat, "hidden_size");
  if (hidden < 1 || hidden > (1 << 20))
    throw DataError(std::string(tsenc::kTextWhat) + " " + model_path + ": hidden_size " + std::to_string(hidden) +
                    " is invalid");
  d.dim = static_cast<int>(hidden);
}

TorchScriptTextEncoder::~TorchScriptTextEncoder() = default;

std::vector<std::int64_t> TorchScriptTextEncoder::tokenize(const std::string& caption) const {
  const auto& d = *impl_;
  const std::vector<int> pieces = d.spm->encode(caption);
  const std::size_t keep = std::min<std::size_t>(pieces.size(), static_cast<std::size_t>(d.max_tokens - 1));
  std::vector<std::int64_t> ids(pieces.begin(), pieces.begin() + static_cast<std::ptrdiff_t>(keep));
  ids.push_back(d.eos);
  return ids;
}

std::int64_t TorchScriptTextEncoder::eos_id() const { return impl_->eos; }
std::int64_t TorchScriptTextEncoder::pad_id() const { return impl_->pad; }
int TorchScriptTextEncoder::dim() const { return impl_->dim; }
int TorchScriptTextEncoder::max_tokens() const { return impl_->max_tokens; }

std::string TorchScriptTextEncoder::identity() const {
  return "torchscript-text:" + impl_->model_sha.substr(0, 16) + ":" + impl_->tokenizer_sha.substr(0, 16) +
         ":tokens=" + std::to_string(impl_->max_tokens);
}

TextEmbedding TorchScriptTextEncoder::encode(const std::string& caption) const {
  auto out = encode_batch({caption});
  return std::move(out.front());
}

std::vector<TextEmbedding> TorchScriptTextEncoder::encode_batch(const std::vector<std::string>& captions) const {
  const auto& d = *impl_;
  torch::NoGradGuard no_grad;
  const int64_t L = d.max_tokens, D = d.dim;
  std::vector<TextEmbedding> result;
  result.reserve(captions.size());
  auto fn = d.module.get_method("forward");
  for (std::size_t start = 0; start < captions.size(); start += static_cast<std::size_t>(d.batch_size)) {
    const std::size_t rows = std::min<std::size_t>(static_cast<std::size_t>(d.batch_size), captions.size() - start);
    auto ids = torch::full({static_cast<int64_t>(rows), L}, d.pad, torch::kInt64);
    auto mask = torch::zeros({static_cast<int64_t>(rows), L}, torch::kInt64);
    std::vector<int64_t> lengths(rows);
    auto ids_a = ids.accessor<int64_t, 2>();
    auto mask_a = mask.accessor<int64_t, 2>();
    for (std::size_t r = 0; r < rows; ++r) {
      const auto tok = tokenize(captions[start + r]);
      lengths[r] = static_cast<int64_t>(tok.size());
      for (std::size_t j = 0; j < tok.size(); ++j) {
        ids_a[static_cast<int64_t>(r)][static_cast<int64_t>(j)] = tok[j];
        mask_a[static_cast<int64_t>(r)][static_cast<int64_t>(j)] = 1;
      }
    }
    c10::IValue value;
    try {
      value = fn({ids.to(d.device), mask.to(d.device)});
    } catch (const std::exception& e) {
      throw DataError(std::string(tsenc::kTextWhat) + " " + d.model_path + ": forward() failed on input_ids of shape " +
                      tsenc::shape_str(ids.sizes()) + ": " + torch_compat::error_text(e));
    }
    if (!value.isTensor())
      throw DataError(std::string(tsenc::kTextWhat) + " " + d.model_path + ": forward() returned a " + value.tagKind() +
                      ", expected a tensor [N,L,D]");
    auto feats = value.toTensor();
    const std::vector<int64_t> want{static_cast<int64_t>(rows), L, D};
    if (feats.sizes() != at::IntArrayRef(want))
      throw DataError(std::string(tsenc::kTextWhat) + " " + d.model_path + ": forward() returned shape " +
                      tsenc::shape_str(feats.sizes()) + ", expected " + tsenc::shape_str(want));
    feats = feats.to(torch::kCPU, torch::kFloat32);
    for (std::size_t r = 0; r < rows; ++r) {
      TextEmbedding e;
      e.length = lengths[r];
      e.tokens = feats[static_cast<int64_t>(r)].clone();
      if (e.length < L) e.tokens.narrow(0, e.length, L - e.length).zero_();
      e.mask = torch::zeros({L}, torch::kBool);
      e.mask.narrow(0, 0, e.length).fill_(true);
      e.pooled = e.tokens.narrow(0, 0, e.length).mean(0);
      result.push_back(std::move(e));
    }
  }
  return result;
}

}  // namespace ldm::data

// ldm-encode: the LibTorch side of dataset encoding. `ldm-data import-* --vae/--text-encoder/
// --text-embeddings` starts `ldm-encode --serve ...` and streams each shard's image records through
// it (encoder_process.h), so ldm-data itself stays free of LibTorch.
#include <ATen/Parallel.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>
#include <thread>

#include "datasets/autoencoder.h"
#include "datasets/encoder_process.h"
#include "datasets/importers.h"
#include "datasets/record_encoding.h"
#include "datasets/torchscript_encoders.h"
#include "shared/core/error.h"

namespace {

constexpr const char* kUsage =
    "usage: ldm-encode --serve [--vae PATH | --vae patch:F] [--text-encoder PATH --tokenizer MODEL |\n"
    "                  --text-encoder builtin --text-dim D | --text-embeddings FILES]\n"
    "                  [--max-tokens N] [--encode-batch B] [--threads T]\n"
    "\n"
    "Serves the encoding requests of `ldm-data import-imagenet|import-wds` on stdin/stdout (a\n"
    "binary protocol; see datasets/encoder_process.h). You do not normally run it yourself: give\n"
    "the same options to ldm-data.\n"
    "\n"
    "  --vae PATH           TorchScript VAE exported by tools/export/export_vae.py (posterior mean,\n"
    "                       times its scaling factor); patch:F = the built-in patch autoencoder\n"
    "  --text-encoder PATH  TorchScript text encoder (tools/export/export_text_encoder.py) with\n"
    "                       --tokenizer MODEL (SentencePiece); 'builtin' = the built-in encoder\n"
    "  --text-dim D         feature width of the built-in text encoder (default 64)\n"
    "  --max-tokens N       caption token slots (default 120)\n"
    "  --text-embeddings F  precomputed caption features (.npz; one file or a brace pattern)\n"
    "  --encode-batch B     images / captions per forward (default 16)\n"
    "  --threads T          LibTorch intra-op threads (default: hardware concurrency)\n";

int to_int(const std::map<std::string, std::string>& o, const std::string& key, int fallback) {
  auto it = o.find(key);
  if (it == o.end()) return fallback;
  try {
    return std::stoi(it->second);
  } catch (const std::exception&) {
    throw ldm::Error("--" + key + " expects an integer, got '" + it->second + "'");
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> o;
  bool serve = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--serve") {
      serve = true;
      continue;
    }
    if (a.rfind("--", 0) != 0 || i + 1 >= argc) {
      std::fprintf(stderr, "ldm-encode: unexpected argument '%s'\n\n%s", a.c_str(), kUsage);
      return 2;
    }
    o[a.substr(2)] = argv[++i];
  }
  if (!serve) {
    std::fprintf(stderr, "ldm-encode: only --serve mode exists (run by ldm-data)\n\n%s", kUsage);
    return 2;
  }
  try {
    const int threads = to_int(o, "threads", static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    at::set_num_threads(std::max(1, threads));
    const int max_tokens = to_int(o, "max-tokens", 120);
    std::shared_ptr<const ldm::data::Autoencoder> ae;
    if (auto it = o.find("vae"); it != o.end()) {
      if (it->second.rfind("patch:", 0) == 0)
        ae = std::make_shared<const ldm::data::PatchAutoencoder>(std::stoi(it->second.substr(6)));
      else ae = std::make_shared<const ldm::data::TorchScriptAutoencoder>(it->second);
    }
    std::shared_ptr<const ldm::data::TextEncoder> text;
    if (auto it = o.find("text-encoder"); it != o.end()) {
      if (it->second == "builtin") {
        // Seed 0, as the trainer's built-in encoder (make_text_encoder), so identities agree.
        text = std::make_shared<const ldm::data::BuiltinTextEncoder>(to_int(o, "text-dim", 64), max_tokens, 0);
      } else {
        if (!o.count("tokenizer")) throw ldm::Error("--text-encoder PATH needs --tokenizer MODEL");
        text = std::make_shared<const ldm::data::TorchScriptTextEncoder>(it->second, o.at("tokenizer"), max_tokens);
      }
    }
    std::shared_ptr<const ldm::data::PrecomputedText> precomputed;
    if (auto it = o.find("text-embeddings"); it != o.end()) {
      const std::vector<std::string> files = ldm::data::expand_braces(it->second);  // one file or a brace pattern
      precomputed = std::make_shared<const ldm::data::PrecomputedText>(files);
      std::fprintf(stderr, "ldm-encode: %zu precomputed caption features from %zu file(s)\n", precomputed->size(),
                   files.size());
    }
    const ldm::data::TorchRecordEncoder encoder(ae, text, precomputed, to_int(o, "encode-batch", 16));
    ldm::data::serve_encoder(encoder, STDIN_FILENO, STDOUT_FILENO);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ldm-encode: error: %s\n", e.what());
    return 1;
  }
}

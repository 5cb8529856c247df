// ldm-encode: the LibTorch side of dataset encoding. `ldm-data import-* --vae/--text-encoder/
// --text-embeddings` starts `ldm-encode --serve ...` and streams each shard's image records through
// it (encoder_process.h), so ldm-data itself stays free of LibTorch.
#include <ATen/Parallel.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

#include "datasets/import/encoder_process.h"
#include "datasets/import/importers.h"
#include "datasets/tensor/autoencoder.h"
#include "datasets/tensor/record_encoding.h"
#include "datasets/tensor/torchscript_encoders.h"
#include "shared/core/cli.h"
#include "shared/core/error.h"
#include "worker/torch_compat.h"

namespace {

int serve(const ldm::cli::Args& a) {
  if (!a.has("serve")) throw ldm::cli::UsageError("only --serve mode exists (run by ldm-data)");
  const int threads =
      static_cast<int>(a.integer("threads", static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))));
  at::set_num_threads(threads);
  const int max_tokens = static_cast<int>(a.integer("max-tokens", 120));
  std::shared_ptr<const ldm::data::Autoencoder> ae;
  if (a.has("vae")) {
    const std::string vae = a.text("vae");
    if (vae.rfind("patch:", 0) == 0) {
      const std::string factor = vae.substr(6);
      char* end = nullptr;
      const long f = std::strtol(factor.c_str(), &end, 10);
      if (factor.empty() || *end || f < 1 || f > 64)
        throw ldm::cli::UsageError("--vae patch:F needs a factor F in 1..64, got '" + factor + "'");
      ae = std::make_shared<const ldm::data::PatchAutoencoder>(static_cast<int>(f));
    } else {
      ae = std::make_shared<const ldm::data::TorchScriptAutoencoder>(vae);
    }
  }
  std::shared_ptr<const ldm::data::TextEncoder> text;
  if (a.has("text-encoder")) {
    if (a.text("text-encoder") == "builtin") {
      // Seed 0, as the trainer's built-in encoder (make_text_encoder), so identities agree.
      text = std::make_shared<const ldm::data::BuiltinTextEncoder>(a.integer("text-dim", 64), max_tokens, 0);
    } else {
      if (!a.has("tokenizer")) throw ldm::cli::UsageError("--text-encoder PATH needs --tokenizer MODEL");
      text = std::make_shared<const ldm::data::TorchScriptTextEncoder>(a.text("text-encoder"), a.text("tokenizer"),
                                                                       max_tokens);
    }
  }
  std::shared_ptr<const ldm::data::PrecomputedText> precomputed;
  if (a.has("text-embeddings")) {
    const std::vector<std::string> files = ldm::data::expand_braces(a.text("text-embeddings"));  // one or a pattern
    precomputed = std::make_shared<const ldm::data::PrecomputedText>(files);
    std::fprintf(stderr, "ldm-encode: %zu precomputed caption features from %zu file(s)\n", precomputed->size(),
                 files.size());
  }
  const ldm::data::TorchRecordEncoder encoder(ae, text, precomputed, static_cast<int>(a.integer("encode-batch", 16)));
  ldm::data::serve_encoder(encoder, STDIN_FILENO, STDOUT_FILENO);
  return 0;
}

ldm::cli::Program program() {
  using namespace ldm::cli;
  std::vector<Option> options = ldm::data::encoder_options();
  options.insert(options.begin(), flag("serve", "serve requests on stdin/stdout (the only mode)"));
  options.push_back(integer("threads", "T", "LibTorch intra-op threads (default: hardware concurrency)", 1, 1024));
  return {"ldm-encode",
          "",
          {{"",
            {},
            "Serves the encoding requests of `ldm-data import-imagenet|import-wds` on stdin/stdout (a binary\n"
            "protocol; see datasets/import/encoder_process.h). You do not normally run it yourself: give the same\n"
            "options to ldm-data.",
            options,
            serve}}};
}

}  // namespace

int main(int argc, char** argv) { return ldm::cli::run(program(), argc, argv, ldm::torch_compat::error_text); }

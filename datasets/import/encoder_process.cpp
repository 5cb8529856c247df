#include "datasets/import/encoder_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "datasets/format/byte_order.h"
#include "shared/core/error.h"
#include "shared/core/safe_file.h"

extern char** environ;

namespace ldm::data::pipe {

void write_bytes(int fd, const std::string& bytes, const std::string& what) {
  write_all(fd, bytes.data(), bytes.size(), what);
}

void write_u32(int fd, std::uint32_t v, const std::string& what) {
  std::string b;
  le::put_u32(b, v);
  write_bytes(fd, b, what);
}

namespace {
// Reads exactly n bytes; returns how many arrived before end of input.
std::size_t read_some(int fd, char* p, std::size_t n, const std::string& what) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd, p + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw DataError(what + ": read failed: " + std::strerror(errno));
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return got;
}
}  // namespace

bool read_u32(int fd, std::uint32_t& v, const std::string& what) {
  unsigned char b[4];
  const std::size_t got = read_some(fd, reinterpret_cast<char*>(b), 4, what);
  if (got == 0) return false;
  if (got != 4) throw DataError(what + ": input ended inside a frame");
  v = le::get_u32(b);
  return true;
}

std::string read_bytes(int fd, std::size_t n, const std::string& what) {
  std::string s(n, '\0');
  if (read_some(fd, s.data(), n, what) != n) throw DataError(what + ": input ended inside a frame");
  return s;
}

}  // namespace ldm::data::pipe

namespace ldm::data {

std::vector<cli::Option> encoder_options() {
  using namespace cli;
  return {text("vae", "PATH",
               "TorchScript VAE (tools/export/export_vae.py; posterior mean times its scaling factor), or\n"
               "patch:F for the built-in patch autoencoder (tests; not comparable with a real VAE)"),
          text("text-encoder", "PATH",
               "TorchScript text encoder (tools/export/export_text_encoder.py) with --tokenizer MODEL\n"
               "(SentencePiece), or 'builtin' (with --text-dim D)"),
          text("tokenizer", "MODEL", "SentencePiece model of --text-encoder"),
          integer("text-dim", "D", "feature width of the built-in text encoder (default 64)", 1, 65536),
          integer("max-tokens", "N", "caption token slots (default 120)", 1, 4096),
          text("text-embeddings", "F",
               "precomputed caption features: .npz file(s), a brace pattern, with keys [N] (sample keys),\n"
               "tokens [N,L,D], optional lengths/mask, pooled"),
          integer("encode-batch", "B", "images / captions per encoder forward (default 16)", 1, 65536)};
}

std::string sibling_program(const std::string& name) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto candidate = self.parent_path() / name;
    if (std::filesystem::exists(candidate, ec)) return candidate.string();
  }
  return name;
}

EncoderProcess::EncoderProcess(const std::string& program, const std::vector<std::string>& args) : program_(program) {
  int in[2], out[2];  // in: parent -> child stdin; out: child stdout -> parent
  if (::pipe2(in, O_CLOEXEC) != 0) throw_errno("pipe failed", program);
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    throw_errno("pipe failed", program);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  std::vector<std::string> argv_s{program};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int rc = ::posix_spawnp(&pid_, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  to_child_ = in[1];
  from_child_ = out[0];
  if (rc != 0) {
    ::close(to_child_);
    ::close(from_child_);
    pid_ = -1;
    throw DataError("cannot start the encoder " + program + ": " + std::strerror(rc) +
                    " (ldm-encode is built with the worker; is it next to ldm-data or on PATH?)");
  }
  try {
    const std::string what = "encoder " + program;
    std::uint32_t len = 0;
    if (!pipe::read_u32(from_child_, len, what))
      throw DataError(what + " exited before it was ready (see its messages above)");
    const auto hello = nlohmann::json::parse(pipe::read_bytes(from_child_, len, what));
    const std::string kind = hello.at("kind").get<std::string>();
    kind_ = kind == "latent_f32" ? PayloadKind::LatentF32 : PayloadKind::ImageU8;
    identity_ = hello.at("encoder").get<std::string>();
    text_identity_ = hello.at("text_encoder").get<std::string>();
  } catch (...) {
    shutdown();
    throw;
  }
}

EncoderProcess::~EncoderProcess() { shutdown(); }

void EncoderProcess::shutdown() {
  if (to_child_ >= 0) {
    try {
      pipe::write_u32(to_child_, 0, program_);
    } catch (...) {
    }
    ::close(to_child_);
    to_child_ = -1;
  }
  if (from_child_ >= 0) ::close(from_child_);
  from_child_ = -1;
  if (pid_ > 0) {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
}

void EncoderProcess::encode(std::vector<Record>& records, const std::vector<std::string>& keys,
                            const std::string& shard) const {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string what = shard + ": encoder " + program_;
  if (to_child_ < 0) throw DataError(what + ": the encoder process is gone");
  std::string request;
  le::put_u32(request, static_cast<std::uint32_t>(records.size()));
  for (std::size_t i = 0; i < records.size(); ++i) {
    const std::string body = encode_record(records[i]);
    le::put_u32(request, static_cast<std::uint32_t>(keys[i].size()));
    request += keys[i];
    le::put_u32(request, static_cast<std::uint32_t>(body.size()));
    request += body;
  }
  pipe::write_bytes(to_child_, request, what);
  std::uint32_t status = 0, n = 0;
  if (!pipe::read_u32(from_child_, status, what))
    throw DataError(what + ": the encoder process died (see its messages above)");
  if (status != 0) {
    pipe::read_u32(from_child_, n, what);
    throw DataError(shard + ": " + pipe::read_bytes(from_child_, n, what));
  }
  pipe::read_u32(from_child_, n, what);
  if (n != records.size())
    throw DataError(what + ": answered " + std::to_string(n) + " records for " + std::to_string(records.size()));
  for (std::size_t i = 0; i < records.size(); ++i) {
    std::uint32_t len = 0;
    pipe::read_u32(from_child_, len, what);
    const std::string body = pipe::read_bytes(from_child_, len, what);
    records[i] = decode_record(body.data(), body.size(), kind_, what + ": record " + std::to_string(i) + ": ");
  }
}

void serve_encoder(const RecordEncoder& encoder, int in, int out) {
  const std::string what = "encoder input";
  const nlohmann::json hello = {
      {"kind", to_string(encoder.kind())}, {"encoder", encoder.identity()}, {"text_encoder", encoder.text_identity()}};
  pipe::write_u32(out, static_cast<std::uint32_t>(hello.dump().size()), "encoder output");
  pipe::write_bytes(out, hello.dump(), "encoder output");
  for (;;) {
    std::uint32_t count = 0;
    if (!pipe::read_u32(in, count, what) || count == 0) return;
    std::vector<Record> records;
    std::vector<std::string> keys;
    for (std::uint32_t i = 0; i < count; ++i) {
      std::uint32_t n = 0;
      pipe::read_u32(in, n, what);
      keys.push_back(pipe::read_bytes(in, n, what));
      pipe::read_u32(in, n, what);
      const std::string body = pipe::read_bytes(in, n, what);
      records.push_back(
          decode_record(body.data(), body.size(), PayloadKind::ImageU8, "request record " + std::to_string(i) + ": "));
    }
    std::string reply;
    try {
      encoder.encode(records, keys, "request");
      le::put_u32(reply, 0);
      le::put_u32(reply, count);
      for (const Record& r : records) {
        const std::string body = encode_record(r);
        le::put_u32(reply, static_cast<std::uint32_t>(body.size()));
        reply += body;
      }
    } catch (const std::exception& e) {
      reply.clear();
      const std::string message = e.what();
      le::put_u32(reply, 1);
      le::put_u32(reply, static_cast<std::uint32_t>(message.size()));
      reply += message;
    }
    pipe::write_bytes(out, reply, "encoder output");
  }
}

}  // namespace ldm::data

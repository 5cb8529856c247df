// The pipe protocol between `ldm-data` (torch-free) and its encoding child `ldm-encode --serve`
// (LibTorch), and the RecordEncoder that drives the child. Torch-free.
//
// All integers are little-endian u32. The child first writes a hello frame:
//   len  json{"kind": "image_u8"|"latent_f32", "encoder": ..., "text_encoder": ...}
// then answers requests until it reads a request of count 0 (or end of input):
//   request:  count  { key_len key  body_len body }*count      (image records, shard.h bodies)
//   response: 0 count { body_len body }*count                   (encoded records, same order)
//          or 1 len message                                     (an error; the child goes on)
// The child writes nothing else to stdout (its logs go to stderr).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "datasets/import/importers.h"
#include "shared/core/cli.h"

namespace ldm::data::pipe {

// Blocking frame I/O on a file descriptor; errors (and end of input inside a frame) throw
// DataError naming `what`. read_u32 returns false at a clean end of input before the frame.
void write_u32(int fd, std::uint32_t v, const std::string& what);
void write_bytes(int fd, const std::string& bytes, const std::string& what);
bool read_u32(int fd, std::uint32_t& v, const std::string& what);
std::string read_bytes(int fd, std::size_t n, const std::string& what);

}  // namespace ldm::data::pipe

namespace ldm::data {

// `ldm-encode` next to the running program (the build's bin directory, or an install's), else
// the bare name for a PATH lookup.
std::string sibling_program(const std::string& name);

// The encoder options `ldm-data import-*` takes and passes on, unchanged, to `ldm-encode --serve`
// (one declaration for both command lines).
std::vector<cli::Option> encoder_options();

// Spawns `program args...` (stdin/stdout are pipes, stderr is inherited), reads its hello, and
// serves encode() calls one at a time (a mutex serialises callers). A child that dies or answers
// with an error becomes a DataError naming the shard.
class EncoderProcess final : public RecordEncoder {
 public:
  EncoderProcess(const std::string& program, const std::vector<std::string>& args);
  ~EncoderProcess() override;  // asks the child to exit and reaps it
  EncoderProcess(const EncoderProcess&) = delete;
  EncoderProcess& operator=(const EncoderProcess&) = delete;

  PayloadKind kind() const override { return kind_; }
  std::string identity() const override { return identity_; }
  std::string text_identity() const override { return text_identity_; }
  void encode(std::vector<Record>& records, const std::vector<std::string>& keys,
              const std::string& shard) const override;

 private:
  void shutdown();
  std::string program_;
  pid_t pid_ = -1;
  int to_child_ = -1, from_child_ = -1;
  mutable std::mutex mu_;
  PayloadKind kind_ = PayloadKind::ImageU8;
  std::string identity_, text_identity_;
};

// The child's side: serves requests from `in` to `out` with `encoder` until a count-0 request or
// end of input. Per-request errors are answered, not thrown.
void serve_encoder(const RecordEncoder& encoder, int in, int out);

}  // namespace ldm::data

// The differences between the LibTorch versions we build against (Debian's CPU LibTorch 1.13 in
// CI, a CUDA LibTorch 2.x on GPU machines), in one place, and the LibTorch-aware helpers every
// torch program shares.
#pragma once

#include <c10/util/Exception.h>

#include <exception>
#include <string>

namespace ldm::torch_compat {

// An exception's message for people: LibTorch's errors (c10::Error) carry a C++ backtrace in
// what(); what_without_backtrace() is the message. Pass it to cli::run as the error text.
inline std::string error_text(const std::exception& e) {
  if (const auto* c10 = dynamic_cast<const c10::Error*>(&e)) return c10->what_without_backtrace();
  return e.what();
}

}  // namespace ldm::torch_compat

#include "shared/core/error.h"

#include <cerrno>
#include <cstring>

namespace ldm {

static std::string compose(const std::string& key_path, const std::string& message, const std::string& location) {
  std::string out;
  if (!location.empty()) out += location + ": ";
  if (!key_path.empty()) out += "key '" + key_path + "': ";
  return out + message;
}

SpecError::SpecError(std::string key_path, std::string message, std::string location)
    : Error(compose(key_path, message, location)),
      key_path_(std::move(key_path)),
      detail_(std::move(message)),
      location_(std::move(location)) {}

void throw_errno(const std::string& what, const std::string& path) {
  int e = errno;
  throw Error(what + ": " + path + ": " + std::strerror(e));
}

}  // namespace ldm

#include "shared/core/credentials.h"

#include <sys/stat.h>

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "shared/core/error.h"
#include "shared/core/safe_file.h"
#include "shared/core/text.h"

namespace ldm {

void check_private_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw_errno("cannot read the token file", path);
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw Error(path + ": a token file must be readable by its owner only (mode " + mode + "; chmod 600 " + path + ")");
  }
}

ClientCredentials read_credentials(const std::string& path) {
  check_private_file(path);
  const std::string text = read_file(path);
  ClientCredentials c;
  const std::string trimmed = trim(text);
  if (!trimmed.empty() && trimmed[0] == '{') {
    const nlohmann::json j = nlohmann::json::parse(trimmed, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw Error(path + ": not valid JSON");
    c.token = j.value("token", std::string());
    c.server_public = j.value("server_public", std::string());
    c.client_public = j.value("client_public", std::string());
    c.client_secret = j.value("client_secret", std::string());
    for (const auto* key : {&c.server_public, &c.client_public, &c.client_secret})
      if (!key->empty() && key->size() != 40)
        throw Error(path + ": a CURVE key is 40 characters of Z85, got " + std::to_string(key->size()));
    if (c.has_curve() && (c.client_public.empty() || c.client_secret.empty()))
      throw Error(path + ": has server_public but not client_public and client_secret");
  } else {
    c.token = trimmed;
  }
  if (c.token.empty()) throw Error(path + ": holds no token");
  return c;
}

std::string credentials_path(const std::string& flag, const std::string& state_dir) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("LDM_TOKEN_FILE"); env && *env) return env;
  const std::string in_state = (state_dir.empty() ? std::string(".ldm") : state_dir) + "/auth/client.json";
  return path_exists(in_state) ? in_state : "";
}

}  // namespace ldm

#include "coordinator/auth.h"

#include <sys/stat.h>
#include <sys/vfs.h>

#include <zmq.h>

#include <nlohmann/json.hpp>

#include "shared/core/credentials.h"
#include "shared/core/error.h"
#include "shared/core/ids.h"
#include "shared/core/safe_file.h"
#include "shared/core/text.h"

namespace ldm::coord {
namespace {

// Writes `text` with mode 0600 from the start (never briefly readable by others).
void write_secret_file(const std::string& path, const std::string& text) {
  const mode_t old = ::umask(077);
  try {
    write_file_atomic(path, text);
  } catch (...) {
    ::umask(old);
    throw;
  }
  ::umask(old);
  if (::chmod(path.c_str(), 0600) != 0) throw_errno("cannot make private", path);
}

nlohmann::json read_private_json(const std::string& path) {
  check_private_file(path);
  const nlohmann::json j = nlohmann::json::parse(read_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw Error(path + ": not valid JSON");
  return j;
}

std::pair<std::string, std::string> curve_keypair() {
  char pub[41] = {0}, sec[41] = {0};
  if (zmq_curve_keypair(pub, sec) != 0)
    throw Error(std::string("cannot make a CURVE keypair: ") + zmq_strerror(zmq_errno()) +
                " (libzmq built without CURVE support?)");
  return {pub, sec};
}

}  // namespace

bool is_loopback_address(const std::string& address) {
  return address == "localhost" || address == "::1" || address.rfind("127.", 0) == 0;
}

bool secrets_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size() || b.empty()) return false;  // the length of a token is no secret
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

ServerAuth load_server_auth(const std::string& listen, const std::string& state_dir, const std::string& token_file) {
  ServerAuth auth;
  if (is_loopback_address(listen)) return auth;
  auth.enabled = true;
  const std::string dir = state_dir + "/auth", server = dir + "/server.json";
  auth.client_file = dir + "/client.json";
  std::string given;
  if (!token_file.empty()) given = read_credentials(token_file).token;
  if (!path_exists(server)) {
    make_dirs(dir);
    ::chmod(dir.c_str(), 0700);
    const auto [server_public, server_secret] = curve_keypair();
    const auto [client_public, client_secret] = curve_keypair();
    const std::string token = given.empty() ? random_hex(32) : given;
    write_secret_file(server, nlohmann::json{{"token", token},
                                             {"server_public", server_public},
                                             {"server_secret", server_secret},
                                             {"client_public", client_public}}
                                      .dump(2) +
                                  "\n");
    write_secret_file(auth.client_file, nlohmann::json{{"token", token},
                                                       {"server_public", server_public},
                                                       {"client_public", client_public},
                                                       {"client_secret", client_secret}}
                                                .dump(2) +
                                            "\n");
  }
  const nlohmann::json j = read_private_json(server);
  auth.token = j.value("token", std::string());
  auth.server_public = j.value("server_public", std::string());
  auth.server_secret = j.value("server_secret", std::string());
  auth.client_public = j.value("client_public", std::string());
  if (auth.server_public.size() != 40 || auth.server_secret.size() != 40 || auth.client_public.size() != 40)
    throw Error(server + ": server_public, server_secret and client_public must be 40-character Z85 CURVE keys");
  if (!given.empty() && given != auth.token) {
    // The token given by file wins; the client file follows it so workers and the CLI agree.
    auth.token = given;
    nlohmann::json s = j;
    s["token"] = given;
    write_secret_file(server, s.dump(2) + "\n");
    nlohmann::json c = read_private_json(auth.client_file);
    c["token"] = given;
    write_secret_file(auth.client_file, c.dump(2) + "\n");
  }
  read_credentials(auth.client_file);  // present, private and complete
  return auth;
}

std::string network_filesystem_warning(const std::string& dir) {
  struct statfs fs {};
  if (::statfs(dir.c_str(), &fs) != 0) return "";
  const auto type = static_cast<unsigned long>(fs.f_type);
  const char* name = nullptr;
  switch (type) {
    case 0x6969UL:
      name = "NFS";
      break;
    case 0x0BD00BD0UL:
      name = "Lustre";
      break;
    case 0x47504653UL:
      name = "GPFS";
      break;
    case 0xFF534D42UL:
    case 0xFE534D42UL:
      name = "CIFS/SMB";
      break;
    case 0x00C36400UL:
      name = "CephFS";
      break;
    case 0x013111A8UL:
      name = "IBRIX";
      break;
    case 0x65735546UL:
      name = "a FUSE filesystem";
      break;
    default:
      return "";
  }
  return dir + " is on " + name +
         ": the experiment store (RocksDB) needs a local disk (its file locks and fsyncs are not reliable on "
         "network filesystems); put --state on a local disk and the run directories on the shared one "
         "(--runs DIR)";
}

}  // namespace ldm::coord

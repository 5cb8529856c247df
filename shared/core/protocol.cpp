#include "shared/core/protocol.h"

#include <utility>

#include "shared/core/error.h"

namespace ldm::protocol {
namespace {

struct TypeName {
  Type type;
  const char* name;
};
const TypeName kTypes[] = {
    {Type::Hello, "hello"}, {Type::Spec, "spec"},           {Type::Metrics, "metrics"},
    {Type::Ack, "ack"},     {Type::Heartbeat, "heartbeat"}, {Type::Checkpoint, "checkpoint"},
    {Type::Done, "done"},   {Type::Failed, "failed"},       {Type::Preempted, "preempted"},
    {Type::Error, "error"}, {Type::Claim, "claim"},         {Type::Assign, "assign"},
};

using nlohmann::json;

void require(const json& body, const char* key, json::value_t kind, const char* what, const std::string& type) {
  auto it = body.find(key);
  bool ok = it != body.end();
  if (ok) {
    switch (kind) {
      case json::value_t::number_integer:
        ok = it->is_number_integer();
        break;
      case json::value_t::number_float:
        ok = it->is_number();
        break;
      case json::value_t::string:
        ok = it->is_string();
        break;
      case json::value_t::array:
        ok = it->is_array();
        break;
      case json::value_t::object:
        ok = it->is_object();
        break;
      default:
        break;
    }
  }
  if (!ok) throw ProtocolError("'" + type + "' message: body field '" + key + "' must be " + what);
}

void check_body(Type t, const json& b) {
  using vt = json::value_t;
  const std::string name = to_string(t);
  switch (t) {
    case Type::Hello:
      require(b, "rank", vt::number_integer, "an integer", name);
      require(b, "world_size", vt::number_integer, "an integer", name);
      break;
    case Type::Spec:
      require(b, "spec", vt::object, "an object", name);
      require(b, "attempt", vt::number_integer, "an integer", name);
      require(b, "run_dir", vt::string, "a string", name);
      break;
    case Type::Metrics: {
      require(b, "attempt", vt::number_integer, "an integer", name);
      require(b, "seq", vt::number_integer, "an integer", name);
      require(b, "points", vt::array, "an array", name);
      for (const auto& p : b.at("points")) {
        if (!p.is_object() || !p.contains("metric") || !p["metric"].is_string() || !p.contains("step") ||
            !p["step"].is_number_integer() || !p.contains("value") || !p["value"].is_number())
          throw ProtocolError(
              "'metrics' message: every point needs string 'metric', integer 'step' and number 'value'");
      }
      break;
    }
    case Type::Ack:
      require(b, "seq", vt::number_integer, "an integer", name);
      break;
    case Type::Heartbeat:
    case Type::Done:
      require(b, "step", vt::number_integer, "an integer", name);
      break;
    case Type::Checkpoint:
    case Type::Preempted:
      require(b, "step", vt::number_integer, "an integer", name);
      require(b, t == Type::Checkpoint ? "path" : "checkpoint", vt::string, "a string", name);
      break;
    case Type::Failed:
      require(b, "step", vt::number_integer, "an integer", name);
      require(b, "rank", vt::number_integer, "an integer", name);
      require(b, "message", vt::string, "a string", name);
      break;
    case Type::Error:
      require(b, "message", vt::string, "a string", name);
      break;
    case Type::Claim:
      require(b, "world_size", vt::number_integer, "an integer", name);
      break;
    case Type::Assign:
      require(b, "run", vt::string, "a string", name);
      require(b, "token", vt::string, "a string", name);
      break;
  }
}

}  // namespace

const char* to_string(Type t) {
  for (const auto& e : kTypes)
    if (e.type == t) return e.name;
  return "unknown";
}

bool type_from_string(const std::string& s, Type& out) {
  for (const auto& e : kTypes)
    if (s == e.name) {
      out = e.type;
      return true;
    }
  return false;
}

Message make(Type type, std::string run, std::string token, json body) {
  Message m;
  m.type = type;
  m.run = std::move(run);
  m.token = std::move(token);
  m.body = std::move(body);
  return m;
}

std::string encode(const Message& m, std::size_t max_bytes) {
  json j = {{"v", m.version}, {"type", to_string(m.type)}, {"run", m.run}, {"token", m.token}, {"body", m.body}};
  std::string out = j.dump(-1, ' ', false, json::error_handler_t::replace);
  if (out.size() > max_bytes)
    throw ProtocolError("'" + std::string(to_string(m.type)) + "' message of " + std::to_string(out.size()) +
                        " bytes exceeds the limit of " + std::to_string(max_bytes));
  return out;
}

Message decode(const void* data, std::size_t size, std::size_t max_bytes) {
  if (size > max_bytes)
    throw ProtocolError("message of " + std::to_string(size) + " bytes exceeds the limit of " +
                        std::to_string(max_bytes));
  auto begin = static_cast<const char*>(data);
  json j = json::parse(begin, begin + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw ProtocolError("message is not valid JSON");
  if (!j.is_object()) throw ProtocolError("message is not a JSON object");
  auto v = j.find("v");
  if (v == j.end() || !v->is_number_integer()) throw ProtocolError("message has no integer protocol version 'v'");
  if (*v != kProtocolVersion)  // compared as numbers: 4294967297 is not 1 (get<int>() would wrap it)
    throw ProtocolError("protocol version " + v->dump() + " is not supported (this build speaks " +
                        std::to_string(kProtocolVersion) + ")");
  Message m;
  auto type = j.find("type");
  if (type == j.end() || !type->is_string()) throw ProtocolError("message has no string 'type'");
  if (!type_from_string(type->get<std::string>(), m.type))
    throw ProtocolError("unknown message type '" + type->get<std::string>() + "'");
  for (const char* key : {"run", "token"}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) throw ProtocolError("message has no string '" + std::string(key) + "'");
  }
  m.run = j["run"].get<std::string>();
  m.token = j["token"].get<std::string>();
  auto body = j.find("body");
  if (body == j.end() || !body->is_object()) throw ProtocolError("message has no object 'body'");
  m.body = std::move(*body);
  check_body(m.type, m.body);
  return m;
}

}  // namespace ldm::protocol

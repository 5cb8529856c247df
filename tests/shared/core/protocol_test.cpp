// The coordinator <-> worker wire protocol: every message type survives encode/decode, and every
// framing check (size before parsing, JSON, version, type, run/token, body fields) rejects.
#include "shared/core/protocol.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "shared/core/error.h"

namespace proto = ldm::protocol;
using nlohmann::json;
using proto::Type;

namespace {

struct Example {
  Type type;
  json body;  // a minimal valid body of that type
};

// One valid body per message type, as protocol.h documents them.
const std::vector<Example>& examples() {
  static const std::vector<Example> e = {
      {Type::Hello, {{"rank", 0}, {"world_size", 2}, {"host", "node-1"}, {"pid", 4242}}},
      {Type::Spec,
       {{"spec", {{"name", "exp"}}},
        {"attempt", 3},
        {"run_dir", "/runs/exp/train"},
        {"stage_index", 0},
        {"data_dir", "/data"}}},
      {Type::Metrics,
       {{"attempt", 3},
        {"seq", 17},
        {"points", json::array({{{"metric", "loss"}, {"step", 5}, {"value", 0.25}},
                                {{"metric", "grad_norm"}, {"step", 5}, {"value", 1}}})}}},
      {Type::Ack, {{"seq", 17}}},
      {Type::Heartbeat, {{"step", 9}}},
      {Type::Checkpoint, {{"step", 10}, {"path", "/runs/exp/train/checkpoints/step-0000010"}}},
      {Type::Done, {{"step", 100}, {"summary", {{"loss", 0.1}}}}},
      {Type::Failed, {{"step", 4}, {"rank", 1}, {"message", "out of memory"}}},
      {Type::Preempted, {{"step", 50}, {"checkpoint", "/runs/exp/train/checkpoints/step-0000050"}}},
      {Type::Error, {{"message", "unknown run"}}},
  };
  return e;
}

// A well-formed envelope of `type` with `body`, as JSON, for tests that then break one part.
json envelope(const char* type, json body) {
  return {
      {"v", proto::kProtocolVersion}, {"type", type}, {"run", "run-1"}, {"token", "secret"}, {"body", std::move(body)}};
}

}  // namespace

TEST_CASE("every message type has a name that maps back to it") {
  for (int i = static_cast<int>(Type::Hello); i <= static_cast<int>(Type::Error); ++i) {
    const Type t = static_cast<Type>(i);
    Type back = Type::Error;
    CAPTURE(proto::to_string(t));
    REQUIRE(proto::type_from_string(proto::to_string(t), back));
    CHECK(back == t);
  }
  Type unused;
  CHECK_FALSE(proto::type_from_string("shutdown", unused));
}

TEST_CASE("every message type survives encode then decode unchanged") {
  CHECK(examples().size() == static_cast<std::size_t>(Type::Error) + 1);  // no type left out
  for (const auto& ex : examples()) {
    CAPTURE(proto::to_string(ex.type));
    const proto::Message sent = proto::make(ex.type, "run-42", "tok-xyz", ex.body);
    const proto::Message got = proto::decode(proto::encode(sent));
    CHECK(got.version == proto::kProtocolVersion);
    CHECK(got.type == ex.type);
    CHECK(got.run == "run-42");
    CHECK(got.token == "tok-xyz");
    CHECK(got.body == ex.body);
  }
}

TEST_CASE("an oversized message is rejected by its size before it is parsed") {
  // Garbage that is also invalid JSON: the size error proves parsing never started.
  const std::string huge(proto::kMaxMessageBytes + 1, '{');
  CHECK_THROWS_WITH_AS(proto::decode(huge), doctest::Contains("exceeds the limit"), ldm::ProtocolError);

  const std::string wire = proto::encode(proto::make(Type::Ack, "r", "t", {{"seq", 1}}));
  CHECK_NOTHROW(proto::decode(wire, wire.size()));  // the limit is inclusive
  CHECK_THROWS_WITH_AS(proto::decode(wire, wire.size() - 1), doctest::Contains("exceeds the limit"),
                       ldm::ProtocolError);
}

TEST_CASE("encode refuses to produce a message over the size limit") {
  const proto::Message big = proto::make(Type::Error, "r", "t", {{"message", std::string(200, 'x')}});
  CHECK_THROWS_WITH_AS(proto::encode(big, 100), doctest::Contains("exceeds the limit of 100"), ldm::ProtocolError);
  CHECK_NOTHROW(proto::encode(big));
}

TEST_CASE("a message that is not a JSON object is rejected") {
  CHECK_THROWS_WITH_AS(proto::decode(std::string("{\"v\": 1,")), doctest::Contains("not valid JSON"),
                       ldm::ProtocolError);
  CHECK_THROWS_WITH_AS(proto::decode(std::string("[1, 2]")), doctest::Contains("not a JSON object"),
                       ldm::ProtocolError);
}

TEST_CASE("a message with a missing or different protocol version is rejected") {
  json wrong = envelope("ack", {{"seq", 1}});
  wrong["v"] = proto::kProtocolVersion + 1;
  CHECK_THROWS_WITH_AS(proto::decode(wrong.dump()), doctest::Contains("is not supported"), ldm::ProtocolError);
  json missing = envelope("ack", {{"seq", 1}});
  missing.erase("v");
  CHECK_THROWS_WITH_AS(proto::decode(missing.dump()), doctest::Contains("protocol version"), ldm::ProtocolError);
  // 2^32 + 1 is not version 1 (read as an int it would wrap to 1).
  wrong["v"] = 4294967297LL;
  CHECK_THROWS_WITH_AS(proto::decode(wrong.dump()), doctest::Contains("protocol version 4294967297 is not supported"),
                       ldm::ProtocolError);
}

TEST_CASE("a message of an unknown type is rejected") {
  CHECK_THROWS_WITH_AS(proto::decode(envelope("shutdown", json::object()).dump()),
                       doctest::Contains("unknown message type 'shutdown'"), ldm::ProtocolError);
}

TEST_CASE("a message without a string run, token or object body is rejected") {
  for (const char* key : {"run", "token", "body"}) {
    CAPTURE(key);
    json missing = envelope("ack", {{"seq", 1}});
    missing.erase(key);
    const std::string quoted_key = std::string("'") + key + "'";
    CHECK_THROWS_WITH_AS(proto::decode(missing.dump()), doctest::Contains(quoted_key.c_str()), ldm::ProtocolError);
    json wrong_type = envelope("ack", {{"seq", 1}});
    wrong_type[key] = 7;
    CHECK_THROWS_AS(proto::decode(wrong_type.dump()), ldm::ProtocolError);
  }
}

TEST_CASE("every message type rejects a body missing a required field") {
  for (const auto& ex : examples()) {
    CAPTURE(proto::to_string(ex.type));
    CHECK_THROWS_WITH_AS(proto::decode(envelope(proto::to_string(ex.type), json::object()).dump()),
                         doctest::Contains("body field"), ldm::ProtocolError);
  }
}

TEST_CASE("a body field of the wrong type is rejected") {
  json hello = envelope("hello", {{"rank", "0"}, {"world_size", 2}});
  CHECK_THROWS_WITH_AS(proto::decode(hello.dump()), doctest::Contains("body field 'rank' must be an integer"),
                       ldm::ProtocolError);
}

TEST_CASE("a metrics batch with a malformed point is rejected") {
  for (const char* drop : {"metric", "step", "value"}) {
    CAPTURE(drop);
    json point = {{"metric", "loss"}, {"step", 1}, {"value", 0.5}};
    point.erase(drop);
    json m = envelope("metrics", {{"attempt", 1}, {"seq", 1}, {"points", json::array({point})}});
    CHECK_THROWS_WITH_AS(proto::decode(m.dump()), doctest::Contains("every point needs"), ldm::ProtocolError);
  }
}

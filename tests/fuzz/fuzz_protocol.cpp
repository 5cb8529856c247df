// The worker endpoint's side of the wire protocol, without sockets:
//  - by default the input is one ZeroMQ payload frame for Coordinator::handle_frame (the
//    decoder, authentication against the run's token, and each message type's handler) of a
//    coordinator with a real store and one active run. "@RUN@" and "@TOKEN@" in the input are
//    replaced by that run's id and token, so the fuzzer reaches the authenticated handlers.
//  - first byte 0x01 (CURVE): the rest is a ZAP request, frames as <1-byte length><bytes>..., for
//    decide_zap with the admitted client key being 32 bytes of 'K'.
// Findings besides crashes: a reply that is not a protocol message, and a library exception's
// text (a handler that read a field the decoder had not checked) in an error reply.
#include <memory>

#include "coordinator/coordinator.h"
#include "coordinator/zmq_endpoint.h"
#include "shared/core/log.h"
#include "shared/core/protocol.h"
#include "shared/store/experiment_store.h"
#include "tests/coordinator/test_support.h"
#include "tests/fuzz/fuzz_support.h"

using namespace ldm;
using namespace ldm::coord;

namespace {

struct World {
  fuzz::ProcessDir dir{"ldm-fuzz-protocol"};
  std::unique_ptr<ExperimentStore> store = ExperimentStore::open(dir.path() + "/db");
  coord::testing::FakeExecutor executor;
  Coordinator coord{*store, executor, {dir.path() + "/runs", "tcp://127.0.0.1:5999", {}}};
  int experiments = 0;
  RunRecord run;

  World() { log::set_level(log::Level::Error); }

  // An active run to address: the last one, or a new experiment's once that one has ended.
  const RunRecord& active_run() {
    if (experiments > 0) {
      run = *store->get_run(run.id);
      if (run.state == RunState::Pending || run.state == RunState::Running) return run;
    }
    Submission s;
    s.source = "/fuzz.toml";
    s.spec = coord::testing::small_spec("fuzz" + std::to_string(experiments++), 20, 2, 1);
    run = *store->get_run(coord.submit(s).runs.at(0));
    return run;
  }
};

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static World world;
  fuzz::Input in(data, size);
  if (size > 0 && data[0] == 0x01) {
    in.byte();
    std::vector<std::string> frames;
    while (in.left()) frames.push_back(in.bytes(in.byte()));
    const ZapDecision d = decide_zap(frames, std::string(32, 'K'));
    if (d.admitted && (frames.size() < 7 || frames[5] != "CURVE" || frames[6] != std::string(32, 'K')))
      fuzz::finding("ZAP admitted a client without the admitted CURVE key");
    return 0;
  }
  const RunRecord& run = world.active_run();
  std::string frame = in.rest();
  replace_all(frame, "@RUN@", run.id);
  replace_all(frame, "@TOKEN@", run.token);
  const protocol::Message reply = world.coord.handle_frame(frame);
  protocol::Message decoded;
  if (!fuzz::accepts("", [&] { decoded = protocol::decode(protocol::encode(reply)); }))
    fuzz::finding("the coordinator's reply is not a valid protocol message");
  if (reply.type == protocol::Type::Error) {
    const std::string message = reply.body.value("message", std::string());
    if (message.find("[json.exception") != std::string::npos || message.find("basic_string") != std::string::npos)
      fuzz::finding("a handler's library exception reached the worker: " + message);
  }
  return 0;
}

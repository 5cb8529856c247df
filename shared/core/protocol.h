// The coordinator <-> worker wire protocol (DESIGN.md "Wire protocol").
//
// Transport: ZeroMQ ROUTER (coordinator) / DEALER (worker rank 0). One message = one ZeroMQ frame
// holding a JSON object:
//   {"v": kProtocolVersion, "type": "<type>", "run": "<run id>", "token": "<secret>", "body": {...}}
// Every message is at most kMaxMessageBytes. Worker -> coordinator types and their bodies:
//   hello       {rank, world_size, host, pid}             -> reply "spec"
//   metrics     {attempt, seq, points:[MetricPoint...]}   -> reply "ack" {seq}
//   heartbeat   {step, attempt[, system]}                 -> reply "ack" {seq: 0}
//               (system: the ranks' latest figures, {step, ranks:[{rank, step_s, data_wait_s,
//               comm_s, comm_hidden_s, peak_rss_mb}]}; shown by `status`, not stored)
//   checkpoint  {step, path}                              -> reply "ack"
//   done        {step, summary:{...}}                     -> reply "ack"
//   failed      {step, rank, message[, diverged: true]}   -> reply "ack" (diverged: the loss is not finite)
//   preempted   {step, checkpoint}                        -> reply "ack"
//   claim       {world_size, host, pid[, gpus]}           -> reply "assign" (pull mode: a worker started
//               by the user asks for work; "run" and "token" of the message are "")
// Coordinator -> worker:
//   spec        {spec, attempt, resume_from, run_dir, stage_index, data_dir}  (resume_from: the
//               checkpoint bundle a later attempt continues from, "" = from scratch)
//   ack         {seq}
//   assign      {run, token[, pending]}  (run "": nothing fits now; pending: stages that fit the
//               worker but wait for their parents, so it asks again later; 0 = none left)
//   error       {message}   (malformed / unknown / unauthenticated request; never a crash)
// Metric batches stay buffered on the worker until their ack arrives (sent after the store write).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace ldm::protocol {

constexpr int kProtocolVersion = 1;
constexpr std::size_t kMaxMessageBytes = 4 * 1024 * 1024;

enum class Type { Hello, Spec, Metrics, Ack, Heartbeat, Checkpoint, Done, Failed, Preempted, Error, Claim, Assign };

const char* to_string(Type t);
bool type_from_string(const std::string& s, Type& out);

struct Message {
  int version = kProtocolVersion;
  Type type = Type::Error;
  std::string run;
  std::string token;
  nlohmann::json body = nlohmann::json::object();
};

Message make(Type type, std::string run, std::string token, nlohmann::json body);

// Serialises; throws ProtocolError if the result exceeds max_bytes.
std::string encode(const Message& m, std::size_t max_bytes = kMaxMessageBytes);

// Parses and checks framing: size (before parsing), JSON syntax, version, known type, the fields'
// presence and types, and the body fields each type requires. Throws ProtocolError with a
// message saying which check failed. Authentication (token vs run) is the receiver's job.
Message decode(const void* data, std::size_t size, std::size_t max_bytes = kMaxMessageBytes);
inline Message decode(const std::string& s, std::size_t max_bytes = kMaxMessageBytes) {
  return decode(s.data(), s.size(), max_bytes);
}

}  // namespace ldm::protocol

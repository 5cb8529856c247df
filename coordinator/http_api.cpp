#include "coordinator/http_api.h"

#include <unistd.h>

#include <algorithm>
#include <map>

#include "coordinator/api_json.h"
#include "shared/core/log.h"
#include "shared/core/text.h"

namespace ldm::coord {
namespace {

using nlohmann::json;

// Request bytes that are not UTF-8 (a path, a name) can reach a reply's strings: they are written
// as U+FFFD instead of failing the dump (which answered 500; found by tests/fuzz/fuzz_http).
HttpResponse reply(int status, const json& body) {
  return {status, body.dump(-1, ' ', false, json::error_handler_t::replace)};
}
HttpResponse fail(int status, const std::string& message) { return reply(status, {{"error", message}}); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding ('+' is a space in query values); an invalid escape is kept verbatim.
std::string url_decode(const std::string& s, bool plus_is_space) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out += static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
      i += 2;
    } else {
      out += plus_is_space && s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

struct Target {
  std::vector<std::string> segments;  // "/api/v1/experiments/x" -> {"api", "v1", "experiments", "x"}
  std::map<std::string, std::string> query;
};

Target parse_target(const std::string& target) {
  Target t;
  const auto q = target.find('?');
  for (const std::string& seg : split(target.substr(0, q), '/'))
    if (!seg.empty()) t.segments.push_back(url_decode(seg, false));
  if (q != std::string::npos) {
    for (const std::string& pair : split(target.substr(q + 1), '&')) {
      if (pair.empty()) continue;
      const auto eq = pair.find('=');
      t.query[url_decode(pair.substr(0, eq), true)] =
          eq == std::string::npos ? "" : url_decode(pair.substr(eq + 1), true);
    }
  }
  return t;
}

std::string query_value(const Target& t, const std::string& key) {
  auto it = t.query.find(key);
  return it == t.query.end() ? "" : it->second;
}

// Reads an optional string member of the submission body; false (with `error`) if mistyped.
bool optional_string(const json& body, const char* key, std::string& out, std::string& error) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return true;
  if (!it->is_string()) {
    error = std::string("'") + key + "' must be a string";
    return false;
  }
  out = it->get<std::string>();
  return true;
}

HttpResponse submit(Coordinator& coordinator, const std::string& text) {
  const json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object())
    return fail(400, "request body must be a JSON object {\"source\", \"spec\", \"name\", \"priority\"}");
  const std::vector<std::string> fields = {"source", "spec", "name", "priority"};
  for (const auto& item : body.items())
    if (std::find(fields.begin(), fields.end(), item.key()) == fields.end())
      return fail(400, "unknown field '" + item.key() + "' in the request body (fields: " + join(fields, ", ") + ")" +
                           (item.key() == "fault"
                                ? "; fault injection is a test tool: set LDM_FAULT in the coordinator's environment"
                                : did_you_mean(item.key(), fields)));
  if (!body.contains("spec") || !body["spec"].is_object())
    return fail(400, "request body needs 'spec', the resolved experiment spec as a JSON object");
  Submission s;
  s.spec = body["spec"];
  std::string error;
  if (!optional_string(body, "source", s.source, error) || !optional_string(body, "name", s.name, error))
    return fail(400, error);
  if (body.contains("priority")) {
    const json& p = body["priority"];
    if (!p.is_number_integer() || p.get<std::int64_t>() < -1000000 || p.get<std::int64_t>() > 1000000)
      return fail(400, "'priority' must be an integer in [-1000000, 1000000] (higher runs first; default 0)");
    s.priority = p.get<int>();
  }
  try {
    const SubmitResult r = coordinator.submit(s);
    return reply(201, {{"experiment", r.experiment}, {"runs", r.runs}});
  } catch (const SpecError& ex) {
    return fail(400, (s.source.empty() ? "" : s.source + ": ") + ex.what());
  } catch (const NameTakenError& ex) {
    return fail(409, ex.what());
  }
}

HttpResponse submit_sweep(Coordinator& coordinator, const std::string& text) {
  const json body = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object())
    return fail(400, "request body must be a JSON object {\"source\", \"name\", \"axes\", \"cells\", \"priority\"}");
  SweepSubmission s;
  try {
    s.source = body.value("source", std::string());
    s.name = body.at("name").get<std::string>();
    s.axes = body.value("axes", std::vector<std::string>{});
    s.priority = body.value("priority", 0);
    for (const json& c : body.at("cells"))
      s.cells.push_back({c.at("name"), c.value("values", json::object()), c.at("spec")});
  } catch (const json::exception& ex) {
    return fail(400, std::string("malformed sweep submission (needs name, cells[{name, values, spec}]): ") + ex.what());
  }
  try {
    const SweepSubmitResult r = coordinator.submit_sweep(s);
    return reply(201, {{"sweep", r.sweep}, {"experiments", r.experiments}, {"runs", r.runs}});
  } catch (const SpecError& ex) {
    return fail(400, (s.source.empty() ? "" : s.source + ": ") + ex.what());
  } catch (const NameTakenError& ex) {
    return fail(409, ex.what());
  }
}

// POST .../NAME/cancel | resume | delete on a sweep or an experiment.
HttpResponse act(Coordinator& coordinator, const std::string& what, bool sweep, const std::string& name,
                 const std::string& text) {
  try {
    const json body = text.empty() ? json::object() : json::parse(text);
    if (!body.is_object()) return fail(400, "the body must be a JSON object");
    if (what == "delete") {
      coordinator.remove(name, body.value("files", false));
      return reply(200, {{"deleted", name}});
    }
    if (what == "cancel" && sweep) return reply(200, {{"sweep", name}, {"signalled", coordinator.cancel_sweep(name)}});
    if (what == "resume" && sweep) return reply(200, {{"sweep", name}, {"resumed", coordinator.resume_sweep(name)}});
    if (what == "resume") {
      ResumeOptions options;
      for (const auto& [key, value] : body.items()) {
        if (key == "ranks" && value.is_number_integer() && value.get<std::int64_t>() >= 1 &&
            value.get<std::int64_t>() <= 1000000)
          options.ranks = value.get<int>();
        else if (key == "allow_world_size_change" && value.is_boolean())
          options.allow_world_size_change = value.get<bool>();
        else if (key == "stage" && value.is_string()) options.stage = value.get<std::string>();
        else
          return fail(400, "unknown or malformed field '" + key +
                               "' (only \"ranks\": N >= 1, \"allow_world_size_change\": bool, \"stage\": name)");
      }
      return reply(200, {{"experiment", name}, {"run", coordinator.resume(name, options)}});
    }
    for (const auto& [key, value] : body.items())
      if (key != "stage" || !value.is_string())
        return fail(400, "unknown or malformed field '" + key + "' (only \"stage\")");
    return reply(200,
                 {{"experiment", name}, {"signalled", coordinator.cancel(name, body.value("stage", std::string()))}});
  } catch (const json::exception& ex) {
    return fail(400, std::string("malformed request body: ") + ex.what());
  } catch (const NotFoundError& ex) {
    return fail(404, ex.what());
  } catch (const ConflictError& ex) {
    return fail(409, ex.what());
  } catch (const InvalidRequestError& ex) {
    return fail(400, ex.what());
  }
}

HttpResponse not_found(const HttpRequest& r) { return fail(404, "no such endpoint: " + r.method + " " + r.target); }
HttpResponse not_allowed(const HttpRequest& r) { return fail(405, "method not allowed: " + r.method + " " + r.target); }

HttpResponse route(Coordinator& coordinator, const HttpRequest& request, const Target& t) {
  const auto& seg = t.segments;
  const bool get = request.method == "GET";
  if (seg.size() < 3 || seg.size() > 5 || seg[0] != "api" || seg[1] != "v1") return not_found(request);
  if (seg.size() == 3 && seg[2] == "health") {
    if (!get) return not_allowed(request);
    return reply(200, {{"ok", true}, {"zmq", coordinator.zmq_endpoint()}, {"pid", ::getpid()}});
  }
  const bool action = seg.size() == 5 && (seg[4] == "cancel" || seg[4] == "resume" || seg[4] == "delete");
  if (seg[2] == "sweeps") {
    if (seg.size() == 3 && request.method == "POST") return submit_sweep(coordinator, request.body);
    if (action)
      return request.method == "POST" ? act(coordinator, seg[4], true, seg[3], request.body) : not_allowed(request);
    if (seg.size() > 4) return not_found(request);
    if (!get) return not_allowed(request);
    if (seg.size() == 3) return reply(200, {{"sweeps", coordinator.sweeps()}});
    const auto view = coordinator.sweep(seg[3]);
    if (!view) return fail(404, "no sweep named '" + seg[3] + "'");
    return reply(200, sweep_to_api_json(*view));
  }
  if (seg[2] != "experiments") return not_found(request);
  if (action)
    return request.method == "POST" ? act(coordinator, seg[4], false, seg[3], request.body) : not_allowed(request);
  if (seg.size() == 3) {
    if (request.method == "POST") return submit(coordinator, request.body);
    if (!get) return not_allowed(request);
    json list = json::array();
    for (const ExperimentView& v : coordinator.experiments()) list.push_back(experiment_list_item_json(v));
    return reply(200, {{"experiments", std::move(list)}});
  }
  const std::string& name = seg[3];
  if (seg.size() == 5 && seg[4] != "metrics") return not_found(request);
  if (!get) return not_allowed(request);
  if (seg.size() == 4) {
    auto view = coordinator.experiment(name);
    if (!view) return fail(404, "no experiment named '" + name + "'");
    return reply(200, experiment_to_api_json(*view));
  }
  std::size_t max_points = 0;
  if (const std::string text = query_value(t, "max_points"); !text.empty()) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(text.c_str(), &end, 10);
    if (*end != '\0' || text[0] == '-' || n > 10'000'000)
      return fail(400, "max_points must be a whole number from 0 to 10000000, got '" + text + "'");
    max_points = static_cast<std::size_t>(n);
  }
  try {
    json points = coordinator.metrics(name, query_value(t, "stage"), query_value(t, "metric"), max_points);
    return reply(200, {{"points", std::move(points)}});
  } catch (const NotFoundError& ex) {
    return fail(404, ex.what());
  }
}

}  // namespace

HttpResponse handle_api_request(Coordinator& coordinator, const HttpRequest& request) {
  try {
    return route(coordinator, request, parse_target(request.target));
  } catch (const std::exception& ex) {
    log::error("HTTP " + request.method + " " + request.target + ": " + ex.what());
    return fail(500, ex.what());
  }
}

}  // namespace ldm::coord

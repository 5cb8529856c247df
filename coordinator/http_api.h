// The coordinator's HTTP API: routes a request to the Coordinator and shapes the JSON reply.
// Socket-free (http_server.h carries the bytes), so tests call it directly.
//   GET  /api/v1/health                               -> {"ok": true, "zmq": endpoint, "pid": N}
//   POST /api/v1/experiments  {"source", "spec", "name"?} (any other field is a 400)
//                                                     -> 201 {"experiment": name, "runs": [...]}
//                                                        400 invalid spec / body, 409 name taken
//   GET  /api/v1/experiments                          -> {"experiments": [list items]}
//   GET  /api/v1/experiments/<name>                   -> {"experiment", "stages", "runs"} | 404
//   GET  /api/v1/experiments/<name>/metrics?stage=S&metric=M -> {"points": [...]} | 404
// Errors are {"error": "..."} with a 4xx/5xx status; unknown paths are 404, wrong methods 405.
// Shapes of experiments: api_json.h. Run tokens are never returned.
//
// Thread-safety: as the Coordinator's (any thread).
#pragma once

#include "coordinator/coordinator.h"
#include "coordinator/http_server.h"

namespace ldm::coord {

HttpResponse handle_api_request(Coordinator& coordinator, const HttpRequest& request);

}  // namespace ldm::coord

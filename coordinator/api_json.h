// The HTTP API's JSON shapes for experiments, shared by the server (views -> JSON) and the CLI
// client (JSON -> views). Run tokens never appear in this JSON.
//   one experiment:  {"experiment": {...record, spec included...}, "stages": [...], "runs": [...]}
//   list item:       {...record without spec..., "stages": [...], "runs": [...]}
//   one sweep:       {"sweep": {...record...}, "cells": [list item + {"values": {...}}]}
#pragma once

#include <nlohmann/json.hpp>

#include "coordinator/coordinator.h"

namespace ldm::coord {

nlohmann::json experiment_to_api_json(const ExperimentView& view);
nlohmann::json experiment_list_item_json(const ExperimentView& view);

// Accepts either shape; throws Error naming what is missing.
ExperimentView experiment_from_api_json(const nlohmann::json& j);

// One sweep: {"sweep": {...record...}, "cells": [list item + "values", in sweep order]}.
nlohmann::json sweep_to_api_json(const SweepView& view);
SweepView sweep_from_api_json(const nlohmann::json& j);

}  // namespace ldm::coord

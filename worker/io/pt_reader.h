// Reading PyTorch `.pt` files (DESIGN.md "Weights interchange"): the zip archive torch.save writes
// since torch 1.6 (<archive>/data.pkl, <archive>/data/<key> storages, <archive>/version), read with
// caffe2's PyTorchStreamReader and a small, tolerant unpickler of our own, because LibTorch 1.13's
// torch::pickle_load turns the OrderedDict of every real state dict into None.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <string>

namespace ldm::worker {

// Returns the state dict stored in the `.pt` file at `path`, as name -> CPU tensor.
//
// Which dict: with `key` empty, the top-level object itself when it is a dict whose values are all
// tensors (the reference DiT's pretrained files, `torch.save(model.state_dict())`); otherwise the
// first of top["ema"], top["model"], top["state_dict"], top["module"] that is such a dict (DiT's
// training checkpoints are {"model", "ema", "opt", "args"}; like DiT's own loader, "ema" wins).
// With `key` given, top[key] must be such a dict.
//
// Tensors keep the saved dtype (float32/16, bfloat16, float64, int64/32/16/8, uint8, bool,
// complex) and sizes; each is a contiguous copy that owns its memory (views that shared one storage
// in Python are independent here). Only the storages of the chosen dict are read, so optimizer
// state in a training checkpoint costs nothing.
//
// Throws ldm::DataError whose message names the file: missing/unreadable file, not a zip (or the
// legacy pre-1.6 format), no data.pkl, unsupported pickle opcode (with its byte offset), truncated
// pickle, missing or short storage record, out-of-bounds view, no state dict / unknown key (with the
// top-level keys that exist), entries that are not tensors.
std::map<std::string, at::Tensor> load_pt_state_dict(const std::string& path, const std::string& key = "");

}  // namespace ldm::worker
